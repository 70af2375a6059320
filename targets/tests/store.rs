//! The store contract, run against both implementations: `MemoryStore` (the reference semantics) and
//! `RedisStore` against a private redis-server. A strategy must behave identically on either, so
//! every behaviour it relies on is asserted here for both. Then the Redis store's failure modes:
//! nothing listening, an invalid URL, and a server that dies and comes back.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use authbench_targets::error::StoreError;
use authbench_targets::store::{
    KvStore, MemoryStore, PostgresStore, PostgresStoreOptions, RedisClusterStore, RedisStore, RedisStoreOptions,
};
use bytes::Bytes;

use crate::util::{CutProxy, PgSchema, RedisCluster, RedisServer, free_port};

/// Short enough to keep the suite fast, long enough that "still there right after the write" is
/// not a race on a loaded machine.
const SHORT_TTL: Duration = Duration::from_millis(200);
const LONG_TTL: Duration = Duration::from_secs(60);
/// How long an expired key may take to disappear before the test fails.
const EXPIRY_BOUND: Duration = Duration::from_secs(3);

fn opts(urls: Vec<String>) -> RedisStoreOptions {
    RedisStoreOptions { urls, pool_size: 2, command_timeout: Duration::from_millis(250) }
}

async fn redis_store(server: &RedisServer) -> RedisStore {
    let store = RedisStore::connect(opts(vec![server.url()])).await.expect("connect to the test redis-server");
    // The store may still be connecting in the background; wait (bounded) until it answers.
    poll_until(Duration::from_secs(5), || async { store.ping().await.is_ok() })
        .await
        .expect("redis store answers PING");
    store
}

/// The cluster store a target opens on every node of `cluster` (the seed list a cluster `--store`
/// gives), once it answers.
async fn cluster_store(cluster: &RedisCluster) -> RedisClusterStore {
    let store = RedisClusterStore::connect(opts(cluster.url_list()), 0).await.expect("connect to the test cluster");
    poll_until(Duration::from_secs(5), || async { store.ping().await.is_ok() })
        .await
        .expect("cluster store answers PING");
    store
}

fn pg_opts(url: String) -> PostgresStoreOptions {
    // Eight connections, so the concurrency tests really run statements side by side; a 1 s
    // statement timeout, so a busy test machine does not turn a queue for the pool into a failure.
    PostgresStoreOptions { url, pool_size: 8, command_timeout: Duration::from_secs(1) }
}

/// A PostgreSQL store on `schema`, once it answers.
async fn pg_store(url: String) -> PostgresStore {
    let store = PostgresStore::connect(pg_opts(url)).await.expect("connect to the test PostgreSQL");
    poll_until(Duration::from_secs(5), || async { store.get("{probe}").await.is_ok() })
        .await
        .expect("postgres store answers (schema created)");
    store
}

