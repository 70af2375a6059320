//! The access JWT in an HttpOnly cookie (`--token-transport cookie`) and the CSRF defence it needs:
//! the cookie's flags, the token never in the body, the `Authorization` header ignored, and a
//! forged cross-site logout (the browser attaches the cookie; the hostile page cannot add the
//! CSRF header) refused with 403 while the credential keeps working.

use authbench_targets::config::{StrategyKind, TokenTransport};
use authbench_targets::token_cookie::{CSRF_HEADER, csrf_token};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::util::{TestTarget, args, client};

/// A logged-in browser: the `at` cookie's token and the CSRF token from the login answer.
struct Browser {
    token: String,
    csrf: String,
}

async fn start(kind: StrategyKind) -> TestTarget {
    let mut a = args(kind);
    a.token_transport = TokenTransport::Cookie;
    TestTarget::start(a).await
}

async fn login(t: &TestTarget, user: &str) -> Browser {
    let r = client().post(t.url("/login")).json(&json!({ "user": user })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r.headers().get("set-cookie").expect("the token comes as a cookie").to_str().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(cookie.contains(flag), "cookie flag {flag}: {cookie}");
    }
    assert!(body.get("access_token").is_none(), "never in a body a script could read: {body}");
    let token = cookie.split(';').next().and_then(|p| p.strip_prefix("at=")).expect("at=").to_owned();
    let csrf = body["csrf_token"].as_str().expect("csrf_token in the body").to_owned();
    assert_eq!(csrf, csrf_token(&token), "bound to the token");
    Browser { token, csrf }
}

async fn api(t: &TestTarget, b: &Browser) -> StatusCode {
    client().get(t.url("/api/resource")).header("cookie", format!("at={}", b.token)).send().await.unwrap().status()
}

async fn logout(t: &TestTarget, b: &Browser, csrf: Option<&str>) -> StatusCode {
    let mut req = client()
        .post(t.url("/logout"))
        .header("cookie", format!("theme=dark; at={}", b.token))
        .header("origin", "https://evil.example");
    if let Some(c) = csrf {
        req = req.header(CSRF_HEADER, c);
    }
    req.send().await.unwrap().status()
}

#[tokio::test]
async fn a_forged_cross_site_logout_is_refused_and_the_real_one_revokes() {
    let t = start(StrategyKind::JWT_DENYLIST).await;
    let b = login(&t, "alice").await;
    assert_eq!(api(&t, &b).await, StatusCode::OK, "the cookie authenticates");

    // The forged request: the browser sends the cookie, the attacker cannot add the header.
    assert_eq!(logout(&t, &b, None).await, StatusCode::FORBIDDEN);
    // Nor guess it, nor reuse another user's.
    let mallory = login(&t, "mallory").await;
    assert_eq!(logout(&t, &b, Some(&mallory.csrf)).await, StatusCode::FORBIDDEN);
    assert_eq!(logout(&t, &b, Some("AAAA")).await, StatusCode::FORBIDDEN);
    assert_eq!(api(&t, &b).await, StatusCode::OK, "no forged request logged alice out");

    // The real page has the CSRF token from the login answer.
    assert_eq!(logout(&t, &b, Some(&b.csrf)).await, StatusCode::OK);
    assert_eq!(api(&t, &b).await, StatusCode::UNAUTHORIZED, "revoked at once (denylist)");
    t.stop().await;
}

#[tokio::test]
async fn in_cookie_mode_the_authorization_header_is_ignored() {
    let t = start(StrategyKind::JWT).await;
    let b = login(&t, "bob").await;
    let r = client().get(t.url("/api/resource")).bearer_auth(&b.token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "one transport per target: the cookie");
    t.stop().await;
}

#[tokio::test]
async fn refresh_hands_out_a_new_cookie_and_a_new_csrf_token() {
    let t = start(StrategyKind::JWT_REFRESH).await;
    let r = client().post(t.url("/login")).json(&json!({ "user": "carol" })).send().await.unwrap();
    let old_cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    let rt = body["refresh_token"].as_str().expect("refresh token").to_owned();
    let r = client().post(t.url("/refresh")).json(&json!({ "refresh_token": rt })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let new_cookie = r.headers().get("set-cookie").expect("a new cookie").to_str().unwrap().to_owned();
    let new_body: Value = r.json().await.unwrap();
    // (Within the same second the new token can equal the old one: jwt-refresh's access token has
    // no jti. What matters is that the answer carries the cookie and the token's CSRF token.)
    assert!(old_cookie.starts_with("at=") && new_cookie.starts_with("at="));
    let token = new_cookie.split(';').next().and_then(|p| p.strip_prefix("at=")).unwrap();
    assert_eq!(new_body["csrf_token"].as_str(), Some(csrf_token(token).as_str()));
    t.stop().await;
}

#[test]
fn cookie_transport_is_refused_for_strategies_without_a_bearer_token() {
    let mut a = args(StrategyKind::SESSION);
    a.token_transport = TokenTransport::Cookie;
    let e = a.validate().expect_err("session has no bearer token");
    assert!(e.to_string().contains("--token-transport cookie"), "{e}");
}
