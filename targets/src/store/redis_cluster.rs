//! The Redis Cluster store: a [`KvStore`] that sends each operation to the master serving its key's
//! hash slot, over a [`RedisStore`] of its own per master (one node each, with that module's
//! connection policy and `--store-wait-replicas`), from a slot map read with `CLUSTER SLOTS`.
//!
//! **Why not fred's clustered client.** fred keeps one slot map for all masters and, when a
//! connection to one of them breaks, resynchronises the whole client: it reads `CLUSTER SLOTS` and
//! must then connect to *every* master the map names before it sends any command again. A master
//! that is down stays in the map (as the owner of its slots) until a replica takes them over, so
//! while it is down no slot is served at all: the failover of one master of three, or a master lost
//! with no replica, would stop the whole store. Here a dead master fails only the operations on its
//! own slots (503, fail closed, at once: its pool does not queue while disconnected); the others go
//! on. `harness/tests/cluster_failover.rs` checks both.
//!
//! **Following the cluster.** Any operation that fails for want of its node (disconnected, timed
//! out, or a `MOVED`/`CLUSDOWN` answer) schedules a refresh of the slot map, at most one at a time
//! and at most every [`REFRESH_INTERVAL`]: `CLUSTER SLOTS` from the first node that answers, then a
//! pool for every master not seen before (a promoted replica), in the background. The failed
//! operation itself is not retried (at most one write attempt, as for one node), so a failover costs
//! the operations on the failed master's slots until the refresh that sees the promotion.
//!
//! **`WAIT`.** Each master's pool runs the write and its `WAIT` on one connection to that master,
//! so `WAIT` counts the acknowledgements of the replicas of the master that took the write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::KvStore;
use super::redis::{RedisStore, RedisStoreOptions};
use crate::error::StoreError;

/// Shortest time between two slot-map refreshes.
const REFRESH_INTERVAL: Duration = Duration::from_millis(100);

/// The slot map and a pool per master it names.
#[derive(Default)]
struct Routing {
    /// Slot ranges (first, last, inclusive) and the `host:port` of the master serving each, by
    /// first slot.
    ranges: Vec<(u16, u16, Arc<str>)>,
    /// A pool per master, by `host:port`.
    nodes: HashMap<Arc<str>, Arc<RedisStore>>,
}

/// What every handle shares.
struct Inner {
    /// The seed nodes (`host:port`), asked when no known master answers.
    seeds: Vec<String>,
    /// What each master's pool is opened with (its `urls` replaced by the master's).
    node_options: RedisStoreOptions,
    /// `--store-wait-replicas`, for each master's pool.
    wait_replicas: u32,
    /// The current slot map; swapped whole by a refresh.
    routing: RwLock<Arc<Routing>>,
    /// Set while a refresh runs, so concurrent failures start one.
    refreshing: AtomicBool,
    /// Milliseconds after `epoch` of the last refresh start.
    last_refresh_ms: AtomicU64,
    /// Time zero for `last_refresh_ms`.
    epoch: Instant,
}

/// A cheaply cloneable handle on the cluster store.
#[derive(Clone)]
pub struct RedisClusterStore {
    inner: Arc<Inner>,
}

impl RedisClusterStore {
    /// Read the slot map from the seeds (`redis://` or `redis-cluster://` URLs) and open a pool per
    /// master. A cluster that cannot be read at start-up is not an error: the target starts,
    /// answers 503 where it needs the store, and reads the map again on the next failure.
    pub async fn connect(opts: RedisStoreOptions, wait_replicas: u32) -> Result<Self, StoreError> {
        let seeds: Vec<String> = opts.urls.iter().map(|u| host_port(u)).collect::<Result<_, _>>()?;
        let inner = Inner {
            seeds,
            node_options: opts,
            wait_replicas,
            routing: RwLock::default(),
            refreshing: AtomicBool::new(true),
            last_refresh_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        };
        let store = RedisClusterStore { inner: Arc::new(inner) };
        store.inner.refresh().await;
        store.inner.refreshing.store(false, Ordering::Release);
        Ok(store)
    }

    /// The pool of the master serving `key`'s slot.
    fn node(&self, key: &str) -> Result<Arc<RedisStore>, StoreError> {
        let slot = fred::util::redis_keyslot(key.as_bytes());
        let routing = self.inner.routing.read().map(|r| Arc::clone(&r)).unwrap_or_default();
        let i = routing.ranges.partition_point(|r| r.0 <= slot);
        let node = i
            .checked_sub(1)
            .and_then(|i| routing.ranges.get(i))
            .filter(|r| slot <= r.1)
            .and_then(|r| routing.nodes.get(&r.2));
        match node {
            Some(n) => Ok(Arc::clone(n)),
            None => {
                self.schedule_refresh();
                Err(StoreError::Unavailable(format!("no cluster master known for slot {slot}")))
            }
        }
    }

