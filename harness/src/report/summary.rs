//! What the report says in words: the decision table, the trade-off sentences (citing measured
//! figures), the answers to the questions the seed articles raise, and the warnings derived from the
//! figures. Shared by the HTML and Markdown pages.

use std::collections::BTreeMap;

use crate::results::{Report, StageResult, StrategyResult};

use super::fmt;

/// The first stage (stages sorted by target rate) past the knee: p99 above twice the lowest-rate
/// p99, or achieved rate below 95 % of the target. `None` when no stage is.
pub fn knee_index(stages: &[StageResult]) -> Option<usize> {
    let base = stages.first()?.p99_us.max(1) as f64;
    stages.iter().enumerate().skip(1).find_map(|(i, st)| {
        let slow = st.p99_us as f64 > 2.0 * base;
        let short = st.target_rate_per_sec > 0.0 && st.achieved_rps < 0.95 * st.target_rate_per_sec;
        (slow || short).then_some(i)
    })
}

/// Column headers of the decision table.
pub const DECISION_HEADERS: [&str; 10] = [
    "strategy",
    "api p50",
    "api p99",
    "req/s",
    "target CPU / req",
    "credential",
    "store ops / req",
    "revocation window",
    "store down",
    "unexpected allow",
];

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
    /// Key-rotation table rows (strategies with a measured rotation), formatted.
    pub rotation_rows: Vec<[String; 6]>,
}

fn api_p(s: &StrategyResult, p: fn(&crate::results::LatencySummary) -> u64) -> Option<f64> {
    s.latency_us.get("api").filter(|l| l.count > 0).map(|l| p(l) as f64)
}

/// The revocation window in words.
pub fn revocation_text(s: &StrategyResult) -> String {
    let w = &s.revocation_window_ms;
    match w.max {
        Some(max) if w.bounded => {
            let observed = w.observed_max.map(|o| format!(", still accepted after {} when the run ended", fmt::ms(o)));
            format!("≥ {} (bound{})", fmt::ms(max), observed.unwrap_or_default())
        }
        Some(max) => {
            let p50 = w.p50.map(|p| format!("p50 {}, ", fmt::ms(p))).unwrap_or_default();
            format!("{} max ({p50}{} probes)", fmt::ms(max), w.probes)
        }
        None if s.strategy == "none" => "n/a (no credential)".to_string(),
        None => fmt::NOT_MEASURED.to_string(),
    }
}

/// The revocation window for a table cell: `0 ms (40 probes)`, `≥ 5.5 min (bound)`.
pub fn revocation_short(s: &StrategyResult) -> String {
    let w = &s.revocation_window_ms;
    match w.max {
        Some(max) if w.bounded => format!("≥ {} (bound)", fmt::ms(max)),
        Some(max) => format!("{} ({} probes)", fmt::ms(max), w.probes),
        None if s.strategy == "none" => "n/a (no credential)".to_string(),
        None => fmt::NOT_MEASURED.to_string(),
    }
}

/// How the strategy behaves when its store is down, by design (docs/design.md: fail closed).
pub fn store_down_text(kind: &str) -> &'static str {
    match kind {
        "none" => "unaffected (no check)",
        "session" => "fails closed: 503 on every authenticated request",
        "jwt" => "unaffected: no store on the request path",
        "jwt-denylist" => "fails closed: 503 on every api request (jti lookup)",
        "jwt-refresh" => "api unaffected until access tokens expire; login, refresh, logout fail closed (503)",
        _ => "unknown strategy kind",
    }
}

/// What the store-down cell says: the measured behaviour when an outage was injected, else the design.
pub fn store_down_cell(s: &StrategyResult) -> String {
    let Some(o) = &s.outage else { return format!("{} (design)", store_down_text(&s.strategy)) };
    let count = |k: &str| o.during.get(k).copied().unwrap_or(0);
    let total: u64 = o.during.values().sum();
    let failed = total - count("200");
    let how = if failed == 0 && total > 0 {
        "stayed up".to_string()
    } else if count("200") == 0 {
        format!("failed closed ({})", statuses(&o.during))
    } else {
        format!("partly failed ({})", statuses(&o.during))
    };
    let recovery = o.recovery_ms.map(|r| format!(", back in {}", fmt::ms(r))).unwrap_or_default();
    let open = if o.fail_open {
        format!(
            "; FAIL-OPEN: {} revoked accepted",
            o.revoked_allowed_during.map_or_else(|| fmt::NOT_MEASURED.to_string(), |n| n.to_string())
        )
    } else {
        String::new()
    };
    format!("measured ({} {}): {how}{recovery}{open}", o.mode, fmt::ms(o.duration_s * 1000.0))
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
        if o.fail_open { format!("{} (fail-open)", s.name) } else { s.name.clone() },
        format!("{} {} at {}", o.mode, fmt::ms(o.duration_s * 1000.0), fmt::ms(o.at_s * 1000.0)),
        count("200").to_string(),
        count("503").to_string(),
        other.to_string(),
        o.first_failure_ms.map_or_else(|| "none".to_string(), fmt::ms),
        match o.recovery_ms {
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

fn find<'a>(report: &'a Report, kind: &str) -> Option<&'a StrategyResult> {
    let of_kind = || report.strategies.iter().filter(|s| s.strategy == kind);
    of_kind().find(|s| s.variant.is_empty()).or_else(|| of_kind().next())
}

