//! PLACEHOLDER: the Redis store (fred) is being implemented.

use std::time::Duration;

use bytes::Bytes;

use super::KvStore;
use crate::error::StoreError;

/// Connection settings, all explicit (fred's defaults are unbounded).
#[derive(Debug, Clone)]
pub struct RedisStoreOptions {
    /// `redis://` URLs: one for a single node, several for a cluster's seed nodes.
    pub urls: Vec<String>,
    pub pool_size: usize,
    pub command_timeout: Duration,
}

#[derive(Clone)]
pub struct RedisStore {}

impl RedisStore {
    pub async fn connect(_opts: RedisStoreOptions) -> Result<Self, StoreError> {
        Err(StoreError::Unavailable("not implemented".into()))
    }
}

impl KvStore for RedisStore {
    async fn get(&self, _key: &str) -> Result<Option<Bytes>, StoreError> {
        Err(StoreError::Unavailable("not implemented".into()))
    }
    async fn mget(&self, _keys: &[&str]) -> Result<Vec<Option<Bytes>>, StoreError> {
        Err(StoreError::Unavailable("not implemented".into()))
    }
    async fn set(&self, _key: &str, _value: &[u8], _ttl: Duration) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("not implemented".into()))
    }
    async fn del(&self, _keys: &[&str]) -> Result<u64, StoreError> {
        Err(StoreError::Unavailable("not implemented".into()))
    }
    async fn set_xx_get(&self, _key: &str, _value: &[u8]) -> Result<Option<Bytes>, StoreError> {
        Err(StoreError::Unavailable("not implemented".into()))
    }
    async fn sadd(&self, _key: &str, _member: &str, _ttl: Duration) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("not implemented".into()))
    }
    async fn smembers(&self, _key: &str) -> Result<Vec<String>, StoreError> {
        Err(StoreError::Unavailable("not implemented".into()))
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("not implemented".into()))
    }
}
