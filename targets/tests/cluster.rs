//! Redis Cluster specifics, beyond the store and strategy contracts that also run on a cluster
//! (`store::cluster::*` and the `cluster` cases of the strategy tests): every strategy's records
//! spread over the nodes (hash tags are per user or per family, never one global tag), while the
//! keys one command touches together share a slot.

use std::time::Duration;

use authbench_targets::config::StrategyKind;
use reqwest::StatusCode;

use crate::contract::{Backing, start};
use crate::util::{RedisCluster, redis_command};

const USERS: usize = 40;

/// After many users' logins, logouts and revokes, every node holds some of the records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_spread_over_all_nodes() {
    for kind in [StrategyKind::SESSION, StrategyKind::JWT_DENYLIST, StrategyKind::JWT_REFRESH] {
        let env = start(kind, Backing::Cluster, |_| {}).await;
        // jwt-refresh ends refresh families, not access tokens: those live on until `exp`.
        let ends_access = kind != StrategyKind::JWT_REFRESH;
        for i in 0..USERS {
            let user = format!("user{i}");
            let cred = env.login(&user).await;
            assert_eq!(env.access(&cred, &user).await, StatusCode::OK, "{kind}");
            if i % 2 == 0 {
                assert_eq!(env.logout(&cred).await.0, StatusCode::OK, "{kind}");
                if ends_access {
                    assert_eq!(env.access(&cred, &user).await, StatusCode::UNAUTHORIZED, "{kind}: logged out");
                } else {
                    assert_eq!(env.refresh(cred.refresh()).await, Err(StatusCode::UNAUTHORIZED), "{kind}: logged out");
                }
            } else {
                assert_eq!(env.revoke_user(&user).await.0, StatusCode::OK, "{kind}");
                if ends_access {
                    assert_eq!(env.access(&cred, &user).await, StatusCode::UNAUTHORIZED, "{kind}: revoked");
                } else {
                    assert_eq!(env.refresh(cred.refresh()).await, Err(StatusCode::UNAUTHORIZED), "{kind}: revoked");
                }
            }
        }
        let cluster = env.cluster.as_ref().expect("cluster backing");
        let per_node = cluster.keys_per_node();
        assert!(per_node.iter().all(|&n| n > 0), "{kind}: records must spread over every node: {per_node:?}");
    }
}

/// The multi-key commands' keys hash to one slot: the denylist's per-request MGET
/// (`dl:{user}:jti`, `nbf:{user}`, `roles:{user}`) and jwt-refresh's logout MGET
/// (`rt:{family}:h`, `rf:{family}`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_key_commands_share_a_slot() {
    let env = start(StrategyKind::JWT_DENYLIST, Backing::Cluster, |_| {}).await;
    let port = env.cluster.as_ref().unwrap().nodes[0].port;
    let slot = |key: &str| redis_command(port, &format!("CLUSTER KEYSLOT {key}"));
    for user in ["alice", "bob", "u.1-x_Y"] {
        let want = slot(&format!("nbf:{{{user}}}"));
        assert!(want.starts_with(':'), "CLUSTER KEYSLOT answered {want:?}");
        assert_eq!(slot(&format!("dl:{{{user}}}:1700000000000.abc")), want);
        assert_eq!(slot(&format!("roles:{{{user}}}")), want);
    }
    assert_ne!(slot("nbf:{alice}"), slot("nbf:{bob}"), "different users, different slots");
    assert_eq!(slot("rt:{fam1}:hash"), slot("rf:{fam1}"));
}

/// One `redis-cluster://` seed URL is enough: the store discovers the other nodes and follows
/// every slot (keys with different tags land on different nodes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cluster_seed_url_reaches_every_slot() {
    use authbench_targets::store::{KvStore, RedisClusterStore, RedisStoreOptions};
    let cluster = tokio::task::spawn_blocking(|| RedisCluster::start(3)).await.unwrap();
    let url = format!("redis-cluster://127.0.0.1:{}", cluster.nodes[0].port);
    let opts = RedisStoreOptions { urls: vec![url], pool_size: 2, command_timeout: Duration::from_millis(250) };
    let store = RedisClusterStore::connect(opts, 0).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while store.ping().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "cluster store never answered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for i in 0..60 {
        store.set(&format!("k:{{u{i}}}"), b"v", Duration::from_secs(60)).await.unwrap();
    }
    for i in 0..60 {
        assert_eq!(store.get(&format!("k:{{u{i}}}")).await.unwrap().as_deref(), Some(&b"v"[..]));
    }
    assert!(cluster.keys_per_node().iter().all(|&n| n > 0), "{:?}", cluster.keys_per_node());
}
