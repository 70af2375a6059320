//! The figure registry: every figure authbench reports, in one table. Each entry owns the figure's
//! key (its one spelling, used by thresholds, `compare`, `summary.csv` and the terminal table), its
//! label (table headers, plot axes), its unit, which direction is better, a one-paragraph
//! definition (what is measured, from where, over which window) and how it is computed from a
//! [`StrategyResult`]. Nothing else spells a figure's key, label or unit: adding a figure is one
//! entry here plus its computation, and [`markdown_section`] renders the table for the docs.
//!
//! Key scheme: lower snake case with the unit in the name where there is one (`_us`, `_ms`,
//! `_bytes`, `_rps`, `_per_sec`, `_pct`); a figure that belongs to one part of the result carries
//! that part as a dotted prefix, as in `report.json` (`store.`, `revocation_window_ms.`,
//! `errors.`, `outage.`, `rotation.`; `tls.` for `connections.tls`); figures of the traffic as a
//! whole (rates, outcome counts, bytes, target CPU, connections per request) have none. Per-operation figures are written `<operation>.<key>`
//! (`api.p99_us`). Older spellings still read, as [`Figure::aliases`], and are deprecated.

use std::fmt::Write as _;

use crate::report::fmt;
use crate::results::{LatencySummary, StrategyResult};

/// Which way a figure is better. `compare` judges regressions by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
    /// Neither direction is a regression (a count of what happened, an expected behaviour).
    Neither,
}

impl Better {
    /// The word the docs use.
    pub fn word(self) -> &'static str {
        match self {
            Better::Lower => "lower",
            Better::Higher => "higher",
            Better::Neither => "neither",
        }
    }
}

/// A figure's unit: how its values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Microseconds,
    /// Written in the largest readable unit (`850 ms`, `12.5 s`, `5.0 min`).
    Milliseconds,
    Bytes,
    RequestsPerSecond,
    Percent,
    /// A plain number (a count, a ratio such as store operations per request).
    Number,
}

impl Unit {
    /// The symbol written after a value; empty for plain numbers.
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Microseconds => "µs",
            Unit::Milliseconds => "ms",
            Unit::Bytes => "B",
            Unit::RequestsPerSecond => "req/s",
            Unit::Percent => "%",
            Unit::Number => "",
        }
    }

    /// `12.3 µs`, `5.0 min`, `not measured` for a null.
    pub fn format(self, value: Option<f64>) -> String {
        match (self, value) {
            (Unit::Milliseconds, Some(v)) if v.is_finite() => fmt::ms(v),
            (unit, v) => fmt::opt(v, unit.symbol()),
        }
    }
}

/// How a figure is read from one strategy's result.
#[derive(Clone, Copy)]
pub enum Compute {
    /// A figure of the strategy as a whole; `None` when the run did not measure it.
    Strategy(fn(&StrategyResult) -> Option<f64>),
    /// A figure of one operation (`api`, `login`, ...); `None` when the operation had no requests.
    Operation(fn(&StrategyResult, &str) -> Option<f64>),
}

/// One reported figure.
pub struct Figure {
    /// The one spelling: thresholds, `compare`, `summary.csv` and the docs use it.
    pub key: &'static str,
    /// Older spellings still accepted by thresholds (deprecated: use `key`).
    pub aliases: &'static [&'static str],
    /// Short human label for table headers and plot axes.
    pub label: &'static str,
    pub unit: Unit,
    pub better: Better,
    /// `compare` tracks it (a regression beyond the limit fails the compare).
    pub tracked: bool,
    /// What is measured, from where, over which window.
    pub definition: &'static str,
    pub compute: Compute,
    /// How the figure is written when a number with its unit is not enough (the revocation window
    /// says whether it is an observation or an upper bound); `None` for the value with its unit.
    pub words: Option<fn(&StrategyResult) -> String>,
}

impl Figure {
    /// The value for one strategy; `op` names the operation for per-operation figures and is
    /// ignored otherwise.
    pub fn value(&self, s: &StrategyResult, op: &str) -> Option<f64> {
        match self.compute {
            Compute::Strategy(f) => f(s),
            Compute::Operation(f) => f(s, op),
        }
        .filter(|v| v.is_finite())
    }

    /// True for figures read per operation (`<operation>.<key>`).
    pub fn per_operation(&self) -> bool {
        matches!(self.compute, Compute::Operation(_))
    }

    /// The value written with its unit (or in the figure's own words), or "not measured".
    pub fn format(&self, s: &StrategyResult, op: &str) -> String {
        match self.words {
            Some(words) => words(s),
            None => self.unit.format(self.value(s, op)),
        }
    }

    /// The label with the unit, for axes and column heads: `target CPU / req (µs)`.
    pub fn axis_label(&self) -> String {
        match self.unit.symbol() {
            "" => self.label.to_string(),
            u => format!("{} ({u})", self.label),
        }
    }

    /// The whole definition: per-operation percentiles share the sentence on where latency comes from.
    pub fn full_definition(&self) -> String {
        if self.per_operation() && !self.definition.ends_with('.') {
            format!("{}, {LATENCY_WINDOW}.", self.definition)
        } else {
            self.definition.to_string()
        }
    }

    /// True when `name` is this figure's key or one of its aliases.
    pub fn answers_to(&self, name: &str) -> bool {
        self.key == name || self.aliases.contains(&name)
    }
}

impl std::fmt::Debug for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Figure({})", self.key)
    }
}

impl PartialEq for Figure {
    fn eq(&self, other: &Figure) -> bool {
        self.key == other.key && self.per_operation() == other.per_operation()
    }
}

fn latency(s: &StrategyResult, op: &str) -> Option<LatencySummary> {
    s.latency_us.get(op).filter(|l| l.count > 0).copied()
}

fn service(s: &StrategyResult, op: &str) -> Option<LatencySummary> {
    s.service_time_us.get(op).filter(|l| l.count > 0).copied()
}

fn count(n: u64) -> Option<f64> {
    Some(n as f64)
}

const LATENCY_WINDOW: &str = "from the engine's HdrHistogram (microseconds, 3 significant digits) of that operation's \
                              requests over the measured window (after warm-up); in open loop counted from each \
                              request's intended send time, so a stall cannot hide (coordinated omission corrected)";

pub static COUNT: Figure = Figure {
    key: "count",
    aliases: &[],
    label: "requests",
    unit: Unit::Number,
    better: Better::Neither,
    tracked: false,
    definition: "Requests of this operation completed in the measured window, every outcome counted, from the \
                 engine's latency histogram.",
    compute: Compute::Operation(|s, op| latency(s, op).map(|l| l.count as f64)),
    words: None,
};

pub static MEAN_US: Figure = Figure {
    key: "mean_us",
    aliases: &[],
    label: "mean",
    unit: Unit::Microseconds,
    better: Better::Lower,
    tracked: false,
    definition: "Mean latency of the operation, read from the same histogram as the percentiles.",
    compute: Compute::Operation(|s, op| latency(s, op).map(|l| l.mean)),
    words: None,
};

pub static P50_US: Figure = Figure {
    key: "p50_us",
    aliases: &[],
    label: "p50",
    unit: Unit::Microseconds,
    better: Better::Lower,
    tracked: true,
    definition: "Median latency of the operation",
    compute: Compute::Operation(|s, op| latency(s, op).map(|l| l.p50 as f64)),
    words: None,
};

pub static P90_US: Figure = Figure {
    key: "p90_us",
    aliases: &[],
    label: "p90",
    unit: Unit::Microseconds,
    better: Better::Lower,
    tracked: false,
    definition: "90th percentile latency of the operation",
    compute: Compute::Operation(|s, op| latency(s, op).map(|l| l.p90 as f64)),
    words: None,
};

