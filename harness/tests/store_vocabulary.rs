//! One vocabulary of store commands: the same workload against a target on the in-process store and
//! one on a private redis-server must give the same per-command figures, read the way a run reads
//! them (the memory store from the target's `/metrics`, Redis from its own `INFO commandstats`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use authbench::collect::{self, http};
use authbench::environment::{RedisProcess, TargetProcess};

const ADMIN_KEY: &str = "vocabulary-test-admin-key-01";

async fn start_target(strategy: &str, store: &str) -> TargetProcess {
    let exe = Path::new(env!("CARGO_BIN_EXE_authbench"));
    let args: Vec<String> =
        ["target", "--strategy", strategy, "--listen", "127.0.0.1:0", "--admin-key", ADMIN_KEY, "--store", store]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
    TargetProcess::spawn(exe, &args, None).await.unwrap()
}

/// What a login handed out: the header that carries it, and a refresh token when there is one.
struct Credential {
    header: (&'static str, String),
    refresh_token: Option<String>,
}

async fn login(base: &str, user: &str) -> Credential {
    let (status, headers, body) =
        http::post_json(base, "/login", &[], &serde_json::json!({ "user": user })).await.unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    if let Some(cookie) = headers.get(http::header::SET_COOKIE) {
        let sid = cookie.to_str().unwrap().split(';').next().unwrap().to_owned();
        return Credential { header: ("cookie", sid), refresh_token: None };
    }
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    Credential {
        header: ("authorization", format!("Bearer {}", json["access_token"].as_str().unwrap())),
        refresh_token: json["refresh_token"].as_str().map(str::to_owned),
    }
}

async fn api(base: &str, cred: &Credential) -> u16 {
    http::get(base, "/api/resource", &[(cred.header.0, cred.header.1.as_str())]).await.unwrap().0
}

async fn refresh(base: &str, token: &str) -> (u16, Option<String>) {
    let (status, _, body) =
        http::post_json(base, "/refresh", &[], &serde_json::json!({ "refresh_token": token })).await.unwrap();
    let next = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|j| j["refresh_token"].as_str().map(str::to_owned));
    (status, next)
}

/// Every route that touches the store: login, api, refresh (and a reused refresh token), logout,
/// revoke-user, and a revoked credential presented again. Deterministic: no timing in it.
async fn workload(base: &str) {
    let a = login(base, "vocab-a").await;
    for _ in 0..3 {
        assert_eq!(api(base, &a).await, 200);
    }
    if let Some(rt) = &a.refresh_token {
        let (status, next) = refresh(base, rt).await;
        assert_eq!(status, 200);
        assert!(next.is_some());
        // Reuse of the rotated token: the family is revoked.
        assert_eq!(refresh(base, rt).await.0, 401);
    }
    let auth = [(a.header.0, a.header.1.as_str())];
    let (status, _, _) = match &a.refresh_token {
        Some(rt) => http::post_json(base, "/logout", &auth, &serde_json::json!({ "refresh_token": rt })).await.unwrap(),
        None => http::request(base, http::Method::POST, "/logout", &auth, None).await.unwrap(),
    };
    assert_eq!(status, 200);

    let b = login(base, "vocab-b").await;
    assert_eq!(api(base, &b).await, 200);
    let (status, _, _) =
        http::request(base, http::Method::POST, "/admin/revoke-user/vocab-b", &[("x-admin-key", ADMIN_KEY)], None)
            .await
            .unwrap();
    assert_eq!(status, 200);
    api(base, &b).await;
}

/// Store commands by name for `workload` on the memory store, read from the target's `/metrics`.
async fn memory_commands(strategy: &str) -> BTreeMap<String, f64> {
    let target = start_target(strategy, "memory").await;
    let before = collect::metrics_store_ops(&target.base_url).await.unwrap();
    workload(&target.base_url).await;
    let after = collect::metrics_store_ops(&target.base_url).await.unwrap();
    target.stop().await.unwrap();
    collect::store_load_from_metrics(&before, &after, 1).ops_by_command
}

/// The same from Redis's own `INFO commandstats`, the way a run reads it.
async fn redis_commands(strategy: &str, redis: &RedisProcess) -> BTreeMap<String, f64> {
    redis.flush().await.unwrap();
    let target = start_target(strategy, &redis.url).await;
    let before = settled_snapshot(&redis.url).await;
    workload(&target.base_url).await;
    let after = collect::snapshot(&redis.url).await.unwrap();
    target.stop().await.unwrap();
    collect::store_load(&before, &after, 1, 0).ops_by_command
}

/// A snapshot taken once the target's connections finished their setup (fred sends a `PING` on
/// each new connection, which may land just after the target starts listening): two readings
/// 100 ms apart with the same command counts.
async fn settled_snapshot(url: &str) -> collect::InfoSnapshot {
    let mut last = collect::snapshot(url).await.unwrap();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let next = collect::snapshot(url).await.unwrap();
        if next.calls_by_command == last.calls_by_command {
            return next;
        }
        last = next;
    }
    panic!("{url}: the store kept receiving commands with no workload running: {:?}", last.calls_by_command);
}

#[tokio::test]
async fn memory_and_redis_name_the_same_commands() {
    let redis = RedisProcess::start().await.unwrap();
    for strategy in ["session", "jwt-denylist", "jwt-refresh"] {
        let memory = memory_commands(strategy).await;
        let on_redis = redis_commands(strategy, &redis).await;
        assert!(!memory.is_empty(), "{strategy}: the workload touched no store");
        assert_eq!(
            memory.keys().collect::<Vec<_>>(),
            on_redis.keys().collect::<Vec<_>>(),
            "{strategy}: command names differ between stores"
        );
        // The workload is deterministic, so the counts must agree too.
        assert_eq!(memory, on_redis, "{strategy}: command counts differ between stores");
    }
    redis.stop().await;
}
