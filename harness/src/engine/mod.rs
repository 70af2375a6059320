//! The traffic engine: a fixed number of keep-alive HTTP/1.1 connections (hyper's
//! `client::conn::http1` over `TcpStream`s the engine owns) driven open loop (each request has an
//! intended start time, latency counts from it) or closed loop (back to back), by virtual users who
//! hold credentials like real clients.
//!
//! Work is split over `workers` tasks (one per driver thread); each runs its connections
//! concurrently and records into its own [`record::Recorder`], merged once at the end. Nothing is
//! sent per request between tasks; per-second interval histograms are handed over once a second.

pub mod record;
pub mod schedule;
mod vu;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use http::header::{HOST, HeaderValue};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::plan::{MixWeights, Schedule, Stop};
use crate::results::StageResult;
use crate::targets::config::StrategyKind;
use record::{FinishedInterval, Intervals, Op, Outcome, Recorder};
use schedule::Timetable;
use vu::{ConnUsers, Planned};

/// A request sent more than this long after its intended time is a late start.
pub const LATE_START: Duration = Duration::from_millis(1);

/// What the engine needs to drive one target.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// `http://host:port` of the target.
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
    /// Worker tasks (normally one per driver thread).
    pub workers: usize,
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("target URL `{0}` must look like http://host:port")]
    BadUrl(String),
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
    addr: SocketAddr,
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
    addr: SocketAddr,
    host: String,
    intervals: Arc<Intervals>,
    stage_rates: Vec<f64>,
    stage_secs: Vec<f64>,
}

impl Engine {
    pub async fn new(cfg: EngineConfig) -> Result<Engine, EngineError> {
        let host = cfg
            .base_url
            .strip_prefix("http://")
            .map(|r| r.split('/').next().unwrap_or(r).to_owned())
            .filter(|h| !h.is_empty())
            .ok_or_else(|| EngineError::BadUrl(cfg.base_url.clone()))?;
        let addr = tokio::net::lookup_host(&host)
            .await
            .map_err(|e| EngineError::Resolve(host.clone(), e))?
            .next()
            .ok_or_else(|| EngineError::BadUrl(cfg.base_url.clone()))?;
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
        Ok(Engine { cfg, addr, host, intervals, stage_rates, stage_secs })
    }

    /// Live counters of the measured window (requests, errors), updated about once a second.
    pub fn live(&self) -> Arc<Intervals> {
        self.intervals.clone()
    }

    /// Drive traffic from `t0` (warm-up first) until the stop condition or `stop` turns true.
    pub async fn run(self, t0: Instant, mut stop: watch::Receiver<bool>) -> Result<EngineOutput, EngineError> {
        let cfg = &self.cfg;
        let connections = cfg.schedule.connections();
        let measure_start = t0 + cfg.warmup;
        let end = match cfg.stop {
            Stop::Duration(d) => Some(measure_start + d),
            Stop::Interrupted => None,
        };
        let timetable = match &cfg.schedule {
            Schedule::Open { stages, .. } => Some(Timetable::new(cfg.warmup, stages, end.is_none())),
            Schedule::Closed { .. } => None,
        };
        let w = [cfg.mix.login, cfg.mix.api, cfg.mix.logout, cfg.mix.refresh, cfg.mix.revoke];
        let total: f64 = w.iter().sum();
        let mut cumulative_mix = [0.0; 5];
        let mut acc = 0.0;
        for (c, x) in cumulative_mix.iter_mut().zip(w) {
            acc += x / total;
            *c = acc;
        }
        let shared = Arc::new(Shared {
            addr: self.addr,
            host: HeaderValue::from_str(&self.host).map_err(|_| EngineError::BadUrl(cfg.base_url.clone()))?,
            timetable,
            connections,
            t0,
            measure_start,
            end,
            measured_secs: match cfg.stop {
                Stop::Duration(d) => Some(d.as_secs_f64().ceil().max(1.0) as u64),
                Stop::Interrupted => None,
            },
            timeout: cfg.timeout,
            cumulative_mix,
            revoked_fraction: cfg.revoked_fraction,
            tampered_fraction: cfg.tampered_fraction,
            admin_key: cfg.admin_key.as_deref().and_then(|k| HeaderValue::from_str(k).ok()),
            intervals: self.intervals.clone(),
            closed_loop: matches!(cfg.schedule, Schedule::Closed { .. }),
        });
        let workers = cfg.workers.clamp(1, connections);
        let mut per_worker: Vec<Vec<ConnState>> = (0..workers).map(|_| Vec::new()).collect();
        for c in 0..connections {
            let users = ConnUsers::new(c, connections, cfg.users, cfg.strategy, &self.host, c as u64 + 1);
            per_worker[c % workers].push(ConnState { index: c, seq: 0, sender: None, users });
        }
        let mut handles = Vec::new();
        for conns in per_worker {
            let shared = shared.clone();
            let stop = stop.clone();
            handles.push(tokio::spawn(worker(shared, conns, stop)));
        }
        let mut merged = Recorder::new();
        for h in handles {
            let r = h.await.map_err(|e| EngineError::Worker(e.to_string()))?;
            merged.merge(&r);
        }
        let interrupted = *stop.borrow_and_update();
        let now = Instant::now();
        let window_end = match end {
            Some(e) if !interrupted => e,
            _ => now,
        };
        let measured = window_end.saturating_duration_since(measure_start);
        let (intervals, stages) = self.intervals.finish_all(&self.stage_rates, &self.stage_secs);
        let target_rate_per_sec = match &cfg.schedule {
            Schedule::Open { stages, .. } => {
                let secs: f64 = stages.iter().map(|s| s.duration.as_secs_f64()).sum();
                let n: f64 = stages
                    .iter()
                    .map(|s| (s.from_rate_per_sec + s.rate_per_sec) / 2.0 * s.duration.as_secs_f64())
                    .sum();
                Some(if secs > 0.0 && end.is_some() { n / secs } else { stages[0].rate_per_sec })
            }
            Schedule::Closed { .. } => None,
        };
        Ok(EngineOutput { recorder: merged, measured, interrupted, intervals, stages, target_rate_per_sec })
    }
}

