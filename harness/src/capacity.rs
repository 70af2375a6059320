//! Capacity: where each strategy stops meeting the scenario's `[capacity]` objective on a staged
//! open-loop rate ladder (its breaking point and knee, from the per-stage histograms the engine
//! keeps), and the Universal Scalability Law fit ([`crate::usl`]) of closed-loop
//! `matrix.connections` sweeps. Owns the objective's validation, both computations over a run's
//! results, and the rows the report's capacity tables show.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::plan::{RateStage, Schedule, Variant};
use crate::report::fmt;
use crate::results::{BreakingPoint, Report, StageResult, StrategyResult, UslPoint, UslResult};
use crate::scenario::CapacitySection;

/// `max_error_rate` when the scenario leaves it out.
pub const DEFAULT_MAX_ERROR_RATE: f64 = 0.001;
/// A stage whose achieved rate is below this share of its target did not carry its load.
pub const MIN_ACHIEVED_SHARE: f64 = 0.95;
/// The variant coordinate a USL sweep varies.
const CONNECTIONS_KEY: &str = "connections";

/// The `[capacity]` objective, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objective {
    /// p99 of all of a stage's requests must be at or below this, ms.
    pub p99_ms: f64,
    /// Largest share of a stage's requests that may end in an error.
    pub max_error_rate: f64,
}

/// Validates `[capacity]` against the variants: it needs a rising open-loop ladder of two or more
/// stages. Returns the message for a plan error.
pub fn objective(section: Option<CapacitySection>, variants: &[Variant]) -> Result<Option<Objective>, String> {
    let Some(c) = section else { return Ok(None) };
    if !(c.p99_ms.is_finite() && c.p99_ms > 0.0) {
        return Err(format!("capacity.p99_ms must be a latency in ms > 0, got {}", c.p99_ms));
    }
    let max_error_rate = c.max_error_rate.unwrap_or(DEFAULT_MAX_ERROR_RATE);
    if !(0.0..=1.0).contains(&max_error_rate) {
        return Err(format!("capacity.max_error_rate must be a share between 0 and 1, got {max_error_rate}"));
    }
    for v in variants {
        let stages = match &v.schedule {
            Schedule::Open { stages, .. } if stages.len() >= 2 => stages,
            _ => {
                return Err(format!(
                    "[capacity] needs an open-loop rate ladder (traffic.stages with at least two stages); {} has none",
                    v.label
                ));
            }
        };
        if stages.windows(2).any(|w| w[1].rate_per_sec <= w[0].rate_per_sec) {
            return Err("[capacity] needs a rising ladder: each traffic.stages rate above the one before".to_string());
        }
    }
    if let Some(r) = c.project_rps.filter(|r| !(r.is_finite() && *r > 0.0)) {
        return Err(format!("capacity.project_rps must be a request rate > 0, got {r}"));
    }
    if let Some(h) = c.project_headroom_pct.filter(|h| !(h.is_finite() && (0.0..100.0).contains(h))) {
        return Err(format!("capacity.project_headroom_pct must be a percentage from 0 up to 100, got {h}"));
    }
    Ok(Some(Objective { p99_ms: c.p99_ms, max_error_rate }))
}

/// The projection the scenario asks for (`[capacity] project_rps`, `project_users`,
/// `project_headroom_pct`), made from this report's own figures; `None` when it asks for none.
pub fn scenario_projection(report: &Report) -> Option<crate::project::Projection> {
    /// Only the `[capacity]` table of the resolved scenario; every other key is ignored here.
    #[derive(serde::Deserialize)]
    struct Resolved {
        capacity: Option<CapacitySection>,
    }
    let c = toml::from_str::<Resolved>(&report.scenario.resolved_toml).ok()?.capacity?;
    let rps = c.project_rps?;
    let headroom = c.project_headroom_pct.unwrap_or(crate::project::DEFAULT_HEADROOM_PCT);
    let runs = [("this run".to_string(), report.clone())];
    crate::project::project(&runs, rps, c.project_users, headroom).ok()
}

/// Why a stage missed the objective; `None` when it met it.
fn miss(obj: Objective, stage: &StageResult, error_rate: Option<f64>) -> Option<String> {
    let rate = fmt::num(stage.target_rate_per_sec);
    let p99_ms = stage.p99_us as f64 / 1000.0;
    if p99_ms > obj.p99_ms {
        return Some(format!("{rate} req/s: p99 {} > objective {}", fmt::ms(p99_ms), fmt::ms(obj.p99_ms)));
    }
    if let Some(e) = error_rate.filter(|e| *e > obj.max_error_rate) {
        return Some(format!(
            "{rate} req/s: errors {:.3} % > objective {:.3} %",
            e * 100.0,
            obj.max_error_rate * 100.0
        ));
    }
    if stage.achieved_rps < MIN_ACHIEVED_SHARE * stage.target_rate_per_sec {
        return Some(format!("{rate} req/s: achieved only {} req/s", fmt::num(stage.achieved_rps)));
    }
    if error_rate.is_none() {
        return Some(format!("{rate} req/s: no request completed"));
    }
    None
}

