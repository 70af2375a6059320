//! What the report says in words: the decision table, the trade-off sentences, the answers to the
//! questions the seed articles raise, and the warnings derived from the figures. Shared by the
//! HTML and Markdown pages. Every cell and sentence is built from the run's own figures (read
//! through the figure registry, [`crate::figures`]); what the run did not measure says "not
//! measured", never how a strategy is designed to behave.

use std::collections::BTreeMap;

use crate::figures::{self, Figure};
use crate::results::{Report, StageResult, StrategyResult};
use crate::targets::config::StrategyKind;
use crate::targets::strategy::profile::{Clients, Transport};

use super::fmt;

/// The first stage (stages sorted by target rate) past the knee: p99 above twice the lowest-rate
/// p99, or achieved rate below 95 % of the target, with the next stage (if any) past it too.
/// `None` when no stage is.
pub fn knee_index(stages: &[StageResult]) -> Option<usize> {
    let base = stages.first()?.p99_us.max(1) as f64;
    let past = |st: &StageResult| {
        let slow = st.p99_us as f64 > 2.0 * base;
        let short = st.target_rate_per_sec > 0.0 && st.achieved_rps < 0.95 * st.target_rate_per_sec;
        slow || short
    };
    // A stage past the knee whose next stage is back below it was a stall, not the knee.
    (1..stages.len()).find(|&i| past(&stages[i]) && stages.get(i + 1).is_none_or(past))
}

/// The decision table's figure columns, each with the operation it is read for (`api`) or `""`.
/// The table is: strategy, these (the store-down column before the last), in this order.
pub static DECISION_FIGURES: [(&Figure, &str); 8] = [
    (&figures::P50_US, "api"),
    (&figures::P99_US, "api"),
    (&figures::THROUGHPUT_RPS, ""),
    (&figures::TARGET_CPU_US_PER_REQUEST, ""),
    (&figures::CREDENTIAL_BYTES, ""),
    (&figures::STORE_OPS_PER_REQUEST, ""),
    (&figures::REVOCATION_WINDOW_MS_MAX, ""),
    (&figures::UNEXPECTED_ALLOW, ""),
];

/// Head of the column that shows what an injected store outage did (from the `outage.*` figures).
pub const STORE_DOWN_HEAD: &str = "store down";

/// Column headers of the decision table, from the figure registry's labels.
pub fn decision_headers() -> [String; 10] {
    let head =
        |(f, op): &(&Figure, &str)| if op.is_empty() { f.label.to_string() } else { format!("{op} {}", f.label) };
    let mut out: [String; 10] = Default::default();
    out[0] = "strategy".to_string();
    for (i, fig) in DECISION_FIGURES.iter().take(7).enumerate() {
        out[i + 1] = head(fig);
    }
    out[8] = STORE_DOWN_HEAD.to_string();
    out[9] = head(&DECISION_FIGURES[7]);
    out
}

/// One row of the decision table, already formatted.
pub struct DecisionRow {
    pub cells: [String; 10],
    pub unexpected_allow: u64,
}

/// Column headers of the store-outage table.
pub const OUTAGE_HEADERS: [&str; 9] = [
    "strategy",
    "outage",
    "200 during",
    "503 during",
    "other during",
    "first failure",
    "recovery",
    "revoked allowed during",
    "unexpected allow (run)",
];

/// Column headers of the failover table.
pub const FAILOVER_HEADERS: [&str; 9] = [
    "strategy",
    "failover",
    "WAIT / min-replicas",
    "new primary after",
    "failover as requests saw it",
    "errors in window",
    "revocations: acknowledged / refused / LOST",
    "sessions: acknowledged / refused / lost",
    "replays unanswered",
];

/// What the failover table's columns mean (under the table in both pages).
pub const FAILOVER_FOOT: &str = "The primary of a Sentinel group (2 replicas, 3 Sentinels, down-after 1 s), or the Redis Cluster master serving slot 0 (cluster-node-timeout 1 s with replicas, cluster-require-full-coverage no), was killed mid-window; a cluster master without a replica is a partial outage: its slots stay down (nothing takes over), and errors in window gives the share of the traffic's requests that failed; replays unanswered are then the probes whose keys hashed to the dead master. In cut-replication mode the replicas were cut off (stopped, links dropped) for the lead before the kill while clients kept writing to it. In the lead the probes revoked pre-made credentials and logged in new users; after the failover every acknowledged (200) one was replayed: a revoked credential accepted again is a revocation the failover LOST (an unexpected allow), a new credential refused is a lost session. refused: answered otherwise (503), so the client knew. failover as requests saw it: a poller with valid credentials (one; six on a cluster, so some of their keys hash to the killed master), first failed answer to the first round of 200s after it.";

