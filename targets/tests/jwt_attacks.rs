//! Attacks on JWT verification, against every JWT strategy on both stores (`web+api`: its API
//! clients' bearer path). Each starts from a control:
//! the target's own token re-signed by the test with the target's real key must be accepted, so every
//! refusal below is caused by the one thing the attack changed, not by a broken forger.
//!
//! Covered: `alg: none` in every spelling, stripped/truncated/bit-flipped signatures, tampered header
//! and payload, algorithm swaps, RS/HS key confusion with the published public key, embedded
//! `jwk`/`jku`/`x5u`/`x5c` pointing at attacker keys, `kid` traversal and injection, the ES256 zero
//! signature (CVE-2022-21449), exp/nbf/iat against the leeway, wrong and missing claims, `crit`,
//! `typ`, oversized and garbage tokens.

use std::io::Write as _;

use authbench_targets::config::{Alg, StrategyKind};
use authbench_targets::keys::generate_pem;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256,
    RSA_PSS_SHA256,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, COOKIE, WWW_AUTHENTICATE};
use serde_json::{Value, json};

use crate::contract::{Backing, Env, body, both_stores, jwt_parts, start};

/// The HS secret `util::args` gives every test target.
const SECRET: &[u8] = b"a-test-secret-that-is-at-least-32-bytes-long";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn b64j(v: &Value) -> String {
    b64(v.to_string().as_bytes())
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// HMAC-sign `header.payload` (already encoded) with `alg` (HS256/384/512).
fn hmac_sig(alg: &str, key: &[u8], signing_input: &str) -> Vec<u8> {
    let a = match alg {
        "HS384" => hmac::HMAC_SHA384,
        "HS512" => hmac::HMAC_SHA512,
        _ => hmac::HMAC_SHA256,
    };
    hmac::sign(&hmac::Key::new(a, key), signing_input.as_bytes()).as_ref().to_vec()
}

/// A JWT with exactly this header and payload, HMAC-signed with `key` using `mac` (HS256/384/512),
/// whatever the header's `alg` says.
fn hs_token(mac: &str, header: &Value, claims: &Value, key: &[u8]) -> String {
    let input = format!("{}.{}", b64j(header), b64j(claims));
    let sig = hmac_sig(mac, key, &input);
    format!("{input}.{}", b64(&sig))
}

/// A JWT signed by an arbitrary signer over `header.payload`.
fn signed(header: &Value, claims: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", b64j(header), b64j(claims));
    let sig = sign(input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

fn with(v: &Value, key: &str, value: Value) -> Value {
    let mut v = v.clone();
    v[key] = value;
    v
}

fn without(v: &Value, key: &str) -> Value {
    let mut v = v.clone();
    v.as_object_mut().unwrap().remove(key);
    v
}

impl Env {
    async fn bearer_status(&self, token: &str) -> (StatusCode, Option<String>) {
        let r = self.c.get(self.url("/api/resource")).header(AUTHORIZATION, format!("Bearer {token}")).send().await;
        let r = r.unwrap();
        let www = r.headers().get(WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_owned());
        let (s, v) = body(r).await;
        if s == StatusCode::UNAUTHORIZED {
            assert!(v["error"].is_string(), "401 JSON body: {v}");
        }
        (s, www)
    }

    /// The attack must be refused: 401, JSON error, `WWW-Authenticate: Bearer`.
    async fn deny(&self, token: &str, what: &str) {
        let (s, www) = self.bearer_status(token).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{}: ACCEPTED attack: {what}", self.kind);
        assert!(www.is_some_and(|w| w.starts_with("Bearer ")), "{what}: 401 without WWW-Authenticate");
        // Logout must refuse it too (it verifies before revoking anything).
        let r = self.c.post(self.url("/logout")).header(AUTHORIZATION, format!("Bearer {token}")).send().await;
        let (s, _) = body(r.unwrap()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{}: logout accepted attack: {what}", self.kind);
    }

    async fn allow(&self, token: &str, what: &str) {
        let (s, _) = self.bearer_status(token).await;
        assert_eq!(s, StatusCode::OK, "{}: control refused: {what}", self.kind);
    }
}

// ---------------------------------------------------------------------------------------------
// HS256 targets: the default algorithm
// ---------------------------------------------------------------------------------------------

async fn hs_attacks(kind: StrategyKind, backing: Backing) {
    let env = start(kind, backing, |_| {}).await;
    let legit = env.login_token("alice").await.access().to_owned();
    let (h0, p0) = jwt_parts(&legit);
    let forge = |h: &Value, p: &Value| hs_token("HS256", h, p, SECRET);
    let t = now();

    // Controls: the forger reproduces what the target accepts.
    env.allow(&legit, "the target's own token").await;
    env.allow(&forge(&h0, &p0), "re-signed own token").await;
    env.allow(&forge(&without(&h0, "kid"), &p0), "no kid (kid is optional)").await;
    env.allow(&forge(&h0, &with(&p0, "exp", json!(t - 10))), "expired 10 s ago, within the 30 s leeway").await;
    env.allow(&forge(&h0, &with(&p0, "nbf", json!(t + 10))), "nbf 10 s ahead, within the leeway").await;

    let (head_b64, rest) = legit.split_once('.').unwrap();
    let (payload_b64, sig_b64) = rest.split_once('.').unwrap();

    // alg none, every spelling, with and without a signature.
    for alg in ["none", "None", "NONE", "nOnE", "none "] {
        let h = with(&h0, "alg", json!(alg));
        let unsigned = format!("{}.{payload_b64}", b64j(&h));
        env.deny(&format!("{unsigned}."), &format!("alg {alg}, empty signature")).await;
        env.deny(&unsigned, &format!("alg {alg}, two segments")).await;
        env.deny(&format!("{unsigned}.{sig_b64}"), &format!("alg {alg}, old signature")).await;
        env.deny(&forge(&h, &p0), &format!("alg {alg}, HMAC signature")).await;
    }
    env.deny(&forge(&without(&h0, "alg"), &p0), "no alg").await;
    env.deny(&forge(&with(&h0, "alg", json!(null)), &p0), "alg null").await;
    env.deny(&forge(&with(&h0, "alg", json!("hs256")), &p0), "alg in lower case").await;
    env.deny(&forge(&with(&h0, "alg", json!(["HS256"])), &p0), "alg as an array").await;

    // Signature stripped, truncated, extended, bit-flipped.
    env.deny(&format!("{head_b64}.{payload_b64}."), "signature stripped").await;
    env.deny(&format!("{head_b64}.{payload_b64}"), "signature segment removed").await;
    env.deny(&legit[..legit.len() - 4], "signature truncated").await;
    env.deny(&legit[..legit.len() - 1], "signature short by one char").await;
    env.deny(&format!("{legit}A"), "signature extended").await;
    env.deny(&format!("{legit}="), "signature padded").await;
    let sig = URL_SAFE_NO_PAD.decode(sig_b64).unwrap();
    for (byte, bit) in [(0, 0), (sig.len() / 2, 3), (sig.len() - 1, 7)] {
        let mut s = sig.clone();
        s[byte] ^= 1 << bit;
        env.deny(&format!("{head_b64}.{payload_b64}.{}", b64(&s)), &format!("bit {bit} of byte {byte} flipped")).await;
    }
    env.deny(&format!("{head_b64}.{payload_b64}.{}", b64(&[0u8; 32])), "zero signature").await;
    env.deny(&format!("{head_b64}.{payload_b64}.{}", STANDARD.encode(&sig)), "signature in padded base64").await;

    // Header or payload tampered, old signature kept.
    for (what, p) in [
        ("sub changed", with(&p0, "sub", json!("admin"))),
        ("exp extended", with(&p0, "exp", json!(t + 86_400))),
        ("role added", with(&p0, "roles", json!(["admin"]))),
    ] {
        env.deny(&format!("{head_b64}.{}.{sig_b64}", b64j(&p)), what).await;
    }
    env.deny(&format!("{}.{payload_b64}.{sig_b64}", b64j(&with(&h0, "x", json!(1)))), "header member added").await;
    let spaced = b64(serde_json::to_string_pretty(&p0).unwrap().as_bytes());
    env.deny(&format!("{head_b64}.{spaced}.{sig_b64}"), "payload re-serialized (same claims)").await;
    env.deny(&format!("{head_b64}.{payload_b64}.{sig_b64}.{sig_b64}"), "four segments").await;
    env.deny(&format!("{head_b64}.{payload_b64}.x.y.{sig_b64}"), "JWE-shaped five segments").await;

    // Algorithm swap: a correctly made token under another HMAC, same secret.
    for alg in ["HS384", "HS512"] {
        env.deny(&hs_token(alg, &with(&h0, "alg", json!(alg)), &p0, SECRET), &format!("{alg} to an HS256 target"))
            .await;
    }
    env.deny(&hs_token("HS256", &with(&h0, "alg", json!("RS256")), &p0, SECRET), "header says RS256, HMAC body").await;

    // Wrong keys.
    env.deny(&forge_key(&h0, &p0, b"a-test-secret-that-is-at-least-32-bytes-lonG"), "secret off by one char").await;
    env.deny(&forge_key(&h0, &p0, b""), "empty key").await;
    env.deny(&forge_key(&h0, &p0, &SECRET[..31]), "secret prefix").await;

    // Embedded keys and key URLs pointing at the attacker: never used to find a key.
    let attacker = b"attacker-chosen-secret-32-bytes!!";
    let jwk = json!({"kty": "oct", "k": b64(attacker), "alg": "HS256"});
    for (member, value) in [
        ("jwk", jwk),
        ("jku", json!("http://127.0.0.1:1/jwks.json")),
        ("x5u", json!("http://127.0.0.1:1/cert.pem")),
        ("x5c", json!([STANDARD.encode(b"not a certificate")])),
    ] {
        let h = with(&h0, member, value.clone());
        env.deny(&forge_key(&h, &p0, attacker), &format!("{member} header, attacker key")).await;
        env.deny(&forge_key(&without(&h, "kid"), &p0, attacker), &format!("{member} header, no kid")).await;
    }

    // kid traversal and injection, signed with the real secret and with what those files would hold.
    for kid in [
        "../../dev/null",
        "/dev/null",
        "../../../../../../etc/passwd",
        "' OR '1'='1",
        "x'; DROP TABLE keys; --",
        "|cat /etc/passwd",
        "\u{0}",
        "",
        "kid\u{0}",
    ] {
        let h = with(&h0, "kid", json!(kid));
        env.deny(&forge(&h, &p0), &format!("kid {kid:?}, real secret")).await;
        env.deny(&forge_key(&h, &p0, b""), &format!("kid {kid:?}, empty key")).await;
    }
    env.deny(&forge(&with(&h0, "kid", json!(1)), &p0), "kid as a number").await;
    let kid = h0["kid"].as_str().unwrap();
    env.deny(&forge(&with(&h0, "kid", json!(format!("{kid}x"))), &p0), "kid with a suffix").await;
    env.deny(&forge(&with(&h0, "kid", json!(kid.to_uppercase())), &p0), "kid in another case").await;

    // crit and typ.
    env.deny(&forge(&with(&h0, "crit", json!(["exp"])), &p0), "crit exp").await;
    env.deny(&forge(&with(&with(&h0, "crit", json!(["b64"])), "b64", json!(false)), &p0), "crit b64=false").await;
    env.deny(&forge(&with(&h0, "crit", json!([])), &p0), "empty crit").await;
    env.deny(&forge(&with(&h0, "crit", json!(["x-unknown"])), &p0), "unknown crit").await;
    env.deny(&forge(&without(&h0, "typ"), &p0), "typ missing").await;
    for typ in ["JWT", "jwt", "", "at+jwt ", "refresh+jwt", "JOSE"] {
        env.deny(&forge(&with(&h0, "typ", json!(typ)), &p0), &format!("typ {typ:?}")).await;
    }

    // Time claims against the leeway (30 s).
    env.deny(&forge(&h0, &with(&p0, "exp", json!(t - 60))), "expired beyond the leeway").await;
    env.deny(&forge(&h0, &with(&p0, "exp", json!(0))), "exp 0").await;
    env.deny(&forge(&h0, &with(&p0, "nbf", json!(t + 120))), "nbf in the future").await;
    env.deny(&forge(&h0, &with(&p0, "nbf", json!(u64::MAX))), "nbf u64::MAX").await;
    env.deny(&forge(&h0, &with(&p0, "iat", json!(t + 120))), "iat in the future").await;
    env.deny(&forge(&h0, &with(&p0, "iat", json!(u64::MAX))), "iat u64::MAX").await;
    for (claim, bad) in [
        ("exp", json!("9999999999")),
        ("exp", json!(-1)),
        ("exp", json!(1e30)),
        ("exp", json!(null)),
        ("iat", json!("0")),
        ("nbf", json!(true)),
    ] {
        env.deny(&forge(&h0, &with(&p0, claim, bad.clone())), &format!("{claim} = {bad}")).await;
    }

    // Issuer, audience, subject.
    env.deny(&forge(&h0, &with(&p0, "iss", json!("evil"))), "wrong iss").await;
    env.deny(&forge(&h0, &with(&p0, "iss", json!("authbench "))), "iss with a trailing space").await;
    env.deny(&forge(&h0, &with(&p0, "aud", json!("evil"))), "wrong aud").await;
    env.deny(&forge(&h0, &with(&p0, "aud", json!(["evil"]))), "wrong aud array").await;
    env.deny(&forge(&h0, &with(&p0, "sub", json!(""))), "empty sub").await;
    env.deny(&forge(&h0, &with(&p0, "sub", json!(42))), "numeric sub").await;
    for claim in ["iss", "aud", "exp", "sub", "nbf", "iat"] {
        env.deny(&forge(&h0, &without(&p0, claim)), &format!("missing {claim}")).await;
    }

    // Not JSON objects, properly signed.
    for (what, head, payload) in [
        ("payload array", b64j(&h0), b64(b"[]")),
        ("payload null", b64j(&h0), b64(b"null")),
        ("payload not JSON", b64j(&h0), b64(b"\xff\xfe garbage")),
        ("header array", b64(b"[]"), b64j(&p0)),
        ("header not JSON", b64(b"{\"alg\":\"HS256\""), b64j(&p0)),
        ("header not base64", "!!!".to_owned(), b64j(&p0)),
    ] {
        let input = format!("{head}.{payload}");
        let sig = hmac_sig("HS256", SECRET, &input);
        env.deny(&format!("{input}.{}", b64(&sig)), what).await;
    }

    // Oversized and garbage tokens.
    let big = forge(&h0, &with(&p0, "pad", json!("x".repeat(10_000))));
    env.deny(&big, "oversized token, validly signed").await;
    let big_head = forge(&with(&h0, "x", json!("y".repeat(2_000))), &p0);
    env.deny(&big_head, "oversized header, validly signed").await;
    for g in ["", " ", "a", ".", "..", "...", "a.b.c", "Bearer x", "\u{263a}", "e30.e30.", "e30.e30.e30"] {
        env.deny(g, &format!("garbage {g:?}")).await;
    }

    // The credential in the wrong place, or under the wrong scheme, is no credential.
    for (name, value) in [
        (AUTHORIZATION, format!("Basic {legit}")),
        (AUTHORIZATION, format!("Token {legit}")),
        (AUTHORIZATION, legit.clone()),
        (AUTHORIZATION, format!("Bearer\t{legit}x")),
        (COOKIE, format!("sid={legit}")),
    ] {
        let r = env.c.get(env.url("/api/resource")).header(name.clone(), value).send().await.unwrap();
        assert_eq!(body(r).await.0, StatusCode::UNAUTHORIZED, "{name} variant accepted");
    }
    let r = env.c.get(env.url(&format!("/api/resource?access_token={legit}"))).send().await.unwrap();
    assert_eq!(body(r).await.0, StatusCode::UNAUTHORIZED, "token in the query string accepted");
    let r = env.c.get(env.url("/api/resource")).header(AUTHORIZATION, &b"Bearer \xff\xfe"[..]).send().await.unwrap();
    assert_eq!(body(r).await.0, StatusCode::UNAUTHORIZED, "non-UTF-8 bearer");

    // Strategy-specific claims.
    if kind == StrategyKind::JWT_DENYLIST || kind == StrategyKind::WEB_API {
        env.deny(&forge(&h0, &without(&p0, "jti")), "denylist token without jti").await;
        for jti in
            ["x", "", "1.x", "../../x", "1.AAAAAAAAAAAAAAAAAAAAAA}", "99999999999999999999999.AAAAAAAAAAAAAAAAAAAAAA"]
        {
            env.deny(&forge(&h0, &with(&p0, "jti", json!(jti))), &format!("jti {jti:?}")).await;
        }
        env.deny(&forge(&h0, &with(&p0, "sub", json!("a}b"))), "sub breaking the hash tag").await;
    }
    // An absurd (but validly signed) exp must not crash logout's TTL arithmetic.
    let forever = forge(&h0, &with(&p0, "exp", json!(u64::MAX)));
    let r = env.c.post(env.url("/logout")).header(AUTHORIZATION, format!("Bearer {forever}")).send().await.unwrap();
    let _ = body(r).await;
    // And the target still serves (a fresh token: on jwt-denylist that logout revoked this jti).
    let fresh = env.login_token("alice").await.access().to_owned();
    env.allow(&fresh, "still serving after the attacks").await;
}

fn forge_key(h: &Value, p: &Value, key: &[u8]) -> String {
    hs_token("HS256", h, p, key)
}

async fn attacks_hs_jwt(b: Backing) {
    hs_attacks(StrategyKind::JWT, b).await;
}
async fn attacks_hs_jwt_denylist(b: Backing) {
    hs_attacks(StrategyKind::JWT_DENYLIST, b).await;
}
async fn attacks_hs_jwt_refresh(b: Backing) {
    hs_attacks(StrategyKind::JWT_REFRESH, b).await;
}
async fn attacks_hs_web_api(b: Backing) {
    hs_attacks(StrategyKind::WEB_API, b).await;
}
both_stores!(attacks_hs_jwt, attacks_hs_jwt_denylist, attacks_hs_jwt_refresh, attacks_hs_web_api);

// ---------------------------------------------------------------------------------------------
// Asymmetric targets: key confusion, attacker keys, the ES256 zero signature
// ---------------------------------------------------------------------------------------------

/// A fresh PKCS#8 key for `alg`, as the PEM file the target is started with and as DER.
fn key_file(alg: Alg) -> (tempfile::NamedTempFile, Vec<u8>) {
    let pem = generate_pem(alg).unwrap();
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(pem.as_bytes()).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    (f, STANDARD.decode(b64).unwrap())
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

fn rsa_sign(kp: &RsaKeyPair, pss: bool, msg: &[u8]) -> Vec<u8> {
    let mut sig = vec![0u8; kp.public_modulus_len()];
    let padding: &'static dyn aws_lc_rs::signature::RsaEncoding = if pss { &RSA_PSS_SHA256 } else { &RSA_PKCS1_SHA256 };
    kp.sign(padding, &SystemRandom::new(), msg, &mut sig).unwrap();
    sig
}

async fn rs256_attacks(kind: StrategyKind, backing: Backing) {
    let (file, der) = key_file(Alg::Rs256);
    let path = file.path().to_path_buf();
    let env = start(kind, backing, |a| {
        a.alg = Alg::Rs256;
        a.key_file = Some(path);
    })
    .await;
    let legit = env.login_token("alice").await.access().to_owned();
    let (h0, p0) = jwt_parts(&legit);
    let ours = RsaKeyPair::from_pkcs8(&der).unwrap();

    // Control: signing with the target's own private key is accepted.
    env.allow(&signed(&h0, &p0, |m| rsa_sign(&ours, false, m)), "RS256 signed with the target key").await;

    // RS/HS key confusion: HMAC keyed with every public form of the target's key.
    let spki = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(ours.public_key()).unwrap().as_ref().to_vec();
    let jwks = env.c.get(env.url("/.well-known/jwks.json")).send().await.unwrap().text().await.unwrap();
    let jwk: Value = serde_json::from_str::<Value>(&jwks).unwrap()["keys"][0].clone();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let public_pem = pem("PUBLIC KEY", &spki);
    let candidates: Vec<(String, Vec<u8>)> = vec![
        ("SPKI PEM".into(), public_pem.clone().into_bytes()),
        ("SPKI PEM, no final newline".into(), public_pem.trim_end().as_bytes().to_vec()),
        ("SPKI DER".into(), spki.clone()),
        ("JWKS document".into(), jwks.clone().into_bytes()),
        ("JWK".into(), jwk.to_string().into_bytes()),
        ("modulus".into(), n),
    ];
    for (what, key) in &candidates {
        for mac in ["HS256", "HS384", "HS512"] {
            let h = with(&h0, "alg", json!(mac));
            env.deny(&hs_token(mac, &h, &p0, key), &format!("{mac} keyed with the public key ({what})")).await;
        }
    }

    // Right algorithm family, wrong variant: PS256 with the target's own key.
    env.deny(&signed(&with(&h0, "alg", json!("PS256")), &p0, |m| rsa_sign(&ours, true, m)), "PS256 to RS256").await;
    env.deny(&signed(&h0, &p0, |m| rsa_sign(&ours, true, m)), "PSS signature under an RS256 header").await;

    // Attacker key, announced in the header every way JOSE allows.
    let evil = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let evil_n = evil.public_key().modulus().big_endian_without_leading_zero().to_vec();
    let evil_jwk = json!({"kty": "RSA", "n": b64(&evil_n), "e": "AQAB", "alg": "RS256"});
    let evil_spki = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(evil.public_key()).unwrap();
    env.deny(&signed(&h0, &p0, |m| rsa_sign(&evil, false, m)), "attacker RSA key, our kid").await;
    for (member, value) in [
        ("jwk", evil_jwk.clone()),
        ("jku", json!("http://127.0.0.1:1/.well-known/jwks.json")),
        ("x5u", json!("http://127.0.0.1:1/evil.pem")),
        ("x5c", json!([STANDARD.encode(evil_spki.as_ref())])),
    ] {
        let h = with(&h0, member, value);
        env.deny(&signed(&h, &p0, |m| rsa_sign(&evil, false, m)), &format!("{member} with the attacker key")).await;
        let h = with(&without(&h, "kid"), "kid", json!("evil"));
        env.deny(&signed(&h, &p0, |m| rsa_sign(&evil, false, m)), &format!("{member}, attacker kid")).await;
    }
    // alg none against an asymmetric target.
    let h = with(&h0, "alg", json!("none"));
    env.deny(&format!("{}.{}.", b64j(&h), b64j(&p0)), "alg none to RS256").await;
    env.allow(&legit, "still serving").await;
}

async fn es256_attacks(kind: StrategyKind, backing: Backing) {
    let (file, der) = key_file(Alg::Es256);
    let path = file.path().to_path_buf();
    let env = start(kind, backing, |a| {
        a.alg = Alg::Es256;
        a.key_file = Some(path);
    })
    .await;
    let legit = env.login_token("alice").await.access().to_owned();
    let (h0, p0) = jwt_parts(&legit);
    let ours = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).unwrap();
    let rng = SystemRandom::new();
    env.allow(&signed(&h0, &p0, |m| ours.sign(&rng, m).unwrap().as_ref().to_vec()), "ES256 with the target key").await;

    // CVE-2022-21449 ("psychic signatures"): r = s = 0, raw and DER-encoded; and other degenerate values.
    let input = format!("{}.{}", b64j(&h0), b64j(&p0));
    for (what, sig) in [
        ("r = s = 0 (64 zero bytes)", vec![0u8; 64]),
        ("r = s = 0, DER", vec![0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]),
        ("all ones", vec![0xff; 64]),
        ("r = s = 1", [[0u8; 31].as_slice(), &[1], &[0u8; 31], &[1]].concat()),
        ("32 zero bytes", vec![0u8; 32]),
        ("empty", vec![]),
    ] {
        env.deny(&format!("{input}.{}", b64(&sig)), what).await;
    }
    // A valid signature in DER form instead of the JOSE fixed form.
    let der_sig = {
        let asn1 = EcdsaKeyPair::from_pkcs8(&aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING, &der).unwrap();
        asn1.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec()
    };
    env.deny(&format!("{input}.{}", b64(&der_sig)), "ASN.1 DER signature").await;

    // Attacker EC keys, with the key embedded in the header.
    let evil = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let point = evil.public_key().as_ref().to_vec();
    let evil_jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])});
    for h in [
        h0.clone(),
        with(&h0, "jwk", evil_jwk.clone()),
        with(&without(&h0, "kid"), "jwk", evil_jwk),
        with(&h0, "jku", json!("http://127.0.0.1:1/jwks.json")),
    ] {
        env.deny(&signed(&h, &p0, |m| evil.sign(&rng, m).unwrap().as_ref().to_vec()), &format!("attacker EC key, {h}"))
            .await;
    }
    // ES384 header and signature against an ES256 target.
    let evil384 = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap();
    let h = with(&h0, "alg", json!("ES384"));
    env.deny(&signed(&h, &p0, |m| evil384.sign(&rng, m).unwrap().as_ref().to_vec()), "ES384 to ES256").await;
    // HS256 keyed with the public point (key confusion on EC).
    let jwks = env.c.get(env.url("/.well-known/jwks.json")).send().await.unwrap().text().await.unwrap();
    for key in [ours.public_key().as_ref().to_vec(), jwks.into_bytes()] {
        env.deny(
            &hs_token("HS256", &with(&h0, "alg", json!("HS256")), &p0, &key),
            "HS256 keyed with the EC public key",
        )
        .await;
    }
    env.allow(&legit, "still serving").await;
}

