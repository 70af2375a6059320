//! Every way a target request can fail, and the one place that maps each to an HTTP status.
//!
//! Strategies and stores return these; `server` turns them into responses with [`ApiError::status`].
//! Nothing here is ever a 5xx except a store that is unreachable (503, fail closed) and an internal
//! failure that should not happen (500, e.g. the signer refusing a key it accepted at start-up).

use http::StatusCode;

/// A store operation failed. Always answered with 503 on routes that need the store: a request that
/// could not be checked is refused, never allowed (fail closed).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store timed out after {0} ms")]
    Timeout(u64),
    #[error("store returned malformed data for {0}")]
    Corrupt(&'static str),
}

/// Why a request was refused (or, rarely, failed).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(&'static str),
    /// The credential was missing, malformed, forged, expired or revoked. The reason goes into the
    /// JSON body; it never says more than a client could already learn.
    #[error("{reason}")]
    Unauthorized {
        reason: &'static str,
        /// Bearer strategies add `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750).
        bearer: bool,
    },
    /// A credential was presented but the request may not act on it: a state-changing request
    /// carrying a cookie credential without its CSRF token (a cross-site forgery, see
    /// `token_cookie`).
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("unsupported media type: expected application/json")]
    UnsupportedMediaType,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// The reason given for an expired token (see [`ApiError::is_token_expired`]).
pub const TOKEN_EXPIRED: &str = "token expired";

impl ApiError {
    pub const fn unauthorized(reason: &'static str) -> Self {
        ApiError::Unauthorized { reason, bearer: false }
    }

    pub const fn bearer(reason: &'static str) -> Self {
        ApiError::Unauthorized { reason, bearer: true }
    }

    /// Whether this is a token refused only because its `exp` (+ leeway) has passed: a strategy
    /// that can verify the client another way falls back to it then, and only then.
    pub fn is_token_expired(&self) -> bool {
        matches!(self, ApiError::Unauthorized { reason: TOKEN_EXPIRED, .. })
    }

    /// The single mapping from error to status code.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The text for the JSON `{"error": ...}` body. Store details stay in the log, not the body.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Store(_) => "session store unavailable".to_owned(),
            ApiError::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        }
    }
}
