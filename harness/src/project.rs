//! `authbench project RESULTS... --rps N [--users M] [--headroom PCT] [--format table|json]`: what
//! N requests per second and M live users cost per strategy (target cores, Redis shards, store
//! memory, bandwidth), computed only from figures measured in saved runs. Owns the projection's
//! arithmetic, its stated assumptions and its table; every input is printed beside the output it
//! feeds with the results directory and the figure key it came from, and a missing input makes
//! its output "not measured", never a guess.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::compare::{CompareError, load_report};
use crate::figures::{self, Figure};
use crate::report::fmt;
use crate::results::{Report, StrategyResult};
use crate::targets::StrategyKind;
use crate::targets::strategy::profile::StoreOp;

/// Command-line options of `authbench project`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProjectArgs {
    /// Results directories (or report.json files); each strategy's inputs come from the first
    /// directory that measured them.
    #[arg(required = true, value_name = "RESULTS")]
    pub dirs: Vec<PathBuf>,
    /// Requests per second to provision for (all strategies alike).
    #[arg(long = "rps", value_name = "N")]
    pub rate_per_sec: f64,
    /// Live users (one live credential each) whose records the store must hold.
    #[arg(long, value_name = "M")]
    pub users: Option<u64>,
    /// Share of every CPU kept free, percent: capacity = need / (1 − headroom).
    #[arg(long = "headroom", value_name = "PCT", default_value_t = DEFAULT_HEADROOM_PCT)]
    pub headroom_pct: f64,
    /// `table` (for the terminal) or `json`.
    #[arg(long, value_enum, default_value_t = ProjectFormat::Table)]
    pub format: ProjectFormat,
}

/// Output form of `authbench project`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProjectFormat {
    Table,
    Json,
}

/// `--headroom` when not given, percent.
pub const DEFAULT_HEADROOM_PCT: f64 = 30.0;

/// Why a projection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error(transparent)]
    Load(#[from] CompareError),
    #[error("--rps must be a request rate > 0, got {0}")]
    BadRate(f64),
    #[error("--headroom must be a percentage from 0 up to (not including) 100, got {0}")]
    BadHeadroom(f64),
    #[error("the results hold no strategy to project")]
    Empty,
    #[error("writing JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// One measured figure a projection reads, and where it was measured.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Input {
    /// The figure's registry key (`target_cpu_us_per_request`).
    pub figure: String,
    pub value: Option<f64>,
    pub unit: String,
    /// The results directory it was read from; null when no directory measured it.
    pub source: Option<String>,
}

/// One projected quantity with the formula that made it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Output {
    pub what: String,
    /// Null when an input it needs was not measured (or not asked for).
    pub value: Option<f64>,
    pub unit: String,
    /// The arithmetic, with the input figures' keys.
    pub formula: String,
    /// Why there is no value, or what the value means.
    pub note: Option<String>,
}

/// One strategy's projection.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StrategyProjection {
    pub strategy: String,
    pub inputs: Vec<Input>,
    pub outputs: Vec<Output>,
}

/// The whole projection.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Projection {
    pub rate_per_sec: f64,
    pub users: Option<u64>,
    pub headroom_pct: f64,
    pub assumptions: Vec<String>,
    pub strategies: Vec<StrategyProjection>,
    /// The linear-scaling assumption checked: one entry per strategy measured both with one
    /// instance and with several (given runs of both); empty when the runs cannot check it.
    pub scaling_checks: Vec<ScalingCheck>,
    /// Redis shards checked: a one-node run against a cluster run of the same strategies; empty when
    /// the runs cannot check it.
    pub cluster_checks: Vec<ClusterCheck>,
}

/// "N shards give N times one node": the projection's shard arithmetic against a cluster run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClusterCheck {
    pub strategy: String,
    /// Nodes (masters) in the cluster run.
    pub nodes: usize,
    /// N × the one-node ceiling (1e6 / the one-node run's store CPU per request): what the
    /// projection assumes N shards carry.
    pub predicted_ceiling_rps: f64,
    /// 1e6 / the busiest node's store CPU per request in the cluster run: where the cluster
    /// saturates when its busiest node does (measured spread and per-node cost; the saturation
    /// itself is not driven on this machine).
    pub measured_ceiling_rps: f64,
    /// (measured − predicted) / predicted, percent.
    pub difference_pct: f64,
    pub agrees: bool,
    /// Store CPU per request summed over the cluster's nodes against the one node's: what the
    /// cluster protocol itself costs.
    pub single_cpu_us_per_request: f64,
    pub cluster_cpu_us_per_request: f64,
    /// The busiest node's share of the cluster's commands, percent (100 / N when even).
    pub busiest_ops_share_pct: Option<f64>,
    pub source_single: String,
    pub source_cluster: String,
}

