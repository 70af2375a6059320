//! The traffic engine: a fixed number of keep-alive HTTP/1.1 connections (a small hand-rolled
//! codec, [`http`], over `TcpStream`s the engine owns, as wrk does) driven open loop (each request
//! has an intended start time, latency counts from it) or closed loop (back to back), by virtual
//! users who hold credentials like real clients.
//!
//! Work is split over `workers` OS threads (one per driver thread), each running one event loop
//! (a current-thread tokio runtime) that multiplexes its connections in a single task and records
//! into its own [`record::Recorder`], merged once at the end. Nothing is sent per request between
//! threads; per-second interval histograms are handed over once a second. Ctrl-C aborts the
//! workers from outside, so the per-request path never looks at the stop signal.
//!
//! Per request the hot path writes the request into a reused buffer, makes one `write` and
//! (usually) one `read` syscall, parses the answer in place, takes two clock readings and records
//! into histograms: no allocation, no lock, no timer registration (the per-connection timeout
//! timer is only pushed later, which tokio does without touching its wheel).

mod http;
mod hyper_client;
pub mod record;
pub mod schedule;
pub mod transport;
mod vu;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::http::StatusCode;
use ::http::header::HeaderValue;
use futures_util::StreamExt;
use futures_util::future::{AbortHandle, AbortRegistration, Abortable};
use futures_util::stream::FuturesUnordered;
use tokio::sync::{oneshot, watch};

use crate::plan::{MixWeights, Schedule, Stop};
use crate::results::StageResult;
use crate::targets::config::StrategyKind;
use http::{Client, Fail};
use hyper_client::{SharedConn, Slot};
use record::{ClientKind, Finished, FinishedInterval, Intervals, Op, Outcome, Recorder};
use schedule::Timetable;
use transport::{Exchange, WireSettings};
use vu::{ConnUsers, Planned, Population};

/// A request sent more than this long after its intended time is a late start.
pub const LATE_START: Duration = Duration::from_millis(1);

/// What the engine needs to drive one target.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// `http://host:port` of the target; several comma-separated URLs share the connections
    /// round-robin (connection `c` goes to URL `c % n`; every request carries the first URL's host
    /// in `Host`).
    pub base_url: String,
    pub strategy: StrategyKind,
    pub schedule: Schedule,
    pub stop: Stop,
    pub warmup: Duration,
    pub users: usize,
    pub mix: MixWeights,
    pub timeout: Duration,
    /// `x-admin-key` for revoke-user; without it revoke-user operations are sent without a key
    /// and expected to be refused.
    pub admin_key: Option<String>,
    pub revoked_fraction: f64,
    pub tampered_fraction: f64,
    /// Users (the first this many) that log in as older clients (`"legacy": true`).
    pub legacy_users: usize,
    /// Users (the next this many) that log in as API clients (`"client": "api"`).
    pub api_client_users: usize,
    /// Driver threads, each with its own event loop (normally one per driver CPU).
    pub workers: usize,
    /// Put before every user name (`p2-` gives `p2-u0`, …): parts of a split run never share users.
    pub user_prefix: String,
    /// Transport, HPACK policy and streams per connection (`[traffic]`).
    pub wire: WireSettings,
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("target URL `{0}` must look like http://host:port (https:// with a TLS transport)")]
    BadUrl(String),
    #[error("{0}")]
    Wire(String),
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, std::io::Error),
    #[error("{users} users cannot share {connections} connections: give at least one user per connection")]
    TooFewUsers { users: usize, connections: usize },
    #[error("a worker task failed: {0}")]
    Worker(String),
}

/// Everything measured in one engine run.
#[derive(Debug, Clone)]
pub struct EngineOutput {
    /// All workers merged.
    pub recorder: Recorder,
    /// Length of the measured window (warm-up excluded).
    pub measured: Duration,
    pub interrupted: bool,
    pub intervals: Vec<FinishedInterval>,
    pub stages: Vec<StageResult>,
    pub target_rate_per_sec: Option<f64>,
}

/// Shared, read-only state of one run.
struct Shared {
    /// `host` header value.
    host: HeaderValue,
    timetable: Option<Timetable>,
    connections: usize,
    t0: Instant,
    measure_start: Instant,
    end: Option<Instant>,
    measured_secs: Option<u64>,
    timeout: Duration,
    cumulative_mix: [f64; 5],
    revoked_fraction: f64,
    tampered_fraction: f64,
    admin_key: Option<HeaderValue>,
    intervals: Arc<Intervals>,
    closed_loop: bool,
}

