//! Attacks on `jwt-refresh`, on both stores: rotation, reuse detection (a replayed rotated token
//! kills the whole family, including the newer token), concurrent redemption of one token (at most
//! one wins), token-type confusion both ways, logout and revoke-user ending families, absolute family
//! lifetime, and refresh tokens kept hashed in the store.

use std::sync::Arc;
use std::time::Duration;

use authbench_targets::config::StrategyKind;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, COOKIE};
use serde_json::json;

use crate::contract::{Backing, Cred, Env, all_stores, body, both_stores, start};

async fn refresh_env(b: Backing) -> Env {
    start(StrategyKind::JWT_REFRESH, b, |_| {}).await
}

fn family(refresh_token: &str) -> &str {
    refresh_token.split_once('.').unwrap().0
}

async fn rotation(b: Backing) {
    let env = refresh_env(b).await;
    let r1 = env.login("alice").await;
    let rt = r1.refresh();
    let (fam, secret) = rt.split_once('.').unwrap();
    assert_eq!(URL_SAFE_NO_PAD.decode(fam).unwrap().len(), 16, "family id is 128 bits");
    assert_eq!(URL_SAFE_NO_PAD.decode(secret).unwrap().len(), 32, "secret is 256 bits");

    let r2 = env.refresh(rt).await.expect("first refresh");
    assert_ne!(r2.refresh(), rt, "refresh rotates the refresh token");
    assert_eq!(family(r2.refresh()), fam, "rotation stays in the family");
    assert_eq!(env.access(&r2, "alice").await, StatusCode::OK);
    let r3 = env.refresh(r2.refresh()).await.expect("second refresh");
    let r4 = env.refresh(r3.refresh()).await.expect("third refresh");
    assert_eq!(env.access(&r4, "alice").await, StatusCode::OK);
    // Two logins are two families.
    let other = env.login("alice").await;
    assert_ne!(family(other.refresh()), fam);
}

async fn reuse_revokes_family(b: Backing) {
    let env = refresh_env(b).await;
    let stolen = env.login("alice").await;
    // The victim rotates; the thief later replays the old token.
    let victim = env.refresh(stolen.refresh()).await.unwrap();
    assert_eq!(env.refresh(stolen.refresh()).await, Err(StatusCode::UNAUTHORIZED), "rotated token accepted twice");
    // The replay revoked the family: the newer, never-used token is dead too.
    assert_eq!(env.refresh(victim.refresh()).await, Err(StatusCode::UNAUTHORIZED), "family survived reuse");
    // Replaying again stays dead; other families of the same user are untouched.
    assert_eq!(env.refresh(stolen.refresh()).await, Err(StatusCode::UNAUTHORIZED));

    // Reuse the other way round: the thief rotates first, the victim's replay kills the thief's token.
    let s2 = env.login("alice").await;
    let thief = env.refresh(s2.refresh()).await.unwrap();
    assert_eq!(env.refresh(s2.refresh()).await, Err(StatusCode::UNAUTHORIZED));
    assert_eq!(env.refresh(thief.refresh()).await, Err(StatusCode::UNAUTHORIZED), "thief's token survived reuse");

    // An unrelated family of the same user lives on.
    let s3 = env.login("alice").await;
    assert!(env.refresh(s3.refresh()).await.is_ok());
}

