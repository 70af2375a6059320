//! Recording without per-request messages: each worker owns one histogram per operation (and per
//! outcome class for api), merged once at the end; per-second interval histograms are handed to a
//! shared [`Intervals`] once a second, which compacts finished seconds into a timeline point and,
//! per operation, a histogram sized to that second's largest value (tens of KB, not the 190 KB a
//! histogram spanning 1 µs .. 1 h takes), so memory grows slowly with the run length.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;

use crate::results::{Outcomes, StageResult, TimelinePoint};

/// Operations, in [`crate::results::OPERATIONS`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Login = 0,
    Api = 1,
    Logout = 2,
    Refresh = 3,
    Revoke = 4,
}

impl Op {
    pub const ALL: [Op; 5] = [Op::Login, Op::Api, Op::Logout, Op::Refresh, Op::Revoke];
    pub const fn name(self) -> &'static str {
        crate::results::OPERATIONS[self as usize]
    }
}

/// The kind of client a virtual user is, for a strategy serving two (`web+api`: browsers with the
/// session cookie, API clients with a bearer token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    Browser = 0,
    Api = 1,
}

impl ClientKind {
    pub const ALL: [ClientKind; 2] = [ClientKind::Browser, ClientKind::Api];
    /// The key of `latency_by_client_us` in report.json.
    pub const fn name(self) -> &'static str {
        match self {
            ClientKind::Browser => "browser",
            ClientKind::Api => "api",
        }
    }
}

/// Every request ends in exactly one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    ExpectedAllow = 0,
    ExpectedDeny = 1,
    UnexpectedAllow = 2,
    UnexpectedDeny = 3,
    Timeout = 4,
    ConnectError = 5,
    ProtocolError = 6,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::ExpectedAllow,
        Outcome::ExpectedDeny,
        Outcome::UnexpectedAllow,
        Outcome::UnexpectedDeny,
        Outcome::Timeout,
        Outcome::ConnectError,
        Outcome::ProtocolError,
    ];
    pub const fn name(self) -> &'static str {
        match self {
            Outcome::ExpectedAllow => "expected_allow",
            Outcome::ExpectedDeny => "expected_deny",
            Outcome::UnexpectedAllow => "unexpected_allow",
            Outcome::UnexpectedDeny => "unexpected_deny",
            Outcome::Timeout => "timeout",
            Outcome::ConnectError => "connect_error",
            Outcome::ProtocolError => "protocol_error",
        }
    }
    /// The request behaved as the driver expected (allowed or denied).
    pub const fn is_expected(self) -> bool {
        matches!(self, Outcome::ExpectedAllow | Outcome::ExpectedDeny)
    }
}

/// Largest latency a histogram tracks exactly: one hour, in µs. Anything longer is recorded as this.
pub const MAX_TRACKABLE_US: u64 = 3_600_000_000;

/// A new µs histogram, 1 µs .. 1 h, 3 significant digits.
///
/// The bounds are fixed up front on purpose: `saturating_record` on an auto-resizing histogram
/// (`Histogram::new(3)`, which starts at a 2 ms ceiling) clamps instead of growing, which silently
/// capped every latency at 2047 µs.
pub fn new_histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, MAX_TRACKABLE_US, 3) {
        Ok(h) => h,
        // Static, valid bounds: cannot fail.
        Err(e) => unreachable!("histogram bounds 1..{MAX_TRACKABLE_US} rejected: {e}"),
    }
}

/// Outcomes as counters.
pub fn outcomes_from(counts: &[u64; 7]) -> Outcomes {
    Outcomes {
        expected_allow: counts[0],
        expected_deny: counts[1],
        unexpected_allow: counts[2],
        unexpected_deny: counts[3],
        timeout: counts[4],
        connect_error: counts[5],
        protocol_error: counts[6],
    }
}

/// One operation's histograms and counters.
#[derive(Debug, Clone)]
pub struct OpStats {
    /// From the intended send time (open loop) / the send time (closed loop).
    pub latency: Histogram<u64>,
    /// From the actual send time.
    pub service: Histogram<u64>,
    pub outcomes: [u64; 7],
}

