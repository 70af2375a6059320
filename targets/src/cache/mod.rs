//! The in-process read cache of the cached strategies (`session-cached`, `jwt-denylist-cached`):
//! what a store answered for a key, absent keys included, kept until Redis says the key changed.
//!
//! This module owns three things:
//! - [`ReadCache`]: a bounded map (at most `max_entries`, oldest insertion evicted first) of key ->
//!   `Option<value>` (`None`: the store said the key does not exist: the denylist's common answer);
//! - **trust**: the cache answers only while its invalidation link is known to be intact (a lease
//!   the link renews, see [`link`]); when trust is lost the cache is flushed, and it is flushed again
//!   before it is trusted anew, so an entry cached before a gap in the invalidation stream is never
//!   served after it;
//! - **fill tickets**: a read that missed takes a [`Ticket`] before it asks the store, and its answer
//!   is only cached if no invalidation of that key (and no flush) happened in between. Without it, an
//!   invalidation that overtakes the answer it invalidates would leave a stale entry forever.
//!
//! [`Reads`] is what strategies hold: the direct store, or the cache in front of it.

pub mod link;
mod map;
pub mod stale;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::StoreSpec;
use crate::error::StoreError;
use crate::metrics::MetricsSection;
use crate::store::{RedisStoreOptions, Store};
use crate::strategy::BuildContext;

use self::map::Shards;
use self::stale::StaleCopy;

/// Invalidation epochs are kept per stripe of the key space, so an invalidation only spoils the
/// fills of keys in its stripe.
const STRIPES: usize = 1024;

/// What the cache counts, each a `authbench_cache_events_total{event=...}` sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A read answered from the cache.
    Hit,
    /// A read the cache did not hold, sent to the store (and cached when its ticket was still good).
    Miss,
    /// A read sent to the store because the cache was not trusted at that moment.
    Bypass,
    /// A miss's answer stored in the cache.
    Fill,
    /// A miss's answer not stored because an invalidation or flush came while it was in flight.
    FillRejected,
    /// An entry removed to stay within `max_entries`.
    Eviction,
    /// A key named by an invalidation message (or by this instance's own write).
    Invalidation,
    /// The whole cache dropped: trust lost or regained, an invalidation stream gap, a flush message.
    Flush,
}

impl Event {
    pub const ALL: [Event; 8] = [
        Event::Hit,
        Event::Miss,
        Event::Bypass,
        Event::Fill,
        Event::FillRejected,
        Event::Eviction,
        Event::Invalidation,
        Event::Flush,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Event::Hit => "hit",
            Event::Miss => "miss",
            Event::Bypass => "bypass",
            Event::Fill => "fill",
            Event::FillRejected => "fill_rejected",
            Event::Eviction => "eviction",
            Event::Invalidation => "invalidation",
            Event::Flush => "flush",
        }
    }
}

/// Taken by a read before it asks the store: the epochs its answer must still match to be cached.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    flush: u64,
    stripe: u64,
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    /// The cached answer (`None`: the key is known absent).
    Hit(Option<Bytes>),
    /// Not cached: ask the store, then [`ReadCache::fill`] with this ticket.
    Miss(Ticket),
    /// The cache is not trusted now: ask the store and do not cache the answer.
    Untrusted,
}

/// The bounded, invalidated, trust-gated cache. Shared by the request path and the link's tasks.
pub struct ReadCache {
    /// The entries, in shards behind short-held mutexes.
    shards: Shards,
    /// Bumped by every flush; a ticket from before it is void.
    flush_epoch: AtomicU64,
    /// Bumped by every invalidation of a key in the stripe; a ticket from before it is void.
    stripe_epochs: Box<[AtomicU64]>,
    /// Nanoseconds since `base` until which the cache may answer; 0 = not trusted.
    trusted_until_ns: AtomicU64,
    /// The clock `trusted_until_ns` counts from.
    base: Instant,
    /// One counter per [`Event`].
    events: [AtomicU64; Event::ALL.len()],
    /// With `--stale-grace`: takes the entries over when trust is withdrawn, so a store outage
    /// can be answered from what the cache knew when it was last trustworthy.
    heir: std::sync::OnceLock<Arc<StaleCopy>>,
}

impl ReadCache {
    /// An empty, untrusted cache of at most `max_entries` entries (at least one per shard).
    pub fn new(max_entries: usize) -> Self {
        ReadCache {
            shards: Shards::new(max_entries),
            flush_epoch: AtomicU64::new(0),
            stripe_epochs: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            trusted_until_ns: AtomicU64::new(0),
            base: Instant::now(),
            events: std::array::from_fn(|_| AtomicU64::new(0)),
            heir: std::sync::OnceLock::new(),
        }
    }

