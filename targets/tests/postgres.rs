//! Targets on PostgreSQL, end to end, where the shared contract tests do not reach: a target whose
//! PostgreSQL is unreachable fails closed (503 with a JSON error, promptly, never a 200 and never a
//! hang), and a target whose PostgreSQL connection is cut mid-run refuses while it is cut and recovers
//! by itself when it is restored. The cut is a TCP proxy in front of the machine's server, so the
//! outage never disturbs the server other tests share.

use std::time::{Duration, Instant};

use authbench_targets::config::StrategyKind;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};

use crate::util::{CutProxy, PgSchema, TestTarget, args, client, free_port};

/// Longest any single request may take while the store is away (store timeout 250 ms).
const REQUEST_BOUND: Duration = Duration::from_secs(3);

async fn login(http: &reqwest::Client, t: &TestTarget, user: &str) -> (StatusCode, Option<String>) {
    let resp = http
        .post(t.url("/login"))
        .json(&serde_json::json!({ "user": user }))
        .timeout(REQUEST_BOUND)
        .send()
        .await
        .expect("login answers within the bound");
    let status = resp.status();
    let sid = resp
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.strip_prefix("sid="))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned);
    (status, sid)
}

async fn resource(http: &reqwest::Client, t: &TestTarget, sid: &str) -> StatusCode {
    let start = Instant::now();
    let resp = http
        .get(t.url("/api/resource"))
        .header(COOKIE, format!("sid={sid}"))
        .timeout(REQUEST_BOUND)
        .send()
        .await
        .expect("the API answers within the bound");
    assert!(start.elapsed() < REQUEST_BOUND, "took {:?}", start.elapsed());
    let status = resp.status();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        let body: serde_json::Value = resp.json().await.expect("a 503 carries a JSON error");
        assert!(body["error"].is_string(), "{body}");
    }
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_postgres_fails_closed() {
    let mut a = args(StrategyKind::SESSION);
    a.store = format!("postgres://authbench@127.0.0.1:{}/authbench", free_port());
    a.store_timeout_ms = 250;
    let t = TestTarget::start(a).await;
    let http = client();
    let (status, sid) = login(&http, &t, "alice").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "login cannot store a session");
    assert!(sid.is_none(), "no session id without a stored session");
    // A syntactically valid session id is refused, never waved through.
    let forged = "A".repeat(43);
    for _ in 0..3 {
        assert_eq!(resource(&http, &t, &forged).await, StatusCode::SERVICE_UNAVAILABLE);
    }
    let health = http.get(t.url("/health")).send().await.expect("health answers");
    assert_eq!(health.status(), StatusCode::OK, "the target itself keeps serving");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_postgres_fails_closed_then_recovers() {
    let Some(schema) = PgSchema::create().await else { return };
    let mut proxy = CutProxy::start(schema.server_addr()).await;
    let mut a = args(StrategyKind::SESSION);
    a.store = schema.url_via(proxy.port);
    a.store_timeout_ms = 250;
    let t = TestTarget::start(a).await;
    let http = client();
    let (status, sid) = login(&http, &t, "alice").await;
    assert_eq!(status, StatusCode::OK);
    let sid = sid.expect("a session cookie");
    assert_eq!(resource(&http, &t, &sid).await, StatusCode::OK);

    proxy.cut();
    for _ in 0..5 {
        assert_eq!(resource(&http, &t, &sid).await, StatusCode::SERVICE_UNAVAILABLE, "fail closed while cut");
    }

    proxy.restore().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if resource(&http, &t, &sid).await == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "the target did not recover within 10 s of PostgreSQL returning");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The session survived: PostgreSQL itself never went away.
    for _ in 0..5 {
        assert_eq!(resource(&http, &t, &sid).await, StatusCode::OK);
    }
    t.stop().await;
    drop(schema);
}
