//! `authbench merge DIR... -o OUT`: joins the parts of a split run (`authbench run --part K/N`)
//! into one results directory and report, exactly where exactness is possible.
//!
//! - Refused (exit 2): a directory that is not a part, parts of different scenarios (scenario
//!   hash), builds (executable fingerprint) or splits (`N`), a part given twice, a part missing,
//!   parts that ran different strategies.
//! - Exact: latency and service-time histograms are added (HdrHistogram addition is lossless, read
//!   from each part's `hist/<strategy>/histograms.b64`), so every percentile is the one of all the
//!   parts' requests together; counts, outcomes and errors are summed; throughput and rates are
//!   the sum of the parts' own (the parts ran at the same time); byte means are recomputed from the
//!   parts' raw sums.
//! - Aligned: the per-second timeline is rebuilt on the wall clock. Each part's second `i` starts at
//!   its own window start plus `i` s; it goes into the merged second holding its midpoint (1 s
//!   resolution), and the merged second's percentiles come from the added per-second histograms of
//!   the parts' `intervals.hlog`.
//! - Warned: clock skew between parts (starts more than [`SKEW_WARN_MS`] apart), a part that
//!   lagged its schedule, a part with error classes no other part saw, and every part's own
//!   warnings.
//! - Revocation window: probes summed, the largest window and observed window over the parts.
//! - Not measured: target CPU and store figures (the parts drove external targets that the
//!   drivers cannot see into; one target's `/metrics` counts every part's traffic), per-stage
//!   figures of staged runs, the driver's CPU (several processes), the median revocation window
//!   (not recomposable from the parts' medians).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

use crate::engine::record::{ClientKind, FinishedInterval, Op, Outcome, Recorder, new_histogram};
use crate::output::{self, summarize};
use crate::results::{
    Errors, Machine, Outcomes, PartInfo, PartStrategy, Report, RevocationWindow, ScheduleHealth, StoreLoad,
    StrategyResult, ThresholdResult, TimelinePoint, TrafficInfo,
};

/// Starts of parts further apart than this are reported as clock skew (or a late start).
pub const SKEW_WARN_MS: u64 = 1000;
/// A part that reached less than this share of its scheduled rate lagged its schedule.
const LAG_SHARE: f64 = 0.95;

/// Why parts cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{0}")]
    Load(#[from] crate::compare::CompareError),
    #[error(
        "{0}: not a part of a split run (its report.json has no `part`): run each part with `authbench run --part K/N`"
    )]
    NotAPart(String),
    #[error(
        "parts of different scenarios: {a} has scenario {ha}, {b} has {hb} (run every part with the same scenario file and flags)"
    )]
    Scenario { a: String, ha: String, b: String, hb: String },
    #[error("parts of different builds: {a}, {b}; run every part from one build (image)")]
    Build { a: String, b: String },
    #[error("parts of different splits: {a} is part of {na}, {b} of {nb}")]
    Split { a: String, na: u32, b: String, nb: u32 },
    #[error("part {k}/{n} given twice: {a} and {b}")]
    Duplicate { k: u32, n: u32, a: String, b: String },
    #[error("missing part(s) {missing} of {n}: give every part's results directory")]
    Missing { missing: String, n: u32 },
    #[error("{b} ran strategies [{sb}] but {a} ran [{sa}]: parts of one run drive the same strategies")]
    Strategies { a: String, sa: String, b: String, sb: String },
    #[error("{path}: {what} (a part written by `authbench run --part` has it)")]
    Histograms { path: String, what: String },
    #[error("writing the merged results: {0}")]
    Write(String),
    #[error("give at least one part's results directory")]
    NoParts,
}

/// One part as read from its results directory.
#[derive(Debug, Clone)]
struct Part {
    dir: PathBuf,
    report: Report,
    info: PartInfo,
}

/// What `authbench merge` produced.
#[derive(Debug, Clone)]
pub struct Merged {
    pub dir: PathBuf,
    pub report: Report,
}

