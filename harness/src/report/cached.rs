//! The articles' section's answer for the cached strategies (the design none of the articles
//! offers): where each one sits between its uncached sibling (the same design reading the store on
//! every request) and the stateless JWT strategies (no store on the request path), in target CPU,
//! store commands and api latency per request, next to the revocation window each measured. Built
//! only from the run's figures; a strategy is placed by its profile, never by its name.

use super::fmt;
use super::summary::Answer;
use crate::figures::{self, Figure};
use crate::results::StrategyResult;
use crate::targets::StrategyKind;
use crate::targets::strategy::profile::StrategyProfile;

/// The answer, when the run has a cached strategy whose cache was measured.
pub(super) fn cached_answer(ss: &[&StrategyResult]) -> Option<Answer> {
    let stateless: Vec<&StrategyResult> = stateless(ss).collect();
    let measured: Vec<String> = ss.iter().filter(|s| s.cache.is_some()).map(|c| placed(c, ss, &stateless)).collect();
    (!measured.is_empty()).then(|| Answer {
        question: "Cached strategies: between a JWT and a session".to_string(),
        claim: "No article offers it: each instance keeps the store's answers in process and Redis tells every \
                instance when one changes. The claim to test: near a pure JWT's cost per request, with revocation \
                in milliseconds. Measured, each next to its uncached sibling and the stateless strategies of this run:"
            .to_string(),
        measured,
    })
}

/// For a cached strategy's trade-off line: ` Between jwt (0 %) and session (100 %): target CPU
/// -22.7 %, store ops 6.26 %, api p50 -4.76 %.` Empty for other strategies, or without both ends.
pub(super) fn tradeoff_clause(c: &StrategyResult, ss: &[&StrategyResult]) -> String {
    if c.cache.is_none() {
        return String::new();
    }
    let (Some(u), Some(s)) = (sibling(c, ss), stateless(ss).next()) else { return String::new() };
    let figs = [
        (&figures::TARGET_CPU_US_PER_REQUEST, "", "target CPU"),
        (&figures::STORE_OPS_PER_REQUEST, "", "store ops"),
        (&figures::P50_US, "api", "api p50"),
    ];
    let parts: Vec<String> = figs
        .iter()
        .filter_map(|(f, op, what)| Some(format!("{what} {} %", fmt::num(position(f, op, c, u, s)?))))
        .collect();
    if parts.is_empty() {
        return String::new();
    }
    format!(" Between {} (0 %) and {} (100 %), measured here: {}.", s.name, u.name, parts.join(", "))
}

/// Where `c` sits on `f` between `from` (0 %) and `to` (100 %); `None` when a value is missing or
/// `to` is not above `from` (no scale to place it on).
fn position(f: &Figure, op: &str, c: &StrategyResult, to: &StrategyResult, from: &StrategyResult) -> Option<f64> {
    let (vc, vu, vs) = (f.value(c, op)?, f.value(to, op)?, f.value(from, op)?);
    (vu - vs > 0.0).then(|| 100.0 * (vc - vs) / (vu - vs))
}

/// The strategies of the run with a credential and no store on the api path (the stateless JWTs).
fn stateless<'a>(ss: &[&'a StrategyResult]) -> impl Iterator<Item = &'a StrategyResult> {
    ss.iter().copied().filter(|s| profile(s).is_some_and(|p| p.has_credential() && p.store_ops.api.is_empty()))
}

/// The uncached strategy of the same design in this run.
fn sibling<'a>(c: &StrategyResult, ss: &[&'a StrategyResult]) -> Option<&'a StrategyResult> {
    let pc = profile(c)?;
    ss.iter()
        .copied()
        .find(|s| s.cache.is_none() && s.name != c.name && profile(s).is_some_and(|ps| same_design(pc, ps)))
}

fn profile(s: &StrategyResult) -> Option<&'static StrategyProfile> {
    s.strategy.parse::<StrategyKind>().ok().map(StrategyKind::profile)
}

/// The same design apart from the cache: how the credential travels, what each route does to the
/// store, what logout and revoke-user end.
fn same_design(a: &StrategyProfile, b: &StrategyProfile) -> bool {
    a.transport == b.transport
        && a.refresh == b.refresh
        && a.store_ops == b.store_ops
        && a.logout == b.logout
        && a.revoke_user == b.revoke_user
        && a.issues_jwt == b.issues_jwt
}

/// One cached strategy's line.
fn placed(c: &StrategyResult, ss: &[&StrategyResult], stateless: &[&StrategyResult]) -> String {
    let sibling = sibling(c, ss);
    let figs = [&figures::TARGET_CPU_US_PER_REQUEST, &figures::STORE_OPS_PER_REQUEST];
    let mut parts: Vec<String> = figs.iter().map(|f| compared(f, "", c, sibling, stateless)).collect();
    parts.push(compared(&figures::P50_US, "api", c, sibling, stateless));
    parts.push(format!(
        "api store reads at most {} per api request ({} cache hits)",
        figures::CACHE_STORE_READS_PER_API_REQUEST.format(c, ""),
        figures::CACHE_HIT_PCT.format(c, "")
    ));
    parts.push(format!("revocation window {}", figures::revocation_window_text(c)));
    let others: Vec<String> = sibling
        .into_iter()
        .chain(stateless.iter().copied())
        .map(|s| format!("{} {}", s.name, figures::revocation_window_text(s)))
        .collect();
    if !others.is_empty() {
        parts.push(format!("against {}", others.join(", ")));
    }
    format!("{}: {}", c.name, parts.join("; "))
}

/// `target CPU / req 12.1 µs (session 15.4 µs, jwt 10.8 µs: 28.3 % of the way from jwt to session)`.
fn compared(
    f: &Figure,
    op: &str,
    c: &StrategyResult,
    sibling: Option<&StrategyResult>,
    stateless: &[&StrategyResult],
) -> String {
    let mut refs: Vec<String> = sibling.iter().map(|s| format!("{} {}", s.name, f.format(s, op))).collect();
    refs.extend(stateless.iter().map(|s| format!("{} {}", s.name, f.format(s, op))));
    let gone = sibling.zip(stateless.first()).and_then(|(u, s)| {
        let pct = position(f, op, c, u, s)?;
        let below = if pct < 0.0 { format!(", below {}", s.name) } else { String::new() };
        Some(format!(": {} % of the way from {} to {}{below}", fmt::num(pct), s.name, u.name))
    });
    let refs =
        if refs.is_empty() { String::new() } else { format!(" ({}{})", refs.join(", "), gone.unwrap_or_default()) };
    format!("{} {}{refs}", f.label, f.format(c, op))
}
