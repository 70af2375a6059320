//! A run split over several drivers: `authbench run --part K/N` drives part K of N of a scenario
//! (its share of the rate, the connections and the users, with user names of its own) against
//! targets started once, outside the parts (`--target`). This module owns the split, the
//! `--target` list (several URLs, optionally keyed by strategy), what identifies a part for
//! `authbench merge` (scenario hash, build id) and the `--dry-run` description of a plan.
//!
//! Shares: a total `T` over `N` parts gives each part `T / N`, and the first `T % N` parts one
//! more, so the shares add up to `T` exactly. Connections are at least 1 per part (a scenario with
//! fewer connections than parts then runs with `N` in all, which the plan says). The open-loop rate
//! is divided exactly (`rate / N`, a real number).

use std::fmt::Write as _;

use crate::plan::{PlanError, RunPlan, Schedule, Stop};
use crate::targets::config::StrategyKind;

/// `--part K/N`: this driver is part `k` (1-based) of `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartSpec {
    /// This part's number, 1..=n (a Kubernetes Indexed Job's completion index + 1).
    pub k: u32,
    /// How many parts the run is split into.
    pub n: u32,
}

/// Most parts a run may be split into (a sanity bound, not a tested limit).
pub const MAX_PARTS: u32 = 1000;

/// Parses `K/N` (clap value parser): 1 <= K <= N <= [`MAX_PARTS`].
pub fn parse_part(s: &str) -> Result<PartSpec, String> {
    let expected = format!("expected K/N with 1 <= K <= N <= {MAX_PARTS} (part 2 of 4: `2/4`), got `{s}`");
    let (k, n) = s.split_once('/').ok_or_else(|| expected.clone())?;
    let k: u32 = k.trim().parse().map_err(|_| expected.clone())?;
    let n: u32 = n.trim().parse().map_err(|_| expected.clone())?;
    if k == 0 || n == 0 || k > n || n > MAX_PARTS {
        return Err(expected);
    }
    Ok(PartSpec { k, n })
}

impl std::fmt::Display for PartSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl PartSpec {
    /// Part `k`'s share of `total`: `total / n`, plus one for the first `total % n` parts.
    pub fn share(self, total: usize) -> usize {
        let (n, k) = (self.n as usize, self.k as usize);
        total / n + usize::from(k <= total % n)
    }

    /// The prefix of this part's user names (`p2-`), so parts never log each other's users out.
    pub fn user_prefix(self) -> String {
        format!("p{}-", self.k)
    }
}

/// One `--target` entry: a URL, for one strategy or (unkeyed) for the only strategy of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl {
    /// `jwt=http://…` names the strategy the URL serves; `None`: a plain URL.
    pub strategy: Option<StrategyKind>,
    /// `http://host:port`, without a trailing `/`.
    pub url: String,
}

/// Every `--target` entry (comma-separated or repeated): the external targets a run drives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetList {
    pub urls: Vec<TargetUrl>,
}

impl TargetList {
    /// Parses the `--target` values: `http://host:port` or `STRATEGY=http://host:port`.
    pub fn parse(values: &[String]) -> Result<TargetList, PlanError> {
        let mut urls = Vec::new();
        for v in values.iter().flat_map(|v| v.split(',')).map(str::trim).filter(|v| !v.is_empty()) {
            let (strategy, url) = match v.split_once('=') {
                Some((name, url)) if !name.contains('/') => {
                    let kind = StrategyKind::from_name(name.trim()).ok_or_else(|| {
                        PlanError::Invalid(format!(
                            "--target `{v}`: `{name}` is not a strategy (expected one of {})",
                            StrategyKind::names()
                        ))
                    })?;
                    (Some(kind), url.trim())
                }
                _ => (None, v),
            };
            if !url.starts_with("http://") {
                return Err(PlanError::Invalid(format!("--target must be an http:// URL, got `{url}`")));
            }
            urls.push(TargetUrl { strategy, url: url.trim_end_matches('/').to_owned() });
        }
        Ok(TargetList { urls })
    }

    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// The URLs that serve `strategy`: those keyed by it, else the plain ones.
    pub fn urls_for(&self, strategy: StrategyKind) -> Vec<String> {
        let keyed: Vec<String> =
            self.urls.iter().filter(|t| t.strategy == Some(strategy)).map(|t| t.url.clone()).collect();
        if !keyed.is_empty() {
            return keyed;
        }
        self.urls.iter().filter(|t| t.strategy.is_none()).map(|t| t.url.clone()).collect()
    }

