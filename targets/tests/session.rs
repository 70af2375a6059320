//! Attacks on the `session` strategy, on both stores: fixation (an offered sid is never adopted and
//! dies at login), sid entropy and shape, unknown and garbage sids, logout, and revoke-user scoped to
//! exactly one user.

use std::collections::HashSet;

use authbench_targets::config::StrategyKind;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::header::COOKIE;
use serde_json::json;

use crate::contract::{Backing, Cred, all_stores, body, both_stores, start};

/// A sid of the right shape that the server never issued.
fn forged_sid() -> String {
    let mut buf = [0u8; 32];
    aws_lc_rs::rand::fill(&mut buf).unwrap();
    URL_SAFE_NO_PAD.encode(buf)
}

async fn fixation(b: Backing) {
    let env = start(StrategyKind::SESSION, b, |_| {}).await;

    // An attacker-chosen sid offered at login is not adopted, and stays worthless.
    let planted = forged_sid();
    let got = env.login_offering("alice", &Cred::Cookie(planted.clone())).await;
    assert_ne!(got.sid(), planted, "offered sid adopted (session fixation)");
    assert_eq!(env.access(&Cred::Cookie(planted), "alice").await, StatusCode::UNAUTHORIZED);
    assert_eq!(env.access(&got, "alice").await, StatusCode::OK);

    // Logging in while holding a live session ends the old one (privilege change => new id).
    let old = env.login("alice").await;
    assert_eq!(env.access(&old, "alice").await, StatusCode::OK);
    let new = env.login_offering("mallory", &old).await;
    assert_ne!(new.sid(), old.sid());
    assert_eq!(env.access(&old, "alice").await, StatusCode::UNAUTHORIZED, "old sid survived a new login");
    assert_eq!(env.access(&new, "mallory").await, StatusCode::OK);

    // Garbage offered at login is ignored, not an error.
    for junk in ["", "x", "../../etc/passwd", &"A".repeat(5000)] {
        let c = env.login_offering("alice", &Cred::Cookie(junk.to_owned())).await;
        assert_ne!(c.sid(), junk);
    }
}

async fn sid_shape_and_entropy(b: Backing) {
    let env = start(StrategyKind::SESSION, b, |_| {}).await;
    let mut seen = HashSet::new();
    for _ in 0..50 {
        let sid = env.login("alice").await.sid().to_owned();
        assert_eq!(sid.len(), 43, "256 bits in unpadded base64url is 43 chars: {sid}");
        assert!(sid.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'), "{sid}");
        assert_eq!(URL_SAFE_NO_PAD.decode(&sid).unwrap().len(), 32);
        assert!(seen.insert(sid), "duplicate sid");
    }
    // Crude sanity check on randomness: across 50 ids, every base64url symbol position varies.
    let all: Vec<Vec<u8>> = seen.iter().map(|s| URL_SAFE_NO_PAD.decode(s).unwrap()).collect();
    for i in 0..32 {
        let distinct: HashSet<u8> = all.iter().map(|v| v[i]).collect();
        assert!(distinct.len() > 10, "byte {i} barely varies: {distinct:?}");
    }
}

async fn unknown_and_garbage_sids(b: Backing) {
    let env = start(StrategyKind::SESSION, b, |_| {}).await;
    let real = env.login("alice").await.sid().to_owned();
    let mut flipped = URL_SAFE_NO_PAD.decode(&real).unwrap();
    flipped[0] ^= 1;
    let candidates = [
        forged_sid(),
        URL_SAFE_NO_PAD.encode(flipped),
        real[..42].to_owned(),
        format!("{real}A"),
        format!("{real}="),
        real.to_uppercase(),
        String::new(),
        "x".into(),
        "../../etc/passwd".into(),
        "s:anything".into(),
        "*".into(),
        "%00".into(),
        "A".repeat(8000),
    ];
    for sid in &candidates {
        assert_eq!(env.access(&Cred::Cookie(sid.clone()), "alice").await, StatusCode::UNAUTHORIZED, "sid {sid:.60}");
    }
    // The store key is sha256(sid): presenting the hash of a real sid (what a store dump shows) fails.
    let hash = {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, real.as_bytes());
        URL_SAFE_NO_PAD.encode(d.as_ref())
    };
    assert_eq!(env.access(&Cred::Cookie(hash), "alice").await, StatusCode::UNAUTHORIZED, "hash accepted as sid");
    // Cookie-jar tricks: only an exact `sid` cookie counts, and the real one still works among others.
    for header in [format!("xsid={real}"), format!("SID={real}"), format!("sid ={real}")] {
        let r = env.c.get(env.url("/api/resource")).header(COOKIE, header.clone()).send().await.unwrap();
        assert_eq!(body(r).await.0, StatusCode::UNAUTHORIZED, "cookie {header}");
    }
    let r = env.c.get(env.url("/api/resource")).header(COOKIE, format!("a=1; sid={real}; b=2")).send().await.unwrap();
    assert_eq!(body(r).await, (StatusCode::OK, json!({"sub": "alice", "roles": 2})));
    // A bearer header is not a session credential.
    let r = env.c.get(env.url("/api/resource")).bearer_auth(&real).send().await.unwrap();
    assert_eq!(body(r).await.0, StatusCode::UNAUTHORIZED);
}

