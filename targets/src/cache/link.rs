//! The invalidation link of a cached strategy: one dedicated RESP3 connection to Redis with
//! server-assisted client-side caching (`CLIENT TRACKING`) on, which reads the cache's misses and
//! hears Redis's invalidation messages, and the two tasks that keep the [`ReadCache`] honest.
//!
//! - **Listener**: applies each invalidation (a key: forget it; no key: Redis flushed, flush). A
//!   reconnect or connection error of the link, or a gap in the invalidation stream (the listener
//!   lagged behind the client's broadcast channel), makes the cache untrusted and flushes it: an
//!   invalidation may have been lost, so nothing cached before it can be served.
//! - **Heartbeat**: every [`HEARTBEAT`] it asks Redis `CLIENT TRACKINGINFO` on the link. Tracking on:
//!   the cache is trusted for [`LEASE`] from the reply (every invalidation Redis sent before it is
//!   already read, since they travel on the same connection, in order). Tracking off (a new
//!   connection after a reconnect, or a `CLIENT KILL`): it turns tracking on. No reply: the cache
//!   stops being trusted. Whenever trust is regained, the cache is flushed first.
//!
//! So the longest a cut link can go on serving a stale entry is [`LEASE`] after its last good
//! heartbeat, when nothing tells the target the link is gone (a silent network partition); a
//! dropped or killed connection is noticed as soon as the client reads its end.
//!
//! The tracking mode (`--cache-tracking`): `default` (Redis remembers which keys this connection
//! read and invalidates only those) or `bcast` (Redis invalidates every key with the strategy's
//! prefixes, read or not, and keeps no per-key table). docs/design.md has the measurement that
//! chose the default.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use fred::prelude::{Client, ClientInterface, EventInterface, TrackingInterface, Value};
use fred::types::client::Invalidation;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use super::ReadCache;
use crate::error::StoreError;
use crate::metrics::Metrics;
use crate::store::{Backend, RedisStore, RedisStoreOptions, Store};

/// How often the heartbeat checks the link.
pub const HEARTBEAT: Duration = Duration::from_millis(50);

/// How long one good heartbeat lets the cache answer: the bound on serving stale entries when the
/// link is cut silently. Below the default store timeout (250 ms), so a paused store makes the
/// cached strategies fail closed about as soon as their uncached siblings.
pub const LEASE: Duration = Duration::from_millis(200);

/// Invalidations the client may queue for the listener before it lags (a gap: flush).
const INVALIDATION_QUEUE: usize = 4096;

/// Which `CLIENT TRACKING` mode the link uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TrackingMode {
    /// Redis tracks the keys this connection read and invalidates those.
    Default,
    /// Redis invalidates every key under the strategy's prefixes (`BCAST PREFIX ...`).
    Bcast,
}

/// The link's background tasks; aborted on drop.
pub struct LinkTasks(Vec<JoinHandle<()>>);

impl Drop for LinkTasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// What the heartbeat needs to check and re-establish tracking.
struct Link {
    /// The link's one RESP3 connection: tracking, invalidations and heartbeats travel on it.
    client: Client,
    /// What the invalidations and the heartbeat's verdicts apply to.
    cache: Arc<ReadCache>,
    /// How tracking is (re-)enabled on a new connection.
    mode: TrackingMode,
    /// Key prefixes of the strategy (used in `bcast` mode).
    prefixes: Vec<String>,
}

/// Open the link for `cache` and start its tasks. Returns the store that reads misses on the link
/// (counted in `metrics` like every store operation) and the tasks' guard.
pub fn start(
    opts: &RedisStoreOptions,
    cache: Arc<ReadCache>,
    mode: TrackingMode,
    prefixes: &[&str],
    metrics: Arc<Metrics>,
) -> Result<(Store, LinkTasks), StoreError> {
    let (store, client) = RedisStore::connect_tracking_link(opts, INVALIDATION_QUEUE)?;
    let link = Arc::new(Link { client, cache, mode, prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect() });
    let listener = tokio::spawn(listen(link.clone()));
    let heartbeat = tokio::spawn(heartbeat(link));
    Ok((Store::new(Backend::Redis(store), metrics), LinkTasks(vec![listener, heartbeat])))
}

