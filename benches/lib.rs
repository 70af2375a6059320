//! Shared fixtures for the benchmarks (`benches/benches/*.rs`) and the instruction-count gate
//! (`benches/gate/main.rs`).
//!
//! Everything here is built once per process, outside any measured loop:
//! - fixed keys ([`pem`], [`HS_SECRET`]) committed under `benches/keys/`, so instruction counts do not
//!   move with a freshly generated key and no benchmark pays for RSA key generation;
//! - the three claim sizes ([`SIZES`]);
//! - the *floor*: the raw aws-lc-rs primitive with the key parsed once ([`RawVerifier`], [`RawSigner`]),
//!   over exactly the bytes a token signs, so library and parsing overhead can be read off as
//!   `library - floor`;
//! - strategies on a memory or Redis store ([`strategy_fixture`]), and a private `redis-server`
//!   ([`RedisServer`]).

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use authbench_targets::Alg;
use authbench_targets::config::{AuthzSource, ClaimBloat, StrategyKind, TargetArgs, TargetConfig};
use authbench_targets::keys::KeyMaterial;
use authbench_targets::metrics::Metrics;
use authbench_targets::store::{Backend, MemoryStore, RedisStore, RedisStoreOptions, Store};
use authbench_targets::token::JwtCodec;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, ParsedPublicKey, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// The HS* key of every benchmark: 64 fixed bytes (the size `KeyMaterial` generates).
pub const HS_SECRET: &[u8; 64] = b"authbench-benchmark-hmac-secret-0123456789abcdef-not-a-real-key!";
pub const ISSUER: &str = "authbench";
pub const AUDIENCE: &str = "authbench-api";
pub const SUBJECT: &str = "bench-user-0001";
/// A jti of the shape the denylist strategy issues (16 random bytes, base64url).
pub const JTI: &str = "q1w2e3r4t5y6u7i8o9p0aA";

/// One claim-size point of the benchmarks.
#[derive(Debug, Clone, Copy)]
pub struct ClaimSize {
    pub name: &'static str,
    pub bloat: ClaimBloat,
}

/// minimal: required claims only; typical: the target's default (2 roles, 2 scopes);
/// bloated: ~1.5 KB tokens (HS256: 1.54 KB, see `docs/benchmarks.md`).
pub const SIZES: [ClaimSize; 3] = [
    ClaimSize { name: "minimal", bloat: ClaimBloat { roles: 0, scopes: 0, pad_bytes: 0 } },
    ClaimSize { name: "typical", bloat: ClaimBloat { roles: 2, scopes: 2, pad_bytes: 0 } },
    ClaimSize { name: "bloated", bloat: ClaimBloat { roles: 16, scopes: 16, pad_bytes: 480 } },
];

pub const TYPICAL: ClaimSize = SIZES[1];

/// The committed PKCS#8 private key for an asymmetric `alg` (RS256 and PS256 share one RSA-2048 key).
pub fn pem(alg: Alg) -> Option<&'static str> {
    match alg {
        Alg::Rs256 | Alg::Ps256 => Some(include_str!("keys/rsa2048.pem")),
        Alg::Es256 => Some(include_str!("keys/p256.pem")),
        Alg::Es384 => Some(include_str!("keys/p384.pem")),
        Alg::EdDsa => Some(include_str!("keys/ed25519.pem")),
        Alg::Hs256 | Alg::Hs384 | Alg::Hs512 => None,
    }
}

/// PKCS#8 DER of the committed key for `alg`.
pub fn pkcs8_der(alg: Alg) -> Option<Vec<u8>> {
    let pem = pem(alg)?;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(b64).ok()
}

/// The target's own key material for `alg`, from the fixed keys.
pub fn key_material(alg: Alg) -> KeyMaterial {
    let key = KeyMaterial::new(alg, Some(HS_SECRET), pem(alg).map(str::as_bytes));
    key.unwrap_or_else(|e| panic!("fixed {alg} key rejected: {e}"))
}

/// The target's codec for `alg` and `size`, configured as `authbench target` configures it by default.
pub fn codec(alg: Alg, size: ClaimSize) -> JwtCodec {
    JwtCodec::new(key_material(alg), ISSUER, AUDIENCE, Duration::from_secs(900), Duration::from_secs(30), size.bloat)
}

/// The `Validation` `JwtCodec` builds (copied, so `jsonwebtoken::decode` can be measured on its own).
pub fn validation(alg: Alg) -> jsonwebtoken::Validation {
    let mut v = jsonwebtoken::Validation::new(alg.jwt());
    v.algorithms = vec![alg.jwt()];
    v.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[AUDIENCE]);
    v.leeway = 30;
    v
}