/// Column headers of the key-rotation table.
pub const ROTATION_HEADERS: [&str; 6] =
    ["strategy", "overlap", "old token rejected after", "logins/s before", "peak logins/s after", "logins per second"];

/// One of the articles' questions: what they claim, then one measured line per strategy.
pub struct Answer {
    pub question: String,
    pub claim: String,
    pub measured: Vec<String>,
}

/// Everything the pages say in words about one report.
pub struct Summary {
    pub rows: Vec<DecisionRow>,
    pub tradeoffs: Vec<String>,
    /// Answers to the seed articles' questions.
    pub answers: Vec<Answer>,
    /// Warnings from the report plus ones derived from the figures; the bool marks security ones.
    pub warnings: Vec<(bool, String)>,
    /// Store-outage table rows (strategies with a measured outage), formatted.
    pub outage_rows: Vec<[String; 9]>,
    /// Failover table rows (strategies with a measured failover), formatted.
    pub failover_rows: Vec<[String; 9]>,
    /// Key-rotation table rows (strategies with a measured rotation), formatted.
    pub rotation_rows: Vec<[String; 6]>,
}

/// What the store-down cell says: what the injected store outage did, measured by the
/// availability prober, or "not measured" when the run injected none.
pub fn store_down_cell(s: &StrategyResult) -> String {
    let Some(o) = &s.outage else {
        return s.store_down.as_ref().map_or_else(|| fmt::NOT_MEASURED.to_string(), store_down_check_cell);
    };
    let total: u64 = o.during.values().sum();
    let ok = o.during.get("200").copied().unwrap_or(0);
    let failed = total - ok;
    let how = if total == 0 {
        "no prober answer during the outage".to_string()
    } else if failed == 0 {
        format!("stayed up ({})", statuses(&o.during))
    } else if ok == 0 {
        format!("failed closed ({})", statuses(&o.during))
    } else {
        format!("partly failed ({})", statuses(&o.during))
    };
    let recovery = match o.recovery_ms {
        _ if failed == 0 => String::new(),
        Some(r) => format!(", back in {}", fmt::ms(r)),
        None => ", not back within the window".to_string(),
    };
    let revoked = || o.revoked_allowed_during.map_or_else(|| fmt::NOT_MEASURED.to_string(), |n| n.to_string());
    let open = match (o.fail_open, o.stale_grace_ms) {
        (true, _) => format!("; FAIL-OPEN: {} revoked accepted", revoked()),
        (false, Some(g)) => format!("; STALE for up to {}: {} revoked accepted", fmt::ms(g), revoked()),
        (false, None) => String::new(),
    };
    format!("measured ({} {}): {how}{recovery}{open}", o.mode, fmt::ms(o.duration_s * 1000.0))
}

/// The store-down cell from the short store pause after the measured window: what api and login
/// did while the store was stopped, and how soon api answered 200 again when it had failed.
fn store_down_check_cell(d: &crate::results::StoreDownCheck) -> String {
    let recovery = match d.api_recovery_ms {
        _ if d.api_behaviour.starts_with("unaffected") => String::new(),
        Some(r) => format!(", back in {}", fmt::ms(r)),
        None => ", not back when probing ended".to_string(),
    };
    format!(
        "measured ({} {} after the window): api {}, login {}{recovery}",
        d.mode,
        fmt::ms(d.duration_ms),
        d.api_behaviour,
        d.login_behaviour
    )
}

/// `503 ×176, 200 ×24`: answers by status, most frequent first.
fn statuses(m: &BTreeMap<String, u64>) -> String {
    let mut v: Vec<(&String, &u64)> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter().map(|(k, n)| format!("{k} ×{n}")).collect::<Vec<_>>().join(", ")
}

fn outage_row(s: &StrategyResult) -> Option<[String; 9]> {
    let o = s.outage.as_ref()?;
    let count = |k: &str| o.during.get(k).copied().unwrap_or(0);
    let other: u64 = o.during.iter().filter(|(k, _)| k.as_str() != "200" && k.as_str() != "503").map(|(_, n)| n).sum();
    Some([
        match (o.fail_open, o.stale_grace_ms) {
            (true, _) => format!("{} (fail-open)", s.name),
            (false, Some(g)) => format!("{} (stale grace {})", s.name, fmt::ms(g)),
            (false, None) => s.name.clone(),
        },
        format!("{} {} at {}", o.mode, fmt::ms(o.duration_s * 1000.0), fmt::ms(o.at_s * 1000.0)),
        count("200").to_string(),
        count("503").to_string(),
        other.to_string(),
        o.first_failure_ms.map_or_else(|| "none".to_string(), fmt::ms),
        match o.recovery_ms {
            _ if o.first_failure_ms.is_none() && count("200") == o.during.values().sum::<u64>() => {
                "n/a (never failed)".to_string()
            }
            Some(r) if o.credential_lost => {
                format!("{} (after a new login: the store lost the credential)", fmt::ms(r))
            }
            Some(r) => fmt::ms(r),
            None => "not within the run".to_string(),
        },
        o.revoked_allowed_during.map_or_else(|| "n/a".to_string(), |n| n.to_string()),
        o.unexpected_allow.to_string(),
    ])
}