/// Largest difference between predicted and measured that still counts as agreement, percent.
pub const SCALING_AGREEMENT_PCT: f64 = 25.0;

/// Linear scaling, checked: N instances should cost what one does per request.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScalingCheck {
    pub strategy: String,
    /// Target processes in the measured run.
    pub instances: usize,
    /// Target CPU per request with one instance: what the projection assumes N instances cost.
    pub predicted_cpu_us_per_request: f64,
    /// The same figure measured with `instances` processes (CPU and requests summed over them).
    pub measured_cpu_us_per_request: f64,
    /// (measured − predicted) / predicted, percent.
    pub difference_pct: f64,
    /// Within ±[`SCALING_AGREEMENT_PCT`].
    pub agrees: bool,
    /// Where the difference sits: the target CPU per store operation above the run's baseline in
    /// each run, when both runs have one; null otherwise.
    pub why: Option<String>,
    pub source_one: String,
    pub source_many: String,
}

/// What the projection assumes, printed with it.
pub const ASSUMPTIONS: [&str; 6] = [
    "targets scale linearly: N req/s need N × (target CPU per request) of CPU, spread over as many cores as it takes \
     (the measured CPU is of one target process pinned to one core); checked when the runs given include \
     one with `instances = 1` and one with more (the second sums its instances' CPU and requests)",
    "Redis executes commands on one thread: one shard gives at most one core of command CPU; shards = store CPU \
     needed / (one core × (1 − headroom)), rounded up, with the keys spread evenly (hash tags keep each request's \
     keys on one shard)",
    "store memory = users × store memory per live credential (used_memory growth over the window / logins that \
     succeeded in it; logouts in the same window delete records, which makes it an underestimate when the mix logs out)",
    "bandwidth = N × the bytes per request the driver counted at its sockets in each direction (below TLS; \
     every operation of the mix), or inbound = N × the mean api request head where a run has no socket counts",
    "headroom applies to target cores and Redis shards alike",
    "figures are from this machine's runs: other CPUs, TLS, proxies and a network between target and store change them",
];

/// Figures the projection reads, in the order they are printed.
static INPUT_FIGURES: [&Figure; 7] = [
    &figures::TARGET_CPU_US_PER_REQUEST,
    &figures::STORE_OPS_PER_REQUEST,
    &figures::STORE_CPU_US_PER_REQUEST,
    &figures::STORE_MEMORY_BYTES_PER_SESSION,
    &figures::REQUEST_HEADER_BYTES,
    &figures::WIRE_SENT_BYTES_PER_REQUEST,
    &figures::WIRE_RECEIVED_BYTES_PER_REQUEST,
];

/// Entry point of `authbench project`: prints the table or JSON to stdout.
pub fn main(args: &ProjectArgs) -> Result<(), ProjectError> {
    let mut runs = Vec::with_capacity(args.dirs.len());
    for d in &args.dirs {
        runs.push((d.display().to_string(), load_report(d)?));
    }
    let p = project(&runs, args.rate_per_sec, args.users, args.headroom_pct)?;
    match args.format {
        ProjectFormat::Table => print!("{}", table(&p)),
        ProjectFormat::Json => println!("{}", serde_json::to_string_pretty(&p)?),
    }
    Ok(())
}