/// `authbench merge DIR... -o OUT`: check the parts, merge them, write OUT and render its report.
pub fn main(dirs: &[PathBuf], out: &Path) -> Result<Merged, MergeError> {
    let parts = load_parts(dirs)?;
    let mut warnings = part_warnings(&parts);
    let mut strategies = Vec::new();
    let mut files = Vec::new();
    for (i, s) in parts[0].report.strategies.iter().enumerate() {
        let (result, hists, intervals) = merge_strategy(&parts, i, &mut warnings)?;
        files.push((s.name.clone(), hists, intervals));
        strategies.push(result);
    }
    let report = merged_report(&parts, dirs, strategies, warnings);
    write(out, &report, &files)?;
    Ok(Merged { dir: out.to_path_buf(), report })
}

/// Load every part and refuse what cannot be merged.
fn load_parts(dirs: &[PathBuf]) -> Result<Vec<Part>, MergeError> {
    let mut parts = Vec::with_capacity(dirs.len());
    for d in dirs {
        let report = crate::compare::load_report(d)?;
        let info = report.part.clone().ok_or_else(|| MergeError::NotAPart(d.display().to_string()))?;
        let dir = if d.is_dir() { d.clone() } else { d.parent().map(Path::to_path_buf).unwrap_or_default() };
        parts.push(Part { dir, report, info });
    }
    let first = parts.first().ok_or(MergeError::NoParts)?.clone();
    let names = |r: &Report| r.strategies.iter().map(|s| s.name.clone()).collect::<Vec<_>>().join(", ");
    for p in &parts[1..] {
        let (a, b) = (first.dir.display().to_string(), p.dir.display().to_string());
        if p.info.scenario_hash != first.info.scenario_hash {
            let (ha, hb) = (first.info.scenario_hash.clone(), p.info.scenario_hash.clone());
            return Err(MergeError::Scenario { a, ha, b, hb });
        }
        if p.info.build_id != first.info.build_id || p.info.version != first.info.version {
            let a = format!("{a} ran authbench {} (build {})", first.info.version, first.info.build_id);
            let b = format!("{b} ran authbench {} (build {})", p.info.version, p.info.build_id);
            return Err(MergeError::Build { a, b });
        }
        if p.info.n != first.info.n {
            return Err(MergeError::Split { a, na: first.info.n, b, nb: p.info.n });
        }
        if names(&p.report) != names(&first.report) {
            return Err(MergeError::Strategies { a, sa: names(&first.report), b, sb: names(&p.report) });
        }
    }
    parts.sort_by_key(|p| p.info.k);
    for w in parts.windows(2) {
        if w[0].info.k == w[1].info.k {
            let (a, b) = (w[0].dir.display().to_string(), w[1].dir.display().to_string());
            return Err(MergeError::Duplicate { k: w[0].info.k, n: first.info.n, a, b });
        }
    }
    let have: BTreeSet<u32> = parts.iter().map(|p| p.info.k).collect();
    let missing: Vec<String> = (1..=first.info.n).filter(|k| !have.contains(k)).map(|k| k.to_string()).collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing { missing: missing.join(", "), n: first.info.n });
    }
    Ok(parts)
}

/// Clock skew between the parts' starts, and each part's own warnings.
fn part_warnings(parts: &[Part]) -> Vec<String> {
    let mut warnings = Vec::new();
    let starts: Vec<u64> = parts.iter().map(|p| p.info.started_unix_ms).collect();
    let (lo, hi) = (starts.iter().min().copied().unwrap_or(0), starts.iter().max().copied().unwrap_or(0));
    if hi - lo > SKEW_WARN_MS {
        let each: Vec<String> =
            parts.iter().map(|p| format!("part {} +{} ms", p.info.k, p.info.started_unix_ms - lo)).collect();
        warnings.push(format!(
            "clock skew or a late start: the parts started {} ms apart ({}), by each driver's own clock; the merged \
             timeline aligns them on those clocks",
            hi - lo,
            each.join(", ")
        ));
    }
    for p in parts {
        let tag = format!("part {}/{}", p.info.k, p.info.n);
        warnings.extend(p.report.warnings.iter().map(|w| format!("{tag}: {w}")));
        if p.report.interrupted {
            warnings.push(format!("{tag}: interrupted; its figures cover what it measured"));
        }
    }
    warnings.push(
        "target CPU and store operations per request come from the targets' own /metrics over the whole split run \
         (the first part's window start to the last part's window end), divided by the requests the target served \
         in it; store CPU, network and commands come from the store's own INFO the same way when the parts were given \
         --observe-store (else not measured); store memory per session is not measured in a split run"
            .to_owned(),
    );
    warnings
}

