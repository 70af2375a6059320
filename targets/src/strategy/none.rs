//! `none`: no authentication at all. The control: whatever it costs is the server, not the auth.

use std::time::Duration;

use super::profile::{Clients, DefaultTtls, PerRoute, Refresh, Revocation, StrategyProfile, Transport};
use super::{BuildContext, Credential, Grant, Principal, Strategy};
use crate::error::ApiError;

/// No credential, no store, nothing to revoke.
pub static PROFILE: StrategyProfile = StrategyProfile {
    name: "none",
    description: "No authentication: the control that measures the server itself.",
    transport: Transport::None,
    refresh: Refresh::None,
    issues_jwt: false,
    logout: Revocation::NotApplicable,
    revoke_user: Revocation::NotApplicable,
    store_ops: PerRoute { api: &[], login: &[], logout: &[], refresh: &[] },
    authz_store_lookup: false,
    ttls: DefaultTtls { access: Duration::from_secs(900) },
    fail_open: false,
    stale_reads: false,
    cached_reads: false,
    auth_paths: &[],
    clients: Clients::One,
};

pub struct NoneStrategy;

impl Strategy for NoneStrategy {
    const PROFILE: &'static StrategyProfile = &PROFILE;

    fn build(_ctx: &BuildContext<'_>) -> anyhow::Result<Self> {
        Ok(NoneStrategy)
    }

    async fn login(&self, user: &str, _offered: Credential<'_>) -> Result<Grant, ApiError> {
        Ok(Grant::Anonymous { user: user.to_owned() })
    }

    async fn authenticate(&self, _cred: Credential<'_>) -> Result<Principal, ApiError> {
        Ok(Principal::new("anonymous".to_owned(), 0))
    }

    async fn logout(&self, _cred: Credential<'_>, _refresh_token: Option<&str>) -> Result<bool, ApiError> {
        Ok(false)
    }

    async fn revoke_user(&self, _user: &str) -> Result<bool, ApiError> {
        Ok(false)
    }
}
