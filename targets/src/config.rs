//! `authbench target` options, and their validation into a [`TargetConfig`] before anything starts.
//!
//! The flag names are part of the target contract in docs/design.md: tools outside this repo start
//! targets with them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::strategy::profile::Transport;
use clap::{Args, ValueEnum};

use crate::tls::CertSource;

/// The strategy handle lives with the registry; it is re-exported here, where the flags are.
pub use crate::strategy::registry::StrategyKind;

/// JWT signing algorithms. Exactly one is accepted by a running target (alg pinning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum, serde::Serialize, serde::Deserialize)]
#[value(rename_all = "UPPER")]
pub enum Alg {
    #[value(name = "HS256")]
    #[serde(rename = "HS256")]
    Hs256,
    #[value(name = "HS384")]
    #[serde(rename = "HS384")]
    Hs384,
    #[value(name = "HS512")]
    #[serde(rename = "HS512")]
    Hs512,
    #[value(name = "RS256")]
    #[serde(rename = "RS256")]
    Rs256,
    #[value(name = "PS256")]
    #[serde(rename = "PS256")]
    Ps256,
    #[value(name = "ES256")]
    #[serde(rename = "ES256")]
    Es256,
    #[value(name = "ES384")]
    #[serde(rename = "ES384")]
    Es384,
    #[value(name = "EdDSA")]
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl Alg {
    pub const ALL: [Alg; 8] =
        [Alg::Hs256, Alg::Hs384, Alg::Hs512, Alg::Rs256, Alg::Ps256, Alg::Es256, Alg::Es384, Alg::EdDsa];

    pub const fn name(self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::Hs384 => "HS384",
            Alg::Hs512 => "HS512",
            Alg::Rs256 => "RS256",
            Alg::Ps256 => "PS256",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::EdDsa => "EdDSA",
        }
    }

    pub const fn jwt(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as A;
        match self {
            Alg::Hs256 => A::HS256,
            Alg::Hs384 => A::HS384,
            Alg::Hs512 => A::HS512,
            Alg::Rs256 => A::RS256,
            Alg::Ps256 => A::PS256,
            Alg::Es256 => A::ES256,
            Alg::Es384 => A::ES384,
            Alg::EdDsa => A::EdDSA,
        }
    }

    pub const fn is_symmetric(self) -> bool {
        matches!(self, Alg::Hs256 | Alg::Hs384 | Alg::Hs512)
    }
}

impl std::fmt::Display for Alg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a bearer strategy's access token travels (`--token-transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenTransport {
    /// `Authorization: Bearer <jwt>`, the token handed out in the login answer's JSON body.
    #[default]
    Bearer,
    /// An `HttpOnly; Secure; SameSite=Strict` cookie, with a CSRF token required on state-changing
    /// routes (see `token_cookie`).
    Cookie,
}

/// Where roles come from on each request (`--authz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthzSource {
    /// Roles travel in the token (or the session record): no extra lookup.
    Claims,
    /// Roles are fetched from the store on every request, as a permission service would.
    Store,
}