/// The breaking point of one variant from its stage results (`results[i]` measured `stages[i]`).
pub fn breaking_point(obj: Objective, stages: &[RateStage], results: &[StageResult]) -> BreakingPoint {
    let stage_error_rates: Vec<Option<f64>> = results
        .iter()
        .zip(stages)
        .map(|(r, s)| {
            let requests = r.achieved_rps * s.duration.as_secs_f64();
            (requests >= 1.0).then(|| r.errors as f64 / requests)
        })
        .collect();
    let misses: Vec<Option<String>> = results.iter().zip(&stage_error_rates).map(|(r, e)| miss(obj, r, *e)).collect();
    let (mut met, mut first_miss, mut transient_misses) = (None::<&StageResult>, None, Vec::new());
    for (i, (r, why)) in results.iter().zip(&misses).enumerate() {
        match why {
            None => met = Some(r),
            // The next, higher stage met it: a stall, reported beside the breaking point.
            Some(why) if misses.get(i + 1).is_some_and(Option::is_none) => transient_misses.push(why.clone()),
            Some(why) => {
                first_miss = Some(why.clone());
                break;
            }
        }
    }
    let mut sorted = results.to_vec();
    sorted.sort_by(|a, b| a.target_rate_per_sec.total_cmp(&b.target_rate_per_sec));
    BreakingPoint {
        objective_p99_ms: obj.p99_ms,
        objective_max_error_rate: obj.max_error_rate,
        max_rate_meeting_objective_per_sec: met.map(|r| r.target_rate_per_sec),
        achieved_rps_at_max: met.map(|r| r.achieved_rps),
        knee_rate_per_sec: crate::report::knee_index(&sorted).map(|k| sorted[k].target_rate_per_sec),
        first_miss,
        transient_misses,
        stage_error_rates,
    }
}

/// Sets `capacity` on every staged result whose variant is in `variants` (matched by label), and
/// `usl` on every variant of a closed-loop connections sweep.
pub fn annotate(objective: Option<Objective>, variants: &[Variant], strategies: &mut [StrategyResult]) {
    if let Some(obj) = objective {
        for s in strategies.iter_mut().filter(|s| !s.stages.is_empty()) {
            if let Some(Schedule::Open { stages, .. }) =
                variants.iter().find(|v| v.label == s.name).map(|v| &v.schedule)
            {
                s.capacity = Some(breaking_point(obj, stages, &s.stages));
            }
        }
    }
    let closed = variants.first().is_some_and(|v| matches!(v.schedule, Schedule::Closed { .. }));
    if closed {
        annotate_usl(strategies);
    }
}

/// The sweep a variant belongs to: its strategy and every coordinate but `connections`.
fn sweep_of(s: &StrategyResult) -> Option<String> {
    s.variant.get(CONNECTIONS_KEY)?;
    let rest: Vec<String> =
        s.variant.iter().filter(|(k, _)| k.as_str() != CONNECTIONS_KEY).map(|(k, v)| format!("{k}={v}")).collect();
    Some(if rest.is_empty() { s.strategy.clone() } else { format!("{} {}", s.strategy, rest.join(" ")) })
}

/// Fits the USL to every closed-loop connections sweep and sets the fit on each of its variants.
pub fn annotate_usl(strategies: &mut [StrategyResult]) {
    let mut sweeps: BTreeMap<String, Vec<UslPoint>> = BTreeMap::new();
    for s in strategies.iter() {
        if let (Some(sweep), Some(n)) =
            (sweep_of(s), s.variant.get(CONNECTIONS_KEY).and_then(|c| c.parse::<f64>().ok()))
        {
            sweeps.entry(sweep).or_default().push(UslPoint { connections: n, throughput_rps: s.throughput_rps });
        }
    }
    let fits: BTreeMap<String, UslResult> =
        sweeps.into_iter().map(|(k, pts)| (k.clone(), usl_result(k, pts))).collect();
    for s in strategies.iter_mut() {
        if let Some(fit) = sweep_of(s).and_then(|k| fits.get(&k)) {
            s.usl = Some(fit.clone());
        }
    }
}

/// The USL fit of one sweep's points, or why there is none.
pub fn usl_result(sweep: String, mut points: Vec<UslPoint>) -> UslResult {
    points.sort_by(|a, b| a.connections.total_cmp(&b.connections));
    let xy: Vec<(f64, f64)> = points.iter().map(|p| (p.connections, p.throughput_rps)).collect();
    let base = UslResult {
        sweep,
        source: "closed-loop matrix.connections sweep: throughput_rps at each connections value".to_string(),
        points,
        poor_fit: true,
        ..UslResult::default()
    };
    match crate::usl::fit(&xy) {
        Ok(f) => UslResult {
            sigma: Some(f.sigma),
            kappa: Some(f.kappa),
            lambda_rps: Some(f.lambda_rps),
            peak_connections: f.peak_concurrency,
            peak_throughput_rps: f.peak_throughput_rps,
            r_squared: f.r_squared,
            poor_fit: f.poor,
            ..base
        },
        Err(e) => UslResult { error: Some(e.to_string()), ..base },
    }
}