    /// Every strategy of the run has a URL; plain URLs only for a run of one strategy. URLs keyed
    /// to strategies the run leaves out are ignored (one target list serves any `--strategy`).
    pub fn check(&self, strategies: &[StrategyKind], variants: usize) -> Result<(), PlanError> {
        let plain = self.urls.iter().any(|t| t.strategy.is_none());
        if plain && variants != 1 {
            return Err(PlanError::Invalid(
                "a plain --target URL drives one server: name its strategy with exactly one --strategy, or key \
                 each URL by strategy (--target jwt=http://host:port)"
                    .to_owned(),
            ));
        }
        if let Some(s) = strategies.iter().find(|s| self.urls_for(**s).is_empty()) {
            return Err(PlanError::Invalid(format!(
                "--target names no URL for strategy {} (give --target {}=http://host:port)",
                s.name(),
                s.name()
            )));
        }
        Ok(())
    }
}

/// Narrow a whole-scenario plan to part `part`: its share of users (named `p<K>-u<i>`), of the
/// connections (at least 1) and of the rate. Every part runs the revocation probe after each
/// window, with probe users of its own (`p<K>-revprobe-<n>`), so the parts stay in step from one
/// strategy to the next.
pub fn apply(plan: &mut RunPlan, part: PartSpec) -> Result<(), PlanError> {
    let invalid = |m: String| Err(PlanError::Invalid(m));
    if plan.targets.is_empty() {
        return invalid(format!(
            "--part {part} drives targets started once for every part: give them with --target (each part starting \
             targets of its own would measure {} separate systems)",
            part.n
        ));
    }
    if plan.repeat > 1 {
        return invalid("--part and --repeat cannot be combined: repeat the whole split run instead".to_owned());
    }
    if plan.rotation.is_some() {
        return invalid(format!("[rotation] cannot be split: each of the {} parts would rotate the key", part.n));
    }
    if plan.stop == Stop::Interrupted {
        return invalid(
            "--part needs a measured duration (not 0 = until Ctrl-C): parts are merged window by window".to_owned(),
        );
    }
    let users = part.share(plan.users);
    if users == 0 {
        return invalid(format!(
            "users = {} cannot be split into {} parts: each part needs a user",
            plan.users, part.n
        ));
    }
    plan.users = users;
    for v in &mut plan.variants {
        let n = f64::from(part.n);
        v.schedule = match &v.schedule {
            Schedule::Closed { connections } => Schedule::Closed { connections: part.share(*connections).max(1) },
            Schedule::Open { stages, connections } => Schedule::Open {
                stages: stages
                    .iter()
                    .map(|s| crate::plan::RateStage {
                        from_rate_per_sec: s.from_rate_per_sec / n,
                        rate_per_sec: s.rate_per_sec / n,
                        duration: s.duration,
                    })
                    .collect(),
                connections: part.share(*connections).max(1),
            },
        };
        if v.schedule.connections() > users {
            return invalid(format!(
                "part {part} gets {users} users for {} connections: give at least one user per connection in every \
                 part (users >= connections, and users >= parts)",
                v.schedule.connections()
            ));
        }
    }
    plan.user_prefix = part.user_prefix();
    plan.part = Some(part);
    Ok(())
}

/// FNV-1a, 64 bits: a stable fingerprint (not a security hash) of what must match between parts.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The scenario's fingerprint: the resolved TOML (the whole scenario after flags, before the split).
pub fn scenario_hash(resolved_toml: &str) -> String {
    format!("fnv1a64:{:016x}", fnv1a64(resolved_toml.as_bytes()))
}

