//! `jwt-denylist`: a signed access token as in `jwt`, plus one store lookup per request so that
//! logout and revoke-user take effect at once (revocation window 0, like sessions).
//!
//! Store layout (every key of one user shares the `{user}` hash tag, so the per-request lookup is one
//! `MGET` that stays valid on Redis Cluster):
//! - `dl:{user}:<jti>` -> `1`, TTL = the token's remaining life plus leeway: a logged-out token;
//! - `nbf:{user}` -> milliseconds since the epoch, TTL = access TTL + leeway + 1 s: revoke-user's
//!   per-user not-before; any token stamped before it is refused;
//! - `roles:{user}` (only with `--authz store`), as in `jwt`.
//!
//! # Same-second revoke
//!
//! `iat` has one-second resolution, so "refuse `iat` < not-before" cannot tell a token issued just
//! before a revoke from one issued just after it in the same second: with not-before = now the
//! earlier token survives, with not-before = now + 1 the later login is refused for up to a second.
//! Instead the `jti` is ULID-style, `<issued_ms>.<128 random bits>`, so every token carries a signed
//! millisecond issue stamp, and:
//! - revoke-user writes not-before = max(now_ms + 1, previous not-before + 1): every token stamped at
//!   or before the revoke's millisecond, and every token a previous revoke allowed, is refused;
//! - login reads the user's not-before first (one GET, off the per-request path) and stamps the new
//!   token max(now_ms, not-before): a login that follows a revoke always gets a working token, even
//!   in the same millisecond, and never has to wait;
//! - per request the token is refused when its stamp < not-before.
//!
//! Sequential revoke/login are therefore exact. The limits: a login racing a concurrent revoke may
//! get a token that the revoke kills (fail safe), and instances sharing one store must have clocks in
//! sync to well under the access TTL (as for `exp` anyway).
//!
//! A token without a well-formed jti (e.g. a plain `jwt` target's token signed with the same key) is
//! refused: it could never be denylisted.
//!
//! # Fail open (`--fail-open`)
//!
//! By default a store that cannot answer the per-request lookup makes the request fail with 503
//! (fail closed). With `--fail-open` a request whose token verifies (signature, claims, jti shape)
//! is allowed when that lookup fails with an outage (unreachable or timed out), without knowing
//! whether the token was revoked: availability bought with security. Each such allow is logged and
//! counted in `authbench_fail_open_allows_total`, and its roles come from the token's claims. A
//! store that answers with malformed data still fails closed: that is not an outage. Login, logout
//! and revoke-user need the store to do their work and still answer 503.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::jwt::{count_roles, roles_key, store_roles};
use super::profile::{Clients, DefaultTtls, PerRoute, Refresh, Revocation, StoreOp, StrategyProfile, Transport};
use super::{BuildContext, Credential, Grant, Principal, Strategy};
use crate::cache::Reads;
use crate::config::{AuthzSource, TargetConfig};
use crate::error::{ApiError, StoreError};
use crate::ids::{self, ID_BYTES};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::token::{JwtCodec, now_secs};

/// Longest decimal millisecond stamp accepted in a jti (u64::MAX has 20 digits).
const MAX_STAMP_DIGITS: usize = 20;

/// A bearer JWT plus one MGET per request (denylisted jti, user's not-before): revocable at once.
pub static PROFILE: StrategyProfile = StrategyProfile {
    name: "jwt-denylist",
    description: "Signed JWT plus a store lookup of its jti (and the user's not-before) per request.",
    transport: Transport::Bearer,
    refresh: Refresh::None,
    issues_jwt: true,
    logout: Revocation::Denylist,
    revoke_user: Revocation::Denylist,
    store_ops: PerRoute {
        api: &[StoreOp::Mget],
        login: &[StoreOp::Get],
        logout: &[StoreOp::Mget, StoreOp::Set],
        refresh: &[],
    },
    // The roles key rides in the same MGET.
    authz_store_lookup: true,
    ttls: DefaultTtls { access: Duration::from_secs(900) },
    fail_open: true,
    stale_reads: false,
    cached_reads: false,
    auth_paths: &[],
    clients: Clients::One,
};

pub struct JwtDenylistStrategy {
    codec: Arc<JwtCodec>,
    /// Holds denylisted jtis, per-user not-befores and (with `--authz store`) roles.
    store: Store,
    /// How the per-request lookup reads: the store itself, or `jwt-denylist-cached`'s cache.
    reads: Reads,
    authz: AuthzSource,
    /// Clock-skew allowance the codec accepts past `exp`; denylist entries must outlive it too.
    leeway: Duration,
    /// How long a per-user not-before must be kept: after it, every token it refuses has expired.
    nbf_ttl: Duration,
    /// `Some` with `--fail-open`: where requests allowed without their denylist check are counted.
    fail_open: Option<Arc<Metrics>>,
}