fn failover_row(s: &StrategyResult) -> Option<[String; 9]> {
    let f = s.failover.as_ref()?;
    let n = |v: Option<u64>| v.map_or_else(|| "n/a".to_string(), |n| n.to_string());
    let lost = match f.revocations_lost {
        Some(l) if l > 0 => format!("**{l} LOST (unexpected allow)**"),
        other => n(other),
    };
    let partial = f.store == "cluster" && f.replicas == 0;
    let errors_share = match s.requests {
        0 => String::new(),
        total => format!(" of {total} ({:.1} %)", f.errors_in_window as f64 * 100.0 / total as f64),
    };
    Some([
        s.name.clone(),
        failover_what(f),
        format!(
            "WAIT {} / min-replicas {} (max lag {} s)",
            f.wait_replicas, f.min_replicas_to_write, f.min_replicas_max_lag_s
        ),
        match f.promoted_after_ms {
            Some(t) => fmt::ms(t),
            None if partial => "none: no replica (its slots stay down)".to_string(),
            None => "none within 15 s".to_string(),
        },
        match (f.failover_ms, f.first_failure_ms) {
            (Some(t), _) => format!("{} ({} failed answers)", fmt::ms(t), f.failed_answers),
            (None, Some(_)) if partial => format!("not back: no replica ({} failed answers)", f.failed_answers),
            (None, Some(_)) => "not over within 15 s".to_string(),
            (None, None) if f.store == "cluster" => {
                "no failed answer (the api needs no store, or the poller's keys live on other masters)".to_string()
            }
            (None, None) => "no failed answer (api does not need the primary)".to_string(),
        },
        format!("{}{errors_share}", f.errors_in_window),
        format!("{} / {} / {lost}", n(f.revocations_acknowledged), n(f.revocations_refused)),
        format!("{} / {} / {}", n(f.sessions_acknowledged), n(f.sessions_refused), n(f.sessions_lost)),
        match partial {
            true => format!("{} (503: keys on the dead master)", f.replays_unanswered),
            false => f.replays_unanswered.to_string(),
        },
    ])
}

/// The failover column: which node failed (a cluster master: its slots and replicas) and how.
fn failover_what(f: &crate::results::FailoverResult) -> String {
    let how = match f.mode.as_str() {
        "cut-replication" => format!("cut-replication {} before kill at {}", fmt::ms(f.lead_ms), fmt::ms(f.at_s * 1e3)),
        m => format!("{m} at {}", fmt::ms(f.at_s * 1e3)),
    };
    match (f.store.as_str(), &f.failed_slots) {
        ("cluster", Some(slots)) => {
            let replicas = match f.replicas {
                0 => "no replica: partial outage".to_string(),
                r => format!("{r} replica(s)"),
            };
            format!("cluster master, slots {slots} ({:.0} % of keys, {replicas}): {how}", f.key_share * 100.0)
        }
        _ => format!("Sentinel primary: {how}"),
    }
}

fn rotation_row(s: &StrategyResult) -> Option<[String; 6]> {
    let r = s.rotation.as_ref()?;
    Some([
        s.name.clone(),
        fmt::ms(r.overlap_s * 1000.0),
        r.old_token_rejected_after_ms.map_or_else(|| "still accepted when the run ended".to_string(), fmt::ms),
        fmt::opt(r.logins_per_s_before, ""),
        r.logins_peak_per_s_after.map_or_else(|| fmt::NOT_MEASURED.to_string(), |n| n.to_string()),
        r.logins_per_second.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "),
    ])
}

/// The run's baseline: the first strategy that sent no credential (measured: 0 credential bytes),
/// preferring one without matrix coordinates.
pub(crate) fn baseline(report: &Report) -> Option<&StrategyResult> {
    let bare = || report.strategies.iter().filter(|s| s.credential_bytes == 0.0 && s.revocation_window_ms.probes == 0);
    bare().find(|s| s.variant.is_empty()).or_else(|| bare().next())
}

/// The smallest credential any strategy of the run sent, for size ratios.
fn smallest_credential(report: &Report) -> Option<&StrategyResult> {
    report
        .strategies
        .iter()
        .filter(|s| s.credential_bytes > 0.0)
        .min_by(|a, b| a.credential_bytes.total_cmp(&b.credential_bytes))
}