async fn concurrent_redemption(b: Backing) {
    let env = refresh_env(b).await;
    let cred = env.login("alice").await;
    const N: usize = 20;
    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    let mut tasks = Vec::new();
    for _ in 0..N {
        let (c, url, rt, barrier) = (env.c.clone(), env.url("/refresh"), cred.refresh().to_owned(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let r = c.post(url).json(&json!({ "refresh_token": rt })).send().await.unwrap();
            let (s, v) = body(r).await;
            (s, v["refresh_token"].as_str().map(str::to_owned))
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (s, rt) = tokio::time::timeout(Duration::from_secs(20), t).await.expect("bounded").unwrap();
        match s {
            StatusCode::OK => winners.push(rt.unwrap()),
            StatusCode::UNAUTHORIZED => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "one refresh token redeemed {} times", winners.len());
    // The losers were replays of a used token: reuse detection ended the family, winner included.
    assert_eq!(env.refresh(&winners[0]).await, Err(StatusCode::UNAUTHORIZED));
}

async fn token_type_confusion(b: Backing) {
    let env = refresh_env(b).await;
    let cred = env.login("alice").await;
    // An access token at /refresh.
    let r = env.refresh_response(cred.access()).await;
    assert_eq!(body(r).await.0, StatusCode::UNAUTHORIZED, "access token accepted as refresh token");
    // A refresh token as bearer, as cookie.
    let as_bearer = Cred::Bearer { access: cred.refresh().to_owned(), refresh: None };
    assert_eq!(env.access(&as_bearer, "alice").await, StatusCode::UNAUTHORIZED, "refresh token accepted as bearer");
    let r = env.c.get(env.url("/api/resource")).header(COOKIE, format!("sid={}", cred.refresh())).send().await;
    assert_eq!(body(r.unwrap()).await.0, StatusCode::UNAUTHORIZED);
    // Malformed refresh tokens, and a real family with a forged secret.
    let rt = cred.refresh();
    let (fam, secret) = rt.split_once('.').unwrap();
    let mut forged = [0u8; 32];
    aws_lc_rs::rand::fill(&mut forged).unwrap();
    for bad in [
        String::new(),
        "x".into(),
        fam.to_owned(),
        secret.to_owned(),
        format!("{fam}."),
        format!(".{secret}"),
        format!("{fam}.{}", URL_SAFE_NO_PAD.encode(forged)),
        format!("{fam}.{}", &secret[..42]),
        format!("{fam}.{secret}A"),
        format!("{secret}.{fam}"),
        format!("{fam}.{secret}.{secret}"),
        format!("{fam}:{secret}"),
        format!(" {rt}"),
        rt.to_uppercase(),
        "A".repeat(10_000),
    ] {
        assert_eq!(env.refresh(&bad).await, Err(StatusCode::UNAUTHORIZED), "refresh token {bad:.80}");
    }
    // None of that spent or killed the real token.
    assert!(env.refresh(rt).await.is_ok(), "forged attempts must not affect the real family");
}

async fn logout_revokes_family(b: Backing) {
    let env = refresh_env(b).await;
    let cred = env.login("alice").await;
    let rotated = env.refresh(cred.refresh()).await.unwrap();
    let (s, v) = env.logout(&rotated).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"revoked": true})));
    assert_eq!(env.refresh(rotated.refresh()).await, Err(StatusCode::UNAUTHORIZED), "refresh after logout");
    // The honest property: the access token is not revocable and works until it expires.
    assert_eq!(env.access(&rotated, "alice").await, StatusCode::OK);
    // Logging out the dead family again revokes nothing.
    assert_eq!(env.logout(&rotated).await, (StatusCode::OK, json!({"revoked": false})));

    // Logout with only the refresh token (no bearer) works too; and with an old rotated token.
    let c2 = env.login("alice").await;
    let c2b = env.refresh(c2.refresh()).await.unwrap();
    let r = env.c.post(env.url("/logout")).json(&json!({"refresh_token": c2.refresh()})).send().await.unwrap();
    assert_eq!(body(r).await, (StatusCode::OK, json!({"revoked": true})));
    assert_eq!(env.refresh(c2b.refresh()).await, Err(StatusCode::UNAUTHORIZED));

    // Only the access token: nothing to revoke, but it is verified.
    let c3 = env.login("alice").await;
    let r = env.c.post(env.url("/logout")).bearer_auth(c3.access()).send().await.unwrap();
    assert_eq!(body(r).await, (StatusCode::OK, json!({"revoked": false})));
    assert!(env.refresh(c3.refresh()).await.is_ok(), "access-only logout must not touch the family");
}

