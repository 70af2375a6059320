//! All target integration tests, built as one binary. Each module tries the attacks of one area
//! against real servers on port 0 (and real redis-server processes started on free ports).

mod cached;
mod cluster;
mod contract;
mod fail_open;
mod hybrid;
mod jwt_attacks;
mod outage;
mod postgres;
mod refresh;
mod revocation;
mod rotation;
mod session;
mod shared_key;
mod stale;
mod store;
mod token_cookie;
mod util;
mod web_api;
mod wire;