pub static P99_US: Figure = Figure {
    key: "p99_us",
    aliases: &[],
    label: "p99",
    unit: Unit::Microseconds,
    better: Better::Lower,
    tracked: true,
    definition: "99th percentile latency of the operation",
    compute: Compute::Operation(|s, op| latency(s, op).map(|l| l.p99 as f64)),
    words: None,
};

pub static P999_US: Figure = Figure {
    key: "p999_us",
    aliases: &[],
    label: "p99.9",
    unit: Unit::Microseconds,
    better: Better::Lower,
    tracked: true,
    definition: "99.9th percentile latency of the operation",
    compute: Compute::Operation(|s, op| latency(s, op).map(|l| l.p999 as f64)),
    words: None,
};

pub static MAX_US: Figure = Figure {
    key: "max_us",
    aliases: &[],
    label: "max",
    unit: Unit::Microseconds,
    better: Better::Lower,
    tracked: false,
    definition: "Largest latency of the operation",
    compute: Compute::Operation(|s, op| latency(s, op).map(|l| l.max as f64)),
    words: None,
};

pub static MIN_US: Figure = Figure {
    key: "min_us",
    aliases: &[],
    label: "min",
    unit: Unit::Microseconds,
    better: Better::Lower,
    tracked: false,
    definition: "Smallest latency of the operation",
    compute: Compute::Operation(|s, op| latency(s, op).map(|l| l.min as f64)),
    words: None,
};

pub static STDEV_US: Figure = Figure {
    key: "stdev_us",
    aliases: &[],
    label: "stdev",
    unit: Unit::Microseconds,
    better: Better::Lower,
    tracked: false,
    definition: "Standard deviation of the operation's latency",
    compute: Compute::Operation(|s, op| latency(s, op).map(|l| l.stdev)),
    words: None,
};

pub static SERVICE_P50_US: Figure = Figure {
    key: "service_p50_us",
    aliases: &[],
    label: "service p50",
    unit: Unit::Microseconds,
    better: Better::Lower,
    tracked: false,
    definition: "Median service time of the operation: latency counted from the actual send time instead of the \
                 intended one (uncorrected), from the engine's second histogram over the measured window. The gap \
                 to p50 is time requests waited behind the schedule.",
    compute: Compute::Operation(|s, op| service(s, op).map(|l| l.p50 as f64)),
    words: None,
};

pub static SERVICE_P99_US: Figure = Figure {
    key: "service_p99_us",
    aliases: &[],
    label: "service p99",
    unit: Unit::Microseconds,
    better: Better::Lower,
    tracked: false,
    definition: "99th percentile service time of the operation (from the actual send time, uncorrected), from the \
                 engine's service-time histogram over the measured window.",
    compute: Compute::Operation(|s, op| service(s, op).map(|l| l.p99 as f64)),
    words: None,
};

pub static REQUESTS: Figure = Figure {
    key: "requests",
    aliases: &[],
    label: "requests",
    unit: Unit::Number,
    better: Better::Neither,
    tracked: false,
    definition: "Requests the engine completed in the measured window, every operation and every outcome, counted \
                 by the driver.",
    compute: Compute::Strategy(|s| count(s.requests)),
    words: None,
};

pub static THROUGHPUT_RPS: Figure = Figure {
    key: "throughput_rps",
    aliases: &[],
    label: "throughput",
    unit: Unit::RequestsPerSecond,
    better: Better::Higher,
    tracked: true,
    definition: "Completed requests per second over the measured window (all operations, all outcomes): the \
                 driver's request count divided by the window's length.",
    compute: Compute::Strategy(|s| Some(s.throughput_rps)),
    words: None,
};

pub static SUCCESS_RPS: Figure = Figure {
    key: "success_rps",
    aliases: &[],
    label: "successes",
    unit: Unit::RequestsPerSecond,
    better: Better::Higher,
    tracked: false,
    definition: "Requests per second that ended in an expected outcome (expected allow or expected deny), over \
                 the measured window.",
    compute: Compute::Strategy(|s| Some(s.success_rps)),
    words: None,
};

pub static FAILURE_RPS: Figure = Figure {
    key: "failure_rps",
    aliases: &[],
    label: "failures",
    unit: Unit::RequestsPerSecond,
    better: Better::Lower,
    tracked: false,
    definition: "Requests per second that ended in any other outcome (unexpected allow or deny, timeout, \
                 connect or protocol error), over the measured window.",
    compute: Compute::Strategy(|s| Some(s.failure_rps)),
    words: None,
};

pub static ACHIEVED_RATE_PER_SEC: Figure = Figure {
    key: "achieved_rate_per_sec",
    aliases: &[],
    label: "achieved rate",
    unit: Unit::RequestsPerSecond,
    better: Better::Higher,
    tracked: false,
    definition: "Requests per second the driver actually sent over the measured window; in open loop, set against \
                 the scheduled rate to show whether the driver kept its schedule.",
    compute: Compute::Strategy(|s| Some(s.schedule.achieved_rate_per_sec)),
    words: None,
};

pub static LATE_STARTS: Figure = Figure {
    key: "late_starts",
    aliases: &[],
    label: "late sends",
    unit: Unit::Number,
    better: Better::Lower,
    tracked: false,
    definition: "Requests the open-loop driver sent more than 1 ms after their intended send time, over the \
                 measured window. Their latency still counts from the intended time; many late sends mean the \
                 driver was saturated.",
    compute: Compute::Strategy(|s| count(s.schedule.late_starts)),
    words: None,
};

pub static ERRORS_TOTAL: Figure = Figure {
    key: "errors.total",
    aliases: &["errors"],
    label: "errors",
    unit: Unit::Number,
    better: Better::Lower,
    tracked: false,
    definition: "Requests that got no usable answer or an error status, by class (connect, timeout, protocol, \
                 status code), counted by the driver over the measured window.",
    compute: Compute::Strategy(|s| count(s.errors.total)),
    words: None,
};

pub static EXPECTED_ALLOW: Figure = Figure {
    key: "expected_allow",
    aliases: &[],
    label: "expected allow",
    unit: Unit::Number,
    better: Better::Neither,
    tracked: false,
    definition: "Requests with a valid credential that the target accepted, as the driver classed them over the \
                 measured window.",
    compute: Compute::Strategy(|s| count(s.outcomes.expected_allow)),
    words: None,
};

pub static EXPECTED_DENY: Figure = Figure {
    key: "expected_deny",
    aliases: &[],
    label: "expected deny",
    unit: Unit::Number,
    better: Better::Neither,
    tracked: false,
    definition: "Requests with a missing, revoked or forged credential that the target refused, as the driver \
                 classed them over the measured window.",
    compute: Compute::Strategy(|s| count(s.outcomes.expected_deny)),
    words: None,
};

pub static UNEXPECTED_ALLOW: Figure = Figure {
    key: "unexpected_allow",
    aliases: &[],
    label: "unexpected allow",
    unit: Unit::Number,
    better: Better::Lower,
    tracked: false,
    definition: "Requests whose credential the driver knew to be revoked (outside the strategy's revocation \
                 window) or forged, and that the target accepted anyway: a security failure, not a performance \
                 figure. Counted by the driver over the measured window; must be 0.",
    compute: Compute::Strategy(|s| count(s.outcomes.unexpected_allow)),
    words: None,
};