async fn logout_cannot_kill_others_families(b: Backing) {
    let env = refresh_env(b).await;
    let alice = env.login("alice").await;
    let bob = env.login("bob").await;
    let fam = family(alice.refresh()).to_owned();
    let mut guess = [0u8; 32];
    aws_lc_rs::rand::fill(&mut guess).unwrap();
    // Knowing the family id is not enough.
    let r = env
        .c
        .post(env.url("/logout"))
        .json(&json!({"refresh_token": format!("{fam}.{}", URL_SAFE_NO_PAD.encode(guess))}))
        .send()
        .await
        .unwrap();
    assert_eq!(body(r).await.0, StatusCode::UNAUTHORIZED);
    // Bob's access token with Alice's refresh token: refused.
    let r = env
        .c
        .post(env.url("/logout"))
        .header(AUTHORIZATION, format!("Bearer {}", bob.access()))
        .json(&json!({"refresh_token": alice.refresh()}))
        .send()
        .await
        .unwrap();
    assert_eq!(body(r).await.0, StatusCode::UNAUTHORIZED, "logout across users");
    // A forged bearer next to a real refresh token: refused.
    let r = env
        .c
        .post(env.url("/logout"))
        .header(AUTHORIZATION, "Bearer e30.e30.")
        .json(&json!({"refresh_token": alice.refresh()}))
        .send()
        .await
        .unwrap();
    assert_eq!(body(r).await.0, StatusCode::UNAUTHORIZED);
    assert!(env.refresh(alice.refresh()).await.is_ok(), "alice's family must survive");
    assert!(env.refresh(bob.refresh()).await.is_ok());
}

async fn revoke_user_ends_families(b: Backing) {
    let env = refresh_env(b).await;
    let a1 = env.login("alice").await;
    let a2 = env.refresh(env.login("alice").await.refresh()).await.unwrap();
    let bob = env.login("bob").await;
    assert_eq!(env.revoke_user("alice").await, (StatusCode::OK, json!({"revoked": true})));
    assert_eq!(env.refresh(a1.refresh()).await, Err(StatusCode::UNAUTHORIZED));
    assert_eq!(env.refresh(a2.refresh()).await, Err(StatusCode::UNAUTHORIZED));
    assert!(env.refresh(bob.refresh()).await.is_ok(), "revoke-user must not touch other users");
    // Access tokens already out stay valid until exp (the documented window).
    assert_eq!(env.access(&a2, "alice").await, StatusCode::OK);
    assert_eq!(env.revoke_user("alice").await, (StatusCode::OK, json!({"revoked": false})));
    let fresh = env.login("alice").await;
    assert!(env.refresh(fresh.refresh()).await.is_ok(), "login after revoke-user works");
}

async fn family_lifetime_is_absolute(b: Backing) {
    let env = start(StrategyKind::JWT_REFRESH, b, |a| a.refresh_ttl = Duration::from_secs(3)).await;
    let c = env.login("alice").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let c2 = env.refresh(c.refresh()).await.expect("refresh inside the family lifetime");
    tokio::time::sleep(Duration::from_millis(2300)).await;
    // 3.3 s after login: rotation did not extend the family.
    assert_eq!(env.refresh(c2.refresh()).await, Err(StatusCode::UNAUTHORIZED), "family outlived refresh TTL");
}

async fn refresh_tokens_stored_hashed(b: Backing) {
    let env = refresh_env(b).await;
    let c = env.login("alice").await;
    let c2 = env.refresh(c.refresh()).await.unwrap();
    let Some(redis) = &env.redis else { return };
    let port = redis.port;
    let dump = tokio::task::spawn_blocking(move || redis_dump(port)).await.unwrap();
    assert!(dump.contains("rf:{"), "expected family records in {dump:.300}");
    for rt in [c.refresh(), c2.refresh()] {
        let secret = rt.split_once('.').unwrap().1;
        assert!(!dump.contains(secret), "refresh token secret stored in the clear");
    }
}

/// Every key and string value in a redis-server, as raw RESP text.
fn redis_dump(port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    // The reply is read until the server has been quiet for 300 ms.
    s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let script = "local out = {} for _, k in ipairs(redis.call('KEYS', '*')) do table.insert(out, k) \
                  if redis.call('TYPE', k).ok == 'string' then table.insert(out, redis.call('GET', k)) \
                  else for _, m in ipairs(redis.call('SMEMBERS', k)) do table.insert(out, m) end end end return out";
    let cmd = format!("*3\r\n$4\r\nEVAL\r\n${}\r\n{script}\r\n$1\r\n0\r\n", script.len());
    s.write_all(cmd.as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

both_stores!(
    token_type_confusion,
    logout_cannot_kill_others_families,
    family_lifetime_is_absolute,
    refresh_tokens_stored_hashed
);
all_stores!(rotation, reuse_revokes_family, concurrent_redemption, logout_revokes_family, revoke_user_ends_families);
