//! The `web+api` strategy (browsers on the session cookie, API clients on bearer JWTs, one
//! backend), on every store: each client kind's login and credential, the per-path counters, a
//! credential of one kind presented as the other, a request carrying both (the bearer wins, with no
//! fall-back to the cookie), session fixation and cookie flags on the browser path, revocation of
//! each kind by logout and revoke-user, and fail-closed with the store down. The bearer path's JWT
//! attacks (alg pinning, key confusion, tampering, claims, expiry) run in `jwt_attacks`.

use authbench_targets::config::StrategyKind;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CACHE_CONTROL, COOKIE, SET_COOKIE, WWW_AUTHENTICATE};
use serde_json::json;

use crate::contract::{Backing, Cred, Env, body, both_stores, expect_error, jwt_parts, metric, start};

/// `(session path, bearer path)` api requests the target counted.
async fn paths(env: &Env) -> (u64, u64) {
    let m = env.metrics().await;
    let session = metric(&m, r#"authbench_auth_path_total{strategy="web+api",path="session"}"#);
    let bearer = metric(&m, r#"authbench_auth_path_total{strategy="web+api",path="bearer"}"#);
    (session, bearer)
}

/// `GET /api/resource` with a cookie and a bearer token at once: status and body.
async fn with_both(env: &Env, sid: &str, token: &str) -> (StatusCode, serde_json::Value) {
    let r = env.c.get(env.url("/api/resource")).header(COOKIE, format!("sid={sid}")).bearer_auth(token).send().await;
    body(r.unwrap()).await
}

async fn two_client_kinds(b: Backing) {
    let env = start(StrategyKind::WEB_API, b, |_| {}).await;
    // A browser: the session cookie with every flag, nothing in the body.
    let r = env.login_response("alice", &Cred::Nothing).await;
    let cookie = r.headers().get(SET_COOKIE).expect("a browser login sets the cookie").to_str().unwrap().to_owned();
    let attrs: Vec<&str> = cookie.split(';').map(str::trim).collect();
    for flag in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(attrs.contains(&flag), "cookie lacks {flag}: {cookie}");
    }
    let sid = attrs[0].strip_prefix("sid=").unwrap().to_owned();
    assert_eq!(sid.len(), 43, "a 256-bit session id");
    assert_eq!(body(r).await, (StatusCode::OK, json!({"session": true})));
    let browser = Cred::Cookie(sid);

    // An API client: a bearer JWT with a jti, no cookie, not cacheable.
    let r = env.c.post(env.url("/login")).json(&json!({"user": "bob", "client": "api"})).send().await.unwrap();
    assert!(r.headers().get(SET_COOKIE).is_none(), "an API login sets no cookie");
    assert_eq!(r.headers().get(CACHE_CONTROL).map(|v| v.to_str().unwrap()), Some("no-store"));
    let (status, v) = body(r).await;
    assert_eq!((status, &v["token_type"], &v["expires_in"]), (StatusCode::OK, &json!("Bearer"), &json!(900)));
    let token = v["access_token"].as_str().unwrap().to_owned();
    let (h, p) = jwt_parts(&token);
    assert_eq!((h["alg"].as_str(), h["typ"].as_str(), p["sub"].as_str()), (Some("HS256"), Some("at+jwt"), Some("bob")));
    assert!(p["jti"].is_string(), "a denylistable jti: {p}");
    let api = Cred::Bearer { access: token, refresh: None };

    assert_eq!(env.access(&browser, "alice").await, StatusCode::OK);
    assert_eq!(env.access(&api, "bob").await, StatusCode::OK);
    assert_eq!(env.access(&api, "bob").await, StatusCode::OK);
    assert_eq!(paths(&env).await, (1, 2), "each request counted on its own path");

    // The login body: an unknown kind, or an older client that is also an API client, is refused.
    for bad in [json!({"user": "x", "client": "robot"}), json!({"user": "x", "legacy": true, "client": "api"})] {
        let r = env.c.post(env.url("/login")).json(&bad).send().await.unwrap();
        expect_error(r, StatusCode::BAD_REQUEST, &format!("login {bad}")).await;
    }
    // No credential at all: 401 with the bearer challenge.
    let r = env.resource(&Cred::Nothing).await;
    assert!(r.headers().get(WWW_AUTHENTICATE).is_some_and(|w| w.to_str().unwrap().starts_with("Bearer")));
    expect_error(r, StatusCode::UNAUTHORIZED, "no credential").await;
}

async fn one_kind_is_not_the_other(b: Backing) {
    let env = start(StrategyKind::WEB_API, b, |_| {}).await;
    let (browser, api) = (env.login("alice").await, env.login_api("alice").await);
    // A session id sent as a bearer token, a JWT sent as the sid cookie: both refused.
    let sid_as_bearer = Cred::Bearer { access: browser.sid().to_owned(), refresh: None };
    assert_eq!(env.access(&sid_as_bearer, "alice").await, StatusCode::UNAUTHORIZED, "session id as a bearer");
    let jwt_as_cookie = Cred::Cookie(api.access().to_owned());
    assert_eq!(env.access(&jwt_as_cookie, "alice").await, StatusCode::UNAUTHORIZED, "JWT as the sid cookie");
    // Nor does logout act on them.
    assert_eq!(env.logout(&sid_as_bearer).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(env.logout(&jwt_as_cookie).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(env.access(&browser, "alice").await, StatusCode::OK);
    assert_eq!(env.access(&api, "alice").await, StatusCode::OK);
}

async fn bearer_wins_over_the_cookie(b: Backing) {
    let env = start(StrategyKind::WEB_API, b, |_| {}).await;
    let (alice_cookie, bob_token) = (env.login("alice").await, env.login_api("bob").await);
    let before = paths(&env).await;
    let (status, v) = with_both(&env, alice_cookie.sid(), bob_token.access()).await;
    assert_eq!((status, &v["sub"]), (StatusCode::OK, &json!("bob")), "the bearer decides: {v}");
    assert_eq!(paths(&env).await, (before.0, before.1 + 1), "counted on the bearer path");
    // A bad bearer beside a valid cookie is refused: no fall-back to the session.
    let tampered = format!("{}x", bob_token.access());
    for bad in [tampered.as_str(), "garbage", alice_cookie.sid()] {
        assert_eq!(with_both(&env, alice_cookie.sid(), bad).await.0, StatusCode::UNAUTHORIZED, "bearer {bad:.20}");
    }
    // A revoked bearer beside a valid cookie too.
    assert_eq!(env.logout(&bob_token).await, (StatusCode::OK, json!({"revoked": true})));
    assert_eq!(with_both(&env, alice_cookie.sid(), bob_token.access()).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(env.access(&alice_cookie, "alice").await, StatusCode::OK, "the cookie alone still works");

    // Logout carrying both ends both (its answer clears the cookie: the session must not outlive it).
    let (cookie, token) = (env.login("carol").await, env.login_api("carol").await);
    let r = env.c.post(env.url("/logout")).header(COOKIE, format!("sid={}", cookie.sid()));
    let r = r.header(AUTHORIZATION, format!("Bearer {}", token.access())).send().await.unwrap();
    let clear = r.headers().get(SET_COOKIE).unwrap().to_str().unwrap().to_owned();
    assert!(clear.starts_with("sid=;") && clear.contains("Max-Age=0"), "{clear}");
    assert_eq!(body(r).await, (StatusCode::OK, json!({"revoked": true})));
    assert_eq!(env.access(&cookie, "carol").await, StatusCode::UNAUTHORIZED, "the cookie's session survived");
    assert_eq!(env.access(&token, "carol").await, StatusCode::UNAUTHORIZED, "the token survived");
}

async fn fixation_on_the_browser_path(b: Backing) {
    let env = start(StrategyKind::WEB_API, b, |_| {}).await;
    let old = env.login("alice").await;
    let new = env.login_offering("mallory", &old).await;
    assert_ne!(new.sid(), old.sid(), "offered sid adopted (session fixation)");
    assert_eq!(env.access(&old, "alice").await, StatusCode::UNAUTHORIZED, "old sid survived a new login");
    assert_eq!(env.access(&new, "mallory").await, StatusCode::OK);
    // An API login adopts nothing: it hands out a token and sets no cookie (`login_api` checks).
    let token = {
        let r = env.c.post(env.url("/login")).header(COOKIE, format!("sid={}", new.sid()));
        let r = r.json(&json!({"user": "mallory", "client": "api"})).send().await.unwrap();
        assert!(r.headers().get(SET_COOKIE).is_none(), "an API login sets no cookie");
        body(r).await.1["access_token"].as_str().unwrap().to_owned()
    };
    assert_eq!(env.access(&Cred::Bearer { access: token, refresh: None }, "mallory").await, StatusCode::OK);
}

async fn revocation_of_each_kind(b: Backing) {
    let env = start(StrategyKind::WEB_API, b, |_| {}).await;
    let (c1, c2) = (env.login("alice").await, env.login("alice").await);
    let (t1, t2) = (env.login_api("alice").await, env.login_api("alice").await);
    // Logout of a token: that token is refused on the very next request; the rest live on.
    assert_eq!(env.logout(&t1).await, (StatusCode::OK, json!({"revoked": true})));
    assert_eq!(env.access(&t1, "alice").await, StatusCode::UNAUTHORIZED, "revoked JWT accepted");
    assert_eq!(env.access(&t2, "alice").await, StatusCode::OK);
    // Logout of a session: that session is refused, the cookie cleared.
    let r = c1.apply(env.c.post(env.url("/logout"))).send().await.unwrap();
    assert!(r.headers().get(SET_COOKIE).is_some_and(|c| c.to_str().unwrap().contains("Max-Age=0")));
    assert_eq!(body(r).await, (StatusCode::OK, json!({"revoked": true})));
    assert_eq!(env.access(&c1, "alice").await, StatusCode::UNAUTHORIZED, "logged-out session accepted");
    assert_eq!(env.access(&c2, "alice").await, StatusCode::OK);
    // Revoke-user ends everything the user holds, of both kinds, and nobody else's.
    let (bob_cookie, bob_token) = (env.login("bob").await, env.login_api("bob").await);
    assert_eq!(env.revoke_user("alice").await, (StatusCode::OK, json!({"revoked": true})));
    assert_eq!(env.access(&c2, "alice").await, StatusCode::UNAUTHORIZED, "session survived revoke-user");
    assert_eq!(env.access(&t2, "alice").await, StatusCode::UNAUTHORIZED, "token survived revoke-user");
    assert_eq!(env.access(&bob_cookie, "bob").await, StatusCode::OK);
    assert_eq!(env.access(&bob_token, "bob").await, StatusCode::OK);
    // Logins right after the revoke work, of both kinds.
    assert_eq!(env.access(&env.login("alice").await, "alice").await, StatusCode::OK);
    assert_eq!(env.access(&env.login_api("alice").await, "alice").await, StatusCode::OK);
}

both_stores!(
    two_client_kinds,
    one_kind_is_not_the_other,
    bearer_wins_over_the_cookie,
    fixation_on_the_browser_path,
    revocation_of_each_kind
);

/// Store down: both paths refuse (503), as `session` and `jwt-denylist` do; never a 200 unchecked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_paths_fail_closed_when_the_store_is_down() {
    let mut env = start(StrategyKind::WEB_API, Backing::Redis, |_| {}).await;
    let (cookie, token) = (env.login("alice").await, env.login_api("alice").await);
    env.redis.as_mut().unwrap().kill();
    for (cred, what) in [(&cookie, "session path"), (&token, "bearer path")] {
        let r = env.resource(cred).await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{what} with the store down");
        assert!(r.headers().get("retry-after").is_some(), "{what}: Retry-After");
        let s = cred.apply(env.c.post(env.url("/logout"))).send().await.unwrap().status();
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{what}: logout must not claim success");
    }
    let r = env.c.post(env.url("/login")).json(&json!({"user": "bob", "client": "api"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "API login with the store down");
}