async fn attacks_rs256_jwt(b: Backing) {
    rs256_attacks(StrategyKind::JWT, b).await;
}
async fn attacks_rs256_jwt_denylist(b: Backing) {
    rs256_attacks(StrategyKind::JWT_DENYLIST, b).await;
}
async fn attacks_rs256_jwt_refresh(b: Backing) {
    rs256_attacks(StrategyKind::JWT_REFRESH, b).await;
}
async fn attacks_es256_jwt(b: Backing) {
    es256_attacks(StrategyKind::JWT, b).await;
}
async fn attacks_es256_jwt_denylist(b: Backing) {
    es256_attacks(StrategyKind::JWT_DENYLIST, b).await;
}
async fn attacks_es256_jwt_refresh(b: Backing) {
    es256_attacks(StrategyKind::JWT_REFRESH, b).await;
}
async fn attacks_rs256_web_api(b: Backing) {
    rs256_attacks(StrategyKind::WEB_API, b).await;
}
async fn attacks_es256_web_api(b: Backing) {
    es256_attacks(StrategyKind::WEB_API, b).await;
}
both_stores!(
    attacks_rs256_jwt,
    attacks_rs256_jwt_denylist,
    attacks_rs256_jwt_refresh,
    attacks_es256_jwt,
    attacks_es256_jwt_denylist,
    attacks_es256_jwt_refresh,
    attacks_rs256_web_api,
    attacks_es256_web_api
);

// ---------------------------------------------------------------------------------------------
// Expiry with leeway 0, in real time
// ---------------------------------------------------------------------------------------------

async fn expiry_in_real_time(b: Backing) {
    for kind in [StrategyKind::JWT, StrategyKind::JWT_DENYLIST, StrategyKind::JWT_REFRESH, StrategyKind::WEB_API] {
        let env = start(kind, b, |a| {
            a.access_ttl = Some(std::time::Duration::from_secs(1));
            a.leeway = std::time::Duration::ZERO;
        })
        .await;
        let cred = env.login_token("alice").await;
        env.allow(cred.access(), "fresh 1 s token").await;
        // exp = iat + 1 with iat rounded down: expired for sure 2.1 s later.
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        env.deny(cred.access(), "1 s token after 2.1 s, leeway 0").await;
    }
}
both_stores!(expiry_in_real_time);
