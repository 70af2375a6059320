//! The store seam: the few key-value operations every strategy needs, behind one trait, with three
//! implementations (`memory` in-process, `redis` and `postgres` over TCP) and one enum the application picks from.
//!
//! Strategies never see which store they run on; they call [`Store`], which counts every operation by
//! command (for `/metrics` and the report's store load) and forwards to the chosen implementation.
//! Keys that one operation touches together carry the same `{hash tag}` so the same calls stay valid
//! on a Redis Cluster.

pub mod memory;
pub mod postgres;
pub mod redis;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::error::StoreError;
use crate::metrics::Metrics;

pub use self::memory::MemoryStore;
pub use self::postgres::{PostgresStore, PostgresStoreOptions};
pub use self::redis::{RedisStore, RedisStoreOptions};

/// The store commands authbench issues, named after the Redis command each becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    Get,
    Mget,
    Set,
    Del,
    /// `SET key value XX KEEPTTL GET`: replace an existing value and return the old one, atomically.
    SetXxGet,
    Sadd,
    Smembers,
    Ping,
}

impl Command {
    pub const ALL: [Command; 8] = [
        Command::Get,
        Command::Mget,
        Command::Set,
        Command::Del,
        Command::SetXxGet,
        Command::Sadd,
        Command::Smembers,
        Command::Ping,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Command::Get => "get",
            Command::Mget => "mget",
            Command::Set => "set",
            Command::Del => "del",
            Command::SetXxGet => "set_xx_get",
            Command::Sadd => "sadd",
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
            Backend::Redis(_) => "redis",
            Backend::Postgres(_) => "postgres",
        }
    }

    fn account<T>(&self, cmd: Command, result: Result<T, StoreError>) -> Result<T, StoreError> {
        self.metrics.store_op(cmd, result.is_ok());
        if let Err(e) = &result {
            tracing::warn!(command = cmd.name(), error = %e, "store operation failed");
        }
        result
    }

    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let r = match &self.backend {
            Backend::Memory(s) => s.get(key).await,
            Backend::Redis(s) => s.get(key).await,
            Backend::Postgres(s) => s.get(key).await,
        };
        self.account(Command::Get, r)
    }

    pub async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>, StoreError> {
        let r = match &self.backend {
            Backend::Memory(s) => s.mget(keys).await,
            Backend::Redis(s) => s.mget(keys).await,
            Backend::Postgres(s) => s.mget(keys).await,
        };
        self.account(Command::Mget, r)
    }

    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let r = match &self.backend {
            Backend::Memory(s) => s.set(key, value, ttl).await,
            Backend::Redis(s) => s.set(key, value, ttl).await,
            Backend::Postgres(s) => s.set(key, value, ttl).await,
        };
        self.account(Command::Set, r)
    }

    pub async fn del(&self, keys: &[&str]) -> Result<u64, StoreError> {
        let r = match &self.backend {
            Backend::Memory(s) => s.del(keys).await,
            Backend::Redis(s) => s.del(keys).await,
            Backend::Postgres(s) => s.del(keys).await,
        };
        self.account(Command::Del, r)
    }

    pub async fn set_xx_get(&self, key: &str, value: &[u8]) -> Result<Option<Bytes>, StoreError> {
        let r = match &self.backend {
            Backend::Memory(s) => s.set_xx_get(key, value).await,
            Backend::Redis(s) => s.set_xx_get(key, value).await,
            Backend::Postgres(s) => s.set_xx_get(key, value).await,
        };
        self.account(Command::SetXxGet, r)
    }

    pub async fn sadd(&self, key: &str, member: &str, ttl: Duration) -> Result<(), StoreError> {
        let r = match &self.backend {
            Backend::Memory(s) => s.sadd(key, member, ttl).await,
            Backend::Redis(s) => s.sadd(key, member, ttl).await,
            Backend::Postgres(s) => s.sadd(key, member, ttl).await,
        };
        self.account(Command::Sadd, r)
    }

    pub async fn smembers(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let r = match &self.backend {
            Backend::Memory(s) => s.smembers(key).await,
            Backend::Redis(s) => s.smembers(key).await,
            Backend::Postgres(s) => s.smembers(key).await,
        };
        self.account(Command::Smembers, r)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let r = match &self.backend {
            Backend::Memory(s) => s.ping().await,
            Backend::Redis(s) => s.ping().await,
            Backend::Postgres(s) => s.ping().await,
        };
        self.account(Command::Ping, r)
    }
}
