//! Pass/fail thresholds from scenario files, checked against a finished [`Report`].
//!
//! A scenario writes them as `"<metric>" = "<condition>"`, for example
//! `"jwt.api.p99_us" = "< 2000"` or `"session.revocation_window_ms.max" = "<= 0"`.
//!
//! Metric paths are `<strategy name>.<operation>.<figure>` for latency figures
//! (operation one of [`OPERATIONS`], figure one of [`LATENCY_FIGURES`]) and
//! `<strategy name>.<figure>` for per-strategy figures ([`STRATEGY_FIGURES`]). The strategy
//! name is the `name` in `report.json`, matrix coordinates included (`jwt alg=ES256`).
//! Conditions are an operator (`<`, `<=`, `>`, `>=`, `==`) and a number.
//!
//! A metric the report does not have (unknown strategy, operation never run, figure not
//! measured) never passes: its result has `actual: null`, `passed: false` and the reason appended
//! to the condition.

use std::fmt;

use thiserror::Error;

use crate::results::{LatencySummary, OPERATIONS, Report, StrategyResult, ThresholdResult};

/// Latency figures per operation, in microseconds (`count` is a number of requests).
pub const LATENCY_FIGURES: [&str; 9] =
    ["p50_us", "p90_us", "p99_us", "p999_us", "max_us", "min_us", "mean_us", "stdev_us", "count"];

/// Per-strategy figures, with their units in the name.
pub const STRATEGY_FIGURES: [&str; 25] = [
    "requests",
    "throughput_rps",
    "success_rps",
    "failure_rps",
    "errors",
    "errors.total",
    "credential_bytes",
    "request_header_bytes",
    "target_cpu_us_per_request",
    "store.ops_per_request",
    "store.cpu_us_per_request",
    "store.net_bytes_per_request",
    "store.memory_bytes_per_session",
    "revocation_window_ms.p50",
    "revocation_window_ms.max",
    "revocation_window_ms.observed_max",
    "revocation_window_ms.probes",
    "expected_allow",
    "expected_deny",
    "unexpected_allow",
    "unexpected_deny",
    "timeout",
    "connect_error",
    "protocol_error",
    "achieved_rate_per_sec",
];

/// Why a threshold could not be parsed. The caller adds the file and line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ThresholdError {
    #[error("empty threshold metric: expected `<strategy>.<operation>.<figure>` or `<strategy>.<figure>`")]
    EmptyMetric,
    #[error(
        "unknown threshold metric `{metric}`: expected `<strategy>.<operation>.<figure>` with operation one of \
         {ops} and figure one of {lat}, or `<strategy>.<figure>` with figure one of {strat}",
        ops = OPERATIONS.join(", "),
        lat = LATENCY_FIGURES.join(", "),
        strat = STRATEGY_FIGURES.join(", ")
    )]
    UnknownMetric { metric: String },
    #[error(
        "threshold condition `{condition}` for `{metric}` has no comparison operator: expected one of \
         `<`, `<=`, `>`, `>=`, `==` followed by a number, e.g. \"< 2000\""
    )]
    MissingOperator { metric: String, condition: String },
    #[error("threshold condition `{condition}` for `{metric}`: expected a number after `{op}`, found `{found}`")]
    BadNumber { metric: String, condition: String, op: String, found: String },
}

/// A comparison operator in a threshold condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Op {
    fn holds(self, actual: f64, limit: f64) -> bool {
        match self {
            Op::Lt => actual < limit,
            Op::Le => actual <= limit,
            Op::Gt => actual > limit,
            Op::Ge => actual >= limit,
            Op::Eq => actual == limit,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        })
    }
}

/// Which figure of a strategy a threshold reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Figure {
    /// A latency figure of one operation (`api`, `p99_us`).
    Latency { operation: String, figure: String },
    /// A per-strategy figure (one of [`STRATEGY_FIGURES`]).
    Strategy(String),
}

/// One parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// As written in the scenario.
    pub metric: String,
    /// As written in the scenario.
    pub condition: String,
    pub strategy: String,
    pub figure: Figure,
    pub op: Op,
    pub limit: f64,
}

impl Threshold {
    /// Parses a metric path and a condition. Errors say what was expected; the caller adds the file
    /// and line.
    pub fn parse(metric: &str, condition: &str) -> Result<Threshold, ThresholdError> {
        let metric_trim = metric.trim();
        if metric_trim.is_empty() {
            return Err(ThresholdError::EmptyMetric);
        }
        let (strategy, figure) = parse_metric(metric_trim)
            .ok_or_else(|| ThresholdError::UnknownMetric { metric: metric_trim.to_string() })?;
        let (op, limit) = parse_condition(metric_trim, condition)?;
        Ok(Threshold { metric: metric.to_string(), condition: condition.to_string(), strategy, figure, op, limit })
    }

    /// Reads the figure from `report` and checks the condition. A figure the report does not have
    /// gives `actual: None`, `passed: false` and the reason appended to `condition`.
    pub fn evaluate(&self, report: &Report) -> ThresholdResult {
        match self.actual(report) {
            Ok(actual) => ThresholdResult {
                metric: self.metric.clone(),
                condition: self.condition.clone(),
                actual: Some(actual),
                passed: actual.is_finite() && self.op.holds(actual, self.limit),
            },
            Err(reason) => ThresholdResult {
                metric: self.metric.clone(),
                condition: format!("{} ({reason})", self.condition.trim()),
                actual: None,
                passed: false,
            },
        }
    }

