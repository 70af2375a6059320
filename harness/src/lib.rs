//! authbench, the driver: command line, scenarios, traffic engine, measurement, reports and compare.
//! The target servers live in the `authbench-targets` crate, re-exported here as [`targets`].

pub mod capacity;
pub mod cli;
pub mod collect;
pub mod compare;
pub mod engine;
pub mod environment;
pub mod figures;
pub mod grant;
pub mod merge;
pub mod output;
pub mod part;
pub mod plan;
pub mod progress;
pub mod project;
pub mod repeats;
pub mod report;
pub mod results;
pub mod run;
pub mod scenario;
pub mod stats;
pub mod target;
pub mod thresholds;
pub mod usl;

pub use authbench_targets as targets;
