//! Measurement collectors the driver calls around each strategy's measured window.
//!
//! Each figure is read from the thing that did the work, never inferred from the driver's side:
//! - [`process`]: target child processes (spawn, pin to a CPU, CPU time from `/proc/<pid>/stat`),
//!   the driver's own CPU and peak RSS, and the CPU plan that keeps driver and target apart;
//! - [`redis`]: a private `redis-server`, and store load from its own `INFO` (commandstats, stats,
//!   cpu, memory, keyspace); the memory store's counters from the target's `/metrics`;
//! - [`cluster`]: a private Redis Cluster (3+ nodes), store load summed over its nodes;
//! - [`delay_proxy`]: a TCP proxy that puts the store at a network distance (latency, jitter);
//! - [`machine`]: what the run ran on and with (`Machine`, `ToolInfo`);
//! - [`revocation`]: the revocation window, probed directly over HTTP;
//! - [`availability`]: a health prober (store outages, key rotation) and the outage injector;
//! - [`accounting`]: the requests the target served in the window (its `/metrics`), reconciled with
//!   the driver's and the probes' counts; the denominator of every per-request figure;
//! - [`store_down`]: the store-down column measured by a short store pause after the window;
//! - [`http`]: a tiny HTTP/1.1 client (one connection per request) for probes and setup calls.

pub mod accounting;
pub mod availability;
pub mod cluster;
pub mod delay_proxy;
pub mod http;
pub mod machine;
pub mod process;
pub mod redis;
pub mod revocation;
pub mod store_down;

pub use self::machine::{machine, tool_info};
pub use self::process::{CpuPlan, TargetProcess, cpu_plan, peak_rss_bytes, pin_current_process, self_cpu_time};
pub use self::redis::{
    InfoSnapshot, RedisProcess, metrics_store_ops, redis_server_available, redis_server_version, snapshot, store_load,
    store_load_from_metrics,
};
pub use self::revocation::probe;
