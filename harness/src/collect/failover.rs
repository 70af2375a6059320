//! A failover (a Sentinel group's primary, or one master of a Redis Cluster), measured from the
//! client side, and what it forgot, probed directly.
//!
//! Before the measured window [`prepare`] logs in `probes` users (their logins are long replicated
//! when the failover comes) and one more whose credential the failover poller holds. Then
//! [`run`], at `at - lead` (cutting replication first in `cut-replication` mode):
//! - **revokes** the prepared credentials one after the other until the kill (even ones by
//!   `POST /logout`, odd ones by `POST /admin/revoke-user/{user}`), and beside that **logs in** fresh
//!   users, recording which of both the target acknowledged (200);
//! - kills the primary at `at`; the Sentinels (or the cluster) promote a replica; the poller (one
//!   valid credential, on a cluster several, on `GET /api/resource` about every 10 ms) times the
//!   failover as requests saw it, from its first failed answer to its first round of 200s after it;
//! - **replays** every acknowledged revocation and login once the target answers again: the old
//!   credential on `GET /api/resource` (or its refresh token on `POST /refresh` where a revocation
//!   ends only the refresh family). A revoked credential accepted again is a revocation the
//!   failover lost (an unexpected allow); a new credential refused is a lost session.
//!
//! Each replay is retried (every 20 ms, until [`REPLAY_WAIT`]) while the answer is neither 200 nor
//! 401, so a store still failing over is not mistaken for either.
//!
//! **A cluster master without replicas** is a partial outage: nothing is promoted, its slots stay
//! down. The poller then watches only [`QUIET_WAIT`] and the replays get [`PARTIAL_REPLAY_WAIT`]:
//! a replay whose keys hashed to the dead master is never answered 200 or 401 (it fails closed with
//! 503) and counts as unanswered. In a cluster the probes' keys spread over the masters by hash
//! slot, so about the failed master's share of them (`key_share`) is on it: with the default 40
//! probes and 3 masters, about 13.

use std::time::{Duration, Instant};

use super::http;
use super::revocation::login;
use crate::environment::FailoverHandles;
use crate::grant::Grant;
use crate::results::FailoverResult;
use crate::scenario::{Failover, FailoverMode};
use crate::targets::StrategyKind;
use crate::targets::strategy::profile::Revocation;

/// Default `lead`: how long before the kill the probes revoke and log in.
pub const DEFAULT_LEAD: Duration = Duration::from_millis(300);
/// Default `probes`: revocations (and logins) prepared.
pub const DEFAULT_PROBES: u32 = 40;
/// Default `min-replicas-max-lag`, seconds.
pub const DEFAULT_MAX_LAG_S: u32 = 1;
/// How often the failover poller asks.
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Longest the poller waits for the failover to show and to end.
const POLL_WAIT: Duration = Duration::from_secs(15);
/// With no failed answer this long after the kill (the Sentinels promote within about two seconds),
/// the poller stops: the api does not use the store, or the client switched without a failure.
const QUIET_WAIT: Duration = Duration::from_secs(4);
/// Longest wait for a definitive (200 or 401) answer to the replays, all together.
pub const REPLAY_WAIT: Duration = Duration::from_secs(15);
/// The same in a partial outage (no replica to promote): the dead master's keys never answer.
pub const PARTIAL_REPLAY_WAIT: Duration = Duration::from_secs(2);

/// How a replay presents a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replay {
    /// `GET /api/resource` with the credential.
    Api,
    /// `POST /refresh` with its refresh token.
    Refresh,
}

impl Replay {
    /// How a strategy's revocation can be seen to have been forgotten; `None` when nothing a store
    /// holds ends the credential (pure JWT, `none`).
    fn for_revocation(r: Revocation) -> Option<Replay> {
        if r.api_credential_refused_at_once() {
            Some(Replay::Api)
        } else if r.ends_refresh_token() {
            Some(Replay::Refresh)
        } else {
            None
        }
    }
}