/// Parse `500ms`, `30s`, `5m`, `2h`, `1d`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("`{s}` is not a duration (try 500ms, 30s, 5m, 2h)"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        other => return Err(format!("unknown unit `{other}` in `{s}` (use ms, s, m, h or d)")),
    };
    if !secs.is_finite() || !(0.0..=10.0 * 365.0 * 86_400.0).contains(&secs) {
        return Err(format!("duration `{s}` is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Command-line options of `authbench target`.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Authentication strategy to serve.
    #[arg(long, value_enum)]
    pub strategy: StrategyKind,
    /// Address to listen on. Port 0 picks a free port; the first stdout line says which.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// JWT signing algorithm (the only one the target accepts).
    #[arg(long, value_enum, default_value = "HS256", ignore_case = true)]
    pub alg: Alg,
    /// Store: `memory` (in-process) or a `redis://host:port[/db]` URL. Several comma-separated
    /// `redis://` URLs (or one `redis-cluster://host:port` URL) form a Redis Cluster. A
    /// `redis-sentinel://host:port/0?sentinelServiceName=NAME&node=host:port` URL names Sentinels:
    /// the target uses the primary they name, and finds the new one by itself after a failover. A
    /// `postgres://user@host:port/db[?schema=NAME]` URL stores in PostgreSQL (table `NAME.kv`,
    /// created if missing; default schema `authbench`).
    #[arg(long, default_value = "memory")]
    pub store: String,
    /// Lifetime of an access JWT. Default: the strategy's (15m; 5m for jwt-refresh).
    #[arg(long, value_parser = parse_duration)]
    pub access_ttl: Option<Duration>,
    /// Lifetime of a refresh-token family (jwt-refresh) from its login.
    #[arg(long, value_parser = parse_duration, default_value = "24h")]
    pub refresh_ttl: Duration,
    /// Lifetime of a session (absolute, from login).
    #[arg(long, value_parser = parse_duration, default_value = "8h")]
    pub session_ttl: Duration,
    /// Clock-skew leeway for exp/nbf/iat.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub leeway: Duration,
    /// `iss` claim issued and required.
    #[arg(long, default_value = "authbench")]
    pub issuer: String,
    /// `aud` claim issued and required.
    #[arg(long, default_value = "authbench-api")]
    pub audience: String,
    /// HS* signing key (at least 32 bytes). Without it: a fresh random key per start.
    #[arg(long, env = "AUTHBENCH_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// PEM private key for asymmetric algorithms (PKCS#8). Without it: a fresh key pair per start.
    #[arg(long)]
    pub key_file: Option<std::path::PathBuf>,
    /// Key required in `x-admin-key` for /admin routes. Without it the admin routes always answer 401.
    #[arg(long, env = "AUTHBENCH_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// Claim bloat: number of roles put in each token (or session record).
    #[arg(long, default_value_t = 2)]
    pub roles: usize,
    /// Claim bloat: number of OAuth-style scopes put in each token.
    #[arg(long, default_value_t = 2)]
    pub scopes: usize,
    /// Claim bloat: extra opaque bytes put in each token (a `pad` claim), to reach a given size.
    #[arg(long, default_value_t = 0)]
    pub pad_bytes: usize,
    /// Where roles come from per request: the token/session (`claims`) or a store lookup (`store`).
    #[arg(long, value_enum, default_value = "claims")]
    pub authz: AuthzSource,
    /// How the access token travels, for strategies that hand out a bearer token: `bearer`
    /// (`Authorization` header) or `cookie` (an HttpOnly cookie, plus an `x-csrf-token` header
    /// required on logout, as a browser app keeping its JWT out of script reach would).
    #[arg(long, value_enum, default_value = "bearer")]
    pub token_transport: TokenTransport,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = 16 * 1024)]
    pub max_body_bytes: usize,
    /// Largest request head (request line + headers) accepted, in bytes (min 8192).
    #[arg(long, default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,
    /// Per-command store timeout in milliseconds; past it the request gets 503.
    #[arg(long, default_value_t = 250)]
    pub store_timeout_ms: u64,
    /// Store connections in the pool. Default: one Redis connection per worker thread (commands
    /// from concurrent requests are pipelined on it; more connections only spread the same commands
    /// over more, smaller socket writes, measured in docs/design.md), four PostgreSQL connections
    /// (a PostgreSQL connection runs one statement at a time).
    #[arg(long)]
    pub store_pool_size: Option<usize>,
    /// Redis only: follow every store write with `WAIT N` on the same connection (one round trip)
    /// and answer 503 unless N replicas acknowledged it, so an answered logout or revocation
    /// survives a failover to one of them. 0 (the default): no `WAIT`.
    #[arg(long, default_value_t = 0)]
    pub store_wait_replicas: u32,
    /// Worker threads serving requests (default: one per CPU). With 1 (how the harness runs a
    /// target pinned to one core) the target runs on tokio's current-thread runtime: no work
    /// stealing to pay for, and a store command queued by one request is written together with
    /// those of the requests served after it (measured in docs/design.md, "What a store
    /// operation costs the target").
    #[arg(long)]
    pub worker_threads: Option<usize>,
    /// jwt-denylist only: when the store fails on the per-request denylist check, allow the
    /// request (200) instead of refusing it (503). Shows what availability costs in security:
    /// every such request is counted in `authbench_fail_open_allows_total`. Default: fail closed.
    #[arg(long)]
    pub fail_open: bool,
    /// session and session-cached only: graceful degradation. When the store cannot answer the
    /// per-request session lookup, answer from the last answer the store gave for that session
    /// (session-cached: what its cache held when it stopped being trusted) if it is at most this
    /// old, instead of refusing with 503. Buys availability through short outages; costs
    /// revocations this instance has not heard of, accepted for up to this long. Counted in
    /// `authbench_stale_reads_total`. 0 (the default): fail closed at once.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub stale_grace: Duration,
    /// How long tokens signed by the previous key stay valid after `POST /admin/rotate-key`.
    /// 0 (the default): every older token is rejected at once (mass logout).
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub rotation_overlap: Duration,
    /// Cached strategies only: most entries (present or known-absent keys) the in-process read
    /// cache holds; past it the oldest insertion is evicted.
    #[arg(long, env = "AUTHBENCH_CACHE_MAX_ENTRIES", default_value_t = 100_000)]
    pub cache_max_entries: usize,
    /// Cached strategies only: the `CLIENT TRACKING` mode of the invalidation link (`default`:
    /// Redis invalidates the keys this instance read; `bcast`: every key under the strategy's prefixes).
    #[arg(long, env = "AUTHBENCH_CACHE_TRACKING", value_enum, default_value = "default")]
    pub cache_tracking: crate::cache::link::TrackingMode,
    /// Serve TLS (ALPN `h2` and `http/1.1`) instead of clear text, with a self-signed certificate
    /// made at start-up unless `--tls-cert` and `--tls-key` give one. The announcement then reads
    /// `listening on https://IP:PORT`. Without it: clear text, HTTP/1.1 and HTTP/2 with prior
    /// knowledge (h2c) on the same port.
    #[arg(long)]
    pub tls: bool,
    /// PEM certificate chain for `--tls` (with `--tls-key`; implies `--tls`).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of `--tls-cert` (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
}

