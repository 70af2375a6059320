//! The revocation window, probed directly: after a logout or revoke-user, how long does the revoked
//! credential keep working?
//!
//! Each probe uses a fresh user (`revprobe-<n>`; `p<K>-revprobe-<n>` in part K of a split run): log in, check the credential works, revoke it
//! (even probes by `POST /logout`, odd ones by `POST /admin/revoke-user/{user}`), then present the
//! *old* credential on `GET /api/resource` every [`POLL_INTERVAL`] until it is refused (401) or
//! `max_wait` passes.
//!
//! - **Two client kinds** (`web+api`): probes 2 and 3 of every four log in as API clients (a bearer
//!   token), the others as browsers (the session cookie), so both paths' windows are in the figure.
//! - **Window** of a probe: from the revoke response to the *send* time of the first poll answered
//!   401. A revocation that is effective at once reads ~0 ms. Polls go back to back for the first
//!   [`FAST_POLLS_FOR`] after the revoke (resolution: one request's round trip), then every
//!   [`POLL_INTERVAL`] (the resolution from then on).
//! - **Several instances** (`instances = N >= 2`): probe `n` logs in and revokes through instance
//!   `n mod N`, having first presented the credential to every instance (so a cached strategy has
//!   it cached everywhere), and replays it on every *other* instance; its window runs until the last
//!   of them refused it. That is cross-instance revocation: for a cached strategy, the time Redis
//!   takes to invalidate the other instances' entries.
//! - **Still accepted at `max_wait`** (pure JWT, and jwt-refresh's access token): the probe is
//!   *bounded*: its value is the bound read from the token's `exp` claim, `exp + leeway + 1 s`
//!   (exp is compared in whole seconds) minus the revoke time, and `observed_max` keeps what was
//!   actually seen. A credential without `exp` (a session that outlived its revocation: a bug) keeps
//!   its observed time and is logged as a warning.
//!
//! Probes run concurrently (at most [`MAX_CONCURRENT_PROBES`] at a time), so `probes` JWT probes
//! take about `max_wait`, not `probes * max_wait`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::http;
use crate::grant::Grant;
use crate::results::RevocationWindow;
use crate::targets::StrategyKind;
use crate::targets::strategy::profile::{Clients, Refresh, Transport};

/// How often a revoked credential is presented again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// After the revoke, polls are sent back to back for this long (then every [`POLL_INTERVAL`]).
pub const FAST_POLLS_FOR: Duration = Duration::from_millis(5);
/// Probes in flight at once: enough to overlap the long JWT waits, few enough not to load the target.
pub const MAX_CONCURRENT_PROBES: usize = 8;

/// How one probe ended.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ProbeOutcome {
    /// Refused `window_ms` after the revoke response.
    Refused { window_ms: f64 },
    /// Still accepted at `max_wait`: `observed_ms` is the last acceptance seen, `bound_ms` the
    /// bound from the token's `exp` (None without one).
    StillAccepted { observed_ms: Option<f64>, bound_ms: Option<f64> },
}

/// Probe the revocation window of the target at `base_url` with `probes` fresh users.
///
/// `admin_key` is the target's `--admin-key` (empty: every probe uses logout); `leeway` is the
/// target's `--leeway`, used for the bound of JWTs still accepted at `max_wait`. For a strategy
/// without credentials there is nothing to revoke: `probes` is 0 and every figure `None`. Probes that could not
/// be set up (login or first check failed) are logged and not counted.
pub async fn probe(
    base_url: &str,
    strategy: StrategyKind,
    admin_key: &str,
    probes: u32,
    max_wait: Duration,
    leeway: Duration,
) -> RevocationWindow {
    probe_as("", base_url, strategy, admin_key, probes, max_wait, leeway).await
}

/// [`probe`] with users named `<user_prefix>revprobe-<n>`: the parts of a split run
/// (`p2-revprobe-0`, …) probe the same target at once without revoking each other's probe users.
pub async fn probe_as(
    user_prefix: &str,
    base_url: &str,
    strategy: StrategyKind,
    admin_key: &str,
    probes: u32,
    max_wait: Duration,
    leeway: Duration,
) -> RevocationWindow {
    let urls = [base_url.to_owned()];
    probe_instances(user_prefix, &urls, strategy, admin_key, probes, max_wait, leeway).await
}