/// The projection from `(source, report)` pairs, in the order given.
pub fn project(
    runs: &[(String, Report)],
    rate_per_sec: f64,
    users: Option<u64>,
    headroom_pct: f64,
) -> Result<Projection, ProjectError> {
    if !(rate_per_sec.is_finite() && rate_per_sec > 0.0) {
        return Err(ProjectError::BadRate(rate_per_sec));
    }
    if !(headroom_pct.is_finite() && (0.0..100.0).contains(&headroom_pct)) {
        return Err(ProjectError::BadHeadroom(headroom_pct));
    }
    let mut names: Vec<&str> = Vec::new();
    for (_, r) in runs {
        for s in &r.strategies {
            if !names.contains(&s.name.as_str()) {
                names.push(&s.name);
            }
        }
    }
    if names.is_empty() {
        return Err(ProjectError::Empty);
    }
    let keep = 1.0 - headroom_pct / 100.0;
    let strategies = names
        .into_iter()
        .map(|name| {
            let inputs: Vec<Input> = INPUT_FIGURES.iter().map(|f| input(runs, name, f)).collect();
            let mut outputs = outputs(&inputs, rate_per_sec, users, keep);
            if login_writes(runs, name) == Some(false) {
                for o in outputs.iter_mut().filter(|o| o.what == "store memory" && o.value.is_some_and(|v| v > 0.0)) {
                    o.value = None;
                    o.note = Some(
                        "not measured: this strategy's logins write no store record (its records come from \
                         revocations), so memory per login says nothing about memory per user"
                            .to_string(),
                    );
                }
            }
            StrategyProjection { strategy: name.to_string(), inputs, outputs }
        })
        .collect();
    Ok(Projection {
        rate_per_sec,
        users,
        headroom_pct,
        assumptions: ASSUMPTIONS.iter().map(|a| (*a).to_string()).collect(),
        strategies,
        scaling_checks: scaling_checks(runs),
        cluster_checks: cluster_checks(runs),
    })
}

/// Every strategy measured on one Redis node and on a Redis Cluster: the shard arithmetic
/// (N nodes carry N times one) against the cluster's measured per-node load.
fn cluster_checks(runs: &[(String, Report)]) -> Vec<ClusterCheck> {
    let Some((src_one, one)) = runs.iter().find(|(_, r)| r.store_kind == "redis") else { return Vec::new() };
    let Some((src_many, many)) = runs.iter().find(|(_, r)| r.strategies.iter().any(|s| s.store.nodes.len() > 1)) else {
        return Vec::new();
    };
    many.strategies
        .iter()
        .filter_map(|m| {
            let o = one.strategies.iter().find(|o| o.name == m.name)?;
            let single = o.store.cpu_us_per_request.filter(|&c| c > 0.0)?;
            let cluster = m.store.cpu_us_per_request.filter(|&c| c > 0.0)?;
            let busiest = m.store.nodes.iter().filter_map(|n| n.cpu_us_per_request).reduce(f64::max)?;
            let nodes = m.store.nodes.len();
            let predicted = nodes as f64 * 1e6 / single;
            let measured = 1e6 / busiest;
            let total_ops: f64 = m.store.nodes.iter().filter_map(|n| n.ops_per_request).sum();
            let max_ops = m.store.nodes.iter().filter_map(|n| n.ops_per_request).reduce(f64::max);
            let difference_pct = 100.0 * (measured - predicted) / predicted;
            Some(ClusterCheck {
                strategy: m.name.clone(),
                nodes,
                predicted_ceiling_rps: predicted,
                measured_ceiling_rps: measured,
                difference_pct,
                agrees: difference_pct.abs() <= SCALING_AGREEMENT_PCT,
                single_cpu_us_per_request: single,
                cluster_cpu_us_per_request: cluster,
                busiest_ops_share_pct: max_ops.filter(|_| total_ops > 0.0).map(|m| 100.0 * m / total_ops),
                source_single: src_one.clone(),
                source_cluster: src_many.clone(),
            })
        })
        .collect()
}

/// How a predicted-vs-measured check reads in the table.
fn verdict(agrees: bool) -> String {
    if agrees {
        format!("agrees within {} %", fmt::num(SCALING_AGREEMENT_PCT))
    } else {
        format!("DISAGREES by more than {} %", fmt::num(SCALING_AGREEMENT_PCT))
    }
}

/// The cluster checks as table lines.
fn cluster_lines(t: &mut String, checks: &[ClusterCheck]) {
    if checks.is_empty() {
        return;
    }
    let _ =
        writeln!(t, "Redis shards checked (requests/s one command thread per node carries, one node vs a cluster):");
    for c in checks {
        let verdict = verdict(c.agrees);
        let _ = writeln!(
            t,
            "  {:<24} predicted {} req/s ({} × one node), from the busiest node {} req/s ({:+.0} %): {verdict}",
            c.strategy,
            fmt::num(c.predicted_ceiling_rps),
            c.nodes,
            fmt::num(c.measured_ceiling_rps),
            c.difference_pct
        );
        let share = c.busiest_ops_share_pct.map_or_else(|| "not measured".to_string(), |s| format!("{s:.0} %"));
        let _ = writeln!(
            t,
            "    store CPU per request: one node {} µs, the whole cluster {} µs; busiest node's share of commands {share}",
            fmt::num(c.single_cpu_us_per_request),
            fmt::num(c.cluster_cpu_us_per_request)
        );
    }
    t.push('\n');
}