/// The failover as the plan and the target's options set it.
#[derive(Debug, Clone, Copy)]
pub struct FailoverSettings {
    /// The `[store.failover]` table with the variant's matrix values applied.
    pub failover: Failover,
    /// The target's `--store-wait-replicas`.
    pub wait_replicas: u32,
}

impl FailoverSettings {
    pub fn lead(&self) -> Duration {
        self.failover.lead.map_or(DEFAULT_LEAD, |d| d.0)
    }

    pub fn probes(&self) -> u32 {
        self.failover.probes.unwrap_or(DEFAULT_PROBES)
    }
}

/// Logged in before the window: the credentials to revoke, and the poller's.
pub struct Prepared {
    /// The target probed.
    base: String,
    /// What its credentials are and how a revocation of them shows.
    strategy: StrategyKind,
    /// For revoke-user (empty: every revocation is a logout).
    admin_key: String,
    /// Keeps the probes' users apart from the traffic's and another part's.
    user_prefix: String,
    /// Users logged in before the window, revoked in the lead: (user, credential).
    victims: Vec<(String, Grant)>,
    /// The poller's valid credentials (one, or more on a cluster: see [`Prepared::watch_more`]);
    /// empty for a strategy without credentials.
    watch: Vec<Grant>,
}

/// Log in `probes` users to revoke later and one for the poller (none for a strategy without
/// credentials: only the failover time is measured then).
pub async fn prepare(
    base: &str,
    strategy: StrategyKind,
    admin_key: &str,
    user_prefix: &str,
    probes: u32,
) -> anyhow::Result<Prepared> {
    let transport = strategy.profile().transport;
    let mut victims = Vec::new();
    let mut watch = Vec::new();
    if strategy.profile().has_credential() {
        for n in 0..probes {
            let user = format!("{user_prefix}fo-revoke-{n}");
            victims.push((user.clone(), login(base, &user, transport).await?));
        }
        watch.push(login(base, &format!("{user_prefix}fo-watch"), transport).await?);
    }
    Ok(Prepared {
        base: base.to_owned(),
        strategy,
        admin_key: admin_key.to_owned(),
        user_prefix: user_prefix.to_owned(),
        victims,
        watch,
    })
}

/// What the lead's probes got acknowledged.
#[derive(Debug, Default)]
struct LeadLog {
    /// Credentials whose revocation was answered 200: replayed, must be refused.
    revoked: Vec<Grant>,
    /// Revocations answered otherwise (the client knew they failed).
    revocations_refused: u64,
    /// Credentials of logins answered 200: replayed, must be accepted.
    created: Vec<Grant>,
    /// Logins answered otherwise.
    logins_refused: u64,
}

