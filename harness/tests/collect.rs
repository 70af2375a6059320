//! The measurement collectors against real processes: a target child built from this crate's
//! binary, a private redis-server, and the revocation probe over HTTP.

use std::path::Path;
use std::time::{Duration, Instant};

use authbench::collect::{self, http};
use authbench::environment::{self, RedisProcess, TargetProcess};
use authbench::targets::StrategyKind;

const ADMIN_KEY: &str = "collect-test-admin-key-0123";

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_authbench"))
}

/// `authbench target` args for `strategy` on a free port, with an admin key and `extra` flags.
fn target_args(strategy: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["target", "--strategy", strategy, "--listen", "127.0.0.1:0", "--admin-key", ADMIN_KEY]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

async fn start_target(strategy: &str, extra: &[&str]) -> TargetProcess {
    TargetProcess::spawn(exe(), &target_args(strategy, extra), environment::cpu_plan().target_cpu).await.unwrap()
}

#[tokio::test]
async fn target_child_cpu_time_grows_under_load() {
    let target = start_target("session", &[]).await;
    assert!(target.base_url.starts_with("http://127.0.0.1:"), "{}", target.base_url);
    assert!(target.pid > 0);
    let (status, _, _) = http::get(&target.base_url, "/health", &[]).await.unwrap();
    assert_eq!(status, 200);

    let before = target.cpu_time().unwrap();
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut grew = false;
    while Instant::now() < deadline {
        for _ in 0..50 {
            let body = serde_json::json!({ "user": "cpu-user" });
            let (status, _, _) = http::post_json(&target.base_url, "/login", &[], &body).await.unwrap();
            assert_eq!(status, 200);
        }
        if target.cpu_time().unwrap() > before {
            grew = true;
            break;
        }
    }
    assert!(grew, "target CPU time did not grow under load");
    target.stop().await.unwrap();
}

#[tokio::test]
async fn target_that_fails_to_start_reports_its_stderr() {
    let args = target_args("session", &["--store", "mysql://nowhere"]);
    let err = TargetProcess::spawn(exe(), &args, None).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("exited before listening"), "{text}");
    assert!(text.contains("--store"), "stderr missing from: {text}");
}

#[test]
fn cpu_plan_and_pinning() {
    let plan = environment::cpu_plan();
    let allowed = environment::cpu::allowed_cpus();
    assert!(!plan.description.is_empty());
    if allowed.len() >= 2 {
        assert_eq!(plan.target_cpu, allowed.last().copied());
        assert!(!plan.driver_cpus.contains(&plan.target_cpu.unwrap()));
    } else {
        assert_eq!(plan.target_cpu, None);
    }
    // Pinning to every allowed CPU changes nothing for the other tests in this process.
    environment::pin_current_process(&allowed).unwrap();
    assert_eq!(environment::cpu::allowed_cpus(), allowed);
    assert!(collect::self_cpu_time() > Duration::ZERO);
    assert!(collect::peak_rss_bytes().unwrap() > 0);
    let m = collect::machine(&plan.description);
    assert_eq!(m.pinning, plan.description);
    assert!(m.cpus >= 1);
}

#[test]
fn tool_info_names_redis() {
    let t = collect::tool_info();
    assert_eq!(t.name, "authbench");
    assert!(authbench::environment::redis_server_available());
    assert_eq!(t.redis_server, collect::redis_server_version());
    assert!(t.redis_server.is_some());
}

#[tokio::test]
async fn redis_process_starts_flushes_and_stops() {
    let redis = RedisProcess::start().await.unwrap();
    assert!(redis.pid() > 0);
    assert_eq!(redis.url, format!("redis://127.0.0.1:{}", redis.port));
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("SET").arg("k").arg("v").query_async::<()>(&mut conn).await.unwrap();
    assert_eq!(collect::snapshot(&redis.url).await.unwrap().keys, 1);
    redis.flush().await.unwrap();
    let after = collect::snapshot(&redis.url).await.unwrap();
    assert_eq!(after.keys, 0);
    assert!(after.calls_by_command.is_empty(), "{:?}", after.calls_by_command);
    drop(conn);
    let port = redis.port;
    redis.stop().await;
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err());
}

#[tokio::test]
async fn store_load_counts_the_stores_commands_and_not_its_own() {
    let redis = RedisProcess::start().await.unwrap();
    redis.flush().await.unwrap();
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();

    // Nothing but snapshots in the window: nothing measured.
    let a = collect::snapshot(&redis.url).await.unwrap();
    let b = collect::snapshot(&redis.url).await.unwrap();
    let idle = collect::store_load(&a, &b, 1, 0);
    assert!(idle.ops_by_command.is_empty(), "{:?}", idle.ops_by_command);
    assert_eq!(idle.ops_per_request, Some(0.0));
    assert_eq!(idle.net_bytes_per_request, Some(0.0), "snapshots' own bytes leaked into the figure");

    let before = collect::snapshot(&redis.url).await.unwrap();
    for i in 0..50 {
        redis::cmd("SET").arg(format!("session:{i}")).arg("x".repeat(100)).query_async::<()>(&mut conn).await.unwrap();
    }
    for i in 0..100 {
        redis::cmd("GET").arg(format!("session:{}", i % 50)).query_async::<Option<String>>(&mut conn).await.unwrap();
    }
    let after = collect::snapshot(&redis.url).await.unwrap();
    assert_eq!(after.keys, 50);

    let load = collect::store_load(&before, &after, 100, 50);
    assert!(load.measured);
    assert_eq!(load.ops_by_command.get("get"), Some(&1.0), "{:?}", load.ops_by_command);
    assert_eq!(load.ops_by_command.get("set"), Some(&0.5));
    assert_eq!(load.ops_by_command.len(), 2, "{:?}", load.ops_by_command);
    assert_eq!(load.ops_per_request, Some(1.5));
    // Each GET is at least its request (~30 bytes) and its 100-byte answer.
    let net = load.net_bytes_per_request.unwrap();
    assert!(net > 100.0 && net < 1000.0, "{net}");
    assert!(load.cpu_us_per_request.is_some());
    assert!(load.memory_bytes_per_session.unwrap() > 0.0);
    redis.stop().await;
}