/// [`probe_as`] over the instances at `base_urls` (one strategy, one store): each probe revokes
/// through one instance and replays the credential on every other (see the module docs).
pub async fn probe_instances(
    user_prefix: &str,
    base_urls: &[String],
    strategy: StrategyKind,
    admin_key: &str,
    probes: u32,
    max_wait: Duration,
    leeway: Duration,
) -> RevocationWindow {
    if !strategy.profile().has_credential() || probes == 0 || base_urls.is_empty() {
        return RevocationWindow::default();
    }
    let bases: Arc<[String]> = Arc::from(base_urls);
    let key: Arc<str> = Arc::from(admin_key);
    let prefix: Arc<str> = Arc::from(user_prefix);
    let slots = Arc::new(Semaphore::new(MAX_CONCURRENT_PROBES));
    let mut set = JoinSet::new();
    for n in 0..probes {
        let (bases, key, slots) = (Arc::clone(&bases), Arc::clone(&key), Arc::clone(&slots));
        let user = format!("{prefix}revprobe-{n}");
        set.spawn(async move {
            let _slot = slots.acquire_owned().await.ok()?;
            match probe_one(&bases, strategy, &key, (n, &user), max_wait, leeway).await {
                Ok(done) => Some(done),
                Err(e) => {
                    tracing::warn!(probe = n, "revocation probe skipped: {e:#}");
                    None
                }
            }
        });
    }
    let mut outcomes = Vec::with_capacity(probes as usize);
    let mut ttl_s = None;
    while let Some(done) = set.join_next().await {
        if let Ok(Some((outcome, ttl))) = done {
            outcomes.push(outcome);
            ttl_s = ttl_s.or(ttl);
        }
    }
    let mut window = summarize(&outcomes);
    if window.probes > 0 {
        window.poll_interval_ms = Some(ms(POLL_INTERVAL));
        window.other_instances = (base_urls.len() > 1).then(|| base_urls.len() as u64 - 1);
        if strategy.uses_jwt() {
            window.access_ttl_s = ttl_s.map(|t| t as f64);
            window.leeway_s = Some(leeway.as_secs_f64());
        }
    }
    window
}

/// Where probe `n` revokes, and where it replays: the other instances, or the same one alone.
fn instances_of(bases: &[String], n: u32) -> (&str, Vec<&str>) {
    let via = n as usize % bases.len();
    let others: Vec<&str> = bases.iter().enumerate().filter(|(i, _)| *i != via).map(|(_, b)| b.as_str()).collect();
    let replay = if others.is_empty() { vec![bases[via].as_str()] } else { others };
    (bases[via].as_str(), replay)
}

async fn probe_one(
    bases: &[String],
    strategy: StrategyKind,
    admin_key: &str,
    (n, user): (u32, &str),
    max_wait: Duration,
    leeway: Duration,
) -> anyhow::Result<(ProbeOutcome, Option<u64>)> {
    let profile = strategy.profile();
    let (base, replay) = instances_of(bases, n);
    let cred = login_with(base, &probe_login_body(profile.clients, user, n), profile.transport).await?;
    let ttl_s = cred.access_token().and_then(jwt_lifetime_s);
    for b in std::iter::once(base).chain(replay.iter().copied()) {
        let status = resource_status(b, &cred).await?;
        anyhow::ensure!(status == 200, "the fresh credential of {user} was refused by {b} ({status})");
    }
    revoke(base, admin_key, (n, user), &cred).await?;
    let revoke_at = Instant::now();
    let revoke_wall = SystemTime::now();
    let (refused_at, last_accepted) = poll_until_refused(&replay, &cred, user, revoke_at, max_wait).await;
    // After the polls, so it cannot delay them.
    if profile.refresh != Refresh::None {
        check_refresh_dead(base, &cred).await;
    }
    if let Some(sent) = refused_at {
        return Ok((ProbeOutcome::Refused { window_ms: ms(sent) }, ttl_s));
    }
    let observed_ms = last_accepted.map(ms);
    let bound_ms = cred.access_token().and_then(jwt_exp).map(|exp| {
        let until = Duration::from_secs(exp + 1) + leeway;
        let revoked_at = revoke_wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        ms(until.saturating_sub(revoked_at)).max(observed_ms.unwrap_or(0.0))
    });
    if bound_ms.is_none() && observed_ms.is_some() {
        tracing::warn!(%user, strategy = %strategy, "a revoked credential without exp was still accepted after {} ms", ms(max_wait));
    }
    Ok((ProbeOutcome::StillAccepted { observed_ms, bound_ms }, ttl_s))
}

