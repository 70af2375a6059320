//! The strategy seam: one small trait, one file per authentication strategy.
//!
//! The HTTP server (`server`) is generic over [`Strategy`] and knows nothing about cookies, tokens or
//! stores beyond what the trait and the strategy's [`StrategyProfile`] say; `server::serve` picks the
//! concrete strategy once at start-up through the [`registry`].

pub mod hybrid;
pub mod jwt;
pub mod jwt_denylist;
pub mod jwt_denylist_cached;
pub mod jwt_refresh;
pub mod none;
pub mod profile;
pub mod registry;
pub mod session;
pub mod session_cached;
pub mod web_api;

use std::future::Future;
use std::sync::Arc;

use crate::config::{StrategyKind, TargetConfig};
use crate::error::ApiError;
use crate::keys::KeyMaterial;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::token::JwtCodec;

pub use self::jwt::JwtStrategy;
pub use self::jwt_denylist::JwtDenylistStrategy;
pub use self::jwt_refresh::JwtRefreshStrategy;
pub use self::none::NoneStrategy;
pub use self::profile::StrategyProfile;
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
    /// Which of the profile's [`StrategyProfile::auth_paths`] verified the request (0 for a
    /// strategy with one path), counted on `/metrics` so the report can show each path's share.
    pub path: usize,
    /// A credential to hand the client with the answer (a `Set-Cookie`), e.g. an upgraded cookie
    /// for a client that came with an older kind. `None`: the client keeps what it has.
    pub renewed: Option<Grant>,
}

impl Principal {
    /// Verified on the strategy's first path, nothing to hand back.
    pub fn new(sub: String, roles: usize) -> Self {
        Principal { sub, roles, path: 0, renewed: None }
    }
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

/// What a strategy is built from at start-up.
pub struct BuildContext<'a> {
    pub config: &'a TargetConfig,
    /// The opened store (the server keeps its own handle for `/metrics`).
    pub store: Store,
    /// Where strategies count what they do beyond requests (fail-open allows).
    pub metrics: Arc<Metrics>,
}

impl BuildContext<'_> {
    /// The token codec of the configured algorithm and keys (JWT strategies).
    pub fn codec(&self) -> anyhow::Result<Arc<JwtCodec>> {
        let c = self.config;
        let keys = KeyMaterial::new(c.alg, c.secret.as_deref(), c.key_pem.as_deref())?;
        Ok(Arc::new(
            JwtCodec::new(keys, &c.issuer, &c.audience, c.access_ttl, c.leeway, c.bloat)
                .with_rotation_overlap(c.rotation_overlap),
        ))
    }

    /// The role names written into every new session record or token (claim bloat).
    pub fn roles(&self) -> Vec<String> {
        (0..self.config.bloat.roles).map(|i| format!("role-{i:03}")).collect()
    }
}

/// One authentication strategy. Every method is one HTTP route of the contract.
pub trait Strategy: Send + Sync + Sized + 'static {
    /// What this strategy is, for the server, the config and the harness (its own file declares it).
    const PROFILE: &'static StrategyProfile;

    /// This strategy's registry handle (for code that builds one strategy directly: benches, tests).
    const KIND: StrategyKind = StrategyKind::of(Self::PROFILE);

    /// Build the strategy from the validated config (called once at start-up).
    fn build(ctx: &BuildContext<'_>) -> anyhow::Result<Self>;

    /// `POST /login`. `offered` is whatever credential the client already sent: it is never adopted
    /// (session fixation), and a session strategy ends the session it names.
    fn login(&self, user: &str, offered: Credential<'_>) -> impl Future<Output = Result<Grant, ApiError>> + Send;

    /// `POST /login` with `"legacy": true`: the credential an older client of this strategy holds
    /// (a strategy migrating from one kind of credential to another starts such clients on the
    /// old kind). By default the same as [`Strategy::login`].
    fn login_legacy(
        &self,
        user: &str,
        offered: Credential<'_>,
    ) -> impl Future<Output = Result<Grant, ApiError>> + Send {
        self.login(user, offered)
    }

    /// `POST /login` with `"client": "api"`: the credential an API client holds (a strategy serving
    /// browsers and API clients hands the latter a bearer token). By default the same as
    /// [`Strategy::login`].
    fn login_api(&self, user: &str, offered: Credential<'_>) -> impl Future<Output = Result<Grant, ApiError>> + Send {
        self.login(user, offered)
    }

    /// `GET /api/resource`: the per-request check being measured.
    fn authenticate(&self, cred: Credential<'_>) -> impl Future<Output = Result<Principal, ApiError>> + Send;

    /// `POST /logout`. Returns whether anything was actually revoked (`jwt` cannot: false).
    /// `refresh_token` is the JSON body's, for `jwt-refresh`.
    fn logout(
        &self,
        cred: Credential<'_>,
        refresh_token: Option<&str>,
    ) -> impl Future<Output = Result<bool, ApiError>> + Send;

    /// `POST /refresh` (strategies whose profile has a refresh route; others answer 404).
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
}
