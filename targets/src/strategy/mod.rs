//! The strategy seam: one small trait, one file per authentication strategy.
//!
//! The HTTP server (`server`) is generic over [`Strategy`] and knows nothing about cookies, tokens or
//! stores beyond what the trait returns; `server::serve` picks the concrete strategy once at start-up.

pub mod jwt;
pub mod jwt_denylist;
pub mod jwt_refresh;
pub mod none;
pub mod session;

use std::future::Future;
use std::sync::Arc;

use crate::config::StrategyKind;
use crate::error::ApiError;
use crate::token::JwtCodec;

pub use self::jwt::JwtStrategy;
pub use self::jwt_denylist::JwtDenylistStrategy;
pub use self::jwt_refresh::JwtRefreshStrategy;
pub use self::none::NoneStrategy;
pub use self::session::SessionStrategy;

/// The credential a request presented, as the server found it. Strategies decide which kind they
/// accept; any other kind counts as missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    Missing,
    /// The value of the `sid` cookie.
    Cookie(&'a str),
    /// The token of an `Authorization: Bearer` header.
    Bearer(&'a str),
}

/// Who a verified request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub sub: String,
    /// How many roles the request was authorized with (from claims or the store).
    pub roles: usize,
}

/// What a successful login or refresh hands the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// `none`: nothing to carry.
    Anonymous { user: String },
    /// `session`: sent as `Set-Cookie: sid=...`.
    Session { sid: String, max_age_secs: u64 },
    /// JWT strategies: JSON `{"access_token","token_type","expires_in"[,"refresh_token"]}`.
    Tokens { access_token: String, expires_in_secs: u64, refresh_token: Option<String> },
}

/// One authentication strategy. Every method is one HTTP route of the contract.
pub trait Strategy: Send + Sync + 'static {
    fn kind(&self) -> StrategyKind;

    /// `POST /login`. `offered` is whatever credential the client already sent: it is never adopted
    /// (session fixation), and a session strategy ends the session it names.
    fn login(&self, user: &str, offered: Credential<'_>) -> impl Future<Output = Result<Grant, ApiError>> + Send;

    /// `GET /api/resource`: the per-request check being measured.
    fn authenticate(&self, cred: Credential<'_>) -> impl Future<Output = Result<Principal, ApiError>> + Send;

    /// `POST /logout`. Returns whether anything was actually revoked (`jwt` cannot: false).
    /// `refresh_token` is the JSON body's, for `jwt-refresh`.
    fn logout(
        &self,
        cred: Credential<'_>,
        refresh_token: Option<&str>,
    ) -> impl Future<Output = Result<bool, ApiError>> + Send;

    /// `POST /refresh` (`jwt-refresh` only; others answer 404).
    fn refresh(&self, refresh_token: &str) -> impl Future<Output = Result<Grant, ApiError>> + Send {
        let _ = refresh_token;
        async { Err(ApiError::NotFound) }
    }

    /// `POST /admin/revoke-user/{user}`: end every credential of `user` that can be ended.
    fn revoke_user(&self, user: &str) -> impl Future<Output = Result<bool, ApiError>> + Send;

    /// The token codec of JWT strategies: its JWKS (asymmetric algorithms) and key rotation
    /// (`POST /admin/rotate-key`). `None` for strategies without tokens.
    fn codec(&self) -> Option<&Arc<JwtCodec>> {
        None
    }

    /// Whether the strategy reads the `sid` cookie (else the bearer token).
    fn uses_cookie(&self) -> bool {
        false
    }
}
