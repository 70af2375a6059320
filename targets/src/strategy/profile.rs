//! What a strategy *is*, as data: the [`StrategyProfile`] each strategy declares next to its
//! implementation, read by the server (credential transport, `/refresh`, logout cookies), the
//! config (TTL default, `--fail-open`), and the harness (driver, probers, plan, report, schema).
//!
//! Nothing outside a strategy's own file and the registry decides anything from a strategy's name:
//! it asks the profile.

use std::time::Duration;

use crate::config::AuthzSource;

/// How a strategy's credential travels on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// No credential at all (`none`).
    None,
    /// The `sid` cookie, set by login's `Set-Cookie`.
    Cookie,
    /// `Authorization: Bearer <access_token>` from login's JSON body.
    Bearer,
    /// Either: a browser's cookie or an API client's bearer token (the bearer wins when both come).
    Both,
}

impl Transport {
    /// Whether the server reads the `sid` cookie (and clears it on logout).
    pub const fn cookie(self) -> bool {
        matches!(self, Transport::Cookie | Transport::Both)
    }

    /// Whether the server reads an `Authorization: Bearer` header.
    pub const fn bearer(self) -> bool {
        matches!(self, Transport::Bearer | Transport::Both)
    }
}

/// Which kinds of client log in to a strategy, each holding its own kind of credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clients {
    /// One kind: every login hands out the same kind of credential.
    One,
    /// Current and older clients of a strategy migrating between credentials: a login with
    /// `"legacy": true` hands out what an older client holds (`[traffic] legacy_fraction`).
    CurrentAndLegacy,
    /// Browsers and API clients served by one backend: a plain login hands out the `sid` cookie, a
    /// login with `"client": "api"` a bearer JWT (`[traffic] api_client_fraction`).
    BrowserAndApi,
}

/// Whether the strategy serves `POST /refresh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// `/refresh` answers 404.
    None,
    /// `POST /refresh` with `{"refresh_token": "..."}` in the JSON body; logout takes it the same way.
    JsonBody,
}

/// What logout (or revoke-user) does to a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// Nothing to revoke (`none`): answers `revoked: false`.
    NotApplicable,
    /// The server-side record is deleted: the credential is refused at once.
    DeleteRecord,
    /// The token's id is denylisted (or the user's not-before moved): refused at once.
    Denylist,
    /// Nothing can end the credential before its `exp` (+ leeway): answers `revoked: false`.
    UntilExpiry,
    /// The refresh-token family is deleted: refresh is refused at once, the access token lives
    /// until its `exp`.
    RefreshFamily,
}

impl Revocation {
    /// Whether the credential presented on api requests is refused right after a revocation.
    pub const fn api_credential_refused_at_once(self) -> bool {
        matches!(self, Revocation::DeleteRecord | Revocation::Denylist)
    }

    /// Whether a revocation ends the refresh token (and only that).
    pub const fn ends_refresh_token(self) -> bool {
        matches!(self, Revocation::RefreshFamily)
    }
}

/// A store command a strategy issues (for the store-load figures and the report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    Get,
    Mget,
    Set,
    /// `SET .. XX KEEPTTL GET`: redeem a refresh token atomically.
    SetXxGet,
    Del,
    Sadd,
    Smembers,
}

/// The route classes whose behaviour a profile states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    Api,
    Login,
    Logout,
    Refresh,
}

impl RouteClass {
    pub const ALL: [RouteClass; 4] = [RouteClass::Api, RouteClass::Login, RouteClass::Logout, RouteClass::Refresh];

    pub const fn name(self) -> &'static str {
        match self {
            RouteClass::Api => "api",
            RouteClass::Login => "login",
            RouteClass::Logout => "logout",
            RouteClass::Refresh => "refresh",
        }
    }
}

/// One value per route class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerRoute<T> {
    pub api: T,
    pub login: T,
    pub logout: T,
    pub refresh: T,
}

impl<T: Copy> PerRoute<T> {
    pub const fn get(&self, route: RouteClass) -> T {
        match route {
            RouteClass::Api => self.api,
            RouteClass::Login => self.login,
            RouteClass::Logout => self.logout,
            RouteClass::Refresh => self.refresh,
        }
    }
}

/// What a route answers while the store is down (fail closed: DESIGN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreDown {
    /// Served as usual (200 with a valid credential): the route does not need the store.
    Unaffected,
    /// Refused with 503 (and `Retry-After`): the route needs the store.
    FailsClosed,
    /// Served (200) without the store check, each such allow counted (`--fail-open`).
    FailsOpen,
    /// Served (200) from the last answers the store gave while they are younger than the stale
    /// grace, then refused with 503 (`--stale-grace`).
    ServesStale,
    /// Refused with 503 once the read cache's trust lease ends (`cached_reads`): until then a
    /// store that went silent leaves the cache answering, coherent up to the silence.
    FailsClosedAfterLease,
    /// The strategy has no such route (404 either way).
    NoRoute,
}

impl StoreDown {
    /// The HTTP status a valid request gets on this route while the store is down.
    pub const fn status(self) -> u16 {
        match self {
            StoreDown::Unaffected | StoreDown::FailsOpen | StoreDown::ServesStale => 200,
            StoreDown::FailsClosed | StoreDown::FailsClosedAfterLease => 503,
            StoreDown::NoRoute => 404,
        }
    }

