//! `jwt-denylist-cached`: `jwt-denylist` with each instance keeping the store's answers in process.
//! The per-request lookup (the jti's denylist entry and the user's not-before, and the roles with
//! `--authz store`) goes through a bounded [`crate::cache::ReadCache`] that Redis keeps coherent over
//! a tracking link (`CLIENT TRACKING`, see [`crate::cache::link`]). The common answer, "not
//! revoked", is an absent key: it is cached, and Redis invalidates it when a logout writes the
//! denylist entry or a revoke-user writes the not-before, on whichever instance.
//!
//! Everything else (token checks, jti stamps, logout, revoke-user, `--fail-open`) is
//! `jwt-denylist`'s own code, with the cache in front of its reads. While the link is not trusted
//! the lookup reads the store directly; with the store down it fails closed (503), as
//! `jwt-denylist` does (or open, with `--fail-open`, as it does).

use std::sync::Arc;

use super::profile::StrategyProfile;
use super::{BuildContext, Credential, Grant, JwtDenylistStrategy, Principal, Strategy};
use crate::cache::Reads;
use crate::error::ApiError;
use crate::token::JwtCodec;

/// The key prefixes of the per-request lookup (what a `bcast` link subscribes to).
const PREFIXES: &[&str] = &["dl:", "nbf:", "roles:"];

/// `jwt-denylist` with an invalidated in-process cache of the denylist lookups.
pub static PROFILE: StrategyProfile = StrategyProfile {
    name: "jwt-denylist-cached",
    description: "Signed JWT plus the jti denylist lookup, cached in process by each instance and \
                  invalidated by Redis (client-side caching).",
    // Everything else is `jwt-denylist`'s; its api lookup now happens on a cache miss only.
    cached_reads: true,
    ..super::jwt_denylist::PROFILE
};

/// `jwt-denylist`, reading through the cache.
pub struct JwtDenylistCachedStrategy(JwtDenylistStrategy);

impl Strategy for JwtDenylistCachedStrategy {
    const PROFILE: &'static StrategyProfile = &PROFILE;

    fn build(ctx: &BuildContext<'_>) -> anyhow::Result<Self> {
        let inner = JwtDenylistStrategy::from_context(ctx)?;
        Ok(JwtDenylistCachedStrategy(inner.with_reads(Reads::cached(ctx, PREFIXES)?)))
    }

    fn codec(&self) -> Option<&Arc<JwtCodec>> {
        self.0.codec()
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