impl Summary {
    pub fn new(report: &Report) -> Summary {
        let rows = report
            .strategies
            .iter()
            .map(|s| DecisionRow {
                cells: [
                    s.name.clone(),
                    fmt::opt(api_p(s, |l| l.p50), "µs"),
                    fmt::opt(api_p(s, |l| l.p99), "µs"),
                    fmt::num(s.throughput_rps),
                    fmt::opt(s.target_cpu_us_per_request, "µs"),
                    fmt::with_unit(s.credential_bytes, "B"),
                    fmt::opt(s.store.ops_per_request, ""),
                    revocation_short(s),
                    store_down_cell(s),
                    s.outcomes.unexpected_allow.to_string(),
                ],
                unexpected_allow: s.outcomes.unexpected_allow,
            })
            .collect();
        let none = find(report, "none");
        let session = find(report, "session");
        let jwt = find(report, "jwt");
        let tradeoffs = report.strategies.iter().map(|s| tradeoff(s, none, session, jwt)).collect();
        Summary {
            rows,
            tradeoffs,
            answers: answers(report),
            warnings: warnings(report),
            outage_rows: report.strategies.iter().filter_map(outage_row).collect(),
            rotation_rows: report.strategies.iter().filter_map(rotation_row).collect(),
        }
    }
}

/// `+12 µs p50 (+30 µs p99) over none`, or the absolute figures without a baseline.
fn latency_vs(s: &StrategyResult, base: Option<&StrategyResult>) -> String {
    let (Some(p50), Some(p99)) = (api_p(s, |l| l.p50), api_p(s, |l| l.p99)) else {
        return "api latency not measured".to_string();
    };
    match base.and_then(|b| Some((b, api_p(b, |l| l.p50)?, api_p(b, |l| l.p99)?))) {
        Some((b, b50, b99)) if b.name != s.name => {
            format!("{} p50 ({} p99) over {}", fmt::delta(p50 - b50, "µs"), fmt::delta(p99 - b99, "µs"), b.name)
        }
        _ => format!("api p50 {} (p99 {})", fmt::us(p50), fmt::us(p99)),
    }
}

