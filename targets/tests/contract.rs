//! The target HTTP contract (docs/design.md, "Target HTTP contract"), route by route, for all five
//! strategies on both stores: status codes, JSON bodies, cookie flags, `WWW-Authenticate`, JWKS,
//! `/metrics` counts, and every kind of bad input answered with a 4xx JSON error, never a 5xx.
//!
//! Also the fixtures the other strategy test modules share: [`start`] (a target on a chosen store),
//! [`Cred`] and the request helpers on [`Env`], and the [`both_stores`] macro.

use std::time::Duration;

use authbench_targets::TargetArgs;
use authbench_targets::config::{Alg, StrategyKind};
use authbench_targets::strategy::profile::Clients;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, SET_COOKIE, WWW_AUTHENTICATE};
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

use crate::util::{self, ADMIN_KEY, PgSchema, RedisCluster, RedisServer, TestTarget};

// ---------------------------------------------------------------------------------------------
// Shared fixtures
// ---------------------------------------------------------------------------------------------

/// Which store a test target runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backing {
    Memory,
    /// A private redis-server on a free port, started for the test.
    Redis,
    /// A private 3-node Redis Cluster, started for the test (`--store` gets every node's URL).
    Cluster,
    /// A schema of the test's own on the machine's PostgreSQL, dropped after the test.
    Postgres,
}

/// Generate `mod NAME { memory, redis, postgres }` tests, each calling `NAME(Backing)` of the parent module.
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                super::$name($crate::contract::Backing::Memory).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                super::$name($crate::contract::Backing::Redis).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::contract::Backing::Postgres).await
            }
        }
    )*};
}
pub(crate) use both_stores;

/// As [`both_stores`], plus a `cluster` test on a 3-node Redis Cluster: for the flows whose store
/// key patterns must stay valid in cluster mode (multi-key commands within one hash tag).
macro_rules! all_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                super::$name($crate::contract::Backing::Memory).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                super::$name($crate::contract::Backing::Redis).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::contract::Backing::Postgres).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cluster() {
                super::$name($crate::contract::Backing::Cluster).await
            }
        }
    )*};
}
pub(crate) use all_stores;

/// A running target, its client and (for the Redis backing) its redis-server.
pub(crate) struct Env {
    pub t: TestTarget,
    pub c: Client,
    pub kind: StrategyKind,
    /// Declared last: dropped after the target, so the target never outlives its store mid-test.
    pub redis: Option<RedisServer>,
    /// The cluster of the `Cluster` backing; dropped after the target too.
    pub cluster: Option<RedisCluster>,
    /// The schema of the `Postgres` backing, held only so it is dropped after the target.
    pub _pg: Option<PgSchema>,
}

/// Every request of these tests is bounded by this.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Start a `kind` target on `backing`, after `tweak` adjusted the flags; returns once it answers.
pub(crate) async fn start(kind: StrategyKind, backing: Backing, tweak: impl FnOnce(&mut TargetArgs)) -> Env {
    let mut args = util::args(kind);
    tweak(&mut args);
    let (mut redis, mut cluster, mut pg) = (None, None, None);
    match backing {
        Backing::Memory => {}
        Backing::Redis => {
            let r = tokio::task::spawn_blocking(RedisServer::start).await.unwrap();
            args.store = r.url();
            redis = Some(r);
        }
        Backing::Cluster => {
            let c = tokio::task::spawn_blocking(|| RedisCluster::start(3)).await.unwrap();
            args.store = c.urls();
            cluster = Some(c);
        }
        Backing::Postgres => {
            let Some(schema) = PgSchema::create().await else {
                panic!("{}=1 skips PostgreSQL store tests, but this one needs a server", util::POSTGRES_OPT_OUT_ENV)
            };
            args.store = schema.url();
            pg = Some(schema);
        }
    }
    let t = TestTarget::start(args).await;
    let c = Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(REQUEST_TIMEOUT).build().unwrap();
    let env = Env { t, c, kind, redis, cluster, _pg: pg };
    let r = env.c.get(env.t.url("/health")).send().await.expect("target answers /health");
    assert_eq!(r.status(), StatusCode::OK);
    env
}

/// A credential as a client holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cred {
    Nothing,
    Cookie(String),
    Bearer { access: String, refresh: Option<String> },
}