/// Histograms by name (`latency.api`, `service.api`, `api_outcome.expected_allow`).
type NamedHistograms = BTreeMap<String, Histogram<u64>>;

/// Merge strategy `i` of every part: the result, its added histograms and its per-second histograms.
fn merge_strategy(
    parts: &[Part],
    i: usize,
    warnings: &mut Vec<String>,
) -> Result<(StrategyResult, NamedHistograms, Vec<FinishedInterval>), MergeError> {
    let each: Vec<&StrategyResult> = parts.iter().map(|p| &p.report.strategies[i]).collect();
    let first = each[0];
    let mut hists = NamedHistograms::new();
    for p in parts {
        let path = p.dir.join("hist").join(output::slug(&first.name)).join(output::FULL_HISTOGRAMS_FILE);
        for (name, h) in read_full_histograms(&path)? {
            add_into(hists.entry(name).or_insert_with(new_histogram), &h, &path)?;
        }
    }
    let windows: Vec<Option<&PartStrategy>> = parts.iter().map(|p| p.info.strategies.get(&first.name)).collect();
    let intervals = merge_intervals(parts, &first.name, &windows)?;
    strategy_warnings(parts, &each, &windows, warnings);
    let mut result = sum_strategy(&each, &windows);
    target_figures(&mut result, &windows);
    let summary = |prefix: &str, key: &str| hists.get(&format!("{prefix}.{key}")).map(summarize);
    for op in Op::ALL {
        if let Some(s) = summary("latency", op.name()) {
            result.latency_us.insert(op.name().to_owned(), s);
        }
        if let Some(s) = summary("service", op.name()) {
            result.service_time_us.insert(op.name().to_owned(), s);
        }
    }
    for o in Outcome::ALL {
        if let Some(s) = summary("api_outcome", o.name()) {
            result.latency_by_outcome_us.insert(o.name().to_owned(), s);
        }
    }
    for c in ClientKind::ALL {
        if let Some(s) = summary("api_client", c.name()) {
            result.latency_by_client_us.insert(c.name().to_owned(), s);
        }
    }
    result.timeline = intervals.iter().map(|iv| iv.point.clone()).collect();
    Ok((result, hists, intervals))
}

/// Target CPU, store operations and verification paths per request over the whole split run, from
/// the target's own cumulative `/metrics`: the earliest window-start reading and the latest
/// window-end reading of the parts. Every part drove the same target, so its counters between the
/// two hold all of them (and nothing else: warm-up ended before, probes start after). Left not
/// measured when a reading is missing or the target served nothing in between.
fn target_figures(result: &mut StrategyResult, windows: &[Option<&PartStrategy>]) {
    let start = windows.iter().flatten().filter_map(|w| w.target_start.as_ref()).min_by_key(|r| r.unix_ms);
    let end = windows.iter().flatten().filter_map(|w| w.target_end.as_ref()).max_by_key(|r| r.unix_ms);
    let (Some(a), Some(b)) = (start, end) else { return };
    let Some(requests) = b.requests.checked_sub(a.requests).filter(|n| *n > 0) else { return };
    let n = requests as f64;
    if let (Some(c0), Some(c1)) = (a.cpu_seconds, b.cpu_seconds) {
        result.target_cpu_us_per_request = Some((c1 - c0).max(0.0) * 1e6 / n);
    }
    // The target counts its store operations in one vocabulary whatever the store: as for the memory store.
    result.store = crate::collect::redis::store_load_from_metrics(&a.store_ops, &b.store_ops, requests);
    result.auth_paths = crate::collect::accounting::counter_growth(&a.auth_paths, &b.auth_paths);
    store_figures(result, windows, requests);
}

/// The observed store's own figures (`--observe-store`) over the whole split run: its `INFO` at
/// the earliest part's window start and the latest part's window end, per request the targets
/// served. Other parts' `INFO` readings in between are its housekeeping and are left out as for
/// one run, apart from their few reply bytes.
fn store_figures(result: &mut StrategyResult, windows: &[Option<&PartStrategy>], requests: u64) {
    let first = windows.iter().flatten().filter(|w| w.store_start.is_some()).min_by_key(|w| w.window_start_unix_ms);
    let last =
        windows.iter().flatten().filter(|w| w.store_end.is_some()).max_by_key(|w| w.window_start_unix_ms + w.window_ms);
    if let (Some(Some(a)), Some(Some(b))) = (first.map(|w| w.store_start.as_ref()), last.map(|w| w.store_end.as_ref()))
    {
        result.store = crate::collect::redis::store_load(a, b, requests, 0);
    }
}

