//! authbench's target servers: one HTTP contract (docs/design.md), one module per authentication strategy,
//! pluggable stores.
//!
//! - [`config`]: `authbench target` flags and their validation;
//! - [`server`]: HTTP routing, limits and shutdown, generic over [`strategy::Strategy`];
//! - [`strategy`]: `none`, `session`, `jwt`, `jwt-denylist`, `jwt-refresh`;
//! - [`store`]: the key-value seam, `memory` and `redis`;
//! - [`token`] and [`keys`]: issuing and verifying JWTs with keys parsed once;
//! - [`cache`]: the cached strategies' in-process read cache and its Redis invalidation link;
//! - [`metrics`]: Prometheus counters; [`error`]: every failure and its status code.
//! - [`metrics`]: Prometheus counters; [`error`]: every failure and its status code;
//! - [`tls`]: `--tls`: the rustls configuration (ALPN h2 and http/1.1) and handshake counters.

pub mod cache;
pub mod config;
pub mod error;
pub mod ids;
pub mod keys;
pub mod metrics;
pub mod server;
pub mod store;
pub mod strategy;
pub mod tls;
pub mod token;
pub mod token_cookie;

pub use config::{Alg, StrategyKind, TargetArgs, TargetConfig};
pub use server::{run, serve};