/// A prepared run; [`Engine::live`] gives the counters a progress display reads.
pub struct Engine {
    cfg: EngineConfig,
    /// One address per target URL; connection `c` connects to `addrs[c % len]`.
    addrs: Vec<SocketAddr>,
    host: String,
    intervals: Arc<Intervals>,
    stage_rates: Vec<f64>,
    stage_secs: Vec<f64>,
}

impl Engine {
    pub async fn new(cfg: EngineConfig) -> Result<Engine, EngineError> {
        let mut addrs = Vec::new();
        let mut first_host = None;
        let prefix = format!("{}://", cfg.wire.transport.scheme());
        for url in cfg.base_url.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            let host = url
                .strip_prefix(prefix.as_str())
                .map(|r| r.split('/').next().unwrap_or(r).to_owned())
                .filter(|h| !h.is_empty())
                .ok_or_else(|| EngineError::BadUrl(url.to_owned()))?;
            let addr = tokio::net::lookup_host(&host)
                .await
                .map_err(|e| EngineError::Resolve(host.clone(), e))?
                .next()
                .ok_or_else(|| EngineError::BadUrl(url.to_owned()))?;
            addrs.push(addr);
            if first_host.is_none() {
                first_host = Some(host);
            }
        }
        let host = first_host.ok_or_else(|| EngineError::BadUrl(cfg.base_url.clone()))?;
        let connections = cfg.schedule.connections();
        if cfg.users < connections {
            return Err(EngineError::TooFewUsers { users: cfg.users, connections });
        }
        let (stage_rates, stage_secs, stage_of_second) = match &cfg.schedule {
            Schedule::Open { stages, .. } if stages.len() > 1 => {
                let mut of_second = Vec::new();
                for (i, s) in stages.iter().enumerate() {
                    let secs = s.duration.as_secs_f64().round().max(1.0) as usize;
                    of_second.extend(std::iter::repeat_n(i, secs));
                }
                (
                    stages.iter().map(|s| s.rate_per_sec).collect(),
                    stages.iter().map(|s| s.duration.as_secs_f64()).collect(),
                    of_second,
                )
            }
            _ => (Vec::new(), Vec::new(), Vec::new()),
        };
        let keep_open = cfg.timeout.as_secs() + 2;
        let intervals = Arc::new(Intervals::new(keep_open, stage_of_second, stage_rates.len()));
        Ok(Engine { cfg, addrs, host, intervals, stage_rates, stage_secs })
    }

    /// Live counters of the measured window (requests, errors), updated about once a second.
    pub fn live(&self) -> Arc<Intervals> {
        self.intervals.clone()
    }

    /// Drive traffic from `t0` (warm-up first) until the stop condition or `stop` turns true.
    pub async fn run(self, t0: Instant, stop: watch::Receiver<bool>) -> Result<EngineOutput, EngineError> {
        let shared = self.shared(t0)?;
        let (aborts, results) = self.spawn_workers(&shared)?;
        let (merged, interrupted) = join_workers(aborts, results, stop).await?;
        let window_end = match shared.end {
            Some(e) if !interrupted => e,
            _ => Instant::now(),
        };
        let measured = window_end.saturating_duration_since(shared.measure_start);
        let (intervals, stages) = self.intervals.finish_all(&self.stage_rates, &self.stage_secs);
        let target_rate_per_sec = target_rate(&self.cfg.schedule, shared.end.is_some());
        Ok(EngineOutput { recorder: merged, measured, interrupted, intervals, stages, target_rate_per_sec })
    }

    /// What every connection of the run reads: the schedule, the window, the mix, the injections.
    fn shared(&self, t0: Instant) -> Result<Arc<Shared>, EngineError> {
        let cfg = &self.cfg;
        let measure_start = t0 + cfg.warmup;
        let end = match cfg.stop {
            Stop::Duration(d) => Some(measure_start + d),
            Stop::Interrupted => None,
        };
        let timetable = match &cfg.schedule {
            Schedule::Open { stages, .. } => Some(Timetable::new(cfg.warmup, stages, end.is_none())),
            Schedule::Closed { .. } => None,
        };
        Ok(Arc::new(Shared {
            host: HeaderValue::from_str(&self.host).map_err(|_| EngineError::BadUrl(cfg.base_url.clone()))?,
            timetable,
            connections: cfg.schedule.connections(),
            t0,
            measure_start,
            end,
            measured_secs: match cfg.stop {
                Stop::Duration(d) => Some(d.as_secs_f64().ceil().max(1.0) as u64),
                Stop::Interrupted => None,
            },
            timeout: cfg.timeout,
            cumulative_mix: cumulative_mix(&cfg.mix),
            revoked_fraction: cfg.revoked_fraction,
            tampered_fraction: cfg.tampered_fraction,
            admin_key: cfg.admin_key.as_deref().and_then(|k| HeaderValue::from_str(k).ok()),
            intervals: self.intervals.clone(),
            closed_loop: matches!(cfg.schedule, Schedule::Closed { .. }),
        }))
    }

    /// Deal the connections (and their users) round-robin to the driver threads and start them.
    /// HTTP/2: the request slots of one connection (its streams) go to the same thread.
    fn spawn_workers(&self, shared: &Arc<Shared>) -> Result<(Vec<AbortHandle>, Vec<WorkerResult>), EngineError> {
        let cfg = &self.cfg;
        let connections = shared.connections;
        let group = cfg.wire.streams_per_connection.max(1);
        let workers = cfg.workers.clamp(1, connections.div_ceil(group));
        let users = |c: usize| {
            let population = Population { users: cfg.users, legacy: cfg.legacy_users, api: cfg.api_client_users };
            let naming = vu::Naming { prefix: &cfg.user_prefix, host: &self.host };
            ConnUsers::new(c, connections, population, cfg.strategy, naming, c as u64 + 1)
        };
        if cfg.wire.transport == transport::Transport::Http1 {
            let mut per_worker: Vec<Vec<ConnState<Client>>> = (0..workers).map(|_| Vec::new()).collect();
            for c in 0..connections {
                let client = Client::new(self.addrs[c % self.addrs.len()]).recycling(cfg.wire.requests_per_connection);
                per_worker[c % workers].push(ConnState { index: c, seq: 0, client, users: users(c) });
            }
            return start_workers(shared, per_worker);
        }
        let mut per_worker: Vec<Vec<ConnState<Slot>>> = (0..workers).map(|_| Vec::new()).collect();
        let mut conn = None;
        for c in 0..connections {
            let j = c / group;
            if c % group == 0 {
                let addr = self.addrs[j % self.addrs.len()];
                conn = Some(SharedConn::new(addr, cfg.wire, &self.host).map_err(EngineError::Wire)?);
            }
            let Some(conn) = conn.clone() else { continue };
            let client = Slot::new(conn, c % group == 0, &self.host, cfg.wire.hpack);
            per_worker[j % workers].push(ConnState { index: c, seq: 0, client, users: users(c) });
        }
        start_workers(shared, per_worker)
    }
}

