//! The HTTP side of a target: routing, size limits, credential extraction, JSON bodies, responses,
//! metrics and graceful shutdown, over HTTP/1.1 and HTTP/2 (h2c by prior knowledge, or TLS with ALPN). Generic over [`Strategy`]; [`serve`] picks the strategy once, from
//! the registry. Which credential is read, whether logout clears the cookie and whether `/refresh`
//! exists come from the strategy's profile.
//!
//! Tests bind port 0 themselves and call [`run`] (or [`serve`]) with a shutdown future, as the binary
//! does with Ctrl-C.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use serde::Deserialize;
use tokio::net::TcpListener;

use crate::config::{StoreSpec, TargetConfig, TokenTransport};
use crate::error::ApiError;
use crate::ids;
use crate::metrics::{Metrics, Route};
use crate::store::{
    Backend, MemoryStore, PostgresStore, PostgresStoreOptions, RedisClusterStore, RedisStore, RedisStoreOptions, Store,
};
use crate::strategy::profile::{Refresh, Transport};
use crate::strategy::{Credential, Grant, Strategy};
use crate::token_cookie;

/// A client that sends no complete request head within this long is disconnected (slowloris).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections get this long to finish in-flight requests after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything a request handler needs, shared by all connections.
pub struct App<S> {
    pub strategy: S,
    pub metrics: Arc<Metrics>,
    /// The store, for `/metrics` (memory store key counts). Strategies hold their own handle.
    pub store: Store,
    /// `x-admin-key` required by admin routes; `None` refuses them all.
    admin_key: Option<String>,
    max_body_bytes: usize,
    max_header_bytes: usize,
    /// The access token travels in the `at` cookie and logout requires its CSRF token
    /// (`--token-transport cookie`).
    token_cookie: bool,
    /// `--tls`: every connection starts with this handshake; `None`: clear text.
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// TLS handshakes by kind, for `/metrics` (TLS cost per new connection).
    handshakes: crate::tls::HandshakeCounters,
}

impl<S: Strategy> App<S> {
    pub fn new(strategy: S, store: Store, metrics: Arc<Metrics>, config: &TargetConfig) -> Self {
        App {
            strategy,
            metrics,
            store,
            admin_key: config.admin_key.clone(),
            max_body_bytes: config.max_body_bytes,
            max_header_bytes: config.max_header_bytes,
            token_cookie: config.token_transport == TokenTransport::Cookie,
            tls: config.tls.clone().map(tokio_rustls::TlsAcceptor::from),
            handshakes: crate::tls::HandshakeCounters::default(),
        }
    }

    /// The request's credential as this target reads it: the strategy's transport, or the `at`
    /// cookie when the access token travels in a cookie.
    fn credential<'r, B>(&self, req: &'r Request<B>) -> Credential<'r> {
        if self.token_cookie {
            return token_cookie::token(req).map_or(Credential::Missing, Credential::Bearer);
        }
        credential(req, S::PROFILE.transport)
    }

    /// The answer that hands out `grant`.
    fn grant_response(&self, grant: Grant) -> Response<Body> {
        match grant {
            Grant::Tokens { access_token, expires_in_secs, refresh_token } if self.token_cookie => {
                token_cookie_response(&access_token, expires_in_secs, refresh_token)
            }
            grant => grant_response(grant),
        }
    }
}

/// Open the configured store. A Redis that is down at start-up is not fatal: the target starts,
/// answers 503 where it needs the store, and recovers when the store comes back.
pub async fn open_store(config: &TargetConfig, metrics: Arc<Metrics>) -> anyhow::Result<Store> {
    let backend = match &config.store {
        StoreSpec::Memory => {
            let store = Arc::new(MemoryStore::new());
            store.spawn_sweeper(Duration::from_secs(1));
            Backend::Memory(store)
        }
        StoreSpec::Redis(urls) => {
            let opts = RedisStoreOptions {
                urls: urls.clone(),
                pool_size: config.store_pool_size,
                command_timeout: config.store_timeout,
            };
            let wait = config.store_wait_replicas;
            if urls.len() > 1 || urls.iter().any(|u| u.starts_with("redis-cluster://")) {
                Backend::RedisCluster(RedisClusterStore::connect(opts, wait).await?)
            } else {
                Backend::Redis(RedisStore::connect(opts).await?.with_wait_replicas(wait))
            }
        }
        StoreSpec::Postgres(url) => Backend::Postgres(
            PostgresStore::connect(PostgresStoreOptions {
                url: url.clone(),
                pool_size: config.store_pool_size,
                command_timeout: config.store_timeout,
            })
            .await?,
        ),
    };
    Ok(Store::new(backend, metrics))
}

