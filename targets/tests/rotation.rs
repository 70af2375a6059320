//! Signing-key rotation (`POST /admin/rotate-key`): the mass logout it causes, with and without an
//! overlap, on every JWT strategy; JWKS follows the keys; the route is admin-only and JWT-only.

use std::time::Duration;

use authbench_targets::config::{Alg, StrategyKind};
use reqwest::StatusCode;
use serde_json::Value;

use crate::contract::{Backing, Cred, Env, body, expect_error, jwt_parts, start};
use crate::util::ADMIN_KEY;

const JWT_KINDS: [StrategyKind; 3] = [StrategyKind::JWT, StrategyKind::JWT_DENYLIST, StrategyKind::JWT_REFRESH];

async fn rotate(env: &Env) -> (StatusCode, Value) {
    body(env.c.post(env.url("/admin/rotate-key")).header("x-admin-key", ADMIN_KEY).send().await.unwrap()).await
}

fn kid(cred: &Cred) -> String {
    jwt_parts(cred.access()).0["kid"].as_str().expect("kid in the header").to_owned()
}

/// The `kid`s a JWKS document lists.
async fn jwks_kids(env: &Env) -> Vec<String> {
    let (s, v) = body(env.c.get(env.url("/.well-known/jwks.json")).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

/// Overlap 0: every token signed before the rotation is refused at once; a new login works, and
/// (jwt-refresh) a refresh token from before the rotation still works and yields a new-key token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_tokens_rejected_at_once() {
    for kind in JWT_KINDS {
        let env = start(kind, Backing::Memory, |_| {}).await;
        let old = env.login("alice").await;
        assert_eq!(env.access(&old, "alice").await, StatusCode::OK);
        let (s, v) = rotate(&env).await;
        assert_eq!(s, StatusCode::OK, "{kind}: {v}");
        assert_eq!(v["rotated"], true, "{v}");
        let new_kid = v["kid"].as_str().expect("kid in the reply").to_owned();
        assert_ne!(new_kid, kid(&old), "{kind}: rotation must change the kid");
        assert_eq!(env.access(&old, "alice").await, StatusCode::UNAUTHORIZED, "{kind}: old token after rotation");
        let new = env.login("alice").await;
        assert_eq!(kid(&new), new_kid);
        assert_eq!(env.access(&new, "alice").await, StatusCode::OK, "{kind}: login after rotation");
        if kind == StrategyKind::JWT_REFRESH {
            let renewed = env.refresh(old.refresh()).await.expect("refresh tokens survive a key rotation");
            assert_eq!(kid(&renewed), new_kid);
            assert_eq!(env.access(&renewed, "alice").await, StatusCode::OK);
        }
    }
}

/// With an overlap, old tokens keep working (and JWKS lists both keys) until it ends, then not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_accepts_then_rejects() {
    const OVERLAP: Duration = Duration::from_millis(1500);
    for kind in JWT_KINDS {
        let env = start(kind, Backing::Memory, |a| {
            a.alg = Alg::Es256;
            a.rotation_overlap = OVERLAP;
        })
        .await;
        let old = env.login("alice").await;
        let old_kid = kid(&old);
        assert_eq!(jwks_kids(&env).await, vec![old_kid.clone()]);
        let (s, v) = rotate(&env).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let new_kid = v["kid"].as_str().unwrap().to_owned();
        assert_eq!(env.access(&old, "alice").await, StatusCode::OK, "{kind}: old token within the overlap");
        let mut kids = jwks_kids(&env).await;
        kids.sort();
        let mut want = vec![old_kid.clone(), new_kid.clone()];
        want.sort();
        assert_eq!(kids, want, "JWKS lists both keys during the overlap");
        let new = env.login("alice").await;
        assert_eq!(kid(&new), new_kid);
        tokio::time::sleep(OVERLAP + Duration::from_millis(300)).await;
        assert_eq!(env.access(&old, "alice").await, StatusCode::UNAUTHORIZED, "{kind}: old token after the overlap");
        assert_eq!(env.access(&new, "alice").await, StatusCode::OK);
        assert_eq!(jwks_kids(&env).await, [new_kid], "JWKS drops the retired key");
    }
}

/// Asymmetric algorithms: JWKS publishes the new key only (overlap 0), and tokens verify with it;
/// a second rotation retires the first rotation's key too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_kid_changes() {
    for alg in [Alg::Rs256, Alg::Es256, Alg::EdDsa] {
        let env = start(StrategyKind::JWT, Backing::Memory, |a| a.alg = alg).await;
        let before = jwks_kids(&env).await;
        let (_, v) = rotate(&env).await;
        let first = v["kid"].as_str().unwrap().to_owned();
        assert_eq!(jwks_kids(&env).await, vec![first.clone()], "{alg}");
        assert_ne!(before, vec![first.clone()], "{alg}");
        let mid = env.login("alice").await;
        let (_, v) = rotate(&env).await;
        let second = v["kid"].as_str().unwrap().to_owned();
        assert_eq!(jwks_kids(&env).await, [second], "{alg}");
        assert_eq!(env.access(&mid, "alice").await, StatusCode::UNAUTHORIZED, "{alg}");
        assert_eq!(env.access(&env.login("alice").await, "alice").await, StatusCode::OK, "{alg}");
    }
}

/// Only the admin may rotate, only with POST, and only JWT strategies have keys to rotate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_key_required_and_jwt_only() {
    let env = start(StrategyKind::JWT, Backing::Memory, |_| {}).await;
    let cred = env.login("alice").await;
    let path = env.url("/admin/rotate-key");
    expect_error(env.c.post(&path).send().await.unwrap(), StatusCode::UNAUTHORIZED, "rotate without key").await;
    let r = env.c.post(&path).header("x-admin-key", "not-the-admin-key-at-all").send().await.unwrap();
    expect_error(r, StatusCode::UNAUTHORIZED, "rotate with a wrong key").await;
    let r = env.c.get(&path).header("x-admin-key", ADMIN_KEY).send().await.unwrap();
    expect_error(r, StatusCode::METHOD_NOT_ALLOWED, "GET rotate").await;
    assert_eq!(env.access(&cred, "alice").await, StatusCode::OK, "refused rotations rotate nothing");
    let text = env.metrics().await;
    assert!(text.contains(r#"route="/admin/rotate-key",status="401"} 2"#), "{text}");

    for kind in [StrategyKind::NONE, StrategyKind::SESSION] {
        let env = start(kind, Backing::Memory, |_| {}).await;
        let r = env.c.post(env.url("/admin/rotate-key")).header("x-admin-key", ADMIN_KEY).send().await.unwrap();
        expect_error(r, StatusCode::NOT_FOUND, &format!("rotate on {kind}")).await;
    }
}
