//! Issuing and verifying access JWTs the way a careful production service does.
//!
//! Verification, in order, each step refusing with 401 before the next runs:
//! 1. size: a token over [`MAX_TOKEN_BYTES`] is refused unread;
//! 2. header, parsed by us: `alg` must be the one pinned algorithm (so `none`, any spelling, and
//!    HS/RS key confusion are refused), `typ` must be `at+jwt` (RFC 9068 explicit typing), `kid`
//!    must be ours if present, and any `crit` is refused (we implement no extensions, RFC 7515 4.1.11);
//!    `jwk`/`jku`/`x5u`/`x5c` are never used to find a key;
//! 3. signature, by jsonwebtoken on aws-lc-rs, with the key parsed at start-up;
//! 4. claims: `exp`, `nbf`, `iat`, `iss`, `aud`, `sub` all required; iss and aud must match;
//!    exp and nbf checked with the configured leeway, and an `iat` in the future is refused too.
//!
//! The `kid` picks the key: the current one, or the previous one for a stated overlap after a key
//! rotation (see [`JwtCodec`]).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::{Alg, ClaimBloat};
use crate::error::ApiError;
use crate::keys::{KeyError, KeyMaterial};

/// Largest bearer token looked at. Bigger ones are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Largest encoded JOSE header looked at.
const MAX_HEADER_B64_BYTES: usize = 1024;
/// The `typ` our access tokens carry and require (RFC 9068).
pub const ACCESS_TYP: &str = "at+jwt";

/// Claims of a verified access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessClaims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    pub nbf: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pad: String,
}

/// The same claims, borrowed, for issuing without copying the bloat per token.
#[derive(Serialize)]
struct IssueClaims<'a> {
    sub: &'a str,
    iss: &'a str,
    aud: &'a str,
    exp: u64,
    iat: u64,
    nbf: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    roles: &'a [String],
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pad: &'a str,
}

/// Header fields we check ourselves, borrowed from the decoded header.
#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    typ: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    kid: Option<std::borrow::Cow<'a, str>>,
    crit: Option<serde::de::IgnoredAny>,
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// One signing key and the header every token it signs carries (its `kid` included).
struct SigningKey {
    keys: KeyMaterial,
    header: Header,
}

impl SigningKey {
    fn new(keys: KeyMaterial) -> Self {
        let mut header = Header::new(keys.alg.jwt());
        header.typ = Some(ACCESS_TYP.to_owned());
        header.kid = Some(keys.kid.clone());
        SigningKey { keys, header }
    }
}

/// The keys a codec accepts at one moment. Never mutated: a rotation builds a new ring and swaps it
/// in whole, so a reader sees the old ring or the new one, never a mix.
struct KeyRing {
    /// Signs every new token; always accepted.
    current: Arc<SigningKey>,
    /// The key that signed before the last rotation, accepted until the instant given (the
    /// rotation overlap). `None` with an overlap of 0: every older token is rejected at once.
    previous: Option<(Arc<SigningKey>, Instant)>,
    /// JWKS with the current key only, and with current + previous (used while the overlap lasts).
    /// `None` for HS* (a shared secret is never published).
    jwks_current: Option<Arc<str>>,
    jwks_with_previous: Option<Arc<str>>,
}