/// Build the configured strategy and serve it on `listener` until `shutdown` completes.
pub async fn serve(
    config: TargetConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let store = open_store(&config, metrics.clone()).await?;
    let serve = config.strategy.serve_fn();
    serve(&config, listener, store, metrics, Box::pin(shutdown)).await
}

/// Accept connections on `listener` and serve `app` until `shutdown` completes; then stop accepting,
/// let in-flight requests finish (up to a bound) and return.
///
/// Clear text: a connection that opens with the HTTP/2 preface is served as HTTP/2 (h2c, prior
/// knowledge), any other as HTTP/1.1 by the same HTTP/1.1 server as before HTTP/2 existed. With
/// TLS (`--tls`): the handshake, then the protocol ALPN chose.
pub async fn run<S: Strategy>(
    listener: TcpListener,
    app: Arc<App<S>>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let protocols = Arc::new(Protocols::new(app.max_header_bytes));
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer): (_, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        app.metrics.connection_accepted();
        tokio::spawn(serve_connection(stream, app.clone(), protocols.clone(), graceful.watcher()));
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("connections still open after drain timeout"),
    }
    Ok(())
}

/// The HTTP/1.1 and HTTP/2 servers, configured once.
struct Protocols {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
}

impl Protocols {
    fn new(max_header_bytes: usize) -> Self {
        let mut h1 = http1::Builder::new();
        h1.max_buf_size(max_header_bytes)
            .keep_alive(true)
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new()).max_header_list_size(u32::try_from(max_header_bytes).unwrap_or(u32::MAX));
        Protocols { http1: h1, http2: h2 }
    }
}

/// The HTTP/2 client connection preface (RFC 9113, 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Serve one accepted connection: TLS first when configured, then HTTP/1.1 or HTTP/2.
async fn serve_connection<S: Strategy>(
    stream: tokio::net::TcpStream,
    app: Arc<App<S>>,
    protocols: Arc<Protocols>,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let Some(acceptor) = app.tls.clone() else {
        // A client that sends nothing is dropped after the same time as one with an unfinished head.
        let h2 = match tokio::time::timeout(HEADER_READ_TIMEOUT, starts_with_h2_preface(&stream)).await {
            Ok(Ok(h2)) => h2,
            _ => return,
        };
        return serve_http(TokioIo::new(stream), h2, app, &protocols, watcher).await;
    };
    // The handshake's own CPU: thread time inside the accept future's polls (docs/design.md, "The wire").
    let mut accept = crate::tls::CpuTimed::new(acceptor.accept(stream));
    let handshake = tokio::time::timeout(HEADER_READ_TIMEOUT, &mut accept).await;
    let Ok((Ok(tls), cpu_ns)) = handshake else {
        app.handshakes.failed(accept.spent_ns());
        return;
    };
    let conn = tls.get_ref().1;
    app.handshakes.completed(conn.handshake_kind(), cpu_ns);
    let h2 = conn.alpn_protocol() == Some(crate::tls::ALPN_H2);
    serve_http(TokioIo::new(tls), h2, app, &protocols, watcher).await;
}

