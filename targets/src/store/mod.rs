//! The store seam: the few key-value operations every strategy needs, behind one trait, with three
//! implementations (`memory` in-process, `redis` (one node, or a cluster's masters by hash slot)
//! and `postgres` over TCP) and one enum the application picks from.
//!
//! Strategies never see which store they run on; they call [`Store`], which counts every operation by
//! command (for `/metrics` and the report's store load) and forwards to the chosen implementation.
//! Keys that one operation touches together carry the same `{hash tag}` so the same calls stay valid
//! on a Redis Cluster.
//!
//! **One vocabulary of commands.** Every store counts what it does in Redis's command names, lower
//! case, as `INFO commandstats` names them ([`Command`]): an operation is counted as the Redis
//! commands it becomes on the wire, so the in-process store's `/metrics` and Redis's own counters
//! give the same per-command figures for the same workload (`harness/tests/store_vocabulary.rs`
//! checks it). The mapping:
//!
//! | operation | commands counted |
//! |---|---|
//! | `get` | `get` |
//! | `mget` | `mget` |
//! | `set` | `set` (`SET key value PX ttl`) |
//! | `set_xx_get` | `set` (`SET key value XX KEEPTTL GET`) |
//! | `del` | `del` |
//! | `sadd` | `sadd` + `pexpire` (one pipelined round trip) |
//! | `smembers` | `smembers` |
//! | `ping` | `ping` |
//!
//! **What a store operation costs the target.** In the committed sample report (README, git
//! 642a149) the session target spends (24.9 − 8.54) / 1.22 ≈ 13 µs of CPU per Redis operation above
//! the `none` control: the client library's round trip plus the request's own extra work (sha256 of
//! the session id, key formatting, the wait that breaks up the runtime's batching).
//! `scripts/store-roundtrip` measures the client library's share alone (client CPU per GET, pinned,
//! at a target's concurrency) for this store and for the alternatives, in one run.

pub mod memory;
pub mod postgres;
pub mod redis;
pub mod redis_cluster;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::error::StoreError;
use crate::metrics::Metrics;

pub use self::memory::MemoryStore;
pub use self::postgres::{PostgresStore, PostgresStoreOptions};
pub use self::redis::{RedisStore, RedisStoreOptions};
pub use self::redis_cluster::RedisClusterStore;

/// The vocabulary of store commands: the Redis commands the [`KvStore`] operations become, named as
/// Redis's `INFO commandstats` names them (lower case). Every store counts in this vocabulary, so a
/// per-command figure means the same on every store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    Get,
    Mget,
    /// `SET`, with or without options: [`KvStore::set`] and [`KvStore::set_xx_get`] both.
    Set,
    Del,
    Sadd,
    /// The expiry half of [`KvStore::sadd`].
    Pexpire,
    Smembers,
    Ping,
}

impl Command {
    pub const ALL: [Command; 8] = [
        Command::Get,
        Command::Mget,
        Command::Set,
        Command::Del,
        Command::Sadd,
        Command::Pexpire,
        Command::Smembers,
        Command::Ping,
    ];

    /// The command's name in Redis's `INFO commandstats` (`cmdstat_<name>`).
    pub const fn name(self) -> &'static str {
        match self {
            Command::Get => "get",
            Command::Mget => "mget",
            Command::Set => "set",
            Command::Del => "del",
            Command::Sadd => "sadd",
            Command::Pexpire => "pexpire",
            Command::Smembers => "smembers",
            Command::Ping => "ping",
        }
    }

    pub const fn index(self) -> usize {
        self as usize
    }
}

/// The operations a store must provide. Each is one round trip on a networked store.
pub trait KvStore: Send + Sync + 'static {
    /// The value at `key`, or `None` when it is missing or expired.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Bytes>, StoreError>> + Send;
    /// Several values in one command; all keys must share a hash tag.
    fn mget(&self, keys: &[&str]) -> impl Future<Output = Result<Vec<Option<Bytes>>, StoreError>> + Send;
    /// Set `key` to `value`, expiring after `ttl`.
    fn set(&self, key: &str, value: &[u8], ttl: Duration) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Delete keys; returns how many existed.
    fn del(&self, keys: &[&str]) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Atomically replace the value of an *existing* key (keeping its TTL) and return the old value;
    /// `None` (and no write) when the key does not exist. This is what makes a refresh token
    /// redeemable at most once, even under concurrent redemption.
    fn set_xx_get(&self, key: &str, value: &[u8]) -> impl Future<Output = Result<Option<Bytes>, StoreError>> + Send;
    /// Add `member` to the set at `key` and (re)set the set's expiry to `ttl`.
    fn sadd(&self, key: &str, member: &str, ttl: Duration) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// All members of the set at `key` (empty when missing).
    fn smembers(&self, key: &str) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// A round trip that proves the store answers.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Which implementation a target runs on.
