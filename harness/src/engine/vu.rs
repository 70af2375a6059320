//! Virtual users: distinct names holding credentials like real clients, and the outcome class of
//! every request they make.
//!
//! A user logs in when it holds nothing, refreshes shortly before its access token expires
//! (`jwt-refresh`), logs in again after a 401 on its own credential, after logout, or after expiry.
//! A small fraction of api requests carry a credential the driver *knows* is revoked (logged out
//! with a strategy that said `revoked: true`, or revoked by an admin) or tampered with: a target
//! that accepts one of those is a security failure and lands in `unexpected_allow`. `jwt` answers
//! `revoked: false` on logout: its logged-out tokens stay valid until `exp`, so their acceptance is
//! expected (the revocation window, measured by the probe), not a failure.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use http::header::HeaderValue;

use super::http::RequestWriter;
use super::record::{ClientKind, Op, Outcome};
use super::{Shared, Wire};
use crate::grant::{CSRF_HEADER, Grant};
use crate::targets::config::StrategyKind;
use crate::targets::strategy::StrategyProfile;
use crate::targets::strategy::profile::{Clients, Refresh, Revocation};

const API_PATH: &[u8] = b"/api/resource";

/// Most known-revoked credentials a connection keeps for injection.
const STALE_KEEP: usize = 64;

/// A credential a user holds.
#[derive(Debug, Clone)]
struct Cred {
    /// `cookie` or `authorization`: how this credential travels.
    name: &'static [u8],
    /// Whole header value: `sid=…` or `Bearer …`.
    header: HeaderValue,
    /// Bytes of the credential itself, and of the api request head carrying it.
    cred_len: u32,
    head_len: u32,
    expires_at: Option<Instant>,
    /// When to refresh (strategies with a refresh token).
    refresh_at: Option<Instant>,
    /// `{"refresh_token":"…"}` (strategies with a refresh token).
    refresh_body: Option<Bytes>,
    /// `x-csrf-token` for logout, when the access token travels in a cookie.
    csrf: Option<HeaderValue>,
    /// Revoked by an admin: `Some(claimed)` from the revoke-user answer.
    revoked: Option<bool>,
    refresh_revoked: bool,
}

#[derive(Debug)]
struct Vu {
    login_body: Vec<u8>,
    /// Browser or API client, where the strategy serves both (`None` elsewhere).
    client: Option<ClientKind>,
    revoke_path: String,
    cred: Option<Cred>,
}

/// A credential the driver knows is revoked (`claimed`: the target said so).
#[derive(Debug, Clone)]
enum Stale {
    Api { name: &'static [u8], header: HeaderValue, claimed: bool },
    Refresh { body: Bytes, claimed: bool },
}

/// What the driver knows about the credential a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Use {
    /// No credential needed (login, revoke-user, `none`).
    Open,
    /// The user's own, believed valid.
    Valid,
    /// The user's own, known expired.
    Expired,
    /// Known revoked; `claimed`: the target said it revoked it.
    Revoked { claimed: bool },
    /// Injected: a logged-out credential.
    InjectedRevoked { claimed: bool },
    /// Injected: one character of the credential changed.
    Tampered,
}

/// One request, decided before it is sent (its bytes are in the connection's request buffer).
#[derive(Debug, Clone, Copy)]
pub(super) struct Planned {
    pub op: Op,
    pub vu: usize,
    pub usage: Use,
    /// (credential bytes, request head bytes) for api requests with the user's own credential.
    pub bytes: Option<(u32, u32)>,
}

/// The users of a run: `u0` .. `u{users-1}`, of which the first `legacy` log in as older clients
/// and the next `api` as API clients (`"client": "api"`). Spread over the connections like every
/// user (user `i` on connection `i % C`).
#[derive(Debug, Clone, Copy)]
pub struct Population {
    pub users: usize,
    pub legacy: usize,
    pub api: usize,
}