/// Whether the client opened with the HTTP/2 preface (read without consuming: the HTTP/1.1 server
/// sees every byte). Stops at the first byte that differs, so an HTTP/1.1 request costs one peek.
async fn starts_with_h2_preface(stream: &tokio::net::TcpStream) -> std::io::Result<bool> {
    let mut buf = [0u8; H2_PREFACE.len()];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 || buf[..n] != H2_PREFACE[..n] {
            return Ok(false);
        }
        if n == H2_PREFACE.len() {
            return Ok(true);
        }
        // Part of the preface so far (rare: clients send it in one write): wait for the rest.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Serve requests on an established connection, HTTP/2 or HTTP/1.1, under graceful shutdown.
async fn serve_http<S, I>(
    io: TokioIo<I>,
    h2: bool,
    app: Arc<App<S>>,
    protocols: &Protocols,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: Strategy,
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(handle(&app, req).await) }
    });
    let result = if h2 {
        watcher.watch(protocols.http2.serve_connection(io, service)).await
    } else {
        watcher.watch(protocols.http1.serve_connection(io, service)).await
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

type Body = Full<Bytes>;

/// Route one request and count it.
pub async fn handle<S: Strategy>(app: &App<S>, req: Request<Incoming>) -> Response<Body> {
    let (route, result) = dispatch(app, req).await;
    let response = match result {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    app.metrics.request(route, response.status().as_u16());
    response
}

async fn dispatch<S: Strategy>(app: &App<S>, req: Request<Incoming>) -> (Route, Result<Response<Body>, ApiError>) {
    let path = req.uri().path();
    let route = match path {
        "/health" => Route::Health,
        "/login" => Route::Login,
        "/api/resource" => Route::Resource,
        "/logout" => Route::Logout,
        "/refresh" => Route::Refresh,
        "/.well-known/jwks.json" => Route::Jwks,
        "/metrics" => Route::Metrics,
        p if p.starts_with("/admin/revoke-user/") => Route::RevokeUser,
        "/admin/rotate-key" => Route::RotateKey,
        _ => Route::Other,
    };
    let want = match route {
        Route::Login | Route::Logout | Route::Refresh | Route::RevokeUser | Route::RotateKey => Method::POST,
        _ => Method::GET,
    };
    if route == Route::Other {
        return (route, Err(ApiError::NotFound));
    }
    if req.method() != want {
        return (route, Err(ApiError::MethodNotAllowed));
    }
    let result = match route {
        Route::Health => Ok(json(StatusCode::OK, r#"{"status":"ok"}"#.into())),
        Route::Login => login(app, req).await,
        Route::Resource => resource(app, &req).await,
        Route::Logout => logout(app, req).await,
        Route::Refresh => refresh(app, req).await,
        Route::RevokeUser => revoke_user(app, &req).await,
        Route::RotateKey => rotate_key(app, &req).await,
        Route::Jwks => match app.strategy.codec().and_then(|c| c.jwks_json()) {
            Some(jwks) => Ok(json(StatusCode::OK, jwks.to_string())),
            None => Err(ApiError::NotFound),
        },
        Route::Metrics => Ok(metrics(app)),
        Route::Other => Err(ApiError::NotFound),
    };
    (route, result)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    user: String,
    /// Ask for the credential an older client holds ([`Strategy::login_legacy`]).
    #[serde(default)]
    legacy: bool,
    /// Which kind of client logs in (`"browser"` by default, or `"api"`: [`Strategy::login_api`]).
    #[serde(default)]
    client: ClientKind,
}

/// The kind of client a login declares (`"client"` in the login body).
#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum ClientKind {
    /// A browser: the strategy's usual credential.
    #[default]
    Browser,
    /// An API client: a bearer token where the strategy serves API clients apart.
    Api,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: Option<String>,
}

async fn login<S: Strategy>(app: &App<S>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    // Only a cookie can be offered for adoption (session fixation); a bearer token never is.
    let offered = credential(&req, if S::PROFILE.transport.cookie() { Transport::Cookie } else { Transport::None });
    // The offered credential borrows the request head; copy it before the body consumes the request.
    let offered_owned = match offered {
        Credential::Cookie(c) => Some(c.to_owned()),
        _ => None,
    };
    let body: LoginBody = read_json(app, req).await?.ok_or(ApiError::BadRequest("missing JSON body"))?;
    if !ids::valid_user(&body.user) {
        return Err(ApiError::BadRequest("user must be 1-64 characters of [A-Za-z0-9_.-]"));
    }
    let offered = offered_owned.as_deref().map_or(Credential::Missing, Credential::Cookie);
    let grant = match (body.legacy, body.client) {
        (true, ClientKind::Api) => return Err(ApiError::BadRequest("legacy and client api cannot be combined")),
        (true, ClientKind::Browser) => app.strategy.login_legacy(&body.user, offered).await?,
        (false, ClientKind::Api) => app.strategy.login_api(&body.user, offered).await?,
        (false, ClientKind::Browser) => app.strategy.login(&body.user, offered).await?,
    };
    Ok(app.grant_response(grant))
}

async fn resource<S: Strategy>(app: &App<S>, req: &Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let principal = app.strategy.authenticate(app.credential(req)).await?;
    app.metrics.auth_path(principal.path);
    let body = serde_json::json!({ "sub": principal.sub, "roles": principal.roles }).to_string();
    let mut resp = json(StatusCode::OK, body);
    if let Some(Grant::Session { sid, max_age_secs }) = principal.renewed {
        set_session_cookie(&mut resp, &sid, max_age_secs);
    }
    Ok(resp)
}

async fn logout<S: Strategy>(app: &App<S>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let cred = owned_credential(app.credential(&req));
    // A cookie credential acts on a state-changing route only with its CSRF token.
    if app.token_cookie
        && let OwnedCredential::Bearer(token) = &cred
        && !token_cookie::csrf_ok(&req, token)
    {
        return Err(ApiError::Forbidden("missing or wrong x-csrf-token"));
    }
    let also_cookie = cookie_beside_bearer(app, &req, &cred);
    let body: RefreshBody = read_json(app, req).await?.unwrap_or_default();
    let mut revoked = app.strategy.logout(cred.as_credential(), body.refresh_token.as_deref()).await?;
    if let Some(sid) = also_cookie {
        // The answer clears the cookie: its session must not outlive it.
        match app.strategy.logout(Credential::Cookie(&sid), None).await {
            Ok(ended) => revoked |= ended,
            Err(ApiError::Unauthorized { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let mut resp = json(StatusCode::OK, format!(r#"{{"revoked":{revoked}}}"#));
    if app.token_cookie {
        resp.headers_mut().insert(header::SET_COOKIE, token_cookie::clear_cookie());
    } else if S::PROFILE.transport.cookie() {
        resp.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_static("sid=; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=0"),
        );
    }
    Ok(resp)
}

/// The `sid` cookie of a logout whose bearer token won (a strategy reading both): logout ends it
/// too, so a request carrying both credentials leaves neither alive.
fn cookie_beside_bearer<S: Strategy>(app: &App<S>, req: &Request<Incoming>, cred: &OwnedCredential) -> Option<String> {
    let both = S::PROFILE.transport == Transport::Both && !app.token_cookie;
    match cred {
        OwnedCredential::Bearer(_) if both => sid_cookie(req).map(str::to_owned),
        _ => None,
    }
}

async fn refresh<S: Strategy>(app: &App<S>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    if S::PROFILE.refresh == Refresh::None {
        return Err(ApiError::NotFound);
    }
    let body: RefreshBody = read_json(app, req).await?.ok_or(ApiError::BadRequest("missing JSON body"))?;
    let token = body.refresh_token.ok_or(ApiError::BadRequest("missing refresh_token"))?;
    Ok(app.grant_response(app.strategy.refresh(&token).await?))
}

/// Refuse an admin request without the configured `x-admin-key` (compared in constant time).
fn check_admin<S>(app: &App<S>, req: &Request<Incoming>) -> Result<(), ApiError> {
    let presented = req.headers().get("x-admin-key").map(HeaderValue::as_bytes);
    let authorized = match (&app.admin_key, presented) {
        (Some(want), Some(got)) => aws_lc_rs::constant_time::verify_slices_are_equal(want.as_bytes(), got).is_ok(),
        _ => false,
    };
    if authorized { Ok(()) } else { Err(ApiError::unauthorized("admin key required")) }
}

async fn revoke_user<S: Strategy>(app: &App<S>, req: &Request<Incoming>) -> Result<Response<Body>, ApiError> {
    check_admin(app, req)?;
    let user = req.uri().path().trim_start_matches("/admin/revoke-user/");
    if !ids::valid_user(user) {
        return Err(ApiError::BadRequest("user must be 1-64 characters of [A-Za-z0-9_.-]"));
    }
    let revoked = app.strategy.revoke_user(user).await?;
    Ok(json(StatusCode::OK, format!(r#"{{"revoked":{revoked}}}"#)))
}

/// `POST /admin/rotate-key`: sign with a fresh key from now on (JWT strategies; 404 otherwise).
/// Old tokens stay valid for `--rotation-overlap`, then are refused. Refresh tokens are opaque and
/// not signed, so they stay valid: a client refreshes to get an access token under the new key.
async fn rotate_key<S: Strategy>(app: &App<S>, req: &Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let codec = app.strategy.codec().ok_or(ApiError::NotFound)?.clone();
    check_admin(app, req)?;
    // Key generation (RSA especially) is CPU-heavy: keep it off the request-serving threads.
    let kid = tokio::task::spawn_blocking(move || codec.rotate())
        .await
        .map_err(|_| ApiError::Internal("key rotation task failed"))?
        .map_err(|e| {
            tracing::error!(error = %e, "key rotation failed");
            ApiError::Internal("key rotation failed")
        })?;
    Ok(json(StatusCode::OK, serde_json::json!({ "rotated": true, "kid": kid }).to_string()))
}

fn metrics<S: Strategy>(app: &App<S>) -> Response<Body> {
    let keys = match app.store.backend() {
        Backend::Memory(m) => Some(m.len()),
        Backend::Redis(_) | Backend::RedisCluster(_) | Backend::Postgres(_) => None,
    };
    let mut text = app.metrics.render(S::PROFILE.name, S::PROFILE.auth_paths, app.store.kind(), keys);
    if app.tls.is_some() {
        app.handshakes.render(&mut text);
    }
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    resp
}

/// The credential the strategy's transport reads: the bearer token and/or the `sid` cookie. With
/// both, a bearer header wins (an API client), else the cookie (a browser).
pub fn credential<B>(req: &Request<B>, transport: Transport) -> Credential<'_> {
    if transport.bearer()
        && let Some(token) = bearer(req)
    {
        return Credential::Bearer(token);
    }
    if transport.cookie()
        && let Some(sid) = sid_cookie(req)
    {
        return Credential::Cookie(sid);
    }
    Credential::Missing
}

fn sid_cookie<B>(req: &Request<B>) -> Option<&str> {
    request_cookie(req, "sid")
}

/// The value of the first cookie called `name` in the request's `Cookie` headers.
pub(crate) fn request_cookie<'r, B>(req: &'r Request<B>, name: &str) -> Option<&'r str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|text| text.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

fn bearer<B>(req: &Request<B>) -> Option<&str> {
    let text = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Some(token.trim()),
        _ => None,
    }
}

/// A credential copied out of the request head, for routes that also read the body.
enum OwnedCredential {
    Missing,
    Cookie(String),
    Bearer(String),
}

impl OwnedCredential {
    fn as_credential(&self) -> Credential<'_> {
        match self {
            OwnedCredential::Missing => Credential::Missing,
            OwnedCredential::Cookie(c) => Credential::Cookie(c),
            OwnedCredential::Bearer(b) => Credential::Bearer(b),
        }
    }
}

fn owned_credential(cred: Credential<'_>) -> OwnedCredential {
    match cred {
        Credential::Missing => OwnedCredential::Missing,
        Credential::Cookie(c) => OwnedCredential::Cookie(c.to_owned()),
        Credential::Bearer(b) => OwnedCredential::Bearer(b.to_owned()),
    }
}

/// Read a JSON body of at most `max_body_bytes`. `Ok(None)` for an empty body.
async fn read_json<S, T: serde::de::DeserializeOwned>(
    app: &App<S>,
    req: Request<Incoming>,
) -> Result<Option<T>, ApiError> {
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > app.max_body_bytes as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        if !ct.trim_start().to_ascii_lowercase().starts_with("application/json") {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    let bytes = match Limited::new(req.into_body(), app.max_body_bytes).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return Err(ApiError::PayloadTooLarge);
        }
        Err(_) => return Err(ApiError::BadRequest("could not read request body")),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&bytes).map(Some).map_err(|_| ApiError::BadRequest("malformed JSON body"))
}

fn grant_response(grant: Grant) -> Response<Body> {
    match grant {
        Grant::Anonymous { user } => json(StatusCode::OK, serde_json::json!({ "user": user }).to_string()),
        Grant::Session { sid, max_age_secs } => {
            let mut resp = json(StatusCode::OK, r#"{"session":true}"#.into());
            set_session_cookie(&mut resp, &sid, max_age_secs);
            resp
        }
        Grant::Tokens { access_token, expires_in_secs, refresh_token } => {
            let mut body = serde_json::json!({
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": expires_in_secs,
            });
            if let Some(rt) = refresh_token {
                body["refresh_token"] = serde_json::Value::String(rt);
            }
            let mut resp = json(StatusCode::OK, body.to_string());
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
    }
}

/// A token grant with the access token in the `at` cookie: the body holds its lifetime, the CSRF
/// token bound to it and the refresh token, never the access token itself.
fn token_cookie_response(access_token: &str, expires_in_secs: u64, refresh_token: Option<String>) -> Response<Body> {
    let mut body = serde_json::json!({
        "token_type": "cookie",
        "expires_in": expires_in_secs,
        "csrf_token": token_cookie::csrf_token(access_token),
    });
    if let Some(rt) = refresh_token {
        body["refresh_token"] = serde_json::Value::String(rt);
    }
    let mut resp = json(StatusCode::OK, body.to_string());
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(cookie) = token_cookie::set_cookie(access_token, expires_in_secs) {
        resp.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    resp
}

/// `Set-Cookie: sid=...` with the flags every session cookie carries.
fn set_session_cookie(resp: &mut Response<Body>, sid: &str, max_age_secs: u64) {
    let cookie = format!("sid={sid}; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age={max_age_secs}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
}

fn json(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn error_response(e: &ApiError) -> Response<Body> {
    let body = serde_json::json!({ "error": e.public_message() }).to_string();
    let mut resp = json(e.status(), body);
    match e {
        ApiError::Unauthorized { bearer: true, reason } => {
            let v = format!(r#"Bearer error="invalid_token", error_description="{reason}""#);
            if let Ok(v) = HeaderValue::from_str(&v) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        ApiError::MethodNotAllowed => {}
        ApiError::Store(_) => {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
    resp
}