/// One driver thread per list of connections.
fn start_workers<C: Exchange + Send + 'static>(
    shared: &Arc<Shared>,
    per_worker: Vec<Vec<ConnState<C>>>,
) -> Result<(Vec<AbortHandle>, Vec<WorkerResult>), EngineError> {
    let (mut aborts, mut results) = (Vec::new(), Vec::new());
    for (i, conns) in per_worker.into_iter().enumerate() {
        let (abort, reg) = AbortHandle::new_pair();
        let (tx, rx) = oneshot::channel();
        let shared = shared.clone();
        std::thread::Builder::new()
            .name(format!("authbench-driver-{i}"))
            .spawn(move || {
                let _ = tx.send(worker_thread(shared, conns, reg));
            })
            .map_err(|e| EngineError::Worker(format!("starting a driver thread: {e}")))?;
        aborts.push(abort);
        results.push(rx);
    }
    Ok((aborts, results))
}

/// A driver thread's recorder, when it ends.
type WorkerResult = oneshot::Receiver<Result<Recorder, String>>;

/// Wait for every driver thread (aborting them all when `stop` turns true) and merge their
/// recorders. Also returns whether the run was interrupted.
async fn join_workers(
    aborts: Vec<AbortHandle>,
    results: Vec<WorkerResult>,
    mut stop: watch::Receiver<bool>,
) -> Result<(Recorder, bool), EngineError> {
    let collect = async {
        let mut out = Vec::new();
        for rx in results {
            out.push(rx.await);
        }
        out
    };
    tokio::pin!(collect);
    let stopped = async {
        // A dropped sender means nobody can interrupt: wait for the workers.
        if stop.wait_for(|s| *s).await.is_ok() {
            for a in &aborts {
                a.abort();
            }
        } else {
            std::future::pending::<()>().await;
        }
    };
    let results = tokio::select! {
        r = &mut collect => r,
        () = stopped => collect.await,
    };
    let mut merged = Recorder::new();
    for r in results {
        let r = r
            .map_err(|_| EngineError::Worker("a driver thread ended without a result".into()))?
            .map_err(EngineError::Worker)?;
        merged.merge(&r);
    }
    let interrupted = *stop.borrow_and_update();
    Ok((merged, interrupted))
}