impl KeyRing {
    fn new(current: Arc<SigningKey>, previous: Option<(Arc<SigningKey>, Instant)>) -> Self {
        let jwks = |keys: &[&SigningKey]| -> Option<Arc<str>> {
            let jwks: Option<Vec<&str>> = keys.iter().map(|k| k.keys.jwk.as_deref()).collect();
            jwks.map(|members| Arc::from(format!(r#"{{"keys":[{}]}}"#, members.join(","))))
        };
        let jwks_current = current.keys.jwks_json.as_deref().map(Arc::from);
        let jwks_with_previous = match &previous {
            Some((prev, _)) => jwks(&[&current, prev]),
            None => jwks_current.clone(),
        };
        KeyRing { current, previous, jwks_current, jwks_with_previous }
    }

    /// The previous key, while its overlap lasts.
    fn live_previous(&self, now: Instant) -> Option<&SigningKey> {
        self.previous.as_ref().filter(|(_, until)| now < *until).map(|(k, _)| &**k)
    }
}

/// One target's token issuer and verifier: keys, pinned algorithm and validation rules, all built once.
///
/// # Key rotation
///
/// [`JwtCodec::rotate`] generates a fresh key (new `kid`) and signs with it from then on. Tokens of
/// the previous key stay valid for the configured overlap (`--rotation-overlap`), then are refused;
/// with an overlap of 0 every older token is refused at once (a mass logout). A second rotation
/// during an overlap retires the key before the previous one immediately: at most two keys are ever
/// accepted. The keys sit behind an [`ArcSwap`], so the request path reads them without a lock.
pub struct JwtCodec {
    /// The one algorithm signed and accepted (rotation keeps it).
    alg: Alg,
    /// Current (+ previous) keys; swapped whole on rotation, read lock-free per request.
    ring: ArcSwap<KeyRing>,
    /// How long the previous key stays accepted after a rotation.
    rotation_overlap: Duration,
    validation: Validation,
    issuer: String,
    audience: String,
    access_ttl: Duration,
    leeway_secs: u64,
    /// Roles, scope and padding put in every token: built once from the bloat knob.
    roles: Vec<String>,
    scope: String,
    pad: String,
}

impl JwtCodec {
    pub fn new(
        keys: KeyMaterial,
        issuer: &str,
        audience: &str,
        access_ttl: Duration,
        leeway: Duration,
        bloat: ClaimBloat,
    ) -> Self {
        let alg = keys.alg;
        let mut validation = Validation::new(alg.jwt());
        validation.algorithms = vec![alg.jwt()];
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.leeway = leeway.as_secs();
        JwtCodec {
            alg,
            ring: ArcSwap::from_pointee(KeyRing::new(Arc::new(SigningKey::new(keys)), None)),
            rotation_overlap: Duration::ZERO,
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            access_ttl,
            leeway_secs: leeway.as_secs(),
            roles: bloat_roles(bloat.roles),
            scope: bloat_scope(bloat.scopes),
            pad: "x".repeat(bloat.pad_bytes),
        }
    }

    /// How long tokens of the previous key stay valid after [`JwtCodec::rotate`] (default 0).
    pub fn with_rotation_overlap(mut self, overlap: Duration) -> Self {
        self.rotation_overlap = overlap;
        self
    }

    pub fn alg(&self) -> Alg {
        self.alg
    }

    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// The `kid` new tokens are signed under.
    pub fn kid(&self) -> String {
        self.ring.load().current.keys.kid.clone()
    }

    /// The JWKS document (current key, plus the previous one while its overlap lasts); `None` for
    /// HS*.
    pub fn jwks_json(&self) -> Option<Arc<str>> {
        let ring = self.ring.load();
        if ring.live_previous(Instant::now()).is_some() {
            ring.jwks_with_previous.clone()
        } else {
            ring.jwks_current.clone()
        }
    }

    /// Rotate the signing key: generate a fresh one (new `kid`) for the same algorithm and sign with
    /// it from now on; the old key stays accepted for the rotation overlap. Returns the new `kid`.
    ///
    /// Generating an RSA key takes a while: call this off the async runtime's worker threads. With
    /// HS* the new key is a fresh random secret, whatever `--secret` said.
    pub fn rotate(&self) -> Result<String, KeyError> {
        let fresh = Arc::new(SigningKey::new(KeyMaterial::generate(self.alg)?));
        let kid = fresh.keys.kid.clone();
        let now = Instant::now();
        let until = now.checked_add(self.rotation_overlap).unwrap_or(now);
        self.ring.rcu(|old| {
            let previous = (!self.rotation_overlap.is_zero()).then(|| (old.current.clone(), until));
            KeyRing::new(fresh.clone(), previous)
        });
        tracing::info!(%kid, overlap_ms = self.rotation_overlap.as_millis(), "signing key rotated");
        Ok(kid)
    }

    /// The roles every token carries (also what `--authz store` keeps per user).
    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    /// Sign a new access token for `sub`. Returns the token and its `exp`.
    pub fn issue(&self, sub: &str, jti: Option<&str>) -> Result<(String, u64), ApiError> {
        let iat = now_secs();
        let exp = iat + self.access_ttl.as_secs().max(1);
        let claims = IssueClaims {
            sub,
            iss: &self.issuer,
            aud: &self.audience,
            exp,
            iat,
            nbf: iat,
            jti,
            roles: &self.roles,
            scope: &self.scope,
            pad: &self.pad,
        };
        let ring = self.ring.load();
        let token = jsonwebtoken::encode(&ring.current.header, &claims, &ring.current.keys.encoding)
            .map_err(|_| ApiError::Internal("signing failed"))?;
        Ok((token, exp))
    }

    /// Verify a bearer token completely (see the module docs for the order of checks).
    pub fn verify(&self, token: &str) -> Result<AccessClaims, ApiError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(ApiError::bearer("token too large"));
        }
        // Lock-free: a rotation swaps the ring, it never blocks or is blocked by this read.
        let ring = self.ring.load();
        let key = self.check_header(&ring, token)?;
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key.keys.decoding, &self.validation).map_err(|e| {
            match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => ApiError::bearer(crate::error::TOKEN_EXPIRED),
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => ApiError::bearer("token not yet valid"),
                jsonwebtoken::errors::ErrorKind::InvalidSignature => ApiError::bearer("invalid signature"),
                jsonwebtoken::errors::ErrorKind::InvalidAudience => ApiError::bearer("wrong audience"),
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => ApiError::bearer("wrong issuer"),
                jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(_) => ApiError::bearer("missing required claim"),
                _ => ApiError::bearer("invalid token"),
            }
        })?;
        let claims = data.claims;
        if claims.iat > now_secs() + self.leeway_secs {
            return Err(ApiError::bearer("token issued in the future"));
        }
        if claims.sub.is_empty() {
            return Err(ApiError::bearer("missing required claim"));
        }
        Ok(claims)
    }

    /// Check the header and pick the key to verify with: the current one (a token without `kid`
    /// too), or the previous one while its overlap lasts.
    fn check_header<'r>(&self, ring: &'r KeyRing, token: &str) -> Result<&'r SigningKey, ApiError> {
        let invalid = || ApiError::bearer("invalid token");
        let (head_b64, _) = token.split_once('.').ok_or_else(invalid)?;
        if head_b64.len() > MAX_HEADER_B64_BYTES {
            return Err(invalid());
        }
        let raw = URL_SAFE_NO_PAD.decode(head_b64).map_err(|_| invalid())?;
        let header: RawHeader<'_> = serde_json::from_slice(&raw).map_err(|_| invalid())?;
        if header.alg.as_deref() != Some(self.alg.name()) {
            return Err(ApiError::bearer("algorithm not accepted"));
        }
        if header.crit.is_some() {
            return Err(ApiError::bearer("unsupported critical header"));
        }
        if header.typ.as_deref() != Some(ACCESS_TYP) {
            return Err(ApiError::bearer("wrong token type"));
        }
        match header.kid.as_deref() {
            None => Ok(&ring.current),
            Some(kid) if kid == ring.current.keys.kid => Ok(&ring.current),
            Some(kid) => match &ring.previous {
                Some((prev, until)) if kid == prev.keys.kid => {
                    if Instant::now() < *until {
                        Ok(prev)
                    } else {
                        Err(ApiError::bearer("signing key retired"))
                    }
                }
                _ => Err(ApiError::bearer("unknown key id")),
            },
        }
    }
}

fn bloat_roles(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("role-{i:03}")).collect()
}

fn bloat_scope(n: usize) -> String {
    (0..n).map(|i| format!("api:scope-{i:03}")).collect::<Vec<_>>().join(" ")
}
