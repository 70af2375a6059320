//! `--fail-open` on jwt-denylist: what availability costs in security. With the store killed, the
//! default (fail closed) answers 503 for every token, revoked or not; fail-open answers 200 for
//! both, and the revoked token's 200 is the "unexpected allow" a report shows. Each unchecked allow
//! is counted in `/metrics`.

use authbench_targets::config::StrategyKind;
use reqwest::StatusCode;

use crate::contract::{Backing, Env, metric, start};
use crate::util;

const FAIL_OPEN_METRIC: &str = r#"authbench_fail_open_allows_total{strategy="jwt-denylist"}"#;

/// Status of `GET /api/resource` with a bearer token (any status, no body checks).
async fn status(env: &Env, token: &str) -> StatusCode {
    env.c.get(env.url("/api/resource")).bearer_auth(token).send().await.unwrap().status()
}

/// A jwt-denylist target on redis with one valid and one logged-out token; then redis is killed.
async fn outage(fail_open: bool) -> (Env, String, String) {
    let mut env = start(StrategyKind::JWT_DENYLIST, Backing::Redis, |a| a.fail_open = fail_open).await;
    let valid = env.login("alice").await.access().to_owned();
    let revoked = env.login("bob").await;
    let (s, _) = env.logout(&revoked).await;
    assert_eq!(s, StatusCode::OK);
    let revoked = revoked.access().to_owned();
    // Store up: fail-open changes nothing.
    assert_eq!(status(&env, &valid).await, StatusCode::OK);
    assert_eq!(status(&env, &revoked).await, StatusCode::UNAUTHORIZED);
    env.redis.as_mut().expect("redis backing").kill();
    (env, valid, revoked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_refuses_every_token_during_outage() {
    let (env, valid, revoked) = outage(false).await;
    for _ in 0..3 {
        assert_eq!(status(&env, &valid).await, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status(&env, &revoked).await, StatusCode::SERVICE_UNAVAILABLE, "zero unexpected allows");
    }
    assert_eq!(metric(&env.metrics().await, FAIL_OPEN_METRIC), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_open_allows_every_verified_token_during_outage() {
    let (env, valid, revoked) = outage(true).await;
    for _ in 0..3 {
        assert_eq!(status(&env, &valid).await, StatusCode::OK);
        assert_eq!(status(&env, &revoked).await, StatusCode::OK, "the revoked token is let in: an unexpected allow");
    }
    // Signature and claims are still checked: forged tokens stay out.
    assert_eq!(status(&env, "garbage").await, StatusCode::UNAUTHORIZED);
    assert_eq!(metric(&env.metrics().await, FAIL_OPEN_METRIC), 6);
    // Routes that must write to the store still fail closed.
    let r = env.c.post(env.url("/login")).json(&serde_json::json!({ "user": "carol" })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[test]
fn fail_open_is_the_denylists_only() {
    let denylists = [Some(StrategyKind::JWT_DENYLIST), StrategyKind::from_name("jwt-denylist-cached")];
    for &kind in StrategyKind::ALL {
        let mut a = util::args(kind);
        a.fail_open = true;
        assert_eq!(a.validate().is_ok(), denylists.contains(&Some(kind)), "--fail-open with {kind}");
    }
}