/// A token issued by `codec` (with a jti, as the denylist strategy issues them).
pub fn token(codec: &JwtCodec) -> String {
    codec.issue(SUBJECT, Some(JTI)).expect("issue").0
}

/// `(signing input, raw signature)` of a compact JWS: exactly the bytes the primitive works on.
pub fn split_token(token: &str) -> (Vec<u8>, Vec<u8>) {
    let (input, sig) = token.rsplit_once('.').expect("a compact JWS");
    (input.as_bytes().to_vec(), URL_SAFE_NO_PAD.decode(sig).expect("base64url signature"))
}

fn hmac_alg(alg: Alg) -> hmac::Algorithm {
    match alg {
        Alg::Hs384 => hmac::HMAC_SHA384,
        Alg::Hs512 => hmac::HMAC_SHA512,
        _ => hmac::HMAC_SHA256,
    }
}

fn verification_alg(alg: Alg) -> &'static dyn signature::VerificationAlgorithm {
    match alg {
        Alg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Alg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
        Alg::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
        Alg::Es384 => &signature::ECDSA_P384_SHA384_FIXED,
        Alg::EdDsa => &signature::ED25519,
        Alg::Hs256 | Alg::Hs384 | Alg::Hs512 => unreachable!("HMAC has no public key"),
    }
}

/// The public key bytes aws-lc-rs verifies with (PKCS#1 for RSA, the uncompressed point for ECDSA,
/// the 32 bytes for Ed25519), derived from the fixed private key.
pub fn public_key_bytes(alg: Alg) -> Vec<u8> {
    let der = pkcs8_der(alg).expect("asymmetric alg");
    match alg {
        Alg::Rs256 | Alg::Ps256 => RsaKeyPair::from_pkcs8(&der).expect("rsa").public_key().as_ref().to_vec(),
        Alg::Es256 => EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der)
            .expect("p256")
            .public_key()
            .as_ref()
            .to_vec(),
        Alg::Es384 => EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, &der)
            .expect("p384")
            .public_key()
            .as_ref()
            .to_vec(),
        Alg::EdDsa => Ed25519KeyPair::from_pkcs8(&der).expect("ed25519").public_key().as_ref().to_vec(),
        Alg::Hs256 | Alg::Hs384 | Alg::Hs512 => unreachable!("HMAC has no public key"),
    }
}

/// The floor of verification: the aws-lc-rs primitive with its key parsed once.
// The HMAC key stays inline: boxing it would add a pointer chase to the floor being measured.
#[allow(clippy::large_enum_variant)]
pub enum RawVerifier {
    Hmac(hmac::Key),
    Public(ParsedPublicKey),
}

impl RawVerifier {
    pub fn new(alg: Alg) -> Self {
        if alg.is_symmetric() {
            return RawVerifier::Hmac(hmac::Key::new(hmac_alg(alg), HS_SECRET));
        }
        let key = UnparsedPublicKey::new(verification_alg(alg), public_key_bytes(alg)).parse().expect("public key");
        RawVerifier::Public(key)
    }

    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match self {
            RawVerifier::Hmac(key) => hmac::verify(key, msg, sig).is_ok(),
            RawVerifier::Public(key) => key.verify_sig(msg, sig).is_ok(),
        }
    }
}

/// What jsonwebtoken 10.4 does per verify, without its parsing: build the key from bytes each call
/// (`hmac::Key::new` / `UnparsedPublicKey` / `RsaPublicKeyComponents{n,e}` as the target's RSA
/// `DecodingKey::from_rsa_raw_components` holds it), then verify.
pub struct PerCallVerifier {
    alg: Alg,
    public: Vec<u8>,
    /// RSA modulus and exponent, big-endian, for the `RsaPublicKeyComponents` path.
    n: Vec<u8>,
    e: Vec<u8>,
}

