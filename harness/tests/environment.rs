//! The run's environment against real processes: the one redis-server starter brings a killed store
//! back, empty, on the same port (kill-mode outages), and a paused store answers again after a
//! pause.

use std::time::Duration;

use authbench::environment::RedisProcess;
use authbench::environment::outage::inject_outage;
use authbench::scenario::OutageMode;

async fn set_and_count(url: &str, set: bool) -> u64 {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    if set {
        redis::cmd("SET").arg("k").arg("v").query_async::<()>(&mut conn).await.unwrap();
    }
    redis::cmd("DBSIZE").query_async::<u64>(&mut conn).await.unwrap()
}

#[tokio::test]
async fn a_killed_store_comes_back_empty_on_its_port() {
    let redis = RedisProcess::start().await.unwrap();
    assert_eq!(set_and_count(&redis.url, true).await, 1);
    let old_pid = redis.pid();
    let restarted = inject_outage(old_pid, redis.port, OutageMode::Kill, Duration::from_millis(50))
        .await
        .unwrap()
        .expect("kill mode returns the fresh server");
    assert_eq!(restarted.port, redis.port);
    assert_eq!(restarted.url, redis.url);
    assert_ne!(restarted.pid(), old_pid);
    assert_eq!(set_and_count(&restarted.url, false).await, 0, "nothing survived the kill");
    restarted.stop().await;
}

#[tokio::test]
async fn a_paused_store_keeps_its_data() {
    let redis = RedisProcess::start().await.unwrap();
    assert_eq!(set_and_count(&redis.url, true).await, 1);
    let none = inject_outage(redis.pid(), redis.port, OutageMode::Pause, Duration::from_millis(50)).await.unwrap();
    assert!(none.is_none());
    assert_eq!(set_and_count(&redis.url, false).await, 1);
    redis.stop().await;
}
