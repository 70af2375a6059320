//! `jwt-refresh`: a short-lived access JWT (verified exactly as in `jwt`, no store per request) plus
//! an opaque, rotating refresh token kept server-side.
//!
//! Refresh token: `<family>.<secret>`, family 128 random bits, secret 256 random bits, both from the
//! OS CSPRNG, base64url. The family id groups every token rotated from one login.
//!
//! Store layout (the store never sees a live refresh token, only `h = sha256(token)`):
//! - `rt:{<family>}:<h>` -> `live`, or `used` once redeemed; TTL = the family's remaining life, kept
//!   on redemption, so a used token is remembered (for reuse detection) as long as the family could live;
//! - `rf:{<family>}` -> `<user>\n<family expiry, unix seconds>`, TTL = refresh TTL from login. The
//!   family is alive exactly while this key exists: deleting it revokes every token of the family;
//! - `uf:<user>` -> set of the user's family ids, for revoke-user.
//!
//! Refresh: the family record is read first (missing: revoked or expired -> 401), then
//! `SET rt:.. used XX KEEPTTL GET` is the one atomic step that makes a token redeemable at most once,
//! even under concurrent redemption. Old value:
//! - missing: unknown or expired token -> 401;
//! - `used`: the token was already rotated, so two parties hold it (theft, RFC 9700 4.14.2): the
//!   whole family is deleted, which also kills the newer token the other party holds -> 401;
//! - `live`: if the family still exists, a new access token and a new refresh token of the same
//!   family (with the family's remaining life) are issued.
//!
//! The honest property the report shows: access tokens are not revocable. Logout and revoke-user end
//! the refresh families at once, but an access token already issued stays valid until its `exp`
//! (default 5 minutes) plus leeway.
//!
//! Refresh tokens are never accepted as access tokens (they are not JWTs) and access tokens are never
//! accepted at `/refresh` (they fail the shape check before any store lookup).

use std::sync::Arc;
use std::time::Duration;

use super::jwt::store_roles;
use super::profile::{Clients, DefaultTtls, PerRoute, Refresh, Revocation, StoreOp, StrategyProfile, Transport};
use super::{BuildContext, Credential, Grant, Principal, Strategy};
use crate::config::{AuthzSource, TargetConfig};
use crate::error::{ApiError, StoreError};
use crate::ids::{self, ID_BYTES, SECRET_BYTES};
use crate::store::Store;
use crate::token::{JwtCodec, now_secs};

/// Value of a refresh token that has not been redeemed.
const LIVE: &[u8] = b"live";
/// Value it is atomically replaced with on redemption.
const USED: &[u8] = b"used";

/// A short-lived bearer JWT (no store per request) and a rotating refresh token kept in the store.
pub static PROFILE: StrategyProfile = StrategyProfile {
    name: "jwt-refresh",
    description: "Short-lived access JWT plus a rotating, server-side refresh token.",
    transport: Transport::Bearer,
    refresh: Refresh::JsonBody,
    issues_jwt: true,
    logout: Revocation::RefreshFamily,
    revoke_user: Revocation::RefreshFamily,
    store_ops: PerRoute {
        api: &[],
        login: &[StoreOp::Set, StoreOp::Sadd],
        logout: &[StoreOp::Mget, StoreOp::Del],
        refresh: &[StoreOp::Get, StoreOp::SetXxGet, StoreOp::Set],
    },
    authz_store_lookup: true,
    ttls: DefaultTtls { access: Duration::from_secs(300) },
    fail_open: false,
    stale_reads: false,
    cached_reads: false,
    auth_paths: &[],
    clients: Clients::One,
};

pub struct JwtRefreshStrategy {
    codec: Arc<JwtCodec>,
    /// Holds refresh tokens (hashed), families, users' family sets and (`--authz store`) roles.
    store: Store,
    authz: AuthzSource,
    /// Absolute lifetime of a family from its login; rotation never extends it.
    refresh_ttl: Duration,
}