    /// Hand the entries to `heir` whenever trust is withdrawn (see [`StaleCopy`]).
    pub fn set_heir(&self, heir: Arc<StaleCopy>) {
        let _ = self.heir.set(heir);
    }

    fn count(&self, event: Event, n: u64) {
        self.events[event as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// How often `event` happened so far.
    pub fn events(&self, event: Event) -> u64 {
        self.events[event as usize].load(Ordering::Relaxed)
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether the cache may answer right now.
    pub fn trusted(&self) -> bool {
        self.now_ns() < self.trusted_until_ns.load(Ordering::Acquire)
    }

    /// Trust the cache for `lease` from now (the link proved itself intact just now).
    pub fn renew(&self, lease: Duration) {
        let until = self.now_ns().saturating_add(u64::try_from(lease.as_nanos()).unwrap_or(u64::MAX));
        self.trusted_until_ns.store(until.max(1), Ordering::Release);
    }

    /// Stop trusting the cache and drop every entry (handing them to the heir first, known good
    /// until the moment trust ended).
    pub fn distrust_and_flush(&self) {
        let until_ns = self.trusted_until_ns.swap(0, Ordering::AcqRel);
        if let Some(heir) = self.heir.get().filter(|_| until_ns != 0) {
            let ended = self.base + Duration::from_nanos(until_ns.min(self.now_ns()));
            heir.take_over(&self.shards, ended);
        }
        self.flush();
    }

    /// Redis dropped every key (a null invalidation): forget them here and in the heir too.
    pub fn forget_everything(&self) {
        self.flush();
        if let Some(heir) = self.heir.get() {
            heir.clear();
        }
    }

    /// Drop every entry; fills in flight are void.
    pub fn flush(&self) {
        self.flush_epoch.fetch_add(1, Ordering::AcqRel);
        self.shards.clear();
        self.count(Event::Flush, 1);
    }

    fn stripe(hash: u64) -> usize {
        // STRIPES is a power of two and small: the low bits of the key's hash.
        (hash as usize) & (STRIPES - 1)
    }

    /// Look `key` up (the read path).
    pub fn lookup(&self, key: &str) -> Lookup {
        if !self.trusted() {
            self.count(Event::Bypass, 1);
            return Lookup::Untrusted;
        }
        let hash = self.shards.hash(key);
        if let Some(value) = self.shards.get(hash, key) {
            self.count(Event::Hit, 1);
            return Lookup::Hit(value);
        }
        self.count(Event::Miss, 1);
        Lookup::Miss(self.ticket(hash))
    }

    fn ticket(&self, hash: u64) -> Ticket {
        Ticket {
            flush: self.flush_epoch.load(Ordering::Acquire),
            stripe: self.stripe_epochs[Self::stripe(hash)].load(Ordering::Acquire),
        }
    }

    /// Cache the store's answer for `key` if nothing invalidated it since `ticket` was taken.
    pub fn fill(&self, key: &str, value: Option<&Bytes>, ticket: Ticket) {
        let hash = self.shards.hash(key);
        let stripe = &self.stripe_epochs[Self::stripe(hash)];
        // Checked under the shard's lock, which invalidations and flushes also take.
        let still_valid = || {
            self.flush_epoch.load(Ordering::Acquire) == ticket.flush && stripe.load(Ordering::Acquire) == ticket.stripe
        };
        // Own the bytes: a reply slice may pin the client's whole read buffer.
        let value = value.map(|v| Bytes::copy_from_slice(v));
        match self.shards.insert_if(hash, key, value, still_valid) {
            None => self.count(Event::FillRejected, 1),
            Some(evicted) => {
                self.count(Event::Fill, 1);
                self.count(Event::Eviction, evicted);
            }
        }
    }

    /// Forget `key`: Redis said it changed (or this instance just wrote it). Fills in flight for
    /// keys of its stripe are void.
    pub fn invalidate(&self, key: &str) {
        let hash = self.shards.hash(key);
        let stripe = &self.stripe_epochs[Self::stripe(hash)];
        self.shards.remove_with(hash, key, || {
            stripe.fetch_add(1, Ordering::AcqRel);
        });
        if let Some(heir) = self.heir.get() {
            heir.forget(key);
        }
        self.count(Event::Invalidation, 1);
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the cache's structures hold now (see [`Shards::accounted_bytes`]).
    pub fn accounted_bytes(&self) -> usize {
        self.shards.accounted_bytes()
    }

    /// The configured bound.
    pub fn max_entries(&self) -> usize {
        self.shards.max_entries()
    }
}

impl MetricsSection for ReadCache {
    fn render(&self, strategy: &str, out: &mut String) {
        use std::fmt::Write as _;
        out.push_str("# HELP authbench_cache_events_total In-process read cache events (cached strategies).\n");
        out.push_str("# TYPE authbench_cache_events_total counter\n");
        for event in Event::ALL {
            let n = self.events(event);
            let _ =
                writeln!(out, "authbench_cache_events_total{{strategy=\"{strategy}\",event=\"{}\"}} {n}", event.name());
        }
        out.push_str(
            "# HELP authbench_cache_size In-process read cache: entries, accounted bytes and the entry bound.\n",
        );
        out.push_str("# TYPE authbench_cache_size gauge\n");
        let sizes = [("entries", self.len()), ("bytes", self.accounted_bytes()), ("max_entries", self.max_entries())];
        for (what, n) in sizes {
            let _ = writeln!(out, "authbench_cache_size{{strategy=\"{strategy}\",what=\"{what}\"}} {n}");
        }
        let trusted = u8::from(self.trusted());
        out.push_str("# HELP authbench_cache_trusted 1 while the invalidation link's lease is current.\n");
        out.push_str("# TYPE authbench_cache_trusted gauge\n");
        let _ = writeln!(out, "authbench_cache_trusted{{strategy=\"{strategy}\"}} {trusted}");
    }
}

/// How a strategy reads the keys it checks per request: straight from the store, or through a
/// [`ReadCache`] kept coherent by the invalidation link; with `--stale-grace`, a store error is
/// answered from a [`StaleCopy`] of recent answers. Writes always go to the store.
#[derive(Clone)]
pub struct Reads {
    source: Source,
    /// Answers store errors within the grace (`--stale-grace`); `None`: fail closed at once.
    stale: Option<Arc<StaleCopy>>,
}

/// Where reads go first.
#[derive(Clone)]
enum Source {
    Direct(Store),
    Cached(Arc<CachedReads>),
}

/// The cache, the link connection that reads misses (so Redis tracks them) and the store.
pub struct CachedReads {
    /// The cache itself (also rendered on `/metrics`).
    pub cache: Arc<ReadCache>,
    /// Reads misses; in default tracking mode Redis tracks the keys read on this connection.
    link: Store,
    /// Reads while the cache is not trusted (the link may be the thing that is down).
    store: Store,
    /// The link's background tasks, stopped when the strategy is dropped.
    _tasks: link::LinkTasks,
}

impl CachedReads {
    pub fn new(cache: Arc<ReadCache>, link: Store, store: Store, tasks: link::LinkTasks) -> Self {
        CachedReads { cache, link, store, _tasks: tasks }
    }
}

impl Reads {
    /// Reads straight from `store`.
    pub fn direct(store: Store) -> Reads {
        Reads { source: Source::Direct(store), stale: None }
    }

    /// With `--stale-grace` above zero: keep a [`StaleCopy`] of the answers (a cache hands its
    /// entries over when it stops being trusted) and answer store errors from it.
    pub fn with_stale(mut self, ctx: &BuildContext<'_>) -> Reads {
        let grace = ctx.config.stale_grace;
        if grace.is_zero() {
            return self;
        }
        let copy = Arc::new(StaleCopy::new(ctx.config.cache_max_entries, grace));
        if let Source::Cached(c) = &self.source {
            c.cache.set_heir(copy.clone());
        }
        ctx.metrics.add_section(copy.clone());
        self.stale = Some(copy);
        self
    }

    /// A cached strategy's reads: through a [`ReadCache`] of `--cache-max-entries` kept coherent by
    /// a tracking link, on a single-node Redis. Other stores have no invalidation source, so there
    /// the strategy reads straight from the store, as its uncached sibling (logged, and `/metrics`
    /// then has no cache section, so the report says the cache was not measured).
    pub fn cached(ctx: &BuildContext<'_>, prefixes: &[&str]) -> anyhow::Result<Reads> {
        let c = ctx.config;
        let urls = match &c.store {
            StoreSpec::Redis(urls) if urls.len() == 1 && urls[0].starts_with("redis://") => urls.clone(),
            _ => {
                tracing::warn!(
                    store = ctx.store.kind(),
                    "read cache needs a single-node redis store; reading uncached"
                );
                return Ok(Reads::direct(ctx.store.clone()));
            }
        };
        let opts = RedisStoreOptions { urls, pool_size: 1, command_timeout: c.store_timeout };
        let cache = Arc::new(ReadCache::new(c.cache_max_entries));
        let (link, tasks) = link::start(&opts, cache.clone(), c.cache_tracking, prefixes, ctx.metrics.clone())?;
        ctx.metrics.add_section(cache.clone());
        let cached = Arc::new(CachedReads::new(cache, link, ctx.store.clone(), tasks));
        Ok(Reads { source: Source::Cached(cached), stale: None })
    }

    /// The value at `key` (`None`: absent); on a store error, the stale copy's answer when it
    /// has one young enough.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let fresh = self.get_fresh(key).await;
        let Some(stale) = &self.stale else { return fresh };
        match fresh {
            Ok(v) => {
                match (&self.source, &v) {
                    // An uncached strategy keeps every answer of its store.
                    (Source::Direct(_), _) => stale.remember(key, v.as_ref()),
                    // A cached one is handed its cache at distrust (entries Redis kept coherent);
                    // a read made while it was untrusted is not tracked, so it is not kept.
                    (Source::Cached(_), None) => stale.forget(key),
                    (Source::Cached(_), Some(_)) => {}
                }
                Ok(v)
            }
            // Only an unreachable or slow store degrades; a corrupt answer is still an error.
            Err(e @ (StoreError::Unavailable(_) | StoreError::Timeout(_))) => stale.recall(key).map(Some).ok_or(e),
            Err(e) => Err(e),
        }
    }

    /// The value at `key` from the cache or the store.
    async fn get_fresh(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let c = match &self.source {
            Source::Direct(store) => return store.get(key).await,
            Source::Cached(c) => c,
        };
        match c.cache.lookup(key) {
            Lookup::Hit(v) => Ok(v),
            Lookup::Untrusted => c.store.get(key).await,
            Lookup::Miss(ticket) => {
                let v = c.link.get(key).await?;
                c.cache.fill(key, v.as_ref(), ticket);
                Ok(v)
            }
        }
    }

    /// The values at `keys` (one store command when any is missing; all keys share a hash tag).
    pub async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>, StoreError> {
        let c = match &self.source {
            Source::Direct(store) => return store.mget(keys).await,
            Source::Cached(c) => c,
        };
        let mut values = Vec::with_capacity(keys.len());
        let mut tickets = Vec::new();
        for key in keys {
            match c.cache.lookup(key) {
                Lookup::Hit(v) => values.push(v),
                Lookup::Untrusted => return c.store.mget(keys).await,
                Lookup::Miss(t) => tickets.push((*key, t)),
            }
        }
        if tickets.is_empty() {
            return Ok(values);
        }
        // Any miss: read them all in one command, as the uncached strategy does.
        let fresh = c.link.mget(keys).await?;
        for (key, ticket) in tickets {
            if let Some(i) = keys.iter().position(|k| *k == key) {
                c.cache.fill(key, fresh.get(i).and_then(|v| v.as_ref()), ticket);
            }
        }
        Ok(fresh)
    }

    /// This instance just wrote `key`: forget it here at once (the other instances hear from Redis).
    pub fn invalidate(&self, key: &str) {
        if let Source::Cached(c) = &self.source {
            c.cache.invalidate(key);
        }
        if let Some(stale) = &self.stale {
            stale.forget(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(max: usize) -> ReadCache {
        let c = ReadCache::new(max);
        c.renew(Duration::from_secs(60));
        c
    }

    fn miss(c: &ReadCache, key: &str) -> Ticket {
        match c.lookup(key) {
            Lookup::Miss(t) => t,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn caches_absent_and_present_answers() {
        let c = trusted(100);
        let t = miss(&c, "a");
        c.fill("a", None, t);
        let t = miss(&c, "b");
        c.fill("b", Some(&Bytes::from_static(b"v")), t);
        assert!(matches!(c.lookup("a"), Lookup::Hit(None)));
        assert!(matches!(c.lookup("b"), Lookup::Hit(Some(v)) if v == "v"));
        c.invalidate("a");
        assert!(matches!(c.lookup("a"), Lookup::Miss(_)));
    }

    #[test]
    fn an_invalidation_during_the_read_voids_the_fill() {
        let c = trusted(100);
        let t = miss(&c, "k");
        c.invalidate("k");
        c.fill("k", None, t);
        assert!(matches!(c.lookup("k"), Lookup::Miss(_)), "stale answer cached");
        let t = miss(&c, "k");
        c.flush();
        c.fill("k", None, t);
        assert!(matches!(c.lookup("k"), Lookup::Miss(_)), "answer from before a flush cached");
    }

    #[test]
    fn untrusted_cache_never_answers() {
        let c = trusted(100);
        let t = miss(&c, "k");
        c.fill("k", None, t);
        c.distrust_and_flush();
        assert!(matches!(c.lookup("k"), Lookup::Untrusted));
        c.renew(Duration::from_secs(60));
        assert!(matches!(c.lookup("k"), Lookup::Miss(_)), "an entry survived the flush");
        c.renew(Duration::ZERO);
        assert!(matches!(c.lookup("k"), Lookup::Untrusted), "an expired lease still answers");
    }

    #[test]
    fn bounded() {
        let c = trusted(64);
        for i in 0..10_000 {
            let key = format!("key-{i}");
            let t = miss(&c, &key);
            c.fill(&key, Some(&Bytes::from_static(b"value")), t);
            assert!(c.len() <= 64, "{} entries", c.len());
        }
        assert!(c.events(Event::Eviction) >= 10_000 - 64);
        assert!(c.accounted_bytes() > 0);
    }
}