    /// Run `op` on the master of `key`; a failure that may mean the map is stale schedules a refresh.
    async fn on<T, F, Fut>(&self, key: &str, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Arc<RedisStore>) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let result = op(self.node(key)?).await;
        if matches!(result, Err(StoreError::Unavailable(_) | StoreError::Timeout(_))) {
            self.schedule_refresh();
        }
        result
    }

    /// Start a background refresh unless one runs or the last started within [`REFRESH_INTERVAL`].
    fn schedule_refresh(&self) {
        let inner = &self.inner;
        let now_ms = u64::try_from(inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let interval_ms = u64::try_from(REFRESH_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        if now_ms < inner.last_refresh_ms.load(Ordering::Relaxed).saturating_add(interval_ms)
            || inner.refreshing.swap(true, Ordering::AcqRel)
        {
            return;
        }
        inner.last_refresh_ms.store(now_ms, Ordering::Relaxed);
        let inner = Arc::clone(inner);
        tokio::spawn(async move {
            inner.refresh().await;
            inner.refreshing.store(false, Ordering::Release);
        });
    }
}

impl Inner {
    /// Read `CLUSTER SLOTS` from a known master (else a seed) and swap in the new map, with a pool
    /// for every master not seen before. Failures leave the old map (logged).
    async fn refresh(&self) {
        let current = self.routing.read().map(|r| Arc::clone(&r)).unwrap_or_default();
        let Some(ranges) = self.read_slots(&current).await else {
            tracing::warn!("no cluster node answered CLUSTER SLOTS; keeping the old slot map");
            return;
        };
        let mut nodes = HashMap::new();
        for (_, _, addr) in &ranges {
            if nodes.contains_key(addr) {
                continue;
            }
            let node = match current.nodes.get(addr) {
                Some(n) => Arc::clone(n),
                None => match self.open(addr).await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(%addr, error = %e, "opening a pool to a cluster master");
                        continue;
                    }
                },
            };
            nodes.insert(Arc::clone(addr), node);
        }
        tracing::debug!(masters = nodes.len(), ranges = ranges.len(), "cluster slot map read");
        if let Ok(mut r) = self.routing.write() {
            *r = Arc::new(Routing { ranges, nodes });
        }
    }

    /// `CLUSTER SLOTS` from the first known master, then seed, that answers.
    async fn read_slots(&self, current: &Routing) -> Option<Vec<(u16, u16, Arc<str>)>> {
        for node in current.nodes.values() {
            if let Ok(ranges) = node.cluster_slots().await {
                return Some(ranges);
            }
        }
        for seed in &self.seeds {
            if current.nodes.contains_key(seed.as_str()) {
                continue;
            }
            let Ok(node) = self.open(seed).await else { continue };
            if let Ok(ranges) = node.cluster_slots().await {
                return Some(ranges);
            }
        }
        None
    }

    /// A pool to one node, `host:port`.
    async fn open(&self, addr: &str) -> Result<Arc<RedisStore>, StoreError> {
        let opts = RedisStoreOptions { urls: vec![format!("redis://{addr}")], ..self.node_options.clone() };
        Ok(Arc::new(RedisStore::connect(opts).await?.with_wait_replicas(self.wait_replicas)))
    }
}

/// `host:port` of a `redis://` or `redis-cluster://` URL (credentials and database are not carried
/// over to the masters: the private clusters the harness starts have none).
fn host_port(url: &str) -> Result<String, StoreError> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() {
        return Err(StoreError::Unavailable(format!("invalid redis URL `{url}`: no host")));
    }
    Ok(if host.contains(':') { host.to_owned() } else { format!("{host}:6379") })
}

impl KvStore for RedisClusterStore {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.on(key, |n| async move { n.get(key).await }).await
    }

    async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>, StoreError> {
        // Every key of one `mget` shares a hash tag, so the first names the node.
        let Some(first) = keys.first() else { return Ok(Vec::new()) };
        self.on(first, |n| async move { n.mget(keys).await }).await
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        self.on(key, |n| async move { n.set(key, value, ttl).await }).await
    }

    async fn del(&self, keys: &[&str]) -> Result<u64, StoreError> {
        let Some(first) = keys.first() else { return Ok(0) };
        self.on(first, |n| async move { n.del(keys).await }).await
    }

    async fn set_xx_get(&self, key: &str, value: &[u8]) -> Result<Option<Bytes>, StoreError> {
        self.on(key, |n| async move { n.set_xx_get(key, value).await }).await
    }

    async fn sadd(&self, key: &str, member: &str, ttl: Duration) -> Result<(), StoreError> {
        self.on(key, |n| async move { n.sadd(key, member, ttl).await }).await
    }

    async fn smembers(&self, key: &str) -> Result<Vec<String>, StoreError> {
        self.on(key, |n| async move { n.smembers(key).await }).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // Every master must answer: the store is whole only then.
        let routing = self.inner.routing.read().map(|r| Arc::clone(&r)).unwrap_or_default();
        if routing.nodes.is_empty() {
            self.schedule_refresh();
            return Err(StoreError::Unavailable("no cluster master known".into()));
        }
        for node in routing.nodes.values() {
            node.ping().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_of_seed_urls() {
        assert_eq!(host_port("redis://127.0.0.1:7000").unwrap(), "127.0.0.1:7000");
        assert_eq!(host_port("redis-cluster://u:p@h:7001/0").unwrap(), "h:7001");
        assert_eq!(host_port("redis://h").unwrap(), "h:6379");
        assert!(host_port("redis://").is_err());
    }
}