/// The counters and rates of one strategy, summed over the parts (latency filled in by the caller).
fn sum_strategy(each: &[&StrategyResult], windows: &[Option<&PartStrategy>]) -> StrategyResult {
    let first = each[0];
    let mut by_class: BTreeMap<String, u64> = BTreeMap::new();
    for s in each {
        for (k, v) in &s.errors.by_class {
            *by_class.entry(k.clone()).or_insert(0) += v;
        }
    }
    let sum_f = |f: fn(&StrategyResult) -> f64| each.iter().map(|s| f(s)).sum::<f64>();
    let sum_u = |f: fn(&StrategyResult) -> u64| each.iter().map(|s| f(s)).sum::<u64>();
    let (cred, head, samples) = windows.iter().flatten().fold((0u64, 0u64, 0u64), |(c, h, n), w| {
        (c + w.credential_bytes_sum, h + w.header_bytes_sum, n + w.bytes_samples)
    });
    let target_rate: Option<f64> = each.iter().map(|s| s.schedule.target_rate_per_sec).sum();
    StrategyResult {
        name: first.name.clone(),
        strategy: first.strategy.clone(),
        variant: first.variant.clone(),
        requests: sum_u(|s| s.requests),
        throughput_rps: sum_f(|s| s.throughput_rps),
        success_rps: sum_f(|s| s.success_rps),
        failure_rps: sum_f(|s| s.failure_rps),
        errors: Errors { total: sum_u(|s| s.errors.total), by_class },
        outcomes: sum_outcomes(each),
        latency_us: BTreeMap::new(),
        service_time_us: BTreeMap::new(),
        latency_by_outcome_us: BTreeMap::new(),
        latency_by_client_us: BTreeMap::new(),
        credential_bytes: cred as f64 / samples.max(1) as f64,
        request_header_bytes: head as f64 / samples.max(1) as f64,
        wire: None,
        store: StoreLoad::default(),
        target_cpu_us_per_request: None,
        revocation_window_ms: merge_revocation(&each.iter().map(|s| &s.revocation_window_ms).collect::<Vec<_>>()),
        schedule: ScheduleHealth {
            target_rate_per_sec: target_rate,
            achieved_rate_per_sec: sum_f(|s| s.schedule.achieved_rate_per_sec),
            late_starts: sum_u(|s| s.schedule.late_starts),
            max_lag_us: each.iter().map(|s| s.schedule.max_lag_us).max().unwrap_or(0),
            driver_cpu_percent: None,
        },
        timeline: Vec::new(),
        stages: Vec::new(),
        store_distance: None,
        outage: None,
        failover: None,
        rotation: None,
        repeats: Vec::new(),
        requests_accounting: None,
        store_down: None,
        // From the shared target's /metrics over the whole run (`target_figures`), not a per-part sum.
        auth_paths: Default::default(),
        instances: Vec::new(),
        // Breaking points and USL fits come from staged or swept runs, which are not merged.
        capacity: None,
        usl: None,
        cache: None,
        connections: None,
    }
}

/// The parts' revocation probes together: probes summed, the largest window (or bound) and the
/// longest observed one; the median of all the probes cannot be recomposed from the parts'
/// medians, so it is null (not measured) when more than one part probed.
fn merge_revocation(windows: &[&RevocationWindow]) -> RevocationWindow {
    let probed: Vec<&RevocationWindow> = windows.iter().copied().filter(|w| w.probes > 0).collect();
    let Some(first) = probed.first() else { return RevocationWindow::default() };
    let max_of = |f: fn(&RevocationWindow) -> Option<f64>| probed.iter().filter_map(|w| f(w)).reduce(f64::max);
    RevocationWindow {
        p50: if probed.len() == 1 { first.p50 } else { None },
        max: max_of(|w| w.max),
        probes: probed.iter().map(|w| w.probes).sum(),
        bounded: probed.iter().any(|w| w.bounded),
        observed_max: max_of(|w| w.observed_max),
        ..(*first).clone()
    }
}