/// The mix as cumulative shares in the order login, api, logout, refresh, revoke (for one draw).
fn cumulative_mix(mix: &MixWeights) -> [f64; 5] {
    let w = [mix.login, mix.api, mix.logout, mix.refresh, mix.revoke];
    let total: f64 = w.iter().sum();
    let mut cumulative = [0.0; 5];
    let mut acc = 0.0;
    for (c, x) in cumulative.iter_mut().zip(w) {
        acc += x / total;
        *c = acc;
    }
    cumulative
}

/// Open loop: the schedule's mean rate over its stages (the first stage's rate when the run has
/// no end); closed loop: none.
fn target_rate(schedule: &Schedule, bounded: bool) -> Option<f64> {
    match schedule {
        Schedule::Open { stages, .. } => {
            let secs: f64 = stages.iter().map(|s| s.duration.as_secs_f64()).sum();
            let n: f64 =
                stages.iter().map(|s| (s.from_rate_per_sec + s.rate_per_sec) / 2.0 * s.duration.as_secs_f64()).sum();
            Some(if secs > 0.0 && bounded { n / secs } else { stages[0].rate_per_sec })
        }
        Schedule::Closed { .. } => None,
    }
}

/// One request slot (HTTP/1.1: a connection; HTTP/2: a stream slot) and the users it serves.
struct ConnState<C> {
    index: usize,
    /// Requests started on this connection (open loop: position in the timetable).
    seq: u64,
    client: C,
    users: ConnUsers,
}

/// One driver thread: its own event loop, its connections in one task, its own recorder.
fn worker_thread<C: Exchange>(
    shared: Arc<Shared>,
    conns: Vec<ConnState<C>>,
    abort: AbortRegistration,
) -> Result<Recorder, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting a driver event loop: {e}"))?;
    let rec = RefCell::new(Recorder::new());
    rt.block_on(async {
        let mut futs: FuturesUnordered<_> = conns.into_iter().map(|c| connection_loop(&shared, c, &rec)).collect();
        let mut ended = Vec::new();
        let all = async {
            while let Some(st) = futs.next().await {
                ended.push(st);
            }
        };
        // Aborted: in-flight requests are dropped unrecorded, as at the end of any run.
        let _ = Abortable::new(all, abort).await;
        // The sockets' bytes once every slot is done (HTTP/2 slots share a connection's counters).
        let mut r = rec.borrow_mut();
        for b in ended.iter().filter_map(|st| st.client.window_bytes()) {
            r.wire.sent += b.sent;
            r.wire.received += b.received;
            r.wire.connects += b.connects;
        }
    });
    drop(rt);
    let mut r = rec.into_inner();
    r.flush_interval(&shared.intervals);
    Ok(r)
}

/// How a request ended on the wire.
enum Wire<'a> {
    Answer { status: StatusCode, set_cookie: Option<HeaderValue>, body: &'a [u8] },
    Timeout,
    Connect,
    Protocol,
}

