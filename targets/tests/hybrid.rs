//! Attacks on the `hybrid` strategy (session id plus an embedded JWT in one cookie), on every store:
//! a token lifted onto another session, a tampered token riding on a valid session id, a revoked
//! session's still-unexpired token, session fixation through the cookie, and the upgrade of an
//! older client's session-only cookie.

use std::time::Duration;

use authbench_targets::config::StrategyKind;
use reqwest::StatusCode;
use serde_json::json;

use crate::contract::{Backing, Cred, Env, body, both_stores, jwt_parts, metric, set_cookie_sid, start};

fn hybrid() -> StrategyKind {
    StrategyKind::from_name("hybrid").expect("hybrid is registered")
}

/// `(session id, JWT)` of a hybrid cookie.
fn parts(c: &Cred) -> (&str, Option<&str>) {
    match c.sid().split_once('~') {
        Some((sid, jwt)) => (sid, Some(jwt)),
        None => (c.sid(), None),
    }
}

/// Log in as an older client: the session id alone.
async fn login_legacy(env: &Env, user: &str) -> Cred {
    let r = env.c.post(env.url("/login")).json(&json!({ "user": user, "legacy": true })).send().await.unwrap();
    let sid = set_cookie_sid(&r).expect("legacy login sets the sid cookie");
    assert_eq!(body(r).await.0, StatusCode::OK);
    Cred::Cookie(sid)
}

/// `GET /api/resource`: status and the upgraded cookie, if the answer carries one.
async fn api(env: &Env, c: &Cred) -> (StatusCode, Option<String>) {
    let r = env.resource(c).await;
    let upgraded = set_cookie_sid(&r);
    (body(r).await.0, upgraded)
}

