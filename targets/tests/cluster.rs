//! Redis Cluster specifics, beyond the store and strategy contracts that also run on a cluster
//! (`store::cluster::*` and the `cluster` cases of the strategy tests): every strategy's records
//! spread over the nodes (hash tags are per user or per family, never one global tag), while the
//! keys one command touches together share a slot.

use authbench_targets::config::StrategyKind;
use reqwest::StatusCode;

use crate::contract::{Backing, start};
use crate::util::redis_command;

const USERS: usize = 40;

/// After many users' logins, logouts and revokes, every node holds some of the records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_spread_over_all_nodes() {
    for kind in [StrategyKind::Session, StrategyKind::JwtDenylist, StrategyKind::JwtRefresh] {
        let env = start(kind, Backing::Cluster, |_| {}).await;
        // jwt-refresh ends refresh families, not access tokens: those live on until `exp`.
        let ends_access = kind != StrategyKind::JwtRefresh;
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
    let env = start(StrategyKind::JwtDenylist, Backing::Cluster, |_| {}).await;
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