fn sum_outcomes(each: &[&StrategyResult]) -> Outcomes {
    let mut o = Outcomes::default();
    for s in each {
        let x = &s.outcomes;
        o.expected_allow += x.expected_allow;
        o.expected_deny += x.expected_deny;
        o.unexpected_allow += x.unexpected_allow;
        o.unexpected_deny += x.unexpected_deny;
        o.timeout += x.timeout;
        o.connect_error += x.connect_error;
        o.protocol_error += x.protocol_error;
    }
    o
}

/// A part that lagged its schedule, error classes only one part saw, windows far apart, stages.
fn strategy_warnings(
    parts: &[Part],
    each: &[&StrategyResult],
    windows: &[Option<&PartStrategy>],
    warnings: &mut Vec<String>,
) {
    let name = &each[0].name;
    for (p, s) in parts.iter().zip(each) {
        let tag = format!("{name}: part {}/{}", p.info.k, p.info.n);
        if let Some(t) = s.schedule.target_rate_per_sec
            && s.schedule.achieved_rate_per_sec < LAG_SHARE * t
        {
            warnings.push(format!(
                "{tag} lagged its schedule: {:.0} of {t:.0} req/s ({} late starts)",
                s.schedule.achieved_rate_per_sec, s.schedule.late_starts
            ));
        }
        for (class, n) in s.errors.by_class.iter().filter(|(_, n)| **n > 0) {
            let elsewhere = each
                .iter()
                .filter(|o| !std::ptr::eq(**o, *s))
                .any(|o| o.errors.by_class.get(class).is_some_and(|m| *m > 0));
            if !elsewhere && each.len() > 1 {
                warnings.push(format!("{tag} saw {n} `{class}` error(s) that no other part saw"));
            }
        }
        if !s.stages.is_empty() && p.info.k == 1 {
            warnings
                .push(format!("{name}: per-stage figures are not merged (not measured here); see each part's report"));
        }
    }
    let starts: Vec<u64> = windows.iter().flatten().map(|w| w.window_start_unix_ms).collect();
    if let (Some(lo), Some(hi)) = (starts.iter().min(), starts.iter().max())
        && hi - lo > SKEW_WARN_MS
    {
        warnings.push(format!(
            "{name}: the parts' measured windows started {} ms apart: they overlap only partly",
            hi - lo
        ));
    }
}

/// Reads `histograms.b64`: one `<name> <base64 V2 histogram>` per line.
pub fn read_full_histograms(path: &Path) -> Result<Vec<(String, Histogram<u64>)>, MergeError> {
    let err = |what: String| MergeError::Histograms { path: path.display().to_string(), what };
    let text =
        std::fs::read_to_string(path).map_err(|e| err(format!("cannot read the full-resolution histograms: {e}")))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, b64) =
            line.split_once(' ').ok_or_else(|| err(format!("line {}: expected `<name> <base64>`", n + 1)))?;
        out.push((name.to_owned(), decode_histogram(b64).map_err(|e| err(format!("line {}: {e}", n + 1)))?));
    }
    Ok(out)
}

/// One base64 HdrHistogram (V2 or V2 deflate), as an interval log or `histograms.b64` holds it.
fn decode_histogram(b64: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64.trim()).map_err(|e| format!("bad base64: {e}"))?;
    Deserializer::new().deserialize(&mut bytes.as_slice()).map_err(|e| format!("bad histogram: {e:?}"))
}

fn add_into(into: &mut Histogram<u64>, h: &Histogram<u64>, path: &Path) -> Result<(), MergeError> {
    into.add(h)
        .map_err(|e| MergeError::Histograms { path: path.display().to_string(), what: format!("cannot add: {e:?}") })
}

/// One merged second while it is being filled.
struct SecondSlot {
    ops: Vec<Histogram<u64>>,
    requests: f64,
    errors: u64,
}