impl PerCallVerifier {
    pub fn new(alg: Alg) -> Self {
        if alg.is_symmetric() {
            return PerCallVerifier { alg, public: Vec::new(), n: Vec::new(), e: Vec::new() };
        }
        let (n, e) = if matches!(alg, Alg::Rs256 | Alg::Ps256) {
            let kp = RsaKeyPair::from_pkcs8(&pkcs8_der(alg).expect("rsa")).expect("rsa");
            let pk = kp.public_key();
            (
                pk.modulus().big_endian_without_leading_zero().to_vec(),
                pk.exponent().big_endian_without_leading_zero().to_vec(),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        PerCallVerifier { alg, public: public_key_bytes(alg), n, e }
    }

    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match self.alg {
            Alg::Hs256 | Alg::Hs384 | Alg::Hs512 => {
                let key = hmac::Key::new(hmac_alg(self.alg), HS_SECRET);
                hmac::verify(&key, msg, sig).is_ok()
            }
            Alg::Rs256 => signature::RsaPublicKeyComponents { n: &self.n, e: &self.e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, msg, sig)
                .is_ok(),
            Alg::Ps256 => signature::RsaPublicKeyComponents { n: &self.n, e: &self.e }
                .verify(&signature::RSA_PSS_2048_8192_SHA256, msg, sig)
                .is_ok(),
            _ => UnparsedPublicKey::new(verification_alg(self.alg), &self.public).verify(msg, sig).is_ok(),
        }
    }
}

/// The floor of issuing: the aws-lc-rs signer with its private key parsed once.
// The HMAC key stays inline: boxing it would add a pointer chase to the floor being measured.
#[allow(clippy::large_enum_variant)]
pub enum RawSigner {
    Hmac(hmac::Key),
    Ecdsa(EcdsaKeyPair, SystemRandom),
    Ed(Ed25519KeyPair),
    Rsa(RsaKeyPair, &'static dyn signature::RsaEncoding, SystemRandom),
}

impl RawSigner {
    pub fn new(alg: Alg) -> Self {
        let der = || pkcs8_der(alg).expect("asymmetric alg");
        match alg {
            Alg::Hs256 | Alg::Hs384 | Alg::Hs512 => RawSigner::Hmac(hmac::Key::new(hmac_alg(alg), HS_SECRET)),
            Alg::Rs256 => RawSigner::Rsa(
                RsaKeyPair::from_pkcs8(&der()).expect("rsa"),
                &signature::RSA_PKCS1_SHA256,
                SystemRandom::new(),
            ),
            Alg::Ps256 => RawSigner::Rsa(
                RsaKeyPair::from_pkcs8(&der()).expect("rsa"),
                &signature::RSA_PSS_SHA256,
                SystemRandom::new(),
            ),
            Alg::Es256 => RawSigner::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der()).expect("p256"),
                SystemRandom::new(),
            ),
            Alg::Es384 => RawSigner::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, &der()).expect("p384"),
                SystemRandom::new(),
            ),
            Alg::EdDsa => RawSigner::Ed(Ed25519KeyPair::from_pkcs8(&der()).expect("ed25519")),
        }
    }

    /// Sign `msg`; returns the signature length (the bytes themselves are dropped).
    pub fn sign(&self, msg: &[u8]) -> usize {
        match self {
            RawSigner::Hmac(key) => hmac::sign(key, msg).as_ref().len(),
            RawSigner::Ecdsa(kp, rng) => kp.sign(rng, msg).expect("ecdsa sign").as_ref().len(),
            RawSigner::Ed(kp) => kp.sign(msg).as_ref().len(),
            RawSigner::Rsa(kp, enc, rng) => {
                let mut sig = [0u8; 512];
                let len = kp.public_modulus_len();
                kp.sign(*enc, rng, msg, &mut sig[..len]).expect("rsa sign");
                len
            }
        }
    }
}

/// What jsonwebtoken 10.4 does per asymmetric sign: parse the private key from DER, then sign.
pub fn sign_parsing_key_per_call(alg: Alg, der: &[u8], msg: &[u8]) -> usize {
    let rng = SystemRandom::new();
    match alg {
        Alg::Hs256 | Alg::Hs384 | Alg::Hs512 => hmac::sign(&hmac::Key::new(hmac_alg(alg), der), msg).as_ref().len(),
        Alg::Rs256 | Alg::Ps256 => {
            let kp = RsaKeyPair::from_der(der).expect("rsa");
            let enc: &'static dyn signature::RsaEncoding =
                if alg == Alg::Rs256 { &signature::RSA_PKCS1_SHA256 } else { &signature::RSA_PSS_SHA256 };
            let mut sig = vec![0u8; kp.public_modulus_len()];
            kp.sign(enc, &rng, msg, &mut sig).expect("rsa sign");
            sig.len()
        }
        Alg::Es256 | Alg::Es384 => {
            let signing = if alg == Alg::Es256 {
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING
            } else {
                &signature::ECDSA_P384_SHA384_FIXED_SIGNING
            };
            let kp = EcdsaKeyPair::from_pkcs8(signing, der).expect("ecdsa");
            kp.sign(&rng, msg).expect("ecdsa sign").as_ref().len()
        }
        Alg::EdDsa => Ed25519KeyPair::from_pkcs8(der).expect("ed25519").sign(msg).as_ref().len(),
    }
}

