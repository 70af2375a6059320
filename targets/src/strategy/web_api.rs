//! `web+api`: seed 002's third pattern ("Sessions for Web, JWTs for APIs"). One backend serves two
//! populations, each with the credential that suits it:
//!
//! - **Browsers** log in as usual (`POST /login {"user"}`) and get the `sid` cookie: the **session
//!   path**, exactly `session`'s code (fixation-safe login, one `GET` of the session record per
//!   request, logout deletes the record).
//! - **API clients** log in with `{"user", "client": "api"}` and get a bearer access JWT: the
//!   **bearer path**, exactly `jwt-denylist`'s code (pinned `alg`, `typ`, `kid`, signature, `exp`,
//!   `nbf`, `iat`, `iss`, `aud`, `sub`, the jti's millisecond stamp, then one `MGET` of the jti's
//!   denylist entry and the user's not-before; logout denylists the jti).
//!
//! A request is verified by the credential it carries: an `Authorization: Bearer` header takes the
//! bearer path, else the `sid` cookie the session path. With both, the **bearer wins** (as the
//! server reads every `Transport::Both` strategy) and the cookie is not consulted: a bearer token
//! that fails is a 401 even beside a valid cookie, never a fall-back to the session. Logout with
//! both ends both (the server ends the cookie's session too, since its answer clears the cookie).
//! A credential of one kind presented as the other is refused by the shape checks before any store
//! lookup: a session id is not a JWT, and a JWT is not a 43-character session id.
//!
//! Revoke-user ends everything the user holds: every session record is deleted and the user's
//! not-before is moved, so both paths refuse at once.
//!
//! Store layout: `session`'s (`s:<sha256(sid)>`, `us:<user>`) and `jwt-denylist`'s (`dl:{user}:<jti>`,
//! `nbf:{user}`, `roles:{user}`) side by side; the prefixes never meet.

use std::sync::Arc;
use std::time::Duration;

use super::profile::{Clients, DefaultTtls, PerRoute, Refresh, Revocation, StoreOp, StrategyProfile, Transport};
use super::{BuildContext, Credential, Grant, JwtDenylistStrategy, Principal, SessionStrategy, Strategy};
use crate::error::ApiError;
use crate::token::JwtCodec;

/// Which [`PROFILE`] `auth_paths` entry verified a request.
const SESSION_PATH: usize = 0;
const BEARER_PATH: usize = 1;

/// Browsers on the session cookie, API clients on bearer JWTs with the denylist check.
pub static PROFILE: StrategyProfile = StrategyProfile {
    name: "web+api",
    description: "One backend for browsers and API clients: browsers hold a session cookie (one store lookup), \
                  API clients a bearer JWT checked as jwt-denylist (signature, claims, one denylist lookup).",
    transport: Transport::Both,
    refresh: Refresh::None,
    issues_jwt: true,
    // Both paths refuse at once: the session record is deleted, the jti (or the user) denylisted.
    logout: Revocation::DeleteRecord,
    revoke_user: Revocation::DeleteRecord,
    store_ops: PerRoute {
        // One of the two per request: the session path's GET or the bearer path's MGET.
        api: &[StoreOp::Get, StoreOp::Mget],
        // A browser login: DEL of an offered session, SET, SADD; an API login: GET of the not-before.
        login: &[StoreOp::Del, StoreOp::Set, StoreOp::Sadd, StoreOp::Get],
        logout: &[StoreOp::Del, StoreOp::Set],
        refresh: &[],
    },
    // The bearer path reads the roles in its MGET with `--authz store`, as `jwt-denylist`.
    authz_store_lookup: true,
    ttls: DefaultTtls { access: Duration::from_secs(900) },
    fail_open: false,
    stale_reads: false,
    cached_reads: false,
    auth_paths: &["session", "bearer"],
    clients: Clients::BrowserAndApi,
};

pub struct WebApiStrategy {
    /// The browsers' path: `session`'s records, login, logout and revoke-user.
    session: SessionStrategy,
    /// The API clients' path: `jwt-denylist`'s tokens, checks, denylist and not-before.
    bearer: JwtDenylistStrategy,
}

impl Strategy for WebApiStrategy {
    const PROFILE: &'static StrategyProfile = &PROFILE;

    fn build(ctx: &BuildContext<'_>) -> anyhow::Result<Self> {
        let c = ctx.config;
        Ok(WebApiStrategy {
            session: SessionStrategy::new(ctx.store.clone(), c.session_ttl, &ctx.roles()),
            bearer: JwtDenylistStrategy::new(ctx.codec()?, ctx.store.clone(), c),
        })
    }

    /// A browser: a new session (an offered one is ended, never adopted).
    async fn login(&self, user: &str, offered: Credential<'_>) -> Result<Grant, ApiError> {
        self.session.login(user, offered).await
    }

    /// An API client: a bearer JWT. A cookie it happens to send is left alone (it adopts nothing).
    async fn login_api(&self, user: &str, offered: Credential<'_>) -> Result<Grant, ApiError> {
        self.bearer.login(user, offered).await
    }

    async fn authenticate(&self, cred: Credential<'_>) -> Result<Principal, ApiError> {
        match cred {
            Credential::Cookie(_) => {
                let principal = self.session.authenticate(cred).await?;
                Ok(Principal { path: SESSION_PATH, ..principal })
            }
            Credential::Bearer(_) => {
                let principal = self.bearer.authenticate(cred).await?;
                Ok(Principal { path: BEARER_PATH, ..principal })
            }
            Credential::Missing => Err(ApiError::bearer("missing credential")),
        }
    }

    async fn logout(&self, cred: Credential<'_>, refresh_token: Option<&str>) -> Result<bool, ApiError> {
        match cred {
            Credential::Cookie(_) => self.session.logout(cred, refresh_token).await,
            Credential::Bearer(_) => self.bearer.logout(cred, refresh_token).await,
            Credential::Missing => Err(ApiError::bearer("missing credential")),
        }
    }

    /// Every session of the user deleted and the user's not-before moved: both paths refuse.
    async fn revoke_user(&self, user: &str) -> Result<bool, ApiError> {
        let sessions = self.session.revoke_user(user).await?;
        let tokens = self.bearer.revoke_user(user).await?;
        Ok(sessions || tokens)
    }

    fn codec(&self) -> Option<&Arc<JwtCodec>> {
        self.bearer.codec()
    }
}
