//! The access JWT carried in a cookie instead of an `Authorization` header (`--token-transport
//! cookie`, for the strategies whose profile hands out a bearer token), and the CSRF defence that
//! a cookie credential needs.
//!
//! The articles advise against keeping a JWT where page scripts can read it (localStorage); the
//! alternative is an `HttpOnly` cookie, which the browser then attaches to every request to the
//! site, including ones a hostile page triggers. So:
//! - login and refresh answer with `Set-Cookie: at=<jwt>; HttpOnly; Secure; SameSite=Strict;
//!   Path=/; Max-Age=<ttl>` and a JSON body without the token but with a `csrf_token`;
//! - every request's credential is read from the `at` cookie (an `Authorization` header is
//!   ignored: a target serves one transport);
//! - a state-changing route that acts on the cookie credential (`POST /logout`) also requires the
//!   header `x-csrf-token` with that token. A cross-site page can make the browser send the cookie
//!   but can neither read the cookie nor the login answer, nor set a custom header on a cross-site
//!   request without a CORS preflight this server never grants, so it cannot produce the header.
//!
//! The CSRF token is bound to the access token: base64url(SHA-256("authbench-csrf\0" ‖ jwt)).
//! Nothing is stored, every instance sharing the signing key computes the same value, a refresh
//! (new access token) issues a new one, and knowing it reveals nothing of the token (preimage
//! resistance). `SameSite=Strict` is a second, independent defence; the check does not rely on it.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::Request;
use http::header::HeaderValue;

/// The cookie that carries the access JWT.
pub const COOKIE_NAME: &str = "at";
/// The request header that must carry the CSRF token on state-changing routes.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The CSRF token bound to `access_token`.
pub fn csrf_token(access_token: &str) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"authbench-csrf\0");
    ctx.update(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(ctx.finish().as_ref())
}

/// The access token from the request's `at` cookie.
pub fn token<B>(req: &Request<B>) -> Option<&str> {
    crate::server::request_cookie(req, COOKIE_NAME).filter(|t| !t.is_empty())
}

/// Whether the request carries the CSRF token bound to `access_token` (compared in constant time).
pub fn csrf_ok<B>(req: &Request<B>, access_token: &str) -> bool {
    let Some(presented) = req.headers().get(CSRF_HEADER) else { return false };
    let want = csrf_token(access_token);
    aws_lc_rs::constant_time::verify_slices_are_equal(want.as_bytes(), presented.as_bytes()).is_ok()
}

/// `Set-Cookie` for a new access token.
pub fn set_cookie(access_token: &str, max_age_secs: u64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={access_token}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={max_age_secs}"
    ))
    .ok()
}

/// `Set-Cookie` that clears the access-token cookie (logout).
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("at=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header;

    #[test]
    fn csrf_token_is_bound_to_the_access_token() {
        assert_eq!(csrf_token("a.b.c"), csrf_token("a.b.c"), "stateless: every instance agrees");
        assert_ne!(csrf_token("a.b.c"), csrf_token("a.b.d"), "another token, another CSRF token");
        assert_eq!(csrf_token("a.b.c").len(), 43, "256 bits, base64url");
    }

    #[test]
    fn reads_the_at_cookie_among_others_and_checks_the_header() {
        let req = Request::builder()
            .header(header::COOKIE, "theme=dark; at=tok.en.sig")
            .header(CSRF_HEADER, csrf_token("tok.en.sig"))
            .body(())
            .unwrap();
        assert_eq!(token(&req), Some("tok.en.sig"));
        assert!(csrf_ok(&req, "tok.en.sig"));
        assert!(!csrf_ok(&req, "other.token.sig"));
        let forged = Request::builder().header(header::COOKIE, "at=tok.en.sig").body(()).unwrap();
        assert!(!csrf_ok(&forged, "tok.en.sig"), "no header: refused");
    }
}
