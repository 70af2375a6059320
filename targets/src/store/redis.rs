//! The Redis store: a [`KvStore`] over a pool of `fred` clients talking to a real redis-server (or,
//! given a `redis-sentinel://` URL, the primary a group of Sentinels names, found again through
//! them after a failover). A target on a Redis Cluster uses `super::redis_cluster`, one of these
//! per master; given several URLs this store still opens fred's own clustered client, which only
//! the benches and tests that compare with it use (see `redis_cluster` for why targets do not).
//!
//! This module owns the connection policy, and that policy is the point of it: every `fred` default
//! that is unbounded (command timeout, connect timeout, retries, queueing while disconnected) is set
//! here explicitly, so that a store outage turns into a prompt [`StoreError`] (503, fail closed) and
//! never into a hung request, and so that the pool reconnects by itself when the store comes back.
//!
//! Each [`KvStore`] operation is exactly one Redis command and one round trip (`sadd` is `SADD` +
//! `EXPIRE` sent as one pipeline, still one round trip), so the report's "store operations per
//! request" counts what really crossed the wire.
//!
//! **Replica acknowledgement (`--store-wait-replicas N`).** With N > 0 every write (`set`, `del`,
//! `set_xx_get`, `sadd`) is followed by `WAIT N <ms>` on the same connection, in the same pipeline
//! (still one round trip), and the operation fails (503) unless N replicas acknowledged it: a
//! logout or revocation is answered 200 only once it would survive a failover to one of those
//! replicas. On a Redis Cluster each master has a store of its own (`super::redis_cluster`), so the
//! `WAIT` goes to the master that took the write. Without it (the default) nothing changes: one
//! command, no `WAIT`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fred::prelude::{
    Builder, Client, ClientLike, ClusterInterface, Config, ErrorKind, Expiration, KeysInterface, Options, Pool,
    ReconnectPolicy, ServerConfig, ServerInterface, SetOptions, SetsInterface, Value,
};
use fred::types::ConnectHandle;

use super::KvStore;
use crate::error::StoreError;

/// Longest wait for the pool's first connection in [`RedisStore::connect`]. Past it the target
/// starts anyway (store routes answer 503) and the pool keeps reconnecting in the background.
const STARTUP_CONNECT_WAIT: Duration = Duration::from_secs(1);

/// Longest TCP connect (and TLS handshake) attempt. Bounded so a black-holed store address does not
/// stall each reconnect attempt for fred's default 10 s.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// Bound for fred's own commands on a new connection (`AUTH`, `SELECT`, `CLUSTER SLOTS`, ...).
const INTERNAL_COMMAND_TIMEOUT: Duration = Duration::from_secs(1);

/// Reconnect back-off: 50 ms doubling up to 1 s, forever. The cap is what lets a target recover
/// within about a second of the store coming back; "forever" is what lets it recover at all.
const RECONNECT_MIN_DELAY_MS: u32 = 50;
const RECONNECT_MAX_DELAY_MS: u32 = 1_000;

/// How long commands may do nothing but time out before the pool is forced to reconnect
/// (see [`Watchdog`]): at least this, and at least four command timeouts.
const UNRESPONSIVE_AFTER_MIN: Duration = Duration::from_secs(2);

/// Connection settings, all explicit (fred's defaults are unbounded).
#[derive(Debug, Clone)]
pub struct RedisStoreOptions {
    /// `redis://` URLs: one for a single node, several for a cluster's seed nodes.
    pub urls: Vec<String>,
    /// Clients in the pool, each with its own connection (per node): requests are spread round-robin
    /// so one slow reply does not head-of-line block every request.
    pub pool_size: usize,
    /// Per-command timeout; past it the operation fails with [`StoreError::Timeout`] (503).
    pub command_timeout: Duration,
}