/// Every strategy measured in a one-instance run and in a several-instance run: predicted (the
/// one-instance figure) against measured target CPU per request.
fn scaling_checks(runs: &[(String, Report)]) -> Vec<ScalingCheck> {
    let cpu = &figures::TARGET_CPU_US_PER_REQUEST;
    let Some((src_one, one)) = runs.iter().find(|(_, r)| r.traffic.instances <= 1) else { return Vec::new() };
    let Some((src_many, many)) = runs.iter().find(|(_, r)| r.traffic.instances > 1) else { return Vec::new() };
    many.strategies
        .iter()
        .filter_map(|m| {
            let o = one.strategies.iter().find(|o| o.name == m.name)?;
            let (predicted, measured) = (cpu.value(o, "")?, cpu.value(m, "")?);
            let difference_pct = 100.0 * (measured - predicted) / predicted;
            Some(ScalingCheck {
                strategy: m.name.clone(),
                instances: many.traffic.instances,
                predicted_cpu_us_per_request: predicted,
                measured_cpu_us_per_request: measured,
                difference_pct,
                agrees: difference_pct.abs() <= SCALING_AGREEMENT_PCT,
                why: per_store_op_shift(one, o, many, m).or_else(|| baseline_shift(one, many)),
                source_one: src_one.clone(),
                source_many: src_many.clone(),
            })
        })
        .collect()
}

/// "target CPU per store operation X µs with one instance, Y µs with N": where a store-backed
/// strategy's extra CPU went, from each run's own baseline (a strategy that sent no credential).
fn per_store_op_shift(one: &Report, o: &StrategyResult, many: &Report, m: &StrategyResult) -> Option<String> {
    use crate::report::summary::{baseline, target_cpu_us_per_store_op};
    let (a, b) = (target_cpu_us_per_store_op(o, baseline(one))?, target_cpu_us_per_store_op(m, baseline(many))?);
    let n = many.traffic.instances;
    let concurrency = match (o.store.in_flight_mean, m.store.in_flight_mean) {
        (Some(x), Some(y)) => format!(
            "store operations in flight when one starts: {} with one instance, {} with {n} (measured by the \
             targets); fewer concurrent commands per connection go out fewer per socket write",
            fmt::num(x),
            fmt::num(y)
        ),
        _ => "each instance's store connection carries fewer concurrent commands (not measured in these runs), \
              so fewer go out per socket write"
            .to_string(),
    };
    Some(format!(
        "target CPU per store operation above the baseline: {} µs with one instance, {} µs with {n}; {concurrency}",
        fmt::num(a),
        fmt::num(b),
    ))
}

/// For a strategy with little store work: how the baseline's own CPU per request moved between the
/// runs (what every strategy pays per process and per request, whatever it authenticates with).
fn baseline_shift(one: &Report, many: &Report) -> Option<String> {
    use crate::report::summary::baseline;
    let cpu = &figures::TARGET_CPU_US_PER_REQUEST;
    let (a, b) = (cpu.value(baseline(one)?, "")?, cpu.value(baseline(many)?, "")?);
    Some(format!(
        "the baseline's target CPU per request (no credential) moved too: {} µs with one instance, {} µs with {} \
         ({:+.0} %): HTTP serving and scheduling cost per request changes with the instance count, whatever the \
         strategy",
        fmt::num(a),
        fmt::num(b),
        many.traffic.instances,
        100.0 * (b - a) / a
    ))
}

/// Whether strategy `name`'s login writes a store record, from its kind's profile; `None` when no
/// run knows the kind.
fn login_writes(runs: &[(String, Report)], name: &str) -> Option<bool> {
    let kind = runs.iter().find_map(|(_, r)| r.strategies.iter().find(|s| s.name == name))?.strategy.as_str();
    let kind: StrategyKind = kind.parse().ok()?;
    Some(kind.profile().store_ops.login.iter().any(|op| matches!(op, StoreOp::Set | StoreOp::Sadd)))
}

/// `figure` of strategy `name` from the first run that measured it.
fn input(runs: &[(String, Report)], name: &str, figure: &Figure) -> Input {
    let found = runs.iter().find_map(|(src, r)| {
        let s: &StrategyResult = r.strategies.iter().find(|s| s.name == name)?;
        figure.value(s, "").map(|v| (src.clone(), v))
    });
    Input {
        figure: figure.key.to_string(),
        value: found.as_ref().map(|f| f.1),
        unit: figure.unit.symbol().to_string(),
        source: found.map(|f| f.0),
    }
}