/// Run the failover at `kill_at` and measure it (see the module docs). `errors_in_window` is left
/// for the caller, which has the traffic's counts.
pub async fn run(
    prepared: Prepared,
    handles: FailoverHandles,
    settings: FailoverSettings,
    kill_at: Instant,
) -> anyhow::Result<FailoverResult> {
    let lead = settings.lead();
    tokio::time::sleep_until(kill_at.checked_sub(lead).unwrap_or(kill_at).into()).await;
    let resume = match settings.failover.mode {
        FailoverMode::CutReplication => Some(handles.cut_replication().await?),
        FailoverMode::Kill => None,
    };
    let kill = async {
        tokio::time::sleep_until(kill_at.into()).await;
        let killed = handles.kill_primary().map(|()| Instant::now());
        drop(resume);
        killed
    };
    let (lead_log, killed_at) = tokio::join!(prepared.probe_lead(kill_at), kill);
    let killed_at = killed_at?;
    let promotes = handles.can_promote();
    let poll_wait = if promotes { POLL_WAIT } else { QUIET_WAIT };
    let (promoted, poll) = tokio::join!(handles.wait_promoted(), prepared.poll_failover(killed_at, poll_wait));
    let replay_wait = if promotes { REPLAY_WAIT } else { PARTIAL_REPLAY_WAIT };
    let mut result = prepared.replay_all(&lead_log, replay_wait).await;
    let victim = handles.victim();
    (result.store, result.replicas, result.failed_slots, result.key_share) =
        (victim.store.to_owned(), victim.replicas, victim.slots, victim.key_share);
    let f = settings.failover;
    result.mode = f.mode.name().to_owned();
    result.at_s = f.at.0.as_secs_f64();
    result.lead_ms = ms(lead);
    result.wait_replicas = settings.wait_replicas;
    result.min_replicas_to_write = f.min_replicas_to_write.unwrap_or(0);
    result.min_replicas_max_lag_s = f.min_replicas_max_lag.unwrap_or(DEFAULT_MAX_LAG_S);
    result.promoted_after_ms = promoted.map(|(_, at)| ms(at.saturating_duration_since(killed_at)));
    result.first_failure_ms = poll.first_failure.map(|t| ms(t.saturating_duration_since(killed_at)));
    result.failover_ms = poll.first_failure.zip(poll.recovered).map(|(f, r)| ms(r.saturating_duration_since(f)));
    result.failed_answers = poll.failed;
    Ok(result)
}

/// What the poller saw after the kill.
struct PollLog {
    /// Send time of the first answer that was not 200.
    first_failure: Option<Instant>,
    /// Send time of the first 200 after it.
    recovered: Option<Instant>,
    /// Answers that were not 200.
    failed: u64,
}

impl Prepared {
    /// Revoke the prepared credentials and log in fresh users until `until`, side by side.
    async fn probe_lead(&self, until: Instant) -> LeadLog {
        let (revocations, logins) = tokio::join!(self.revoke_until(until), self.login_until(until));
        LeadLog {
            revoked: revocations.0,
            revocations_refused: revocations.1,
            created: logins.0,
            logins_refused: logins.1,
        }
    }

    async fn revoke_until(&self, until: Instant) -> (Vec<Grant>, u64) {
        let (mut acked, mut refused) = (Vec::new(), 0);
        for (n, (user, cred)) in self.victims.iter().enumerate() {
            if Instant::now() >= until {
                break;
            }
            match self.revoke(n, user, cred).await {
                Some(200) => acked.push(cred.clone()),
                _ => refused += 1,
            }
        }
        (acked, refused)
    }

    /// One revocation: logout (even `n`, or without an admin key) or revoke-user; its status.
    async fn revoke(&self, n: usize, user: &str, cred: &Grant) -> Option<u16> {
        let answer = if n % 2 == 1 && !self.admin_key.is_empty() {
            let path = format!("/admin/revoke-user/{user}");
            http::request(&self.base, http::Method::POST, &path, &[("x-admin-key", &self.admin_key)], None).await
        } else {
            super::revocation::send_logout(&self.base, cred).await
        };
        answer.ok().map(|(status, _, _)| status)
    }

    async fn login_until(&self, until: Instant) -> (Vec<Grant>, u64) {
        let (mut acked, mut refused) = (Vec::new(), 0);
        if self.watch.is_empty() {
            return (acked, refused);
        }
        let transport = self.strategy.profile().transport;
        for n in 0..self.victims.len() {
            if Instant::now() >= until {
                break;
            }
            match login(&self.base, &format!("{}fo-new-{n}", self.user_prefix), transport).await {
                Ok(g) => acked.push(g),
                Err(_) => refused += 1,
            }
        }
        (acked, refused)
    }

    /// Log in `n` more users for the poller (none for a strategy without credentials). On a Redis
    /// Cluster one credential's keys live on the failed master only by chance (a third of the
    /// slots): with several, some very likely do, and the poller sees the failover.
    pub async fn watch_more(mut self, n: u32) -> anyhow::Result<Prepared> {
        if self.watch.is_empty() {
            return Ok(self);
        }
        let transport = self.strategy.profile().transport;
        for i in 0..n {
            let user = format!("{}fo-watch-{i}", self.user_prefix);
            self.watch.push(login(&self.base, &user, transport).await?);
        }
        Ok(self)
    }