/// Column heads of the breaking-point table.
pub const BREAKING_HEADERS: [&str; 6] =
    ["strategy", "objective", "highest rate meeting it", "knee", "first miss", "stages (rate: p99, errors)"];

/// One breaking-point row per strategy with a breaking point.
pub fn breaking_rows(strategies: &[StrategyResult]) -> Vec<[String; 6]> {
    strategies
        .iter()
        .filter_map(|s| {
            let b = s.capacity.as_ref()?;
            let met = match (b.max_rate_meeting_objective_per_sec, b.achieved_rps_at_max) {
                (Some(r), Some(a)) => format!("{} req/s (achieved {})", fmt::num(r), fmt::num(a)),
                _ => "none: the first stage missed it".to_string(),
            };
            let knee =
                b.knee_rate_per_sec.map_or_else(|| "not reached".to_string(), |k| format!("{} req/s", fmt::num(k)));
            let ladder: Vec<String> = s
                .stages
                .iter()
                .zip(&b.stage_error_rates)
                .map(|(st, e)| {
                    let err = e.map_or_else(|| "n/a".to_string(), |e| format!("{:.2} %", e * 100.0));
                    format!("{}: {}, {err}", fmt::num(st.target_rate_per_sec), fmt::us(st.p99_us as f64))
                })
                .collect();
            Some([
                s.name.clone(),
                format!("p99 ≤ {}, errors ≤ {:.2} %", fmt::ms(b.objective_p99_ms), b.objective_max_error_rate * 100.0),
                met,
                knee,
                first_miss_cell(b),
                ladder.join("; "),
            ])
        })
        .collect()
}

/// The first-miss cell: the sustained miss, then any transient ones below it.
fn first_miss_cell(b: &BreakingPoint) -> String {
    let mut cell =
        b.first_miss.clone().unwrap_or_else(|| "none: no sustained miss (breaking point above the ladder)".into());
    if !b.transient_misses.is_empty() {
        let _ = write!(cell, "; transient, the next stage met it: {}", b.transient_misses.join("; "));
    }
    cell
}

/// Column heads of the USL table.
pub const USL_HEADERS: [&str; 8] = ["sweep", "points (N: req/s)", "σ", "κ", "λ", "peak N*", "X(N*)", "fit"];

/// One USL row per sweep.
pub fn usl_rows(strategies: &[StrategyResult]) -> Vec<[String; 8]> {
    let mut seen: Vec<&str> = Vec::new();
    let mut rows = Vec::new();
    for u in strategies.iter().filter_map(|s| s.usl.as_ref()) {
        if seen.contains(&u.sweep.as_str()) {
            continue;
        }
        seen.push(&u.sweep);
        let pts: Vec<String> =
            u.points.iter().map(|p| format!("{}: {}", fmt::num(p.connections), fmt::num(p.throughput_rps))).collect();
        let quality = match (&u.error, u.r_squared) {
            (Some(e), _) => format!("no fit: {e}"),
            (None, r) => format!(
                "R² {}{}",
                r.map_or_else(|| "not defined".to_string(), |r| format!("{r:.3}")),
                if u.poor_fit { " — poor fit: do not use the coefficients" } else { " — good fit" }
            ),
        };
        let num = |v: Option<f64>, digits: usize| {
            v.map_or_else(|| fmt::NOT_MEASURED.to_string(), |v| format!("{v:.digits$}"))
        };
        rows.push([
            u.sweep.clone(),
            pts.join(", "),
            num(u.sigma, 4),
            num(u.kappa, 6),
            fmt::opt(u.lambda_rps, "req/s"),
            u.peak_connections.map_or_else(|| "none (κ = 0)".to_string(), fmt::num),
            fmt::opt(u.peak_throughput_rps, "req/s"),
            quality,
        ]);
    }
    rows
}

/// The method sentence under the breaking-point table.
pub const BREAKING_METHOD: &str = "Open loop, one rate stage after another without a pause (latency from each request's \
intended send time). A stage meets the objective when the p99 of all its requests (every operation), from the \
engine's per-stage histogram, is at or below the objective, its error share (errors / requests of the stage) is \
at or below the limit, and it achieved at least 95 % of its target rate. The highest rate meeting it is the last \
such stage before the first sustained miss (a missed stage whose next, higher stage misses too, or the ladder's \
last stage); a missed stage followed by one that met the objective is a stall, listed as transient, not the \
breaking point. The knee is the first stage, followed by another like it, whose p99 exceeds twice the lowest \
stage's or whose achieved rate falls below 95 % of its target. A request counts in the stage in which its answer \
arrived; answers that arrive after the ladder's end count in its last stage, whose achieved rate can then exceed \
its target (the backlog draining).";

/// The method sentence under the USL table.
pub const USL_METHOD: &str = "X(N) = λN / (1 + σ(N−1) + κN(N−1)) fitted by least squares to the closed-loop \
throughput at each connections value (λ by grid and golden-section search, σ and κ ≥ 0 by linear least squares \
for each λ). N* = sqrt((1−σ)/κ). Fewer than 4 points or R² below 0.9 is a poor fit. The driver shares the \
machine with the target: a driver-bound sweep flattens the curve and shows as contention.";