impl OpStats {
    fn new() -> Self {
        OpStats { latency: new_histogram(), service: new_histogram(), outcomes: [0; 7] }
    }
    fn merge(&mut self, other: &OpStats) {
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
        for (a, b) in self.outcomes.iter_mut().zip(other.outcomes) {
            *a += b;
        }
    }
}

/// What one worker measured (and, merged, the whole run).
#[derive(Debug, Clone)]
pub struct Recorder {
    pub ops: Vec<OpStats>,
    /// Api latency per outcome class (created on first use).
    pub api_by_outcome: Vec<Option<Histogram<u64>>>,
    /// Api latency per client kind (index = [`ClientKind`]), for strategies serving two; created on
    /// first use.
    pub api_by_client: Vec<Option<Histogram<u64>>>,
    /// `connect`, `timeout`, `protocol`, `status_<code>`, `unexpected_allow`.
    pub errors: BTreeMap<String, u64>,
    pub credential_bytes_sum: u64,
    pub header_bytes_sum: u64,
    /// Api requests whose bytes were summed.
    pub bytes_samples: u64,
    pub late_starts: u64,
    pub max_lag_us: u64,
    /// Successful logins (session/token records created in the store).
    pub logins_ok: u64,
    /// Bytes that crossed the driver's sockets in the measured window (after TLS), both ways, and
    /// the connections opened in it: the wire byte figures.
    pub wire: super::transport::WindowBytes,
    // Current interval (per second of the measured window).
    interval_index: Option<u64>,
    interval_ops: Vec<Histogram<u64>>,
    interval_requests: u64,
    interval_errors: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

/// One finished request, as a driver thread hands it to its recorder.
#[derive(Debug, Clone, Copy)]
pub struct Finished {
    pub op: Op,
    pub outcome: Outcome,
    /// From the intended send time (open loop: the schedule's, so coordinated omission is counted).
    pub latency_us: u64,
    /// From the moment the request was actually written.
    pub service_us: u64,
    /// The answer's status, when an answer came.
    pub status: Option<u16>,
    /// The kind of client that sent it, where the strategy serves two.
    pub client: Option<ClientKind>,
}

impl Recorder {
    pub fn new() -> Self {
        Recorder {
            ops: (0..5).map(|_| OpStats::new()).collect(),
            api_by_outcome: vec![None; 7],
            api_by_client: vec![None; ClientKind::ALL.len()],
            errors: BTreeMap::new(),
            credential_bytes_sum: 0,
            header_bytes_sum: 0,
            bytes_samples: 0,
            late_starts: 0,
            max_lag_us: 0,
            logins_ok: 0,
            wire: super::transport::WindowBytes::default(),
            interval_index: None,
            interval_ops: (0..5).map(|_| new_histogram()).collect(),
            interval_requests: 0,
            interval_errors: 0,
        }
    }

    /// Record one finished request. `interval` is the second of the measured window it finished in.
    pub fn record(&mut self, done: Finished, interval: u64, intervals: &Intervals) {
        let Finished { op, outcome, latency_us, service_us, status, client } = done;
        let s = &mut self.ops[op as usize];
        s.latency.saturating_record(latency_us.max(1));
        s.service.saturating_record(service_us.max(1));
        s.outcomes[outcome as usize] += 1;
        if op == Op::Api {
            self.api_by_outcome[outcome as usize]
                .get_or_insert_with(new_histogram)
                .saturating_record(latency_us.max(1));
            if let Some(c) = client {
                self.api_by_client[c as usize].get_or_insert_with(new_histogram).saturating_record(latency_us.max(1));
            }
        }
        if !outcome.is_expected() {
            // The class name is built on the stack; a key is allocated only the first time.
            let mut buf = *b"status_000";
            let class = match (outcome, status) {
                (Outcome::Timeout, _) => "timeout",
                (Outcome::ConnectError, _) => "connect",
                (Outcome::ProtocolError, _) => "protocol",
                (Outcome::UnexpectedAllow, _) => "unexpected_allow",
                (_, Some(code)) if (100..1000).contains(&code) => {
                    buf[7] = b'0' + (code / 100) as u8;
                    buf[8] = b'0' + (code / 10 % 10) as u8;
                    buf[9] = b'0' + (code % 10) as u8;
                    std::str::from_utf8(&buf).unwrap_or("protocol")
                }
                (_, _) => "protocol",
            };
            match self.errors.get_mut(class) {
                Some(n) => *n += 1,
                None => {
                    self.errors.insert(class.to_owned(), 1);
                }
            }
        }
        if self.interval_index != Some(interval) {
            self.flush_interval(intervals);
            self.interval_index = Some(interval);
        }
        self.interval_ops[op as usize].saturating_record(latency_us.max(1));
        self.interval_requests += 1;
        if !outcome.is_expected() {
            self.interval_errors += 1;
        }
    }