pub static UNEXPECTED_DENY: Figure = Figure {
    key: "unexpected_deny",
    aliases: &[],
    label: "unexpected deny",
    unit: Unit::Number,
    better: Better::Lower,
    tracked: false,
    definition: "Requests with a valid credential that the target refused, counted by the driver over the \
                 measured window.",
    compute: Compute::Strategy(|s| count(s.outcomes.unexpected_deny)),
    words: None,
};

pub static TIMEOUT: Figure = Figure {
    key: "timeout",
    aliases: &[],
    label: "timeouts",
    unit: Unit::Number,
    better: Better::Lower,
    tracked: false,
    definition: "Requests that got no answer within the driver's request timeout, over the measured window.",
    compute: Compute::Strategy(|s| count(s.outcomes.timeout)),
    words: None,
};

pub static CONNECT_ERROR: Figure = Figure {
    key: "connect_error",
    aliases: &[],
    label: "connect errors",
    unit: Unit::Number,
    better: Better::Lower,
    tracked: false,
    definition: "Requests that could not be sent because the connection to the target failed, over the measured \
                 window.",
    compute: Compute::Strategy(|s| count(s.outcomes.connect_error)),
    words: None,
};

pub static PROTOCOL_ERROR: Figure = Figure {
    key: "protocol_error",
    aliases: &[],
    label: "protocol errors",
    unit: Unit::Number,
    better: Better::Lower,
    tracked: false,
    definition: "Requests whose answer was malformed or cut short (including a reset before the answer was \
                 complete), over the measured window.",
    compute: Compute::Strategy(|s| count(s.outcomes.protocol_error)),
    words: None,
};

pub static CREDENTIAL_BYTES: Figure = Figure {
    key: "credential_bytes",
    aliases: &[],
    label: "credential",
    unit: Unit::Bytes,
    better: Better::Lower,
    tracked: true,
    definition: "Mean bytes of the credential as sent on each api request (the cookie value or the bearer token), \
                 measured by the driver on the requests it wrote in the measured window.",
    compute: Compute::Strategy(|s| Some(s.credential_bytes)),
    words: None,
};

pub static REQUEST_HEADER_BYTES: Figure = Figure {
    key: "request_header_bytes",
    aliases: &[],
    label: "request head",
    unit: Unit::Bytes,
    better: Better::Lower,
    tracked: false,
    definition: "Mean bytes of the whole request head (request line and headers) of each api request, as the \
                 driver wrote it in the measured window.",
    compute: Compute::Strategy(|s| Some(s.request_header_bytes)),
    words: None,
};

pub static WIRE_SENT_BYTES_PER_REQUEST: Figure = Figure {
    key: "wire.sent_bytes_per_request",
    aliases: &[],
    label: "wire bytes sent / req",
    unit: Unit::Bytes,
    better: Better::Lower,
    tracked: false,
    definition: "Bytes the driver wrote to its sockets in the measured window (below TLS when TLS is on: records, \
                 HTTP/2 frames and HPACK-compressed headers included, connection set-up included), divided by the \
                 requests of the window (every operation of the mix). Counted at each connection's socket from its \
                 first request of the window to the end of the run, so requests in flight at the window's start \
                 may add a few bytes. Beside `request_header_bytes` it shows what header compression did.",
    compute: Compute::Strategy(|s| s.wire.as_ref().map(|w| w.sent_bytes_per_request)),
    words: None,
};

pub static WIRE_RECEIVED_BYTES_PER_REQUEST: Figure = Figure {
    key: "wire.received_bytes_per_request",
    aliases: &[],
    label: "wire bytes received / req",
    unit: Unit::Bytes,
    better: Better::Lower,
    tracked: false,
    definition: "Bytes the driver read from its sockets in the measured window (answers, below TLS), divided by the \
                 requests of the window; counted as `wire.sent_bytes_per_request` is.",
    compute: Compute::Strategy(|s| s.wire.as_ref().map(|w| w.received_bytes_per_request)),
    words: None,
};

pub static TARGET_CPU_US_PER_REQUEST: Figure = Figure {
    key: "target_cpu_us_per_request",
    aliases: &[],
    label: "target CPU / req",
    unit: Unit::Microseconds,
    better: Better::Lower,
    tracked: true,
    definition: "The target process's own CPU time (user + system of all its threads, from `/proc/<pid>/stat`) \
                 between the snapshots at the start and the end of the measured window, divided by the requests the \
                 target served in the window (its own /metrics count, the harness's probes included; the driver's \
                 count when that cannot be read). For a target the harness did not start (`--target URL`, split runs) \
                 the CPU is the target's own `authbench_process_cpu_seconds_total` from its /metrics (in a merged \
                 split run: from the first part's window start to the last part's window end); null when it does \
                 not report it.",
    compute: Compute::Strategy(|s| s.target_cpu_us_per_request),
    words: None,
};

pub static CONNECTIONS_PER_REQUEST: Figure = Figure {
    key: "connections_per_request",
    aliases: &[],
    label: "connections / req",
    unit: Unit::Number,
    better: Better::Neither,
    tracked: false,
    definition: "Connections the target accepted in the measured window (every transport; its own \
                 `authbench_connections_accepted_total` on /metrics, summed over instances, the harness's own \
                 reading at the window's end and any probes included) divided by the requests it served in the window \
                 (the denominator of `target_cpu_us_per_request`). About 1 / `requests_per_connection` when the \
                 driver closes its connections after that many requests, near 0 when it keeps them alive. Null \
                 when the target's counters were not read.",
    compute: Compute::Strategy(|s| {
        let c = s.connections.as_ref()?;
        (c.requests > 0).then(|| c.accepted as f64 / c.requests as f64)
    }),
    words: None,
};

/// A TLS figure in words where it has no number: `n/a (clear text)` for a target without TLS,
/// `n/a (none in the window)` when no handshake of the kind happened; else the value.
fn tls_text(s: &StrategyResult, f: &Figure) -> String {
    match (&s.connections, f.value(s, "")) {
        (Some(c), None) if c.tls.is_none() => "n/a (clear text)".to_string(),
        (Some(_), None) => "n/a (none in the window)".to_string(),
        (_, v) => f.unit.format(v),
    }
}

fn tls(s: &StrategyResult) -> Option<&crate::results::TlsHandshakes> {
    s.connections.as_ref()?.tls.as_ref()
}

pub static TLS_FULL_HANDSHAKE_CPU_US: Figure = Figure {
    key: "tls.full_handshake_cpu_us",
    aliases: &[],
    label: "full TLS handshake CPU",
    unit: Unit::Microseconds,
    better: Better::Lower,
    tracked: false,
    definition: "Target CPU per full TLS handshake (a new session: key exchange and the certificate signature): \
                 the CPU of the window's full handshakes divided by their count. CPU is the target thread's time \
                 inside the polls of each connection's TLS accept future (`CLOCK_THREAD_CPUTIME_ID`, \
                 `authbench_tls_handshake_cpu_seconds_total{kind=\"full\"}` on /metrics, summed over instances); the \
                 kernel's TCP work and the first request's decryption are not in it. n/a in clear text or when the \
                 window had no full handshake.",
    compute: Compute::Strategy(|s| {
        let t = tls(s)?;
        (t.full > 0).then(|| t.full_cpu_us / t.full as f64)
    }),
    words: Some(|s| tls_text(s, &TLS_FULL_HANDSHAKE_CPU_US)),
};

