//! `--stale-grace` (graceful degradation, seed 002 pitfall 4) on session and session-cached, against
//! a real redis-server that is then killed. What it buys: a session this instance read recently is
//! still served (200) while the store is down. Its bounds, each tried: only for the grace; never a
//! session this instance logged out (even when the store could not delete it); never one it never
//! read; never from a corrupt answer. What it costs, tried across two instances: plain `session`
//! serves a session logged out on the other instance before the outage; `session-cached` does not
//! (its copy was kept coherent by the invalidation link until the link broke).

use std::time::Duration;

use authbench_targets::config::StrategyKind;
use reqwest::StatusCode;

use crate::contract::{self, Backing, Cred, Env, metric};
use crate::util::{self, TestTarget};

fn kinds() -> [StrategyKind; 2] {
    ["session", "session-cached"].map(|n| StrategyKind::from_name(n).expect("registered"))
}

async fn stale_reads(e: &Env, outcome: &str) -> u64 {
    let labels = format!("authbench_stale_reads_total{{strategy=\"{}\",outcome=\"{outcome}\"}}", e.kind.name());
    metric(&e.metrics().await, &labels)
}

/// A target of `kind` on Redis with `--stale-grace grace`, its cache (if any) trusted.
async fn start(kind: StrategyKind, grace: Duration) -> Env {
    let e = contract::start(kind, Backing::Redis, |a| a.stale_grace = grace).await;
    wait_trusted(&e).await;
    e
}

/// For a cached strategy: until its invalidation link is up (no-op otherwise).
async fn wait_trusted(e: &Env) {
    wait_trust(e, 1).await;
}

/// For a cached strategy: until its cache's trust is `want` (1 or 0; no-op without a cache), so
/// that answers come from the store or the stale copy, not from a cache still in its lease.
async fn wait_trust(e: &Env, want: u64) {
    let labels = format!("authbench_cache_trusted{{strategy=\"{}\"}}", e.kind.name());
    for _ in 0..500 {
        let m = e.metrics().await;
        if !m.contains("authbench_cache_trusted") || metric(&m, &labels) == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{}: cache trust never became {want}", e.kind);
}

/// Status of `GET /api/resource` with `cred`.
async fn status_after_outage(e: &Env, cred: &Cred) -> StatusCode {
    e.resource(cred).await.status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recently_read_session_is_served_through_an_outage_and_nothing_else() {
    for kind in kinds() {
        let mut e = start(kind, Duration::from_secs(30)).await;
        let alice = e.login("alice").await;
        assert_eq!(e.access(&alice, "alice").await, StatusCode::OK);
        let bob = e.login("bob").await;
        assert_eq!(e.access(&bob, "bob").await, StatusCode::OK);
        assert_eq!(e.logout(&bob).await.0, StatusCode::OK);
        let never_read = e.login("carol").await;
        e.redis.as_mut().expect("redis").kill();
        wait_trust(&e, 0).await;
        assert_eq!(status_after_outage(&e, &alice).await, StatusCode::OK, "{kind}: alice served stale");
        assert_eq!(e.access(&alice, "alice").await, StatusCode::OK, "{kind}: stale answer names the right user");
        assert_eq!(status_after_outage(&e, &bob).await, StatusCode::SERVICE_UNAVAILABLE, "{kind}: logged out here");
        let carol = status_after_outage(&e, &never_read).await;
        assert_eq!(carol, StatusCode::SERVICE_UNAVAILABLE, "{kind}: never read: nothing to serve");
        // Writes still fail closed, and a logout that could not reach the store is still honoured here.
        let r = e.login_response("dave", &Cred::Nothing).await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{kind}: login needs the store");
        let r = alice.apply(e.c.post(e.url("/logout"))).send().await.expect("logout");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{kind}: the store cannot delete");
        assert_eq!(status_after_outage(&e, &alice).await, StatusCode::SERVICE_UNAVAILABLE, "{kind}: forgotten");
        assert!(stale_reads(&e, "served").await >= 2, "{kind}: served counted");
        let refused = stale_reads(&e, "refused").await;
        assert!(refused >= 3, "{kind}: refused counted: {refused}\n{}", e.metrics().await);
        e.t.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_served_stale_past_the_grace() {
    for kind in kinds() {
        let mut e = start(kind, Duration::from_millis(300)).await;
        let alice = e.login("alice").await;
        assert_eq!(e.access(&alice, "alice").await, StatusCode::OK);
        e.redis.as_mut().expect("redis").kill();
        // Past the grace (from the last answer, or from when the cache stopped being trusted).
        tokio::time::sleep(Duration::from_millis(900)).await;
        for _ in 0..3 {
            assert_eq!(e.resource(&alice).await.status(), StatusCode::SERVICE_UNAVAILABLE, "{kind}: past the grace");
        }
        e.t.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_grace_the_session_fails_closed() {
    for kind in kinds() {
        let mut e = start(kind, Duration::ZERO).await;
        let alice = e.login("alice").await;
        assert_eq!(e.access(&alice, "alice").await, StatusCode::OK);
        e.redis.as_mut().expect("redis").kill();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(e.resource(&alice).await.status(), StatusCode::SERVICE_UNAVAILABLE, "{kind}: fails closed");
        assert!(!e.metrics().await.contains("authbench_stale_reads_total"), "{kind}: no stale copy kept");
        e.t.stop().await;
    }
}

/// The cost: a logout on instance B before the outage, of a session A last read before it.
/// Plain `session` on A never heard of the logout and serves the session from its copy (a revoked
/// credential accepted: what the report counts); `session-cached` heard it (Redis invalidated A's
/// entry, and its copy with it) and refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_elsewhere_is_served_stale_by_session_only() {
    for kind in kinds() {
        let mut a = start(kind, Duration::from_secs(30)).await;
        let mut args = util::args(kind);
        args.store = a.redis.as_ref().expect("redis").url();
        args.stale_grace = Duration::from_secs(30);
        let b = TestTarget::start(args).await;
        let cred = a.login("erin").await;
        assert_eq!(a.access(&cred, "erin").await, StatusCode::OK, "{kind}: read on A");
        let before = invalidations(&a).await;
        let r = cred.apply(util::client().post(b.url("/logout"))).send().await.expect("logout on B");
        assert_eq!(r.status(), StatusCode::OK, "{kind}: logout on B");
        let cached = a.metrics().await.contains("authbench_cache_events_total");
        if cached {
            // Wait for Redis's invalidation to reach A (without reading the session on A).
            for _ in 0..200 {
                if invalidations(&a).await > before {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        a.redis.as_mut().expect("redis").kill();
        let during = a.resource(&cred).await.status();
        if cached {
            assert_eq!(during, StatusCode::SERVICE_UNAVAILABLE, "{kind}: a logout before the outage served stale");
        } else {
            assert_eq!(during, StatusCode::OK, "{kind}: the uncached copy cannot know of B's logout (the cost)");
        }
        b.stop().await;
        a.t.stop().await;
    }
}

async fn invalidations(e: &Env) -> u64 {
    let labels = format!("authbench_cache_events_total{{strategy=\"{}\",event=\"invalidation\"}}", e.kind.name());
    metric(&e.metrics().await, &labels)
}
