//! The decision table's store-down column, measured: after a strategy's measured window (so it
//! skews nothing measured), the run pauses its private redis-server (SIGSTOP, then SIGCONT) for a
//! moment while a prober polls `GET /api/resource` with a valid credential and `POST /login`, and
//! records every answer by phase (before, during, after the pause) and status, the behaviour while
//! the store was down, and how long api and login took to answer 200 again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::http;
use crate::environment::outage::inject_outage;
use crate::results::StoreDownCheck;
use crate::scenario::OutageMode;
use crate::targets::StrategyKind;
use crate::targets::config::AuthzSource;
use crate::targets::strategy::profile::{Degrade, RouteClass, StoreDown, Transport};

/// Polling before the pause (the baseline the behaviour is compared with).
pub const BEFORE: Duration = Duration::from_millis(200);
/// Polling after the pause (the recovery).
pub const AFTER: Duration = Duration::from_millis(500);
/// One api poll and one login per tick.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// A poll without an answer by then counts as `timeout`.
const POLL_TIMEOUT: Duration = Duration::from_secs(2);
/// The prober's user (distinct from the engine's and the other probes').
const USER: &str = "store-down-probe";
const PHASES: [&str; 3] = ["before", "during", "after"];

/// Where the store runs and how long to stop it.
#[derive(Debug, Clone, Copy)]
pub struct StoreDownPlan {
    /// The redis-server to pause.
    pub store_pid: u32,
    pub store_port: u16,
    /// How long it stays stopped.
    pub pause: Duration,
    /// How the strategy's credential travels (the api polls carry one).
    pub transport: Transport,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Api,
    Login,
}

struct Answer {
    route: Route,
    sent: Instant,
    answered: Instant,
    status: String,
}

/// Pause the store under the target at `base_url` and watch what the target does.
pub async fn check(base_url: &str, plan: StoreDownPlan) -> anyhow::Result<StoreDownCheck> {
    // `none` hands out no credential: its api needs none, so poll without.
    let cred = super::revocation::login(base_url, USER, plan.transport)
        .await
        .ok()
        .map(|g| (g.header_name(), g.header_value()));
    let start = Instant::now();
    let pause_at = start + BEFORE;
    let end = pause_at + plan.pause + AFTER;
    let outage = tokio::spawn(async move {
        tokio::time::sleep_until(pause_at.into()).await;
        inject_outage(plan.store_pid, plan.store_port, OutageMode::Pause, plan.pause).await
    });
    let answers = poll(base_url, cred, end).await;
    outage.await??;
    Ok(summarize(&answers, pause_at, pause_at + plan.pause, plan.pause))
}