impl JwtDenylistStrategy {
    pub fn new(codec: Arc<JwtCodec>, store: Store, config: &TargetConfig) -> Self {
        // +1 s: `exp` is whole seconds from an `iat` rounded down, so a token can outlive
        // access_ttl by up to a second.
        let nbf_ttl = config.access_ttl + config.leeway + Duration::from_secs(1);
        let reads = Reads::direct(store.clone());
        JwtDenylistStrategy {
            codec,
            store,
            reads,
            authz: config.authz,
            leeway: config.leeway,
            nbf_ttl,
            fail_open: None,
        }
    }

    /// Built from the config (`--fail-open` applied): the body of `build`, shared with
    /// `jwt-denylist-cached`.
    pub fn from_context(ctx: &BuildContext<'_>) -> anyhow::Result<Self> {
        let strategy = JwtDenylistStrategy::new(ctx.codec()?, ctx.store.clone(), ctx.config);
        if ctx.config.fail_open {
            tracing::warn!("--fail-open: requests are allowed unchecked while the store is down");
            return Ok(strategy.fail_open(ctx.metrics.clone()));
        }
        Ok(strategy)
    }

    /// Read the per-request keys through `reads` (`jwt-denylist-cached`) instead of the store.
    pub fn with_reads(mut self, reads: Reads) -> Self {
        self.reads = reads;
        self
    }

    /// Write `key` and forget it in this instance's cache (the others hear it from Redis).
    async fn write(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), ApiError> {
        self.store.set(key, value, ttl).await?;
        self.reads.invalidate(key);
        Ok(())
    }

    /// Fail open (see the module docs): allow a verified token when the denylist lookup hits a
    /// store outage, counting each such allow in `metrics`.
    pub fn fail_open(mut self, metrics: Arc<Metrics>) -> Self {
        self.fail_open = Some(metrics);
        self
    }

    /// The user's not-before in milliseconds, if a revoke recorded one.
    async fn not_before(&self, user: &str) -> Result<Option<u64>, ApiError> {
        match self.store.get(&nbf_key(user)).await? {
            Some(v) => Ok(Some(parse_ms(&v)?)),
            None => Ok(None),
        }
    }
}

fn dl_key(user: &str, jti: &str) -> String {
    format!("dl:{{{user}}}:{jti}")
}

fn nbf_key(user: &str) -> String {
    format!("nbf:{{{user}}}")
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn parse_ms(v: &[u8]) -> Result<u64, StoreError> {
    std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()).ok_or(StoreError::Corrupt("not-before"))
}

/// The millisecond issue stamp of a jti `<ms>.<random>`, or `None` when it is not of that shape.
fn jti_stamp(jti: &str) -> Option<u64> {
    let (ms, random) = jti.split_once('.')?;
    if ms.is_empty() || ms.len() > MAX_STAMP_DIGITS || !ms.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !ids::is_b64_token(random, ID_BYTES) {
        return None;
    }
    ms.parse().ok()
}

fn revoked() -> ApiError {
    ApiError::bearer("token revoked")
}

impl Strategy for JwtDenylistStrategy {
    const PROFILE: &'static StrategyProfile = &PROFILE;

    fn build(ctx: &BuildContext<'_>) -> anyhow::Result<Self> {
        Self::from_context(ctx)
    }

    fn codec(&self) -> Option<&Arc<JwtCodec>> {
        Some(&self.codec)
    }

    async fn login(&self, user: &str, _offered: Credential<'_>) -> Result<Grant, ApiError> {
        store_roles(&self.store, &self.codec, self.authz, user).await?;
        // Stamp at or after the user's not-before (see the module docs): a login that follows a
        // revoke must get a token that works, even within the same millisecond.
        let stamp = now_ms().max(self.not_before(user).await?.unwrap_or(0));
        let jti = format!("{stamp}.{}", ids::random_token::<ID_BYTES>()?);
        let (access_token, _exp) = self.codec.issue(user, Some(&jti))?;
        Ok(Grant::Tokens { access_token, expires_in_secs: self.codec.access_ttl().as_secs(), refresh_token: None })
    }

    async fn authenticate(&self, cred: Credential<'_>) -> Result<Principal, ApiError> {
        let Credential::Bearer(token) = cred else { return Err(ApiError::bearer("missing bearer token")) };
        let claims = self.codec.verify(token)?;
        let jti = claims.jti.as_deref().ok_or(ApiError::bearer("token has no jti"))?;
        let stamp = jti_stamp(jti).ok_or(ApiError::bearer("malformed jti"))?;
        // Only we sign tokens, but `sub` becomes part of store keys: never let it break the hash tag.
        if !ids::valid_user(&claims.sub) {
            return Err(ApiError::bearer("invalid subject"));
        }
        let dl = dl_key(&claims.sub, jti);
        let nbf = nbf_key(&claims.sub);
        let roles = roles_key(&claims.sub);
        let keys: &[&str] = if self.authz == AuthzSource::Store { &[&dl, &nbf, &roles] } else { &[&dl, &nbf] };
        // The one store command per request.
        let values = match self.reads.mget(keys).await {
            Ok(values) => values,
            Err(e @ (StoreError::Unavailable(_) | StoreError::Timeout(_))) if self.fail_open.is_some() => {
                if let Some(metrics) = &self.fail_open {
                    metrics.fail_open_allow();
                }
                tracing::warn!(error = %e, sub = %claims.sub, "store down: request allowed without the denylist check (--fail-open)");
                return Ok(Principal::new(claims.sub, claims.roles.len()));
            }
            Err(e) => return Err(e.into()),
        };
        if values.len() != keys.len() {
            return Err(StoreError::Corrupt("mget reply length").into());
        }
        if values[0].is_some() {
            return Err(revoked());
        }
        if let Some(v) = &values[1]
            && stamp < parse_ms(v)?
        {
            return Err(revoked());
        }
        let roles = match self.authz {
            AuthzSource::Claims => claims.roles.len(),
            AuthzSource::Store => count_roles(values.get(2).and_then(|v| v.as_deref())),
        };
        Ok(Principal::new(claims.sub, roles))
    }