impl JwtRefreshStrategy {
    pub fn new(codec: Arc<JwtCodec>, store: Store, config: &TargetConfig) -> Self {
        JwtRefreshStrategy { codec, store, authz: config.authz, refresh_ttl: config.refresh_ttl }
    }

    /// Mint a refresh token in `family`, stored `live` for `ttl`.
    async fn mint(&self, family: &str, ttl: Duration) -> Result<String, ApiError> {
        let token = format!("{family}.{}", ids::random_token::<SECRET_BYTES>()?);
        self.store.set(&token_key(family, &token), LIVE, ttl).await?;
        Ok(token)
    }

    fn grant(&self, user: &str, refresh_token: String) -> Result<Grant, ApiError> {
        let (access_token, _exp) = self.codec.issue(user, None)?;
        Ok(Grant::Tokens {
            access_token,
            expires_in_secs: self.codec.access_ttl().as_secs(),
            refresh_token: Some(refresh_token),
        })
    }

    /// Delete a family (its record); returns whether it was alive.
    async fn kill_family(&self, family: &str) -> Result<bool, ApiError> {
        Ok(self.store.del(&[&family_key(family)]).await? > 0)
    }
}

fn token_key(family: &str, token: &str) -> String {
    format!("rt:{{{family}}}:{}", ids::hash_credential(token))
}

fn family_key(family: &str) -> String {
    format!("rf:{{{family}}}")
}

fn user_families_key(user: &str) -> String {
    format!("uf:{user}")
}

/// The family id of a refresh token of the right shape; `None` for anything else (cheap reject,
/// no store lookup).
fn family_of(token: &str) -> Option<&str> {
    let (family, secret) = token.split_once('.')?;
    (ids::is_b64_token(family, ID_BYTES) && ids::is_b64_token(secret, SECRET_BYTES)).then_some(family)
}

/// A family record: `<user>\n<expiry unix seconds>`.
fn parse_family(v: &[u8]) -> Result<(String, u64), StoreError> {
    let corrupt = || StoreError::Corrupt("refresh family");
    let text = std::str::from_utf8(v).map_err(|_| corrupt())?;
    let (user, exp) = text.split_once('\n').ok_or_else(corrupt)?;
    if !ids::valid_user(user) {
        return Err(corrupt());
    }
    Ok((user.to_owned(), exp.parse().map_err(|_| corrupt())?))
}

fn invalid_refresh() -> ApiError {
    ApiError::unauthorized("invalid refresh token")
}

impl Strategy for JwtRefreshStrategy {
    const PROFILE: &'static StrategyProfile = &PROFILE;

    fn build(ctx: &BuildContext<'_>) -> anyhow::Result<Self> {
        Ok(JwtRefreshStrategy::new(ctx.codec()?, ctx.store.clone(), ctx.config))
    }

    fn codec(&self) -> Option<&Arc<JwtCodec>> {
        Some(&self.codec)
    }

    async fn login(&self, user: &str, _offered: Credential<'_>) -> Result<Grant, ApiError> {
        store_roles(&self.store, &self.codec, self.authz, user).await?;
        let family = ids::random_token::<ID_BYTES>()?;
        let ttl = self.refresh_ttl.max(Duration::from_secs(1));
        let expires = now_secs() + ttl.as_secs();
        // Family first: a token is only ever stored for a family that exists.
        self.store.set(&family_key(&family), format!("{user}\n{expires}").as_bytes(), ttl).await?;
        self.store.sadd(&user_families_key(user), &family, ttl).await?;
        let refresh_token = self.mint(&family, ttl).await?;
        self.grant(user, refresh_token)
    }

    async fn authenticate(&self, cred: Credential<'_>) -> Result<Principal, ApiError> {
        super::jwt::authenticate_bearer(&self.codec, &self.store, self.authz, cred).await
    }

