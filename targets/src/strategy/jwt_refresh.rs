//! PLACEHOLDER: being implemented.

use std::sync::Arc;

use super::{Credential, Grant, Principal, Strategy};
use crate::config::{AuthzSource, StrategyKind, TargetConfig};
use crate::error::ApiError;
use crate::store::Store;
use crate::token::JwtCodec;

pub struct JwtRefreshStrategy {
    codec: Arc<JwtCodec>,
    store: Store,
    authz: AuthzSource,
}

impl JwtRefreshStrategy {
    pub fn new(codec: Arc<JwtCodec>, store: Store, config: &TargetConfig) -> Self {
        JwtRefreshStrategy { codec, store, authz: config.authz }
    }
}

impl Strategy for JwtRefreshStrategy {
    fn kind(&self) -> StrategyKind {
        StrategyKind::JwtRefresh
    }

    async fn login(&self, _user: &str, _offered: Credential<'_>) -> Result<Grant, ApiError> {
        let _ = (&self.codec, &self.store, self.authz);
        Err(ApiError::Internal("not implemented"))
    }

    async fn authenticate(&self, _cred: Credential<'_>) -> Result<Principal, ApiError> {
        Err(ApiError::Internal("not implemented"))
    }

    async fn logout(&self, _cred: Credential<'_>, _refresh_token: Option<&str>) -> Result<bool, ApiError> {
        Err(ApiError::Internal("not implemented"))
    }

    async fn revoke_user(&self, _user: &str) -> Result<bool, ApiError> {
        Err(ApiError::Internal("not implemented"))
    }
}
