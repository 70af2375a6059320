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

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::{Alg, ClaimBloat};
use crate::error::ApiError;
use crate::keys::KeyMaterial;

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

/// One target's token issuer and verifier: keys, pinned algorithm and validation rules, all built once.
pub struct JwtCodec {
    keys: KeyMaterial,
    validation: Validation,
    header: Header,
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
        let alg = keys.alg.jwt();
        let mut validation = Validation::new(alg);
        validation.algorithms = vec![alg];
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.leeway = leeway.as_secs();
        let mut header = Header::new(alg);
        header.typ = Some(ACCESS_TYP.to_owned());
        header.kid = Some(keys.kid.clone());
        JwtCodec {
            keys,
            validation,
            header,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            access_ttl,
            leeway_secs: leeway.as_secs(),
            roles: bloat_roles(bloat.roles),
            scope: bloat_scope(bloat.scopes),
            pad: "x".repeat(bloat.pad_bytes),
        }
    }

    pub fn alg(&self) -> Alg {
        self.keys.alg
    }

    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    pub fn jwks_json(&self) -> Option<&str> {
        self.keys.jwks_json.as_deref()
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
        let token = jsonwebtoken::encode(&self.header, &claims, &self.keys.encoding)
            .map_err(|_| ApiError::Internal("signing failed"))?;
        Ok((token, exp))
    }

    /// Verify a bearer token completely (see the module docs for the order of checks).
    pub fn verify(&self, token: &str) -> Result<AccessClaims, ApiError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(ApiError::bearer("token too large"));
        }
        self.check_header(token)?;
        let data =
            jsonwebtoken::decode::<AccessClaims>(token, &self.keys.decoding, &self.validation).map_err(|e| match e
                .kind()
            {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => ApiError::bearer("token expired"),
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => ApiError::bearer("token not yet valid"),
                jsonwebtoken::errors::ErrorKind::InvalidSignature => ApiError::bearer("invalid signature"),
                jsonwebtoken::errors::ErrorKind::InvalidAudience => ApiError::bearer("wrong audience"),
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => ApiError::bearer("wrong issuer"),
                jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(_) => ApiError::bearer("missing required claim"),
                _ => ApiError::bearer("invalid token"),
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

    fn check_header(&self, token: &str) -> Result<(), ApiError> {
        let invalid = || ApiError::bearer("invalid token");
        let (head_b64, _) = token.split_once('.').ok_or_else(invalid)?;
        if head_b64.len() > MAX_HEADER_B64_BYTES {
            return Err(invalid());
        }
        let raw = URL_SAFE_NO_PAD.decode(head_b64).map_err(|_| invalid())?;
        let header: RawHeader<'_> = serde_json::from_slice(&raw).map_err(|_| invalid())?;
        if header.alg.as_deref() != Some(self.keys.alg.name()) {
            return Err(ApiError::bearer("algorithm not accepted"));
        }
        if header.crit.is_some() {
            return Err(ApiError::bearer("unsupported critical header"));
        }
        if header.typ.as_deref() != Some(ACCESS_TYP) {
            return Err(ApiError::bearer("wrong token type"));
        }
        if header.kid.as_deref().is_some_and(|k| k != self.keys.kid) {
            return Err(ApiError::bearer("unknown key id"));
        }
        Ok(())
    }
}

fn bloat_roles(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("role-{i:03}")).collect()
}

fn bloat_scope(n: usize) -> String {
    (0..n).map(|i| format!("api:scope-{i:03}")).collect::<Vec<_>>().join(" ")
}