    /// One poll of every watched credential (one request without a credential when there is none);
    /// the answers that were not 200.
    async fn poll_round(&self, creds: &[(&'static str, String)]) -> u64 {
        if creds.is_empty() {
            return u64::from(!matches!(http::get(&self.base, "/api/resource", &[]).await, Ok((200, _, _))));
        }
        let mut failed = 0;
        for (name, value) in creds {
            let answer = http::get(&self.base, "/api/resource", &[(name, value.as_str())]).await;
            failed += u64::from(!matches!(answer, Ok((200, _, _))));
        }
        failed
    }

    /// Poll with the valid credentials until the failover showed (any answer not 200) and ended
    /// (a round of 200s) (see [`PollLog`]), for at most `wait` after the kill.
    async fn poll_failover(&self, killed_at: Instant, wait: Duration) -> PollLog {
        let mut log = PollLog { first_failure: None, recovered: None, failed: 0 };
        let creds: Vec<(&'static str, String)> =
            self.watch.iter().map(|g| (g.header_name(), g.header_value())).collect();
        let deadline = killed_at + wait;
        while Instant::now() < deadline {
            let sent = Instant::now();
            let failed = self.poll_round(&creds).await;
            match (failed == 0, log.first_failure) {
                (false, _) => {
                    log.failed += failed;
                    log.first_failure.get_or_insert(sent);
                }
                (true, Some(_)) => {
                    log.recovered = Some(sent);
                    break;
                }
                (true, None) if sent >= killed_at + QUIET_WAIT => break,
                (true, None) => {}
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        log
    }

    /// Replay every acknowledged revocation and login (see the module docs), all within `wait`.
    async fn replay_all(&self, lead: &LeadLog, wait: Duration) -> FailoverResult {
        let profile = self.strategy.profile();
        let deadline = Instant::now() + wait;
        let mut result = FailoverResult::default();
        if let Some(how) = Replay::for_revocation(profile.logout).filter(|_| !self.watch.is_empty()) {
            let mut lost = 0;
            for cred in &lead.revoked {
                match self.replay(how, cred, deadline).await {
                    Some(true) => lost += 1,
                    Some(false) => {}
                    None => result.replays_unanswered += 1,
                }
            }
            result.revocations_acknowledged = Some(lead.revoked.len() as u64);
            result.revocations_refused = Some(lead.revocations_refused);
            result.revocations_lost = Some(lost);
            let mut sessions_lost = 0;
            for cred in &lead.created {
                match self.replay(how, cred, deadline).await {
                    Some(false) => sessions_lost += 1,
                    Some(true) => {}
                    None => result.replays_unanswered += 1,
                }
            }
            result.sessions_acknowledged = Some(lead.created.len() as u64);
            result.sessions_refused = Some(lead.logins_refused);
            result.sessions_lost = Some(sessions_lost);
        }
        result
    }

    /// Present `cred` until the answer is 200 (`Some(true)`) or 401 (`Some(false)`), or `deadline`.
    async fn replay(&self, how: Replay, cred: &Grant, deadline: Instant) -> Option<bool> {
        loop {
            let answer = match (how, &cred.refresh_token) {
                (Replay::Refresh, Some(rt)) => {
                    http::post_json(&self.base, "/refresh", &[], &serde_json::json!({ "refresh_token": rt })).await
                }
                _ => {
                    let header = cred.header_value();
                    http::get(&self.base, "/api/resource", &[(cred.header_name(), header.as_str())]).await
                }
            };
            match answer {
                Ok((200, _, _)) => return Some(true),
                Ok((401, _, _)) => return Some(false),
                _ if Instant::now() >= deadline => return None,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
