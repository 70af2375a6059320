//! Several instances given the same key accept each other's tokens (issue 11): the `kid` of an HMAC
//! key is derived from the key, not drawn at random per start. Different keys still refuse each
//! other's tokens, whatever kid they would claim.

use authbench_targets::config::StrategyKind;
use reqwest::StatusCode;

use crate::util::{self, TestTarget};

const SECRET_A: &str = "shared-secret-of-instance-group-a-0123456789";
const SECRET_B: &str = "another-secret-of-instance-group-b-012345678";

async fn start(kind: StrategyKind, secret: &str) -> TestTarget {
    let mut a = util::args(kind);
    a.secret = Some(secret.to_owned());
    TestTarget::start(a).await
}

async fn login_token(t: &TestTarget) -> String {
    let c = util::client();
    let r = c.post(t.url("/login")).json(&serde_json::json!({ "user": "alice" })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = r.json().await.unwrap();
    v["access_token"].as_str().expect("access_token").to_owned()
}

async fn api_status(t: &TestTarget, token: &str) -> (StatusCode, String) {
    let r = util::client().get(t.url("/api/resource")).bearer_auth(token).send().await.unwrap();
    let status = r.status();
    let www = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, www)
}

#[tokio::test]
async fn same_secret_accepts_each_others_tokens() {
    for kind in [StrategyKind::JWT, StrategyKind::JWT_DENYLIST, StrategyKind::JWT_REFRESH] {
        let (a, b) = (start(kind, SECRET_A).await, start(kind, SECRET_A).await);
        let from_a = login_token(&a).await;
        let from_b = login_token(&b).await;
        assert_eq!(api_status(&b, &from_a).await.0, StatusCode::OK, "{kind}: b accepts a's token");
        assert_eq!(api_status(&a, &from_b).await.0, StatusCode::OK, "{kind}: a accepts b's token");
        a.stop().await;
        b.stop().await;
    }
}

#[tokio::test]
async fn different_secrets_refuse_each_others_tokens() {
    let (a, b) = (start(StrategyKind::JWT, SECRET_A).await, start(StrategyKind::JWT, SECRET_B).await);
    let from_a = login_token(&a).await;
    let (status, www) = api_status(&b, &from_a).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "b refuses a's token");
    assert!(www.contains("invalid_token"), "{www}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn the_kid_does_not_reveal_the_secret() {
    let t = start(StrategyKind::JWT, SECRET_A).await;
    let token = login_token(&t).await;
    let header = token.split('.').next().unwrap();
    let header = String::from_utf8(base64_url(header)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&header).unwrap();
    let kid = v["kid"].as_str().expect("kid");
    assert_eq!(kid, authbench_targets::keys::hmac_kid(authbench_targets::Alg::Hs256, SECRET_A.as_bytes()));
    assert!(!kid.contains("secret") && kid.len() < SECRET_A.len(), "{kid}");
    t.stop().await;
}

fn base64_url(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap()
}