async fn logout_kills_the_session(b: Backing) {
    let env = start(StrategyKind::SESSION, b, |_| {}).await;
    let a = env.login("alice").await;
    let other = env.login("alice").await;
    let (s, v) = env.logout(&a).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"revoked": true})));
    assert_eq!(env.access(&a, "alice").await, StatusCode::UNAUTHORIZED);
    assert_eq!(env.access(&other, "alice").await, StatusCode::OK, "logout ends only its own session");
    // Logging out again changes nothing and is not an error.
    let (s, v) = env.logout(&a).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"revoked": false})));
    // Logging out an unknown session revokes nothing.
    let (s, v) = env.logout(&Cred::Cookie(forged_sid())).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"revoked": false})));
}

async fn revoke_user_is_scoped(b: Backing) {
    let env = start(StrategyKind::SESSION, b, |_| {}).await;
    let alice: Vec<Cred> = sessions_of(&env, "alice", 5).await;
    let bob = env.login("bob").await;
    // A user whose name is a prefix of another's is a different user.
    let alice2 = env.login("alice2").await;
    let (s, v) = env.revoke_user("alice").await;
    assert_eq!((s, v), (StatusCode::OK, json!({"revoked": true})));
    for c in &alice {
        assert_eq!(env.access(c, "alice").await, StatusCode::UNAUTHORIZED, "alice session survived revoke-user");
    }
    assert_eq!(env.access(&bob, "bob").await, StatusCode::OK);
    assert_eq!(env.access(&alice2, "alice2").await, StatusCode::OK);
    // Revoking again: nothing left.
    assert_eq!(env.revoke_user("alice").await, (StatusCode::OK, json!({"revoked": false})));
    // A login after the revoke works.
    let fresh = env.login("alice").await;
    assert_eq!(env.access(&fresh, "alice").await, StatusCode::OK);
    // Without the admin key nothing happens.
    let r = env.c.post(env.url("/admin/revoke-user/bob")).send().await.unwrap();
    assert_eq!(body(r).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(env.access(&bob, "bob").await, StatusCode::OK);
}

/// `n` sessions of `user`, logged in one after another.
async fn sessions_of(env: &crate::contract::Env, user: &str, n: usize) -> Vec<Cred> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(env.login(user).await);
    }
    out
}

async fn session_ttl_expires(b: Backing) {
    let env = start(StrategyKind::SESSION, b, |a| a.session_ttl = std::time::Duration::from_secs(1)).await;
    let a = env.login("alice").await;
    assert_eq!(env.access(&a, "alice").await, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    assert_eq!(env.access(&a, "alice").await, StatusCode::UNAUTHORIZED, "session outlived its TTL");
}

both_stores!(fixation, sid_shape_and_entropy, unknown_and_garbage_sids, session_ttl_expires);
all_stores!(logout_kills_the_session, revoke_user_is_scoped);