    /// Hand the current second to the shared aggregator.
    pub fn flush_interval(&mut self, intervals: &Intervals) {
        if let Some(idx) = self.interval_index.take() {
            if self.interval_requests > 0 {
                intervals.add(idx, &self.interval_ops, self.interval_requests, self.interval_errors);
            }
            for h in &mut self.interval_ops {
                h.reset();
            }
            self.interval_requests = 0;
            self.interval_errors = 0;
        }
    }

    pub fn merge(&mut self, other: &Recorder) {
        for (a, b) in self.ops.iter_mut().zip(&other.ops) {
            a.merge(b);
        }
        for (a, b) in self.api_by_outcome.iter_mut().zip(&other.api_by_outcome) {
            if let Some(b) = b {
                let _ = a.get_or_insert_with(new_histogram).add(b);
            }
        }
        for (a, b) in self.api_by_client.iter_mut().zip(&other.api_by_client) {
            if let Some(b) = b {
                let _ = a.get_or_insert_with(new_histogram).add(b);
            }
        }
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_insert(0) += v;
        }
        self.credential_bytes_sum += other.credential_bytes_sum;
        self.header_bytes_sum += other.header_bytes_sum;
        self.bytes_samples += other.bytes_samples;
        self.late_starts += other.late_starts;
        self.max_lag_us = self.max_lag_us.max(other.max_lag_us);
        self.logins_ok += other.logins_ok;
        self.wire.sent += other.wire.sent;
        self.wire.received += other.wire.received;
        self.wire.connects += other.wire.connects;
    }

    pub fn requests(&self) -> u64 {
        self.ops.iter().map(|s| s.outcomes.iter().sum::<u64>()).sum()
    }

    pub fn outcomes(&self) -> [u64; 7] {
        let mut o = [0; 7];
        for s in &self.ops {
            for (a, b) in o.iter_mut().zip(s.outcomes) {
                *a += b;
            }
        }
        o
    }
}

/// One finished second: its timeline point and each operation's histogram.
#[derive(Debug, Clone)]
pub struct FinishedInterval {
    pub index: u64,
    pub point: TimelinePoint,
    /// Per operation (index = [`Op`]), sized to the second's largest value ([`compact`]); `None`
    /// when the operation had no requests.
    pub ops: Vec<Option<Histogram<u64>>>,
}

/// A copy of `h` that holds the same counts in the fewest buckets its largest value needs.
pub fn compact(h: &Histogram<u64>) -> Histogram<u64> {
    let mut c = match Histogram::new_with_bounds(1, h.max().max(2), 3) {
        Ok(c) => c,
        // Bounds 1..>=2 with 3 digits are always valid.
        Err(e) => unreachable!("histogram bounds 1..{} rejected: {e}", h.max()),
    };
    for v in h.iter_recorded() {
        c.saturating_record_n(v.value_iterated_to(), v.count_at_value());
    }
    c
}

#[derive(Debug)]
struct Slot {
    ops: Vec<Histogram<u64>>,
    all: Histogram<u64>,
    requests: u64,
    errors: u64,
}

#[derive(Debug, Default)]
struct IntervalsInner {
    open: BTreeMap<u64, Slot>,
    finished: Vec<FinishedInterval>,
    /// Per stage: merged latency and counts.
    stages: Vec<(Histogram<u64>, u64, u64)>,
}

/// Shared per-second aggregation; workers add to it about once a second each.
#[derive(Debug)]
pub struct Intervals {
    inner: Mutex<IntervalsInner>,
    /// Seconds a slot stays open for late flushes before it is compacted.
    keep_open: u64,
    /// Stage index of each second (empty without stages).
    stage_of_second: Vec<usize>,
    /// Live counters for the progress display (measured window only).
    pub requests: AtomicU64,
    pub errors: AtomicU64,
}