impl Summary {
    pub fn new(report: &Report) -> Summary {
        let rows = report
            .strategies
            .iter()
            .map(|s| {
                let mut cells: [String; 10] = Default::default();
                cells[0] = s.name.clone();
                for (i, (f, op)) in DECISION_FIGURES.iter().take(7).enumerate() {
                    cells[i + 1] = f.format(s, op);
                }
                cells[8] = store_down_cell(s);
                let (f, op) = DECISION_FIGURES[7];
                cells[9] = f.format(s, op);
                DecisionRow { cells, unexpected_allow: s.outcomes.unexpected_allow }
            })
            .collect();
        let base = baseline(report);
        let smallest = smallest_credential(report);
        let all: Vec<&StrategyResult> = report.strategies.iter().collect();
        let tradeoffs = report
            .strategies
            .iter()
            .map(|s| tradeoff(s, base, smallest) + &super::cached::tradeoff_clause(s, &all))
            .collect();
        Summary {
            rows,
            tradeoffs,
            answers: answers(report),
            warnings: warnings(report),
            outage_rows: report.strategies.iter().filter_map(outage_row).collect(),
            failover_rows: report.strategies.iter().filter_map(failover_row).collect(),
            rotation_rows: report.strategies.iter().filter_map(rotation_row).collect(),
        }
    }
}

/// `+12 µs p50 (+30 µs p99) over none`, or the absolute figures without a baseline.
fn latency_vs(s: &StrategyResult, base: Option<&StrategyResult>) -> String {
    let api = |s: &StrategyResult| Some((figures::P50_US.value(s, "api")?, figures::P99_US.value(s, "api")?));
    let Some((p50, p99)) = api(s) else {
        return "api latency not measured".to_string();
    };
    match base.and_then(|b| Some((b, api(b)?))).map(|(b, (b50, b99))| (b, b50, b99)) {
        Some((b, b50, b99)) if b.name != s.name => {
            format!("{} p50 ({} p99) over {}", fmt::delta(p50 - b50, "µs"), fmt::delta(p99 - b99, "µs"), b.name)
        }
        _ => format!("api p50 {} (p99 {})", fmt::us(p50), fmt::us(p99)),
    }
}

/// Target CPU per store operation above the baseline: (target CPU per request − the baseline's)
/// / store operations per request. An upper bound on what one store round trip costs the target,
/// since it also holds the strategy's own per-request work. `None` without a baseline, without
/// CPU figures, or with fewer than 0.5 store operations per request (too few to divide by).
pub fn target_cpu_us_per_store_op(s: &StrategyResult, base: Option<&StrategyResult>) -> Option<f64> {
    let cpu = &figures::TARGET_CPU_US_PER_REQUEST;
    let ops = s.store.ops_per_request.filter(|&o| o >= 0.5)?;
    let b = base.filter(|b| b.name != s.name)?;
    Some((cpu.value(s, "")? - cpu.value(b, "")?) / ops)
}

/// For the method section: what a store operation cost the target in this run, per strategy
/// that has one; `None` when no strategy's figure could be derived.
pub fn store_op_cost_line(report: &Report) -> Option<String> {
    let base = baseline(report)?;
    let parts: Vec<String> = report
        .strategies
        .iter()
        .filter_map(|s| {
            Some(format!("{} {}", s.name, fmt::with_unit(target_cpu_us_per_store_op(s, Some(base))?, "µs")))
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "{}: (target CPU per request − {}'s) / store operations per request. An upper bound on one store round \
             trip as the target pays for it (socket write and read, the client library, waking the request again), \
             since it also holds the strategy's own check. The target runs on one core with one pipelined Redis \
             connection; see docs/design.md.",
            parts.join(", "),
            base.name
        )
    })
}

fn store_part(s: &StrategyResult, base: Option<&StrategyResult>) -> String {
    let per_op = target_cpu_us_per_store_op(s, base)
        .map(|us| format!(", about {} of target CPU per store operation", fmt::with_unit(us, "µs")))
        .unwrap_or_default();
    store_ops_part(s) + &per_op + &paths_part(s) + &cache_part(s) + &instances_part(s)
}

/// `; per instance: 33 % of requests, 9.1 µs target CPU and 1.02 store ops per request; ...`.
fn instances_part(s: &StrategyResult) -> String {
    if s.instances.is_empty() {
        return String::new();
    }
    let each: Vec<String> = s
        .instances
        .iter()
        .map(|i| {
            format!(
                "{:.0} % of requests, {} target CPU and {} store ops per request",
                i.requests_pct,
                fmt::opt(i.target_cpu_us_per_request, "µs"),
                fmt::opt(i.store_ops_per_request, "")
            )
        })
        .collect();
    format!("; per instance: {}", each.join("; "))
}