impl Population {
    /// Login body, and client kind where the strategy serves browsers and API clients, of user `i`.
    fn login(&self, i: usize, name: &str, two_kinds: bool) -> (Vec<u8>, Option<ClientKind>) {
        let (extra, client) = if i < self.legacy {
            (r#","legacy":true"#, ClientKind::Browser)
        } else if i < self.legacy + self.api {
            (r#","client":"api""#, ClientKind::Api)
        } else {
            ("", ClientKind::Browser)
        };
        (format!(r#"{{"user":"{name}"{extra}}}"#).into_bytes(), two_kinds.then_some(client))
    }
}

/// The users served by one connection (user `i` belongs to connection `i % C`).
pub(super) struct ConnUsers {
    vus: Vec<Vu>,
    next: usize,
    stale: Vec<Stale>,
    rng: fastrand::Rng,
    /// What the strategy's credential is and what logout, revoke and refresh do to it.
    profile: &'static StrategyProfile,
    /// `host: …\r\n` + request line + final CRLF, for header byte accounting.
    base_head_len: u32,
}

/// How a connection's users are named and addressed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Naming<'a> {
    /// Put before `u<i>` (a part of a split run: `p2-`).
    pub prefix: &'a str,
    /// The `Host` header value (for header byte accounting).
    pub host: &'a str,
}

impl ConnUsers {
    pub fn new(
        conn: usize,
        connections: usize,
        users: Population,
        strategy: StrategyKind,
        naming: Naming<'_>,
        seed: u64,
    ) -> Self {
        let (prefix, host) = (naming.prefix, naming.host);
        let two_kinds = strategy.profile().clients == Clients::BrowserAndApi;
        let vus = (conn..users.users)
            .step_by(connections.max(1))
            .map(|i| {
                let name = format!("{prefix}u{i}");
                let (login_body, client) = users.login(i, &name, two_kinds);
                Vu { login_body, client, revoke_path: format!("/admin/revoke-user/{name}"), cred: None }
            })
            .collect();
        // "GET /api/resource HTTP/1.1\r\n" + "host: H\r\n" + "\r\n"
        let base_head_len = (28 + 6 + host.len() + 2 + 2) as u32;
        let (rng, profile) = (fastrand::Rng::with_seed(seed), strategy.profile());
        ConnUsers { vus, next: 0, stale: Vec::new(), rng, profile, base_head_len }
    }

    /// The kind of client user `vi` is, where the strategy serves two.
    pub fn client(&self, vi: usize) -> Option<ClientKind> {
        self.vus.get(vi).and_then(|v| v.client)
    }

    /// Choose the next operation, user and credential, and write the request into `out`.
    pub fn plan(&mut self, shared: &Shared, now: Instant, out: &mut Vec<u8>) -> Planned {
        let vi = self.next;
        self.next = (self.next + 1) % self.vus.len().max(1);
        let op = self.choose_op(shared, vi, now);
        if op == Op::Api
            && self.profile.has_credential()
            && let Some(planned) = self.inject(shared, vi, out)
        {
            return planned;
        }
        self.write(shared, op, vi, now, out)
    }

    /// Draw the operation from the mix, then let the user's credential decide: without a live
    /// one the user logs in first, and one due for renewal is refreshed.
    fn choose_op(&mut self, shared: &Shared, vi: usize, now: Instant) -> Op {
        let r = self.rng.f64();
        let mut op = match shared.cumulative_mix.iter().position(|c| r < *c).unwrap_or(1) {
            0 => Op::Login,
            1 => Op::Api,
            2 => Op::Logout,
            3 => Op::Refresh,
            _ => Op::Revoke,
        };
        if op == Op::Refresh && self.profile.refresh == Refresh::None {
            op = Op::Api;
        }
        let needs_cred = matches!(op, Op::Api | Op::Logout | Op::Refresh);
        if self.profile.has_credential() && needs_cred {
            match &self.vus[vi].cred {
                None => op = Op::Login,
                Some(c) if c.revoked.is_none() && c.expires_at.is_some_and(|e| now >= e) => op = Op::Login,
                Some(c) if op == Op::Api && c.refresh_at.is_some_and(|t| now >= t) => op = Op::Refresh,
                Some(_) => {}
            }
        }
        op
    }

    /// An api request replaced by a known-revoked or tampered credential, by the scenario's shares.
    fn inject(&mut self, shared: &Shared, vi: usize, out: &mut Vec<u8>) -> Option<Planned> {
        let host = shared.host.as_bytes();
        let roll = self.rng.f64();
        if roll < shared.revoked_fraction && !self.stale.is_empty() {
            let i = self.rng.usize(..self.stale.len());
            return Some(match &self.stale[i] {
                Stale::Api { name, header, claimed } => {
                    let mut w = RequestWriter::start(out, "GET", API_PATH, host);
                    w.header(name, header.as_bytes());
                    w.finish(false, b"");
                    Planned { op: Op::Api, vu: vi, usage: Use::InjectedRevoked { claimed: *claimed }, bytes: None }
                }
                Stale::Refresh { body, claimed } => {
                    RequestWriter::start(out, "POST", b"/refresh", host).finish(true, body);
                    Planned { op: Op::Refresh, vu: vi, usage: Use::InjectedRevoked { claimed: *claimed }, bytes: None }
                }
            });
        }
        if roll < shared.revoked_fraction + shared.tampered_fraction
            && let Some(c) = &self.vus[vi].cred
            && c.header.len() >= 16
        {
            let mut w = RequestWriter::start(out, "GET", API_PATH, host);
            let at = w.header(c.name, c.header.as_bytes());
            w.finish(false, b"");
            tamper(&mut out[at..at + c.header.len()]);
            return Some(Planned { op: Op::Api, vu: vi, usage: Use::Tampered, bytes: None });
        }
        None
    }

    /// Write `op` for user `vi` with the user's own credential.
    fn write(&self, shared: &Shared, op: Op, vi: usize, now: Instant, out: &mut Vec<u8>) -> Planned {
        let host = shared.host.as_bytes();
        let vu = &self.vus[vi];
        let own = |c: &Cred| -> Use {
            match c.revoked {
                Some(claimed) => Use::Revoked { claimed },
                None if c.expires_at.is_some_and(|e| now >= e) => Use::Expired,
                None => Use::Valid,
            }
        };
        match op {
            Op::Login => {
                RequestWriter::start(out, "POST", b"/login", host).finish(true, &vu.login_body);
                Planned { op, vu: vi, usage: Use::Open, bytes: None }
            }
            Op::Api => {
                let mut w = RequestWriter::start(out, "GET", API_PATH, host);
                let (usage, bytes) = match &vu.cred {
                    Some(c) => {
                        w.header(c.name, c.header.as_bytes());
                        (own(c), Some((c.cred_len, c.head_len)))
                    }
                    None => (Use::Open, Some((0, self.base_head_len))),
                };
                w.finish(false, b"");
                debug_assert_eq!(bytes.map(|b| b.1 as usize), Some(out.len()), "api head bytes as sent");
                Planned { op, vu: vi, usage, bytes }
            }
            Op::Logout => {
                let mut w = RequestWriter::start(out, "POST", b"/logout", host);
                let (usage, body) = match &vu.cred {
                    Some(c) => {
                        w.header(c.name, c.header.as_bytes());
                        if let Some(csrf) = &c.csrf {
                            w.header(CSRF_HEADER.as_bytes(), csrf.as_bytes());
                        }
                        (own(c), c.refresh_body.as_deref().unwrap_or_default())
                    }
                    None => (Use::Open, &[][..]),
                };
                w.finish(true, body);
                Planned { op, vu: vi, usage, bytes: None }
            }
            Op::Refresh => {
                let (body, usage) = match &vu.cred {
                    Some(c) => (
                        c.refresh_body.as_deref().unwrap_or_default(),
                        if c.refresh_revoked { Use::Revoked { claimed: true } } else { Use::Valid },
                    ),
                    None => (&[][..], Use::Open),
                };
                RequestWriter::start(out, "POST", b"/refresh", host).finish(true, body);
                Planned { op, vu: vi, usage, bytes: None }
            }
            Op::Revoke => {
                let mut w = RequestWriter::start(out, "POST", vu.revoke_path.as_bytes(), host);
                if let Some(k) = &shared.admin_key {
                    w.header(b"x-admin-key", k.as_bytes());
                }
                w.finish(true, b"");
                Planned { op, vu: vi, usage: Use::Open, bytes: None }
            }
        }
    }

    /// Classify the answer and update the user's state.
    pub fn settle(&mut self, shared: &Shared, p: &Planned, wire: &Wire<'_>, now: Instant) -> Outcome {
        let (status, set_cookie, body) = match wire {
            Wire::Timeout => return Outcome::Timeout,
            Wire::Connect => return Outcome::ConnectError,
            Wire::Protocol => return Outcome::ProtocolError,
            Wire::Answer { status, set_cookie, body } => (*status, set_cookie, *body),
        };
        let outcome = classify(p.op, p.usage, status, shared.admin_key.is_some());
        let injected = matches!(p.usage, Use::InjectedRevoked { .. } | Use::Tampered);
        if injected {
            return outcome;
        }
        let profile = self.profile;
        let base_head_len = self.base_head_len;
        let vu = &mut self.vus[p.vu];
        match (p.op, status.is_success()) {
            (Op::Login | Op::Refresh, true) => {
                vu.cred = cred_of(profile, set_cookie.as_ref(), body, now, base_head_len);
            }
            // An answer that hands a cookie strategy's client a new credential (an upgrade).
            (Op::Api, true) if set_cookie.is_some() && profile.transport.cookie() => {
                if let Some(new) = cred_of(profile, set_cookie.as_ref(), body, now, base_head_len) {
                    vu.cred = Some(new);
                }
            }
            (Op::Refresh, false) => vu.cred = None,
            (Op::Api, false) if status == StatusCode::UNAUTHORIZED => vu.cred = None,
            (Op::Logout, ok) => {
                if let Some(old) = vu.cred.take()
                    && ok
                {
                    let claimed = body_says_revoked(body);
                    let stale = match profile.logout {
                        Revocation::NotApplicable => None,
                        l if l.ends_refresh_token() => old.refresh_body.map(|body| Stale::Refresh { body, claimed }),
                        _ => Some(Stale::Api { name: old.name, header: old.header, claimed }),
                    };
                    if let Some(s) = stale {
                        if self.stale.len() < STALE_KEEP {
                            self.stale.push(s);
                        } else {
                            let i = self.rng.usize(..STALE_KEEP);
                            self.stale[i] = s;
                        }
                    }
                }
            }
            (Op::Revoke, true) => {
                if body_says_revoked(body)
                    && let Some(c) = vu.cred.as_mut()
                {
                    if profile.revoke_user.ends_refresh_token() {
                        c.refresh_revoked = true;
                    } else {
                        c.revoked = Some(true);
                    }
                }
            }
            _ => {}
        }
        outcome
    }
}

/// The outcome class of an answer, from what the driver knew about the credential.
pub(super) fn classify(op: Op, usage: Use, status: StatusCode, have_admin_key: bool) -> Outcome {
    let ok = status.is_success();
    if op == Op::Revoke && !have_admin_key {
        return if status == StatusCode::UNAUTHORIZED { Outcome::ExpectedDeny } else { Outcome::UnexpectedAllow };
    }
    // Logging out a credential that is already revoked may succeed (idempotent) or be refused:
    // neither grants access.
    if op == Op::Logout && matches!(usage, Use::Revoked { .. } | Use::Expired) {
        return if ok || status == StatusCode::UNAUTHORIZED { Outcome::ExpectedAllow } else { Outcome::UnexpectedDeny };
    }
    match usage {
        Use::Revoked { claimed: true } | Use::InjectedRevoked { claimed: true } | Use::Tampered => {
            if ok {
                Outcome::UnexpectedAllow
            } else if status == StatusCode::UNAUTHORIZED {
                Outcome::ExpectedDeny
            } else {
                Outcome::UnexpectedDeny
            }
        }
        Use::Revoked { claimed: false } | Use::InjectedRevoked { claimed: false } | Use::Expired => {
            // Still accepted inside the revocation window / leeway: expected either way.
            if ok {
                Outcome::ExpectedAllow
            } else if status == StatusCode::UNAUTHORIZED {
                Outcome::ExpectedDeny
            } else {
                Outcome::UnexpectedDeny
            }
        }
        Use::Valid | Use::Open => {
            if ok {
                Outcome::ExpectedAllow
            } else {
                Outcome::UnexpectedDeny
            }
        }
    }
}

fn body_says_revoked(body: &[u8]) -> bool {
    body.windows(14).any(|w| w == b"\"revoked\":true") || body.windows(15).any(|w| w == b"\"revoked\": true")
}

/// The credential of a login or refresh answer (read by the one grant parser), with what the
/// driver needs to send it without allocating per request.
fn cred_of(
    profile: &StrategyProfile,
    set_cookie: Option<&HeaderValue>,
    body: &[u8],
    now: Instant,
    base_head_len: u32,
) -> Option<Cred> {
    let grant = match Grant::parse(profile.transport, set_cookie, body) {
        Ok(g) => g?,
        Err(e) => {
            tracing::debug!("login/refresh answer without a usable credential: {e}");
            return None;
        }
    };
    let header = HeaderValue::from_str(&grant.header_value()).ok()?;
    let name = grant.header_name().as_bytes();
    let expires_at = grant.expires_in.map(|ttl| now + ttl);
    let refresh_body = grant.refresh_body().map(Bytes::from);
    // Refresh shortly before expiry: a fifth of the lifetime, at most 30 s early.
    let refresh_at = match (&refresh_body, grant.expires_in, expires_at) {
        (Some(_), Some(ttl), Some(at)) => Some(at.checked_sub((ttl / 5).min(Duration::from_secs(30))).unwrap_or(now)),
        _ => None,
    };
    let head_len = base_head_len + name.len() as u32 + 2 + header.len() as u32 + 2;
    Some(Cred {
        name,
        header,
        cred_len: grant.value.len() as u32,
        head_len,
        expires_at,
        refresh_at,
        refresh_body,
        csrf: grant.csrf_token.as_deref().and_then(|c| HeaderValue::from_str(c).ok()),
        revoked: None,
        refresh_revoked: false,
    })
}

/// Change one character of a credential header value, inside the signature (JWT) or the id
/// (session). Values shorter than 16 bytes are left alone.
fn tamper(v: &mut [u8]) -> bool {
    if v.len() < 16 {
        return false;
    }
    let i = v.len() - 10;
    v[i] = if v[i] == b'A' { b'B' } else { b'A' };
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoked_credential_accepted_is_unexpected_allow() {
        let c = classify(Op::Api, Use::InjectedRevoked { claimed: true }, StatusCode::OK, true);
        assert_eq!(c, Outcome::UnexpectedAllow);
        let c = classify(Op::Api, Use::InjectedRevoked { claimed: false }, StatusCode::OK, true);
        assert_eq!(c, Outcome::ExpectedAllow, "jwt logout does not claim revocation");
        let c = classify(Op::Api, Use::Tampered, StatusCode::UNAUTHORIZED, true);
        assert_eq!(c, Outcome::ExpectedDeny);
        let c = classify(Op::Api, Use::Valid, StatusCode::UNAUTHORIZED, true);
        assert_eq!(c, Outcome::UnexpectedDeny);
    }

    #[test]
    fn population_logs_in_legacy_then_api_clients_then_browsers() {
        let p = Population { users: 10, legacy: 2, api: 3 };
        let body = |i: usize, two: bool| {
            let (b, c) = p.login(i, &format!("u{i}"), two);
            (String::from_utf8(b).unwrap(), c)
        };
        assert_eq!(body(1, true), (r#"{"user":"u1","legacy":true}"#.to_owned(), Some(ClientKind::Browser)));
        assert_eq!(body(2, true), (r#"{"user":"u2","client":"api"}"#.to_owned(), Some(ClientKind::Api)));
        assert_eq!(body(4, true).1, Some(ClientKind::Api));
        assert_eq!(body(5, true), (r#"{"user":"u5"}"#.to_owned(), Some(ClientKind::Browser)));
        assert_eq!(body(5, false).1, None, "untagged where the strategy serves one kind");
    }

    #[test]
    fn tamper_changes_one_byte() {
        let h = b"Bearer aaaa.bbbb.ccccccccccccccccccc";
        let mut t = *h;
        assert!(tamper(&mut t));
        let diff = h.iter().zip(t).filter(|(a, b)| **a != *b).count();
        assert_eq!(diff, 1);
        assert!(!tamper(&mut b"Bearer x".to_owned()));
    }
}