impl Intervals {
    pub fn new(keep_open_s: u64, stage_of_second: Vec<usize>, stages: usize) -> Self {
        let inner = IntervalsInner {
            stages: (0..stages).map(|_| (new_histogram(), 0, 0)).collect(),
            ..IntervalsInner::default()
        };
        Intervals {
            inner: Mutex::new(inner),
            keep_open: keep_open_s.max(2),
            stage_of_second,
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    fn add(&self, index: u64, ops: &[Histogram<u64>], requests: u64, errors: u64) {
        self.requests.fetch_add(requests, Ordering::Relaxed);
        self.errors.fetch_add(errors, Ordering::Relaxed);
        let Ok(mut inner) = self.inner.lock() else { return };
        let slot = inner.open.entry(index).or_insert_with(|| Slot {
            ops: (0..5).map(|_| new_histogram()).collect(),
            all: new_histogram(),
            requests: 0,
            errors: 0,
        });
        for (a, b) in slot.ops.iter_mut().zip(ops) {
            if !b.is_empty() {
                let _ = a.add(b);
                let _ = slot.all.add(b);
            }
        }
        slot.requests += requests;
        slot.errors += errors;
        let newest = inner.open.keys().next_back().copied().unwrap_or(0);
        let cutoff = newest.saturating_sub(self.keep_open);
        let old: Vec<u64> = inner.open.range(..cutoff).map(|(k, _)| *k).collect();
        for k in old {
            if let Some(slot) = inner.open.remove(&k) {
                self.finish(&mut inner, k, slot);
            }
        }
    }

    fn finish(&self, inner: &mut IntervalsInner, index: u64, slot: Slot) {
        if let Some(&stage) = self.stage_of_second.get(index as usize)
            && let Some(st) = inner.stages.get_mut(stage)
        {
            let _ = st.0.add(&slot.all);
            st.1 += slot.requests;
            st.2 += slot.errors;
        }
        // A second re-opened by a very late flush is merged into the one already finished: its
        // per-operation histograms too, and its percentiles are taken again from the merged data.
        let slot = match inner.finished.iter().position(|f| f.index == index) {
            Some(i) => {
                let old = inner.finished.swap_remove(i);
                merge_finished(old, slot)
            }
            None => slot,
        };
        let point = TimelinePoint {
            t_s: index as f64,
            rps: slot.requests as f64,
            p50_us: slot.all.value_at_quantile(0.5),
            p99_us: slot.all.value_at_quantile(0.99),
            errors: slot.errors,
        };
        let ops = slot.ops.iter().map(|h| (!h.is_empty()).then(|| compact(h))).collect();
        inner.finished.push(FinishedInterval { index, point, ops });
    }

    /// Compact every open second and return them in order, with per-stage figures.
    /// `last_second_fraction` scales the rate of a partial final second.
    pub fn finish_all(&self, stage_rates: &[f64], stage_seconds: &[f64]) -> (Vec<FinishedInterval>, Vec<StageResult>) {
        let Ok(mut inner) = self.inner.lock() else { return (Vec::new(), Vec::new()) };
        let open = std::mem::take(&mut inner.open);
        for (k, slot) in open {
            self.finish(&mut inner, k, slot);
        }
        let mut finished = std::mem::take(&mut inner.finished);
        finished.sort_by_key(|f| f.index);
        let stages = inner
            .stages
            .iter()
            .enumerate()
            .map(|(i, (h, n, e))| StageResult {
                target_rate_per_sec: stage_rates.get(i).copied().unwrap_or(0.0),
                achieved_rps: stage_seconds.get(i).filter(|s| **s > 0.0).map_or(0.0, |s| *n as f64 / s),
                p50_us: h.value_at_quantile(0.5),
                p99_us: h.value_at_quantile(0.99),
                errors: *e,
            })
            .collect();
        (finished, stages)
    }
}

/// A finished second and a late slot for the same second, as one slot (histograms added; counts
/// summed). Only a flush later than the keep-open window takes this path.
fn merge_finished(old: FinishedInterval, mut slot: Slot) -> Slot {
    for (h, prev) in slot.ops.iter_mut().zip(&old.ops) {
        if let Some(prev) = prev {
            let _ = h.add(prev);
            let _ = slot.all.add(prev);
        }
    }
    // A timeline point covers one second: its rate is its request count.
    slot.requests += old.point.rps.round() as u64;
    slot.errors += old.point.errors;
    slot
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_latencies_are_recorded_not_clamped() {
        let mut h = new_histogram();
        for v in [1, 150, 2_500, 250_000, 30_000_000] {
            h.saturating_record(v);
        }
        assert_eq!(h.min(), 1);
        assert!(h.max() >= 30_000_000 && h.max() < 30_100_000, "max {}", h.max());
        assert!(h.value_at_quantile(0.6) >= 2_500, "p60 {}", h.value_at_quantile(0.6));
    }

    #[test]
    fn api_latency_is_kept_per_client_kind_where_tagged() {
        let iv = Intervals::new(2, Vec::new(), 0);
        let mut r = Recorder::new();
        for (op, client, latency_us) in [
            (Op::Api, Some(ClientKind::Browser), 100),
            (Op::Api, Some(ClientKind::Api), 300),
            (Op::Api, Some(ClientKind::Api), 500),
            (Op::Login, Some(ClientKind::Api), 9_000),
            (Op::Api, None, 9_000),
        ] {
            let outcome = Outcome::ExpectedAllow;
            r.record(Finished { op, outcome, latency_us, service_us: latency_us, status: Some(200), client }, 0, &iv);
        }
        let count = |c: ClientKind| r.api_by_client[c as usize].as_ref().map_or(0, Histogram::len);
        assert_eq!((count(ClientKind::Browser), count(ClientKind::Api)), (1, 2), "api requests only, by tag");
        let mut merged = Recorder::new();
        merged.merge(&r);
        merged.merge(&r);
        assert_eq!(merged.api_by_client[ClientKind::Api as usize].as_ref().map_or(0, Histogram::len), 4);
    }

    fn op_count(f: &FinishedInterval, op: Op) -> u64 {
        f.ops[op as usize].as_ref().map_or(0, Histogram::len)
    }

    #[test]
    fn late_flush_keeps_its_per_operation_histograms() {
        let iv = Intervals::new(2, Vec::new(), 0);
        // Second 0: two logins from a prompt worker.
        let mut prompt = Recorder::new();
        for latency_us in [100, 200] {
            prompt.record(
                Finished {
                    op: Op::Login,
                    outcome: Outcome::ExpectedAllow,
                    latency_us,
                    service_us: latency_us,
                    status: Some(200),
                    client: None,
                },
                0,
                &iv,
            );
        }
        prompt.flush_interval(&iv);
        // Second 5 arrives: second 0 is past the keep-open window and is compacted.
        let mut other = Recorder::new();
        other.record(
            Finished {
                op: Op::Api,
                outcome: Outcome::ExpectedAllow,
                latency_us: 50,
                service_us: 50,
                status: Some(200),
                client: None,
            },
            5,
            &iv,
        );
        other.flush_interval(&iv);
        // A stalled worker flushes second 0 late: three slow api requests, one of them an error.
        let mut late = Recorder::new();
        for (latency_us, outcome) in
            [(9_000, Outcome::ExpectedAllow), (9_000, Outcome::ExpectedAllow), (9_000, Outcome::Timeout)]
        {
            let done =
                Finished { op: Op::Api, outcome, latency_us, service_us: latency_us, status: None, client: None };
            late.record(done, 0, &iv);
        }
        late.flush_interval(&iv);
        let (finished, _) = iv.finish_all(&[], &[]);
        let zero: Vec<_> = finished.iter().filter(|f| f.index == 0).collect();
        assert_eq!(zero.len(), 1, "one timeline point per second");
        let zero = zero[0];
        assert_eq!(op_count(zero, Op::Login), 2, "the first flush's logins");
        assert_eq!(op_count(zero, Op::Api), 3, "the late flush's api requests are kept");
        assert_eq!(zero.point.rps, 5.0);
        assert_eq!(zero.point.errors, 1);
        assert!(zero.point.p99_us >= 8_990, "p99 {} from the merged second", zero.point.p99_us);
        assert!(zero.point.p50_us >= 8_990, "p50 {} from the merged second (3 of 5 at 9 ms)", zero.point.p50_us);
    }
}