/// A cheaply cloneable handle on the shared pool.
#[derive(Clone)]
pub struct RedisStore {
    /// The pooled clients. Commands go to the next *connected* client, round-robin.
    pool: Pool,
    /// Applied to every command: fail fast while disconnected (instead of queueing until the
    /// reconnect succeeds), at most one write attempt (a silently retried `SET .. XX GET` could
    /// report a refresh token as already used when it was this very request that used it), and
    /// the per-command timeout.
    options: Options,
    /// The per-command timeout, kept for the error we report.
    command_timeout: Duration,
    /// `--store-wait-replicas`: replicas that must acknowledge each write (`WAIT`); 0: no `WAIT`.
    wait_replicas: u32,
    /// Detects a store that accepts commands but never answers, on the error path only.
    watchdog: Arc<Watchdog>,
    /// The connection tasks, aborted when the last handle is dropped so a stopped target does not
    /// leave clients reconnecting forever in the background.
    _tasks: Arc<ConnectionTasks>,
}

/// The pipeline a write and its `WAIT` are queued on (one connection, one round trip).
type WaitedPipeline = fred::clients::WithOptions<fred::clients::Pipeline<Client>>;

/// Owns the pool's connection tasks; aborts them on drop.
struct ConnectionTasks(Vec<ConnectHandle>);

impl Drop for ConnectionTasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl RedisStore {
    /// Build the pool and start its connection tasks. This fails only for a configuration error
    /// (invalid URL, empty URL list); a store that is down at start-up is not an error: the target
    /// starts, answers 503 on store routes, and recovers when the store appears.
    pub async fn connect(opts: RedisStoreOptions) -> Result<Self, StoreError> {
        let mut config = parse_urls(&opts.urls)?;
        // Do not end the connection task when the first connection fails: run the reconnect
        // policy instead, so a target started before its store recovers on its own.
        config.fail_fast = false;

        let command_timeout = opts.command_timeout;
        let pool = Builder::from_config(config)
            .with_performance_config(|perf| {
                perf.default_command_timeout = command_timeout;
            })
            .with_connection_config(|conn| {
                conn.connection_timeout = CONNECTION_TIMEOUT;
                conn.internal_command_timeout = INTERNAL_COMMAND_TIMEOUT;
                conn.max_command_attempts = 1;
                conn.max_redirections = 3;
                // fred's own unresponsive-connection check stays off: it arms a timer on every
                // turn of the connection task, which is every command. [`Watchdog`] does the same
                // job from the error path.
                conn.unresponsive.max_timeout = None;
                conn.tcp.nodelay = Some(true);
            })
            .set_policy(ReconnectPolicy::new_exponential(0, RECONNECT_MIN_DELAY_MS, RECONNECT_MAX_DELAY_MS, 2))
            .build_pool(opts.pool_size.max(1))
            .map_err(|e| StoreError::Unavailable(format!("redis pool: {e}")))?;

        let tasks = pool.connect_pool();
        match tokio::time::timeout(STARTUP_CONNECT_WAIT, pool.wait_for_connect()).await {
            Ok(Ok(())) => tracing::info!(urls = ?opts.urls, "redis store connected"),
            Ok(Err(e)) => {
                tracing::warn!(urls = ?opts.urls, error = %e, "redis store not reachable yet; reconnecting in the background")
            }
            Err(_) => {
                tracing::warn!(urls = ?opts.urls, "redis store not connected yet; reconnecting in the background")
            }
        }

        // The timeout comes from the pool's `default_command_timeout`: one timer per command.
        let options = Options { fail_fast: true, max_attempts: Some(1), ..Options::default() };
        let watchdog = Arc::new(Watchdog::new((command_timeout * 4).max(UNRESPONSIVE_AFTER_MIN)));
        Ok(RedisStore {
            pool,
            options,
            command_timeout,
            wait_replicas: 0,
            watchdog,
            _tasks: Arc::new(ConnectionTasks(tasks)),
        })
    }