/// Poll `check` every 20 ms until it returns true; `Err(elapsed)` if it never does within `bound`.
async fn poll_until<F, Fut>(bound: Duration, mut check: F) -> Result<Duration, Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return Ok(start.elapsed());
        }
        if start.elapsed() > bound {
            return Err(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn b(s: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(s.as_bytes()))
}

// ---- the contract, generic over the implementation ----

async fn get_set_and_ttl_expiry<S: KvStore>(s: Arc<S>) {
    assert_eq!(s.get("{c}:missing").await.unwrap(), None);
    s.set("{c}:long", b"kept", LONG_TTL).await.unwrap();
    s.set("{c}:short", b"brief", SHORT_TTL).await.unwrap();
    assert_eq!(s.get("{c}:short").await.unwrap(), b("brief"), "readable right after the write");
    // Overwrite replaces the value.
    s.set("{c}:long", b"kept2", LONG_TTL).await.unwrap();
    assert_eq!(s.get("{c}:long").await.unwrap(), b("kept2"));

    let gone = poll_until(EXPIRY_BOUND, || async { s.get("{c}:short").await.unwrap().is_none() }).await;
    let elapsed = gone.expect("a key with a 200 ms TTL must expire");
    assert!(elapsed >= SHORT_TTL - Duration::from_millis(50), "expired too early: {elapsed:?}");
    assert_eq!(s.get("{c}:long").await.unwrap(), b("kept2"), "a long TTL key must survive");
}

async fn mget_preserves_order_and_gaps<S: KvStore>(s: Arc<S>) {
    s.set("{m}:a", b"1", LONG_TTL).await.unwrap();
    s.set("{m}:c", b"3", LONG_TTL).await.unwrap();
    let got = s.mget(&["{m}:a", "{m}:b", "{m}:c"]).await.unwrap();
    assert_eq!(got, vec![b("1"), None, b("3")]);
    assert_eq!(s.mget(&["{m}:b"]).await.unwrap(), vec![None]);
    assert_eq!(s.mget(&["{m}:c"]).await.unwrap(), vec![b("3")]);
}

async fn del_counts_existing_keys<S: KvStore>(s: Arc<S>) {
    s.set("{d}:a", b"1", LONG_TTL).await.unwrap();
    s.set("{d}:b", b"2", LONG_TTL).await.unwrap();
    s.sadd("{d}:set", "m", LONG_TTL).await.unwrap();
    assert_eq!(s.del(&["{d}:a", "{d}:missing", "{d}:b"]).await.unwrap(), 2);
    assert_eq!(s.get("{d}:a").await.unwrap(), None);
    assert_eq!(s.del(&["{d}:a", "{d}:b"]).await.unwrap(), 0, "deleting twice deletes nothing");
    assert_eq!(s.del(&["{d}:set"]).await.unwrap(), 1, "del removes sets too");
    assert!(s.smembers("{d}:set").await.unwrap().is_empty());
    // An expired key does not count.
    s.set("{d}:short", b"x", Duration::from_millis(50)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(s.del(&["{d}:short"]).await.unwrap(), 0);
}

async fn set_xx_get_redeems_without_creating<S: KvStore>(s: Arc<S>) {
    // Missing key: no write, None.
    assert_eq!(s.set_xx_get("{x}:k", b"used").await.unwrap(), None);
    assert_eq!(s.get("{x}:k").await.unwrap(), None, "XX must not create the key");
    // Existing key: old value back, new value stored.
    s.set("{x}:k", b"live", LONG_TTL).await.unwrap();
    assert_eq!(s.set_xx_get("{x}:k", b"used").await.unwrap(), b("live"));
    assert_eq!(s.get("{x}:k").await.unwrap(), b("used"));
    assert_eq!(s.set_xx_get("{x}:k", b"used").await.unwrap(), b("used"), "a second redemption sees `used`");

    // KEEPTTL: replacing the value must not make the key immortal (nor drop its TTL).
    s.set("{x}:short", b"live", SHORT_TTL).await.unwrap();
    assert_eq!(s.set_xx_get("{x}:short", b"used").await.unwrap(), b("live"));
    assert_eq!(s.get("{x}:short").await.unwrap(), b("used"));
    poll_until(EXPIRY_BOUND, || async { s.get("{x}:short").await.unwrap().is_none() })
        .await
        .expect("set_xx_get must keep the key's TTL");
    // And once expired, redemption finds nothing.
    assert_eq!(s.set_xx_get("{x}:short", b"used").await.unwrap(), None);
}

async fn concurrent_redemption_has_one_winner<S: KvStore>(s: Arc<S>) {
    for round in 0..3 {
        let key = format!("{{r}}:token{round}");
        s.set(&key, b"live", LONG_TTL).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..50 {
            let s = s.clone();
            let key = key.clone();
            tasks.spawn(async move { s.set_xx_get(&key, format!("used-by-{i}").as_bytes()).await });
        }
        let mut live = 0;
        let mut total = 0;
        while let Some(r) = tasks.join_next().await {
            let old = r.expect("task").expect("set_xx_get");
            total += 1;
            match old.as_deref() {
                Some(b"live") => live += 1,
                Some(v) => assert!(v.starts_with(b"used-by-"), "unexpected old value {v:?}"),
                None => panic!("the key exists: set_xx_get must return its old value"),
            }
        }
        assert_eq!(total, 50);
        assert_eq!(live, 1, "round {round}: exactly one concurrent redemption may see `live`");
    }
}

async fn sets_with_ttl<S: KvStore>(s: Arc<S>) {
    assert!(s.smembers("{s}:none").await.unwrap().is_empty());
    s.sadd("{s}:u", "a", LONG_TTL).await.unwrap();
    s.sadd("{s}:u", "b", LONG_TTL).await.unwrap();
    s.sadd("{s}:u", "a", LONG_TTL).await.unwrap();
    let mut m = s.smembers("{s}:u").await.unwrap();
    m.sort();
    assert_eq!(m, ["a", "b"], "members are a set: no duplicates");

    // The set expires after its TTL...
    s.sadd("{s}:short", "x", SHORT_TTL).await.unwrap();
    assert_eq!(s.smembers("{s}:short").await.unwrap(), ["x"]);
    poll_until(EXPIRY_BOUND, || async { s.smembers("{s}:short").await.unwrap().is_empty() })
        .await
        .expect("a set with a 200 ms TTL must expire");

    // ...and each sadd re-sets the expiry (here: extends it).
    s.sadd("{s}:ext", "x", SHORT_TTL).await.unwrap();
    s.sadd("{s}:ext", "y", LONG_TTL).await.unwrap();
    tokio::time::sleep(SHORT_TTL * 2).await;
    let mut m = s.smembers("{s}:ext").await.unwrap();
    m.sort();
    assert_eq!(m, ["x", "y"], "the second sadd must extend the whole set's TTL");
}

async fn values_are_binary_safe<S: KvStore>(s: Arc<S>) {
    let all: Vec<u8> = (0..=255u8).chain([0, 0, b'\r', b'\n', 0xff, 0xfe]).collect();
    s.set("{bin}:all", &all, LONG_TTL).await.unwrap();
    assert_eq!(s.get("{bin}:all").await.unwrap().as_deref(), Some(&all[..]));
    s.set("{bin}:empty", b"", LONG_TTL).await.unwrap();
    assert_eq!(s.get("{bin}:empty").await.unwrap().as_deref(), Some(&b""[..]), "empty is not missing");
    let got = s.mget(&["{bin}:all", "{bin}:empty", "{bin}:none"]).await.unwrap();
    assert_eq!(got, vec![Some(Bytes::from(all.clone())), Some(Bytes::new()), None]);
    assert_eq!(s.set_xx_get("{bin}:all", b"\0used\xff").await.unwrap().as_deref(), Some(&all[..]));
    assert_eq!(s.get("{bin}:all").await.unwrap().as_deref(), Some(&b"\0used\xff"[..]));
}

async fn ping_answers<S: KvStore>(s: Arc<S>) {
    s.ping().await.unwrap();
}

/// One `#[tokio::test]` per contract item per implementation: `store::memory::<item>`,
/// `store::redis::<item>` (one node), `store::cluster::<item>` (a 3-node Redis Cluster) and
/// `store::postgres::<item>` (a schema of the test's own on the machine's PostgreSQL).
macro_rules! contract {
    ($($item:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $item() {
                    super::$item(Arc::new(MemoryStore::new())).await;
                }
            )*
        }
        mod redis {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $item() {
                    let server = RedisServer::start();
                    super::$item(Arc::new(redis_store(&server).await)).await;
                    drop(server);
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $item() {
                    let Some(schema) = PgSchema::create().await else { return };
                    super::$item(Arc::new(pg_store(schema.url()).await)).await;
                    drop(schema);
                }
            )*
        }
        mod cluster {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $item() {
                    let cluster = tokio::task::spawn_blocking(|| RedisCluster::start(3)).await.unwrap();
                    super::$item(Arc::new(cluster_store(&cluster).await)).await;
                    drop(cluster);
                }
            )*
        }
    };
}

