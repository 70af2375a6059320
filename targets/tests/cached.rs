//! The cached strategies (`session-cached`, `jwt-denylist-cached`) across instances on one real
//! redis-server: a logout on instance A is refused by instance B, which had the credential's
//! answer cached; an instance whose invalidation link was cut while a revocation happened never
//! serves its stale entry afterwards; the cache stays within its bound; with the store gone the
//! api fails closed.

use std::time::{Duration, Instant};

use authbench_targets::TargetArgs;
use authbench_targets::config::StrategyKind;
use reqwest::{Client, StatusCode};

use crate::contract::{self, Backing, Cred, Env, metric};
use crate::util::{self, CutProxy, TestTarget};

/// The cached strategies, by name (registry handles).
fn cached_kinds() -> [StrategyKind; 2] {
    ["session-cached", "jwt-denylist-cached"].map(|n| StrategyKind::from_name(n).expect("registered"))
}

/// How long a revocation may take to reach another instance in these tests (the probe window).
const PROBE_WINDOW: Duration = Duration::from_secs(2);

/// A second instance of `a`'s strategy on `store`, with the same keys.
async fn instance(a: &Env, store: String, tweak: impl FnOnce(&mut TargetArgs)) -> Env {
    let mut args = util::args(a.kind);
    args.store = store;
    tweak(&mut args);
    let t = TestTarget::start(args).await;
    let c = Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(contract::REQUEST_TIMEOUT).build();
    Env { t, c: c.unwrap(), kind: a.kind, redis: None, cluster: None, _pg: None }
}

async fn cache_events(e: &Env, event: &str) -> u64 {
    let labels = format!("authbench_cache_events_total{{strategy=\"{}\",event=\"{event}\"}}", e.kind.name());
    metric(&e.metrics().await, &labels)
}

async fn cache_size(e: &Env, what: &str) -> u64 {
    let labels = format!("authbench_cache_size{{strategy=\"{}\",what=\"{what}\"}}", e.kind.name());
    metric(&e.metrics().await, &labels)
}

/// Wait until `e`'s cache is trusted (its link has tracking on), or fail.
async fn until_trusted(e: &Env) {
    until_trust_is(e, 1).await;
}

