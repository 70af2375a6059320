//! `hybrid`: the migration design of seed 004 ("A combined approach: cookies and session ids"). One
//! `sid` cookie carries the session id and, once upgraded, a JWT whose `jti` embeds that session:
//! `sid=<session id>~<JWT>`.
//!
//! - **Token path** (a cookie with a JWT): verify the JWT (signature, `alg`, `aud`, `iss`, `exp`,
//!   `nbf`, as every JWT strategy), check that its `jti` is the hash of the cookie's session id (a
//!   token lifted from one session cannot ride on another), then check the session against the
//!   revoked list: one `GET`. The user id comes from the token's `sub`, as the article's gateway
//!   forwards it; the session record itself is not read.
//! - **Session path** (a cookie without a JWT, as an older client holds, or with one whose `exp`
//!   has passed): the session lookup of `session`, one `GET`, and the answer upgrades the cookie
//!   with a fresh JWT (`Set-Cookie`), so the client takes the token path from then on.
//! - A JWT that fails verification for any reason but expiry is refused (401), never retried on
//!   the session path: a tampered cookie must not pass as an older client's.
//! - **Logout and revoke-user** end both: the session record is deleted (the session path refuses
//!   at once) and the session is put on the revoked list for as long as a token embedding it can
//!   live (access TTL + leeway), so the token path refuses at once too.
//!
//! Store layout (the store only ever sees `h = sha256(session id)`):
//! - `s:<h>` -> `user\nrole,...` and `us:<user>` -> set of `h`, exactly as `session`;
//! - `rv:<h>` -> `1`, TTL = access TTL + leeway: a revoked session whose tokens may still verify.
//!
//! Roles come from the token's claims on the token path and from the session record on the session
//! path; `--authz store` adds no lookup (the session record is the store's answer).

use std::sync::Arc;
use std::time::Duration;

use super::profile::{Clients, DefaultTtls, PerRoute, Refresh, Revocation, StoreOp, StrategyProfile, Transport};
use super::{BuildContext, Credential, Grant, Principal, SessionStrategy, Strategy};
use crate::error::ApiError;
use crate::ids::{self, SECRET_BYTES};
use crate::store::Store;
use crate::token::JwtCodec;

/// Separates the session id from the JWT inside the cookie value (neither ever contains it).
const SEPARATOR: char = '~';

/// Which [`PROFILE`] `auth_paths` entry verified a request.
const TOKEN_PATH: usize = 0;
const SESSION_PATH: usize = 1;

/// Session id plus an embedded JWT in one cookie; token first, session lookup as fallback.
pub static PROFILE: StrategyProfile = StrategyProfile {
    name: "hybrid",
    description: "Session id and a JWT embedding it in one cookie: the token is checked where the client has one \
                  (plus a revoked-sessions lookup), else the session lookup, which upgrades the cookie.",
    transport: Transport::Cookie,
    refresh: Refresh::None,
    issues_jwt: true,
    logout: Revocation::DeleteRecord,
    revoke_user: Revocation::DeleteRecord,
    store_ops: PerRoute {
        api: &[StoreOp::Get],
        login: &[StoreOp::Del, StoreOp::Set, StoreOp::Sadd],
        logout: &[StoreOp::Del, StoreOp::Set],
        refresh: &[],
    },
    authz_store_lookup: false,
    ttls: DefaultTtls { access: Duration::from_secs(300) },
    fail_open: false,
    stale_reads: false,
    cached_reads: false,
    auth_paths: &["token", "session"],
    clients: Clients::CurrentAndLegacy,
};

pub struct HybridStrategy {
    /// The session half: records, fixation-safe login, the per-user set for revoke-user.
    session: SessionStrategy,
    store: Store,
    codec: Arc<JwtCodec>,
    /// How long a revoked session stays listed: the longest a token embedding it can verify.
    revoked_ttl: Duration,
    /// `Max-Age` of the cookie, as `session` sets it.
    session_ttl: Duration,
}

fn unauthorized() -> ApiError {
    ApiError::unauthorized("invalid or expired session")
}

/// `(session id, JWT)` of a cookie value; the JWT is absent in an older client's cookie.
fn split(cookie: &str) -> (&str, Option<&str>) {
    match cookie.split_once(SEPARATOR) {
        Some((sid, jwt)) => (sid, Some(jwt)),
        None => (cookie, None),
    }
}