/// `; read cache 99.2 % hits, 131 B per entry, 0 flushes` for a cached strategy.
fn cache_part(s: &StrategyResult) -> String {
    if s.cache.is_none() {
        return String::new();
    }
    let [hits, reads, bytes, flushes] = [
        &figures::CACHE_HIT_PCT,
        &figures::CACHE_STORE_READS_PER_API_REQUEST,
        &figures::CACHE_BYTES_PER_ENTRY,
        &figures::CACHE_FLUSHES,
    ]
    .map(|f| f.format(s, ""));
    format!(
        "; read cache {hits} hits (at most {reads} store reads per api request), {bytes} per entry, {flushes} flushes"
    )
}

/// `; api requests verified by token 92 %, session 8 %` for a strategy with several ways.
fn paths_part(s: &StrategyResult) -> String {
    let total: u64 = s.auth_paths.values().sum();
    if total == 0 {
        return String::new();
    }
    let shares: Vec<String> = s
        .auth_paths
        .iter()
        .map(|(path, n)| format!("{path} {} %", fmt::num(*n as f64 * 100.0 / total as f64)))
        .collect();
    format!("; api requests verified by {}", shares.join(", "))
}

fn store_ops_part(s: &StrategyResult) -> String {
    match s.store.ops_per_request {
        Some(ops) => {
            let cmds: Vec<String> =
                s.store.ops_by_command.iter().map(|(c, n)| format!("{c} {}", fmt::num(*n))).collect();
            let cmds = if cmds.is_empty() { String::new() } else { format!(" ({})", cmds.join(", ")) };
            let cpu = s
                .store
                .cpu_us_per_request
                .map(|c| format!(" and {} of store CPU", fmt::with_unit(c, "µs")))
                .unwrap_or_default();
            format!("{} store ops per request{cmds}{cpu}", fmt::num(ops))
        }
        None => "store load not measured".to_string(),
    }
}

fn cpu_part(s: &StrategyResult, base: Option<&StrategyResult>) -> String {
    let cpu = &figures::TARGET_CPU_US_PER_REQUEST;
    match (cpu.value(s, ""), base.and_then(|b| Some((b, cpu.value(b, "")?)))) {
        (Some(c), Some((b, n))) if b.name != s.name => format!(
            "{} target CPU per request ({} over {})",
            cpu.unit.format(Some(c)),
            fmt::delta(c - n, cpu.unit.symbol()),
            b.name
        ),
        (Some(c), _) => format!("{} target CPU per request", cpu.unit.format(Some(c))),
        (None, _) => "target CPU not measured".to_string(),
    }
}

/// `; a 281 B credential (6.5× the 43-byte one of session)`.
fn credential_part(s: &StrategyResult, smallest: Option<&StrategyResult>) -> String {
    let bytes = figures::CREDENTIAL_BYTES.format(s, "");
    match smallest {
        Some(m) if m.name != s.name && s.credential_bytes > 0.0 => format!(
            "a {bytes} credential on every request ({:.1}× the {} of {})",
            s.credential_bytes / m.credential_bytes,
            figures::CREDENTIAL_BYTES.format(m, ""),
            m.name
        ),
        _ => format!("a {bytes} credential on every request"),
    }
}

/// One plain-language sentence per strategy, built only from this run's figures.
fn tradeoff(s: &StrategyResult, base: Option<&StrategyResult>, smallest: Option<&StrategyResult>) -> String {
    let mut text = if base.is_some_and(|b| b.name == s.name) {
        format!(
            "{}: sends no credential, the baseline the other rows are measured against: {}, {}, {}.",
            s.name,
            latency_vs(s, None),
            cpu_part(s, None),
            figures::THROUGHPUT_RPS.format(s, "")
        )
    } else {
        format!(
            "{}: {} and {}; {}; {}. Revocation window: {}. Store down: {}.",
            s.name,
            latency_vs(s, base),
            cpu_part(s, base),
            store_part(s, base),
            credential_part(s, smallest),
            figures::revocation_window_text(s),
            store_down_cell(s)
        )
    };
    if s.outcomes.unexpected_allow > 0 {
        text = format!(
            "SECURITY FAILURE: {} revoked or forged credential(s) were accepted. {text}",
            s.outcomes.unexpected_allow
        );
    }
    text
}

/// The articles' questions, each answered with this run's figures for every strategy but the
/// baseline; none when only the baseline ran.
fn answers(report: &Report) -> Vec<Answer> {
    let base = baseline(report);
    let ss: Vec<&StrategyResult> = report.strategies.iter().filter(|s| base.is_none_or(|b| b.name != s.name)).collect();
    if ss.is_empty() {
        return Vec::new();
    }
    let smallest = smallest_credential(report);
    let mut all =
        vec![revocation_answer(&ss), size_answer(&ss, smallest), store_answer(report, &ss), hybrid_answer(&ss)];
    all.extend(permission_answer(&ss));
    all.extend(web_api_answer(&ss));
    all.extend(super::cached::cached_answer(&ss));
    all.push(scale_answer(&ss));
    all
}

