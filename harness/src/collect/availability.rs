//! Availability under store outages and key rotations, probed directly.
//!
//! A [`Prober`] holds one valid credential (one login before the measured window) and presents it
//! on `GET /api/resource` about every [`PROBE_INTERVAL`] during the measured window, next to (and
//! independent of) the traffic engine's load. For strategies whose logout revokes the presented
//! credential at once (the profile says so) it also presents a *revoked* one, to see whether the
//! outage let it through. That one is used once on every instance before the window, logged out
//! through the last instance, and replayed on the first only from the outage's start, as a stolen
//! session would be: so an instance's stale copy (`--stale-grace`) is tested where it can be wrong. Memory is bounded: answers are counted per phase (before / during / after
//! the outage, by when the answer arrived: what a client saw then) and per status, and only a few first-of timings are kept.
//!
//! - **first failure**: from the outage start to the first non-200 answer to a poll sent after it
//!   (includes the target's store timeout: that is what a client waits);
//! - **recovery**: from the outage end to the first 200 answer to a poll sent after it. When the
//!   store lost its data (`kill` mode) the credential is gone: the prober logs in again on a 401
//!   after the outage started and says so (`credential_lost`), so recovery includes that login;
//! - **key rotation**: the send time of the first 401 for the credential issued before the rotation
//!   (the prober does not log in again after a rotation: it measures when the old token died).
//!
//! The outage itself is injected by `environment::outage`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::task::{JoinHandle, JoinSet};

use super::http;
use crate::targets::StrategyKind;
use crate::targets::config::AuthzSource;
use crate::targets::strategy::profile::{Degrade, RouteClass, Transport};

/// How often the prober sends a poll (each on its own connection, so a hung one does not delay the
/// next).
pub const PROBE_INTERVAL: Duration = Duration::from_millis(10);
/// Polls in flight at most; beyond it ticks are skipped (a hung target cannot pile up tasks).
const MAX_IN_FLIGHT: usize = 64;
/// Per-poll bound: a poll without an answer by then counts as `timeout`.
const POLL_TIMEOUT: Duration = Duration::from_secs(2);
/// Least time between two re-logins of the prober after its credential was lost.
const RELOGIN_EVERY: Duration = Duration::from_millis(100);
/// The prober's users (distinct from the engine's and the revocation probe's).
const PROBER_USER: &str = "availability-probe";
const PROBER_REVOKED_USER: &str = "availability-probe-revoked";

/// When the outage happens, relative to the start of the measured window.
#[derive(Debug, Clone, Copy)]
pub struct OutageWindow {
    pub at: Duration,
    pub duration: Duration,
}

/// What the prober saw.
#[derive(Debug, Clone, Default)]
pub struct ProbeLog {
    /// Answers to the valid credential by phase (0 before, 1 during, 2 after the outage, by when
    /// the answer arrived; all in 0 without an outage) and status.
    pub phases: [BTreeMap<String, u64>; 3],
    /// The same for the revoked credential (empty when not probed).
    pub revoked_phases: [BTreeMap<String, u64>; 3],
    /// Whether a revoked credential was probed at all.
    pub revoked_probed: bool,
    pub first_failure_ms: Option<f64>,
    pub recovery_ms: Option<f64>,
    /// Send time of the first 401 for the valid credential (before any re-login).
    pub first_401_sent: Option<Instant>,
    pub credential_lost: bool,
    pub polls: u64,
    /// Logins the prober sent after its credential was lost (each one a request to the target).
    pub relogins: u64,
}

impl ProbeLog {
    /// Requests the prober sent to the target: its polls and its re-logins.
    pub fn requests(&self) -> u64 {
        self.polls + self.relogins
    }
}

/// A running prober; [`Prober::finish`] waits for it and returns what it saw.
#[derive(Debug)]
pub struct Prober {
    task: JoinHandle<ProbeLog>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Valid,
    Revoked,
}

struct Answer {
    which: Which,
    sent: Instant,
    answered: Instant,
    /// `200`, `503`, ..., `timeout`, `error`.
    status: String,
}