contract!(
    get_set_and_ttl_expiry,
    mget_preserves_order_and_gaps,
    del_counts_existing_keys,
    set_xx_get_redeems_without_creating,
    concurrent_redemption_has_one_winner,
    sets_with_ttl,
    values_are_binary_safe,
    ping_answers,
);

// ---- Redis failure modes ----

/// Every operation of `s` must fail (not hang, not succeed) within `bound`.
async fn assert_all_ops_fail_fast<S: KvStore>(s: &S, bound: Duration) {
    let start = Instant::now();
    let results: Vec<(&str, Result<(), StoreError>)> = vec![
        ("ping", s.ping().await),
        ("get", s.get("{f}:k").await.map(drop)),
        ("mget", s.mget(&["{f}:a", "{f}:b"]).await.map(drop)),
        ("set", s.set("{f}:k", b"v", LONG_TTL).await),
        ("del", s.del(&["{f}:k"]).await.map(drop)),
        ("set_xx_get", s.set_xx_get("{f}:k", b"v").await.map(drop)),
        ("sadd", s.sadd("{f}:s", "m", LONG_TTL).await),
        ("smembers", s.smembers("{f}:s").await.map(drop)),
    ];
    for (name, r) in results {
        match r {
            Err(StoreError::Unavailable(_) | StoreError::Timeout(_)) => {}
            other => panic!("{name} on a dead store must fail with Unavailable/Timeout, got {other:?}"),
        }
    }
    assert!(start.elapsed() < bound, "8 operations on a dead store took {:?}", start.elapsed());
}