/// Validated target configuration. Built once; everything per-request reads from it.
#[derive(Debug, Clone)]
pub struct TargetConfig {
    pub strategy: StrategyKind,
    pub alg: Alg,
    pub store: StoreSpec,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub session_ttl: Duration,
    pub leeway: Duration,
    pub issuer: String,
    pub audience: String,
    pub secret: Option<Vec<u8>>,
    pub key_pem: Option<Vec<u8>>,
    pub admin_key: Option<String>,
    pub bloat: ClaimBloat,
    pub authz: AuthzSource,
    /// How the access token travels (bearer strategies only; validated).
    pub token_transport: TokenTransport,
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub store_timeout: Duration,
    pub store_pool_size: usize,
    /// Replicas that must acknowledge every store write (`WAIT`); 0: none. Redis only.
    pub store_wait_replicas: u32,
    /// Allow requests whose denylist check failed on a store error (jwt-denylist only).
    pub fail_open: bool,
    /// Answer store errors on the session lookup from answers at most this old (0: never).
    pub stale_grace: Duration,
    /// How long the previous signing key stays accepted after a key rotation.
    pub rotation_overlap: Duration,
    /// Bound of a cached strategy's read cache, in entries.
    pub cache_max_entries: usize,
    /// Invalidation mode of a cached strategy's link.
    pub cache_tracking: crate::cache::link::TrackingMode,
    /// The TLS server configuration (`--tls`); `None`: clear text (HTTP/1.1 and h2c).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// How much extra material each token carries, so token size can be varied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClaimBloat {
    pub roles: usize,
    pub scopes: usize,
    pub pad_bytes: usize,
}

impl Default for ClaimBloat {
    fn default() -> Self {
        ClaimBloat { roles: 2, scopes: 2, pad_bytes: 0 }
    }
}

/// Which store to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    Memory,
    /// One URL: a single node; several: the seed nodes of a cluster.
    Redis(Vec<String>),
    /// One `postgres://` URL (with an optional `schema=` parameter).
    Postgres(String),
}