/// The prober's credentials, obtained before the measured window.
#[derive(Debug, Clone)]
pub struct ProberCredentials {
    valid: (&'static str, String),
    revoked: Option<(&'static str, String)>,
    /// How the strategy's credential travels, to log in again after a lost credential.
    transport: Transport,
}

impl ProberCredentials {
    /// Log in at `urls[0]` (where the prober polls) and, where logout revokes the presented
    /// credential, set up a revoked one: presented once on every instance first (so a cache or a
    /// stale copy holds it, as it would a credential in use), then logged out through the last.
    pub async fn login(urls: &[String], strategy: StrategyKind) -> anyhow::Result<ProberCredentials> {
        let (Some(base_url), Some(last)) = (urls.first(), urls.last()) else {
            anyhow::bail!("availability prober: no target URL")
        };
        let profile = strategy.profile();
        let transport = profile.transport;
        let valid = login(base_url, PROBER_USER, transport).await.context("availability prober: login")?;
        let revoked = if profile.logout.api_credential_refused_at_once() {
            let grant = super::revocation::login(base_url, PROBER_REVOKED_USER, transport)
                .await
                .context("availability prober: second login")?;
            for url in urls {
                super::revocation::resource_status(url, &grant).await.context("availability prober: first use")?;
            }
            let (status, _, body) = super::revocation::send_logout(last, &grant).await?;
            anyhow::ensure!(status == 200, "prober logout answered {status}: {}", String::from_utf8_lossy(&body));
            Some((grant.header_name(), grant.header_value()))
        } else {
            None
        };
        Ok(ProberCredentials { valid, revoked, transport })
    }
}

/// The profile's expected api status while the store is down, and the share (0..1) of the prober's
/// answers during the outage that had it (None without answers).
pub fn design_check(
    strategy: StrategyKind,
    authz: AuthzSource,
    degrade: Degrade,
    log: &ProbeLog,
) -> (u16, Option<f64>) {
    let expected = strategy.profile().store_down(RouteClass::Api, authz, degrade).status();
    let during = &log.phases[1];
    let total: u64 = during.values().sum();
    let matching = during.get(&expected.to_string()).copied().unwrap_or(0);
    (expected, (total > 0).then(|| matching as f64 / total as f64))
}

impl Prober {
    /// Poll from `measure_start` until `end`.
    pub fn spawn(
        creds: ProberCredentials,
        base_url: &str,
        measure_start: Instant,
        end: Instant,
        outage: Option<OutageWindow>,
    ) -> Prober {
        let task = tokio::spawn(poll_loop(base_url.to_owned(), creds, measure_start, end, outage));
        Prober { task }
    }

    /// Wait for the polling to end (at `end`, plus the last answers).
    pub async fn finish(self) -> ProbeLog {
        self.task.await.unwrap_or_default()
    }
}

fn phase(at: Instant, measure_start: Instant, outage: Option<OutageWindow>) -> usize {
    match outage {
        None => 0,
        Some(o) => {
            let t = at.saturating_duration_since(measure_start);
            if t < o.at {
                0
            } else if t < o.at + o.duration {
                1
            } else {
                2
            }
        }
    }
}

async fn poll_loop(
    base: String,
    creds: ProberCredentials,
    measure_start: Instant,
    end: Instant,
    outage: Option<OutageWindow>,
) -> ProbeLog {
    let ProberCredentials { mut valid, revoked, transport } = creds;
    let mut log = ProbeLog { revoked_probed: revoked.is_some(), ..ProbeLog::default() };
    let outage_start = outage.map(|o| measure_start + o.at);
    let outage_end = outage.map(|o| measure_start + o.at + o.duration);
    let mut set: JoinSet<Answer> = JoinSet::new();
    let mut tick = tokio::time::interval_at(measure_start.into(), PROBE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_relogin: Option<Instant> = None;
    let mut need_relogin = false;
    let deadline = tokio::time::sleep_until(end.into());
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            _ = tick.tick() => {
                if need_relogin && last_relogin.is_none_or(|t| t.elapsed() >= RELOGIN_EVERY) {
                    last_relogin = Some(Instant::now());
                    log.relogins += 1;
                    if let Ok(Ok(c)) = tokio::time::timeout(POLL_TIMEOUT, login(&base, PROBER_USER, transport)).await {
                        valid = c;
                        need_relogin = false;
                    }
                }
                if set.len() < MAX_IN_FLIGHT {
                    set.spawn(poll(base.clone(), valid.clone(), Which::Valid));
                    // Not before an outage: a replay would tell an instance's stale copy that the
                    // credential is gone, which a stolen credential's holder would not do.
                    let replay = outage_start.is_none_or(|s| Instant::now() >= s);
                    if let Some(r) = revoked.as_ref().filter(|_| replay) {
                        set.spawn(poll(base.clone(), r.clone(), Which::Revoked));
                    }
                }
            }
            Some(Ok(a)) = set.join_next(), if !set.is_empty() => {
                if record(&mut log, a, measure_start, outage, outage_start, outage_end) {
                    need_relogin = true;
                }
            }
        }
    }
    // The last answers (each poll is bounded by POLL_TIMEOUT).
    while let Some(r) = set.join_next().await {
        if let Ok(a) = r {
            record(&mut log, a, measure_start, outage, outage_start, outage_end);
        }
    }
    log
}

/// Count one answer; true when the valid credential was refused after the outage started (the
/// store lost it: log in again).
fn record(
    log: &mut ProbeLog,
    a: Answer,
    measure_start: Instant,
    outage: Option<OutageWindow>,
    outage_start: Option<Instant>,
    outage_end: Option<Instant>,
) -> bool {
    log.polls += 1;
    let p = phase(a.answered, measure_start, outage);
    let phases = if a.which == Which::Valid { &mut log.phases } else { &mut log.revoked_phases };
    *phases[p].entry(a.status.clone()).or_insert(0) += 1;
    if a.which == Which::Revoked {
        return false;
    }
    let ms = |later: Instant, earlier: Instant| later.saturating_duration_since(earlier).as_secs_f64() * 1000.0;
    let min = |cur: Option<f64>, v: f64| Some(cur.map_or(v, |c| c.min(v)));
    if let Some(start) = outage_start
        && a.sent >= start
        && a.status != "200"
    {
        log.first_failure_ms = min(log.first_failure_ms, ms(a.answered, start));
    }
    if let Some(end) = outage_end
        && a.sent >= end
        && a.status == "200"
    {
        log.recovery_ms = min(log.recovery_ms, ms(a.answered, end));
    }
    if a.status == "401" {
        if !log.credential_lost && log.first_401_sent.is_none_or(|t| a.sent < t) {
            log.first_401_sent = Some(a.sent);
        }
        if outage_start.is_some_and(|s| a.sent >= s) {
            log.credential_lost = true;
            return true;
        }
    }
    false
}

async fn poll(base: String, cred: (&'static str, String), which: Which) -> Answer {
    let sent = Instant::now();
    let status =
        match tokio::time::timeout(POLL_TIMEOUT, http::get(&base, "/api/resource", &[(cred.0, cred.1.as_str())])).await
        {
            Ok(Ok((s, _, _))) => s.to_string(),
            Ok(Err(_)) => "error".to_owned(),
            Err(_) => "timeout".to_owned(),
        };
    Answer { which, sent, answered: Instant::now(), status }
}

/// Log in `user`; the credential as a header (`cookie: sid=...` or `authorization: Bearer ...`).
async fn login(base: &str, user: &str, transport: Transport) -> anyhow::Result<(&'static str, String)> {
    let grant = super::revocation::login(base, user, transport).await?;
    Ok((grant.header_name(), grant.header_value()))
}

/// `POST /admin/rotate-key`; the new key id.
pub async fn rotate_key(base: &str, admin_key: &str) -> anyhow::Result<Option<String>> {
    let (status, _, body) =
        http::request(base, http::Method::POST, "/admin/rotate-key", &[("x-admin-key", admin_key)], None).await?;
    anyhow::ensure!(status == 200, "rotate-key answered {status}: {}", String::from_utf8_lossy(&body));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    Ok(json["kid"].as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_by_send_time() {
        let t0 = Instant::now();
        let o = Some(OutageWindow { at: Duration::from_secs(2), duration: Duration::from_secs(1) });
        assert_eq!(phase(t0 + Duration::from_millis(1999), t0, o), 0);
        assert_eq!(phase(t0 + Duration::from_secs(2), t0, o), 1);
        assert_eq!(phase(t0 + Duration::from_millis(3000), t0, o), 2);
        assert_eq!(phase(t0 + Duration::from_secs(9), t0, None), 0);
    }

    #[test]
    fn first_failure_and_recovery() {
        let t0 = Instant::now();
        let w = OutageWindow { at: Duration::from_secs(1), duration: Duration::from_secs(1) };
        let (s, e) = (t0 + w.at, t0 + w.at + w.duration);
        let mut log = ProbeLog::default();
        let ans = |sent: Instant, after_ms: u64, status: &str| Answer {
            which: Which::Valid,
            sent,
            answered: sent + Duration::from_millis(after_ms),
            status: status.to_owned(),
        };
        record(&mut log, ans(t0, 1, "200"), t0, Some(w), Some(s), Some(e));
        record(&mut log, ans(s + Duration::from_millis(5), 250, "503"), t0, Some(w), Some(s), Some(e));
        record(&mut log, ans(e + Duration::from_millis(10), 2, "200"), t0, Some(w), Some(s), Some(e));
        assert_eq!(log.phases[1].get("503"), Some(&1));
        assert_eq!(log.first_failure_ms.map(f64::round), Some(255.0));
        assert_eq!(log.recovery_ms.map(f64::round), Some(12.0));
        assert!(!log.credential_lost);
    }
}