/// Drive one connection (or stream slot) until the end of the run; hand it back for its counters.
async fn connection_loop<C: Exchange>(shared: &Shared, mut st: ConnState<C>, rec: &RefCell<Recorder>) -> ConnState<C> {
    // One timer per connection for the timeout, pushed later before each request (no wheel
    // registration while the deadline only moves forward), one for open-loop pacing.
    let timeout = tokio::time::sleep(shared.timeout);
    tokio::pin!(timeout);
    let pace = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(pace);
    let mut in_window = false;
    while let Some((intended, sent)) = next_start(shared, &st, pace.as_mut()).await {
        st.seq += 1;
        if !in_window && intended.min(sent) >= shared.measure_start {
            // The first request the recorder will count: the socket bytes count from here.
            in_window = true;
            st.client.mark_window();
        }
        let planned = st.users.plan(shared, sent, st.client.req());
        timeout.as_mut().reset((sent + shared.timeout).into());
        let result = tokio::select! {
            biased;
            r = st.client.exchange() => Some(r),
            () = &mut timeout => None,
        };
        let done = Instant::now();
        let wire = match result {
            Some(Ok(a)) => Wire::Answer {
                status: StatusCode::from_u16(a.status).unwrap_or(StatusCode::BAD_GATEWAY),
                set_cookie: a.set_cookie,
                body: st.client.body(),
            },
            Some(Err(Fail::Connect)) => Wire::Connect,
            Some(Err(Fail::Protocol)) => Wire::Protocol,
            None => {
                st.client.drop_connection();
                Wire::Timeout
            }
        };
        let status = match &wire {
            Wire::Answer { status, .. } => Some(status.as_u16()),
            _ => None,
        };
        let connect_failed = matches!(wire, Wire::Connect);
        let outcome = st.users.settle(shared, &planned, &wire, done);
        let timing = Timing { intended, sent, done };
        let client = st.users.client(planned.vu);
        record(shared, &mut rec.borrow_mut(), &planned, Answered { outcome, status, client }, timing);
        if connect_failed && shared.closed_loop {
            // Do not spin on a refused port.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    st
}

/// When the connection's next request is due (open loop: its place in the timetable, waited
/// for) and when it is sent; `None` once the run is over for this connection.
async fn next_start<C>(
    shared: &Shared,
    st: &ConnState<C>,
    mut pace: std::pin::Pin<&mut tokio::time::Sleep>,
) -> Option<(Instant, Instant)> {
    let now = Instant::now();
    let Some(tt) = &shared.timetable else {
        return shared.end.is_none_or(|end| now < end).then_some((now, now));
    };
    let n = st.seq * shared.connections as u64 + st.index as u64;
    let intended = shared.t0 + tt.offset(n)?;
    if shared.end.is_some_and(|end| intended >= end) {
        return None;
    }
    // tokio's timer rounds up to the next millisecond: wake up to 1 ms early rather than late.
    if intended > now + LATE_START {
        pace.as_mut().reset((intended - LATE_START).into());
        pace.as_mut().await;
        return Some((intended, Instant::now()));
    }
    Some((intended, now))
}

/// A request's three instants: due (open loop; the send time in closed loop), sent, answered.
#[derive(Clone, Copy)]
struct Timing {
    intended: Instant,
    sent: Instant,
    done: Instant,
}

/// How a request ended, and who sent it.
#[derive(Clone, Copy)]
struct Answered {
    outcome: Outcome,
    /// The answer's status, when one came.
    status: Option<u16>,
    /// The sender's client kind, where the strategy serves two.
    client: Option<ClientKind>,
}

/// Record a finished request when it started inside the measured window (latency counts from the
/// intended send time: coordinated omission corrected).
fn record(shared: &Shared, r: &mut Recorder, planned: &Planned, answered: Answered, t: Timing) {
    let Answered { outcome, status, client } = answered;
    let start = t.intended.min(t.sent);
    if start < shared.measure_start {
        return;
    }
    let latency_us = t.done.saturating_duration_since(start).as_micros() as u64;
    let service_us = t.done.saturating_duration_since(t.sent).as_micros() as u64;
    let mut second = t.done.saturating_duration_since(shared.measure_start).as_secs();
    if let Some(n) = shared.measured_secs {
        second = second.min(n - 1);
    }
    if !shared.closed_loop {
        let lag = t.sent.saturating_duration_since(t.intended);
        if lag > LATE_START {
            r.late_starts += 1;
        }
        r.max_lag_us = r.max_lag_us.max(lag.as_micros() as u64);
    }
    if planned.op == Op::Api
        && let Some((cred, head)) = planned.bytes
    {
        r.credential_bytes_sum += u64::from(cred);
        r.header_bytes_sum += u64::from(head);
        r.bytes_samples += 1;
    }
    if planned.op == Op::Login && outcome == Outcome::ExpectedAllow {
        r.logins_ok += 1;
    }
    r.record(Finished { op: planned.op, outcome, latency_us, service_us, status, client }, second, &shared.intervals);
}
