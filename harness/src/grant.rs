//! The one client-side reader of login and refresh answers, used by the traffic engine's virtual
//! users, the revocation probe and the availability prober.
//!
//! What a credential *is* comes from the strategy's profile ([`Transport`]) and the answer itself:
//! a `Set-Cookie: sid=…` header, and/or a JSON body `{"access_token", "expires_in"[, "refresh_token"]}`.
//! A strategy with both transports gets whichever its answer carried (the bearer token when both).
//! A bearer strategy whose target keeps the token in a cookie (`--token-transport cookie`) answers
//! with `Set-Cookie: at=…` and a body holding `csrf_token` instead of the token: the answer says so,
//! so no caller needs to know the target's option.
//! Parsed once per login or refresh, never per request.

use std::time::Duration;

use http::header::HeaderValue;

use crate::targets::strategy::profile::Transport;

/// How a credential travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// `cookie: sid=<value>`.
    Cookie,
    /// `authorization: Bearer <value>`.
    Bearer,
    /// `cookie: at=<value>`: an access token in a cookie, with a CSRF token for logout.
    TokenCookie,
}

/// A credential handed out by `POST /login` or `POST /refresh`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub carrier: Carrier,
    /// The session id or the access token.
    pub value: String,
    /// `expires_in` of an access token (a cookie's lifetime is not tracked: the server ends it).
    pub expires_in: Option<Duration>,
    /// The refresh token, sent as `{"refresh_token": …}` to `/refresh` and `/logout`.
    pub refresh_token: Option<String>,
    /// With [`Carrier::TokenCookie`]: the `x-csrf-token` a logout must carry.
    pub csrf_token: Option<String>,
}

/// The request header that carries a token cookie's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("the answer carried no credential of the strategy's transport (no sid cookie, no access_token)")]
    NoCredential,
    #[error("the answer's JSON body is malformed: {0}")]
    Json(#[from] serde_json::Error),
}

/// The JSON body of a token grant.
#[derive(serde::Deserialize)]
struct TokenBody {
    access_token: String,
    expires_in: Option<u64>,
    refresh_token: Option<String>,
}

/// The JSON body of a token grant whose token went into a cookie.
#[derive(serde::Deserialize)]
struct TokenCookieBody {
    expires_in: Option<u64>,
    refresh_token: Option<String>,
    csrf_token: Option<String>,
}

impl Grant {
    /// Read the credential of a login/refresh answer. `Ok(None)` for a strategy without credentials.
    pub fn parse<'h>(
        transport: Transport,
        set_cookies: impl IntoIterator<Item = &'h HeaderValue>,
        body: &[u8],
    ) -> Result<Option<Grant>, GrantError> {
        if transport == Transport::None {
            return Ok(None);
        }
        if transport.bearer() && body_has_token(body) {
            let t: TokenBody = serde_json::from_slice(body)?;
            return Ok(Some(Grant {
                carrier: Carrier::Bearer,
                value: t.access_token,
                expires_in: t.expires_in.map(Duration::from_secs),
                refresh_token: t.refresh_token,
                csrf_token: None,
            }));
        }
        let set_cookies: Vec<&HeaderValue> = set_cookies.into_iter().collect();
        if transport.bearer()
            && let Some(token) = set_cookies.iter().find_map(|v| cookie_value(v, "at="))
        {
            let t: TokenCookieBody = serde_json::from_slice(body)?;
            return Ok(Some(Grant {
                carrier: Carrier::TokenCookie,
                value: token,
                expires_in: t.expires_in.map(Duration::from_secs),
                refresh_token: t.refresh_token,
                csrf_token: t.csrf_token,
            }));
        }
        if transport.cookie()
            && let Some(sid) = set_cookies.iter().find_map(|v| cookie_value(v, "sid="))
        {
            return Ok(Some(Grant {
                carrier: Carrier::Cookie,
                value: sid,
                expires_in: None,
                refresh_token: None,
                csrf_token: None,
            }));
        }
        Err(GrantError::NoCredential)
    }

    /// The request header that carries it, lower-case.
    pub fn header_name(&self) -> &'static str {
        match self.carrier {
            Carrier::Cookie | Carrier::TokenCookie => "cookie",
            Carrier::Bearer => "authorization",
        }
    }

    /// The request header's value: `sid=…` or `Bearer …`.
    pub fn header_value(&self) -> String {
        match self.carrier {
            Carrier::Cookie => format!("sid={}", self.value),
            Carrier::TokenCookie => format!("at={}", self.value),
            Carrier::Bearer => format!("Bearer {}", self.value),
        }
    }

    /// The headers a `POST /logout` with this credential carries: the credential, and a token
    /// cookie's CSRF token.
    pub fn logout_headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![(self.header_name(), self.header_value())];
        if let Some(c) = &self.csrf_token {
            h.push((CSRF_HEADER, c.clone()));
        }
        h
    }

    /// The access JWT, if the credential is one.
    pub fn access_token(&self) -> Option<&str> {
        matches!(self.carrier, Carrier::Bearer | Carrier::TokenCookie).then_some(self.value.as_str())
    }

    /// `{"refresh_token":"…"}`, the body of `/refresh` and of a refreshing client's `/logout`.
    pub fn refresh_body(&self) -> Option<String> {
        self.refresh_token.as_ref().map(|t| serde_json::json!({ "refresh_token": t }).to_string())
    }
}