impl Cred {
    pub fn apply(&self, rb: RequestBuilder) -> RequestBuilder {
        match self {
            Cred::Nothing => rb,
            Cred::Cookie(sid) => rb.header(COOKIE, format!("sid={sid}")),
            Cred::Bearer { access, .. } => rb.bearer_auth(access),
        }
    }

    pub fn access(&self) -> &str {
        match self {
            Cred::Bearer { access, .. } => access,
            other => panic!("not a bearer credential: {other:?}"),
        }
    }

    pub fn refresh(&self) -> &str {
        match self {
            Cred::Bearer { refresh: Some(r), .. } => r,
            other => panic!("no refresh token: {other:?}"),
        }
    }

    pub fn sid(&self) -> &str {
        match self {
            Cred::Cookie(s) => s,
            other => panic!("not a session: {other:?}"),
        }
    }
}

/// Status and JSON body of a response; panics on a 5xx (never acceptable for client input).
pub(crate) async fn body(r: Response) -> (StatusCode, Value) {
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(!status.is_server_error(), "5xx: {status} {text}");
    let v = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, v)
}

/// Assert a 4xx error with a JSON `{"error": "..."}` body.
pub(crate) async fn expect_error(r: Response, want: StatusCode, what: &str) {
    let ct = r.headers().get(CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned());
    let (status, v) = body(r).await;
    assert_eq!(status, want, "{what}: body {v}");
    assert_eq!(ct.as_deref(), Some("application/json"), "{what}: content type");
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{what}: error body {v}");
}