fn store_part(s: &StrategyResult) -> String {
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

fn cpu_part(s: &StrategyResult, none: Option<&StrategyResult>) -> String {
    match (s.target_cpu_us_per_request, none.and_then(|n| n.target_cpu_us_per_request)) {
        (Some(c), Some(n)) if none.is_some_and(|b| b.name != s.name) => {
            format!("{} target CPU per request ({} over none)", fmt::with_unit(c, "µs"), fmt::delta(c - n, "µs"))
        }
        (Some(c), _) => format!("{} target CPU per request", fmt::with_unit(c, "µs")),
        (None, _) => "target CPU not measured".to_string(),
    }
}

/// One plain-language sentence per strategy, citing the measured figures.
fn tradeoff(
    s: &StrategyResult,
    none: Option<&StrategyResult>,
    session: Option<&StrategyResult>,
    jwt: Option<&StrategyResult>,
) -> String {
    let lat = latency_vs(s, none);
    let rev = revocation_text(s);
    let bytes = fmt::with_unit(s.credential_bytes, "B");
    let mut text = match s.strategy.as_str() {
        "none" => format!(
            "{}: the control, no authentication at all: {}, {}, {} req/s. Every other row is measured against it.",
            s.name,
            latency_vs(s, None),
            cpu_part(s, None),
            fmt::num(s.throughput_rps)
        ),
        "session" => format!(
            "{}: {lat} and {} buy a revocation window of {rev}. The credential is a {bytes} opaque id. The store is \
             on every request: if it is down, every authenticated request fails (503, by design).",
            s.name,
            store_part(s)
        ),
        "jwt" => {
            let ratio = session
                .filter(|x| x.credential_bytes > 0.0)
                .map(|x| {
                    format!(
                        " ({:.1}× the {}-byte session id)",
                        s.credential_bytes / x.credential_bytes,
                        fmt::num(x.credential_bytes)
                    )
                })
                .unwrap_or_default();
            format!(
                "{}: {lat} and {}, with no store on the request path. The price is revocation: a logged-out token is \
                 still accepted for {rev}, until it expires. The credential is {bytes}{ratio}, sent on every request.",
                s.name,
                cpu_part(s, none)
            )
        }
        "jwt-denylist" => {
            let vs_jwt = jwt.map(|j| format!(" ({})", latency_vs(s, Some(j)))).unwrap_or_default();
            format!(
                "{}: {lat}{vs_jwt} and {} buy a revocation window of {rev}: the per-request store lookup JWTs were \
                 meant to avoid is back, and with it the store as a single point of failure. Credential {bytes}.",
                s.name,
                store_part(s)
            )
        }
        "jwt-refresh" => format!(
            "{}: {lat} with {} (the store is consulted at login, refresh and logout, not on api calls); a revoked \
             session stops working when its access token expires: revocation window {rev}. Credential {bytes}.",
            s.name,
            store_part(s)
        ),
        other => format!("{} ({other}): {lat}, {}, revocation window {rev}.", s.name, store_part(s)),
    };
    if s.outcomes.unexpected_allow > 0 {
        text = format!(
            "SECURITY FAILURE: {} revoked or forged credential(s) were accepted. {text}",
            s.outcomes.unexpected_allow
        );
    }
    text
}

fn answers(report: &Report) -> Vec<Answer> {
    let mut out = Vec::new();
    let ss: Vec<&StrategyResult> = report.strategies.iter().filter(|s| s.strategy != "none").collect();
    if ss.is_empty() {
        return out;
    }
    out.push(Answer {
        question: "Revocation: how long does a logged-out credential keep working?".to_string(),
        claim: "The articles: sessions revoke immediately; a pure JWT stays valid until it expires; short access \
                tokens with refresh bound the window by the access TTL. Measured by probing each revoked credential:"
            .to_string(),
        measured: ss.iter().map(|s| format!("{}: {}", s.name, revocation_text(s))).collect(),
    });
    let session_bytes = find(report, "session").map(|s| s.credential_bytes).filter(|b| *b > 0.0);
    out.push(Answer {
        question: "Token size: what does each request carry?".to_string(),
        claim: "The articles: a session id is 21 to 32 bytes, a JWT 170 bytes to several kilobytes as claims grow, \
                and the overhead is paid on every request. Measured per api request:"
            .to_string(),
        measured: ss
            .iter()
            .map(|s| {
                let ratio = session_bytes
                    .filter(|_| s.strategy != "session")
                    .map(|b| format!(" ({:.1}× the session id)", s.credential_bytes / b))
                    .unwrap_or_default();
                format!(
                    "{}: {} credential{ratio}, {} request head",
                    s.name,
                    fmt::with_unit(s.credential_bytes, "B"),
                    fmt::with_unit(s.request_header_bytes, "B")
                )
            })
            .collect(),
    });
    out.push(Answer {
        question: "The store as a single point of failure".to_string(),
        claim: "The articles: if a non-clustered session store goes down, every authenticated request fails. Store \
                load measured per request, and each strategy's behaviour when its store is down (design behaviour: \
                fail closed with 503; not exercised by this run unless a warning says so):"
            .to_string(),
        measured: ss
            .iter()
            .map(|s| {
                format!(
                    "{}: {} store ops per request; store down: {}",
                    s.name,
                    fmt::opt(s.store.ops_per_request, ""),
                    store_down_cell(s)
                )
            })
            .collect(),
    });
    let mut hybrid = Vec::new();
    if let Some(r) = find(report, "jwt-refresh") {
        hybrid.push(format!(
            "Pattern 1, short-lived access tokens + stateful refresh tokens ({}): {} store ops per request, api p50 \
             {}, revocation window {}",
            r.name,
            fmt::opt(r.store.ops_per_request, ""),
            fmt::opt(api_p(r, |l| l.p50), "µs"),
            revocation_short(r)
        ));
    }
    if let Some(d) = find(report, "jwt-denylist") {
        hybrid.push(format!(
            "Pattern 2, JWT + server-side denylist ({}): {} store ops per request, api p50 {}, revocation window {}",
            d.name,
            fmt::opt(d.store.ops_per_request, ""),
            fmt::opt(api_p(d, |l| l.p50), "µs"),
            revocation_short(d)
        ));
    }
    if !hybrid.is_empty() {
        if let Some(s) = find(report, "session") {
            hybrid.push(format!(
                "For reference, {}: {} store ops per request, api p50 {}, revocation window {}",
                s.name,
                fmt::opt(s.store.ops_per_request, ""),
                fmt::opt(api_p(s, |l| l.p50), "µs"),
                revocation_short(s)
            ));
        }
        out.push(Answer {
            question: "Hybrid patterns".to_string(),
            claim: "The articles: refresh tokens keep the store off the api path while bounding revocation by the \
                    access TTL; a denylist restores instant revocation but reintroduces a lookup on every request. \
                    Measured:"
                .to_string(),
            measured: hybrid,
        });
    }
    out
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
                    "{}: the revocation window outlived the run; the figure is a bound read from the token's exp \
                     (plus leeway), not an observation.",
                    s.name
                ),
            ));
        }
    }
    out
}