/// Apply invalidations; a connection event or a gap in the stream flushes.
async fn listen(link: Arc<Link>) {
    let mut invalidations = link.client.invalidation_rx();
    let mut reconnects = link.client.reconnect_rx();
    let mut errors = link.client.error_rx();
    loop {
        tokio::select! {
            m = invalidations.recv() => match m {
                Ok(inv) => apply(&link.cache, &inv),
                Err(RecvError::Lagged(n)) => lost(&link.cache, &format!("{n} invalidations dropped (listener lagged)")),
                Err(RecvError::Closed) => return lost(&link.cache, "invalidation stream closed"),
            },
            _ = reconnects.recv() => lost(&link.cache, "link (re)connected: tracking is off on a new connection"),
            e = errors.recv() => match e {
                Ok((e, _)) => lost(&link.cache, &format!("link error: {e}")),
                Err(_) => lost(&link.cache, "link error stream gap"),
            },
        }
    }
}

fn apply(cache: &ReadCache, inv: &Invalidation) {
    if inv.keys.is_empty() {
        // A null invalidation: the server flushed its keys.
        cache.forget_everything();
        return;
    }
    for key in &inv.keys {
        match key.as_str() {
            Some(k) => cache.invalidate(k),
            // Never cached (our keys are UTF-8), but be safe.
            None => cache.flush(),
        }
    }
}

fn lost(cache: &ReadCache, why: &str) {
    tracing::warn!(why, "read cache: invalidation link not trustworthy; cache flushed and bypassed");
    cache.distrust_and_flush();
}

/// Check the link every [`HEARTBEAT`], renewing or withdrawing the cache's trust.
async fn heartbeat(link: Arc<Link>) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        link.beat().await;
    }
}

impl Link {
    async fn beat(&self) {
        match tokio::time::timeout(LEASE, self.tracking_on()).await {
            Ok(Ok(true)) => self.trust(),
            Ok(Ok(false)) => {
                if self.cache.trusted() || !self.cache.is_empty() {
                    lost(&self.cache, "tracking is off on the link");
                }
                let enabled = tokio::time::timeout(LEASE, self.enable()).await;
                match enabled {
                    Ok(Ok(())) => self.trust(),
                    Ok(Err(e)) => tracing::warn!(error = %e, "read cache: CLIENT TRACKING ON failed"),
                    Err(_) => tracing::warn!("read cache: CLIENT TRACKING ON timed out"),
                }
            }
            Ok(Err(_)) | Err(_) => {
                if self.cache.trusted() || !self.cache.is_empty() {
                    lost(&self.cache, "heartbeat failed");
                }
            }
        }
    }

    /// Tracking is on now: trust the cache for a lease, flushing first if it was not trusted.
    fn trust(&self) {
        if !self.cache.trusted() {
            self.cache.flush();
        }
        self.cache.renew(LEASE);
    }

    async fn tracking_on(&self) -> Result<bool, fred::error::Error> {
        let info: HashMap<String, Value> = self.client.client_trackinginfo().await?;
        let flags: Vec<String> = match info.get("flags") {
            Some(v) => v.clone().convert()?,
            None => Vec::new(),
        };
        Ok(flags.iter().any(|f| f == "on"))
    }

    async fn enable(&self) -> Result<(), fred::error::Error> {
        let (prefixes, bcast) = match self.mode {
            TrackingMode::Default => (Vec::new(), false),
            TrackingMode::Bcast => (self.prefixes.clone(), true),
        };
        self.client.start_tracking(prefixes, bcast, false, false, false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fred::types::Key;

    #[test]
    fn invalidations_forget_keys_and_a_null_one_flushes() {
        let cache = ReadCache::new(10);
        cache.renew(Duration::from_secs(60));
        for key in ["a", "b"] {
            if let super::super::Lookup::Miss(t) = cache.lookup(key) {
                cache.fill(key, None, t);
            }
        }
        let server = fred::types::config::Server::new("127.0.0.1", 6379);
        apply(&cache, &Invalidation { keys: vec![Key::from("a")], server: server.clone() });
        assert_eq!(cache.len(), 1);
        apply(&cache, &Invalidation { keys: vec![], server });
        assert!(cache.is_empty());
    }
}