/// The build's fingerprint: the running `authbench` executable's bytes; `unknown` when unreadable.
pub fn build_id() -> String {
    std::env::current_exe()
        .and_then(std::fs::read)
        .map_or_else(|_| "unknown".to_owned(), |b| format!("fnv1a64:{:016x}", fnv1a64(&b)))
}

/// `authbench run --dry-run`: what the validated plan would do, one line per setting and variant.
pub fn describe(plan: &RunPlan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "plan: scenario {} ({})",
        plan.name,
        plan.file.as_ref().map_or_else(|| "built-in".to_owned(), |f| f.display().to_string())
    );
    let _ = writeln!(out, "scenario hash: {}", scenario_hash(&plan.resolved_toml));
    match plan.part {
        Some(p) => {
            let _ = writeln!(out, "part: {p} (users named {}u<i>)", plan.user_prefix);
        }
        None => {
            let _ = writeln!(out, "part: whole run");
        }
    }
    let stop = match plan.stop {
        Stop::Duration(d) => format!("{} s measured per variant", d.as_secs_f64()),
        Stop::Interrupted => "until Ctrl-C".to_owned(),
    };
    let _ = writeln!(out, "window: warm-up {} s, {stop}", plan.warmup.as_secs_f64());
    let _ = writeln!(out, "users: {}; timeout {} s", plan.users, plan.timeout.as_secs_f64());
    let mix: Vec<String> = plan.mix.as_map().iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(out, "mix: {}", mix.join(" "));
    if plan.targets.is_empty() {
        let _ = writeln!(out, "targets: started by the run; store {:?}", plan.store);
    }
    let _ = writeln!(out, "revocation probes: {}", plan.revocation_probes);
    for v in &plan.variants {
        let shape = match &v.schedule {
            Schedule::Closed { connections } => format!("closed loop, {connections} connections"),
            Schedule::Open { stages, connections } => {
                let rates: Vec<String> = stages.iter().map(|s| format!("{:.3}", s.rate_per_sec)).collect();
                format!("open loop, {connections} connections, {} req/s", rates.join(" -> "))
            }
        };
        let urls = plan.targets.urls_for(v.strategy);
        let at = if urls.is_empty() { String::new() } else { format!(" at {}", urls.join(", ")) };
        let _ = writeln!(out, "variant {}: {shape}{at}", v.label);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_parses_and_refuses_out_of_range() {
        assert_eq!(parse_part("2/4"), Ok(PartSpec { k: 2, n: 4 }));
        for bad in ["0/4", "5/4", "4", "a/b", "1/0", "1/1001", "-1/2"] {
            let e = parse_part(bad).expect_err(bad);
            assert!(e.contains("K/N") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn shares_add_up_to_the_total() {
        for total in [0usize, 1, 3, 16, 17, 1000] {
            for n in 1..=5u32 {
                let sum: usize = (1..=n).map(|k| PartSpec { k, n }.share(total)).sum();
                assert_eq!(sum, total, "{total} over {n}");
            }
        }
        assert_eq!(PartSpec { k: 1, n: 3 }.share(16), 6);
        assert_eq!(PartSpec { k: 3, n: 3 }.share(16), 5);
    }

    #[test]
    fn target_list_keys_urls_by_strategy() {
        let t = TargetList::parse(&["jwt=http://a:1/,session=http://b:2".to_owned(), "jwt=http://c:3".to_owned()])
            .expect("parses");
        assert_eq!(t.urls_for(StrategyKind::JWT), ["http://a:1", "http://c:3"]);
        assert_eq!(t.urls_for(StrategyKind::SESSION), ["http://b:2"]);
        assert!(t.urls_for(StrategyKind::NONE).is_empty());
        assert!(TargetList::parse(&["nope=http://a:1".to_owned()]).is_err());
        assert!(TargetList::parse(&["ftp://a".to_owned()]).is_err());
    }
}
