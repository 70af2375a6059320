//! Graceful degradation (seed 002, pitfall 4: "stale session caching to keep users authenticated
//! through brief outages"): the last answers the store gave, kept so that a store *error* can be
//! answered from them for a bounded time (`--stale-grace`), instead of failing closed at once.
//!
//! The bound is on the answer's age: a value is served only while it was last known good at most
//! `grace` ago. What "known good" means depends on who fills the copy:
//! - `session` remembers every answer its store gave, stamped when it came. It hears nothing of
//!   another instance's logout, so during an outage a session revoked elsewhere up to `grace`
//!   before is still accepted here: the cost the report measures.
//! - `session-cached` hands its read cache over when the cache stops being trusted, stamped with
//!   the moment trust ended: those entries were kept coherent by Redis's invalidations up to then,
//!   so a revocation made before the link broke is not served from the copy. Reads made while the
//!   cache was not trusted are not kept (Redis does not track them, so nothing would invalidate
//!   them; found by `scenarios/degradation.toml`, where such a read let a revoked session back in).
//!
//! Either way the copy is consulted only when the store cannot answer; a store that answers always
//! wins, refreshes the copy (present) or removes the key (absent). Its own logout or revoke forgets
//! the key here at once. Bounded by `--cache-max-entries`, oldest insertion evicted first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::map::Shards;
use crate::metrics::MetricsSection;

/// The last answers of the store, for answering through a store outage.
pub struct StaleCopy {
    /// key -> last value the store (or a trusted cache) gave, stamped with when it was known good.
    entries: Shards,
    /// How old a stamp may be and still be served.
    grace: Duration,
    /// The clock stamps count from.
    base: Instant,
    /// Store errors answered from the copy.
    served: AtomicU64,
    /// Store errors the copy could not answer (no entry, or older than `grace`): failed closed.
    refused: AtomicU64,
}

impl StaleCopy {
    pub fn new(max_entries: usize, grace: Duration) -> Self {
        StaleCopy {
            entries: Shards::new(max_entries),
            grace,
            base: Instant::now(),
            served: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Nanoseconds on this copy's clock at `at`.
    fn ns(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX).max(1)
    }

    /// The store just answered `value` for `key`: keep it (stamped now), or forget an absent key.
    pub fn remember(&self, key: &str, value: Option<&Bytes>) {
        match value {
            Some(v) => self.keep(key, v, Instant::now()),
            None => self.forget(key),
        }
    }

    /// Keep `value` for `key`, known good at `at`.
    pub fn keep(&self, key: &str, value: &Bytes, at: Instant) {
        let hash = self.entries.hash(key);
        if self.entries.restamp_if_same(hash, key, value, self.ns(at)) {
            return;
        }
        // Own the bytes: a reply slice may pin the client's whole read buffer.
        let value = Some(Bytes::copy_from_slice(value));
        let _ = self.entries.insert_stamped(hash, key, value, self.ns(at), || true);
    }

    /// This instance wrote `key` (logout, revoke) or heard it changed: never serve it again.
    pub fn forget(&self, key: &str) {
        self.entries.remove_with(self.entries.hash(key), key, || {});
    }

    /// The store failed on `key`: the kept value if it was known good within the grace.
    pub fn recall(&self, key: &str) -> Option<Bytes> {
        let now = self.ns(Instant::now());
        let grace_ns = u64::try_from(self.grace.as_nanos()).unwrap_or(u64::MAX);
        let found = self.entries.get_stamped(self.entries.hash(key), key);
        match found {
            Some((Some(v), stamp)) if now.saturating_sub(stamp) <= grace_ns => {
                self.served.fetch_add(1, Ordering::Relaxed);
                Some(v)
            }
            _ => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Store errors answered from the copy so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Store errors the copy could not answer so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Forget everything (the store itself was emptied).
    pub fn clear(&self) {
        self.entries.clear();
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the copy holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Take over every present entry of a read cache that is about to be flushed, known good at
    /// `trusted_until` (when the cache's trust ended).
    pub(super) fn take_over(&self, cache: &Shards, trusted_until: Instant) {
        cache.for_each_present(|key, value| self.keep(key, value, trusted_until));
    }
}

impl MetricsSection for StaleCopy {
    fn render(&self, strategy: &str, out: &mut String) {
        use std::fmt::Write as _;
        out.push_str(
            "# HELP authbench_stale_reads_total Store errors answered from the stale copy (served) or not (refused).\n",
        );
        out.push_str("# TYPE authbench_stale_reads_total counter\n");
        for (what, n) in [("served", self.served()), ("refused", self.refused())] {
            let _ = writeln!(out, "authbench_stale_reads_total{{strategy=\"{strategy}\",outcome=\"{what}\"}} {n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_only_within_the_grace_and_never_a_forgotten_key() {
        let copy = StaleCopy::new(100, Duration::from_millis(200));
        copy.remember("s:a", Some(&Bytes::from_static(b"alice")));
        copy.remember("s:b", Some(&Bytes::from_static(b"bob")));
        assert_eq!(copy.recall("s:a").as_deref(), Some(&b"alice"[..]));
        copy.forget("s:a");
        assert_eq!(copy.recall("s:a"), None, "a logged-out session came back");
        copy.remember("s:b", None);
        assert_eq!(copy.recall("s:b"), None, "the store said absent");
        let old = Instant::now().checked_sub(Duration::from_secs(1)).expect("clock");
        copy.keep("s:c", &Bytes::from_static(b"carol"), old.max(copy.base));
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(copy.recall("s:c"), None, "served past the grace");
        assert_eq!((copy.served(), copy.refused()), (1, 3));
    }

    #[test]
    fn bounded() {
        let copy = StaleCopy::new(32, Duration::from_secs(5));
        for i in 0..1000 {
            copy.remember(&format!("s:{i}"), Some(&Bytes::from_static(b"v")));
        }
        assert!(copy.len() <= 32, "{}", copy.len());
    }
}