    /// The figure's value in `report`, or why it is not there.
    pub fn actual(&self, report: &Report) -> Result<f64, String> {
        let Some(s) = report.strategies.iter().find(|s| s.name == self.strategy) else {
            let names: Vec<&str> = report.strategies.iter().map(|s| s.name.as_str()).collect();
            return Err(format!(
                "not in report: no strategy named `{}`; the report has: {}",
                self.strategy,
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            ));
        };
        match &self.figure {
            Figure::Latency { operation, figure } => {
                let summary = s
                    .latency_us
                    .get(operation)
                    .filter(|l| l.count > 0)
                    .ok_or_else(|| format!("not in report: no `{operation}` requests measured for `{}`", s.name))?;
                Ok(latency_figure(summary, figure))
            }
            Figure::Strategy(name) => {
                strategy_figure(s, name).ok_or_else(|| format!("not measured: `{name}` is null for `{}`", s.name))
            }
        }
    }
}

/// Evaluates every threshold against `report`, in order.
pub fn evaluate_all(thresholds: &[Threshold], report: &Report) -> Vec<ThresholdResult> {
    thresholds.iter().map(|t| t.evaluate(report)).collect()
}

fn parse_metric(metric: &str) -> Option<(String, Figure)> {
    // `<strategy>.<operation>.<figure>`: the last two segments.
    let mut parts = metric.rsplitn(3, '.');
    if let (Some(fig), Some(op), Some(strategy)) = (parts.next(), parts.next(), parts.next())
        && OPERATIONS.contains(&op)
        && LATENCY_FIGURES.contains(&fig)
        && !strategy.is_empty()
    {
        return Some((strategy.to_string(), Figure::Latency { operation: op.to_string(), figure: fig.to_string() }));
    }
    // `<strategy>.<figure>`: the longest known figure the path ends with.
    let mut best: Option<(String, Figure)> = None;
    for fig in STRATEGY_FIGURES {
        if let Some(strategy) = metric.strip_suffix(fig).and_then(|p| p.strip_suffix('.'))
            && !strategy.is_empty()
            && best.as_ref().is_none_or(|(s, _)| strategy.len() < s.len())
        {
            best = Some((strategy.to_string(), Figure::Strategy(fig.to_string())));
        }
    }
    best
}

fn parse_condition(metric: &str, condition: &str) -> Result<(Op, f64), ThresholdError> {
    let c = condition.trim();
    let (op, rest) = [("<=", Op::Le), (">=", Op::Ge), ("==", Op::Eq), ("<", Op::Lt), (">", Op::Gt)]
        .iter()
        .find_map(|(sym, op)| c.strip_prefix(sym).map(|rest| (*op, rest)))
        .ok_or_else(|| ThresholdError::MissingOperator {
            metric: metric.to_string(),
            condition: condition.to_string(),
        })?;
    let number = rest.trim().replace('_', "");
    match number.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok((op, v)),
        _ => Err(ThresholdError::BadNumber {
            metric: metric.to_string(),
            condition: condition.to_string(),
            op: op.to_string(),
            found: rest.trim().to_string(),
        }),
    }
}

fn latency_figure(l: &LatencySummary, figure: &str) -> f64 {
    match figure {
        "p50_us" => l.p50 as f64,
        "p90_us" => l.p90 as f64,
        "p99_us" => l.p99 as f64,
        "p999_us" => l.p999 as f64,
        "max_us" => l.max as f64,
        "min_us" => l.min as f64,
        "mean_us" => l.mean,
        "stdev_us" => l.stdev,
        _ => l.count as f64,
    }
}

/// A per-strategy figure by its [`STRATEGY_FIGURES`] name; `None` when not measured (null) or
/// unknown.
pub fn strategy_figure(s: &StrategyResult, figure: &str) -> Option<f64> {
    let o = &s.outcomes;
    let w = &s.revocation_window_ms;
    match figure {
        "requests" => Some(s.requests as f64),
        "throughput_rps" => Some(s.throughput_rps),
        "success_rps" => Some(s.success_rps),
        "failure_rps" => Some(s.failure_rps),
        "errors" | "errors.total" => Some(s.errors.total as f64),
        "credential_bytes" => Some(s.credential_bytes),
        "request_header_bytes" => Some(s.request_header_bytes),
        "target_cpu_us_per_request" => s.target_cpu_us_per_request,
        "store.ops_per_request" => s.store.ops_per_request,
        "store.cpu_us_per_request" => s.store.cpu_us_per_request,
        "store.net_bytes_per_request" => s.store.net_bytes_per_request,
        "store.memory_bytes_per_session" => s.store.memory_bytes_per_session,
        "revocation_window_ms.p50" => w.p50,
        "revocation_window_ms.max" => w.max,
        "revocation_window_ms.observed_max" => w.observed_max,
        "revocation_window_ms.probes" => Some(w.probes as f64),
        "expected_allow" => Some(o.expected_allow as f64),
        "expected_deny" => Some(o.expected_deny as f64),
        "unexpected_allow" => Some(o.unexpected_allow as f64),
        "unexpected_deny" => Some(o.unexpected_deny as f64),
        "timeout" => Some(o.timeout as f64),
        "connect_error" => Some(o.connect_error as f64),
        "protocol_error" => Some(o.protocol_error as f64),
        "achieved_rate_per_sec" => Some(s.schedule.achieved_rate_per_sec),
        _ => None,
    }
}
