//! Counters a target exposes on `GET /metrics` in Prometheus text format: requests by route and
//! status, store operations and store errors by command, connections accepted.
//!
//! Fixed-size arrays of relaxed atomics: counting costs a few nanoseconds, takes no lock and never
//! allocates on the request path.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::Command;
use crate::strategy::profile::MAX_AUTH_PATHS;

/// The routes of the HTTP contract (plus everything else, counted as `other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Health,
    Login,
    Resource,
    Logout,
    Refresh,
    RevokeUser,
    RotateKey,
    Jwks,
    Metrics,
    Other,
}

impl Route {
    pub const ALL: [Route; 10] = [
        Route::Health,
        Route::Login,
        Route::Resource,
        Route::Logout,
        Route::Refresh,
        Route::RevokeUser,
        Route::RotateKey,
        Route::Jwks,
        Route::Metrics,
        Route::Other,
    ];

    pub const fn path(self) -> &'static str {
        match self {
            Route::Health => "/health",
            Route::Login => "/login",
            Route::Resource => "/api/resource",
            Route::Logout => "/logout",
            Route::Refresh => "/refresh",
            Route::RevokeUser => "/admin/revoke-user",
            Route::RotateKey => "/admin/rotate-key",
            Route::Jwks => "/.well-known/jwks.json",
            Route::Metrics => "/metrics",
            Route::Other => "other",
        }
    }
}

/// The status codes a target answers with; anything else is counted under `other`.
const STATUSES: [u16; 11] = [200, 400, 401, 404, 405, 413, 415, 431, 500, 503, 0];

fn status_slot(code: u16) -> usize {
    STATUSES.iter().position(|&s| s == code).unwrap_or(STATUSES.len() - 1)
}

pub struct Metrics {
    requests: [[AtomicU64; STATUSES.len()]; Route::ALL.len()],
    store_ops: [AtomicU64; Command::ALL.len()],
    store_errors: [AtomicU64; Command::ALL.len()],
    /// Requests allowed *without* their store check because the store failed and the target runs
    /// `--fail-open`: each one is a request whose revocation state was never looked at.
    fail_open_allows: AtomicU64,
    /// Api requests verified, by the index of the path that verified them (the strategy profile's
    /// `auth_paths`; index 0 only for a strategy with one path).
    auth_paths: [AtomicU64; MAX_AUTH_PATHS],
    /// Store operations in flight right now: what the next operation will be pipelined with.
    store_in_flight: AtomicU64,
    /// Sum over every store operation of the operations in flight when it started (itself
    /// included): divided by the operation count, the concurrency the store client worked at,
    /// which is what its per-operation cost depends on.
    store_in_flight_at_start: AtomicU64,
    /// Sections a strategy adds to `/metrics` (a cached strategy's cache, a stale copy),
    /// registered at build; locked only then and when `/metrics` is rendered.
    sections: std::sync::Mutex<Vec<std::sync::Arc<dyn MetricsSection>>>,
    /// Connections accepted (every transport): with the request count, how many requests each
    /// connection carried, so a run can tell kept-alive traffic from short-lived connections.
    connections_accepted: AtomicU64,
}

/// Counters a strategy keeps beyond the server's, rendered at the end of `/metrics`.
pub trait MetricsSection: Send + Sync {
    /// Append Prometheus text for `strategy` to `out`.
    fn render(&self, strategy: &str, out: &mut String);
}

/// This process's user + system CPU so far (`getrusage(RUSAGE_SELF)`, microsecond resolution):
/// what lets a harness that did not start the target (a split run against targets in a cluster)
/// still measure target CPU per request, from two `/metrics` readings.
fn process_cpu_seconds() -> Option<f64> {
    // SAFETY: getrusage only writes into the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return None;
    }
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    Some(secs(ru.ru_utime) + secs(ru.ru_stime))
}