/// Whether a body names an access token (cheaper than a failed JSON parse of `{"session":true}`).
fn body_has_token(body: &[u8]) -> bool {
    body.windows(14).any(|w| w == b"\"access_token\"")
}

/// The value of one `Set-Cookie` header for the cookie `prefix` (`sid=`, `at=`).
fn cookie_value(v: &HeaderValue, prefix: &str) -> Option<String> {
    let text = v.to_str().ok()?;
    let value = text.split(';').next()?.trim().strip_prefix(prefix)?;
    (!value.is_empty()).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie(v: &str) -> HeaderValue {
        HeaderValue::from_str(v).unwrap()
    }

    #[test]
    fn reads_cookie_and_tokens_by_transport() {
        let c = cookie("sid=abc; HttpOnly; Path=/");
        let g = Grant::parse(Transport::Cookie, [&c], br#"{"session":true}"#).unwrap().unwrap();
        assert_eq!((g.header_name(), g.header_value()), ("cookie", "sid=abc".to_owned()));
        let body = br#"{"access_token":"a.b.c","token_type":"Bearer","expires_in":300,"refresh_token":"f.s"}"#;
        let g = Grant::parse(Transport::Bearer, [], body).unwrap().unwrap();
        assert_eq!(g.header_value(), "Bearer a.b.c");
        assert_eq!(g.expires_in, Some(Duration::from_secs(300)));
        assert_eq!(g.refresh_body().as_deref(), Some(r#"{"refresh_token":"f.s"}"#));
        assert_eq!(g.access_token(), Some("a.b.c"));
        // Both: the bearer token when the answer has one, else the cookie.
        assert_eq!(Grant::parse(Transport::Both, [&c], body).unwrap().unwrap().carrier, Carrier::Bearer);
        assert_eq!(Grant::parse(Transport::Both, [&c], b"{}").unwrap().unwrap().carrier, Carrier::Cookie);
        assert!(Grant::parse(Transport::None, [&c], body).unwrap().is_none());
    }

    #[test]
    fn a_token_cookie_answer_gives_the_cookie_and_the_csrf_token_for_logout() {
        let at = cookie("at=h.p.s; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=300");
        let body = br#"{"token_type":"cookie","expires_in":300,"csrf_token":"XyZ","refresh_token":"rt"}"#;
        let g = Grant::parse(Transport::Bearer, [&at], body).unwrap().unwrap();
        assert_eq!(g.carrier, Carrier::TokenCookie);
        assert_eq!((g.header_name(), g.header_value()), ("cookie", "at=h.p.s".to_owned()));
        assert_eq!(g.access_token(), Some("h.p.s"), "probes still read its claims");
        assert_eq!(g.expires_in, Some(Duration::from_secs(300)));
        assert_eq!(
            g.logout_headers(),
            vec![("cookie", "at=h.p.s".to_owned()), (CSRF_HEADER, "XyZ".to_owned())],
            "logout carries the CSRF token"
        );
        // A session strategy's cookies are not token cookies.
        assert!(matches!(Grant::parse(Transport::Cookie, [&at], body), Err(GrantError::NoCredential)));
    }

    #[test]
    fn missing_or_malformed_credential_is_an_error() {
        assert!(matches!(Grant::parse(Transport::Cookie, [], b"{}"), Err(GrantError::NoCredential)));
        assert!(matches!(Grant::parse(Transport::Bearer, [], br#"{"access_token":1}"#), Err(GrantError::Json(_))));
        let empty = cookie("sid=; Max-Age=0");
        assert!(matches!(Grant::parse(Transport::Cookie, [&empty], b""), Err(GrantError::NoCredential)));
    }
}
