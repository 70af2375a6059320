//! A local Redis Cluster against real redis-server processes: it starts (all nodes
//! `cluster_state:ok`), a target child serves from it with records spread over every node, store
//! load is summed over the nodes, and it tears down.

use std::path::Path;

use authbench::collect::{self, http};
use authbench::environment::{RedisCluster, TargetProcess};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_serves_a_target_and_sums_store_load() {
    let cluster = RedisCluster::start(3).await.unwrap();
    assert_eq!(cluster.ports().len(), 3);
    assert_eq!(cluster.urls().split(',').count(), 3);
    cluster.flush().await.unwrap();

    let args: Vec<String> = ["target", "--strategy", "session", "--listen", "127.0.0.1:0", "--store", &cluster.urls()]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let target = TargetProcess::spawn(Path::new(env!("CARGO_BIN_EXE_authbench")), &args, None).await.unwrap();

    let before = collect::snapshot_sum(&cluster.url_list()).await.unwrap();
    const USERS: u64 = 30;
    for i in 0..USERS {
        let (status, _, body) =
            http::post_json(&target.base_url, "/login", &[], &json!({ "user": format!("u{i}") })).await.unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    let after = collect::snapshot_sum(&cluster.url_list()).await.unwrap();

    // session login: SET s:<hash> + SADD/PEXPIRE us:<user>, two keys per user, spread over nodes.
    assert_eq!(after.keys, 2 * USERS, "keys summed over the nodes");
    for url in cluster.url_list() {
        let node = collect::snapshot(&url).await.unwrap();
        assert!(node.keys > 0 && node.keys < after.keys, "{url} holds {} of {} keys", node.keys, after.keys);
    }
    let load = collect::store_load(&before, &after, USERS, USERS);
    assert_eq!(load.ops_by_command.get("set").copied(), Some(1.0), "{:?}", load.ops_by_command);
    assert_eq!(load.ops_by_command.get("sadd").copied(), Some(1.0), "{:?}", load.ops_by_command);
    assert!(load.net_bytes_per_request.is_some_and(|b| b > 0.0));
    // Per node: three entries whose commands add up to the whole (login's 4 commands per user,
    // DEL of an offered sid aside: none was offered), each node doing some of them.
    assert_eq!(load.nodes.len(), 3, "{:?}", load.nodes);
    let per_node: Vec<f64> = load.nodes.iter().map(|n| n.ops_per_request.unwrap_or(0.0)).collect();
    assert!((per_node.iter().sum::<f64>() - load.ops_per_request.unwrap_or(0.0)).abs() < 1e-9, "{per_node:?}");
    assert!(per_node.iter().all(|&o| o > 0.0), "every node served some: {per_node:?}");

    target.stop().await.unwrap();
    let ports = cluster.ports();
    cluster.stop().await;
    for port in ports {
        assert!(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err(), "node {port} still up");
    }
}

#[tokio::test]
async fn fewer_than_three_nodes_is_refused() {
    let err = RedisCluster::start(2).await.unwrap_err();
    assert!(err.to_string().contains("at least 3"), "{err}");
}