/// Revoke `cred` through `base`: even probes by logout, odd ones by revoke-user (with an admin key).
async fn revoke(base: &str, admin_key: &str, (n, user): (u32, &str), cred: &Grant) -> anyhow::Result<()> {
    if n % 2 == 1 && !admin_key.is_empty() {
        let path = format!("/admin/revoke-user/{user}");
        let (status, _, body) =
            http::request(base, http::Method::POST, &path, &[("x-admin-key", admin_key)], None).await?;
        if status == 200 {
            tracing::debug!(%user, "revoked by revoke-user; polling the old credential");
            return Ok(());
        }
        tracing::warn!(status, body = %String::from_utf8_lossy(&body), "revoke-user refused; probing logout instead");
    }
    logout(base, cred).await
}

/// Replay `cred` on every instance of `replay` until each has refused it or `max_wait` passed.
/// Returns when the last instance first refused it (send time, from the revoke), and the latest
/// acceptance seen.
async fn poll_until_refused(
    replay: &[&str],
    cred: &Grant,
    user: &str,
    revoke_at: Instant,
    max_wait: Duration,
) -> (Option<Duration>, Option<Duration>) {
    let mut refused: Vec<Option<Duration>> = vec![None; replay.len()];
    let mut last_accepted: Option<Duration> = None;
    loop {
        for (base, refused_at) in replay.iter().zip(refused.iter_mut()).filter(|(_, r)| r.is_none()) {
            let sent = revoke_at.elapsed();
            match resource_status(base, cred).await {
                Ok(401) => *refused_at = Some(sent),
                Ok(200) => last_accepted = Some(sent),
                Ok(other) => tracing::debug!(%user, status = other, "revoked credential neither accepted nor refused"),
                Err(e) => tracing::debug!(%user, "poll failed: {e:#}"),
            }
        }
        if refused.iter().all(Option::is_some) {
            return (refused.into_iter().flatten().max(), last_accepted);
        }
        if revoke_at.elapsed() >= max_wait {
            return (None, last_accepted);
        }
        if revoke_at.elapsed() >= FAST_POLLS_FOR {
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

/// Log in `user` over the contract's `POST /login`; the credential the target handed out.
pub(crate) async fn login(base: &str, user: &str, transport: Transport) -> anyhow::Result<Grant> {
    login_with(base, &serde_json::json!({ "user": user }), transport).await
}

/// The login body of probe `n` of `user`: for a strategy serving browsers and API clients, probes
/// 2 and 3 of every four log in as API clients, so each kind is revoked by logout and by revoke-user.
fn probe_login_body(clients: Clients, user: &str, n: u32) -> serde_json::Value {
    if clients == Clients::BrowserAndApi && n % 4 >= 2 {
        serde_json::json!({ "user": user, "client": "api" })
    } else {
        serde_json::json!({ "user": user })
    }
}

/// `POST /login` with `login_body`; the credential the target handed out.
async fn login_with(base: &str, login_body: &serde_json::Value, transport: Transport) -> anyhow::Result<Grant> {
    let user = login_body["user"].as_str().unwrap_or_default();
    let (status, headers, body) = http::post_json(base, "/login", &[], login_body).await?;
    anyhow::ensure!(status == 200, "login of {user} answered {status}: {}", String::from_utf8_lossy(&body));
    let grant = Grant::parse(transport, headers.get_all(http::header::SET_COOKIE), &body)?;
    grant.ok_or_else(|| anyhow::anyhow!("the strategy hands out no credential"))
}

pub(super) async fn resource_status(base: &str, cred: &Grant) -> anyhow::Result<u16> {
    let header = cred.header_value();
    let (status, _, _) = http::get(base, "/api/resource", &[(cred.header_name(), header.as_str())]).await?;
    Ok(status)
}

async fn logout(base: &str, cred: &Grant) -> anyhow::Result<()> {
    let (status, _, body) = send_logout(base, cred).await?;
    anyhow::ensure!(status == 200, "logout answered {status}: {}", String::from_utf8_lossy(&body));
    Ok(())
}

/// `POST /logout` as the credential's client sends it: the credential, a token cookie's CSRF token
/// and, with a refresh token, `{"refresh_token": …}`.
pub async fn send_logout(base: &str, cred: &Grant) -> anyhow::Result<(u16, http::HeaderMap, bytes::Bytes)> {
    let headers = cred.logout_headers();
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    match &cred.refresh_token {
        Some(rt) => http::post_json(base, "/logout", &headers, &serde_json::json!({ "refresh_token": rt })).await,
        None => http::request(base, http::Method::POST, "/logout", &headers, None).await,
    }
}

/// Strategies with a refresh token: after revocation the refresh token must be refused too.
async fn check_refresh_dead(base: &str, cred: &Grant) {
    let Some(rt) = &cred.refresh_token else { return };
    match http::post_json(base, "/refresh", &[], &serde_json::json!({ "refresh_token": rt })).await {
        Ok((401, _, _)) => tracing::debug!("refresh token refused after revocation, as it should be"),
        Ok((status, _, _)) => tracing::warn!(status, "refresh token not refused after revocation"),
        Err(e) => tracing::debug!("refresh check failed: {e:#}"),
    }
}

/// The `exp` claim of a JWT, read without verifying anything (the target already did).
fn jwt_exp(token: &str) -> Option<u64> {
    numeric_claim(token, "exp")
}

/// `exp - iat` of a JWT: the access token's lifetime as the target issued it, seconds.
fn jwt_lifetime_s(token: &str) -> Option<u64> {
    numeric_claim(token, "exp")?.checked_sub(numeric_claim(token, "iat")?)
}

/// A NumericDate claim of a JWT, read without verifying anything.
fn numeric_claim(token: &str, name: &str) -> Option<u64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims[name].as_u64().or_else(|| claims[name].as_f64().filter(|e| *e >= 0.0).map(|e| e as u64))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Aggregate probe outcomes into the report's figures.
fn summarize(outcomes: &[ProbeOutcome]) -> RevocationWindow {
    if outcomes.is_empty() {
        return RevocationWindow::default();
    }
    let mut values: Vec<f64> = outcomes
        .iter()
        .map(|o| match *o {
            ProbeOutcome::Refused { window_ms } => window_ms,
            ProbeOutcome::StillAccepted { observed_ms, bound_ms } => bound_ms.or(observed_ms).unwrap_or(0.0),
        })
        .collect();
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    let p50 = if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 };
    let observed_max = outcomes
        .iter()
        .filter_map(|o| match *o {
            ProbeOutcome::Refused { window_ms } => Some(window_ms),
            ProbeOutcome::StillAccepted { observed_ms, .. } => observed_ms,
        })
        .max_by(f64::total_cmp);
    RevocationWindow {
        p50: Some(p50),
        max: values.last().copied(),
        probes: outcomes.len() as u64,
        bounded: outcomes.iter().any(|o| matches!(o, ProbeOutcome::StillAccepted { .. })),
        observed_max,
        ..RevocationWindow::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_exp_without_verifying() {
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let token = format!("{}.{}.sig", enc(r#"{"alg":"HS256"}"#), enc(r#"{"sub":"a","exp":1700000000}"#));
        assert_eq!(jwt_exp(&token), Some(1_700_000_000));
        assert_eq!(jwt_exp("not-a-jwt"), None);
        assert_eq!(jwt_exp(&format!("x.{}.y", enc(r#"{"sub":"a"}"#))), None);
        let token = format!("{}.{}.sig", enc(r#"{"alg":"HS256"}"#), enc(r#"{"iat":1700000000,"exp":1700000003}"#));
        assert_eq!(jwt_lifetime_s(&token), Some(3));
    }

    #[test]
    fn each_probe_revokes_on_one_instance_and_replays_on_the_others() {
        let one = ["a".to_owned()];
        assert_eq!(instances_of(&one, 3), ("a", vec!["a"]), "one instance: replayed where revoked");
        let three = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        assert_eq!(instances_of(&three, 0), ("a", vec!["b", "c"]));
        assert_eq!(instances_of(&three, 4), ("b", vec!["a", "c"]));
    }

    #[test]
    fn summaries() {
        assert_eq!(summarize(&[]), RevocationWindow::default());
        let w = summarize(&[
            ProbeOutcome::Refused { window_ms: 0.1 },
            ProbeOutcome::Refused { window_ms: 0.3 },
            ProbeOutcome::Refused { window_ms: 0.2 },
        ]);
        assert_eq!((w.p50, w.max, w.probes, w.bounded, w.observed_max), (Some(0.2), Some(0.3), 3, false, Some(0.3)));
        let w = summarize(&[
            ProbeOutcome::StillAccepted { observed_ms: Some(1000.0), bound_ms: Some(5000.0) },
            ProbeOutcome::StillAccepted { observed_ms: Some(1010.0), bound_ms: Some(6000.0) },
        ]);
        assert_eq!((w.p50, w.max, w.bounded, w.observed_max), (Some(5500.0), Some(6000.0), true, Some(1010.0)));
    }
}