/// Request rate at which the articles' scale claims are checked when the scenario sets no
/// `[capacity] project_rps`: "hundreds of thousands of requests per second".
const REFERENCE_RATE_PER_SEC: f64 = 100_000.0;

/// Seed claims about scale ("even Redis becomes a bottleneck at hundreds of thousands of requests
/// per second", "an extra kilobyte per request adds up"), answered from this run's unit costs: the
/// rate one Redis command thread saturates at, and the credential's bandwidth at a reference rate.
fn scale_answer(ss: &[&StrategyResult]) -> Answer {
    let rate = REFERENCE_RATE_PER_SEC;
    let measured = ss
        .iter()
        .map(|s| {
            let store_cpu = figures::STORE_CPU_US_PER_REQUEST.value(s, "");
            let shard = match (store_cpu, figures::STORE_OPS_PER_REQUEST.value(s, "")) {
                (_, Some(ops)) if ops < 0.01 => "no store commands on the request path".to_string(),
                (Some(c), _) if c > 0.0 => format!(
                    "one Redis shard's command thread saturates at about {} req/s ({} µs of store CPU per request)",
                    fmt::num(1e6 / c),
                    fmt::num(c)
                ),
                _ => "store ceiling not measured (store CPU not observed)".to_string(),
            };
            let bandwidth = if s.credential_bytes > 0.0 {
                format!(
                    "its credential is {} per request, {} MB/s at {} req/s",
                    fmt::with_unit(s.credential_bytes, "B"),
                    fmt::num(s.credential_bytes * rate / 1e6),
                    fmt::num(rate)
                )
            } else {
                "no credential".to_string()
            };
            format!("{}: {shard}; {bandwidth}", s.name)
        })
        .collect();
    Answer {
        question: "Scale: where does each design's cost land at hundreds of thousands of requests per second?"
            .to_string(),
        claim: format!(
            "The articles: even Redis becomes a bottleneck at hundreds of thousands of requests per second; an extra \
             kilobyte per request adds up. From this run's unit costs (a projection: it assumes one command thread \
             per shard at 100 % CPU and keys spread evenly; `authbench project` adds cores, shards and memory, and \
             `scripts/capacity-checks` sets the shard ceiling beside a saturated redis-server), at {} req/s:",
            fmt::num(rate)
        ),
        measured,
    }
}

/// The variant of `s` with `authz` set to `value` and every other matrix coordinate the same.
fn authz_twin<'a>(ss: &[&'a StrategyResult], s: &StrategyResult, value: &str) -> Option<&'a StrategyResult> {
    ss.iter().copied().find(|t| {
        t.strategy == s.strategy
            && t.variant.get("authz").map(String::as_str) == Some(value)
            && t.variant.iter().filter(|(k, _)| *k != "authz").eq(s.variant.iter().filter(|(k, _)| *k != "authz"))
    })
}

/// How much of the gap between `session` and a JWT strategy survives a per-request permission
/// lookup, for one figure: `(session - jwt with lookup) / (session - jwt claims only)`.
fn surviving_share(
    fig: &Figure,
    op: &str,
    session: &StrategyResult,
    claims: &StrategyResult,
    store: &StrategyResult,
) -> String {
    let (Some(sv), Some(cv), Some(lv)) = (fig.value(session, op), fig.value(claims, op), fig.value(store, op)) else {
        return format!("{}: not measured", fig.label);
    };
    let gap = sv - cv;
    let kept = sv - lv;
    let share = if gap <= f64::EPSILON {
        "claims only was not ahead of session: no advantage to keep".to_string()
    } else if kept <= 0.0 {
        "none of it kept: with the lookup it is level with or behind session".to_string()
    } else {
        format!("{:.0} % of it kept", 100.0 * kept / gap)
    };
    format!(
        "{} session {} vs {} claims only, {} with the lookup ({share})",
        fig.label,
        fig.unit.format(Some(sv)),
        fig.unit.format(Some(cv)),
        fig.unit.format(Some(lv))
    )
}

