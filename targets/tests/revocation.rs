//! What logout and revoke-user actually end, per strategy, on both stores, and how long a revoked
//! credential stays usable (the revocation window the report measures):
//! - `session`, `jwt-denylist`: at once (window 0), including the denylist's per-user not-before for
//!   tokens issued in the same second (and millisecond) as the revoke, while a login right after a
//!   revoke works;
//! - `jwt`: never before `exp` (+ leeway), and the target says so (`revoked: false`);
//! - `jwt-refresh`: the refresh family at once, the access token only at its `exp`.
//!
//! And fail closed: with the store down, routes that need it answer 503, never a 200 that skipped
//! the check.

use std::time::Duration;

use authbench_targets::config::StrategyKind;
use reqwest::StatusCode;
use serde_json::json;

use crate::contract::{Backing, Cred, all_stores, body, both_stores, start};

async fn logout_per_strategy(b: Backing) {
    for kind in [StrategyKind::SESSION, StrategyKind::JWT, StrategyKind::JWT_DENYLIST, StrategyKind::JWT_REFRESH] {
        let env = start(kind, b, |_| {}).await;
        let cred = env.login("alice").await;
        let other = env.login("alice").await;
        assert_eq!(env.access(&cred, "alice").await, StatusCode::OK);
        let (s, v) = env.logout(&cred).await;
        assert_eq!(s, StatusCode::OK, "{kind}: {v}");
        let after = env.access(&cred, "alice").await;
        match kind {
            StrategyKind::SESSION | StrategyKind::JWT_DENYLIST => {
                assert_eq!(v, json!({"revoked": true}), "{kind}");
                assert_eq!(after, StatusCode::UNAUTHORIZED, "{kind}: credential alive after logout");
                // Logout ends that credential only.
                assert_eq!(env.access(&other, "alice").await, StatusCode::OK, "{kind}: logout ended another login");
            }
            StrategyKind::JWT => {
                assert_eq!(v, json!({"revoked": false}), "jwt cannot revoke and must not claim to");
                assert_eq!(after, StatusCode::OK, "jwt tokens stay valid until exp");
            }
            StrategyKind::JWT_REFRESH => {
                assert_eq!(v, json!({"revoked": true}));
                assert_eq!(after, StatusCode::OK, "access token stays valid until exp");
                assert_eq!(env.refresh(cred.refresh()).await, Err(StatusCode::UNAUTHORIZED), "refresh after logout");
                assert!(env.refresh(other.refresh()).await.is_ok(), "logout ended another family");
            }
            _ => unreachable!("{kind} is not probed here"),
        }
    }
}

async fn revoke_user_per_strategy(b: Backing) {
    for kind in [StrategyKind::SESSION, StrategyKind::JWT, StrategyKind::JWT_DENYLIST, StrategyKind::JWT_REFRESH] {
        let env = start(kind, b, |_| {}).await;
        let a1 = env.login("alice").await;
        let a2 = env.login("alice").await;
        let bob = env.login("bob").await;
        let (s, v) = env.revoke_user("alice").await;
        assert_eq!(s, StatusCode::OK, "{kind}: {v}");
        let revokes = kind != StrategyKind::JWT;
        assert_eq!(v, json!({"revoked": revokes}), "{kind}");
        for a in [&a1, &a2] {
            let want = if matches!(kind, StrategyKind::JWT | StrategyKind::JWT_REFRESH) {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            };
            assert_eq!(env.access(a, "alice").await, want, "{kind}: alice after revoke-user");
            if kind == StrategyKind::JWT_REFRESH {
                assert_eq!(env.refresh(a.refresh()).await, Err(StatusCode::UNAUTHORIZED), "refresh after revoke-user");
            }
        }
        assert_eq!(env.access(&bob, "bob").await, StatusCode::OK, "{kind}: revoke-user hit another user");
        // A login after the revoke works at once (same second, same millisecond even).
        let fresh = env.login("alice").await;
        assert_eq!(env.access(&fresh, "alice").await, StatusCode::OK, "{kind}: login right after revoke-user");
    }
}