impl StoreSpec {
    /// The pool size when `--store-pool-size` is not given. Redis: one connection per worker
    /// thread, because a Redis connection pipelines the commands of concurrent requests and a
    /// larger pool only spreads them over more, smaller socket writes (each a loopback send the
    /// target pays for). PostgreSQL: four, because a connection runs one statement at a time.
    pub fn default_pool_size(&self, worker_threads: Option<usize>) -> usize {
        match self {
            StoreSpec::Memory => 1,
            StoreSpec::Redis(_) => {
                worker_threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            }
            StoreSpec::Postgres(_) => 4,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "--store must be `memory`, redis:// (redis-cluster://) URLs, one redis-sentinel:// URL or one postgres:// URL, got `{0}`"
    )]
    Store(String),
    #[error("--secret must be at least 32 bytes for {0} (a shorter HMAC key is brute-forceable)")]
    ShortSecret(Alg),
    #[error("--access-ttl must be longer than zero")]
    ZeroTtl,
    #[error("--max-header-bytes must be at least 8192 (hyper's minimum buffer)")]
    HeaderLimit,
    #[error("--admin-key must be at least 16 characters")]
    ShortAdminKey,
    #[error("cannot read --key-file {path}: {source}")]
    KeyFile { path: String, source: std::io::Error },
    #[error("--worker-threads must be at least 1")]
    WorkerThreads,
    #[error("--store-wait-replicas needs a Redis store (redis:// or redis-sentinel://)")]
    WaitReplicas,
    #[error("--fail-open applies only to strategies with a per-request store check that supports it, not {0}")]
    FailOpen(StrategyKind),
    #[error("--stale-grace applies only to strategies whose per-request lookup can be answered stale, not {0}")]
    StaleGrace(StrategyKind),
    #[error("--stale-grace and --fail-open are two answers to the same outage: choose one")]
    StaleAndFailOpen,
    #[error("--token-transport cookie applies only to strategies that hand out a bearer token, not {0}")]
    TokenTransport(StrategyKind),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

impl TargetArgs {
    /// Defaults for `strategy`, as if given with no other flags (used by tests and the harness).
    pub fn new(strategy: StrategyKind) -> Self {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            args: TargetArgs,
        }
        // The flags below are always valid, so this cannot fail.
        match Wrap::try_parse_from(["target", "--strategy", strategy.name()]) {
            Ok(w) => w.args,
            Err(e) => unreachable!("default target args do not parse: {e}"),
        }
    }

    pub fn validate(&self) -> Result<TargetConfig, ConfigError> {
        let store = if self.store == "memory" {
            StoreSpec::Memory
        } else if self.store.starts_with("postgres://") || self.store.starts_with("postgresql://") {
            StoreSpec::Postgres(self.store.clone())
        } else {
            let urls: Vec<String> = self.store.split(',').map(|s| s.trim().to_owned()).collect();
            let redis_scheme =
                |u: &String| ["redis://", "redis-cluster://", "redis-sentinel://"].iter().any(|p| u.starts_with(p));
            if !urls.iter().all(redis_scheme)
                || (urls.len() > 1 && urls.iter().any(|u| u.starts_with("redis-sentinel://")))
            {
                return Err(ConfigError::Store(self.store.clone()));
            }
            StoreSpec::Redis(urls)
        };
        let secret = self.secret.as_ref().map(|s| s.as_bytes().to_vec());
        if self.alg.is_symmetric() && secret.as_ref().is_some_and(|s| s.len() < 32) {
            return Err(ConfigError::ShortSecret(self.alg));
        }
        let profile = self.strategy.profile();
        let access_ttl = self.access_ttl.unwrap_or(profile.ttls.access);
        if access_ttl.is_zero() {
            return Err(ConfigError::ZeroTtl);
        }
        if self.max_header_bytes < 8192 {
            return Err(ConfigError::HeaderLimit);
        }
        if self.admin_key.as_ref().is_some_and(|k| k.len() < 16) {
            return Err(ConfigError::ShortAdminKey);
        }
        if self.worker_threads == Some(0) {
            return Err(ConfigError::WorkerThreads);
        }
        if self.store_wait_replicas > 0 && !matches!(store, StoreSpec::Redis(_)) {
            return Err(ConfigError::WaitReplicas);
        }
        if self.fail_open && !profile.fail_open {
            return Err(ConfigError::FailOpen(self.strategy));
        }
        if !self.stale_grace.is_zero() && !profile.stale_reads {
            return Err(ConfigError::StaleGrace(self.strategy));
        }
        if !self.stale_grace.is_zero() && self.fail_open {
            return Err(ConfigError::StaleAndFailOpen);
        }
        if self.token_transport == TokenTransport::Cookie && profile.transport != Transport::Bearer {
            return Err(ConfigError::TokenTransport(self.strategy));
        }
        let store_pool_size =
            self.store_pool_size.unwrap_or_else(|| store.default_pool_size(self.worker_threads)).max(1);
        let key_pem = match &self.key_file {
            Some(p) => Some(
                std::fs::read(p).map_err(|source| ConfigError::KeyFile { path: p.display().to_string(), source })?,
            ),
            None => None,
        };
        let tls = self.tls_config()?;
        Ok(TargetConfig {
            strategy: self.strategy,
            alg: self.alg,
            store,
            access_ttl,
            refresh_ttl: self.refresh_ttl,
            session_ttl: self.session_ttl,
            leeway: self.leeway,
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            secret,
            key_pem,
            admin_key: self.admin_key.clone(),
            bloat: ClaimBloat { roles: self.roles, scopes: self.scopes, pad_bytes: self.pad_bytes },
            authz: self.authz,
            token_transport: self.token_transport,
            max_body_bytes: self.max_body_bytes,
            max_header_bytes: self.max_header_bytes,
            store_timeout: Duration::from_millis(self.store_timeout_ms),
            store_pool_size,
            store_wait_replicas: self.store_wait_replicas,
            fail_open: self.fail_open,
            stale_grace: self.stale_grace,
            rotation_overlap: self.rotation_overlap,
            cache_max_entries: self.cache_max_entries.max(1),
            cache_tracking: self.cache_tracking,
            tls,
        })
    }