    /// The underlying pool, for measuring the client library apart from this wrapper
    /// (`benches/roundtrip`'s `tuned-pool-N`).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Follow every write with `WAIT replicas` (see the module docs); 0 turns it off.
    pub fn with_wait_replicas(mut self, replicas: u32) -> Self {
        self.wait_replicas = replicas;
        self
    }

    /// The `WAIT` timeout: most of the command timeout, so `WAIT` answers (with too few
    /// acknowledgements) before the command itself times out.
    fn wait_timeout_ms(&self) -> i64 {
        i64::try_from(self.command_timeout.as_millis() * 4 / 5).unwrap_or(i64::MAX).max(1)
    }

    /// Run a write queued by `queue` on one pipeline, followed by `WAIT` (only called with
    /// `wait_replicas > 0`): one round trip. The replies of the queued commands, in order; an error
    /// when fewer than `wait_replicas` replicas acknowledged them.
    async fn run_waited<F, Fut>(&self, what: &'static str, queue: F) -> Result<Vec<Value>, StoreError>
    where
        F: FnOnce(WaitedPipeline) -> Fut,
        Fut: Future<Output = Result<WaitedPipeline, fred::error::Error>>,
    {
        let (replicas, wait_ms) = (self.wait_replicas, self.wait_timeout_ms());
        let mut values = self
            .run(what, |c| async move {
                let pipeline = queue(c.pipeline().with_options(c.options())).await?;
                pipeline.wait::<()>(i64::from(replicas), wait_ms).await?;
                pipeline.all::<Vec<Value>>().await
            })
            .await?;
        let acked = values.pop().and_then(|v| v.as_i64()).unwrap_or(0);
        if acked < i64::from(replicas) {
            return Err(StoreError::Unavailable(format!(
                "{what}: acknowledged by {acked} of the {replicas} replicas WAIT asked for within {wait_ms} ms"
            )));
        }
        Ok(values)
    }

    /// The client for the next command: the next connected one, round-robin.
    fn client(&self) -> &Client {
        self.pool.next_connected()
    }

    /// Run one store command with the shared options, mapping every failure to a [`StoreError`].
    /// fred's per-command timeout bounds it; a run of nothing but timeouts trips the [`Watchdog`].
    async fn run<T, F, Fut>(&self, what: &'static str, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(fred::clients::WithOptions<Client>) -> Fut,
        Fut: Future<Output = Result<T, fred::error::Error>>,
    {
        let client = self.client().with_options(&self.options);
        let result = f(client).await.map_err(|e| self.map_err(what, e));
        match &result {
            Ok(_) => self.watchdog.answered(),
            Err(StoreError::Timeout(_)) => {
                if self.watchdog.timed_out() {
                    self.force_reconnect();
                }
            }
            Err(_) => {}
        }
        result
    }

    /// Drop every connection and reconnect under the reconnect policy, in the background.
    fn force_reconnect(&self) {
        tracing::warn!("redis store answered nothing but timeouts; forcing a reconnect");
        let (pool, watchdog) = (self.pool.clone(), Arc::clone(&self.watchdog));
        tokio::spawn(async move {
            if let Err(e) = pool.force_reconnection().await {
                tracing::warn!(error = %e, "forced redis reconnect failed; the reconnect policy keeps trying");
            }
            watchdog.reconnected();
        });
    }

    fn timeout(&self) -> StoreError {
        StoreError::Timeout(u64::try_from(self.command_timeout.as_millis()).unwrap_or(u64::MAX))
    }

    fn map_err(&self, what: &'static str, e: fred::error::Error) -> StoreError {
        match e.kind() {
            ErrorKind::Timeout => self.timeout(),
            // A reply of the wrong shape (e.g. a set where a string was expected).
            ErrorKind::Parse => StoreError::Corrupt(what),
            _ => StoreError::Unavailable(format!("{what}: {e}")),
        }
    }
}

impl RedisStore {
    /// `CLUSTER SLOTS` on this node: each slot range (first, last, inclusive) with the `host:port`
    /// of the master serving it, by first slot (for [`super::redis_cluster`]).
    pub(crate) async fn cluster_slots(&self) -> Result<Vec<(u16, u16, Arc<str>)>, StoreError> {
        let value: Value = self.run("cluster_slots", |c| async move { c.cluster_slots::<Value>().await }).await?;
        let mut ranges = parse_cluster_slots(value).ok_or(StoreError::Corrupt("cluster_slots"))?;
        ranges.sort_by_key(|r| r.0);
        Ok(ranges)
    }
}

/// `CLUSTER SLOTS` reply: `[[first, last, [host, port, id, ..], replicas..], ..]`.
fn parse_cluster_slots(value: Value) -> Option<Vec<(u16, u16, Arc<str>)>> {
    let Value::Array(ranges) = value else { return None };
    let mut out = Vec::with_capacity(ranges.len());
    for range in ranges {
        let Value::Array(fields) = range else { return None };
        let first = u16::try_from(fields.first()?.as_i64()?).ok()?;
        let last = u16::try_from(fields.get(1)?.as_i64()?).ok()?;
        let Value::Array(master) = fields.get(2)? else { return None };
        let host = master.first()?.as_string()?;
        let port = master.get(1)?.as_i64()?;
        let host = if host.is_empty() { "127.0.0.1".to_owned() } else { host };
        out.push((first, last, Arc::from(format!("{host}:{port}"))));
    }
    Some(out)
}

impl RedisStore {
    /// A one-connection RESP3 store for a cached strategy's invalidation link (`cache::link`), on a
    /// single node, with [`RedisStore::connect`]'s connection policy. It does not wait for the
    /// connection: the link's heartbeat finds out when it is up. Also returns the client, on which
    /// the link sends `CLIENT TRACKING` and hears invalidations (`broadcast_capacity` of them may
    /// queue before the link's listener lags, which it treats as a gap).
    pub fn connect_tracking_link(
        opts: &RedisStoreOptions,
        broadcast_capacity: usize,
    ) -> Result<(Self, Client), StoreError> {
        let mut config = parse_urls(&opts.urls)?;
        if config.server.is_clustered() {
            return Err(StoreError::Unavailable("the invalidation link needs a single-node redis store".into()));
        }
        config.fail_fast = false;
        config.version = fred::types::RespVersion::RESP3;
        let command_timeout = opts.command_timeout;
        let unresponsive_after = (command_timeout * 4).max(Duration::from_secs(2));
        let pool = Builder::from_config(config)
            .with_performance_config(|perf| {
                perf.default_command_timeout = command_timeout;
                perf.broadcast_channel_capacity = broadcast_capacity;
            })
            .with_connection_config(|conn| {
                conn.connection_timeout = CONNECTION_TIMEOUT;
                conn.internal_command_timeout = INTERNAL_COMMAND_TIMEOUT;
                conn.max_command_attempts = 1;
                conn.unresponsive.max_timeout = Some(unresponsive_after);
                conn.unresponsive.interval = unresponsive_after / 4;
                conn.tcp.nodelay = Some(true);
            })
            .set_policy(ReconnectPolicy::new_exponential(0, RECONNECT_MIN_DELAY_MS, RECONNECT_MAX_DELAY_MS, 2))
            .build_pool(1)
            .map_err(|e| StoreError::Unavailable(format!("redis link: {e}")))?;
        let client = pool.next().clone();
        let tasks = pool.connect_pool();
        let options =
            Options { fail_fast: true, max_attempts: Some(1), timeout: Some(command_timeout), ..Options::default() };
        // Only misses and the link's heartbeats use this connection, so fred's own check (a timer
        // per turn of the connection task) costs little here, and it also covers the heartbeats,
        // which do not go through `run` (the watchdog sees only the misses).
        let watchdog = Arc::new(Watchdog::new(unresponsive_after));
        let store = RedisStore {
            pool,
            options,
            command_timeout,
            watchdog,
            // The link only reads.
            wait_replicas: 0,
            _tasks: Arc::new(ConnectionTasks(tasks)),
        };
        Ok((store, client))
    }
}

/// A store that accepts commands but never answers (stopped, swapping, a black-holed link) must be
/// treated as lost and reconnected, or every command would time out forever. The check runs on the
/// error path only: the first timeout after an answer starts a clock, any answer stops it, and
/// timeouts alone for `after` force a reconnect. (fred's built-in check does the same with a timer
/// armed on every turn of its connection task, a cost paid by every command.)
struct Watchdog {
    /// Time zero for `since_ms`.
    epoch: Instant,
    /// Milliseconds after `epoch` (plus one, so 0 means "answered since") of the first timeout with
    /// no answer after it.
    since_ms: AtomicU64,
    /// How long timeouts alone are tolerated.
    after: Duration,
    /// Set while a forced reconnect runs, so concurrent timeouts start only one.
    reconnecting: AtomicBool,
}

impl Watchdog {
    fn new(after: Duration) -> Self {
        Watchdog { epoch: Instant::now(), since_ms: AtomicU64::new(0), after, reconnecting: AtomicBool::new(false) }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    /// An answer came: the store is responsive. A load first, so the hot path does not write.
    fn answered(&self) {
        if self.since_ms.load(Ordering::Relaxed) != 0 {
            self.since_ms.store(0, Ordering::Relaxed);
        }
    }

    /// A command timed out; true when the caller should force a reconnect.
    fn timed_out(&self) -> bool {
        self.timed_out_at(self.now_ms())
    }

    fn timed_out_at(&self, now: u64) -> bool {
        match self.since_ms.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => false,
            Err(since) => {
                now.saturating_sub(since) >= u64::try_from(self.after.as_millis()).unwrap_or(u64::MAX)
                    && !self.reconnecting.swap(true, Ordering::AcqRel)
            }
        }
    }

    /// The forced reconnect ended: the clock starts again from the next timeout.
    fn reconnected(&self) {
        self.since_ms.store(0, Ordering::Relaxed);
        self.reconnecting.store(false, Ordering::Release);
    }
}

/// One URL: a single node (or, with a `redis-cluster://` scheme, a cluster). Several URLs: seed
/// nodes of one cluster, credentials taken from the first.
fn parse_urls(urls: &[String]) -> Result<Config, StoreError> {
    let invalid = |url: &str, e: fred::error::Error| StoreError::Unavailable(format!("invalid redis URL `{url}`: {e}"));
    match urls {
        [] => Err(StoreError::Unavailable("no redis URL given".into())),
        [url] => Config::from_url(url).map_err(|e| invalid(url, e)),
        [first, ..] => {
            let mut config = Config::from_url_clustered(first).map_err(|e| invalid(first, e))?;
            let mut hosts = Vec::new();
            for url in urls {
                let c = Config::from_url_clustered(url).map_err(|e| invalid(url, e))?;
                for host in c.server.hosts() {
                    if !hosts.contains(&host) {
                        hosts.push(host);
                    }
                }
            }
            config.server = ServerConfig::Clustered { hosts, policy: Default::default() };
            Ok(config)
        }
    }
}

/// The first reply of a waited pipeline, converted (a reply of the wrong shape is corrupt data).
fn first_reply<T: fred::types::FromValue>(values: Vec<Value>, what: &'static str) -> Result<T, StoreError> {
    let first = values.into_iter().next().ok_or(StoreError::Corrupt(what))?;
    first.convert().map_err(|_| StoreError::Corrupt(what))
}

fn millis(d: Duration) -> i64 {
    // At least 1 ms: `PX 0` is an error in Redis.
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
}

impl KvStore for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.run("get", |c| async move { c.get::<Option<Bytes>, _>(key).await }).await
    }