pub static TLS_RESUMED_HANDSHAKE_CPU_US: Figure = Figure {
    key: "tls.resumed_handshake_cpu_us",
    aliases: &[],
    label: "resumed TLS handshake CPU",
    unit: Unit::Microseconds,
    better: Better::Lower,
    tracked: false,
    definition: "Target CPU per resumed TLS handshake (the client offered a session ticket the target accepted: \
                 no certificate signature), measured as `tls.full_handshake_cpu_us` is, over the window's resumed \
                 handshakes. n/a in clear text or when none was resumed (`tls_resumption = false`, or connections \
                 kept alive).",
    compute: Compute::Strategy(|s| {
        let t = tls(s)?;
        (t.resumed > 0).then(|| t.resumed_cpu_us / t.resumed as f64)
    }),
    words: Some(|s| tls_text(s, &TLS_RESUMED_HANDSHAKE_CPU_US)),
};

pub static TLS_FULL_HANDSHAKES: Figure = Figure {
    key: "tls.full_handshakes",
    aliases: &[],
    label: "full TLS handshakes",
    unit: Unit::Number,
    better: Better::Neither,
    tracked: false,
    definition: "Full TLS handshakes the target completed in the measured window \
                 (`authbench_tls_handshakes_total{kind=\"full\"}`, summed over instances), the harness's own reading \
                 at the window's end (one per instance) included: how many handshakes `tls.full_handshake_cpu_us` \
                 averages. n/a in clear text.",
    compute: Compute::Strategy(|s| tls(s).map(|t| t.full as f64)),
    words: Some(|s| tls_text(s, &TLS_FULL_HANDSHAKES)),
};

pub static TLS_RESUMED_HANDSHAKES: Figure = Figure {
    key: "tls.resumed_handshakes",
    aliases: &[],
    label: "resumed TLS handshakes",
    unit: Unit::Number,
    better: Better::Neither,
    tracked: false,
    definition: "Resumed TLS handshakes the target completed in the measured window \
                 (`authbench_tls_handshakes_total{kind=\"resumed\"}`, summed over instances): how many \
                 `tls.resumed_handshake_cpu_us` averages. n/a in clear text.",
    compute: Compute::Strategy(|s| tls(s).map(|t| t.resumed as f64)),
    words: Some(|s| tls_text(s, &TLS_RESUMED_HANDSHAKES)),
};

pub static TLS_RESUMED_PCT: Figure = Figure {
    key: "tls.resumed_pct",
    aliases: &[],
    label: "TLS handshakes resumed",
    unit: Unit::Percent,
    better: Better::Neither,
    tracked: false,
    definition: "Share of the TLS handshakes the target completed in the measured window that resumed a session \
                 (`authbench_tls_handshakes_total{kind}`). n/a in clear text or without a handshake in the window.",
    compute: Compute::Strategy(|s| {
        let t = tls(s)?;
        let n = t.full + t.resumed;
        (n > 0).then(|| t.resumed as f64 * 100.0 / n as f64)
    }),
    words: Some(|s| tls_text(s, &TLS_RESUMED_PCT)),
};

pub static TLS_HANDSHAKE_CPU_US_PER_REQUEST: Figure = Figure {
    key: "tls.handshake_cpu_us_per_request",
    aliases: &[],
    label: "TLS handshake CPU / req",
    unit: Unit::Microseconds,
    better: Better::Lower,
    tracked: false,
    definition: "The CPU of every TLS handshake in the measured window (full, resumed and failed; as \
                 `tls.full_handshake_cpu_us` measures it) divided by the requests the target served in the window \
                 (the denominator of `target_cpu_us_per_request`): the TLS set-up each request paid for at this \
                 run's `requests_per_connection`. n/a in clear text.",
    compute: Compute::Strategy(|s| {
        let c = s.connections.as_ref()?;
        let t = c.tls.as_ref()?;
        (c.requests > 0).then(|| t.total_cpu_us() / c.requests as f64)
    }),
    words: Some(|s| tls_text(s, &TLS_HANDSHAKE_CPU_US_PER_REQUEST)),
};

pub static TLS_HANDSHAKE_CPU_PCT: Figure = Figure {
    key: "tls.handshake_cpu_pct",
    aliases: &[],
    label: "target CPU in TLS handshakes",
    unit: Unit::Percent,
    better: Better::Lower,
    tracked: false,
    definition: "`tls.handshake_cpu_us_per_request` as a share of `target_cpu_us_per_request`: how much of the \
                 target's CPU went into TLS handshakes rather than into serving (and authenticating) requests. \
                 n/a in clear text; not measured without target CPU.",
    compute: Compute::Strategy(|s| {
        let per_request = TLS_HANDSHAKE_CPU_US_PER_REQUEST.value(s, "")?;
        let cpu = s.target_cpu_us_per_request.filter(|c| *c > 0.0)?;
        Some(per_request * 100.0 / cpu)
    }),
    words: Some(|s| tls_text(s, &TLS_HANDSHAKE_CPU_PCT)),
};

pub static STORE_OPS_PER_REQUEST: Figure = Figure {
    key: "store.ops_per_request",
    aliases: &["store_ops_per_request"],
    label: "store ops / req",
    unit: Unit::Number,
    better: Better::Lower,
    tracked: true,
    definition: "Commands the store executed between the snapshots at the start and the end of the measured window, \
                 read from the store itself (Redis `INFO commandstats`, or the memory store's counters in the \
                 target's /metrics) with the harness's own snapshot commands left out, divided by the requests the \
                 target served in the window (its own /metrics count, the harness's probes included; the driver's \
                 count when that cannot be read). Null when the store could not be observed.",
    compute: Compute::Strategy(|s| s.store.ops_per_request),
    words: None,
};

pub static STORE_CPU_US_PER_REQUEST: Figure = Figure {
    key: "store.cpu_us_per_request",
    aliases: &[],
    label: "store CPU / req",
    unit: Unit::Microseconds,
    better: Better::Lower,
    tracked: false,
    definition: "The store process's CPU time (user + system, Redis `INFO cpu`) over the measured window, less the \
                 time spent in the harness's own snapshot commands, divided by the requests the target served in the \
                 window (its own /metrics count, the harness's probes included; the driver's count when that cannot \
                 be read). Null for the in-process memory store and external targets.",
    compute: Compute::Strategy(|s| s.store.cpu_us_per_request),
    words: None,
};

pub static STORE_NET_BYTES_PER_REQUEST: Figure = Figure {
    key: "store.net_bytes_per_request",
    aliases: &[],
    label: "store net / req",
    unit: Unit::Bytes,
    better: Better::Lower,
    tracked: false,
    definition: "Bytes the store received and sent over all its clients (Redis `INFO stats` network counters) over \
                 the measured window, less the snapshots' own, divided by the requests the target served in the \
                 window (its own /metrics count, the harness's probes included; the driver's count when that cannot \
                 be read).",
    compute: Compute::Strategy(|s| s.store.net_bytes_per_request),
    words: None,
};

pub static STORE_MEMORY_BYTES_PER_SESSION: Figure = Figure {
    key: "store.memory_bytes_per_session",
    aliases: &[],
    label: "store memory / session",
    unit: Unit::Bytes,
    better: Better::Lower,
    tracked: false,
    definition: "Growth of the store's used memory (Redis `used_memory`) over the measured window divided by the \
                 session or token records created in it; negative when records expired faster than they were \
                 created. Null when no records were created or the store could not be observed.",
    compute: Compute::Strategy(|s| s.store.memory_bytes_per_session),
    words: None,
};

pub static AUTH_PRIMARY_PATH_PCT: Figure = Figure {
    key: "auth.primary_path_pct",
    aliases: &[],
    label: "api on first path",
    unit: Unit::Percent,
    better: Better::Neither,
    tracked: false,
    definition: "For a strategy that can verify an api request more than one way (a hybrid: the token where the \
                 client has one, else the session lookup; web+api: a browser's session cookie, else an API client's \
                 bearer token), the share of the api requests verified in the measured \
                 window that took the first way its profile names, from the target's own \
                 `authbench_auth_path_total` counters. Null for strategies with one way.",
    compute: Compute::Strategy(primary_path_pct),
    words: None,
};

