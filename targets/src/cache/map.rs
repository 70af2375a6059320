//! The read cache's storage: a bounded map in shards, each behind a short-held mutex, evicting the
//! oldest insertion first, and accounting the bytes its structures hold.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

/// Shards at most (fewer when the bound is smaller, so the bound holds exactly).
const MAX_SHARDS: usize = 16;

/// Heap bytes an `Arc<str>` allocation takes besides the string: the two reference counts.
const ARC_HEADER_BYTES: usize = 2 * std::mem::size_of::<usize>();

/// One cached answer.
struct Entry {
    /// Insertion number: the eviction queue's element for this entry carries the same one.
    seq: u64,
    /// `None`: the store said the key is absent.
    value: Option<Bytes>,
    /// When the owner last knew the value good (the stale copy's confirmation time, ns on its
    /// clock); 0 in the read cache, whose entries are good for as long as it is trusted.
    stamp: u64,
}

#[derive(Default)]
struct Shard {
    /// The entries of this shard's keys.
    map: HashMap<Arc<str>, Entry>,
    /// Insertion order for eviction; elements whose `seq` no longer matches are skipped.
    order: VecDeque<(u64, Arc<str>)>,
    /// The next insertion number (tells a queue element of a re-inserted key from its current entry).
    next_seq: u64,
    /// Key and value bytes of the live entries (their own allocations).
    payload_bytes: usize,
}

impl Shard {
    fn payload(key: &str, value: &Option<Bytes>) -> usize {
        ARC_HEADER_BYTES + key.len() + value.as_ref().map_or(0, Bytes::len)
    }

    fn remove(&mut self, key: &str) -> bool {
        match self.map.remove(key) {
            Some(e) => {
                self.payload_bytes -= Self::payload(key, &e.value);
                true
            }
            None => false,
        }
    }

    /// Evict the oldest live entry. Whether one was evicted.
    fn evict_oldest(&mut self) -> bool {
        while let Some((seq, key)) = self.order.pop_front() {
            if self.map.get(&*key).is_some_and(|e| e.seq == seq) {
                return self.remove(&key);
            }
        }
        false
    }

    /// Drop queue elements of entries that are gone, once the queue is twice the map's size.
    fn compact(&mut self) {
        if self.order.len() > 2 * self.map.len() + 16 {
            let map = &self.map;
            self.order.retain(|(seq, key)| map.get(&**key).is_some_and(|e| e.seq == *seq));
        }
    }
}

/// The shards, their bound and the total entry count.
pub(super) struct Shards {
    /// Each behind its own lock, so lookups of different keys rarely wait on each other.
    shards: Box<[Mutex<Shard>]>,
    /// Entries per shard at most.
    per_shard: usize,
    /// Hashes keys to their shard and epoch stripe (randomly keyed: keys come from clients).
    hasher: std::hash::RandomState,
    /// Entries over all shards (kept under the shard locks).
    len: AtomicUsize,
}

impl Shards {
    pub(super) fn new(max_entries: usize) -> Self {
        let max_entries = max_entries.max(1);
        let n = MAX_SHARDS.min(max_entries);
        Shards {
            shards: (0..n).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: max_entries / n,
            hasher: std::hash::RandomState::new(),
            len: AtomicUsize::new(0),
        }
    }

    pub(super) fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    fn shard(&self, hash: u64) -> MutexGuard<'_, Shard> {
        // High bits pick the shard (the low bits pick the epoch stripe).
        let i = ((hash >> 32) as usize) % self.shards.len();
        // A poisoned shard only means a panic elsewhere mid-update of plain data: keep going.
        self.shards[i].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn get(&self, hash: u64, key: &str) -> Option<Option<Bytes>> {
        self.shard(hash).map.get(key).map(|e| e.value.clone())
    }

    /// The value at `key` and its stamp.
    pub(super) fn get_stamped(&self, hash: u64, key: &str) -> Option<(Option<Bytes>, u64)> {
        self.shard(hash).map.get(key).map(|e| (e.value.clone(), e.stamp))
    }

    /// If `key` holds exactly `value`, set its stamp and say so (no allocation): the common case of
    /// a stale copy re-confirming an answer it already has.
    pub(super) fn restamp_if_same(&self, hash: u64, key: &str, value: &[u8], stamp: u64) -> bool {
        let mut shard = self.shard(hash);
        match shard.map.get_mut(key) {
            Some(e) if e.value.as_deref() == Some(value) => {
                e.stamp = stamp;
                true
            }
            _ => false,
        }
    }

    /// Every entry holding a value (not the known-absent ones), with its key, shard by shard.
    pub(super) fn for_each_present(&self, mut f: impl FnMut(&str, &Bytes)) {
        for s in &self.shards {
            let shard = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (key, e) in &shard.map {
                if let Some(v) = &e.value {
                    f(key, v);
                }
            }
        }
    }

    /// Insert when `valid()` holds under the lock; `None` when it did not, else how many entries
    /// were evicted to make room.
    pub(super) fn insert_if(
        &self,
        hash: u64,
        key: &str,
        value: Option<Bytes>,
        valid: impl FnOnce() -> bool,
    ) -> Option<u64> {
        self.insert_stamped(hash, key, value, 0, valid)
    }

    /// [`Shards::insert_if`] with a stamp kept beside the value.
    pub(super) fn insert_stamped(
        &self,
        hash: u64,
        key: &str,
        value: Option<Bytes>,
        stamp: u64,
        valid: impl FnOnce() -> bool,
    ) -> Option<u64> {
        let mut shard = self.shard(hash);
        if !valid() {
            return None;
        }
        let mut evicted = 0;
        if shard.remove(key) {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
        while shard.map.len() >= self.per_shard && shard.evict_oldest() {
            self.len.fetch_sub(1, Ordering::Relaxed);
            evicted += 1;
        }
        let seq = shard.next_seq;
        shard.next_seq += 1;
        shard.payload_bytes += Shard::payload(key, &value);
        let key: Arc<str> = Arc::from(key);
        shard.order.push_back((seq, key.clone()));
        shard.map.insert(key, Entry { seq, value, stamp });
        shard.compact();
        self.len.fetch_add(1, Ordering::Relaxed);
        Some(evicted)
    }

    /// Remove `key`, running `under_lock` while its shard is locked (fills check under it too).
    pub(super) fn remove_with(&self, hash: u64, key: &str, under_lock: impl FnOnce()) {
        let mut shard = self.shard(hash);
        under_lock();
        if shard.remove(key) {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub(super) fn clear(&self) {
        for s in &self.shards {
            let mut shard = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let n = shard.map.len();
            *shard = Shard::default();
            self.len.fetch_sub(n, Ordering::Relaxed);
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub(super) fn max_entries(&self) -> usize {
        self.per_shard * self.shards.len()
    }

    /// Bytes held: every slot the maps and queues have allocated (at their capacity, not just the
    /// used ones) plus the keys' and values' own allocations. Allocator overhead is not included.
    pub(super) fn accounted_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(Arc<str>, Entry)>() + 1; // + hashbrown's control byte
        let queued = std::mem::size_of::<(u64, Arc<str>)>();
        self.shards
            .iter()
            .map(|s| {
                let shard = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                shard.map.capacity() * slot + shard.order.capacity() * queued + shard.payload_bytes
            })
            .sum()
    }
}
