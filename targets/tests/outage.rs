//! Store outage, end to end: a target on a real redis-server whose server is SIGKILLed mid-run and
//! started again. Routes that need the store must answer 503 with a JSON error at once (fail closed:
//! never a 200 that skipped the check, never a hang), the rest of the target must keep serving, and
//! the target must recover by itself when the store is back.
//!
//! What needs the store differs by strategy (docs/design.md "Strategies"), and that difference is part of
//! what the report compares:
//! - `session`, `jwt-denylist`: one store lookup per request, so `GET /api/resource` fails closed;
//! - `jwt-refresh`: the per-request check is "as `jwt`" (local verification), so the API keeps
//!   answering 200 while login and `POST /refresh` (which read and rotate server-side state) fail
//!   closed;
//! - `jwt`: no store at all; everything keeps answering 200.

use std::time::{Duration, Instant};

use authbench_targets::config::StrategyKind;
use reqwest::StatusCode;
use serde_json::Value;

use crate::util::{RedisServer, TestTarget, args, client};

/// Longest any single request may take, outage or not. The store timeout is 250 ms and commands
/// fail fast while disconnected, so this is generous; past it the target counts as hanging.
const REQUEST_BOUND: Duration = Duration::from_secs(3);
/// How long the target may take to recover after redis is back (reconnect back-off is capped at 1 s).
const RECOVERY_BOUND: Duration = Duration::from_secs(10);

/// A credential as the client carries it.
#[derive(Debug, Clone)]
enum Cred {
    Cookie(String),
    Bearer { access: String, refresh: Option<String> },
}

struct Reply {
    status: StatusCode,
    body: Value,
}

/// Send with a hard bound; a request that does not complete within [`REQUEST_BOUND`] fails the test.
async fn send(req: reqwest::RequestBuilder, what: &str) -> (reqwest::Response, Duration) {
    let start = Instant::now();
    let resp = tokio::time::timeout(REQUEST_BOUND + Duration::from_secs(1), req.timeout(REQUEST_BOUND).send())
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {REQUEST_BOUND:?} (hang)"))
        .unwrap_or_else(|e| panic!("{what}: request failed: {e}"));
    let elapsed = start.elapsed();
    assert!(elapsed < REQUEST_BOUND, "{what}: took {elapsed:?}");
    (resp, elapsed)
}

async fn reply(req: reqwest::RequestBuilder, what: &str) -> Reply {
    let (resp, _) = send(req, what).await;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_else(|e| panic!("{what}: reading body: {e}"));
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: body is not JSON: {text:?}"));
    Reply { status, body }
}

struct Api {
    http: reqwest::Client,
    target: TestTarget,
}

impl Api {
    async fn start(strategy: StrategyKind, redis: &RedisServer) -> Api {
        let mut a = args(strategy);
        a.store = redis.url();
        a.store_timeout_ms = 250;
        Api { http: client(), target: TestTarget::start(a).await }
    }

