//! `none`: no authentication at all. The control: whatever it costs is the server, not the auth.

use super::{Credential, Grant, Principal, Strategy};
use crate::config::StrategyKind;
use crate::error::ApiError;

pub struct NoneStrategy;

impl Strategy for NoneStrategy {
    fn kind(&self) -> StrategyKind {
        StrategyKind::None
    }

    async fn login(&self, user: &str, _offered: Credential<'_>) -> Result<Grant, ApiError> {
        Ok(Grant::Anonymous { user: user.to_owned() })
    }

    async fn authenticate(&self, _cred: Credential<'_>) -> Result<Principal, ApiError> {
        Ok(Principal { sub: "anonymous".to_owned(), roles: 0 })
    }

    async fn logout(&self, _cred: Credential<'_>, _refresh_token: Option<&str>) -> Result<bool, ApiError> {
        Ok(false)
    }

    async fn revoke_user(&self, _user: &str) -> Result<bool, ApiError> {
        Ok(false)
    }
}
