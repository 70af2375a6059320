//! Pass/fail thresholds from scenario files, checked against a finished [`Report`].
//!
//! A scenario writes them as `"<metric>" = "<condition>"`, for example
//! `"jwt.api.p99_us" = "< 2000"` or `"session.revocation_window_ms.max" = "<= 0"`.
//!
//! Metric paths are `<strategy name>.<operation>.<figure>` for per-operation figures and
//! `<strategy name>.<figure>` for per-strategy figures; the figures and their keys are the figure
//! registry's ([`crate::figures`]), deprecated spellings included. The strategy name is the `name`
//! in `report.json`, matrix coordinates included (`jwt alg=ES256`). Conditions are an operator
//! (`<`, `<=`, `>`, `>=`, `==`) and a number.
//!
//! A metric the report does not have (unknown strategy, operation never run, figure not
//! measured) never passes: its result has `actual: null`, `passed: false` and the reason appended
//! to the condition.

use std::fmt;

use thiserror::Error;

use crate::figures::{self, Figure};
use crate::results::{OPERATIONS, Report, ThresholdResult};

/// The registry's keys of per-operation (`true`) or per-strategy figures, for error messages.
fn keys(per_operation: bool) -> String {
    figures::all().filter(|f| f.per_operation() == per_operation).map(|f| f.key).collect::<Vec<_>>().join(", ")
}

/// Why a threshold could not be parsed. The caller adds the file and line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ThresholdError {
    #[error("empty threshold metric: expected `<strategy>.<operation>.<figure>` or `<strategy>.<figure>`")]
    EmptyMetric,
    #[error(
        "unknown threshold metric `{metric}`: expected `<strategy>.<operation>.<figure>` with operation one of \
         {ops} and figure one of {lat}, or `<strategy>.<figure>` with figure one of {strat}",
        ops = OPERATIONS.join(", "),
        lat = keys(true),
        strat = keys(false)
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

/// One parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// As written in the scenario.
    pub metric: String,
    /// As written in the scenario.
    pub condition: String,
    pub strategy: String,
    /// The operation, for per-operation figures (`api`); `None` for per-strategy figures.
    pub operation: Option<String>,
    /// The registry entry the metric names (also when it used a deprecated spelling).
    pub figure: &'static Figure,
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
        let (strategy, operation, figure) = parse_metric(metric_trim)
            .ok_or_else(|| ThresholdError::UnknownMetric { metric: metric_trim.to_string() })?;
        let (op, limit) = parse_condition(metric_trim, condition)?;
        Ok(Threshold {
            metric: metric.to_string(),
            condition: condition.to_string(),
            strategy,
            operation,
            figure,
            op,
            limit,
        })
    }

    /// A note when the metric used a deprecated spelling of its figure's key.
    pub fn deprecation(&self) -> Option<String> {
        let written = self.metric.trim();
        let prefix = match &self.operation {
            Some(op) => format!("{}.{op}.", self.strategy),
            None => format!("{}.", self.strategy),
        };
        let name = written.strip_prefix(prefix.as_str()).unwrap_or(written);
        (name != self.figure.key)
            .then(|| format!("threshold `{written}`: `{name}` is deprecated, write `{}` instead", self.figure.key))
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
        match &self.operation {
            Some(operation) => self
                .figure
                .value(s, operation)
                .ok_or_else(|| format!("not in report: no `{operation}` requests measured for `{}`", s.name)),
            None => self
                .figure
                .value(s, "")
                .ok_or_else(|| format!("not measured: `{}` is null for `{}`", self.figure.key, s.name)),
        }
    }
}

/// Evaluates every threshold against `report`, in order.
pub fn evaluate_all(thresholds: &[Threshold], report: &Report) -> Vec<ThresholdResult> {
    thresholds.iter().map(|t| t.evaluate(report)).collect()
}

fn parse_metric(metric: &str) -> Option<(String, Option<String>, &'static Figure)> {
    // `<strategy>.<operation>.<figure>`: the last two segments.
    let mut parts = metric.rsplitn(3, '.');
    if let (Some(fig), Some(op), Some(strategy)) = (parts.next(), parts.next(), parts.next())
        && OPERATIONS.contains(&op)
        && !strategy.is_empty()
        && let Some(figure) = figures::find(fig, true)
    {
        return Some((strategy.to_string(), Some(op.to_string()), figure));
    }
    // `<strategy>.<figure>`: the longest figure name (key or alias) the path ends with.
    let mut best: Option<(String, Option<String>, &'static Figure)> = None;
    for figure in figures::all().filter(|f| !f.per_operation()) {
        for name in std::iter::once(figure.key).chain(figure.aliases.iter().copied()) {
            if let Some(strategy) = metric.strip_suffix(name).and_then(|p| p.strip_suffix('.'))
                && !strategy.is_empty()
                && best.as_ref().is_none_or(|(s, _, _)| strategy.len() < s.len())
            {
                best = Some((strategy.to_string(), None, figure));
            }
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