/// `sha256(sid)` of a well-formed session id.
fn session_hash(sid: &str) -> Option<String> {
    ids::is_b64_token(sid, SECRET_BYTES).then(|| ids::hash_credential(sid))
}

impl HybridStrategy {
    /// The upgraded cookie value for session `sid` (hash `h`) of `user`.
    fn upgraded(&self, sid: &str, h: &str, user: &str) -> Result<Grant, ApiError> {
        let (jwt, _exp) = self.codec.issue(user, Some(h))?;
        Ok(Grant::Session { sid: format!("{sid}{SEPARATOR}{jwt}"), max_age_secs: self.session_ttl.as_secs() })
    }

    /// Token path: the JWT verifies, embeds this session, and the session is not revoked.
    /// `Ok(None)`: the token has expired, so the session path decides.
    async fn by_token(&self, h: &str, jwt: &str) -> Result<Option<Principal>, ApiError> {
        let claims = match self.codec.verify(jwt) {
            Ok(c) => c,
            Err(e) if e.is_token_expired() => return Ok(None),
            Err(_) => return Err(unauthorized()),
        };
        if claims.jti.as_deref() != Some(h) {
            return Err(unauthorized());
        }
        if self.store.get(&format!("rv:{h}")).await?.is_some() {
            return Err(unauthorized());
        }
        let roles = claims.roles.len();
        Ok(Some(Principal { path: TOKEN_PATH, ..Principal::new(claims.sub, roles) }))
    }

    /// End session `h`: delete its record and list it as revoked. Whether a record existed.
    async fn end_session(&self, h: &str) -> Result<bool, ApiError> {
        let existed = self.store.del(&[&format!("s:{h}")]).await? > 0;
        self.store.set(&format!("rv:{h}"), b"1", self.revoked_ttl).await?;
        Ok(existed)
    }
}

impl Strategy for HybridStrategy {
    const PROFILE: &'static StrategyProfile = &PROFILE;

    fn build(ctx: &BuildContext<'_>) -> anyhow::Result<Self> {
        let c = ctx.config;
        Ok(HybridStrategy {
            session: SessionStrategy::new(ctx.store.clone(), c.session_ttl, &ctx.roles()),
            store: ctx.store.clone(),
            codec: ctx.codec()?,
            revoked_ttl: c.access_ttl + c.leeway,
            session_ttl: c.session_ttl,
        })
    }

    async fn login(&self, user: &str, offered: Credential<'_>) -> Result<Grant, ApiError> {
        let Grant::Session { sid, .. } = self.login_legacy(user, offered).await? else {
            return Err(ApiError::Internal("session login handed no session"));
        };
        let h = ids::hash_credential(&sid);
        self.upgraded(&sid, &h, user)
    }

    /// An older client's cookie: the session id alone (upgraded on its first api request).
    async fn login_legacy(&self, user: &str, offered: Credential<'_>) -> Result<Grant, ApiError> {
        let offered = match offered {
            Credential::Cookie(v) => Credential::Cookie(split(v).0),
            other => other,
        };
        self.session.login(user, offered).await
    }

    async fn authenticate(&self, cred: Credential<'_>) -> Result<Principal, ApiError> {
        let Credential::Cookie(value) = cred else { return Err(unauthorized()) };
        let (sid, jwt) = split(value);
        let h = session_hash(sid).ok_or_else(unauthorized)?;
        if let Some(jwt) = jwt
            && let Some(principal) = self.by_token(&h, jwt).await?
        {
            return Ok(principal);
        }
        let principal = self.session.authenticate(Credential::Cookie(sid)).await?;
        let renewed = Some(self.upgraded(sid, &h, &principal.sub)?);
        Ok(Principal { path: SESSION_PATH, renewed, ..principal })
    }

    async fn logout(&self, cred: Credential<'_>, _refresh_token: Option<&str>) -> Result<bool, ApiError> {
        let Credential::Cookie(value) = cred else { return Err(unauthorized()) };
        let h = session_hash(split(value).0).ok_or_else(unauthorized)?;
        self.end_session(&h).await
    }

    async fn revoke_user(&self, user: &str) -> Result<bool, ApiError> {
        let set_key = format!("us:{user}");
        let mut revoked = false;
        for h in self.store.smembers(&set_key).await? {
            revoked |= self.end_session(&h).await?;
        }
        self.store.del(&[&set_key]).await?;
        Ok(revoked)
    }

    fn codec(&self) -> Option<&Arc<JwtCodec>> {
        Some(&self.codec)
    }
}