fn primary_path_pct(s: &StrategyResult) -> Option<f64> {
    let kind = crate::targets::config::StrategyKind::from_name(&s.strategy)?;
    let first = kind.profile().auth_paths.first()?;
    let total: u64 = s.auth_paths.values().sum();
    (total > 0).then(|| s.auth_paths.get(*first).copied().unwrap_or(0) as f64 * 100.0 / total as f64)
}

/// Definition shared by the per-population latency figures.
const BY_CLIENT_DEFINITION: &str = "For a strategy serving browsers and API clients (`web+api`), the api latency of \
                                    the requests one population sent (browsers: the `sid` cookie; API clients: a \
                                    bearer token), from the driver's histogram of that population's api requests \
                                    over the measured window (every outcome, latency from the intended send time). \
                                    Null for other strategies and for a population the variant did not have \
                                    (`api_client_fraction` 0 or 1).";

pub static BROWSER_API_P50_US: Figure = Figure {
    key: "clients.browser.api_p50_us",
    aliases: &[],
    label: "browser api p50",
    unit: Unit::Microseconds,
    better: Better::Lower,
    tracked: false,
    definition: BY_CLIENT_DEFINITION,
    compute: Compute::Strategy(|s| client_latency(s, "browser", |l| l.p50)),
    words: None,
};

pub static BROWSER_API_P99_US: Figure = Figure {
    key: "clients.browser.api_p99_us",
    aliases: &[],
    label: "browser api p99",
    unit: Unit::Microseconds,
    better: Better::Lower,
    tracked: false,
    definition: BY_CLIENT_DEFINITION,
    compute: Compute::Strategy(|s| client_latency(s, "browser", |l| l.p99)),
    words: None,
};

pub static API_CLIENT_API_P50_US: Figure = Figure {
    key: "clients.api.api_p50_us",
    aliases: &[],
    label: "API-client api p50",
    unit: Unit::Microseconds,
    better: Better::Lower,
    tracked: false,
    definition: BY_CLIENT_DEFINITION,
    compute: Compute::Strategy(|s| client_latency(s, "api", |l| l.p50)),
    words: None,
};

pub static API_CLIENT_API_P99_US: Figure = Figure {
    key: "clients.api.api_p99_us",
    aliases: &[],
    label: "API-client api p99",
    unit: Unit::Microseconds,
    better: Better::Lower,
    tracked: false,
    definition: BY_CLIENT_DEFINITION,
    compute: Compute::Strategy(|s| client_latency(s, "api", |l| l.p99)),
    words: None,
};

/// One percentile of population `client`'s api latency, when it sent any.
fn client_latency(s: &StrategyResult, client: &str, pick: fn(&LatencySummary) -> u64) -> Option<f64> {
    s.latency_by_client_us.get(client).filter(|l| l.count > 0).map(|l| pick(l) as f64)
}

pub static CACHE_HIT_PCT: Figure = Figure {
    key: "cache.hit_pct",
    aliases: &[],
    label: "cache hits",
    unit: Unit::Percent,
    better: Better::Higher,
    tracked: false,
    definition: "For a cached strategy (`session-cached`, `jwt-denylist-cached`), the share of its per-request key \
                 lookups in the measured window answered from the in-process cache: hits / (hits + misses + \
                 bypasses), a bypass being a lookup sent to the store because the cache was not trusted at that \
                 moment. From the targets' own `authbench_cache_events_total` counters, summed over instances. \
                 Null for other strategies and where the cache was not read (split runs, stores without \
                 invalidation).",
    compute: Compute::Strategy(cache_hit_pct),
    words: None,
};

pub static CACHE_STORE_READS_PER_API_REQUEST: Figure = Figure {
    key: "cache.store_reads_per_api_request",
    aliases: &[],
    label: "api store reads / api req",
    unit: Unit::Number,
    better: Better::Lower,
    tracked: false,
    definition: "For a cached strategy, an upper bound on the store commands its api check sent per api request \
                 in the measured window: lookups the cache did not answer (misses and bypasses, from the targets' \
                 `authbench_cache_events_total`, summed over instances) divided by the api requests the driver \
                 sent. Each such lookup sends at most one command (a request whose two keys both miss sends one \
                 `MGET`, counted twice here), and the probes' lookups are counted but not their requests: so the \
                 true figure is at most this. Null for other strategies and where the cache was not read.",
    compute: Compute::Strategy(cache_store_reads_per_api_request),
    words: None,
};

fn cache_store_reads_per_api_request(s: &StrategyResult) -> Option<f64> {
    let c = s.cache.as_ref()?;
    let n = |e: &str| c.events.get(e).copied().unwrap_or(0) as f64;
    let api = s.latency_us.get("api").map(|l| l.count).filter(|n| *n > 0)? as f64;
    Some((n("miss") + n("bypass")) / api)
}

fn cache_hit_pct(s: &StrategyResult) -> Option<f64> {
    let c = s.cache.as_ref()?;
    let n = |e: &str| c.events.get(e).copied().unwrap_or(0) as f64;
    let lookups = n("hit") + n("miss") + n("bypass");
    (lookups > 0.0).then(|| n("hit") * 100.0 / lookups)
}

pub static CACHE_BYTES_PER_ENTRY: Figure = Figure {
    key: "cache.bytes_per_entry",
    aliases: &[],
    label: "cache memory / entry",
    unit: Unit::Bytes,
    better: Better::Lower,
    tracked: false,
    definition: "A cached strategy's in-process cache memory per entry at the end of the measured window: the bytes \
                 its structures hold (every hash-map and eviction-queue slot allocated, used or not, plus each \
                 entry's key and value allocations; the allocator's own overhead not included), as the target \
                 accounts them in `authbench_cache_size{what=\"bytes\"}`, divided by the entries it held. Summed \
                 over instances before dividing. Null when the cache was empty or not read.",
    compute: Compute::Strategy(|s| {
        let c = s.cache.as_ref()?;
        (c.entries > 0).then(|| c.accounted_bytes as f64 / c.entries as f64)
    }),
    words: None,
};

pub static STORE_IN_FLIGHT_MEAN: Figure = Figure {
    key: "store.in_flight_mean",
    aliases: &[],
    label: "store ops in flight",
    unit: Unit::Number,
    better: Better::Higher,
    tracked: false,
    definition: "Mean number of store operations a target had in flight when one started (itself included), \
                 from its `authbench_store_in_flight_at_start_total` over its store operations in the measured \
                 window, summed over instances: the concurrency each store connection worked at, on which a \
                 store operation's client CPU depends (more in flight, more commands per socket write). Null \
                 when the targets issued no store operation.",
    compute: Compute::Strategy(|s| s.store.in_flight_mean),
    words: None,
};

pub static CACHE_FLUSHES: Figure = Figure {
    key: "cache.flushes",
    aliases: &[],
    label: "cache flushes",
    unit: Unit::Number,
    better: Better::Lower,
    tracked: false,
    definition: "Times a cached strategy's instances dropped their whole cache in the measured window because \
                 they could no longer trust it (invalidation link lost, reconnected or lagging, a lease that ran \
                 out) or regained trust, from `authbench_cache_events_total{event=\"flush\"}`, summed over \
                 instances. Null for strategies without a cache.",
    compute: Compute::Strategy(|s| s.cache.as_ref().map(|c| c.events.get("flush").copied().unwrap_or(0) as f64)),
    words: None,
};