/// Wait until `e`'s cache reports `want` (1 trusted, 0 not), or fail.
async fn until_trust_is(e: &Env, want: u64) {
    let labels = format!("authbench_cache_trusted{{strategy=\"{}\"}}", e.kind.name());
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&e.metrics().await, &labels) != want {
        assert!(Instant::now() < deadline, "{}: cache trust never became {want}", e.kind);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `cred` is accepted by `e` and the second request is a cache hit.
async fn cached_on(e: &Env, cred: &Cred, user: &str) {
    let hits = cache_events(e, "hit").await;
    assert_eq!(e.access(cred, user).await, StatusCode::OK, "{}: valid credential", e.kind);
    assert_eq!(e.access(cred, user).await, StatusCode::OK, "{}: valid credential again", e.kind);
    assert!(cache_events(e, "hit").await > hits, "{}: the second lookup was not served from the cache", e.kind);
}

/// Poll `e` with `cred` until it is refused; how long that took, or `None` past `within`.
async fn refused_within(e: &Env, cred: &Cred, user: &str, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if e.access(cred, user).await == StatusCode::UNAUTHORIZED {
            return Some(start.elapsed());
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_instance_is_refused_by_the_other() {
    for kind in cached_kinds() {
        let a = contract::start(kind, Backing::Redis, |_| {}).await;
        let url = a.redis.as_ref().map(|r| r.url()).unwrap_or_default();
        let b = instance(&a, url, |_| {}).await;
        until_trusted(&b).await;
        let cred = a.login("alice").await;
        cached_on(&b, &cred, "alice").await;
        let (status, _) = a.logout(&cred).await;
        assert_eq!(status, StatusCode::OK, "{kind}: logout");
        assert_eq!(
            a.access(&cred, "alice").await,
            StatusCode::UNAUTHORIZED,
            "{kind}: refused at once where logged out"
        );
        let took = refused_within(&b, &cred, "alice", PROBE_WINDOW).await;
        assert!(took.is_some(), "{kind}: the other instance still accepts the logged-out credential");
        assert!(cache_events(&b, "invalidation").await > 0, "{kind}: refused without an invalidation");
        // And it stays refused (the invalidated answer is not cached again as valid).
        assert_eq!(b.access(&cred, "alice").await, StatusCode::UNAUTHORIZED, "{kind}");
        // Revoke-user reaches the other instance too.
        let cred = a.login("bob").await;
        cached_on(&b, &cred, "bob").await;
        assert_eq!(a.revoke_user("bob").await.0, StatusCode::OK);
        assert!(
            refused_within(&b, &cred, "bob", PROBE_WINDOW).await.is_some(),
            "{kind}: revoke-user on a not seen by b"
        );
        b.t.stop().await;
        a.t.stop().await;
    }
}

/// B reaches Redis through a proxy that cuts every connection: while B's invalidation link is cut,
/// A revokes the credential B has cached; when the link is back, B must not serve its old entry.
/// (Take out the flushes in `cache::link` and B serves the stale entry: this test fails.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_while_the_link_was_cut_is_not_served_stale() {
    for kind in cached_kinds() {
        let a = contract::start(kind, Backing::Redis, |_| {}).await;
        let port = a.redis.as_ref().map_or(0, |r| r.port);
        let mut proxy = CutProxy::start(([127, 0, 0, 1], port).into()).await;
        let b = instance(&a, format!("redis://127.0.0.1:{}", proxy.port), |_| {}).await;
        until_trusted(&b).await;
        let cred = a.login("carol").await;
        cached_on(&b, &cred, "carol").await;
        let flushes = cache_events(&b, "flush").await;

        proxy.cut();
        until_trust_is(&b, 0).await;
        assert_eq!(a.logout(&cred).await.0, StatusCode::OK, "{kind}: logout while b's link is cut");
        proxy.restore().await;
        until_trusted(&b).await;

        assert_eq!(b.access(&cred, "carol").await, StatusCode::UNAUTHORIZED, "{kind}: stale cache entry served");
        assert!(cache_events(&b, "flush").await > flushes, "{kind}: the cut was not counted as a flush");
        // The cache works again after the gap.
        let cred = a.login("carol").await;
        cached_on(&b, &cred, "carol").await;
        b.t.stop().await;
        a.t.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_stays_within_its_bound() {
    const BOUND: usize = 8;
    for kind in cached_kinds() {
        let e = contract::start(kind, Backing::Redis, |a| a.cache_max_entries = BOUND).await;
        until_trusted(&e).await;
        for i in 0..40 {
            let user = format!("user{i}");
            let cred = e.login(&user).await;
            assert_eq!(e.access(&cred, &user).await, StatusCode::OK);
            assert!(cache_size(&e, "entries").await <= BOUND as u64, "{kind}: bound exceeded");
        }
        assert_eq!(cache_size(&e, "max_entries").await, BOUND as u64);
        assert!(cache_events(&e, "eviction").await > 0, "{kind}: nothing evicted");
        let bytes = cache_size(&e, "bytes").await;
        assert!(bytes > 0 && bytes < 64 * 1024, "{kind}: {bytes} accounted bytes for {BOUND} entries");
        e.t.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_store_gone_the_api_fails_closed() {
    for kind in cached_kinds() {
        let mut e = contract::start(kind, Backing::Redis, |_| {}).await;
        until_trusted(&e).await;
        let cred = e.login("dave").await;
        cached_on(&e, &cred, "dave").await;
        if let Some(r) = e.redis.as_mut() {
            r.kill();
        }
        let deadline = Instant::now() + PROBE_WINDOW;
        let mut status = StatusCode::OK;
        while Instant::now() < deadline && status == StatusCode::OK {
            status = e.resource(&cred).await.status();
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{kind}: store gone, cache still answering");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(e.resource(&cred).await.status(), StatusCode::SERVICE_UNAVAILABLE, "{kind}: fails closed");
        e.t.stop().await;
    }
}

/// A store that stops answering without closing the connection (`CLIENT PAUSE ... ALL`): nothing
/// tells the target its link is gone, so only the lease stops the cache. Within it (200 ms, with a
/// generous margin for a loaded machine) the api must stop answering from the cache, and from then
/// on it fails closed until the store answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_store_stops_the_cache_within_its_lease() {
    const PAUSE_MS: u64 = 2_000;
    for kind in cached_kinds() {
        let e = contract::start(kind, Backing::Redis, |_| {}).await;
        let port = e.redis.as_ref().map_or(0, |r| r.port);
        until_trusted(&e).await;
        let cred = e.login("erin").await;
        cached_on(&e, &cred, "erin").await;
        let paused = util::redis_command(port, &format!("CLIENT PAUSE {PAUSE_MS} ALL"));
        assert!(paused.starts_with("+OK"), "{kind}: CLIENT PAUSE answered {paused:?}");
        let start = Instant::now();
        let mut first_refusal = None;
        while start.elapsed() < Duration::from_millis(PAUSE_MS - 500) {
            let status = e.resource(&cred).await.status();
            match (status, first_refusal) {
                (StatusCode::OK, None) => {}
                (StatusCode::OK, Some(at)) => panic!("{kind}: served from the cache again after refusing at {at:?}"),
                (StatusCode::SERVICE_UNAVAILABLE, None) => first_refusal = Some(start.elapsed()),
                (StatusCode::SERVICE_UNAVAILABLE, Some(_)) => {}
                (other, _) => panic!("{kind}: {other} while the store is silent"),
            }
        }
        let at = first_refusal.unwrap_or_else(|| panic!("{kind}: the cache kept answering for the whole pause"));
        assert!(at < Duration::from_millis(1_000), "{kind}: first refusal after {at:?}, lease is 200 ms");
        e.t.stop().await;
    }
}