    /// One phrase for reports.
    pub const fn describe(self) -> &'static str {
        match self {
            StoreDown::Unaffected => "unaffected",
            StoreDown::FailsClosed => "fails closed (503)",
            StoreDown::FailsOpen => "fails open (200, unchecked)",
            StoreDown::ServesStale => "serves stale answers (200) for the grace, then fails closed (503)",
            StoreDown::FailsClosedAfterLease => "fails closed (503) once its cache lease ends",
            StoreDown::NoRoute => "no such route",
        }
    }
}

/// What a target was told to do when the store cannot answer its per-request check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Degrade {
    /// Refuse with 503 (the default: fail closed).
    #[default]
    FailClosed,
    /// `--fail-open`: allow the request unchecked.
    FailOpen,
    /// `--stale-grace`: answer from the last answers the store gave, for a bounded time.
    ServeStale,
}

impl Degrade {
    /// From a target's `--fail-open` and `--stale-grace` settings.
    pub fn of(fail_open: bool, stale_grace: Duration) -> Self {
        match (fail_open, stale_grace.is_zero()) {
            (true, _) => Degrade::FailOpen,
            (false, false) => Degrade::ServeStale,
            (false, true) => Degrade::FailClosed,
        }
    }
}

/// Default lifetimes a strategy starts with when no flag sets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultTtls {
    /// `--access-ttl` default (access JWTs).
    pub access: Duration,
}

/// Everything the server, the client side and the report need to know about one strategy.
#[derive(Debug, PartialEq, Eq)]
pub struct StrategyProfile {
    /// The `--strategy` value, the results' `strategy` field: contract.
    pub name: &'static str,
    /// One line for `--help` and the report.
    pub description: &'static str,
    pub transport: Transport,
    pub refresh: Refresh,
    /// Whether login hands out signed JWTs (so `--alg`, claim bloat and key rotation apply).
    pub issues_jwt: bool,
    pub logout: Revocation,
    pub revoke_user: Revocation,
    /// Store commands per route with `--authz claims` (empty: the route never touches the store).
    pub store_ops: PerRoute<&'static [StoreOp]>,
    /// Whether `--authz store` adds a roles lookup to the api check (a session record holds roles).
    pub authz_store_lookup: bool,
    pub ttls: DefaultTtls,
    /// Whether `--fail-open` is supported (the api check may be allowed without the store).
    pub fail_open: bool,
    /// Whether `--stale-grace` is supported: a store error on the api lookup may be answered from
    /// the last answers the store gave, for a bounded time (graceful degradation).
    pub stale_reads: bool,
    /// Whether the api lookup reads through an invalidated in-process cache, which goes on
    /// answering for its trust lease (`cache::link::LEASE`) when the store stops answering
    /// silently: a store-down check then sees some 200s before the 503s.
    pub cached_reads: bool,
    /// Names of the ways an api request can be verified, when there is more than one (a hybrid
    /// checks a token where the client has one and falls back to the session lookup): the report
    /// shows each one's share ([`super::Principal::path`] indexes this). Empty: one way. At most
    /// [`MAX_AUTH_PATHS`].
    pub auth_paths: &'static [&'static str],
    /// Which kinds of client log in: what the driver's population shares (`legacy_fraction`,
    /// `api_client_fraction`) apply to.
    pub clients: Clients,
}

/// How many api verification paths a profile may name (the `/metrics` counters are fixed).
pub const MAX_AUTH_PATHS: usize = 4;

impl StrategyProfile {
    /// Whether the api check needs the store with these options.
    pub fn api_uses_store(&self, authz: AuthzSource) -> bool {
        !self.store_ops.api.is_empty() || (authz == AuthzSource::Store && self.authz_store_lookup)
    }

    /// What a route answers while the store is down, derived from the store commands it issues.
    pub fn store_down(&self, route: RouteClass, authz: AuthzSource, degrade: Degrade) -> StoreDown {
        if route == RouteClass::Refresh && self.refresh == Refresh::None {
            return StoreDown::NoRoute;
        }
        let roles = authz == AuthzSource::Store && self.authz_store_lookup;
        // With `--authz store` every route that checks or issues a credential touches the roles.
        let needs_store = !self.store_ops.get(route).is_empty() || roles;
        match route {
            RouteClass::Api if needs_store && degrade == Degrade::FailOpen && self.fail_open => StoreDown::FailsOpen,
            RouteClass::Api if needs_store && degrade == Degrade::ServeStale && self.stale_reads => {
                StoreDown::ServesStale
            }
            RouteClass::Api if needs_store && self.cached_reads => StoreDown::FailsClosedAfterLease,
            _ if needs_store => StoreDown::FailsClosed,
            _ => StoreDown::Unaffected,
        }
    }

    /// What the routes do while the store is down, grouped: `api: unaffected; login, logout: fails
    /// closed (503)` (routes the strategy does not have are left out).
    pub fn store_down_summary(&self, authz: AuthzSource, degrade: Degrade) -> String {
        let mut groups: Vec<(StoreDown, Vec<&str>)> = Vec::new();
        for route in RouteClass::ALL {
            let behaviour = self.store_down(route, authz, degrade);
            if behaviour == StoreDown::NoRoute {
                continue;
            }
            match groups.iter_mut().find(|(b, _)| *b == behaviour) {
                Some((_, routes)) => routes.push(route.name()),
                None => groups.push((behaviour, vec![route.name()])),
            }
        }
        let parts: Vec<String> =
            groups.iter().map(|(b, routes)| format!("{}: {}", routes.join(", "), b.describe())).collect();
        parts.join("; ")
    }

    /// Whether a request can carry a credential at all.
    pub const fn has_credential(&self) -> bool {
        !matches!(self.transport, Transport::None)
    }
}