/// Marks one store operation in flight until dropped (see [`Metrics::store_started`]).
pub struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Metrics {
            requests: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            store_ops: std::array::from_fn(|_| AtomicU64::new(0)),
            store_errors: std::array::from_fn(|_| AtomicU64::new(0)),
            fail_open_allows: AtomicU64::new(0),
            auth_paths: std::array::from_fn(|_| AtomicU64::new(0)),
            store_in_flight: AtomicU64::new(0),
            store_in_flight_at_start: AtomicU64::new(0),
            sections: std::sync::Mutex::new(Vec::new()),
            connections_accepted: AtomicU64::new(0),
        }
    }

    pub fn request(&self, route: Route, status: u16) {
        self.requests[route as usize][status_slot(status)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn store_op(&self, cmd: Command, ok: bool) {
        self.store_ops[cmd.index()].fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.store_errors[cmd.index()].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One api request verified on path `index` of the strategy's profile.
    pub fn auth_path(&self, index: usize) {
        if let Some(counter) = self.auth_paths.get(index) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One store operation starts; it stays counted in flight until the guard is dropped.
    pub fn store_started(&self) -> InFlight<'_> {
        let now = self.store_in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.store_in_flight_at_start.fetch_add(now, Ordering::Relaxed);
        InFlight(&self.store_in_flight)
    }

    /// Count one accepted connection.
    pub fn connection_accepted(&self) {
        self.connections_accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// Render `section` at the end of `/metrics` from now on, after those added before it.
    pub fn add_section(&self, section: std::sync::Arc<dyn MetricsSection>) {
        self.sections.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(section);
    }

    /// Count one request allowed unchecked under `--fail-open`.
    pub fn fail_open_allow(&self) {
        self.fail_open_allows.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests allowed unchecked under `--fail-open` so far.
    pub fn fail_open_allows(&self) -> u64 {
        self.fail_open_allows.load(Ordering::Relaxed)
    }

    /// Operations issued for `cmd` so far.
    pub fn store_ops(&self, cmd: Command) -> u64 {
        self.store_ops[cmd.index()].load(Ordering::Relaxed)
    }

    /// Requests answered on `route` with `status` so far.
    pub fn requests(&self, route: Route, status: u16) -> u64 {
        self.requests[route as usize][status_slot(status)].load(Ordering::Relaxed)
    }

    /// Render in Prometheus text exposition format 0.0.4. `store_keys` is the memory store's live
    /// entry count (None on Redis, whose own INFO is authoritative).
    /// `auth_paths` names the strategy's api verification paths (its profile's; none for one path).
    pub fn render(&self, strategy: &str, auth_paths: &[&str], store_kind: &str, store_keys: Option<usize>) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP authbench_requests_total Requests answered, by route and status.\n");
        out.push_str("# TYPE authbench_requests_total counter\n");
        for route in Route::ALL {
            for (i, code) in STATUSES.iter().enumerate() {
                let n = self.requests[route as usize][i].load(Ordering::Relaxed);
                if n == 0 {
                    continue;
                }
                let status = if *code == 0 { "other".to_owned() } else { code.to_string() };
                let _ = writeln!(
                    out,
                    "authbench_requests_total{{strategy=\"{strategy}\",route=\"{}\",status=\"{status}\"}} {n}",
                    route.path()
                );
            }
        }
        out.push_str("# HELP authbench_store_operations_total Store operations issued, by command.\n");
        out.push_str("# TYPE authbench_store_operations_total counter\n");
        for cmd in Command::ALL {
            let n = self.store_ops[cmd.index()].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "authbench_store_operations_total{{store=\"{store_kind}\",command=\"{}\"}} {n}",
                cmd.name()
            );
        }
        out.push_str("# HELP authbench_store_errors_total Store operations that failed or timed out, by command.\n");
        out.push_str("# TYPE authbench_store_errors_total counter\n");
        for cmd in Command::ALL {
            let n = self.store_errors[cmd.index()].load(Ordering::Relaxed);
            let _ =
                writeln!(out, "authbench_store_errors_total{{store=\"{store_kind}\",command=\"{}\"}} {n}", cmd.name());
        }
        out.push_str(
            "# HELP authbench_fail_open_allows_total Requests allowed without their store check (--fail-open, store down).\n",
        );
        out.push_str("# TYPE authbench_fail_open_allows_total counter\n");
        let _ = writeln!(
            out,
            "authbench_fail_open_allows_total{{strategy=\"{strategy}\"}} {}",
            self.fail_open_allows.load(Ordering::Relaxed)
        );
        if !auth_paths.is_empty() {
            out.push_str("# HELP authbench_auth_path_total Api requests verified, by the path that verified them.\n");
            out.push_str("# TYPE authbench_auth_path_total counter\n");
            for (name, counter) in auth_paths.iter().zip(&self.auth_paths) {
                let n = counter.load(Ordering::Relaxed);
                let _ = writeln!(out, "authbench_auth_path_total{{strategy=\"{strategy}\",path=\"{name}\"}} {n}");
            }
        }
        if let Some(cpu_s) = process_cpu_seconds() {
            out.push_str(
                "# HELP authbench_process_cpu_seconds_total User + system CPU of the target process (all threads).\n",
            );
            out.push_str("# TYPE authbench_process_cpu_seconds_total counter\n");
            let _ = writeln!(out, "authbench_process_cpu_seconds_total {cpu_s:.6}");
        }
        out.push_str(
            "# HELP authbench_store_in_flight_at_start_total Sum over store operations of the operations in flight when each started (itself included).\n",
        );
        out.push_str("# TYPE authbench_store_in_flight_at_start_total counter\n");
        let _ = writeln!(
            out,
            "authbench_store_in_flight_at_start_total{{store=\"{store_kind}\"}} {}",
            self.store_in_flight_at_start.load(Ordering::Relaxed)
        );
        out.push_str("# HELP authbench_connections_accepted_total Connections accepted, every transport.\n");
        out.push_str("# TYPE authbench_connections_accepted_total counter\n");
        let _ =
            writeln!(out, "authbench_connections_accepted_total {}", self.connections_accepted.load(Ordering::Relaxed));
        if let Some(keys) = store_keys {
            out.push_str("# HELP authbench_store_keys Entries held by the in-process store (live or not yet swept).\n");
            out.push_str("# TYPE authbench_store_keys gauge\n");
            let _ = writeln!(out, "authbench_store_keys{{store=\"{store_kind}\"}} {keys}");
        }
        for section in self.sections.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
            section.render(strategy, &mut out);
        }
        out
    }
}
