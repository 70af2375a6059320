//! `session-cached`: `session` with each instance keeping the store's answers in process. The
//! per-request lookup of the session record goes through a bounded [`crate::cache::ReadCache`]
//! that Redis keeps coherent over a tracking link (`CLIENT TRACKING`, see [`crate::cache::link`]):
//! a logout or revoke on any instance deletes the record in Redis, and Redis tells every instance
//! that read it to forget it. Absent records are cached too (a logged-out cookie replayed).
//!
//! Everything else (login with fixation defence, logout, revoke-user, the store layout) is
//! `session`'s own code, with the cache in front of its reads. While the link is not trusted the
//! lookup reads the store directly; with the store down it fails closed (503), as `session` does.

use super::profile::StrategyProfile;
use super::{BuildContext, Credential, Grant, Principal, SessionStrategy, Strategy};
use crate::cache::Reads;
use crate::error::ApiError;

/// The key prefix of session records (what a `bcast` link subscribes to).
const PREFIXES: &[&str] = &["s:"];

/// `session` with an invalidated in-process cache of session records.
pub static PROFILE: StrategyProfile = StrategyProfile {
    name: "session-cached",
    description: "Opaque session id in a cookie; each instance caches the session lookups in process, \
                  invalidated by Redis (client-side caching).",
    // Everything else is `session`'s; its api lookup now happens on a cache miss only.
    cached_reads: true,
    ..super::session::PROFILE
};

/// `session`, reading through the cache.
pub struct SessionCachedStrategy(SessionStrategy);

impl Strategy for SessionCachedStrategy {
    const PROFILE: &'static StrategyProfile = &PROFILE;

    fn build(ctx: &BuildContext<'_>) -> anyhow::Result<Self> {
        let session = SessionStrategy::new(ctx.store.clone(), ctx.config.session_ttl, &ctx.roles());
        Ok(SessionCachedStrategy(session.with_reads(Reads::cached(ctx, PREFIXES)?.with_stale(ctx))))
    }

    async fn login(&self, user: &str, offered: Credential<'_>) -> Result<Grant, ApiError> {
        self.0.login(user, offered).await
    }

    async fn authenticate(&self, cred: Credential<'_>) -> Result<Principal, ApiError> {
        self.0.authenticate(cred).await
    }

    async fn logout(&self, cred: Credential<'_>, refresh_token: Option<&str>) -> Result<bool, ApiError> {
        self.0.logout(cred, refresh_token).await
    }

    async fn revoke_user(&self, user: &str) -> Result<bool, ApiError> {
        self.0.revoke_user(user).await
    }
}