    /// `--tls` / `--tls-cert` / `--tls-key` as a server configuration (the certificate is made or
    /// read here, so a bad file is refused before anything starts).
    fn tls_config(&self) -> Result<Option<Arc<rustls::ServerConfig>>, ConfigError> {
        let source = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => CertSource::Files { cert: cert.clone(), key: key.clone() },
            _ if self.tls => CertSource::SelfSigned,
            _ => return Ok(None),
        };
        Ok(Some(crate::tls::server_config(&source)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn validation_rejects_weak_settings() {
        let mut a = TargetArgs::new(StrategyKind::JWT);
        a.secret = Some("short".into());
        assert!(matches!(a.validate(), Err(ConfigError::ShortSecret(_))));
        let mut a = TargetArgs::new(StrategyKind::SESSION);
        a.store = "mysql://x".into();
        assert!(matches!(a.validate(), Err(ConfigError::Store(_))));
        a.store = "redis-sentinel://127.0.0.1:1/0?sentinelServiceName=m".into();
        assert!(matches!(a.validate().unwrap().store, StoreSpec::Redis(_)));
        a.store = "redis-sentinel://127.0.0.1:1,redis://127.0.0.1:2".into();
        assert!(matches!(a.validate(), Err(ConfigError::Store(_))), "a sentinel URL stands alone");
        a.store = "memory".into();
        a.store_wait_replicas = 1;
        assert!(matches!(a.validate(), Err(ConfigError::WaitReplicas)));
        a.store_wait_replicas = 0;
        a.store = "postgresql://u@h/db?schema=s".into();
        assert_eq!(a.validate().unwrap().store, StoreSpec::Postgres("postgresql://u@h/db?schema=s".into()));
        let a = TargetArgs::new(StrategyKind::JWT_REFRESH).validate().unwrap();
        assert_eq!(a.access_ttl, Duration::from_secs(300));
        assert!(!a.fail_open, "fail closed by default");
        assert_eq!(a.rotation_overlap, Duration::ZERO);
        let fail_open_kinds = [Some(StrategyKind::JWT_DENYLIST), StrategyKind::from_name("jwt-denylist-cached")];
        for &kind in StrategyKind::ALL {
            let mut a = TargetArgs::new(kind);
            a.fail_open = true;
            assert_eq!(a.validate().is_ok(), fail_open_kinds.contains(&Some(kind)), "--fail-open with {kind}");
            let mut a = TargetArgs::new(kind);
            a.token_transport = TokenTransport::Cookie;
            let bearer = kind.profile().transport == Transport::Bearer;
            assert_eq!(a.validate().is_ok(), bearer, "--token-transport cookie with {kind}");
        }
    }

    #[test]
    fn pool_default_is_one_redis_connection_per_worker_and_four_postgres_connections() {
        let mut a = TargetArgs::new(StrategyKind::SESSION);
        a.store = "redis://127.0.0.1:1".into();
        a.worker_threads = Some(1);
        assert_eq!(a.validate().unwrap().store_pool_size, 1);
        a.worker_threads = Some(3);
        assert_eq!(a.validate().unwrap().store_pool_size, 3);
        a.store_pool_size = Some(8);
        assert_eq!(a.validate().unwrap().store_pool_size, 8, "an explicit size wins");
        a.store_pool_size = None;
        a.store = "postgres://u@h/db".into();
        assert_eq!(a.validate().unwrap().store_pool_size, 4);
    }
}