/// The parts' per-second histograms (`intervals.hlog`) and timeline points, aligned on the wall
/// clock: part second `i` goes into merged second `round(offset + i)`, `offset` being how long
/// after the earliest part's window this part's window started.
fn merge_intervals(
    parts: &[Part],
    name: &str,
    windows: &[Option<&PartStrategy>],
) -> Result<Vec<FinishedInterval>, MergeError> {
    let base_ms = windows.iter().flatten().map(|w| w.window_start_unix_ms).min().unwrap_or(0);
    let mut seconds: BTreeMap<u64, SecondSlot> = BTreeMap::new();
    for (p, w) in parts.iter().zip(windows) {
        let offset_s = w.map_or(0.0, |w| (w.window_start_unix_ms - base_ms) as f64 / 1000.0);
        let merged_index = |i: f64| merged_second(offset_s, i);
        let timeline = p.report.strategies.iter().find(|s| s.name == name).map_or(&[][..], |s| s.timeline.as_slice());
        for point in timeline {
            let e = seconds.entry(merged_index(point.t_s)).or_insert_with(new_slot);
            e.requests += point.rps;
            e.errors += point.errors;
        }
        let path = p.dir.join("hist").join(output::slug(name)).join("intervals.hlog");
        for (index, op, h) in read_interval_log(&path)? {
            let e = seconds.entry(merged_index(index as f64)).or_insert_with(new_slot);
            add_into(&mut e.ops[op], &h, &path)?;
        }
    }
    Ok(seconds.into_iter().map(|(index, slot)| finish_second(index, slot)).collect())
}

/// The merged second that part second `second` falls in, its part's window having started
/// `offset_s` after the earliest part's: the one holding the part second's midpoint.
fn merged_second(offset_s: f64, second: f64) -> u64 {
    (offset_s + second + 0.5).floor().max(0.0) as u64
}

fn new_slot() -> SecondSlot {
    SecondSlot { ops: (0..5).map(|_| new_histogram()).collect(), requests: 0.0, errors: 0 }
}

/// A merged second as the engine's own seconds are: its point and its per-operation histograms.
fn finish_second(index: u64, slot: SecondSlot) -> FinishedInterval {
    let mut all = new_histogram();
    for h in &slot.ops {
        let _ = all.add(h);
    }
    let point = TimelinePoint {
        t_s: index as f64,
        rps: slot.requests,
        p50_us: all.value_at_quantile(0.5),
        p99_us: all.value_at_quantile(0.99),
        errors: slot.errors,
    };
    let ops = slot.ops.iter().map(|h| (!h.is_empty()).then(|| crate::engine::record::compact(h))).collect();
    FinishedInterval { index, point, ops }
}

/// `(second, operation index, histogram)` for every interval of an authbench interval log.
fn read_interval_log(path: &Path) -> Result<Vec<(u64, usize, Histogram<u64>)>, MergeError> {
    let err = |what: String| MergeError::Histograms { path: path.display().to_string(), what };
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read the interval log: {e}")))?;
    let mut out = Vec::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let entry = entry.map_err(|e| err(format!("malformed interval log: {e:?}")))?;
        let LogEntry::Interval(iv) = entry else { continue };
        let tag = iv.tag().map(|t| t.as_str()).unwrap_or_default();
        let op = Op::ALL.iter().position(|o| o.name() == tag).ok_or_else(|| err(format!("unknown tag `{tag}`")))?;
        let h = decode_histogram(iv.encoded_histogram()).map_err(err)?;
        out.push((iv.start_timestamp().as_secs(), op, h));
    }
    Ok(out)
}

