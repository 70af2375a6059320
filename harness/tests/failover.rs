//! Redis failover through Sentinel, against real processes: a primary, two replicas and three
//! Sentinels. A target connected through the Sentinels finds the promoted replica by itself; a
//! revocation acknowledged with `WAIT` survives the failover; without it, revocations made while
//! replication is cut are lost, and the probes see it (so the `WAIT` test can fail); and the
//! scenario keys are checked with errors that name what is wrong.

use std::path::Path;
use std::time::{Duration, Instant};

use authbench::collect::failover::{self, FailoverSettings};
use authbench::collect::http;
use authbench::environment::{SentinelGroup, SentinelOptions, TargetProcess};
use authbench::plan::{self, RunArgs};
use authbench::results::FailoverResult;
use authbench::scenario::{self, Dur, Failover, FailoverMode};
use authbench::targets::config::StrategyKind;
use serde_json::json;

const ADMIN_KEY: &str = "failover-test-admin-key-0123456789";

/// A `session` target on the group's Sentinels, with `--store-wait-replicas wait`.
async fn target(group: &SentinelGroup, wait: u32) -> TargetProcess {
    let args: Vec<String> = [
        "target",
        "--strategy",
        "session",
        "--listen",
        "127.0.0.1:0",
        "--store",
        &group.url(),
        "--admin-key",
        ADMIN_KEY,
        "--store-wait-replicas",
        &wait.to_string(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    TargetProcess::spawn(Path::new(env!("CARGO_BIN_EXE_authbench")), &args, None).await.unwrap()
}

/// A failover at 800 ms into the window: `mode`, `wait` replicas, `probes` each way in `lead`.
pub(crate) fn settings(mode: FailoverMode, wait: u32, lead: Duration, probes: u32) -> FailoverSettings {
    FailoverSettings {
        failover: Failover {
            at: Dur(Duration::from_millis(800)),
            mode,
            lead: Some(Dur(lead)),
            probes: Some(probes),
            min_replicas_to_write: None,
            min_replicas_max_lag: None,
        },
        wait_replicas: wait,
    }
}

/// Run one failover at 800 ms from now against `target`, with 20 probes each way.
async fn fail_over(group: &SentinelGroup, target: &TargetProcess, mode: FailoverMode, wait: u32) -> FailoverResult {
    let prepared = failover::prepare(&target.base_url, StrategyKind::SESSION, ADMIN_KEY, "", 20).await.unwrap();
    let settings = settings(mode, wait, Duration::from_millis(300), 20);
    let kill_at = Instant::now() + Duration::from_millis(800);
    failover::run(prepared, group.handles(), settings, kill_at).await.unwrap()
}

/// A fresh login through the target works, and its session is found again: the target talks to a
/// primary that takes writes.
async fn assert_serves_writes(target: &TargetProcess) {
    let (status, headers, body) =
        http::post_json(&target.base_url, "/login", &[], &json!({ "user": "after-failover" })).await.unwrap();
    assert_eq!(status, 200, "login after the failover: {}", String::from_utf8_lossy(&body));
    let cookie = headers.get(http::header::SET_COOKIE).unwrap().to_str().unwrap();
    let sid = cookie.split(';').next().unwrap().to_owned();
    let (status, _, _) = http::get(&target.base_url, "/api/resource", &[("cookie", &sid)]).await.unwrap();
    assert_eq!(status, 200, "the new session is read back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_acknowledged_with_wait_survive_the_failover() {
    let group = SentinelGroup::start(SentinelOptions::default()).await.unwrap();
    let old_primary = group.primary_port().await.unwrap();
    let target = target(&group, 1).await;
    let r = fail_over(&group, &target, FailoverMode::Kill, 1).await;

    let acked = r.revocations_acknowledged.unwrap();
    assert!(acked > 0, "some revocations were made with WAIT in the lead: {r:?}");
    assert_eq!(
        r.revocations_lost,
        Some(0),
        "a revocation acknowledged with WAIT 1 came back after the failover: {r:?}"
    );
    assert_eq!(r.sessions_lost, Some(0), "a login acknowledged with WAIT 1 was lost: {r:?}");
    assert_eq!(r.replays_unanswered, 0, "{r:?}");
    assert!(r.promoted_after_ms.is_some(), "the Sentinels promoted a replica: {r:?}");
    assert!(r.failover_ms.is_some(), "the poller saw the failover start and end: {r:?}");
    assert_ne!(group.primary_port().await.unwrap(), old_primary);
    // The target reconnected to the new primary by itself (nothing restarted it or told it).
    assert_serves_writes(&target).await;
    target.stop().await.unwrap();
    group.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_wait_a_cut_replication_loses_revocations_and_the_probes_see_it() {
    let group = SentinelGroup::start(SentinelOptions::default()).await.unwrap();
    let target = target(&group, 0).await;
    let r = fail_over(&group, &target, FailoverMode::CutReplication, 0).await;

    let acked = r.revocations_acknowledged.unwrap();
    assert!(acked > 0, "the primary acknowledged revocations after the cut: {r:?}");
    assert_eq!(r.revocations_lost, Some(acked), "every revocation made after the cut is lost: {r:?}");
    assert_eq!(r.sessions_lost, r.sessions_acknowledged, "every login made after the cut is lost: {r:?}");
    assert_serves_writes(&target).await;
    target.stop().await.unwrap();
    group.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_a_cut_replication_refuses_revocations_instead_of_losing_them() {
    let group = SentinelGroup::start(SentinelOptions::default()).await.unwrap();
    let target = target(&group, 1).await;
    let r = fail_over(&group, &target, FailoverMode::CutReplication, 1).await;

    assert_eq!(r.revocations_lost, Some(0), "{r:?}");
    assert!(r.revocations_refused.unwrap() > 0, "WAIT answered 503 while no replica could acknowledge: {r:?}");
    assert_serves_writes(&target).await;
    target.stop().await.unwrap();
    group.stop().await;
}

/// The plan error `text` gets (parse or plan); panics when it is accepted.
pub(crate) fn plan_err(text: &str) -> String {
    match scenario::parse(text, "f.toml", "f") {
        Err(e) => e.to_string(),
        Ok(l) => plan::build_from(l, &RunArgs::default()).expect_err("must be refused").to_string(),
    }
}

#[test]
fn failover_scenario_keys_are_checked() {
    let e = plan_err("[store]\nkind = \"redis\"\n[store.failover]\nat = \"2s\"\n");
    assert!(e.contains("kind = \"sentinel\""), "{e}");
    let e = plan_err("[store]\nkind = \"sentinel\"\n[store.failover]\nat = \"2s\"\nlead = \"900ms\"\n");
    assert!(e.contains("store.failover.lead") && e.contains("down-after"), "{e}");
    let e = plan_err("[store]\nkind = \"sentinel\"\n[store.failover]\nat = \"2s\"\nmode = \"explode\"\n");
    assert!(e.starts_with("f.toml:5:") && e.contains("cut-replication"), "{e}");
    let e = plan_err("[store]\nkind = \"sentinel\"\n[store.failover]\nat = \"2s\"\nprobez = 3\n");
    assert!(e.starts_with("f.toml:5:") && e.contains("probez"), "{e}");
    let e = plan_err("[traffic]\nduration = \"3s\"\n[store]\nkind = \"sentinel\"\n[store.failover]\nat = \"4s\"\n");
    assert!(e.contains("measured window"), "{e}");
    let e = plan_err("store = \"memory\"\n[target]\nstore_wait_replicas = 1\n");
    assert!(e.contains("store_wait_replicas"), "{e}");
    let e = plan_err("[store]\nkind = \"sentinel\"\ndelay = \"1ms\"\n");
    assert!(e.contains("[store.failover]"), "{e}");

    let l = scenario::parse(
        "strategies = [\"jwt\", \"session\"]\n[store]\nkind = \"sentinel\"\n[store.failover]\nat = \"2s\"\n\
         mode = \"cut-replication\"\n[matrix]\nstore_wait_replicas = [0, 1]\n",
        "f.toml",
        "f",
    )
    .unwrap();
    let p = plan::build_from(l, &RunArgs::default()).unwrap();
    let labels: Vec<&str> = p.variants.iter().map(|v| v.label.as_str()).collect();
    assert_eq!(
        labels,
        ["jwt", "session store_wait_replicas=0", "session store_wait_replicas=1"],
        "WAIT sweeps only writers"
    );
    assert_eq!(p.failover.unwrap().mode, FailoverMode::CutReplication);
}
