//! The in-process store: sharded hash maps behind short-held mutexes, with TTLs enforced on every
//! read and expired entries swept in the background so memory stays bounded by live records.
//!
//! It answers the same [`KvStore`] operations as Redis with the same atomicity (each operation holds
//! its shard's lock for its whole read-modify-write), so strategies behave identically on both.

use std::collections::hash_map::{DefaultHasher, Entry as MapEntry};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::KvStore;
use crate::error::StoreError;

/// Independent locks, so concurrent requests on different keys rarely contend.
const SHARDS: usize = 64;

enum Value {
    Bytes(Bytes),
    Set(HashSet<Box<str>>),
}

struct Entry {
    value: Value,
    /// Absolute expiry; a read at or after it sees the key as missing.
    expires_at: Instant,
}

type Shard = HashMap<Box<str>, Entry>;

pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore { shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect() }
    }

    /// Start the background sweep that drops expired entries every `interval`. It stops when the
    /// store is dropped.
    pub fn spawn_sweeper(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(store) = weak.upgrade() else { break };
                store.sweep(Instant::now());
            }
        })
    }

    /// Drop every entry expired at `now`; returns how many were dropped.
    pub fn sweep(&self, now: Instant) -> usize {
        let mut dropped = 0;
        for shard in self.shards.iter() {
            let mut map = lock(shard);
            let before = map.len();
            map.retain(|_, e| e.expires_at > now);
            dropped += before - map.len();
        }
        dropped
    }

    /// Live and not-yet-swept entries, for `/metrics`.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        lock(&self.shards[(h.finish() as usize) % SHARDS])
    }

    fn get_now(&self, key: &str, now: Instant) -> Option<Bytes> {
        let mut map = self.shard(key);
        match map.get(key) {
            Some(e) if e.expires_at <= now => {
                map.remove(key);
                None
            }
            Some(Entry { value: Value::Bytes(b), .. }) => Some(b.clone()),
            _ => None,
        }
    }
}

/// A poisoned shard only means another request panicked mid-operation; every operation leaves the
/// map consistent, so keep serving rather than turning one bug into an outage.
fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl KvStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        Ok(self.get_now(key, Instant::now()))
    }

    async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>, StoreError> {
        let now = Instant::now();
        Ok(keys.iter().map(|k| self.get_now(k, now)).collect())
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let entry = Entry { value: Value::Bytes(Bytes::copy_from_slice(value)), expires_at: Instant::now() + ttl };
        self.shard(key).insert(key.into(), entry);
        Ok(())
    }

    async fn del(&self, keys: &[&str]) -> Result<u64, StoreError> {
        let now = Instant::now();
        let mut n = 0;
        for k in keys {
            if let Some(e) = self.shard(k).remove(*k) {
                n += u64::from(e.expires_at > now);
            }
        }
        Ok(n)
    }

    async fn set_xx_get(&self, key: &str, value: &[u8]) -> Result<Option<Bytes>, StoreError> {
        let now = Instant::now();
        let mut map = self.shard(key);
        match map.entry(key.into()) {
            MapEntry::Occupied(mut o) => {
                if o.get().expires_at <= now {
                    o.remove();
                    return Ok(None);
                }
                match &mut o.get_mut().value {
                    Value::Bytes(b) => Ok(Some(std::mem::replace(b, Bytes::copy_from_slice(value)))),
                    Value::Set(_) => Err(StoreError::Corrupt("set_xx_get on a set")),
                }
            }
            MapEntry::Vacant(_) => Ok(None),
        }
    }

    async fn sadd(&self, key: &str, member: &str, ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut map = self.shard(key);
        let e = map.entry(key.into()).or_insert_with(|| Entry { value: Value::Set(HashSet::new()), expires_at: now });
        if e.expires_at <= now {
            e.value = Value::Set(HashSet::new());
        }
        e.expires_at = now + ttl;
        match &mut e.value {
            Value::Set(s) => {
                s.insert(member.into());
                Ok(())
            }
            Value::Bytes(_) => Err(StoreError::Corrupt("sadd on a string")),
        }
    }

    async fn smembers(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let now = Instant::now();
        let map = self.shard(key);
        match map.get(key) {
            Some(Entry { value: Value::Set(s), expires_at }) if *expires_at > now => {
                Ok(s.iter().map(|m| m.to_string()).collect())
            }
            _ => Ok(Vec::new()),
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ttl_enforced_on_read_and_swept() {
        let s = MemoryStore::new();
        s.set("a", b"1", Duration::from_millis(30)).await.unwrap();
        s.set("b", b"2", Duration::from_secs(60)).await.unwrap();
        assert_eq!(s.get("a").await.unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(s.sweep(Instant::now() + Duration::from_millis(31)), 1);
        assert_eq!(s.get("a").await.unwrap(), None);
        assert_eq!(s.len(), 1);
    }

    #[tokio::test]
    async fn set_xx_get_is_redeem_once() {
        let s = MemoryStore::new();
        assert_eq!(s.set_xx_get("k", b"used").await.unwrap(), None);
        assert_eq!(s.get("k").await.unwrap(), None, "XX must not create the key");
        s.set("k", b"live", Duration::from_secs(60)).await.unwrap();
        assert_eq!(s.set_xx_get("k", b"used").await.unwrap().as_deref(), Some(&b"live"[..]));
        assert_eq!(s.set_xx_get("k", b"used").await.unwrap().as_deref(), Some(&b"used"[..]));
    }

    #[tokio::test]
    async fn sets_and_del() {
        let s = MemoryStore::new();
        s.sadd("u", "a", Duration::from_secs(60)).await.unwrap();
        s.sadd("u", "b", Duration::from_secs(60)).await.unwrap();
        let mut m = s.smembers("u").await.unwrap();
        m.sort();
        assert_eq!(m, ["a", "b"]);
        assert_eq!(s.del(&["u", "missing"]).await.unwrap(), 1);
        assert!(s.smembers("u").await.unwrap().is_empty());
    }
}