    /// `POST /login`; the credential when the status is 200.
    async fn login(&self, user: &str) -> (Reply, Option<Cred>) {
        let what = format!("POST /login {user}");
        let (resp, _) =
            send(self.http.post(self.target.url("/login")).json(&serde_json::json!({ "user": user })), &what).await;
        let status = resp.status();
        let cookie = resp
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("sid="))
            .and_then(|v| v.split(';').next())
            .map(str::to_owned);
        let text = resp.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: body is not JSON: {text:?}"));
        let cred = if status != StatusCode::OK {
            None
        } else if let Some(sid) = cookie {
            Some(Cred::Cookie(sid))
        } else {
            let access = body["access_token"].as_str().unwrap_or_else(|| panic!("{what}: no access_token: {body}"));
            let refresh = body["refresh_token"].as_str().map(str::to_owned);
            Some(Cred::Bearer { access: access.to_owned(), refresh })
        };
        (Reply { status, body }, cred)
    }

    fn with_cred(&self, req: reqwest::RequestBuilder, cred: &Cred) -> reqwest::RequestBuilder {
        match cred {
            Cred::Cookie(sid) => req.header(reqwest::header::COOKIE, format!("sid={sid}")),
            Cred::Bearer { access, .. } => req.bearer_auth(access),
        }
    }

    async fn resource(&self, cred: &Cred) -> Reply {
        reply(self.with_cred(self.http.get(self.target.url("/api/resource")), cred), "GET /api/resource").await
    }

    async fn refresh(&self, refresh_token: &str) -> Reply {
        let body = serde_json::json!({ "refresh_token": refresh_token });
        reply(self.http.post(self.target.url("/refresh")).json(&body), "POST /refresh").await
    }

    async fn logout(&self, cred: &Cred) -> Reply {
        let mut req = self.with_cred(self.http.post(self.target.url("/logout")), cred);
        if let Cred::Bearer { refresh: Some(rt), .. } = cred {
            req = req.json(&serde_json::json!({ "refresh_token": rt }));
        }
        reply(req, "POST /logout").await
    }

    async fn health(&self) -> StatusCode {
        send(self.http.get(self.target.url("/health")), "GET /health").await.0.status()
    }

    async fn metrics(&self) -> StatusCode {
        send(self.http.get(self.target.url("/metrics")), "GET /metrics").await.0.status()
    }
}