#[tokio::test]
async fn memory_store_ops_come_from_metrics() {
    let target = start_target("session", &[]).await;
    let before = collect::metrics_store_ops(&target.base_url).await.unwrap();
    let body = serde_json::json!({ "user": "metrics-user" });
    let (status, headers, _) = http::post_json(&target.base_url, "/login", &[], &body).await.unwrap();
    assert_eq!(status, 200);
    let cookie = headers[http::header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_owned();
    for _ in 0..10 {
        let (status, _, _) = http::get(&target.base_url, "/api/resource", &[("cookie", &cookie)]).await.unwrap();
        assert_eq!(status, 200);
    }
    let after = collect::metrics_store_ops(&target.base_url).await.unwrap();
    let load = collect::store_load_from_metrics(&before, &after, 11);
    assert!(load.measured);
    assert!(load.ops_by_command.get("get").copied().unwrap_or(0.0) >= 10.0 / 11.0, "{:?}", load.ops_by_command);
    assert!(load.ops_per_request.unwrap() >= 1.0);
    assert_eq!(load.cpu_us_per_request, None);
    assert_eq!(load.net_bytes_per_request, None);
    target.stop().await.unwrap();
}

#[tokio::test]
async fn session_revocation_is_immediate() {
    let target = start_target("session", &[]).await;
    let w =
        collect::probe(&target.base_url, StrategyKind::SESSION, ADMIN_KEY, 4, Duration::from_secs(2), Duration::ZERO)
            .await;
    assert_eq!(w.probes, 4);
    assert!(!w.bounded);
    assert!(w.max.unwrap() < 100.0, "{w:?}");
    assert!(w.p50.unwrap() <= w.max.unwrap());
    target.stop().await.unwrap();
}

#[tokio::test]
async fn denylist_revocation_is_immediate() {
    let target = start_target("jwt-denylist", &[]).await;
    let w = collect::probe(
        &target.base_url,
        StrategyKind::JWT_DENYLIST,
        ADMIN_KEY,
        2,
        Duration::from_secs(2),
        Duration::ZERO,
    )
    .await;
    assert_eq!(w.probes, 2);
    assert!(!w.bounded);
    assert!(w.max.unwrap() < 100.0, "{w:?}");
    target.stop().await.unwrap();
}

#[tokio::test]
async fn jwt_revocation_is_bounded_by_exp() {
    let target = start_target("jwt", &["--access-ttl", "3s", "--leeway", "0s"]).await;
    let w =
        collect::probe(&target.base_url, StrategyKind::JWT, ADMIN_KEY, 2, Duration::from_secs(1), Duration::ZERO).await;
    assert_eq!(w.probes, 2);
    assert!(w.bounded || w.p50.unwrap() > 0.0, "{w:?}");
    if w.bounded {
        // Still accepted after ~1 s; the bound from exp is at most the 3 s TTL (+1 s rounding).
        assert!(w.observed_max.unwrap() > 0.0, "{w:?}");
        assert!(w.max.unwrap() >= w.observed_max.unwrap(), "{w:?}");
        assert!(w.max.unwrap() <= 4500.0, "{w:?}");
    }
    target.stop().await.unwrap();
}

#[tokio::test]
async fn refresh_revocation_is_bounded_by_the_access_token() {
    let target = start_target("jwt-refresh", &["--access-ttl", "5s", "--leeway", "0s"]).await;
    let w = collect::probe(
        &target.base_url,
        StrategyKind::JWT_REFRESH,
        ADMIN_KEY,
        2,
        Duration::from_millis(500),
        Duration::ZERO,
    )
    .await;
    assert_eq!(w.probes, 2);
    assert!(w.bounded, "{w:?}");
    assert!(w.max.unwrap() > 500.0, "{w:?}");
    target.stop().await.unwrap();
}

#[tokio::test]
async fn none_has_no_revocation_window() {
    let target = start_target("none", &[]).await;
    let w = collect::probe(&target.base_url, StrategyKind::NONE, ADMIN_KEY, 4, Duration::from_secs(1), Duration::ZERO)
        .await;
    assert_eq!(w.probes, 0);
    assert_eq!((w.p50, w.max, w.observed_max, w.bounded), (None, None, None, false));
    target.stop().await.unwrap();
}