/// The denylist's not-before, hammered: every cycle revokes within milliseconds of the previous
/// login, so tokens share `iat` seconds with the revoke. Tokens from before each revoke must die,
/// the login right after must work.
async fn denylist_same_second_revoke(b: Backing) {
    let env = start(StrategyKind::JWT_DENYLIST, b, |_| {}).await;
    let mut dead: Vec<Cred> = Vec::new();
    let mut prev = env.login("alice").await;
    for i in 0..15 {
        assert_eq!(env.revoke_user("alice").await.0, StatusCode::OK);
        dead.push(prev);
        let next = env.login("alice").await;
        assert_eq!(env.access(&next, "alice").await, StatusCode::OK, "cycle {i}: login after revoke refused");
        for (j, d) in dead.iter().enumerate() {
            assert_eq!(env.access(d, "alice").await, StatusCode::UNAUTHORIZED, "cycle {i}: token {j} resurrected");
        }
        prev = next;
    }
    // Two revokes back to back, then a token from between them: dead.
    let between = {
        env.revoke_user("alice").await;
        let t = env.login("alice").await;
        env.revoke_user("alice").await;
        t
    };
    assert_eq!(env.access(&between, "alice").await, StatusCode::UNAUTHORIZED, "token between two revokes survived");
    // Logout of one token does not affect a later one.
    let l1 = env.login("alice").await;
    let l2 = env.login("alice").await;
    env.logout(&l1).await;
    assert_eq!(env.access(&l2, "alice").await, StatusCode::OK);
}

/// With a 1 s access TTL and no leeway, the windows that cannot be closed early do close at `exp`.
async fn bounded_windows(b: Backing) {
    let mut envs = Vec::new();
    for kind in [StrategyKind::JWT, StrategyKind::JWT_REFRESH, StrategyKind::JWT_DENYLIST] {
        let env = start(kind, b, |a| {
            a.access_ttl = Some(Duration::from_secs(1));
            a.leeway = Duration::ZERO;
        })
        .await;
        let cred = env.login("alice").await;
        env.logout(&cred).await;
        let want = if kind == StrategyKind::JWT_DENYLIST { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
        assert_eq!(env.access(&cred, "alice").await, want, "{kind} right after logout");
        envs.push((env, cred));
    }
    // exp = iat + 1 s, iat rounded down: past exp for sure 2.1 s later.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for (env, cred) in &envs {
        assert_eq!(env.access(cred, "alice").await, StatusCode::UNAUTHORIZED, "{}: alive past exp", env.kind);
    }
    // The denylist entry expiring with the token never resurrects it (the token is expired anyway).
}

both_stores!(denylist_same_second_revoke, bounded_windows);
all_stores!(logout_per_strategy, revoke_user_per_strategy);

/// Store down: the strategies that need it refuse (503), the ones that do not keep serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_when_store_down() {
    for kind in [StrategyKind::SESSION, StrategyKind::JWT_DENYLIST, StrategyKind::JWT_REFRESH] {
        let mut env = start(kind, Backing::Redis, |_| {}).await;
        let cred = env.login("alice").await;
        assert_eq!(env.access(&cred, "alice").await, StatusCode::OK);
        env.redis.as_mut().unwrap().kill();
        let r = env.resource(&cred).await;
        let status = r.status();
        let retry = r.headers().get("retry-after").is_some();
        let v: serde_json::Value = r.json().await.unwrap();
        match kind {
            StrategyKind::JWT_REFRESH => assert_eq!(status, StatusCode::OK, "jwt-refresh needs no store per request"),
            _ => {
                assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{kind}: store down must fail closed, got {v}");
                assert!(retry && v["error"].is_string(), "{kind}: 503 with Retry-After and a JSON error");
                assert!(!v.to_string().contains("127.0.0.1"), "store details leaked: {v}");
            }
        }
        let r = env.c.post(env.url("/login")).json(&json!({"user": "alice"})).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{kind}: login with the store down");
        let mut logout = cred.apply(env.c.post(env.url("/logout")));
        if kind == StrategyKind::JWT_REFRESH {
            logout = logout.json(&json!({"refresh_token": cred.refresh()}));
        }
        let s = logout.send().await.unwrap().status();
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{kind}: logout with the store down must not claim success");
        let r = env.c.post(env.url("/admin/revoke-user/alice")).header("x-admin-key", crate::util::ADMIN_KEY).send();
        assert_eq!(r.await.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE, "{kind}: revoke-user");
        if kind == StrategyKind::JWT_REFRESH {
            let r = env.refresh_response(cred.refresh()).await;
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "refresh with the store down");
        }
        let _ = body(env.c.get(env.url("/health")).send().await.unwrap()).await;
    }
}