/// Seed 002's misconception 4 ("JWTs remove session lookups, not permission lookups"): answered
/// when the run has a JWT strategy with and without `--authz store` and a `session` to compare with.
fn permission_answer(ss: &[&StrategyResult]) -> Option<Answer> {
    let profile = |s: &StrategyResult| StrategyKind::from_name(&s.strategy).map(|k| k.profile());
    // The stateful design: no JWT, a store lookup on every api request (roles come with it).
    let session =
        ss.iter().copied().find(|s| profile(s).is_some_and(|p| !p.issues_jwt && !p.store_ops.api.is_empty()))?;
    let measured: Vec<String> = ss
        .iter()
        .copied()
        .filter(|s| {
            s.variant.get("authz").map(String::as_str) == Some("claims") && profile(s).is_some_and(|p| p.issues_jwt)
        })
        .filter_map(|claims| Some((claims, authz_twin(ss, claims, "store")?)))
        .map(|(claims, store)| {
            format!(
                "{} (against {}): {}; {}; {}",
                claims.strategy,
                session.name,
                surviving_share(&figures::TARGET_CPU_US_PER_REQUEST, "", session, claims, store),
                surviving_share(&figures::STORE_OPS_PER_REQUEST, "", session, claims, store),
                surviving_share(&figures::P50_US, "api", session, claims, store)
            )
        })
        .collect();
    (!measured.is_empty()).then(|| Answer {
        question: "Permission lookups: what is left of a JWT's advantage when permissions are fetched per request?"
            .to_string(),
        claim: "The articles: JWTs eliminate session lookups, but most requests still need current permissions from                 a store, unless they are baked into the token. Measured: each JWT strategy with roles trusted from                 its claims and with a per-request roles lookup (`--authz store`), against `session`, which reads                 the roles from its own record:"
            .to_string(),
        measured,
    })
}

/// Seed 002's third pattern, sessions for the web and JWTs for APIs on one backend: what each
/// population costs (its api latency, each path's share) and what the mixed backend costs per
/// request, beside the one-credential strategies with immediate revocation that ran alone (its
/// two paths' designs: `session` and `jwt-denylist`, and their cached forms where they ran).
/// Answered when the run has a strategy serving both client kinds.
fn web_api_answer(ss: &[&StrategyResult]) -> Option<Answer> {
    let profile = |s: &StrategyResult| StrategyKind::from_name(&s.strategy).map(|k| k.profile());
    let mixed = |s: &&StrategyResult| profile(s).is_some_and(|p| p.clients == Clients::BrowserAndApi);
    let alone = |s: &&StrategyResult| {
        profile(s).is_some_and(|p| {
            p.clients == Clients::One
                && matches!(p.transport, Transport::Cookie | Transport::Bearer)
                && p.logout.api_credential_refused_at_once()
        })
    };
    let mut measured: Vec<String> = ss.iter().copied().filter(mixed).map(population_line).collect();
    if measured.is_empty() {
        return None;
    }
    measured.extend(ss.iter().copied().filter(alone).map(|s| format!("{} (alone): {}", s.name, unit_costs(s))));
    Some(Answer {
        question: "Sessions for the web, JWTs for APIs: what does each population cost, and one backend serving both?"
            .to_string(),
        claim: "The articles: many mature applications give browsers server-side sessions and API clients JWTs, \
                the same backend validating both; acceptable overhead when the API is genuinely separate. Measured: \
                each population's api latency and the share of requests on each path, then what the mixed backend \
                costs per request, beside the one-credential designs with immediate revocation run alone:"
            .to_string(),
        measured,
    })
}

/// `web+api api_client_fraction=0.5: browsers api p50 …, API clients api p50 …; api requests
/// verified by bearer 50 %, session 50 %; target CPU …` for a strategy serving two populations.
fn population_line(s: &StrategyResult) -> String {
    let pair = |p50: &Figure, p99: &Figure| match (p50.value(s, ""), p99.value(s, "")) {
        (Some(a), Some(b)) => format!("api p50 {} (p99 {})", fmt::us(a), fmt::us(b)),
        _ => "not measured (none in this variant)".to_string(),
    };
    format!(
        "{}: browsers {}, API clients {}{}; {}",
        s.name,
        pair(&figures::BROWSER_API_P50_US, &figures::BROWSER_API_P99_US),
        pair(&figures::API_CLIENT_API_P50_US, &figures::API_CLIENT_API_P99_US),
        paths_part(s),
        unit_costs(s)
    )
}

/// What one request cost: target CPU, store operations by command, api p50.
fn unit_costs(s: &StrategyResult) -> String {
    format!(
        "{} target CPU per request, {}, api p50 {}",
        figures::TARGET_CPU_US_PER_REQUEST.format(s, ""),
        store_ops_part(s),
        figures::P50_US.format(s, "api")
    )
}

fn revocation_answer(ss: &[&StrategyResult]) -> Answer {
    Answer {
        question: "Revocation: how long does a logged-out credential keep working?".to_string(),
        claim: "The articles: sessions revoke immediately; a pure JWT stays valid until it expires; short access \
                tokens with refresh bound the window by the access TTL. Measured by probing each revoked \
                credential:"
            .to_string(),
        measured: ss.iter().map(|s| format!("{}: {}", s.name, figures::revocation_window_text(s))).collect(),
    }
}