    async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<&str> = keys.to_vec();
        let n = keys.len();
        let values: Vec<Option<Bytes>> =
            self.run("mget", |c| async move { c.mget::<Vec<Option<Bytes>>, _>(keys).await }).await?;
        if values.len() == n { Ok(values) } else { Err(StoreError::Corrupt("mget")) }
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let value = Bytes::copy_from_slice(value);
        if self.wait_replicas > 0 {
            let expire = Some(Expiration::PX(millis(ttl)));
            return self
                .run_waited("set", |p| async move {
                    p.set::<(), _, _>(key, value, expire, None, false).await?;
                    Ok(p)
                })
                .await
                .map(|_| ());
        }
        self.run("set", |c| async move {
            c.set::<(), _, _>(key, value, Some(Expiration::PX(millis(ttl))), None, false).await
        })
        .await
    }

    async fn del(&self, keys: &[&str]) -> Result<u64, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let keys: Vec<&str> = keys.to_vec();
        if self.wait_replicas > 0 {
            let values = self
                .run_waited("del", |p| async move {
                    p.del::<(), _>(keys).await?;
                    Ok(p)
                })
                .await?;
            return first_reply(values, "del");
        }
        self.run("del", |c| async move { c.del::<u64, _>(keys).await }).await
    }

    async fn set_xx_get(&self, key: &str, value: &[u8]) -> Result<Option<Bytes>, StoreError> {
        let value = Bytes::copy_from_slice(value);
        // `SET key value KEEPTTL XX GET`: one atomic command (Redis >= 7.0 for XX with GET).
        if self.wait_replicas > 0 {
            let values = self
                .run_waited("set_xx_get", |p| async move {
                    p.set::<(), _, _>(key, value, Some(Expiration::KEEPTTL), Some(SetOptions::XX), true).await?;
                    Ok(p)
                })
                .await?;
            return first_reply(values, "set_xx_get");
        }
        self.run("set_xx_get", |c| async move {
            c.set::<Option<Bytes>, _, _>(key, value, Some(Expiration::KEEPTTL), Some(SetOptions::XX), true).await
        })
        .await
    }

    async fn sadd(&self, key: &str, member: &str, ttl: Duration) -> Result<(), StoreError> {
        let ms = millis(ttl);
        if self.wait_replicas > 0 {
            return self
                .run_waited("sadd", |p| async move {
                    p.sadd::<(), _, _>(key, member).await?;
                    p.pexpire::<(), _>(key, ms, None).await?;
                    Ok(p)
                })
                .await
                .map(|_| ());
        }
        self.run("sadd", |c| async move {
            // SADD + PEXPIRE queued in memory, then written together: one round trip.
            let pipeline = c.pipeline().with_options(c.options());
            pipeline.sadd::<(), _, _>(key, member).await?;
            pipeline.pexpire::<(), _>(key, ms, None).await?;
            pipeline.all::<Vec<fred::prelude::Value>>().await.map(|_| ())
        })
        .await
    }

    async fn smembers(&self, key: &str) -> Result<Vec<String>, StoreError> {
        self.run("smembers", |c| async move { c.smembers::<Vec<String>, _>(key).await }).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run("ping", |c| async move { c.ping::<()>(None).await }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_trips_once_after_timeouts_alone_and_an_answer_resets_it() {
        let w = Watchdog::new(Duration::from_millis(1_000));
        assert!(!w.timed_out_at(10), "the first timeout only starts the clock");
        assert!(!w.timed_out_at(900), "not yet: 890 ms of timeouts");
        w.answered();
        assert!(!w.timed_out_at(1_500), "an answer restarted the clock");
        assert!(w.timed_out_at(2_500), "1 s of nothing but timeouts: reconnect");
        assert!(!w.timed_out_at(2_600), "one reconnect at a time");
        w.reconnected();
        assert!(!w.timed_out_at(2_700), "after the reconnect the clock starts again");
        assert!(w.timed_out_at(3_700));
    }
}