/// A fail-closed answer: 503, a JSON `{"error": "<text>"}` body, promptly.
fn assert_unavailable(r: &Reply, what: &str) {
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{what} during the outage: {}", r.body);
    assert!(
        r.body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: 503 body must be {{\"error\"}}: {}",
        r.body
    );
}

fn assert_ok_as(r: &Reply, user: &str, what: &str) {
    assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.body);
    assert_eq!(r.body["sub"], user, "{what}: wrong subject");
}

/// Log in and use the API until both answer 200, bounded by [`RECOVERY_BOUND`].
async fn wait_for_recovery(api: &Api, user: &str) -> (Cred, Duration) {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < RECOVERY_BOUND {
        let (login, cred) = api.login(user).await;
        if let Some(cred) = cred {
            let r = api.resource(&cred).await;
            if r.status == StatusCode::OK {
                assert_ok_as(&r, user, "API after recovery");
                return (cred, start.elapsed());
            }
            last = format!("API {} {}", r.status, r.body);
        } else {
            // While recovering, only 503 is acceptable from login: never a 4xx/5xx of another kind.
            assert_eq!(login.status, StatusCode::SERVICE_UNAVAILABLE, "login while recovering: {}", login.body);
            last = format!("login {} {}", login.status, login.body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the target did not recover within {RECOVERY_BOUND:?} after redis came back; last: {last}");
}

/// The whole scenario for a strategy whose per-request check needs the store (`session`,
/// `jwt-denylist`): API 503 during the outage, recovery after.
async fn per_request_store_outage(strategy: StrategyKind) {
    let mut redis = RedisServer::start();
    let api = Api::start(strategy, &redis).await;
    let user = format!("outage-{strategy}");

    let (r, cred) = api.login(&user).await;
    let cred = cred.unwrap_or_else(|| panic!("login before the outage: {} {}", r.status, r.body));
    assert_ok_as(&api.resource(&cred).await, &user, "API before the outage");

    redis.kill();
    for i in 0..5 {
        let r = api.resource(&cred).await;
        assert_unavailable(&r, &format!("API request {i}"));
    }
    let (r, cred_during) = api.login(&format!("{user}-new")).await;
    assert!(cred_during.is_none(), "a login that could not be stored must not hand out a credential");
    assert_unavailable(&r, "login");
    assert_unavailable(&api.logout(&cred).await, "logout");
    assert_eq!(api.health().await, StatusCode::OK, "/health must not depend on the store");
    assert_eq!(api.metrics().await, StatusCode::OK, "/metrics must not depend on the store");

    redis.restart();
    let (fresh, took) = wait_for_recovery(&api, &user).await;
    eprintln!("{strategy}: recovered {took:?} after redis restarted");
    assert_ok_as(&api.resource(&fresh).await, &user, "API after recovery, again");
    if strategy == StrategyKind::SESSION {
        // The restarted redis is empty: the old session is gone, and that is a 401, not a 503.
        let r = api.resource(&cred).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "session lost with the store: {}", r.body);
    }
    api.target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_fails_closed_and_recovers() {
    per_request_store_outage(StrategyKind::SESSION).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_denylist_fails_closed_and_recovers() {
    per_request_store_outage(StrategyKind::JWT_DENYLIST).await;
}

/// `jwt-refresh`: access tokens are verified locally (as `jwt`), so the API keeps serving; what
/// needs the store (login, refresh) fails closed, and recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_refresh_fails_closed_on_refresh_and_recovers() {
    let strategy = StrategyKind::JWT_REFRESH;
    let mut redis = RedisServer::start();
    let api = Api::start(strategy, &redis).await;
    let user = "outage-jwt-refresh";

    let (r, cred) = api.login(user).await;
    let cred = cred.unwrap_or_else(|| panic!("login before the outage: {} {}", r.status, r.body));
    let Cred::Bearer { refresh: Some(old_refresh), .. } = &cred else {
        panic!("jwt-refresh login must return a refresh_token: {}", r.body)
    };
    assert_ok_as(&api.resource(&cred).await, user, "API before the outage");

    redis.kill();
    for i in 0..3 {
        assert_ok_as(&api.resource(&cred).await, user, &format!("API request {i} during the outage (local check)"));
        assert_unavailable(&api.refresh(old_refresh).await, &format!("refresh {i}"));
    }
    let (r, cred_during) = api.login("outage-jwt-refresh-new").await;
    assert!(cred_during.is_none(), "a login whose refresh token could not be stored must fail");
    assert_unavailable(&r, "login");
    assert_eq!(api.health().await, StatusCode::OK);
    assert_eq!(api.metrics().await, StatusCode::OK);

    redis.restart();
    let (fresh, took) = wait_for_recovery(&api, user).await;
    eprintln!("{strategy}: recovered {took:?} after redis restarted");
    let Cred::Bearer { refresh: Some(fresh_refresh), .. } = &fresh else { panic!("no refresh_token after recovery") };
    let r = api.refresh(fresh_refresh).await;
    assert_eq!(r.status, StatusCode::OK, "refresh after recovery: {}", r.body);
    assert!(r.body["access_token"].is_string() && r.body["refresh_token"].is_string(), "{}", r.body);
    // The restarted redis is empty: the old family is unknown now, which is a 401 (not 503, not 200).
    let r = api.refresh(old_refresh).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "refresh token lost with the store: {}", r.body);
    api.target.stop().await;
}

/// `jwt` needs no store: the outage changes nothing (the point of comparison).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_keeps_serving_during_store_outage() {
    let mut redis = RedisServer::start();
    let api = Api::start(StrategyKind::JWT, &redis).await;
    let user = "outage-jwt";
    let (r, cred) = api.login(user).await;
    let cred = cred.unwrap_or_else(|| panic!("login: {} {}", r.status, r.body));
    assert_ok_as(&api.resource(&cred).await, user, "API before the outage");

    redis.kill();
    for i in 0..5 {
        assert_ok_as(&api.resource(&cred).await, user, &format!("API request {i} during the outage"));
    }
    let (r, fresh) = api.login(user).await;
    let fresh = fresh.unwrap_or_else(|| panic!("jwt login needs no store: {} {}", r.status, r.body));
    assert_ok_as(&api.resource(&fresh).await, user, "fresh token during the outage");
    let r = api.logout(&fresh).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["revoked"], false, "jwt cannot revoke");
    assert_eq!(api.health().await, StatusCode::OK);
    api.target.stop().await;
}