/// The `sid` value of a `Set-Cookie` header, if any.
pub(crate) fn set_cookie_sid(r: &Response) -> Option<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("sid=").map(|rest| rest.split(';').next().unwrap_or("").to_owned()))
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        self.t.url(path)
    }

    pub async fn login_response(&self, user: &str, offered: &Cred) -> Response {
        offered.apply(self.c.post(self.url("/login"))).json(&json!({ "user": user })).send().await.unwrap()
    }

    /// Log in and return the credential the strategy hands out.
    pub async fn login(&self, user: &str) -> Cred {
        self.login_offering(user, &Cred::Nothing).await
    }

    pub async fn login_offering(&self, user: &str, offered: &Cred) -> Cred {
        let r = self.login_response(user, offered).await;
        let sid = set_cookie_sid(&r);
        let (status, v) = body(r).await;
        assert_eq!(status, StatusCode::OK, "login {user}: {v}");
        let transport = self.kind.profile().transport;
        match self.kind {
            StrategyKind::NONE => Cred::Nothing,
            _ if transport.cookie() => Cred::Cookie(sid.expect("a cookie strategy's login sets the sid cookie")),
            _ => Cred::Bearer {
                access: v["access_token"].as_str().expect("access_token").to_owned(),
                refresh: v["refresh_token"].as_str().map(str::to_owned),
            },
        }
    }

    /// Log in as an API client (`"client": "api"`): the bearer token of a strategy serving browsers
    /// and API clients apart.
    pub async fn login_api(&self, user: &str) -> Cred {
        let r = self.c.post(self.url("/login")).json(&json!({ "user": user, "client": "api" })).send().await.unwrap();
        assert_eq!(set_cookie_sid(&r), None, "an API client's login sets no cookie");
        let (status, v) = body(r).await;
        assert_eq!(status, StatusCode::OK, "api login {user}: {v}");
        Cred::Bearer { access: v["access_token"].as_str().expect("access_token").to_owned(), refresh: None }
    }

    /// Log in for a bearer token: as an API client where the strategy serves browsers and API
    /// clients apart, else as every client does.
    pub async fn login_token(&self, user: &str) -> Cred {
        if self.kind.profile().clients == Clients::BrowserAndApi {
            self.login_api(user).await
        } else {
            self.login(user).await
        }
    }

    pub async fn resource(&self, cred: &Cred) -> Response {
        cred.apply(self.c.get(self.url("/api/resource"))).send().await.unwrap()
    }

    /// Status of `GET /api/resource` with `cred`; a 200 must name `user`, a 401 must be a JSON error.
    pub async fn access(&self, cred: &Cred, user: &str) -> StatusCode {
        let r = self.resource(cred).await;
        let www = r.headers().get(WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_owned());
        let (status, v) = body(r).await;
        match status {
            StatusCode::OK => {
                let want = if self.kind == StrategyKind::NONE { "anonymous" } else { user };
                assert_eq!(v["sub"], want, "resource body {v}");
            }
            StatusCode::UNAUTHORIZED => {
                assert!(v["error"].is_string(), "401 body {v}");
                if matches!(cred, Cred::Bearer { .. }) {
                    assert!(www.is_some_and(|w| w.starts_with("Bearer ")), "bearer 401 without WWW-Authenticate");
                }
            }
            other => panic!("unexpected resource status {other}: {v}"),
        }
        status
    }

    /// `POST /logout` with `cred` (and its refresh token in the body, if it has one).
    pub async fn logout(&self, cred: &Cred) -> (StatusCode, Value) {
        let mut rb = cred.apply(self.c.post(self.url("/logout")));
        if let Cred::Bearer { refresh: Some(rt), .. } = cred {
            rb = rb.json(&json!({ "refresh_token": rt }));
        }
        body(rb.send().await.unwrap()).await
    }

    pub async fn refresh_response(&self, refresh_token: &str) -> Response {
        self.c.post(self.url("/refresh")).json(&json!({ "refresh_token": refresh_token })).send().await.unwrap()
    }

    /// `POST /refresh`: the new credential on 200, else the status.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Cred, StatusCode> {
        let (status, v) = body(self.refresh_response(refresh_token).await).await;
        if status != StatusCode::OK {
            assert!(v["error"].is_string(), "refresh error body {v}");
            return Err(status);
        }
        Ok(Cred::Bearer {
            access: v["access_token"].as_str().expect("access_token").to_owned(),
            refresh: Some(v["refresh_token"].as_str().expect("refresh_token").to_owned()),
        })
    }

    pub async fn revoke_user(&self, user: &str) -> (StatusCode, Value) {
        body(
            self.c
                .post(self.url(&format!("/admin/revoke-user/{user}")))
                .header("x-admin-key", ADMIN_KEY)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn metrics(&self) -> String {
        let r = self.c.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let ct = r.headers().get(CONTENT_TYPE).unwrap().to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/plain"), "metrics content type {ct}");
        r.text().await.unwrap()
    }
}

/// The value of one metric line (exact label set), 0 when absent.
pub(crate) fn metric(text: &str, name_and_labels: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// Decode the JSON header and payload of a JWT.
pub(crate) fn jwt_parts(token: &str) -> (Value, Value) {
    let mut it = token.split('.');
    let h = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
    let p = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
    (serde_json::from_slice(&h).unwrap(), serde_json::from_slice(&p).unwrap())
}

// ---------------------------------------------------------------------------------------------
// The contract, per strategy
// ---------------------------------------------------------------------------------------------

async fn check_contract(kind: StrategyKind, backing: Backing) {
    let env = start(kind, backing, |_| {}).await;
    let c = &env.c;

    // GET /health
    let (s, v) = body(c.get(env.url("/health")).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // POST /login
    let r = env.login_response("alice", &Cred::Nothing).await;
    assert_eq!(r.status(), StatusCode::OK);
    let cookies: Vec<String> = r.headers().get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    let cache = r.headers().get(CACHE_CONTROL).map(|v| v.to_str().unwrap().to_owned());
    let (_, v) = body(r).await;
    let cred = match kind {
        StrategyKind::NONE => {
            assert!(cookies.is_empty());
            assert_eq!(v["user"], "alice");
            Cred::Nothing
        }
        StrategyKind::SESSION => {
            assert_eq!(cookies.len(), 1, "{cookies:?}");
            let attrs: Vec<&str> = cookies[0].split(';').map(str::trim).collect();
            for flag in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
                assert!(attrs.contains(&flag), "cookie lacks {flag}: {}", cookies[0]);
            }
            assert!(!attrs.iter().any(|a| a.to_ascii_lowercase().starts_with("domain")), "no Domain attribute");
            let sid = attrs[0].strip_prefix("sid=").unwrap();
            assert_eq!(URL_SAFE_NO_PAD.decode(sid).unwrap().len(), 32, "sid is 256 bits");
            assert!(v.get("sid").is_none() && !v.to_string().contains(sid), "sid never in the body");
            Cred::Cookie(sid.to_owned())
        }
        _ => {
            assert!(cookies.is_empty(), "JWT strategies set no cookie");
            assert_eq!(cache.as_deref(), Some("no-store"), "tokens must not be cached");
            assert_eq!(v["token_type"], "Bearer");
            let ttl = if kind == StrategyKind::JWT_REFRESH { 300 } else { 900 };
            assert_eq!(v["expires_in"], ttl, "{v}");
            let access = v["access_token"].as_str().unwrap().to_owned();
            assert_eq!(access.split('.').count(), 3);
            let (h, p) = jwt_parts(&access);
            assert_eq!(h["alg"], "HS256");
            assert_eq!(h["typ"], "at+jwt");
            assert_eq!(p["sub"], "alice");
            for claim in ["iss", "aud", "exp", "iat", "nbf"] {
                assert!(p.get(claim).is_some(), "missing {claim} in {p}");
            }
            assert_eq!(p.get("jti").is_some(), kind == StrategyKind::JWT_DENYLIST, "{p}");
            let refresh = v["refresh_token"].as_str().map(str::to_owned);
            assert_eq!(refresh.is_some(), kind == StrategyKind::JWT_REFRESH, "{v}");
            Cred::Bearer { access, refresh }
        }
    };

    // GET /api/resource
    assert_eq!(env.access(&cred, "alice").await, StatusCode::OK);
    let missing = env.resource(&Cred::Nothing).await;
    if kind == StrategyKind::NONE {
        assert_eq!(missing.status(), StatusCode::OK);
    } else {
        let www = missing.headers().get(WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_owned());
        if kind.uses_jwt() {
            assert!(www.is_some_and(|w| w.starts_with("Bearer")), "bearer 401 carries WWW-Authenticate");
        }
        expect_error(missing, StatusCode::UNAUTHORIZED, "resource without credential").await;
    }

    // POST /refresh: jwt-refresh only.
    let cred = if kind == StrategyKind::JWT_REFRESH {
        let next = env.refresh(cred.refresh()).await.expect("refresh works");
        assert_ne!(next.refresh(), cred.refresh());
        assert_eq!(env.access(&next, "alice").await, StatusCode::OK);
        next
    } else {
        let r = c.post(env.url("/refresh")).json(&json!({ "refresh_token": "x" })).send().await.unwrap();
        expect_error(r, StatusCode::NOT_FOUND, "refresh on a strategy without it").await;
        cred
    };

    // POST /logout
    let (s, v) = env.logout(&cred).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let revokes = matches!(kind, StrategyKind::SESSION | StrategyKind::JWT_DENYLIST | StrategyKind::JWT_REFRESH);
    assert_eq!(v, json!({ "revoked": revokes }));
    if kind != StrategyKind::NONE {
        let r = c.post(env.url("/logout")).send().await.unwrap();
        expect_error(r, StatusCode::UNAUTHORIZED, "logout without credential").await;
    }
    if kind == StrategyKind::SESSION {
        let other = env.login("carol").await;
        let r = other.apply(c.post(env.url("/logout"))).send().await.unwrap();
        let clear = r.headers().get(SET_COOKIE).unwrap().to_str().unwrap().to_owned();
        assert!(clear.starts_with("sid=;") && clear.contains("Max-Age=0") && clear.contains("HttpOnly"), "{clear}");
        assert_eq!(body(r).await.1, json!({ "revoked": true }));
    }

    // POST /admin/revoke-user/{user}
    let _bob = env.login("bob").await;
    let path = env.url("/admin/revoke-user/bob");
    expect_error(c.post(&path).send().await.unwrap(), StatusCode::UNAUTHORIZED, "revoke without key").await;
    for wrong in ["", "x", &ADMIN_KEY[..ADMIN_KEY.len() - 1], &format!("{ADMIN_KEY}x"), &ADMIN_KEY.to_uppercase()] {
        let r = c.post(&path).header("x-admin-key", wrong).send().await.unwrap();
        expect_error(r, StatusCode::UNAUTHORIZED, "revoke with a wrong key").await;
    }
    let (s, v) = env.revoke_user("bob").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v, json!({ "revoked": revokes }));
    for bad in ["a%20b", "a%7Bb%7D", "..%2F..%2Fetc", "%C3%A4", &"a".repeat(65), ""] {
        let r = c.post(env.url(&format!("/admin/revoke-user/{bad}"))).header("x-admin-key", ADMIN_KEY).send().await;
        expect_error(r.unwrap(), StatusCode::BAD_REQUEST, &format!("revoke bad user {bad}")).await;
    }
    let r = c.get(&path).header("x-admin-key", ADMIN_KEY).send().await.unwrap();
    expect_error(r, StatusCode::METHOD_NOT_ALLOWED, "GET revoke").await;

    // GET /.well-known/jwks.json: HS256 and non-JWT strategies publish nothing.
    let r = c.get(env.url("/.well-known/jwks.json")).send().await.unwrap();
    expect_error(r, StatusCode::NOT_FOUND, "jwks for a symmetric or non-JWT target").await;

    // GET /metrics
    let text = env.metrics().await;
    let name = kind.name();
    assert_eq!(
        metric(&text, &format!(r#"authbench_requests_total{{strategy="{name}",route="/health",status="200"}}"#)),
        2
    );
    assert!(text.contains("# TYPE authbench_store_operations_total counter"));
}

async fn contract_none(b: Backing) {
    check_contract(StrategyKind::NONE, b).await;
}
async fn contract_session(b: Backing) {
    check_contract(StrategyKind::SESSION, b).await;
}
async fn contract_jwt(b: Backing) {
    check_contract(StrategyKind::JWT, b).await;
}
async fn contract_jwt_denylist(b: Backing) {
    check_contract(StrategyKind::JWT_DENYLIST, b).await;
}
async fn contract_jwt_refresh(b: Backing) {
    check_contract(StrategyKind::JWT_REFRESH, b).await;
}
both_stores!(contract_none, contract_jwt);
all_stores!(contract_session, contract_jwt_denylist, contract_jwt_refresh);

// ---------------------------------------------------------------------------------------------
// /metrics counts exactly what was served, and the store work per request
// ---------------------------------------------------------------------------------------------

async fn check_metrics(kind: StrategyKind, backing: Backing) {
    let env = start(kind, backing, |_| {}).await;
    let cred = env.login("alice").await;
    let before = env.metrics().await;
    for _ in 0..3 {
        assert_eq!(env.access(&cred, "alice").await, StatusCode::OK);
    }
    for _ in 0..2 {
        let _ = body(env.resource(&Cred::Bearer { access: "garbage".into(), refresh: None }).await).await;
    }
    let text = env.metrics().await;
    let name = kind.name();
    let line = |status: &str| {
        format!(r#"authbench_requests_total{{strategy="{name}",route="/api/resource",status="{status}"}}"#)
    };
    let login = format!(r#"authbench_requests_total{{strategy="{name}",route="/login",status="200"}}"#);
    assert_eq!(metric(&text, &login), 1, "{text}");
    let denied = if matches!(kind, StrategyKind::NONE | StrategyKind::SESSION) { 0 } else { 2 };
    let ok = if kind == StrategyKind::NONE { 5 } else { 3 };
    assert_eq!(metric(&text, &line("200")), ok, "{text}");
    assert_eq!(metric(&text, &line("401")), if kind == StrategyKind::SESSION { 2 } else { denied }, "{text}");
    let store = match backing {
        Backing::Memory => "memory",
        Backing::Redis | Backing::Cluster => "redis",
        Backing::Postgres => "postgres",
    };
    let ops = |t: &str, cmd: &str| {
        metric(t, &format!(r#"authbench_store_operations_total{{store="{store}",command="{cmd}"}}"#))
    };
    let delta = |cmd: &str| ops(&text, cmd) - ops(&before, cmd);
    // The per-request store work each strategy is measured for: 3 good requests, 2 garbage ones
    // that must be refused before any store round trip.
    let (get, mget) = match kind {
        StrategyKind::SESSION => (3, 0),
        StrategyKind::JWT_DENYLIST => (0, 3),
        _ => (0, 0),
    };
    assert_eq!((delta("get"), delta("mget")), (get, mget), "{kind}: store ops per request");
    for cmd in ["set", "del", "sadd", "pexpire", "smembers"] {
        assert_eq!(delta(cmd), 0, "{kind}: {cmd} on the request path");
    }
}

async fn metrics_session(b: Backing) {
    check_metrics(StrategyKind::SESSION, b).await;
}
async fn metrics_jwt(b: Backing) {
    check_metrics(StrategyKind::JWT, b).await;
}
async fn metrics_jwt_denylist(b: Backing) {
    check_metrics(StrategyKind::JWT_DENYLIST, b).await;
}
async fn metrics_jwt_refresh(b: Backing) {
    check_metrics(StrategyKind::JWT_REFRESH, b).await;
}
async fn metrics_none(b: Backing) {
    check_metrics(StrategyKind::NONE, b).await;
}
both_stores!(metrics_none, metrics_session, metrics_jwt, metrics_jwt_denylist, metrics_jwt_refresh);

// ---------------------------------------------------------------------------------------------
// Bad input: always a 4xx JSON error, never a 5xx, a panic or a hang
// ---------------------------------------------------------------------------------------------

async fn check_bad_input(kind: StrategyKind, backing: Backing) {
    let env = start(kind, backing, |_| {}).await;
    let c = &env.c;
    let login = env.url("/login");
    let post_raw =
        |url: &str, body: &'static str| c.post(url).header(CONTENT_TYPE, "application/json").body(body).send();

    for bad in
        [r#"{"user":"#, "{", "[]", r#""alice""#, "null", "1", r#"{"user":"a"}x"#, "\u{0}", r#"{"user":"a","user":"b"}"#]
    {
        expect_error(post_raw(&login, bad).await.unwrap(), StatusCode::BAD_REQUEST, &format!("login body {bad}")).await;
    }
    let unknown = c.post(&login).json(&json!({"user": "alice", "admin": true})).send().await.unwrap();
    expect_error(unknown, StatusCode::BAD_REQUEST, "unknown field").await;
    let long = "a".repeat(65);
    for user in [
        json!(""),
        json!(long),
        json!("a b"),
        json!("a{b}"),
        json!("ä"),
        json!("a/b"),
        json!("a\nb"),
        json!("../x"),
        json!("a:b"),
        json!(123),
        json!(null),
        json!(["a"]),
        json!({"a": 1}),
    ] {
        let r = c.post(&login).json(&json!({ "user": user })).send().await.unwrap();
        expect_error(r, StatusCode::BAD_REQUEST, &format!("user {user}")).await;
    }
    let r = c.post(&login).send().await.unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "login without body").await;
    let r = c.post(&login).header(CONTENT_TYPE, "text/plain").body(r#"{"user":"alice"}"#).send().await.unwrap();
    assert!(r.status().is_client_error(), "wrong content type: {}", r.status());
    expect_error(r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "wrong content type").await;
    // The longest valid name works (the boundary is 64, inclusive).
    let r = c.post(&login).json(&json!({ "user": "a".repeat(64) })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Oversized body, declared and chunked.
    let big = format!(r#"{{"user":"{}"}}"#, "a".repeat(20_000));
    let r = c.post(&login).header(CONTENT_TYPE, "application/json").body(big.clone()).send().await.unwrap();
    expect_error(r, StatusCode::PAYLOAD_TOO_LARGE, "oversized body").await;
    let chunked = format!(
        "POST /login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let resp = util::raw(env.t.addr, chunked.as_bytes()).await;
    assert!(resp.starts_with("HTTP/1.1 413"), "chunked oversized body: {resp}");

    // Oversized request head: 431 from the HTTP layer.
    let head = format!("GET /health HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "a".repeat(20_000));
    let resp = util::raw(env.t.addr, head.as_bytes()).await;
    assert!(resp.starts_with("HTTP/1.1 431"), "oversized headers: {resp:.200}");
    let many: String = (0..2000).map(|i| format!("X-H{i}: v\r\n")).collect();
    let resp = util::raw(env.t.addr, format!("GET /health HTTP/1.1\r\nHost: t\r\n{many}\r\n").as_bytes()).await;
    assert!(resp.starts_with("HTTP/1.1 431"), "too many headers: {resp:.200}");
    // Garbage on the wire: a 400, or a closed connection, never a 5xx.
    for junk in [&b"\x00\x01\x02\r\n\r\n"[..], b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n"] {
        let resp = util::raw(env.t.addr, junk).await;
        assert!(resp.is_empty() || resp.starts_with("HTTP/1.1 4") || resp.starts_with("HTTP/1.0 4"), "{resp:.200}");
    }

    // A huge credential is refused, not a 5xx (fits the head limit, over the token limit).
    let huge = Cred::Bearer { access: "a".repeat(12_000), refresh: None };
    let s = body(huge.apply(c.get(env.url("/api/resource"))).send().await.unwrap()).await.0;
    let cookie =
        body(Cred::Cookie("a".repeat(12_000)).apply(c.get(env.url("/api/resource"))).send().await.unwrap()).await.0;
    if kind == StrategyKind::NONE {
        assert_eq!((s, cookie), (StatusCode::OK, StatusCode::OK));
    } else {
        assert_eq!((s, cookie), (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED));
    }

    // Logout and refresh bodies.
    let cred = env.login("alice").await;
    let r = cred.apply(c.post(env.url("/logout"))).header(CONTENT_TYPE, "application/json").body("{").send();
    expect_error(r.await.unwrap(), StatusCode::BAD_REQUEST, "logout malformed body").await;
    let r = cred.apply(c.post(env.url("/logout"))).json(&json!({"refresh_token": "x", "all": true})).send();
    expect_error(r.await.unwrap(), StatusCode::BAD_REQUEST, "logout unknown field").await;
    if kind == StrategyKind::JWT_REFRESH {
        for bad in [r#"{"refresh_token":1}"#, r#"{"x":1}"#, "{}", "[", r#"{"refresh_token":null}"#] {
            let r = post_raw(&env.url("/refresh"), bad).await.unwrap();
            expect_error(r, StatusCode::BAD_REQUEST, &format!("refresh body {bad}")).await;
        }
        let r = c.post(env.url("/refresh")).send().await.unwrap();
        expect_error(r, StatusCode::BAD_REQUEST, "refresh without body").await;
    }

    // Wrong method, unknown route.
    for (method, path) in [
        (reqwest::Method::GET, "/login"),
        (reqwest::Method::POST, "/health"),
        (reqwest::Method::PUT, "/api/resource"),
        (reqwest::Method::DELETE, "/logout"),
        (reqwest::Method::GET, "/refresh"),
        (reqwest::Method::POST, "/metrics"),
        (reqwest::Method::POST, "/.well-known/jwks.json"),
    ] {
        let r = c.request(method.clone(), env.url(path)).send().await.unwrap();
        expect_error(r, StatusCode::METHOD_NOT_ALLOWED, &format!("{method} {path}")).await;
    }
    for path in
        ["/", "/nope", "/api/resource/", "/api", "/admin/revoke-user", "/LOGIN", "/%2e%2e/etc/passwd", "/health/x"]
    {
        let r = c.get(env.url(path)).send().await.unwrap();
        expect_error(r, StatusCode::NOT_FOUND, &format!("GET {path}")).await;
    }
}

async fn bad_input_none(b: Backing) {
    check_bad_input(StrategyKind::NONE, b).await;
}
async fn bad_input_session(b: Backing) {
    check_bad_input(StrategyKind::SESSION, b).await;
}
async fn bad_input_jwt(b: Backing) {
    check_bad_input(StrategyKind::JWT, b).await;
}
async fn bad_input_jwt_denylist(b: Backing) {
    check_bad_input(StrategyKind::JWT_DENYLIST, b).await;
}
async fn bad_input_jwt_refresh(b: Backing) {
    check_bad_input(StrategyKind::JWT_REFRESH, b).await;
}
both_stores!(bad_input_none, bad_input_session, bad_input_jwt, bad_input_jwt_denylist, bad_input_jwt_refresh);

// ---------------------------------------------------------------------------------------------
// Every algorithm: issue, verify, JWKS with the token's kid for asymmetric ones
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_algorithm_and_jwks() {
    for (alg, kind) in Alg::ALL
        .into_iter()
        .flat_map(|a| [StrategyKind::JWT, StrategyKind::JWT_DENYLIST, StrategyKind::JWT_REFRESH].map(move |k| (a, k)))
    {
        let env = start(kind, Backing::Memory, |a| a.alg = alg).await;
        let cred = env.login("alice").await;
        assert_eq!(env.access(&cred, "alice").await, StatusCode::OK, "{alg} {kind}");
        let (h, _) = jwt_parts(cred.access());
        assert_eq!(h["alg"], alg.name());
        let r = env.c.get(env.url("/.well-known/jwks.json")).send().await.unwrap();
        if alg.is_symmetric() {
            expect_error(r, StatusCode::NOT_FOUND, "HS JWKS").await;
            continue;
        }
        let (s, jwks) = body(r).await;
        assert_eq!(s, StatusCode::OK);
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1, "{jwks}");
        assert_eq!(keys[0]["kid"], h["kid"], "{alg}: token kid is the JWKS kid");
        assert_eq!(keys[0]["alg"], alg.name());
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(keys[0].get(private).is_none(), "{alg}: JWKS leaks private member {private}");
        }
    }
}