/// The merged run's report: the first part's scenario and tool, traffic summed over the parts.
fn merged_report(parts: &[Part], dirs: &[PathBuf], strategies: Vec<StrategyResult>, warnings: Vec<String>) -> Report {
    let first = &parts[0].report;
    let started_ms = parts.iter().map(|p| p.info.started_unix_ms).min().unwrap_or(0);
    let rates: Option<f64> = parts.iter().map(|p| p.report.traffic.rate_per_sec).sum();
    let command = std::iter::once("authbench merge".to_owned())
        .chain(dirs.iter().map(|d| d.display().to_string()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut report = Report {
        schema: first.schema,
        tool: first.tool.clone(),
        scenario: first.scenario.clone(),
        command,
        started_at: output::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_millis(started_ms)),
        machine: Machine {
            pinning: format!("{} driver parts; part 1: {}", parts.len(), first.machine.pinning),
            ..first.machine.clone()
        },
        traffic: TrafficInfo {
            rate_per_sec: rates,
            connections: parts.iter().map(|p| p.report.traffic.connections).sum(),
            users: parts.iter().map(|p| p.report.traffic.users).sum(),
            ..first.traffic.clone()
        },
        store_kind: first.store_kind.clone(),
        interrupted: parts.iter().any(|p| p.report.interrupted),
        strategies,
        thresholds: Vec::new(),
        warnings,
        part: None,
        parts: parts.iter().map(|p| p.info.clone()).collect(),
    };
    report.thresholds = first.thresholds.iter().map(|t| reevaluate(t, &report)).collect();
    report
}

/// A part's threshold checked again against the merged report (as the part had it if unparsable).
fn reevaluate(t: &ThresholdResult, report: &Report) -> ThresholdResult {
    match crate::thresholds::Threshold::parse(&t.metric, &t.condition) {
        Ok(th) => th.evaluate(report),
        Err(_) => t.clone(),
    }
}

/// Write the merged results directory: report.json, summary.csv, README.md, the histogram files
/// and the rendered report.
fn write(
    out: &Path,
    report: &Report,
    files: &[(String, NamedHistograms, Vec<FinishedInterval>)],
) -> Result<(), MergeError> {
    let w = |e: anyhow::Error| MergeError::Write(format!("{e:#}"));
    std::fs::create_dir_all(out).map_err(|e| MergeError::Write(format!("creating {}: {e}", out.display())))?;
    let base = std::time::UNIX_EPOCH
        + std::time::Duration::from_millis(report.parts.iter().map(|p| p.started_unix_ms).min().unwrap_or(0));
    for (label, hists, intervals) in files {
        let mut rec = Recorder::new();
        for op in Op::ALL {
            if let Some(h) = hists.get(&format!("latency.{}", op.name())) {
                rec.ops[op as usize].latency = h.clone();
            }
            if let Some(h) = hists.get(&format!("service.{}", op.name())) {
                rec.ops[op as usize].service = h.clone();
            }
        }
        for o in Outcome::ALL {
            rec.api_by_outcome[o as usize] = hists.get(&format!("api_outcome.{}", o.name())).cloned();
        }
        for c in ClientKind::ALL {
            rec.api_by_client[c as usize] = hists.get(&format!("api_client.{}", c.name())).cloned();
        }
        let ops: Vec<_> =
            Op::ALL.iter().map(|op| (*op, &rec.ops[*op as usize].latency, &rec.ops[*op as usize].service)).collect();
        output::write_histograms(out, label, &ops).map_err(w)?;
        output::write_interval_log(out, label, base, intervals).map_err(w)?;
        output::write_full_histograms(out, label, &rec).map_err(w)?;
    }
    output::write_report_json(out, report).map_err(w)?;
    output::write_summary_csv(out, report).map_err(w)?;
    output::write_run_readme(out, report).map_err(w)?;
    crate::report::render(out, report).map_err(w)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_seconds_land_in_the_merged_second_holding_their_midpoint() {
        assert_eq!(merged_second(0.0, 0.0), 0);
        assert_eq!(merged_second(0.0, 3.0), 3);
        assert_eq!(merged_second(0.3, 3.0), 3, "[3.3, 4.3) is mostly merged second 3");
        assert_eq!(merged_second(0.7, 3.0), 4, "[3.7, 4.7) is mostly merged second 4");
        assert_eq!(merged_second(2.0, 0.0), 2);
    }

    #[test]
    fn revocation_windows_combine_exactly_or_not_at_all() {
        let a = RevocationWindow {
            p50: Some(1.0),
            max: Some(2.0),
            probes: 5,
            observed_max: Some(2.0),
            ..Default::default()
        };
        let b = RevocationWindow {
            p50: Some(3.0),
            max: Some(9.0),
            probes: 5,
            bounded: true,
            observed_max: Some(4.0),
            ..Default::default()
        };
        let none = RevocationWindow::default();
        let m = merge_revocation(&[&a, &b, &none]);
        assert_eq!((m.probes, m.max, m.observed_max, m.bounded, m.p50), (10, Some(9.0), Some(4.0), true, None));
        assert_eq!(merge_revocation(&[&a, &none]), a, "one part probed: its window as it is");
    }
}
