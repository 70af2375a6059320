//! Measurement collectors the driver calls around each strategy's measured window. They only
//! measure: what a run starts and stops (targets, redis-servers, the cluster, the delay proxy,
//! outages) is `crate::environment`.
//!
//! Each figure is read from the thing that did the work, never inferred from the driver's side:
//! - [`snapshot`]: every collector read at one instant, the two ends of a measured window;
//! - [`process`]: CPU time of a process from `/proc/<pid>/stat`, the driver's own CPU and peak RSS;
//! - [`redis`]: store load from Redis's own `INFO` (commandstats, stats, cpu, memory, keyspace),
//!   summed over a cluster's nodes; the memory store's counters from the target's `/metrics`;
//! - [`postgres`]: store load from PostgreSQL's own statistics (`pg_stat_statements`, the targets'
//!   backend CPU from `/proc`, table size);
//! - [`machine`]: what the run ran on and with (`Machine`, `ToolInfo`);
//! - [`revocation`]: the revocation window, probed directly over HTTP;
//! - [`failover`]: a Sentinel failover timed from the client side, and what it forgot (revocations
//!   and sessions replayed after it);
//! - [`availability`]: a health prober (store outages, key rotation) and the outage injector;
//! - [`accounting`]: the requests the target served in the window (its `/metrics`), reconciled with
//!   the driver's and the probes' counts; the denominator of every per-request figure;
//! - [`store_down`]: the store-down column measured by a short store pause after the window;
//! - [`http`]: a tiny HTTP/1.1 client (one connection per request) for probes and setup calls.

pub mod accounting;
pub mod availability;
pub mod failover;
pub mod http;
pub mod machine;
pub mod postgres;
pub mod process;
pub mod redis;
pub mod revocation;
pub mod snapshot;
pub mod store_down;

pub use self::machine::{machine, tool_info};
pub use self::process::{peak_rss_bytes, self_cpu_time};
pub use self::redis::{
    InfoSnapshot, metrics_store_ops, redis_server_version, snapshot, snapshot_sum, store_load, store_load_from_metrics,
};
pub use self::revocation::probe;
pub use self::snapshot::{Snapshots, StoreSource};