    async fn logout(&self, cred: Credential<'_>, _refresh_token: Option<&str>) -> Result<bool, ApiError> {
        let Credential::Bearer(token) = cred else { return Err(ApiError::bearer("missing bearer token")) };
        // Signature and claims only: logging out a token twice is harmless and stays one write.
        let claims = self.codec.verify(token)?;
        let jti = claims.jti.as_deref().ok_or(ApiError::bearer("token has no jti"))?;
        if jti_stamp(jti).is_none() {
            return Err(ApiError::bearer("malformed jti"));
        }
        if !ids::valid_user(&claims.sub) {
            return Err(ApiError::bearer("invalid subject"));
        }
        // Keep the entry as long as the token could still be accepted: until exp plus leeway. Capped
        // at the longest life a token of ours can have, so no `exp` can make the TTL overflow.
        let remaining = claims.exp.saturating_sub(now_secs()).min(self.nbf_ttl.as_secs());
        let ttl = Duration::from_secs(remaining.saturating_add(self.leeway.as_secs()).max(1));
        self.write(&dl_key(&claims.sub, jti), b"1", ttl).await?;
        Ok(true)
    }

    async fn revoke_user(&self, user: &str) -> Result<bool, ApiError> {
        // Strictly increasing, so a token a previous revoke let through (stamped at that revoke's
        // not-before) is refused by this one even within the same millisecond.
        let previous = self.not_before(user).await?.unwrap_or(0);
        let nbf = (now_ms() + 1).max(previous.saturating_add(1));
        self.write(&nbf_key(user), nbf.to_string().as_bytes(), self.nbf_ttl).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TargetArgs;
    use crate::keys::KeyMaterial;
    use crate::store::{Backend, MemoryStore};

    fn strategy() -> JwtDenylistStrategy {
        let config = TargetArgs::new(JwtDenylistStrategy::KIND).validate().unwrap();
        let keys = KeyMaterial::new(config.alg, Some(b"unit-test-secret-of-at-least-32-bytes"), None).unwrap();
        let codec = JwtCodec::new(keys, "i", "a", config.access_ttl, config.leeway, config.bloat);
        let store = Store::new(Backend::Memory(Arc::new(MemoryStore::new())), Arc::new(Metrics::new()));
        JwtDenylistStrategy::new(Arc::new(codec), store, &config)
    }

    fn bearer(grant: &Grant) -> Credential<'_> {
        match grant {
            Grant::Tokens { access_token, .. } => Credential::Bearer(access_token),
            other => panic!("{other:?}"),
        }
    }

    /// In-process the calls land within the same millisecond, which HTTP tests cannot force: the
    /// token from just before a revoke dies, the login just after works, a token between two
    /// revokes dies.
    #[tokio::test]
    async fn same_millisecond_revoke() {
        let s = strategy();
        for _ in 0..200 {
            let before = s.login("u", Credential::Missing).await.unwrap();
            assert!(s.authenticate(bearer(&before)).await.is_ok());
            s.revoke_user("u").await.unwrap();
            assert!(s.authenticate(bearer(&before)).await.is_err(), "token from before the revoke survived");
            let after = s.login("u", Credential::Missing).await.unwrap();
            assert!(s.authenticate(bearer(&after)).await.is_ok(), "login right after the revoke refused");
            s.revoke_user("u").await.unwrap();
            assert!(s.authenticate(bearer(&after)).await.is_err(), "token between two revokes survived");
        }
        let other = s.login("v", Credential::Missing).await.unwrap();
        assert!(s.authenticate(bearer(&other)).await.is_ok());
    }

    #[test]
    fn jti_shapes() {
        let r = ids::random_token::<ID_BYTES>().unwrap();
        assert_eq!(jti_stamp(&format!("1700000000123.{r}")), Some(1_700_000_000_123));
        assert_eq!(jti_stamp(&r), None);
        assert_eq!(jti_stamp(&format!(".{r}")), None);
        assert_eq!(jti_stamp(&format!("-1.{r}")), None);
        assert_eq!(jti_stamp(&format!("{}.{r}", "9".repeat(21))), None);
        assert_eq!(jti_stamp("1.x"), None);
        assert_eq!(jti_stamp(&format!("1.{r}}}")), None);
    }
}