#[tokio::test]
async fn redis_nothing_listening_starts_and_fails_fast() {
    let port = free_port();
    let start = Instant::now();
    let store = tokio::time::timeout(
        Duration::from_secs(2),
        RedisStore::connect(opts(vec![format!("redis://127.0.0.1:{port}")])),
    )
    .await
    .expect("connect must not block on a store that is down")
    .expect("a store that is down at start-up is not a configuration error");
    assert!(start.elapsed() < Duration::from_secs(2));
    for _ in 0..3 {
        let t = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(2), store.get("k")).await.expect("get must not hang");
        assert!(r.is_err(), "get on nothing listening must be an error, got {r:?}");
        assert!(t.elapsed() < Duration::from_secs(2), "took {:?}", t.elapsed());
    }
    assert_all_ops_fail_fast(&store, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn redis_invalid_url_is_an_error() {
    for url in ["not a url", "redis://", "redis://127.0.0.1:notaport"] {
        let r = tokio::time::timeout(Duration::from_secs(2), RedisStore::connect(opts(vec![url.to_owned()])))
            .await
            .expect("connect must not hang on a bad URL");
        assert!(r.is_err(), "`{url}` must be refused");
    }
    let r = RedisStore::connect(opts(Vec::new())).await;
    assert!(r.is_err(), "an empty URL list must be refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_fails_fast_then_recovers_by_itself() {
    let mut server = RedisServer::start();
    let store = redis_store(&server).await;
    store.set("k", b"v", LONG_TTL).await.unwrap();
    assert_eq!(store.get("k").await.unwrap(), b("v"));

    server.kill();
    // Every command fails promptly while the server is gone, repeatedly (no queue builds up).
    for _ in 0..3 {
        assert_all_ops_fail_fast(&store, Duration::from_secs(3)).await;
    }

    server.restart();
    // The pool reconnects on its own (back-off capped at 1 s); nothing was persisted.
    let recovered = poll_until(Duration::from_secs(5), || async { store.ping().await.is_ok() }).await;
    let took = recovered.expect("the store must reconnect by itself once redis is back");
    // Every pooled client must be back, not just one: a few rounds of commands all succeed.
    for i in 0..10 {
        let key = format!("after{i}");
        let r = poll_until(Duration::from_secs(3), || async { store.set(&key, b"x", LONG_TTL).await.is_ok() }).await;
        r.unwrap_or_else(|e| panic!("set {i} kept failing for {e:?} after recovery (first ping after {took:?})"));
    }
    assert_eq!(store.get("k").await.unwrap(), None, "the restarted server is empty");
    assert_eq!(store.get("after3").await.unwrap(), b("x"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_at_startup_then_appears() {
    let mut server = RedisServer::start();
    server.kill();
    let store = tokio::time::timeout(Duration::from_secs(3), RedisStore::connect(opts(vec![server.url()])))
        .await
        .expect("connect must not block")
        .expect("down at start-up is not an error");
    assert!(store.ping().await.is_err(), "nothing is listening yet");
    server.restart();
    poll_until(Duration::from_secs(5), || async { store.ping().await.is_ok() })
        .await
        .expect("the store must connect by itself once redis appears");
    store.set("k", b"v", LONG_TTL).await.unwrap();
    assert_eq!(store.get("k").await.unwrap(), b("v"));
}

// ---- PostgreSQL failure modes and TTL sweep ----

#[tokio::test]
async fn postgres_nothing_listening_starts_and_fails_fast() {
    let port = free_port();
    let start = Instant::now();
    let url = format!("postgres://authbench@127.0.0.1:{port}/authbench");
    let store = tokio::time::timeout(Duration::from_secs(3), PostgresStore::connect(pg_opts(url)))
        .await
        .expect("connect must not block on a server that is down")
        .expect("a server that is down at start-up is not a configuration error");
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_all_ops_fail_fast(&store, Duration::from_secs(3)).await;
}

#[tokio::test]
async fn postgres_invalid_url_is_an_error() {
    for url in ["postgres://u@h/db?schema=", "postgres://u@h/db?nonsense=1", "postgres://u@h:notaport/db"] {
        let r = tokio::time::timeout(Duration::from_secs(3), PostgresStore::connect(pg_opts(url.to_owned())))
            .await
            .expect("connect must not hang on a bad URL");
        assert!(r.is_err(), "`{url}` must be refused");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_fails_fast_then_recovers_by_itself() {
    let Some(schema) = PgSchema::create().await else { return };
    let mut proxy = CutProxy::start(schema.server_addr()).await;
    let store = pg_store(schema.url_via(proxy.port)).await;
    store.set("k", b"v", LONG_TTL).await.unwrap();

    proxy.cut();
    for _ in 0..3 {
        assert_all_ops_fail_fast(&store, Duration::from_secs(4)).await;
    }

    proxy.restore().await;
    poll_until(Duration::from_secs(5), || async { store.ping().await.is_ok() })
        .await
        .expect("the pool must reconnect by itself once the server is reachable again");
    // Every pooled connection must be usable again, not just one.
    for i in 0..20 {
        let key = format!("after{i}");
        poll_until(Duration::from_secs(3), || async { store.set(&key, b"x", LONG_TTL).await.is_ok() })
            .await
            .unwrap_or_else(|e| panic!("set {i} kept failing for {e:?} after recovery"));
    }
    assert_eq!(store.get("k").await.unwrap(), b("v"), "the data outlived the outage (the server kept running)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sweeper_deletes_expired_rows_only() {
    let Some(schema) = PgSchema::create().await else { return };
    let store = pg_store(schema.url()).await;
    store.set("{w}:short", b"x", Duration::from_millis(50)).await.unwrap();
    store.sadd("{w}:set", "m", Duration::from_millis(50)).await.unwrap();
    store.set("{w}:long", b"y", LONG_TTL).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let table = format!("SELECT count(*) FROM \"{}\".kv", schema.name);
    assert_eq!(schema.query_count(&table).await, 3, "expired rows stay until swept (reads skip them)");
    assert_eq!(store.sweep().await.unwrap(), 2);
    assert_eq!(schema.query_count(&table).await, 1);
    assert_eq!(store.get("{w}:long").await.unwrap(), b("y"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_schema_is_unlogged_and_private() {
    let Some(schema) = PgSchema::create().await else { return };
    let _store = pg_store(schema.url()).await;
    let sql = format!(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = '{}' AND c.relname = 'kv' AND c.relpersistence = 'u'",
        schema.name
    );
    assert_eq!(schema.query_count(&sql).await, 1, "the table is created UNLOGGED in the store's schema");
}
