//! Redis Cluster failover against real processes: 3 masters, with one replica each or none. A target
//! seeded with the masters follows the cluster's slot map by itself; `WAIT` asks the replicas of
//! the master that took the write; a revocation acknowledged with `WAIT` survives the failover of
//! that master; without
//! it, revocations made while replication is cut are lost and the probes see it (so the `WAIT` test
//! can fail); a master with no replica is a partial outage: requests whose keys hash to it fail
//! closed (503) while the others are served; and the scenario keys are checked.

use std::path::Path;
use std::time::{Duration, Instant};

use authbench::collect::failover;
use authbench::collect::http;
use authbench::environment::{ClusterOptions, FailoverHandles, RedisCluster, TargetProcess};
use authbench::plan::{self, RunArgs};
use authbench::results::FailoverResult;
use authbench::scenario::{self, FailoverMode};
use authbench::targets::config::StrategyKind;
use serde_json::json;

use crate::failover::{plan_err, settings};

const ADMIN_KEY: &str = "cluster-failover-test-admin-key-0123";

/// A target of `strategy` seeded with the cluster's masters, with `--store-wait-replicas wait`.
async fn target(cluster: &RedisCluster, strategy: &str, wait: u32) -> TargetProcess {
    let args: Vec<String> = [
        "target",
        "--strategy",
        strategy,
        "--listen",
        "127.0.0.1:0",
        "--store",
        &cluster.urls(),
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

async fn with_replicas() -> RedisCluster {
    RedisCluster::start_with(ClusterOptions { masters: 3, replicas: 1 }).await.unwrap()
}

/// Fail the master serving slot 0 at 800 ms from now, 40 probes each way (about a third of their
/// keys hash to it) in a 700 ms lead.
async fn fail_over(cluster: &RedisCluster, target: &TargetProcess, mode: FailoverMode, wait: u32) -> FailoverResult {
    let prepared = failover::prepare(&target.base_url, StrategyKind::SESSION, ADMIN_KEY, "", 40).await.unwrap();
    let settings = settings(mode, wait, Duration::from_millis(700), 40);
    let handles = FailoverHandles::Cluster(cluster.handles().unwrap());
    let prepared = prepared.watch_more(handles.watches() - 1).await.unwrap();
    let kill_at = Instant::now() + Duration::from_millis(800);
    failover::run(prepared, handles, settings, kill_at).await.unwrap()
}

/// Fresh logins through the target work and are read back: every slot has a master taking writes.
async fn assert_serves_writes(target: &TargetProcess) {
    for i in 0..12 {
        let user = format!("after-failover-{i}");
        let (status, headers, body) =
            http::post_json(&target.base_url, "/login", &[], &json!({ "user": user })).await.unwrap();
        assert_eq!(status, 200, "login of {user} after the failover: {}", String::from_utf8_lossy(&body));
        let cookie = headers.get(http::header::SET_COOKIE).unwrap().to_str().unwrap();
        let sid = cookie.split(';').next().unwrap().to_owned();
        let (status, _, _) = http::get(&target.base_url, "/api/resource", &[("cookie", &sid)]).await.unwrap();
        assert_eq!(status, 200, "the new session of {user} is read back");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_revocations_acknowledged_with_wait_survive_the_failover() {
    let cluster = with_replicas().await;
    let target = target(&cluster, "session", 1).await;
    let r = fail_over(&cluster, &target, FailoverMode::Kill, 1).await;

    assert!(r.revocations_acknowledged.unwrap() > 0, "revocations were made with WAIT in the lead: {r:?}");
    assert_eq!(r.revocations_lost, Some(0), "a revocation acknowledged with WAIT 1 came back: {r:?}");
    assert_eq!(r.sessions_lost, Some(0), "a login acknowledged with WAIT 1 was lost: {r:?}");
    assert_eq!(r.replays_unanswered, 0, "{r:?}");
    assert!(r.promoted_after_ms.is_some(), "the cluster promoted the replica: {r:?}");
    assert_eq!((r.store.as_str(), r.replicas), ("cluster", 1), "{r:?}");
    assert_eq!(r.failed_slots.as_deref(), Some("0-5460"), "{r:?}");
    // The replays reached the promoted replica: the target followed it by itself. (No fresh writes
    // here: the promoted master has no replica left, so WAIT 1 rightly refuses its writes.)
    target.stop().await.unwrap();
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_without_wait_a_cut_replication_loses_revocations_and_the_probes_see_it() {
    let cluster = with_replicas().await;
    let target = target(&cluster, "session", 0).await;
    let r = fail_over(&cluster, &target, FailoverMode::CutReplication, 0).await;

    let acked = r.revocations_acknowledged.unwrap();
    let lost = r.revocations_lost.unwrap();
    // About a third of the probes' sessions live on the killed master: those revocations are lost,
    // the others (on masters that did not fail) are not.
    assert!(lost > 0, "revocations acknowledged by the cut-off master are lost: {r:?}");
    assert!(lost < acked, "revocations on the other masters survive: {r:?}");
    assert!(r.sessions_lost.unwrap() > 0, "logins acknowledged by the cut-off master are lost: {r:?}");
    assert_serves_writes(&target).await;
    target.stop().await.unwrap();
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_with_wait_a_cut_replication_refuses_revocations_instead_of_losing_them() {
    let cluster = with_replicas().await;
    let target = target(&cluster, "session", 1).await;
    let r = fail_over(&cluster, &target, FailoverMode::CutReplication, 1).await;

    assert_eq!(r.revocations_lost, Some(0), "{r:?}");
    assert_eq!(r.sessions_lost, Some(0), "{r:?}");
    // The cut-off master answered WAIT with 0 acknowledgements: 503, so the client knew.
    assert!(r.revocations_refused.unwrap() > 0, "the cut-off master's revocations were refused: {r:?}");
    assert_eq!(r.replays_unanswered, 0, "the target reached the promoted replica: {r:?}");
    target.stop().await.unwrap();
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_asks_the_replicas_of_the_master_that_took_the_write() {
    let cluster = with_replicas().await;
    let target = target(&cluster, "jwt-denylist", 1).await;
    let handles = cluster.handles().unwrap();
    let (first, last) = handles.slots[0];
    // revoke-user writes `nbf:{user}`: the user's slot names the master that takes the write.
    let (mut on_cut, mut on_live) = (None, None);
    for i in 0..200 {
        let user = format!("wait-{i}");
        let cut = (first..=last).contains(&keyslot(handles.survivors[0], &user).await);
        let slot = if cut { &mut on_cut } else { &mut on_live };
        slot.get_or_insert(user);
        if on_cut.is_some() && on_live.is_some() {
            break;
        }
    }
    let (on_cut, on_live) = (on_cut.unwrap(), on_live.unwrap());
    let resume = handles.cut_replication().await.unwrap();
    let revoke = |user: String| {
        let base = target.base_url.clone();
        async move {
            let path = format!("/admin/revoke-user/{user}");
            let headers = [("x-admin-key", ADMIN_KEY)];
            http::request(&base, http::Method::POST, &path, &headers, None).await.unwrap().0
        }
    };
    let (cut_status, live_status) = (revoke(on_cut.clone()).await, revoke(on_live.clone()).await);
    drop(resume);
    assert_eq!(cut_status, 503, "{on_cut}: its master's replica is cut off, so WAIT 1 got no acknowledgement");
    assert_eq!(live_status, 200, "{on_live}: its master's replica acknowledged (WAIT asked that master)");
    target.stop().await.unwrap();
    cluster.stop().await;
}

/// `CLUSTER KEYSLOT key` on a node: the hash slot of `key`.
async fn keyslot(port: u16, key: &str) -> u16 {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query_async::<u16>(&mut conn).await.unwrap()
}

/// `GET /api/resource` with a bearer token; its status.
async fn api_status(base: &str, token: &str) -> u16 {
    let bearer = format!("Bearer {token}");
    http::get(base, "/api/resource", &[("authorization", &bearer)]).await.map_or(0, |(s, _, _)| s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_master_without_replica_fails_its_keys_closed_and_the_others_are_served() {
    let cluster = RedisCluster::start(3).await.unwrap();
    let target = target(&cluster, "jwt-denylist", 0).await;
    let handles = cluster.handles().unwrap();
    let (first, last) = handles.slots[0];
    // jwt-denylist reads `dl:{user}:<jti>` and `nbf:{user}` on every api request: the user's slot.
    let mut users = Vec::new();
    for i in 0..24 {
        let user = format!("partial-{i}");
        let on_dead = (first..=last).contains(&keyslot(handles.survivors[0], &user).await);
        let (status, _, body) =
            http::post_json(&target.base_url, "/login", &[], &json!({ "user": user })).await.unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let token = v["access_token"].as_str().unwrap().to_owned();
        assert_eq!(api_status(&target.base_url, &token).await, 200);
        users.push((user, on_dead, token));
    }
    let on_dead = users.iter().filter(|u| u.1).count();
    assert!(on_dead > 0 && on_dead < users.len(), "users on both sides of the dead master: {on_dead}");

    handles.kill_master().unwrap();
    // Past the cluster-node-timeout (2 s) the others see the master failed; check for 6 s that the
    // users on the dead master only ever get 503 and, after a settling second, the others 200.
    let killed = Instant::now();
    let mut rounds = 0;
    while killed.elapsed() < Duration::from_secs(6) {
        for (user, dead, token) in &users {
            let status = api_status(&target.base_url, token).await;
            if *dead {
                assert_eq!(status, 503, "{user} (slot on the dead master) must fail closed");
            } else if killed.elapsed() > Duration::from_secs(1) {
                assert_eq!(
                    status,
                    200,
                    "{user} (slot on a live master) must be served, {:?} after the kill",
                    killed.elapsed()
                );
            }
        }
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rounds > 5, "{rounds} rounds");
    target.stop().await.unwrap();
    cluster.stop().await;
}

#[test]
fn cluster_failover_scenario_keys_are_checked() {
    let e = plan_err("[store]\nkind = \"redis\"\ncluster_replicas = 1\n");
    assert!(e.contains("kind = \"cluster\""), "{e}");
    let e = plan_err("[store]\nkind = \"cluster\"\ncluster_replicas = 3\n");
    assert!(e.contains("store.cluster_replicas must be 0..=2"), "{e}");
    let e = plan_err("[store]\nkind = \"cluster\"\n[store.failover]\nat = \"2s\"\nmode = \"cut-replication\"\n");
    assert!(e.contains("cut-replication") && e.contains("cluster_replicas"), "{e}");
    let e = plan_err("[store]\nkind = \"cluster\"\ncluster_replicas = 1\n[target]\nstore_wait_replicas = 2\n");
    assert!(e.contains("store_wait_replicas = 2") && e.contains("cluster_replicas"), "{e}");

    let l = scenario::parse(
        "strategies = [\"session\"]\n[store]\nkind = \"cluster\"\ncluster_replicas = 1\n[store.failover]\n\
         at = \"2s\"\n[matrix]\nstore.failover_mode = [\"kill\", \"cut-replication\"]\nstore_wait_replicas = [0, 1]\n",
        "f.toml",
        "f",
    )
    .unwrap();
    let p = plan::build_from(l, &RunArgs::default()).unwrap();
    assert_eq!(p.variants.len(), 4);
    assert_eq!((p.cluster_nodes, p.cluster_replicas), (3, 1));
}
