//! The "Connections and TLS" section: per variant, how many connections the target accepted per
//! request and what its TLS handshakes cost (full and resumed, per handshake and per request), and
//! that cost set beside each strategy's auth cost per request (its target CPU per request minus
//! the `none` control's at the same transport and connection settings), so a reader sees how many
//! requests' worth of authentication one handshake costs. Every cell is a measured figure of the
//! run, or a difference or ratio of two; what was not measured says so.

use crate::figures;
use crate::report::fmt;
use crate::results::{Report, StrategyResult};

/// Column headings of the connections table.
pub const HEADERS: [&str; 11] = [
    "variant",
    "transport",
    "requests / connection",
    "connections / req",
    "handshakes full / resumed",
    "full handshake CPU",
    "resumed handshake CPU",
    "handshakes resumed",
    "handshake CPU / req",
    "target CPU / req",
    "target CPU in handshakes",
];

/// Column headings of the TLS-beside-auth table.
pub const VERSUS_HEADERS: [&str; 7] = [
    "variant",
    "target CPU / req",
    "auth CPU / req (over none)",
    "full handshake CPU",
    "one full handshake = requests of auth",
    "resumed handshake CPU",
    "one resumed handshake = requests of auth",
];

/// How the figures were measured, printed under the tables.
pub const METHOD: &str = "Connections: the target's own count of accepted connections in the measured window \
     (the harness's reading at the window's end and its probes included), per request it served. Handshake CPU: the \
     target thread's CPU time inside each connection's TLS accept future, summed by kind over the window and divided \
     by the handshakes of that kind (their counts beside: the harness's own reading at the window's end is one full \
     handshake per instance, so with connections kept alive or sessions resumed the full-handshake figure may rest \
     on that one alone); per request: all handshakes' CPU divided by the requests served. Auth CPU per \
     request: the variant's target CPU per request minus that of `none` run with the same transport and connection \
     settings (both include request handling; the difference is what checking the credential added, and is noisy \
     when small). Requests of auth per handshake: handshake CPU divided by auth CPU per request.";

/// Whether the section applies: some variant ran over TLS or closed its connections on purpose.
pub fn applies(report: &Report) -> bool {
    report.strategies.iter().any(|s| {
        s.wire.as_ref().is_some_and(|w| w.requests_per_connection > 0 || w.tls_resumption.is_some())
            || s.connections.as_ref().is_some_and(|c| c.tls.is_some())
    })
}

/// `1`, `10`, `kept alive` (0), or not measured for results without wire settings.
fn per_connection(s: &StrategyResult) -> String {
    match s.wire.as_ref() {
        Some(w) if w.requests_per_connection == 0 => "kept alive".to_string(),
        Some(w) => w.requests_per_connection.to_string(),
        None => fmt::NOT_MEASURED.to_string(),
    }
}

/// `h2-tls, resuming`, `http1-tls, full handshakes`, `http1`.
fn transport(s: &StrategyResult) -> String {
    match s.wire.as_ref() {
        Some(w) => match w.tls_resumption {
            Some(true) => format!("{}, resuming", w.transport),
            Some(false) => format!("{}, no resumption", w.transport),
            None => w.transport.clone(),
        },
        None => fmt::NOT_MEASURED.to_string(),
    }
}

/// `9 / 4 812`: how many handshakes each per-handshake CPU figure averages (few full handshakes,
/// such as the harness's own reading alone, make a noisy figure).
fn handshake_counts(s: &StrategyResult) -> String {
    match (figures::TLS_FULL_HANDSHAKES.value(s, ""), figures::TLS_RESUMED_HANDSHAKES.value(s, "")) {
        (Some(full), Some(resumed)) => format!("{} / {}", fmt::group(full as i64), fmt::group(resumed as i64)),
        _ => figures::TLS_FULL_HANDSHAKES.format(s, ""),
    }
}

/// One row per variant.
pub fn rows(report: &Report) -> Vec<[String; 11]> {
    report
        .strategies
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                transport(s),
                per_connection(s),
                figures::CONNECTIONS_PER_REQUEST.format(s, ""),
                handshake_counts(s),
                figures::TLS_FULL_HANDSHAKE_CPU_US.format(s, ""),
                figures::TLS_RESUMED_HANDSHAKE_CPU_US.format(s, ""),
                figures::TLS_RESUMED_PCT.format(s, ""),
                figures::TLS_HANDSHAKE_CPU_US_PER_REQUEST.format(s, ""),
                figures::TARGET_CPU_US_PER_REQUEST.format(s, ""),
                figures::TLS_HANDSHAKE_CPU_PCT.format(s, ""),
            ]
        })
        .collect()
}

/// The `none` variant run with the same settings as `s`: every matrix coordinate `none` has is
/// `s`'s too (`none` has no credential, so credential options do not apply to it).
pub fn control_for<'a>(report: &'a Report, s: &StrategyResult) -> Option<&'a StrategyResult> {
    report
        .strategies
        .iter()
        .filter(|n| n.strategy == "none" && n.name != s.name)
        .find(|n| n.variant.iter().all(|(k, v)| s.variant.get(k) == Some(v)))
}

/// Auth CPU per request of `s`: its target CPU per request minus its control's.
pub fn auth_cpu_us_per_request(report: &Report, s: &StrategyResult) -> Option<f64> {
    let cpu = &figures::TARGET_CPU_US_PER_REQUEST;
    Some(cpu.value(s, "")? - cpu.value(control_for(report, s)?, "")?)
}

/// `12.3 µs`, or why there is no auth cost to compare with.
fn auth_cell(report: &Report, s: &StrategyResult) -> String {
    match (control_for(report, s), auth_cpu_us_per_request(report, s)) {
        (None, _) => "n/a (no `none` run with these settings)".to_string(),
        (Some(_), None) => fmt::NOT_MEASURED.to_string(),
        (Some(_), Some(a)) if a <= 0.0 => format!("{} (within noise)", fmt::with_unit(a, "µs")),
        (Some(_), Some(a)) => fmt::with_unit(a, "µs"),
    }
}

/// `handshake / auth` requests, or why not.
fn ratio_cell(handshake_us: Option<f64>, auth_us: Option<f64>) -> String {
    match (handshake_us, auth_us) {
        (Some(h), Some(a)) if a > 0.0 => format!("{} requests", fmt::num(h / a)),
        (None, _) => "n/a (no such handshake)".to_string(),
        _ => "n/a (no auth cost measured)".to_string(),
    }
}

/// One row per credential-carrying variant that ran over TLS.
pub fn versus_rows(report: &Report) -> Vec<[String; 7]> {
    report
        .strategies
        .iter()
        .filter(|s| s.strategy != "none" && s.connections.as_ref().is_some_and(|c| c.tls.is_some()))
        .map(|s| {
            let auth = auth_cpu_us_per_request(report, s);
            let full = figures::TLS_FULL_HANDSHAKE_CPU_US.value(s, "");
            let resumed = figures::TLS_RESUMED_HANDSHAKE_CPU_US.value(s, "");
            [
                s.name.clone(),
                figures::TARGET_CPU_US_PER_REQUEST.format(s, ""),
                auth_cell(report, s),
                figures::TLS_FULL_HANDSHAKE_CPU_US.format(s, ""),
                ratio_cell(full, auth),
                figures::TLS_RESUMED_HANDSHAKE_CPU_US.format(s, ""),
                ratio_cell(resumed, auth),
            ]
        })
        .collect()
}