async fn paths(env: &Env) -> (u64, u64) {
    let m = env.metrics().await;
    let token = metric(&m, r#"authbench_auth_path_total{strategy="hybrid",path="token"}"#);
    let session = metric(&m, r#"authbench_auth_path_total{strategy="hybrid",path="session"}"#);
    (token, session)
}

async fn token_path_and_upgrade(b: Backing) {
    let env = start(hybrid(), b, |_| {}).await;
    let alice = env.login("alice").await;
    let (sid, jwt) = parts(&alice);
    let jwt = jwt.expect("a fresh login carries the JWT");
    assert_eq!(sid.len(), 43, "a 256-bit session id");
    let (_, claims) = jwt_parts(jwt);
    assert_eq!(claims["sub"], "alice");
    assert_ne!(claims["jti"].as_str(), Some(sid), "the token embeds the session's hash, not the id itself");
    assert_eq!(api(&env, &alice).await, (StatusCode::OK, None), "token path: no cookie change");
    assert_eq!(paths(&env).await, (1, 0));

    // An older client: session id only; its first api answer upgrades the cookie, then the token path.
    let bob = login_legacy(&env, "bob").await;
    assert_eq!(parts(&bob).1, None);
    let (status, upgraded) = api(&env, &bob).await;
    assert_eq!(status, StatusCode::OK);
    let upgraded = Cred::Cookie(upgraded.expect("the session path upgrades the cookie"));
    assert_eq!(parts(&upgraded).0, parts(&bob).0, "the upgrade keeps the session");
    assert!(parts(&upgraded).1.is_some());
    assert_eq!(paths(&env).await, (1, 1));
    assert_eq!(api(&env, &upgraded).await, (StatusCode::OK, None));
    assert_eq!(paths(&env).await, (2, 1));
}

async fn lifted_and_tampered_tokens_are_refused(b: Backing) {
    let env = start(hybrid(), b, |_| {}).await;
    let (alice, mallory) = (env.login("alice").await, env.login("mallory").await);
    let (alice_sid, alice_jwt) = parts(&alice);
    let (mallory_sid, _) = parts(&mallory);
    // Alice's token on Mallory's (valid) session, and the other way round: the embedded session differs.
    let lifted = Cred::Cookie(format!("{mallory_sid}~{}", alice_jwt.unwrap()));
    assert_eq!(env.access(&lifted, "alice").await, StatusCode::UNAUTHORIZED, "token lifted onto another session");
    // A tampered signature with a valid session id is refused, not served by the session path.
    let mut jwt = alice_jwt.unwrap().to_owned();
    let i = jwt.len() - 5;
    jwt.replace_range(i..=i, if &jwt[i..=i] == "A" { "B" } else { "A" });
    let tampered = Cred::Cookie(format!("{alice_sid}~{jwt}"));
    assert_eq!(env.access(&tampered, "alice").await, StatusCode::UNAUTHORIZED, "tampered token downgraded");
    // An unsigned token (alg none) on a valid session id.
    let (_, payload) = alice_jwt.unwrap().split_once('.').unwrap();
    let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0"; // {"alg":"none","typ":"at+jwt"}
    let unsigned = Cred::Cookie(format!("{alice_sid}~{none_header}.{}", payload.split('.').next().unwrap()));
    assert_eq!(env.access(&unsigned, "alice").await, StatusCode::UNAUTHORIZED, "alg none accepted");
    assert_eq!(env.access(&alice, "alice").await, StatusCode::OK);
}

async fn logout_and_revoke_end_both_paths(b: Backing) {
    let env = start(hybrid(), b, |_| {}).await;
    let alice = env.login("alice").await;
    let legacy_view = Cred::Cookie(parts(&alice).0.to_owned());
    assert_eq!(env.access(&legacy_view, "alice").await, StatusCode::OK, "the session id alone still works");
    let (status, v) = env.logout(&alice).await;
    assert_eq!((status, &v["revoked"]), (StatusCode::OK, &json!(true)));
    assert_eq!(env.access(&alice, "alice").await, StatusCode::UNAUTHORIZED, "token path after logout");
    assert_eq!(env.access(&legacy_view, "alice").await, StatusCode::UNAUTHORIZED, "session path after logout");

    let (one, two, other) = (env.login("bob").await, login_legacy(&env, "bob").await, env.login("carol").await);
    let (status, v) = env.revoke_user("bob").await;
    assert_eq!((status, &v["revoked"]), (StatusCode::OK, &json!(true)));
    assert_eq!(env.access(&one, "bob").await, StatusCode::UNAUTHORIZED);
    assert_eq!(env.access(&two, "bob").await, StatusCode::UNAUTHORIZED);
    assert_eq!(env.access(&other, "carol").await, StatusCode::OK, "revoke-user is scoped to its user");
}

async fn fixation(b: Backing) {
    let env = start(hybrid(), b, |_| {}).await;
    let old = env.login("alice").await;
    let new = env.login_offering("alice", &old).await;
    assert_ne!(parts(&new).0, parts(&old).0, "offered session adopted");
    assert_eq!(env.access(&Cred::Cookie(parts(&old).0.to_owned()), "alice").await, StatusCode::UNAUTHORIZED);
    assert_eq!(env.access(&new, "alice").await, StatusCode::OK);
}

both_stores!(
    token_path_and_upgrade,
    lifted_and_tampered_tokens_are_refused,
    logout_and_revoke_end_both_paths,
    fixation
);

/// An expired token falls back to the session lookup, which hands out a fresh one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_is_renewed_by_the_session_path() {
    let env = start(hybrid(), Backing::Memory, |a| {
        a.access_ttl = Some(Duration::from_secs(1));
        a.leeway = Duration::ZERO;
    })
    .await;
    let alice = env.login("alice").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, renewed) = api(&env, &alice).await;
    assert_eq!(status, StatusCode::OK);
    let renewed = Cred::Cookie(renewed.expect("an expired token is renewed"));
    assert_ne!(parts(&renewed).1, parts(&alice).1);
    assert_eq!(paths(&env).await, (0, 1));
    env.logout(&renewed).await;
    assert_eq!(env.access(&alice, "alice").await, StatusCode::UNAUTHORIZED, "expired token after logout");
}