async fn poll(base_url: &str, cred: Option<(&'static str, String)>, end: Instant) -> Vec<Answer> {
    let mut set: JoinSet<Answer> = JoinSet::new();
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while Instant::now() < end {
        tick.tick().await;
        let (base, c) = (base_url.to_owned(), cred.clone());
        set.spawn(async move { send(&base, Route::Api, c).await });
        let base = base_url.to_owned();
        set.spawn(async move { send(&base, Route::Login, None).await });
    }
    let mut answers = Vec::new();
    while let Some(done) = set.join_next().await {
        if let Ok(a) = done {
            answers.push(a);
        }
    }
    answers
}

async fn send(base: &str, route: Route, cred: Option<(&'static str, String)>) -> Answer {
    let sent = Instant::now();
    let request = async {
        match route {
            Route::Api => {
                let headers: Vec<(&str, &str)> = cred.iter().map(|(k, v)| (*k, v.as_str())).collect();
                http::get(base, "/api/resource", &headers).await
            }
            Route::Login => http::post_json(base, "/login", &[], &serde_json::json!({ "user": USER })).await,
        }
    };
    let status = match tokio::time::timeout(POLL_TIMEOUT, request).await {
        Ok(Ok((s, _, _))) => s.to_string(),
        Ok(Err(_)) => "error".to_owned(),
        Err(_) => "timeout".to_owned(),
    };
    Answer { route, sent, answered: Instant::now(), status }
}

fn summarize(answers: &[Answer], down: Instant, up: Instant, pause: Duration) -> StoreDownCheck {
    let by_phase = |route: Route| {
        let mut m: BTreeMap<String, BTreeMap<String, u64>> =
            PHASES.iter().map(|p| ((*p).to_owned(), BTreeMap::new())).collect();
        for a in answers.iter().filter(|a| a.route == route) {
            let phase = if a.answered < down {
                PHASES[0]
            } else if a.answered < up {
                PHASES[1]
            } else {
                PHASES[2]
            };
            *m.entry(phase.to_owned()).or_default().entry(a.status.clone()).or_insert(0) += 1;
        }
        m
    };
    let recovery = |route: Route| {
        answers
            .iter()
            .filter(|a| a.route == route && a.sent >= up && a.status == "200")
            .map(|a| a.answered.saturating_duration_since(up).as_secs_f64() * 1e3)
            .min_by(f64::total_cmp)
    };
    let (api, login) = (by_phase(Route::Api), by_phase(Route::Login));
    StoreDownCheck {
        mode: OutageMode::Pause.name().to_owned(),
        duration_ms: pause.as_secs_f64() * 1e3,
        api_behaviour: behaviour(&api[PHASES[1]]),
        login_behaviour: behaviour(&login[PHASES[1]]),
        api,
        login,
        api_recovery_ms: recovery(Route::Api),
        login_recovery_ms: recovery(Route::Login),
        expected: None,
        matches_expected: None,
    }
}

/// The measured behaviour from the answers that arrived while the store was down.
pub fn behaviour(during: &BTreeMap<String, u64>) -> String {
    let total: u64 = during.values().sum();
    let ok = during.get("200").copied().unwrap_or(0);
    if total == 0 {
        "not measured".to_owned()
    } else if ok == total {
        "unaffected (200)".to_owned()
    } else if ok == 0 {
        let statuses: Vec<&str> = during.keys().map(String::as_str).collect();
        format!("fails closed ({})", statuses.join(", "))
    } else {
        format!("partly: {ok} of {total} answered 200")
    }
}

/// A cached strategy's api answered from its cache for part of a silent outage, then failed closed:
/// what its profile states (the cache's trust lease), not a mismatch.
fn within_lease(expected: &str, check: &StoreDownCheck) -> bool {
    let Some((api, login)) = expected.split_once('/') else { return false };
    api.starts_with(CACHE_LEASE_WORDS)
        && login == check.login_behaviour
        && (check.api_behaviour.starts_with("partly") || check.api_behaviour.starts_with("fails closed"))
}

/// How a cached strategy's api is expected to behave with its store silent (its profile's words).
const CACHE_LEASE_WORDS: &str = StoreDown::FailsClosedAfterLease.describe();

/// The store-down behaviour the strategy's profile states, as `api/login` in the words of
/// [`behaviour`].
pub fn expected_behaviour(strategy: StrategyKind, authz: AuthzSource, degrade: Degrade) -> String {
    let profile = strategy.profile();
    let words = |route: RouteClass| match profile.store_down(route, authz, degrade) {
        StoreDown::Unaffected | StoreDown::FailsOpen | StoreDown::ServesStale => "unaffected (200)".to_owned(),
        StoreDown::FailsClosedAfterLease => {
            format!("{CACHE_LEASE_WORDS} (≤ {} ms)", crate::targets::cache::link::LEASE.as_millis())
        }
        s @ (StoreDown::FailsClosed | StoreDown::NoRoute) => format!("fails closed ({})", s.status()),
    };
    format!("{}/{}", words(RouteClass::Api), words(RouteClass::Login))
}

/// Fill in the expectation and say whether the measurement matched it; a warning on a mismatch.
pub fn compare_with_expected(check: &mut StoreDownCheck, expected: Option<String>) -> Option<String> {
    let measured = format!("{}/{}", check.api_behaviour, check.login_behaviour);
    let matches = expected.as_ref().map(|e| *e == measured || within_lease(e, check));
    check.expected = expected.clone();
    check.matches_expected = matches;
    (matches == Some(false))
        .then(|| format!("store down: expected {}, measured {measured}", expected.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_strategy_answering_within_its_lease_matches_its_profile() {
        let cached = StrategyKind::from_name("session-cached").expect("registered");
        let expected = expected_behaviour(cached, AuthzSource::Claims, Degrade::FailClosed);
        assert!(expected.starts_with(CACHE_LEASE_WORDS), "{expected}");
        let mut check = StoreDownCheck {
            api_behaviour: "partly: 8 of 28 answered 200".to_owned(),
            login_behaviour: "fails closed (503)".to_owned(),
            ..StoreDownCheck::default()
        };
        assert_eq!(compare_with_expected(&mut check, Some(expected.clone())), None, "no warning");
        check.api_behaviour = "unaffected (200)".to_owned();
        assert!(compare_with_expected(&mut check, Some(expected)).is_some(), "never failing closed is a mismatch");
        // The uncached sibling gets no such allowance.
        let plain = expected_behaviour(StrategyKind::SESSION, AuthzSource::Claims, Degrade::FailClosed);
        check.api_behaviour = "partly: 8 of 28 answered 200".to_owned();
        assert!(compare_with_expected(&mut check, Some(plain)).is_some());
    }

    #[test]
    fn behaviour_from_answers() {
        let m = |pairs: &[(&str, u64)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
        assert_eq!(behaviour(&m(&[])), "not measured");
        assert_eq!(behaviour(&m(&[("200", 40)])), "unaffected (200)");
        assert_eq!(behaviour(&m(&[("503", 30), ("timeout", 1)])), "fails closed (503, timeout)");
        assert_eq!(behaviour(&m(&[("200", 3), ("503", 30)])), "partly: 3 of 33 answered 200");
    }

    #[test]
    fn phases_and_recovery() {
        let t0 = Instant::now();
        let (down, up) = (t0 + Duration::from_millis(200), t0 + Duration::from_millis(1200));
        let a = |route, sent_ms: u64, took_ms: u64, status: &str| Answer {
            route,
            sent: t0 + Duration::from_millis(sent_ms),
            answered: t0 + Duration::from_millis(sent_ms + took_ms),
            status: status.to_owned(),
        };
        let answers = [
            a(Route::Api, 0, 1, "200"),
            a(Route::Api, 300, 250, "503"),
            a(Route::Login, 300, 250, "503"),
            a(Route::Api, 1100, 250, "503"),
            a(Route::Api, 1220, 5, "200"),
            a(Route::Login, 1240, 5, "200"),
        ];
        let c = summarize(&answers, down, up, Duration::from_secs(1));
        assert_eq!(c.api["before"].get("200"), Some(&1));
        assert_eq!(c.api["during"].get("503"), Some(&1));
        assert_eq!(c.api["after"].get("503"), Some(&1));
        assert_eq!(
            (c.api_behaviour.as_str(), c.login_behaviour.as_str()),
            ("fails closed (503)", "fails closed (503)")
        );
        assert_eq!(c.api_recovery_ms.map(f64::round), Some(25.0));
        assert_eq!(c.login_recovery_ms.map(f64::round), Some(45.0));
        let mut c2 = c.clone();
        assert_eq!(compare_with_expected(&mut c2, None), None);
        assert!(compare_with_expected(&mut c2, Some("unaffected (200)/fails closed (503)".into())).is_some());
        assert_eq!(c2.matches_expected, Some(false));
    }
}