pub static REVOCATION_WINDOW_MS_P50: Figure = Figure {
    key: "revocation_window_ms.p50",
    aliases: &[],
    label: "revocation window p50",
    unit: Unit::Milliseconds,
    better: Better::Lower,
    tracked: false,
    definition: "Median, over the revocation probes, of how long a logged-out or revoked credential was still \
                 accepted.",
    compute: Compute::Strategy(|s| s.revocation_window_ms.p50),
    words: None,
};

pub static REVOCATION_WINDOW_MS_MAX: Figure = Figure {
    key: "revocation_window_ms.max",
    aliases: &["revocation_window_ms_max"],
    label: "revocation window",
    unit: Unit::Milliseconds,
    better: Better::Lower,
    tracked: false,
    definition: "How long a logged-out or revoked credential was still accepted: probes log in, revoke (logout or \
                 revoke-user) and keep sending the old credential until it is refused; the largest window over \
                 the probes. When a credential was still accepted when probing ended, the value is an upper bound \
                 read from the token's `exp` plus the target's leeway, and is printed as `≤ …` with what was \
                 observed beside it. With several instances (`instances = N`) each probe logs in and revokes \
                 through one instance and replays the credential on every other, and its window lasts until the \
                 last of them refused it: the cross-instance revocation window.",
    compute: Compute::Strategy(|s| s.revocation_window_ms.max),
    words: Some(revocation_window_text),
};

pub static REVOCATION_WINDOW_MS_OBSERVED_MAX: Figure = Figure {
    key: "revocation_window_ms.observed_max",
    aliases: &[],
    label: "revocation window observed",
    unit: Unit::Milliseconds,
    better: Better::Lower,
    tracked: false,
    definition: "The longest window the revocation probes actually observed (the credential was seen accepted that \
                 long after the revocation), whether or not it was refused before probing ended.",
    compute: Compute::Strategy(|s| s.revocation_window_ms.observed_max),
    words: None,
};

pub static REVOCATION_WINDOW_MS_PROBES: Figure = Figure {
    key: "revocation_window_ms.probes",
    aliases: &[],
    label: "revocation probes",
    unit: Unit::Number,
    better: Better::Neither,
    tracked: false,
    definition: "Revocation probes run for the strategy (each one login, one revocation and the polling after it).",
    compute: Compute::Strategy(|s| count(s.revocation_window_ms.probes)),
    words: None,
};

fn outage_ok_pct(s: &StrategyResult) -> Option<f64> {
    let o = s.outage.as_ref()?;
    let total: u64 = o.during.values().sum();
    (total > 0).then(|| 100.0 * o.during.get("200").copied().unwrap_or(0) as f64 / total as f64)
}

pub static OUTAGE_OK_DURING_PCT: Figure = Figure {
    key: "outage.ok_during_pct",
    aliases: &[],
    label: "answered 200 during store outage",
    unit: Unit::Percent,
    better: Better::Neither,
    tracked: false,
    definition: "Share of the availability prober's answers (one valid credential polling `GET /api/resource` \
                 about every 10 ms) sent during an injected store outage that were 200. Null when the run \
                 injected no outage. 100 % means the strategy stayed up; 0 % that it failed closed.",
    compute: Compute::Strategy(outage_ok_pct),
    words: None,
};

pub static OUTAGE_FIRST_FAILURE_MS: Figure = Figure {
    key: "outage.first_failure_ms",
    aliases: &[],
    label: "first failure after outage start",
    unit: Unit::Milliseconds,
    better: Better::Neither,
    tracked: false,
    definition: "From the start of the injected store outage to the first prober answer that was not 200 (it \
                 includes the target's store timeout). Null when no answer failed or no outage was injected.",
    compute: Compute::Strategy(|s| s.outage.as_ref()?.first_failure_ms),
    words: None,
};

pub static OUTAGE_RECOVERY_MS: Figure = Figure {
    key: "outage.recovery_ms",
    aliases: &[],
    label: "recovery after outage end",
    unit: Unit::Milliseconds,
    better: Better::Lower,
    tracked: false,
    definition: "From the end of the injected store outage to the prober's first 200 again. Null when no outage \
                 was injected or no 200 came before the window ended.",
    compute: Compute::Strategy(|s| s.outage.as_ref()?.recovery_ms),
    words: None,
};

pub static OUTAGE_REVOKED_ALLOWED_DURING: Figure = Figure {
    key: "outage.revoked_allowed_during",
    aliases: &[],
    label: "revoked accepted during outage",
    unit: Unit::Number,
    better: Better::Lower,
    tracked: false,
    definition: "Answers 200 to a revoked credential the prober polled beside the valid one during the outage: \
                 the security cost of failing open. Null when not probed or no outage was injected.",
    compute: Compute::Strategy(|s| s.outage.as_ref()?.revoked_allowed_during.map(|n| n as f64)),
    words: None,
};

pub static FAILOVER_TIME_MS: Figure = Figure {
    key: "failover.time_ms",
    aliases: &[],
    label: "failover as requests saw it",
    unit: Unit::Milliseconds,
    better: Better::Lower,
    tracked: false,
    definition: "`[store.failover]`: from the failover poller's first failed answer after the primary was killed to \
                 its first round of 200s after it (valid credentials on `GET /api/resource` about every 10 ms: one, six \
                 on a cluster; the target finds the primary the Sentinels, or the cluster, promoted by itself). Null when no answer failed (the api does not use \
                 the store) or no failover was injected.",
    compute: Compute::Strategy(|s| s.failover.as_ref()?.failover_ms),
    words: None,
};

pub static FAILOVER_PROMOTED_AFTER_MS: Figure = Figure {
    key: "failover.promoted_after_ms",
    aliases: &[],
    label: "new primary named after",
    unit: Unit::Milliseconds,
    better: Better::Lower,
    tracked: false,
    definition: "From the kill of the primary to the first time a Sentinel named another primary \
                 (`SENTINEL GET-MASTER-ADDR-BY-NAME`, polled every 20 ms), or a surviving cluster master's \
                 `CLUSTER NODES` named another master of the killed one's slots. Null when none did within 15 s \
                 (or, a cluster master without replicas, none could).",
    compute: Compute::Strategy(|s| s.failover.as_ref()?.promoted_after_ms),
    words: None,
};

pub static FAILOVER_ERRORS: Figure = Figure {
    key: "failover.errors",
    aliases: &[],
    label: "errors in the failover window",
    unit: Unit::Number,
    better: Better::Lower,
    tracked: false,
    definition: "Requests of the traffic in a measured window holding a failover that did not end as expected \
                 (errors, 503s, unexpected denies), counted by the driver: the failover is the only fault injected.",
    compute: Compute::Strategy(|s| s.failover.as_ref().map(|f| f.errors_in_window as f64)),
    words: None,
};

pub static FAILOVER_ERRORS_PCT: Figure = Figure {
    key: "failover.errors_pct",
    aliases: &[],
    label: "share of requests failed in the failover window",
    unit: Unit::Percent,
    better: Better::Lower,
    tracked: false,
    definition: "`failover.errors` as a share of the traffic's requests over the measured window. For a Redis \
                 Cluster master killed with no replica (a partial outage) this is what the dead master's slots cost \
                 the traffic. Null without a failover or without requests.",
    compute: Compute::Strategy(|s| {
        let f = s.failover.as_ref()?;
        (s.requests > 0).then(|| f.errors_in_window as f64 * 100.0 / s.requests as f64)
    }),
    words: None,
};