fn size_answer(ss: &[&StrategyResult], smallest: Option<&StrategyResult>) -> Answer {
    Answer {
        question: "Token size: what does each request carry?".to_string(),
        claim: "The articles: a session id is 21 to 32 bytes, a JWT 170 bytes to several kilobytes as claims \
                grow, and the overhead is paid on every request. Measured per api request:"
            .to_string(),
        measured: ss
            .iter()
            .map(|s| {
                format!(
                    "{}: {}, {} request head",
                    s.name,
                    credential_part(s, smallest),
                    figures::REQUEST_HEADER_BYTES.format(s, "")
                )
            })
            .collect(),
    }
}

fn store_answer(report: &Report, ss: &[&StrategyResult]) -> Answer {
    let outage_run = report.strategies.iter().any(|s| s.outage.is_some());
    Answer {
        question: "The store as a single point of failure".to_string(),
        claim: format!(
            "The articles: if a non-clustered session store goes down, every authenticated request fails. Store \
             load measured per request; {}",
            if outage_run {
                "store down: what the store outage this run injected did, measured by a prober holding a valid \
                 credential (\"not measured\" for a strategy the outage did not cover):"
            } else {
                "store down: not measured, this run injected no store outage (scenarios/store-outage.toml does):"
            }
        ),
        measured: ss
            .iter()
            .map(|s| {
                format!(
                    "{}: {} store ops per request; store down: {}",
                    s.name,
                    figures::STORE_OPS_PER_REQUEST.format(s, ""),
                    store_down_cell(s)
                )
            })
            .collect(),
    }
}

fn hybrid_answer(ss: &[&StrategyResult]) -> Answer {
    Answer {
        question: "Hybrid patterns".to_string(),
        claim: "The articles: refresh tokens keep the store off the api path while bounding revocation by the access \
                TTL; a denylist restores instant revocation but puts a lookup back on every request. Measured, for \
                every strategy of this run:"
            .to_string(),
        measured: ss
            .iter()
            .map(|s| {
                format!(
                    "{}: {} store ops per request, api p50 {}, revocation window {}",
                    s.name,
                    figures::STORE_OPS_PER_REQUEST.format(s, ""),
                    figures::P50_US.format(s, "api"),
                    figures::revocation_window_text(s)
                )
            })
            .collect(),
    }
}

fn warnings(report: &Report) -> Vec<(bool, String)> {
    let mut out: Vec<(bool, String)> = Vec::new();
    for s in &report.strategies {
        if s.outcomes.unexpected_allow > 0 {
            out.push((
                true,
                format!(
                    "{}: {} unexpected allow(s): a revoked or forged credential was accepted. This is a security \
                     failure, not a performance figure.",
                    s.name, s.outcomes.unexpected_allow
                ),
            ));
        }
    }
    for s in &report.strategies {
        if let Some(lost) = s.failover.as_ref().and_then(|f| f.revocations_lost).filter(|&n| n > 0) {
            out.push((
                true,
                format!(
                    "{}: the failover forgot {lost} acknowledged revocation(s): logged-out or revoked credentials were \
                     accepted again after a replica was promoted (unexpected allows).",
                    s.name
                ),
            ));
        }
    }
    if report.interrupted {
        out.push((false, "The run was interrupted (Ctrl-C): the figures cover what was measured.".to_string()));
    }
    out.extend(report.warnings.iter().map(|w| (false, w.clone())));
    for s in &report.strategies {
        if s.outcomes.unexpected_deny > 0 {
            out.push((
                false,
                format!(
                    "{}: {} unexpected deny(s): valid credentials were refused.",
                    s.name, s.outcomes.unexpected_deny
                ),
            ));
        }
        if s.errors.total > 0 {
            let classes: Vec<String> = s.errors.by_class.iter().map(|(c, n)| format!("{c} {n}")).collect();
            out.push((false, format!("{}: {} error(s) ({}).", s.name, s.errors.total, classes.join(", "))));
        }
        if s.schedule.late_starts > 0 {
            out.push((
                false,
                format!(
                    "{}: {} request(s) were sent more than 1 ms late (max lag {}); latency counts from the intended \
                     send time, so this is in the figures, but the driver may have been saturated.",
                    s.name,
                    s.schedule.late_starts,
                    fmt::us(s.schedule.max_lag_us as f64)
                ),
            ));
        }
        if s.revocation_window_ms.bounded {
            out.push((
                false,
                format!(
                    "{}: a revoked credential was still accepted when probing ended; the revocation window is an \
                     upper bound from the token's exp + leeway, not an observation.",
                    s.name
                ),
            ));
        }
    }
    out
}