    async fn refresh(&self, refresh_token: &str) -> Result<Grant, ApiError> {
        let family = family_of(refresh_token).ok_or_else(invalid_refresh)?;
        // Read the family *before* redeeming: the redemption's winner then never loses a race with a
        // concurrent replay's reuse detection deleting the family, so of N concurrent redemptions
        // exactly one succeeds (and the replays still revoke the family, winner's new token included).
        let record = self.store.get(&family_key(family)).await?.ok_or_else(invalid_refresh)?;
        let old = self.store.set_xx_get(&token_key(family, refresh_token), USED).await?;
        match old.as_deref() {
            None => Err(invalid_refresh()),
            Some(USED) => {
                tracing::warn!("refresh token reuse detected: revoking its family");
                self.kill_family(family).await?;
                Err(ApiError::unauthorized("refresh token reused; session revoked"))
            }
            Some(LIVE) => {
                let (user, expires) = parse_family(&record)?;
                let remaining = expires.saturating_sub(now_secs());
                if remaining == 0 {
                    return Err(invalid_refresh());
                }
                let new_token = self.mint(family, Duration::from_secs(remaining)).await?;
                self.grant(&user, new_token)
            }
            Some(_) => Err(StoreError::Corrupt("refresh token state").into()),
        }
    }

    async fn logout(&self, cred: Credential<'_>, refresh_token: Option<&str>) -> Result<bool, ApiError> {
        // A bearer token, when given, must be valid (a forged one is 401 even with a good refresh token).
        let sub = match cred {
            Credential::Bearer(token) => Some(self.codec.verify(token)?.sub),
            _ => None,
        };
        let Some(refresh_token) = refresh_token else {
            // Only an access token: it cannot be revoked, and it names no family.
            return match sub {
                Some(_) => Ok(false),
                None => Err(ApiError::bearer("missing bearer token or refresh token")),
            };
        };
        let family = family_of(refresh_token).ok_or_else(invalid_refresh)?;
        // Only a holder of one of the family's tokens (live or already rotated) may end it: knowing
        // the family id alone is not enough. Both keys share the family's hash tag: one command.
        let tk = token_key(family, refresh_token);
        let fk = family_key(family);
        let values = self.store.mget(&[&tk, &fk]).await?;
        let (Some(token_state), Some(record)) = (values.first(), values.get(1)) else {
            return Err(StoreError::Corrupt("mget reply length").into());
        };
        if token_state.is_none() {
            return Err(invalid_refresh());
        }
        let Some(record) = record else { return Ok(false) };
        let (user, _) = parse_family(record)?;
        if sub.as_deref().is_some_and(|s| s != user) {
            return Err(ApiError::unauthorized("refresh token belongs to another user"));
        }
        self.kill_family(family).await
    }

    async fn revoke_user(&self, user: &str) -> Result<bool, ApiError> {
        let set_key = user_families_key(user);
        let families = self.store.smembers(&set_key).await?;
        let mut revoked = false;
        // One key per DEL: families live in different cluster slots.
        for family in &families {
            revoked |= self.kill_family(family).await?;
        }
        self.store.del(&[&set_key]).await?;
        Ok(revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_token_shape() {
        let fam = ids::random_token::<ID_BYTES>().unwrap();
        let sec = ids::random_token::<SECRET_BYTES>().unwrap();
        assert_eq!(family_of(&format!("{fam}.{sec}")), Some(fam.as_str()));
        assert_eq!(family_of(&format!("{sec}.{fam}")), None);
        assert_eq!(family_of(&format!("{fam}.{sec}.x")), None);
        assert_eq!(family_of("a.b.c"), None);
        assert_eq!(family_of(""), None);
    }

    #[test]
    fn family_records() {
        assert_eq!(parse_family(b"alice\n42").unwrap(), ("alice".to_owned(), 42));
        assert!(parse_family(b"alice").is_err());
        assert!(parse_family(b"a}b\n1").is_err());
    }
}