/// The value of the input for `figure`.
fn value(inputs: &[Input], figure: &Figure) -> Option<f64> {
    inputs.iter().find(|i| i.figure == figure.key).and_then(|i| i.value)
}

/// One output row.
fn output(what: &str, value: Option<f64>, unit: &str, formula: &str, note: Option<String>) -> Output {
    Output { what: what.to_string(), value, unit: unit.to_string(), formula: formula.to_string(), note }
}

/// Target cores, store operations, Redis shards, store memory and bandwidth from the inputs.
fn outputs(inputs: &[Input], rate_per_sec: f64, users: Option<u64>, keep: f64) -> Vec<Output> {
    let cpu_us = value(inputs, &figures::TARGET_CPU_US_PER_REQUEST);
    let ops = value(inputs, &figures::STORE_OPS_PER_REQUEST);
    let head_bytes = value(inputs, &figures::REQUEST_HEADER_BYTES);
    let no_store = ops.is_some_and(|o| o == 0.0);
    let mut out = vec![
        output(
            "target cores",
            cpu_us.map(|c| rate_per_sec * c / 1e6 / keep),
            "cores",
            "rps × target_cpu_us_per_request / 1e6 / (1 − headroom)",
            cpu_us.is_none().then(|| "target CPU per request not measured".to_string()),
        ),
        output(
            "store operations",
            ops.map(|o| rate_per_sec * o),
            "ops/s",
            "rps × store.ops_per_request",
            ops.is_none().then(|| "store operations not measured".to_string()),
        ),
    ];
    out.extend(store_cpu(inputs, rate_per_sec, keep, no_store));
    out.push(memory(inputs, users, no_store));
    out.extend(bandwidth(inputs, rate_per_sec, head_bytes));
    out
}

/// Inbound and outbound bandwidth: from the bytes counted at the driver's sockets where the run
/// has them, else inbound from the request heads and outbound not measured.
fn bandwidth(inputs: &[Input], rate_per_sec: f64, head_bytes: Option<f64>) -> [Output; 2] {
    let sent = value(inputs, &figures::WIRE_SENT_BYTES_PER_REQUEST);
    let received = value(inputs, &figures::WIRE_RECEIVED_BYTES_PER_REQUEST);
    let inbound = match sent {
        Some(b) => output(
            "inbound bandwidth",
            Some(rate_per_sec * b),
            "B/s",
            "rps × wire.sent_bytes_per_request",
            Some("bytes the driver wrote at its sockets (below TLS)".to_string()),
        ),
        None => output(
            "inbound bandwidth",
            head_bytes.map(|b| rate_per_sec * b),
            "B/s",
            "rps × request_header_bytes",
            Some("request heads only (the run counted no socket bytes)".to_string()),
        ),
    };
    let outbound = output(
        "outbound bandwidth",
        received.map(|b| rate_per_sec * b),
        "B/s",
        "rps × wire.received_bytes_per_request",
        received.is_none().then(|| "answers' bytes not measured by this run".to_string()),
    );
    [inbound, outbound]
}

/// Store CPU per operation and the Redis shards it takes.
fn store_cpu(inputs: &[Input], rate_per_sec: f64, keep: f64, no_store: bool) -> [Output; 2] {
    let ops = value(inputs, &figures::STORE_OPS_PER_REQUEST);
    let store_cpu_us = value(inputs, &figures::STORE_CPU_US_PER_REQUEST);
    let per_op = match (ops, store_cpu_us) {
        (Some(o), Some(c)) if o > 0.0 => Some(c / o),
        _ => None,
    };
    let (shards, note) = match (no_store, store_cpu_us) {
        (true, _) => (Some(0.0), Some("no store commands were measured: no store needed".to_string())),
        (false, Some(c)) => (Some((rate_per_sec * c / 1e6 / keep).ceil().max(1.0)), None),
        (false, None) => (None, Some("store CPU not measured (memory store or external target)".to_string())),
    };
    [
        output(
            "store CPU per operation",
            per_op,
            "µs",
            "store.cpu_us_per_request / store.ops_per_request",
            no_store.then(|| "no store commands".to_string()),
        ),
        output(
            "Redis shards",
            shards,
            "shards",
            "ceil(rps × store.cpu_us_per_request / 1e6 / (1 − headroom)); one command thread per shard",
            note,
        ),
    ]
}

