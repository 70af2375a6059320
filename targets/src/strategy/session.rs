//! `session`: an opaque 256-bit session id in the `sid` cookie, one store lookup per request.
//!
//! Store layout (the store only ever sees `h = sha256(sid)`):
//! - `s:{h}` -> `user\nrole,role,...` with TTL = session lifetime;
//! - `us:{user}` -> set of `h`, so revoke-user can find every session of a user.
//!
//! Fixation: login never adopts an offered sid; it mints a new one and deletes the offered one.
//! Roles live in the session record, so `--authz store` costs no extra lookup here: the session
//! lookup *is* the store lookup.

use std::time::Duration;

use super::profile::{Clients, DefaultTtls, PerRoute, Refresh, Revocation, StoreOp, StrategyProfile, Transport};
use super::{BuildContext, Credential, Grant, Principal, Strategy};
use crate::cache::Reads;
use crate::error::ApiError;
use crate::ids::{self, SECRET_BYTES};
use crate::store::Store;

/// A cookie, one GET per request; logout deletes the record, so revocation is immediate.
pub static PROFILE: StrategyProfile = StrategyProfile {
    name: "session",
    description: "Opaque session id in a cookie, one store lookup per request.",
    transport: Transport::Cookie,
    refresh: Refresh::None,
    issues_jwt: false,
    logout: Revocation::DeleteRecord,
    revoke_user: Revocation::DeleteRecord,
    store_ops: PerRoute {
        api: &[StoreOp::Get],
        login: &[StoreOp::Del, StoreOp::Set, StoreOp::Sadd],
        logout: &[StoreOp::Del],
        refresh: &[],
    },
    // Roles live in the session record: `--authz store` costs no extra lookup.
    authz_store_lookup: false,
    ttls: DefaultTtls { access: Duration::from_secs(900) },
    fail_open: false,
    stale_reads: true,
    cached_reads: false,
    auth_paths: &[],
    clients: Clients::One,
};

pub struct SessionStrategy {
    /// Where sessions are written (and read, unless `reads` caches them).
    store: Store,
    /// How the per-request lookup reads: the store itself, or `session-cached`'s cache.
    reads: Reads,
    ttl: Duration,
    /// `role,role,...` written into every new session record (the claim-bloat knob's roles).
    roles_csv: String,
}

impl SessionStrategy {
    pub fn new(store: Store, ttl: Duration, roles: &[String]) -> Self {
        SessionStrategy { reads: Reads::direct(store.clone()), store, ttl, roles_csv: roles.join(",") }
    }

    /// Read session records through `reads` (`session-cached`) instead of the store.
    pub fn with_reads(mut self, reads: Reads) -> Self {
        self.reads = reads;
        self
    }

    /// Delete a session record, and forget it in this instance's cache and stale copy (even when
    /// the store could not delete it: this instance will not answer for it again).
    async fn delete(&self, key: &str) -> Result<bool, ApiError> {
        let deleted = self.store.del(&[key]).await;
        self.reads.invalidate(key);
        Ok(deleted? > 0)
    }

    fn session_key(sid: &str) -> Option<String> {
        ids::is_b64_token(sid, SECRET_BYTES).then(|| format!("s:{}", ids::hash_credential(sid)))
    }
}

fn unauthorized() -> ApiError {
    ApiError::unauthorized("invalid or expired session")
}

impl Strategy for SessionStrategy {
    const PROFILE: &'static StrategyProfile = &PROFILE;

    fn build(ctx: &BuildContext<'_>) -> anyhow::Result<Self> {
        let session = SessionStrategy::new(ctx.store.clone(), ctx.config.session_ttl, &ctx.roles());
        Ok(session.with_reads(Reads::direct(ctx.store.clone()).with_stale(ctx)))
    }

    async fn login(&self, user: &str, offered: Credential<'_>) -> Result<Grant, ApiError> {
        if let Credential::Cookie(old) = offered
            && let Some(old_key) = Self::session_key(old)
        {
            self.delete(&old_key).await?;
        }
        let sid = ids::random_token::<SECRET_BYTES>()?;
        let hash = ids::hash_credential(&sid);
        let record = format!("{user}\n{}", self.roles_csv);
        self.store.set(&format!("s:{hash}"), record.as_bytes(), self.ttl).await?;
        self.store.sadd(&format!("us:{user}"), &hash, self.ttl).await?;
        Ok(Grant::Session { sid, max_age_secs: self.ttl.as_secs() })
    }

    async fn authenticate(&self, cred: Credential<'_>) -> Result<Principal, ApiError> {
        let Credential::Cookie(sid) = cred else { return Err(unauthorized()) };
        let key = Self::session_key(sid).ok_or_else(unauthorized)?;
        let record = self.reads.get(&key).await?.ok_or_else(unauthorized)?;
        let text = std::str::from_utf8(&record).map_err(|_| crate::error::StoreError::Corrupt("session record"))?;
        let (user, roles) = text.split_once('\n').unwrap_or((text, ""));
        let roles = if roles.is_empty() { 0 } else { roles.split(',').count() };
        Ok(Principal::new(user.to_owned(), roles))
    }

    async fn logout(&self, cred: Credential<'_>, _refresh_token: Option<&str>) -> Result<bool, ApiError> {
        let Credential::Cookie(sid) = cred else { return Err(unauthorized()) };
        let key = Self::session_key(sid).ok_or_else(unauthorized)?;
        self.delete(&key).await
    }

    async fn revoke_user(&self, user: &str) -> Result<bool, ApiError> {
        let set_key = format!("us:{user}");
        let hashes = self.store.smembers(&set_key).await?;
        let mut revoked = false;
        // One key per DEL: session keys live in different cluster slots.
        for h in &hashes {
            revoked |= self.delete(&format!("s:{h}")).await?;
        }
        self.store.del(&[&set_key]).await?;
        Ok(revoked)
    }
}