#[derive(Clone)]
pub enum Backend {
    Memory(Arc<MemoryStore>),
    Redis(RedisStore),
    /// A Redis Cluster: a [`RedisStore`] per master, each operation sent by its key's slot.
    RedisCluster(RedisClusterStore),
    Postgres(PostgresStore),
}

/// The store handle strategies hold: the chosen backend plus per-command accounting.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// Counts every operation and failure by command, for `/metrics`.
    metrics: Arc<Metrics>,
}

impl Store {
    pub fn new(backend: Backend, metrics: Arc<Metrics>) -> Self {
        Store { backend, metrics }
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// `"memory"`, `"redis"` or `"postgres"`, for logs and reports.
    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Memory(_) => "memory",
            Backend::Redis(_) | Backend::RedisCluster(_) => "redis",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Count the commands one operation sent (see [`Command`]); a failed operation counts a failure
    /// for each of them, since none is known to have run.
    fn account<T>(&self, cmds: &[Command], result: Result<T, StoreError>) -> Result<T, StoreError> {
        for &cmd in cmds {
            self.metrics.store_op(cmd, result.is_ok());
        }
        if let Err(e) = &result {
            let command = cmds.first().map_or("none", |c| c.name());
            tracing::warn!(command, error = %e, "store operation failed");
        }
        result
    }

    /// Run one operation: counted in flight while it runs, then accounted by its commands.
    async fn op<T>(&self, cmds: &[Command], run: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        let in_flight = self.metrics.store_started();
        let result = run.await;
        drop(in_flight);
        self.account(cmds, result)
    }

    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.op(&[Command::Get], async {
            match &self.backend {
                Backend::Memory(s) => s.get(key).await,
                Backend::Redis(s) => s.get(key).await,
                Backend::RedisCluster(s) => s.get(key).await,
                Backend::Postgres(s) => s.get(key).await,
            }
        })
        .await
    }

    pub async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>, StoreError> {
        self.op(&[Command::Mget], async {
            match &self.backend {
                Backend::Memory(s) => s.mget(keys).await,
                Backend::Redis(s) => s.mget(keys).await,
                Backend::RedisCluster(s) => s.mget(keys).await,
                Backend::Postgres(s) => s.mget(keys).await,
            }
        })
        .await
    }

    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        self.op(&[Command::Set], async {
            match &self.backend {
                Backend::Memory(s) => s.set(key, value, ttl).await,
                Backend::Redis(s) => s.set(key, value, ttl).await,
                Backend::RedisCluster(s) => s.set(key, value, ttl).await,
                Backend::Postgres(s) => s.set(key, value, ttl).await,
            }
        })
        .await
    }

    pub async fn del(&self, keys: &[&str]) -> Result<u64, StoreError> {
        self.op(&[Command::Del], async {
            match &self.backend {
                Backend::Memory(s) => s.del(keys).await,
                Backend::Redis(s) => s.del(keys).await,
                Backend::RedisCluster(s) => s.del(keys).await,
                Backend::Postgres(s) => s.del(keys).await,
            }
        })
        .await
    }

    pub async fn set_xx_get(&self, key: &str, value: &[u8]) -> Result<Option<Bytes>, StoreError> {
        self.op(&[Command::Set], async {
            match &self.backend {
                Backend::Memory(s) => s.set_xx_get(key, value).await,
                Backend::Redis(s) => s.set_xx_get(key, value).await,
                Backend::RedisCluster(s) => s.set_xx_get(key, value).await,
                Backend::Postgres(s) => s.set_xx_get(key, value).await,
            }
        })
        .await
    }

    pub async fn sadd(&self, key: &str, member: &str, ttl: Duration) -> Result<(), StoreError> {
        self.op(&[Command::Sadd, Command::Pexpire], async {
            match &self.backend {
                Backend::Memory(s) => s.sadd(key, member, ttl).await,
                Backend::Redis(s) => s.sadd(key, member, ttl).await,
                Backend::RedisCluster(s) => s.sadd(key, member, ttl).await,
                Backend::Postgres(s) => s.sadd(key, member, ttl).await,
            }
        })
        .await
    }

    pub async fn smembers(&self, key: &str) -> Result<Vec<String>, StoreError> {
        self.op(&[Command::Smembers], async {
            match &self.backend {
                Backend::Memory(s) => s.smembers(key).await,
                Backend::Redis(s) => s.smembers(key).await,
                Backend::RedisCluster(s) => s.smembers(key).await,
                Backend::Postgres(s) => s.smembers(key).await,
            }
        })
        .await
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.op(&[Command::Ping], async {
            match &self.backend {
                Backend::Memory(s) => s.ping().await,
                Backend::Redis(s) => s.ping().await,
                Backend::RedisCluster(s) => s.ping().await,
                Backend::Postgres(s) => s.ping().await,
            }
        })
        .await
    }
}
