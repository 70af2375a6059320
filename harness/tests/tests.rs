//! The harness's integration tests, one binary (`autotests = false`): each module below is one area.

mod util;

mod cluster;
mod cluster_failover;
mod collect;
mod delay_proxy;
mod environment;
mod failover;

mod engine;
mod engine_wire;
mod measure;
mod run_e2e;
mod scenario;
mod short_connections;
mod store_events;
mod store_vocabulary;
mod transports;

mod report;

mod ci_workflow;
mod compare;
mod distributed;

mod thresholds;

mod capacity;