/// Store memory for `users` live credentials.
fn memory(inputs: &[Input], users: Option<u64>, no_store: bool) -> Output {
    let per = value(inputs, &figures::STORE_MEMORY_BYTES_PER_SESSION);
    let (value, note) = match (users, per, no_store) {
        (None, _, _) => (None, Some("not asked: give --users".to_string())),
        (Some(_), _, true) => (Some(0.0), Some("no store commands were measured: nothing stored".to_string())),
        (Some(u), Some(p), false) if p >= 0.0 => (Some(u as f64 * p), None),
        (Some(_), Some(p), false) => (
            None,
            Some(format!(
                "not usable: measured {} B per credential (records expired faster than created)",
                fmt::num(p)
            )),
        ),
        (Some(_), None, false) => (None, Some("store memory per credential not measured".to_string())),
    };
    output("store memory", value, "B", "users × store.memory_bytes_per_session", note)
}

/// A value with its unit for the table, bytes and rates in readable units.
fn show(value: Option<f64>, unit: &str) -> String {
    let Some(v) = value.filter(|v| v.is_finite()) else { return fmt::NOT_MEASURED.to_string() };
    match unit {
        "B" => bytes(v),
        "B/s" => format!("{}/s ({} Gbit/s)", bytes(v), fmt::num(v * 8.0 / 1e9)),
        "cores" => format!("{v:.1} cores"),
        "shards" => format!("{v:.0}"),
        u => fmt::with_unit(v, u),
    }
}

/// Bytes in the largest readable decimal unit.
fn bytes(v: f64) -> String {
    const UNITS: [(&str, f64); 4] = [("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)];
    UNITS
        .iter()
        .find(|(_, s)| v.abs() >= *s)
        .map_or_else(|| format!("{} B", fmt::num(v)), |(u, s)| format!("{} {u}", fmt::num(v / s)))
}

/// The projection as text: per strategy, outputs then inputs with their sources; then assumptions.
pub fn table(p: &Projection) -> String {
    let mut t = String::new();
    let users = p.users.map_or_else(|| "no --users".to_string(), |u| format!("{} live users", fmt::num(u as f64)));
    let _ = writeln!(
        t,
        "projection for {} req/s, {users}, headroom {} % (every input measured; \"not measured\" is never guessed)\n",
        fmt::num(p.rate_per_sec),
        fmt::num(p.headroom_pct)
    );
    for s in &p.strategies {
        let _ = writeln!(t, "{}", s.strategy);
        for o in &s.outputs {
            let note = o.note.as_deref().map(|n| format!("  [{n}]")).unwrap_or_default();
            let _ = writeln!(t, "  {:<24} {:>28}   = {}{note}", o.what, show(o.value, &o.unit), o.formula);
        }
        let _ = writeln!(t, "  inputs:");
        for i in &s.inputs {
            let from = i.source.as_deref().map_or_else(|| "no results directory measured it".to_string(), short_source);
            let _ = writeln!(t, "    {:<32} {:>16}   from {from}", i.figure, fmt::opt(i.value, &i.unit));
        }
        t.push('\n');
    }
    if !p.scaling_checks.is_empty() {
        let _ = writeln!(t, "linear scaling checked (target CPU per request, one instance vs several):");
        for c in &p.scaling_checks {
            let verdict = verdict(c.agrees);
            let _ = writeln!(
                t,
                "  {:<24} predicted {} µs, measured {} µs with {} instances ({:+.0} %): {verdict}",
                c.strategy,
                fmt::num(c.predicted_cpu_us_per_request),
                fmt::num(c.measured_cpu_us_per_request),
                c.instances,
                c.difference_pct
            );
            if let Some(why) = &c.why {
                let _ = writeln!(t, "    {why}");
            }
        }
        t.push('\n');
    }
    cluster_lines(&mut t, &p.cluster_checks);
    t.push_str("assumptions:\n");
    for a in &p.assumptions {
        let _ = writeln!(t, "  - {a}");
    }
    t
}

/// A results path as given, without a trailing `report.json`.
fn short_source(s: &str) -> String {
    let p = Path::new(s);
    if p.file_name().is_some_and(|n| n == "report.json") {
        p.parent().map_or_else(|| s.to_string(), |d| d.display().to_string())
    } else {
        s.to_string()
    }
}
