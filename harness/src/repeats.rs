//! Repeated runs (`authbench run --repeat N`): how the N repetitions of one variant become one
//! entry of `report.json`, and how a figure's N values are read back for its median, its interval
//! and `compare`'s significance test ([`crate::stats`]).
//!
//! Each repetition is kept whole, in the entry's `repeats`. The entry's own fields summarise them:
//! every number is the median over the repetitions (the lower middle value for integers, so a
//! count or a percentile stays one that was measured), except the request count, the error counts
//! and the outcome counts, which are summed so that no error and no unexpected allow of any
//! repetition is hidden; a yes/no field is true when it was true in any repetition (a revocation
//! window bounded in one repetition is reported bounded); a per-second timeline is combined second
//! by second when every repetition has the same length, else it is the first repetition's.

use serde_json::{Map, Number, Value};

use crate::figures::{self, Figure};
use crate::results::{Report, StrategyResult};
use crate::stats::{self, Estimate};

/// Fields of a strategy entry summed over repetitions rather than taken as the median.
const SUMMED: [&str; 3] = ["requests", "errors", "outcomes"];

/// Why repetitions could not be combined (a bug: they all come from the same type).
#[derive(Debug, thiserror::Error)]
pub enum RepeatsError {
    #[error("no repetitions to combine")]
    Empty,
    #[error("combining repetitions: {0}")]
    Json(#[from] serde_json::Error),
}

/// One entry for a variant run N times: the summary described in the module docs, with every
/// repetition in `repeats` (in run order). A single repetition is returned as it is.
pub fn combine(mut reps: Vec<StrategyResult>) -> Result<StrategyResult, RepeatsError> {
    if reps.len() <= 1 {
        return reps.pop().ok_or(RepeatsError::Empty);
    }
    for r in &mut reps {
        r.repeats.clear();
    }
    let values = reps.iter().map(serde_json::to_value).collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<&Value> = values.iter().collect();
    let Value::Object(first) = refs[0] else { return Err(RepeatsError::Empty) };
    let mut top = Map::new();
    for key in first.keys() {
        let children: Vec<&Value> = refs.iter().filter_map(|v| v.get(key)).collect();
        top.insert(key.clone(), merge(&children, SUMMED.contains(&key.as_str())));
    }
    let mut combined: StrategyResult = serde_json::from_value(Value::Object(top))?;
    combined.repeats = reps;
    Ok(combined)
}

/// The median (or, with `sum`, the total) of numbers at the same place in every repetition.
fn merge(values: &[&Value], sum: bool) -> Value {
    let numbers: Vec<&Number> = values.iter().filter_map(|v| v.as_number()).collect();
    if !numbers.is_empty() {
        return merge_numbers(&numbers, sum);
    }
    match values.first() {
        Some(Value::Object(first)) => {
            let mut out = Map::new();
            for key in first.keys() {
                let children: Vec<&Value> = values.iter().filter_map(|v| v.get(key)).collect();
                out.insert(key.clone(), merge(&children, sum));
            }
            Value::Object(out)
        }
        Some(Value::Array(first)) if values.iter().all(|v| v.as_array().is_some_and(|a| a.len() == first.len())) => {
            let items = (0..first.len())
                .map(|i| merge(&values.iter().filter_map(|v| v.get(i)).collect::<Vec<_>>(), sum))
                .collect();
            Value::Array(items)
        }
        Some(Value::Bool(_)) => Value::Bool(values.iter().any(|v| v.as_bool() == Some(true))),
        Some(first) => (*first).clone(),
        None => Value::Null,
    }
}

fn merge_numbers(numbers: &[&Number], sum: bool) -> Value {
    if let Some(mut ints) = numbers.iter().map(|n| n.as_u64()).collect::<Option<Vec<u64>>>() {
        if sum {
            return Value::from(ints.iter().sum::<u64>());
        }
        ints.sort_unstable();
        return Value::from(ints[(ints.len() - 1) / 2]);
    }
    if let Some(mut ints) = numbers.iter().map(|n| n.as_i64()).collect::<Option<Vec<i64>>>() {
        if sum {
            return Value::from(ints.iter().sum::<i64>());
        }
        ints.sort_unstable();
        return Value::from(ints[(ints.len() - 1) / 2]);
    }
    let floats: Vec<f64> = numbers.iter().filter_map(|n| n.as_f64()).collect();
    let v = if sum { Some(floats.iter().sum()) } else { stats::median(&floats) };
    v.and_then(Number::from_f64).map_or(Value::Null, Value::Number)
}

/// The figure's value in every repetition that measured it; for a single run, its one value.
pub fn samples(s: &StrategyResult, figure: &Figure, op: &str) -> Vec<f64> {
    if s.repeats.is_empty() {
        return figure.value(s, op).into_iter().collect();
    }
    s.repeats.iter().filter_map(|r| figure.value(r, op)).collect()
}

/// Median and 95 % interval of the figure over the repetitions; `None` when no repetition
/// measured it. Without repetitions: the single value, with no interval.
pub fn estimate(s: &StrategyResult, figure: &Figure, op: &str) -> Option<Estimate> {
    stats::estimate(&samples(s, figure, op))
}

/// Repetitions behind the entry (1 for a single run).
pub fn count(s: &StrategyResult) -> usize {
    s.repeats.len().max(1)
}

/// Most repetitions behind any entry of the report (1 for a single run).
pub fn in_report(report: &Report) -> usize {
    report.strategies.iter().map(count).max().unwrap_or(1)
}

/// How a repeated run is summarised, for the report's method section.
pub fn method_text(n: usize) -> String {
    format!(
        "Every variant was run {n} times, interleaved (A B C, A B C, ...) so that slow drift of the machine falls \
         on every variant alike; each repetition is kept whole in report.json (`repeats`) with its own histograms \
         under repeats/<k>/. A figure's value is the median over the repetitions; its {:.0} % confidence interval \
         is a percentile bootstrap of the median ({} resamples with replacement, SplitMix64 generator with a fixed \
         seed, so the interval is reproducible); with 5 repetitions that interval is the smallest to the largest \
         repetition (93.75 % distribution-free coverage). Request, error and outcome counts are summed over the \
         repetitions. `authbench compare` of two repeated runs calls a figure regressed only when its median \
         worsened beyond the limit and a two-sided exact Mann-Whitney rank-sum test finds the change significant \
         (alpha {} by default).",
        stats::CONFIDENCE_LEVEL * 100.0,
        stats::BOOTSTRAP_RESAMPLES,
        stats::DEFAULT_ALPHA,
    )
}

/// Column heads of [`table`].
pub const TABLE_HEADERS: [&str; 6] = ["strategy", "figure", "median", "95 % interval", "min – max", "n"];

/// One row per tracked figure of every entry with repetitions (per-operation figures for every
/// operation it measured): the median, its interval and the range of the repetitions.
pub fn table(report: &Report) -> Vec<[String; 6]> {
    let mut rows = Vec::new();
    for s in report.strategies.iter().filter(|s| !s.repeats.is_empty()) {
        let ops: Vec<&str> = s.latency_us.iter().filter(|(_, l)| l.count > 0).map(|(op, _)| op.as_str()).collect();
        for f in figures::all().filter(|f| f.tracked) {
            let places: Vec<(&str, String)> = if f.per_operation() {
                ops.iter().map(|op| (*op, format!("{op} {}", f.label))).collect()
            } else {
                vec![("", f.label.to_string())]
            };
            for (op, label) in places {
                let xs = samples(s, f, op);
                let Some(e) = stats::estimate(&xs) else { continue };
                let fmt = |v: f64| f.unit.format(Some(v));
                let (lo, hi) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(*x), b.max(*x)));
                let ci = e.ci.map_or_else(
                    || "not measured (one repetition)".to_string(),
                    |c| format!("{} – {}", fmt(c.low), fmt(c.high)),
                );
                rows.push([
                    s.name.clone(),
                    label,
                    fmt(e.median),
                    ci,
                    format!("{} – {}", fmt(lo), fmt(hi)),
                    e.n.to_string(),
                ]);
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures;
    use crate::results::{LatencySummary, RequestAccounting};

    fn rep(cpu: f64, p50: u64, requests: u64, unexpected_allow: u64, bounded: bool) -> StrategyResult {
        let mut s: StrategyResult = serde_json::from_value(serde_json::json!({
            "name": "jwt", "strategy": "jwt", "requests": requests, "throughput_rps": requests as f64 / 2.0,
            "success_rps": 1.0, "failure_rps": 0.0, "errors": {"total": 1, "by_class": {"timeout": 1}},
            "outcomes": {"expected_allow": requests, "expected_deny": 0, "unexpected_allow": unexpected_allow,
                "unexpected_deny": 0, "timeout": 0, "connect_error": 0, "protocol_error": 0},
            "latency_us": {}, "service_time_us": {}, "credential_bytes": 300.0, "request_header_bytes": 400.0,
            "store": {"measured": false, "ops_per_request": null, "ops_by_command": {}, "cpu_us_per_request": null,
                "net_bytes_per_request": null, "memory_bytes_per_session": null},
            "target_cpu_us_per_request": cpu,
            "revocation_window_ms": {"p50": null, "max": null, "probes": 0, "bounded": bounded, "observed_max": null},
            "schedule": {"target_rate_per_sec": null, "achieved_rate_per_sec": 1.0, "late_starts": 0, "max_lag_us": 0,
                "driver_cpu_percent": null}
        }))
        .expect("a strategy result");
        s.latency_us.insert("api".into(), LatencySummary { count: requests, p50, p99: p50 * 2, ..Default::default() });
        s
    }

    #[test]
    fn combines_medians_sums_counts_and_keeps_every_repetition() {
        let reps = vec![
            rep(12.0, 200, 1000, 0, false),
            rep(10.0, 180, 1100, 1, false),
            rep(30.0, 210, 900, 0, true),
            rep(11.0, 190, 1000, 0, false),
            rep(13.0, 205, 1000, 0, false),
        ];
        let c = combine(reps.clone()).unwrap();
        assert_eq!(c.repeats, reps);
        assert_eq!(c.target_cpu_us_per_request, Some(12.0), "median, not the mean the outlier would drag");
        assert_eq!(c.latency_us["api"].p50, 200);
        assert_eq!(c.requests, 5000, "summed");
        assert_eq!(c.outcomes.unexpected_allow, 1, "an unexpected allow in any repetition shows");
        assert_eq!(c.errors.total, 5);
        assert_eq!(c.errors.by_class["timeout"], 5);
        assert!(c.revocation_window_ms.bounded, "bounded in one repetition");
        assert_eq!(c.store.ops_per_request, None, "null everywhere stays null");
        let xs = samples(&c, &figures::TARGET_CPU_US_PER_REQUEST, "");
        assert_eq!(xs, [12.0, 10.0, 30.0, 11.0, 13.0]);
        let e = estimate(&c, &figures::TARGET_CPU_US_PER_REQUEST, "").unwrap();
        assert_eq!((e.median, e.n), (12.0, 5));
        assert!(e.ci.is_some_and(|ci| ci.contains(12.0)));
        assert_eq!(count(&c), 5);
    }

    #[test]
    fn signed_counts_of_either_sign_combine_as_integers() {
        let mut a = rep(12.0, 200, 1000, 0, false);
        let mut b = rep(12.0, 200, 1000, 0, false);
        let accounting =
            |unaccounted| RequestAccounting { unaccounted_requests: Some(unaccounted), ..Default::default() };
        a.requests_accounting = Some(accounting(-3));
        b.requests_accounting = Some(accounting(5));
        let c = combine(vec![a, b]).expect("a negative and a positive count combine");
        let unaccounted = c.requests_accounting.and_then(|r| r.unaccounted_requests);
        assert_eq!(unaccounted, Some(-3), "the lower median, still an integer");
    }

    #[test]
    fn a_single_repetition_is_kept_as_is() {
        let one = rep(12.0, 200, 1000, 0, false);
        let c = combine(vec![one.clone()]).unwrap();
        assert_eq!(c, one);
        let e = estimate(&c, &figures::P50_US, "api").unwrap();
        assert_eq!((e.median, e.ci, e.n), (200.0, None, 1));
        assert!(matches!(combine(Vec::new()), Err(RepeatsError::Empty)));
    }
}