/// One connection and the users it serves.
struct ConnState {
    index: usize,
    /// Requests started on this connection (open loop: position in the timetable).
    seq: u64,
    sender: Option<SendRequest<Full<Bytes>>>,
    users: ConnUsers,
}

async fn worker(shared: Arc<Shared>, conns: Vec<ConnState>, stop: watch::Receiver<bool>) -> Recorder {
    let rec = Mutex::new(Recorder::new());
    {
        let mut futs: FuturesUnordered<_> =
            conns.into_iter().map(|c| connection_loop(&shared, c, &rec, stop.clone())).collect();
        while futs.next().await.is_some() {}
    }
    let mut r = rec.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    r.flush_interval(&shared.intervals);
    r
}

/// How a request ended on the wire.
enum Wire {
    Answer { status: StatusCode, set_cookie: Option<HeaderValue>, body: Bytes },
    Timeout,
    Connect,
    Protocol,
}

async fn connection_loop(shared: &Shared, mut st: ConnState, rec: &Mutex<Recorder>, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            break;
        }
        let now = Instant::now();
        let intended = match &shared.timetable {
            Some(tt) => {
                let n = st.seq * shared.connections as u64 + st.index as u64;
                match tt.offset(n) {
                    Some(off) => shared.t0 + off,
                    None => break,
                }
            }
            None => now,
        };
        st.seq += 1;
        if shared.end.is_some_and(|end| intended >= end) {
            break;
        }
        // tokio's timer rounds up to the next millisecond: wake up to 1 ms early rather than late.
        if intended > now + LATE_START {
            tokio::select! {
                () = tokio::time::sleep_until((intended - LATE_START).into()) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        let planned = st.users.plan(shared);
        let sent = Instant::now();
        let wire = tokio::select! {
            w = exchange(shared, &mut st.sender, planned.request(shared)) => w,
            _ = stop.wait_for(|s| *s) => break,
        };
        let done = Instant::now();
        let status = match &wire {
            Wire::Answer { status, .. } => Some(status.as_u16()),
            _ => None,
        };
        let outcome = st.users.settle(shared, &planned, &wire, done);
        let start = intended.min(sent);
        if start >= shared.measure_start {
            let latency_us = done.saturating_duration_since(start).as_micros() as u64;
            let service_us = done.saturating_duration_since(sent).as_micros() as u64;
            let mut second = done.saturating_duration_since(shared.measure_start).as_secs();
            if let Some(n) = shared.measured_secs {
                second = second.min(n - 1);
            }
            let Ok(mut r) = rec.lock() else { break };
            if !shared.closed_loop {
                let lag = sent.saturating_duration_since(intended);
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
            r.record(planned.op, outcome, latency_us, service_us, status, second, &shared.intervals);
        }
        if matches!(wire, Wire::Connect) && shared.closed_loop {
            // Do not spin on a refused port.
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(10)) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
    }
}

/// Send one request on the connection (opening it first if needed), read the whole answer.
async fn exchange(shared: &Shared, sender: &mut Option<SendRequest<Full<Bytes>>>, req: Request<Full<Bytes>>) -> Wire {
    match tokio::time::timeout(shared.timeout, exchange_inner(shared, sender, req)).await {
        Ok(w) => {
            if !matches!(w, Wire::Answer { .. }) {
                *sender = None;
            }
            w
        }
        Err(_) => {
            *sender = None;
            Wire::Timeout
        }
    }
}

async fn exchange_inner(
    shared: &Shared,
    sender: &mut Option<SendRequest<Full<Bytes>>>,
    req: Request<Full<Bytes>>,
) -> Wire {
    if sender.as_ref().is_some_and(|s| s.is_closed()) {
        *sender = None;
    }
    if sender.is_none() {
        match connect(shared.addr).await {
            Ok(s) => *sender = Some(s),
            Err(()) => return Wire::Connect,
        }
    }
    let Some(s) = sender.as_mut() else { return Wire::Connect };
    if s.ready().await.is_err() {
        // The server closed an idle keep-alive connection: reconnect once, not an error.
        match connect(shared.addr).await {
            Ok(fresh) => *s = fresh,
            Err(()) => return Wire::Connect,
        }
        if s.ready().await.is_err() {
            return Wire::Protocol;
        }
    }
    let resp = match s.send_request(req).await {
        Ok(r) => r,
        Err(_) => return Wire::Protocol,
    };
    let status = resp.status();
    let set_cookie = resp.headers().get(http::header::SET_COOKIE).cloned();
    match resp.into_body().collect().await {
        Ok(b) => Wire::Answer { status, set_cookie, body: b.to_bytes() },
        Err(_) => Wire::Protocol,
    }
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, ()> {
    let stream = TcpStream::connect(addr).await.map_err(|_| ())?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|_| ())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

impl Planned {
    fn request(&self, shared: &Shared) -> Request<Full<Bytes>> {
        let mut b =
            Request::builder().method(self.method.clone()).uri(self.uri.clone()).header(HOST, shared.host.clone());
        if let Some((name, value)) = &self.credential {
            b = b.header(name, value.clone());
        }
        if let Some(k) = &self.admin_key {
            b = b.header("x-admin-key", k.clone());
        }
        if !self.body.is_empty() {
            b = b.header(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        b.body(Full::new(self.body.clone())).unwrap_or_else(|_| Request::new(Full::new(Bytes::new())))
    }
}
