//! The harness's integration tests, one binary (`autotests = false`): each module below is one area.

mod util;

mod cluster;
mod collect;
mod delay_proxy;

mod engine;
mod measure;
mod run_e2e;
mod scenario;
mod store_events;

mod report;

mod compare;

mod thresholds;