pub static FAILOVER_REVOCATIONS_LOST: Figure = Figure {
    key: "failover.revocations_lost",
    aliases: &[],
    label: "revocations the failover forgot",
    unit: Unit::Number,
    better: Better::Lower,
    tracked: false,
    definition: "Revocations (logout, revoke-user) made in the lead before the kill and answered 200, whose old \
                 credential (or refresh token) was accepted again when replayed after the failover: each an \
                 unexpected allow. Null for a strategy with no revocation a store could forget, or without a failover.",
    compute: Compute::Strategy(|s| s.failover.as_ref()?.revocations_lost.map(|n| n as f64)),
    words: None,
};

pub static FAILOVER_SESSIONS_LOST: Figure = Figure {
    key: "failover.sessions_lost",
    aliases: &[],
    label: "sessions the failover forgot",
    unit: Unit::Number,
    better: Better::Lower,
    tracked: false,
    definition: "Logins made in the lead before the kill and answered 200 whose credential was refused (401) when \
                 replayed after the failover: the session or refresh family was lost. Null as for revocations.",
    compute: Compute::Strategy(|s| s.failover.as_ref()?.sessions_lost.map(|n| n as f64)),
    words: None,
};

pub static ROTATION_OLD_TOKEN_REJECTED_AFTER_MS: Figure = Figure {
    key: "rotation.old_token_rejected_after_ms",
    aliases: &[],
    label: "old token rejected after rotation",
    unit: Unit::Milliseconds,
    better: Better::Neither,
    tracked: false,
    definition: "From a signing-key rotation's answer to the send time of the first 401 for a token issued before \
                 it (the mass logout). Null when no rotation was run or old tokens were still accepted when the \
                 window ended.",
    compute: Compute::Strategy(|s| s.rotation.as_ref()?.old_token_rejected_after_ms),
    words: None,
};

pub static ROTATION_LOGINS_PEAK_PER_S_AFTER: Figure = Figure {
    key: "rotation.logins_peak_per_s_after",
    aliases: &[],
    label: "peak logins/s after rotation",
    unit: Unit::Number,
    better: Better::Lower,
    tracked: false,
    definition: "Most logins in one second of the measured window after a signing-key rotation (the re-login \
                 storm), counted by the driver. Null when no rotation was run.",
    compute: Compute::Strategy(|s| s.rotation.as_ref()?.logins_peak_per_s_after.map(|n| n as f64)),
    words: None,
};

pub static CAPACITY_MAX_RATE_PER_SEC: Figure = Figure {
    key: "capacity.max_rate_meeting_objective_per_sec",
    aliases: &[],
    label: "highest rate meeting objective",
    unit: Unit::RequestsPerSecond,
    better: Better::Higher,
    tracked: false,
    definition: "The breaking point: target rate of the highest open-loop rate stage, of those before the first \
                 sustained miss of the scenario's `[capacity]` objective (a missed stage whose next, higher stage \
                 missed too, or a miss at the ladder's top; a lone missed stage is listed as transient), whose p99 \
                 (all of the stage's requests, from the engine's per-stage histogram) was at or below the \
                 objective, whose error share was at or below its limit and which achieved at least 95 % of its \
                 target rate. Null without a `[capacity]` objective and a rate ladder, or when the first stage \
                 already missed it for good.",
    compute: Compute::Strategy(|s| s.capacity.as_ref()?.max_rate_meeting_objective_per_sec),
    words: None,
};

pub static CAPACITY_KNEE_RATE_PER_SEC: Figure = Figure {
    key: "capacity.knee_rate_per_sec",
    aliases: &[],
    label: "knee",
    unit: Unit::RequestsPerSecond,
    better: Better::Higher,
    tracked: false,
    definition: "Target rate of the first rate stage past the knee of the latency-vs-rate curve (and followed by \
                 another past it: a lone stall is not the knee): its p99 (all requests of the stage) above twice the \
                 lowest-rate stage's, or its achieved rate below 95 % of its target. Null when no stage was past it \
                 or the run had no `[capacity]` objective.",
    compute: Compute::Strategy(|s| s.capacity.as_ref()?.knee_rate_per_sec),
    words: None,
};

pub static USL_SIGMA: Figure = Figure {
    key: "usl.sigma",
    aliases: &[],
    label: "USL contention σ",
    unit: Unit::Number,
    better: Better::Lower,
    tracked: false,
    definition: "Contention coefficient of the Universal Scalability Law X(N) = λN / (1 + σ(N−1) + κN(N−1)), fitted \
                 by least squares to the closed-loop throughput of a `matrix.connections` sweep (N = connections); \
                 the same on every variant of the sweep. Null outside such a sweep or with fewer than 3 points.",
    compute: Compute::Strategy(|s| s.usl.as_ref()?.sigma),
    words: None,
};

pub static USL_KAPPA: Figure = Figure {
    key: "usl.kappa",
    aliases: &[],
    label: "USL coherency κ",
    unit: Unit::Number,
    better: Better::Lower,
    tracked: false,
    definition: "Coherency (crosstalk) coefficient κ of the same USL fit: what makes throughput fall past the peak.",
    compute: Compute::Strategy(|s| s.usl.as_ref()?.kappa),
    words: None,
};

pub static USL_LAMBDA_RPS: Figure = Figure {
    key: "usl.lambda_rps",
    aliases: &[],
    label: "USL λ",
    unit: Unit::RequestsPerSecond,
    better: Better::Higher,
    tracked: false,
    definition: "λ of the same USL fit: the throughput of one connection without contention or coherency cost.",
    compute: Compute::Strategy(|s| s.usl.as_ref()?.lambda_rps),
    words: None,
};

pub static USL_PEAK_CONNECTIONS: Figure = Figure {
    key: "usl.peak_connections",
    aliases: &[],
    label: "USL peak N*",
    unit: Unit::Number,
    better: Better::Neither,
    tracked: false,
    definition: "The concurrency of peak throughput the USL fit predicts, N* = sqrt((1 − σ)/κ). Null when κ = 0 \
                 (throughput never turns down within the model) or there is no fit.",
    compute: Compute::Strategy(|s| s.usl.as_ref()?.peak_connections),
    words: None,
};

pub static USL_PEAK_THROUGHPUT_RPS: Figure = Figure {
    key: "usl.peak_throughput_rps",
    aliases: &[],
    label: "USL peak X(N*)",
    unit: Unit::RequestsPerSecond,
    better: Better::Higher,
    tracked: false,
    definition: "The peak throughput the USL fit predicts, X(N*). Null without a peak.",
    compute: Compute::Strategy(|s| s.usl.as_ref()?.peak_throughput_rps),
    words: None,
};

pub static USL_R_SQUARED: Figure = Figure {
    key: "usl.r_squared",
    aliases: &[],
    label: "USL fit R²",
    unit: Unit::Number,
    better: Better::Higher,
    tracked: false,
    definition: "R² = 1 − SSE/SST of the USL fit over the sweep's measured throughputs. Below 0.9, or with fewer \
                 than 4 points, the report calls the fit poor and its coefficients are not to be used.",
    compute: Compute::Strategy(|s| s.usl.as_ref()?.r_squared),
    words: None,
};