/// The DER jsonwebtoken keeps in its `EncodingKey` for `alg` (and re-parses per sign): PKCS#1 for RSA
/// (it converts the PEM), PKCS#8 for EC and Ed25519, the secret for HMAC.
pub fn jsonwebtoken_signing_der(alg: Alg) -> Vec<u8> {
    match alg {
        Alg::Hs256 | Alg::Hs384 | Alg::Hs512 => HS_SECRET.to_vec(),
        Alg::Rs256 | Alg::Ps256 => {
            use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
            // Round-trip through aws-lc-rs to get PKCS#1 (RSAPrivateKey) bytes, as jsonwebtoken's PEM
            // parser extracts them.
            let kp = RsaKeyPair::from_pkcs8(&pkcs8_der(alg).expect("rsa")).expect("rsa");
            let pkcs8 = AsDer::<Pkcs8V1Der>::as_der(&kp).expect("der").as_ref().to_vec();
            pkcs1_from_pkcs8(&pkcs8)
        }
        _ => pkcs8_der(alg).expect("asymmetric alg"),
    }
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo` (the OCTET STRING of its third field).
fn pkcs1_from_pkcs8(der: &[u8]) -> Vec<u8> {
    fn read_len(b: &[u8], i: &mut usize) -> usize {
        let first = b[*i] as usize;
        *i += 1;
        if first < 0x80 {
            return first;
        }
        let n = first & 0x7f;
        let mut len = 0;
        for _ in 0..n {
            len = (len << 8) | b[*i] as usize;
            *i += 1;
        }
        len
    }
    let mut i = 1; // SEQUENCE
    read_len(der, &mut i);
    for _ in 0..2 {
        // version INTEGER, algorithm SEQUENCE: skip
        i += 1;
        let len = read_len(der, &mut i);
        i += len;
    }
    assert_eq!(der[i], 0x04, "PKCS#8 privateKey OCTET STRING");
    i += 1;
    let len = read_len(der, &mut i);
    der[i..i + len].to_vec()
}

/// A fresh memory store with its metrics, as the target builds it.
pub fn memory_store() -> Store {
    Store::new(Backend::Memory(Arc::new(MemoryStore::new())), Arc::new(Metrics::new()))
}

/// A store on the Redis at `url` (one pooled connection, 1 s command timeout).
pub async fn redis_store(url: &str) -> Result<Store, String> {
    let opts = RedisStoreOptions { urls: vec![url.to_owned()], pool_size: 1, command_timeout: Duration::from_secs(1) };
    let store = RedisStore::connect(opts).await.map_err(|e| e.to_string())?;
    let store = Store::new(Backend::Redis(store), Arc::new(Metrics::new()));
    store.ping().await.map_err(|e| e.to_string())?;
    Ok(store)
}

/// The target configuration a strategy is built from (defaults, `alg` and `authz` applied).
pub fn target_config(kind: StrategyKind, alg: Alg, authz: AuthzSource) -> TargetConfig {
    let mut args = TargetArgs::new(kind);
    args.alg = alg;
    args.authz = authz;
    args.secret = Some(String::from_utf8_lossy(HS_SECRET).into_owned());
    args.validate().expect("bench target config")
}

/// A `redis-server` of the benchmark's own on a free port, nothing persisted; killed on drop.
pub struct RedisServer {
    child: Child,
    pub url: String,
}

impl RedisServer {
    /// Start one, or say why not (no `redis-server` on PATH, or it did not come up within 5 s).
    pub fn start() -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        let mut server = RedisServer { child, url: format!("redis://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("redis-server exited at start: {status}"));
            }
            if Instant::now() > deadline {
                return Err("redis-server did not listen within 5 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_keys_parse_and_floor_matches_tokens() {
        for alg in Alg::ALL {
            let codec = codec(alg, TYPICAL);
            let token = token(&codec);
            codec.verify(&token).expect("verify");
            let (msg, sig) = split_token(&token);
            assert!(RawVerifier::new(alg).verify(&msg, &sig), "{alg} floor");
            assert!(PerCallVerifier::new(alg).verify(&msg, &sig), "{alg} per-call");
            assert!(RawSigner::new(alg).sign(&msg) > 0);
            assert!(sign_parsing_key_per_call(alg, &jsonwebtoken_signing_der(alg), &msg) > 0);
        }
    }

    #[test]
    fn bloated_tokens_are_about_one_and_a_half_kb() {
        let len = token(&codec(Alg::Hs256, SIZES[2])).len();
        assert!((1400..=1700).contains(&len), "bloated HS256 token is {len} bytes");
    }

    /// Writes fresh keys to `benches/keys/` (run once with `--ignored`; then re-baseline the gate).
    #[test]
    #[ignore]
    fn regenerate_keys() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("keys");
        std::fs::create_dir_all(&dir).unwrap();
        for (alg, file) in [
            (Alg::Rs256, "rsa2048.pem"),
            (Alg::Es256, "p256.pem"),
            (Alg::Es384, "p384.pem"),
            (Alg::EdDsa, "ed25519.pem"),
        ] {
            let pem = authbench_targets::keys::generate_pem(alg).unwrap();
            std::fs::write(dir.join(file), pem).unwrap();
        }
    }
}
