//! The traffic engine against tiny servers written for each test: a deliberately stalled server
//! (open loop must count from the intended send time) and a deliberately broken target that accepts
//! revoked and forged credentials (must surface as unexpected_allow).

use std::time::{Duration, Instant};

use authbench::engine::record::Op;
use authbench::engine::{Engine, EngineConfig};
use authbench::plan::{MixWeights, RateStage, Schedule, Stop};
use authbench::targets::config::StrategyKind;
use tokio::sync::watch;

use crate::util::{Reply, spawn_server};

fn config(base_url: String, strategy: StrategyKind, schedule: Schedule, mix: MixWeights) -> EngineConfig {
    EngineConfig {
        base_url,
        strategy,
        schedule,
        stop: Stop::Duration(Duration::from_secs(2)),
        warmup: Duration::ZERO,
        users: 50,
        mix,
        timeout: Duration::from_secs(2),
        admin_key: Some("k".into()),
        revoked_fraction: 0.2,
        tampered_fraction: 0.1,
        legacy_users: 0,
        api_client_users: 0,
        workers: 1,
        user_prefix: String::new(),
        wire: Default::default(),
    }
}

const API_ONLY: MixWeights = MixWeights { login: 0.0, api: 1.0, logout: 0.0, refresh: 0.0, revoke: 0.0 };

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_counts_stalls_from_the_intended_start() {
    // Every 25th request stalls 200 ms.
    let url = spawn_server(|_, _, n| {
        let mut r = Reply::ok(r#"{"sub":"anonymous"}"#);
        if n % 25 == 24 {
            r.delay = Duration::from_millis(200);
        }
        r
    })
    .await;
    let rate = RateStage { from_rate_per_sec: 200.0, rate_per_sec: 200.0, duration: Duration::from_secs(2) };
    let cfg = config(url, StrategyKind::NONE, Schedule::Open { stages: vec![rate], connections: 2 }, API_ONLY);
    let (_tx, rx) = watch::channel(false);
    let engine = Engine::new(cfg).await.expect("engine");
    let out = engine.run(Instant::now(), rx).await.expect("run");
    let api = &out.recorder.ops[Op::Api as usize];
    assert!(api.latency.len() > 200, "requests: {}", api.latency.len());
    let corrected_p99 = api.latency.value_at_quantile(0.99);
    let service_p99 = api.service.value_at_quantile(0.99);
    let corrected_mean = api.latency.mean();
    let service_mean = api.service.mean();
    assert!(corrected_mean > service_mean * 1.5, "corrected mean {corrected_mean} vs service {service_mean}");
    assert!(corrected_p99 >= service_p99, "corrected p99 {corrected_p99} < service p99 {service_p99}");
    assert!(out.recorder.late_starts > 0, "late starts must be counted");
    assert!(out.recorder.max_lag_us > 50_000, "max lag {} us", out.recorder.max_lag_us);
    assert_eq!(out.target_rate_per_sec, Some(200.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_runs_back_to_back_and_timeline_covers_the_window() {
    let url = spawn_server(|_, _, _| Reply::ok("{}")).await;
    let cfg = config(url, StrategyKind::NONE, Schedule::Closed { connections: 4 }, API_ONLY);
    let (_tx, rx) = watch::channel(false);
    let out = Engine::new(cfg).await.expect("engine").run(Instant::now(), rx).await.expect("run");
    let n = out.recorder.requests();
    assert!(n > 100, "{n} requests in 2 s closed loop");
    assert_eq!(out.recorder.late_starts, 0);
    assert_eq!(out.intervals.len(), 2, "one timeline point per second");
    let sum: f64 = out.intervals.iter().map(|i| i.point.rps).sum();
    assert_eq!(sum as u64, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_target_accepting_revoked_credentials_is_unexpected_allow() {
    // Claims to revoke on logout, then accepts anything.
    let url = spawn_server(|method, path, n| match (method, path) {
        ("POST", "/login") => Reply::ok(&format!(
            r#"{{"access_token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.sig{n:040}","token_type":"Bearer","expires_in":900}}"#
        )),
        ("POST", "/logout") => Reply::ok(r#"{"revoked":true}"#),
        _ => Reply::ok(r#"{"sub":"u"}"#),
    })
    .await;
    let mix = MixWeights { login: 1.0, api: 6.0, logout: 2.0, refresh: 0.0, revoke: 0.0 };
    let cfg = config(url, StrategyKind::JWT_DENYLIST, Schedule::Closed { connections: 2 }, mix);
    let (_tx, rx) = watch::channel(false);
    let out = Engine::new(cfg).await.expect("engine").run(Instant::now(), rx).await.expect("run");
    let o = out.recorder.outcomes();
    let unexpected_allow = o[2];
    assert!(unexpected_allow > 10, "outcomes {o:?}");
    assert_eq!(out.recorder.errors.get("unexpected_allow").copied(), Some(unexpected_allow));
    assert!(out.recorder.api_by_outcome[2].is_some(), "api latency recorded for the unexpected_allow class");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_stops_at_once() {
    let url = spawn_server(|_, _, _| Reply::ok("{}")).await;
    let mut cfg = config(url, StrategyKind::NONE, Schedule::Closed { connections: 2 }, API_ONLY);
    cfg.stop = Stop::Duration(Duration::from_secs(60));
    let (tx, rx) = watch::channel(false);
    let engine = Engine::new(cfg).await.expect("engine");
    let t0 = Instant::now();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let _ = tx.send(true);
    });
    let out = engine.run(t0, rx).await.expect("run");
    assert!(out.interrupted);
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(out.recorder.requests() > 0);
}

#[tokio::test]
async fn refused_port_is_connect_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut cfg =
        config(format!("http://127.0.0.1:{port}"), StrategyKind::NONE, Schedule::Closed { connections: 1 }, API_ONLY);
    cfg.stop = Stop::Duration(Duration::from_millis(500));
    let (_tx, rx) = watch::channel(false);
    let out = Engine::new(cfg).await.expect("engine").run(Instant::now(), rx).await.expect("run");
    let o = out.recorder.outcomes();
    assert!(o[5] > 0 && o[0] == 0, "{o:?}");
}