/// Every figure, per-operation ones first, in the order the docs list them.
pub static ALL: [&Figure; 76] = [
    &COUNT,
    &MEAN_US,
    &P50_US,
    &P90_US,
    &P99_US,
    &P999_US,
    &MAX_US,
    &MIN_US,
    &STDEV_US,
    &SERVICE_P50_US,
    &SERVICE_P99_US,
    &REQUESTS,
    &THROUGHPUT_RPS,
    &SUCCESS_RPS,
    &FAILURE_RPS,
    &ACHIEVED_RATE_PER_SEC,
    &LATE_STARTS,
    &ERRORS_TOTAL,
    &EXPECTED_ALLOW,
    &EXPECTED_DENY,
    &UNEXPECTED_ALLOW,
    &UNEXPECTED_DENY,
    &TIMEOUT,
    &CONNECT_ERROR,
    &PROTOCOL_ERROR,
    &CREDENTIAL_BYTES,
    &REQUEST_HEADER_BYTES,
    &WIRE_SENT_BYTES_PER_REQUEST,
    &WIRE_RECEIVED_BYTES_PER_REQUEST,
    &TARGET_CPU_US_PER_REQUEST,
    &CONNECTIONS_PER_REQUEST,
    &TLS_FULL_HANDSHAKE_CPU_US,
    &TLS_RESUMED_HANDSHAKE_CPU_US,
    &TLS_FULL_HANDSHAKES,
    &TLS_RESUMED_HANDSHAKES,
    &TLS_RESUMED_PCT,
    &TLS_HANDSHAKE_CPU_US_PER_REQUEST,
    &TLS_HANDSHAKE_CPU_PCT,
    &STORE_OPS_PER_REQUEST,
    &STORE_CPU_US_PER_REQUEST,
    &STORE_NET_BYTES_PER_REQUEST,
    &STORE_MEMORY_BYTES_PER_SESSION,
    &STORE_IN_FLIGHT_MEAN,
    &AUTH_PRIMARY_PATH_PCT,
    &BROWSER_API_P50_US,
    &BROWSER_API_P99_US,
    &API_CLIENT_API_P50_US,
    &API_CLIENT_API_P99_US,
    &CACHE_HIT_PCT,
    &CACHE_STORE_READS_PER_API_REQUEST,
    &CACHE_BYTES_PER_ENTRY,
    &CACHE_FLUSHES,
    &REVOCATION_WINDOW_MS_P50,
    &REVOCATION_WINDOW_MS_MAX,
    &REVOCATION_WINDOW_MS_OBSERVED_MAX,
    &REVOCATION_WINDOW_MS_PROBES,
    &OUTAGE_OK_DURING_PCT,
    &OUTAGE_FIRST_FAILURE_MS,
    &OUTAGE_RECOVERY_MS,
    &OUTAGE_REVOKED_ALLOWED_DURING,
    &FAILOVER_TIME_MS,
    &FAILOVER_PROMOTED_AFTER_MS,
    &FAILOVER_ERRORS,
    &FAILOVER_ERRORS_PCT,
    &FAILOVER_REVOCATIONS_LOST,
    &FAILOVER_SESSIONS_LOST,
    &ROTATION_OLD_TOKEN_REJECTED_AFTER_MS,
    &ROTATION_LOGINS_PEAK_PER_S_AFTER,
    &CAPACITY_MAX_RATE_PER_SEC,
    &CAPACITY_KNEE_RATE_PER_SEC,
    &USL_SIGMA,
    &USL_KAPPA,
    &USL_LAMBDA_RPS,
    &USL_PEAK_CONNECTIONS,
    &USL_PEAK_THROUGHPUT_RPS,
    &USL_R_SQUARED,
];

/// Every registered figure, in docs order.
pub fn all() -> impl Iterator<Item = &'static Figure> {
    ALL.iter().copied()
}

/// The figure a name (key or deprecated alias) refers to, among per-operation figures
/// (`per_operation`) or per-strategy ones.
pub fn find(name: &str, per_operation: bool) -> Option<&'static Figure> {
    all().find(|f| f.per_operation() == per_operation && f.answers_to(name))
}

/// The revocation window as every page prints it (terminal, Markdown, HTML, plots): the observed
/// window with its probe count, or, when a credential was still accepted when probing ended, the
/// upper bound from `exp` + leeway with what was observed: `≤ 15.5 min, from exp + leeway; still
/// accepted after 1.5 s`.
pub fn revocation_window_text(s: &StrategyResult) -> String {
    let w = &s.revocation_window_ms;
    match w.max.filter(|v| v.is_finite()) {
        Some(bound) if w.bounded => {
            let seen = w
                .observed_max
                .filter(|v| v.is_finite())
                .map(|o| format!("; still accepted after {}", fmt::ms(o)))
                .unwrap_or_default();
            format!("≤ {}, from exp + leeway{seen}", fmt::ms(bound))
        }
        Some(max) => match w.other_instances {
            Some(n) => format!("{} ({} probes, on {n} other instance{})", fmt::ms(max), w.probes, plural(n)),
            None => format!("{} ({} probes)", fmt::ms(max), w.probes),
        },
        None if w.probes == 0 && s.credential_bytes == 0.0 => "n/a (no credential sent)".to_string(),
        None => fmt::NOT_MEASURED.to_string(),
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The registry as a Markdown section (`docs/design.md`, between the figures marks): one entry per
/// figure with its key, label, unit, better direction, deprecated aliases and definition.
pub fn markdown_section() -> String {
    let mut m = String::new();
    m.push_str(
        "Generated from `harness/src/figures.rs` (the figure registry); a test keeps it in step.\n\n\
         Keys are what thresholds (`\"<strategy>.<key>\"`), `compare`, `summary.csv` and the terminal table use. \
         Per-operation figures are written `<operation>.<key>` (`api.p99_us`); operations are login, api, \
         logout, refresh and revoke. A figure a run did not measure is null in `report.json` and reads \
         \"not measured\" in the report, never 0.\n\n",
    );
    for (title, per_op) in [("Per operation", true), ("Per strategy", false)] {
        let _ = writeln!(m, "### {title}\n");
        for f in all().filter(|f| f.per_operation() == per_op) {
            let unit = match f.unit.symbol() {
                "" => "number".to_string(),
                u => u.to_string(),
            };
            let _ = write!(m, "- **`{}`** ({}; {unit}; better: {}", f.key, f.label, f.better.word());
            if f.tracked {
                m.push_str("; tracked by `compare`");
            }
            m.push(')');
            if !f.aliases.is_empty() {
                let aliases: Vec<String> = f.aliases.iter().map(|a| format!("`{a}`")).collect();
                let _ = write!(m, ". Deprecated spelling: {}", aliases.join(", "));
            }
            let _ = writeln!(m, ". {}", f.full_definition());
        }
        m.push('\n');
    }
    m.push_str("Plots (`plots/`) draw these figures; [reports.md](reports.md) lists them with their axes.\n");
    m
}

/// Marks around the generated figure definitions in a Markdown document.
pub const DOCS_BEGIN: &str = "<!-- figures:begin -->";
pub const DOCS_END: &str = "<!-- figures:end -->";

/// `text` with the part between [`DOCS_BEGIN`] and [`DOCS_END`] replaced by [`markdown_section`];
/// `None` when the marks are missing.
pub fn with_docs_section(text: &str) -> Option<String> {
    let start = text.find(DOCS_BEGIN)? + DOCS_BEGIN.len();
    let end = start + text[start..].find(DOCS_END)?;
    Some(format!("{}\n{}{}", &text[..start], markdown_section(), &text[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_aliases_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for f in all() {
            for name in std::iter::once(f.key).chain(f.aliases.iter().copied()) {
                assert!(seen.insert((f.per_operation(), name)), "`{name}` is spelled twice");
            }
        }
    }

    #[test]
    fn labels_are_unique_and_definitions_present() {
        let mut seen = std::collections::BTreeSet::new();
        for f in all() {
            assert!(seen.insert((f.per_operation(), f.label)), "label `{}` used twice", f.label);
            assert!(f.definition.len() > 20, "`{}` needs a definition", f.key);
        }
    }
}
