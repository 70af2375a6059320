//! Scenario files: what a run compares and how it drives traffic, as TOML (see `docs/scenarios.md`).
//!
//! Parsing is strict: unknown keys are errors, and every error names the file, the line and column,
//! and what was expected. The parsed [`Scenario`] is still raw (durations parsed, nothing combined);
//! [`crate::plan`] turns it and the command-line overrides into a validated `RunPlan`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::engine::transport::{HpackPolicy, Transport};
use crate::targets::config::{Alg, AuthzSource, StrategyKind, TokenTransport, parse_duration};

/// The scenario used when `authbench run` gets no file: `scenarios/quickstart.toml`, built in.
pub const QUICKSTART_TOML: &str = include_str!("../../scenarios/quickstart.toml");

/// A duration written as `500ms`, `10s`, `5m` (or a bare number of seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Secs(f64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(s) => parse_duration(&s).map(Dur).map_err(serde::de::Error::custom),
            Raw::Secs(n) if n.is_finite() && n >= 0.0 => Ok(Dur(Duration::from_secs_f64(n))),
            Raw::Secs(n) => Err(serde::de::Error::custom(format!("`{n}` is not a duration (try 500ms, 30s, 5m)"))),
        }
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

/// `requests_per_connection`: requests one connection carries before the driver closes it; 0
/// keeps connections alive. Checked as the file is read, so a bad value is reported with its file,
/// line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct RequestsPerConnection(pub u32);

impl RequestsPerConnection {
    /// The largest value accepted: beyond it a run would not recycle its connections anyway.
    pub const MAX: u32 = 1_000_000;
}

impl<'de> Deserialize<'de> for RequestsPerConnection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        match u32::try_from(n) {
            Ok(n) if n <= Self::MAX => Ok(RequestsPerConnection(n)),
            _ => Err(serde::de::Error::custom(format!(
                "requests_per_connection must be 0 (keep connections alive) or 1 to {} requests, got {n}",
                Self::MAX
            ))),
        }
    }
}

/// `1.5s`, `250ms`, `10s`: the shortest exact way `parse_duration` reads back.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if d.subsec_millis() == 0 && d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if Duration::from_millis(ms as u64) == d {
        format!("{ms}ms")
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

/// Which store the targets use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum StoreChoice {
    /// A private `redis-server` when the binary is installed, else the in-process memory store.
    #[default]
    Auto,
    /// The target's in-process store.
    Memory,
    /// A private `redis-server` started for the run (error when it is not installed).
    Redis,
    /// A private Redis Cluster (`cluster_nodes` cluster-mode redis-servers) started for the run.
    Cluster,
    /// PostgreSQL (`url`, default the local server `scripts/setup` provides), in a schema of the
    /// run's own, created for the run and dropped after it.
    Postgres,
    /// A private primary with two replicas and three Sentinels; targets connect through the
    /// Sentinels (`[store.failover]` kills the primary mid-run).
    Sentinel,
}

impl StoreChoice {
    pub fn name(self) -> &'static str {
        match self {
            StoreChoice::Auto => "auto",
            StoreChoice::Memory => "memory",
            StoreChoice::Redis => "redis",
            StoreChoice::Cluster => "cluster",
            StoreChoice::Postgres => "postgres",
            StoreChoice::Sentinel => "sentinel",
        }
    }
}

/// The `store` option: `store = "redis"` (just the kind), or a `[store]` table with the store's
/// distance from the targets and an outage to inject.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StoreOptions {
    /// `auto` (default), `memory`, `redis`, `cluster` or `postgres`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<StoreChoice>,
    /// `kind = "postgres"`: the server (`postgres://user[:password]@host:port/db`); default the
    /// local one (`AUTHBENCH_POSTGRES_URL`, else `scripts/setup`'s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Nodes of the Redis Cluster (`kind = "cluster"`): its masters. Default 3 (the fewest Redis
    /// Cluster takes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_nodes: Option<usize>,
    /// Replicas of each cluster master (`kind = "cluster"`, `--cluster-replicas`). Default 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_replicas: Option<usize>,
    /// Added latency per store round trip (through a TCP delay proxy between targets and store).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<Dur>,
    /// Spread of the added latency per round trip (uniform, ± half of it each way).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Dur>,
    /// Stop the store for a while during each strategy's measured window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outage: Option<Outage>,
    /// `kind = "sentinel"` or `"cluster"`: kill the primary (a cluster's first master) during each
    /// strategy's measured window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failover: Option<Failover>,
}

/// The `[store]` table as written (strict: unknown keys are errors).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreTable {
    kind: Option<StoreChoice>,
    url: Option<String>,
    cluster_nodes: Option<usize>,
    cluster_replicas: Option<usize>,
    delay: Option<Dur>,
    jitter: Option<Dur>,
    outage: Option<Outage>,
    failover: Option<Failover>,
}

impl<'de> Deserialize<'de> for StoreOptions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StoreOptions;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a store kind (`auto`, `memory`, `redis`, `cluster`, `postgres`, `sentinel`) or a [store] table",
                )
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<StoreOptions, E> {
                let kind = StoreChoice::deserialize(s.into_deserializer())?;
                Ok(StoreOptions { kind: Some(kind), ..StoreOptions::default() })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StoreOptions, A::Error> {
                let t = StoreTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(StoreOptions {
                    kind: t.kind,
                    url: t.url,
                    cluster_nodes: t.cluster_nodes,
                    cluster_replicas: t.cluster_replicas,
                    delay: t.delay,
                    jitter: t.jitter,
                    outage: t.outage,
                    failover: t.failover,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// `[store.outage]`: the store stops at `at` (from the start of the measured window) for `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    pub at: Dur,
    pub duration: Dur,
    #[serde(default)]
    pub mode: OutageMode,
}

/// How the store is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutageMode {
    /// SIGSTOP, then SIGCONT: the server hangs with its connections open and its data kept.
    #[default]
    Pause,
    /// SIGKILL, then a fresh (empty) server on the same port: connections reset, data lost.
    Kill,
}

impl OutageMode {
    pub fn name(self) -> &'static str {
        match self {
            OutageMode::Pause => "pause",
            OutageMode::Kill => "kill",
        }
    }
}

/// `[store.failover]` (`kind = "sentinel"` or `"cluster"`): the primary (of a cluster, the master
/// serving slot 0) is killed at `at` (from the start of the measured window) and a replica is
/// promoted (by the Sentinels, or the cluster itself; a cluster master without replicas stays down:
/// a partial outage); probes count what the failover forgot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Failover {
    pub at: Dur,
    #[serde(default)]
    pub mode: FailoverMode,
    /// `cut-replication`: how long before the kill replication is cut (the writes acknowledged in
    /// it are the ones a failover can lose). Also how long before the kill the forget probes
    /// revoke credentials and create sessions, in either mode. Default 300ms.
    pub lead: Option<Dur>,
    /// Credentials revoked and sessions created in the lead (each). Default 40.
    pub probes: Option<u32>,
    /// `min-replicas-to-write` on every data node. Default 0 (off).
    pub min_replicas_to_write: Option<u32>,
    /// `min-replicas-max-lag`, seconds. Default 1.
    pub min_replicas_max_lag: Option<u32>,
}

/// How the primary fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailoverMode {
    /// SIGKILL the primary; its replicas are as up to date as loopback replication keeps them.
    #[default]
    Kill,
    /// Cut the replicas off the primary `lead` before the kill while clients keep writing to it
    /// (how writes are lost in production: a partitioned or lagging primary that dies).
    CutReplication,
}

impl FailoverMode {
    pub fn name(self) -> &'static str {
        match self {
            FailoverMode::Kill => "kill",
            FailoverMode::CutReplication => "cut-replication",
        }
    }
}

/// `[rotation]`: rotate the JWT signing key (`POST /admin/rotate-key`) during the measured window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// When, from the start of the measured window.
    pub at: Dur,
    /// How long tokens signed with the old key stay valid after it (`--rotation-overlap`). Default 0s.
    pub overlap: Option<Dur>,
}

/// Open loop (constant rate, latency from the intended send time) or closed loop (back to back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Open,
    Closed,
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, used in the results directory name. Default: the file stem.
    pub name: Option<String>,
    /// The question this scenario answers. Default: the file's leading comment.
    pub description: Option<String>,
    /// Strategies to compare, in order. Default: all five.
    pub strategies: Option<Vec<StrategyKind>>,
    /// `store = "auto"` (default), `"memory"`, `"redis"`, `"cluster"`, or a `[store]` table.
    pub store: Option<StoreOptions>,
    /// Target processes per strategy, sharing one store (and one signing key), as a deployment runs
    /// them behind a load balancer: the driver spreads its connections over them round-robin.
    /// Default 1.
    pub instances: Option<usize>,
    /// `[target]`, with `[target.<strategy>]` overrides.
    #[serde(default)]
    pub target: TargetSection,
    #[serde(default)]
    pub traffic: Traffic,
    #[serde(default)]
    pub mix: Mix,
    #[serde(default)]
    pub matrix: Matrix,
    #[serde(default)]
    pub probe: Probe,
    /// Rotate the signing key during the run (JWT strategies).
    pub rotation: Option<Rotation>,
    /// `[capacity]`: the latency objective a rate ladder's breaking point is found against.
    pub capacity: Option<CapacitySection>,
    /// `"strategy.operation.figure" = "< 2000"`; evaluated by [`crate::thresholds`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub thresholds: BTreeMap<String, toml::Spanned<String>>,
}

/// Options passed to a target (`authbench target --…`): the keys of `[target]` and `[target.<strategy>]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetOptions {
    pub alg: Option<Alg>,
    pub access_ttl: Option<Dur>,
    pub leeway: Option<Dur>,
    pub roles: Option<usize>,
    pub scopes: Option<usize>,
    pub pad_bytes: Option<usize>,
    pub authz: Option<AuthzSource>,
    /// jwt-denylist only: allow requests whose denylist check failed because the store is down.
    pub fail_open: Option<bool>,
    /// session and session-cached: answer the session lookup from answers at most this old while
    /// the store is down (graceful degradation). Default 0: fail closed.
    pub stale_grace: Option<Dur>,
    /// Bearer-token strategies: the access token in the `Authorization` header (`bearer`) or in an
    /// HttpOnly cookie with a CSRF token on logout (`cookie`); other strategies ignore it.
    pub token_transport: Option<TokenTransport>,
    /// Redis stores: every write waits for this many replicas (`--store-wait-replicas`). Default 0.
    pub store_wait_replicas: Option<u32>,
}

impl TargetOptions {
    /// These options with every key `over` sets replaced by its value.
    pub fn overridden_by(&self, over: &TargetOptions) -> TargetOptions {
        TargetOptions {
            alg: over.alg.or(self.alg),
            access_ttl: over.access_ttl.or(self.access_ttl),
            leeway: over.leeway.or(self.leeway),
            roles: over.roles.or(self.roles),
            scopes: over.scopes.or(self.scopes),
            pad_bytes: over.pad_bytes.or(self.pad_bytes),
            authz: over.authz.or(self.authz),
            fail_open: over.fail_open.or(self.fail_open),
            stale_grace: over.stale_grace.or(self.stale_grace),
            token_transport: over.token_transport.or(self.token_transport),
            store_wait_replicas: over.store_wait_replicas.or(self.store_wait_replicas),
        }
    }
}

/// The `[target]` table: options for every strategy, and `[target.<strategy>]` tables (the same keys)
/// overriding them for one strategy. Strategy names come from the registry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetSection {
    /// The keys of `[target]` itself.
    pub all: TargetOptions,
    /// `[target.<strategy>]` tables, in the order written, with where each was written.
    pub overrides: Vec<(StrategyKind, toml::Spanned<TargetOptions>)>,
    /// Keys of `[target]` that are neither an option nor a registered strategy, with where they
    /// were written: [`load`] refuses them with their line.
    unknown: Vec<toml::Spanned<String>>,
}

impl TargetSection {
    /// The options one strategy's targets get: `[target]` with its `[target.<strategy>]` on top.
    pub fn for_strategy(&self, strategy: StrategyKind) -> TargetOptions {
        match self.overrides.iter().find(|(k, _)| *k == strategy) {
            Some((_, over)) => self.all.overridden_by(over.get_ref()),
            None => self.all.clone(),
        }
    }
}

/// The keys of [`TargetOptions`], as `[target]` accepts them.
const TARGET_OPTION_KEYS: [&str; 11] = [
    "alg",
    "access_ttl",
    "leeway",
    "roles",
    "scopes",
    "pad_bytes",
    "authz",
    "fail_open",
    "stale_grace",
    "store_wait_replicas",
    "token_transport",
];

impl<'de> Deserialize<'de> for TargetSection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TargetVisitor)
    }
}

/// Reads `[target]`: option keys into one table, strategy names as override tables.
struct TargetVisitor;

impl<'de> Visitor<'de> for TargetVisitor {
    type Value = TargetSection;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a [target] table of options and [target.<strategy>] tables")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TargetSection, A::Error> {
        let mut options = toml::Table::new();
        let mut section = TargetSection::default();
        while let Some(key) = map.next_key::<toml::Spanned<String>>()? {
            if TARGET_OPTION_KEYS.contains(&key.get_ref().as_str()) {
                options.insert(key.into_inner(), map.next_value()?);
            } else if let Some(kind) = StrategyKind::from_name(key.get_ref()) {
                section.overrides.push((kind, map.next_value()?));
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
                section.unknown.push(key);
            }
        }
        section.all = TargetOptions::deserialize(toml::Value::Table(options)).map_err(serde::de::Error::custom)?;
        Ok(section)
    }
}

impl Serialize for TargetSection {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let all = toml::Table::try_from(&self.all).map_err(serde::ser::Error::custom)?;
        let mut map = s.serialize_map(Some(all.len() + self.overrides.len()))?;
        for (k, v) in &all {
            map.serialize_entry(k, v)?;
        }
        for (kind, over) in &self.overrides {
            map.serialize_entry(kind.name(), over.get_ref())?;
        }
        map.end()
    }
}

/// One rate stage of an open-loop run.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Requests per second at the end of the stage (all connections together).
    pub rate: f64,
    pub duration: Dur,
    /// Rise linearly from the previous stage's rate (0 for the first) instead of stepping.
    #[serde(default)]
    pub ramp: bool,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    /// `open` or `closed`. Default: open when `rate` or `stages` is given, else closed.
    pub mode: Option<Mode>,
    /// Keep-alive connections (closed loop: requests in flight). Default 16.
    pub connections: Option<usize>,
    /// Open loop: requests per second, all connections together.
    pub rate: Option<f64>,
    /// Open loop: rate stages (steps, or ramps with `ramp = true`), run one after the other.
    pub stages: Option<Vec<Stage>>,
    /// Distinct virtual users. Default 1000.
    pub users: Option<usize>,
    /// Traffic before measuring starts. Default 1s.
    pub warmup: Option<Dur>,
    /// Measured traffic per strategy. Default 5s.
    pub duration: Option<Dur>,
    /// Per-request timeout. Default 2s.
    pub timeout: Option<Dur>,
    /// Fraction of api requests sent with a credential the driver knows is revoked (logged out).
    pub revoked_fraction: Option<f64>,
    /// Fraction of api requests sent with a tampered credential.
    pub tampered_fraction: Option<f64>,
    /// Fraction of users that log in as older clients (`"legacy": true`: a strategy migrating
    /// between credentials hands them the old kind, to be upgraded). Default 0.
    pub legacy_fraction: Option<f64>,
    /// Fraction of users that log in as API clients (`"client": "api"`: a strategy serving browsers
    /// and API clients hands them a bearer token, the rest a session cookie). Default 0.
    pub api_client_fraction: Option<f64>,
    /// `http1` (default), `h2c`, `h2-tls` or `http1-tls`: how requests travel (docs/scenarios.md).
    pub transport: Option<Transport>,
    /// HTTP/2: `indexed` (default) or `never-indexed`, how the credential header is compressed.
    pub hpack: Option<HpackPolicy>,
    /// HTTP/2: request slots (`connections`) sharing one TCP connection as streams. Default 1.
    pub streams_per_connection: Option<usize>,
    /// Requests a connection carries before the driver closes it and opens a new one (short-lived
    /// connections: a new TCP connect and TLS handshake each time). Default 0: kept alive.
    pub requests_per_connection: Option<RequestsPerConnection>,
    /// TLS transports: a new connection resumes the previous session (as browsers do) rather than
    /// making a full handshake. Default true.
    pub tls_resumption: Option<bool>,
}

/// Operation mix: relative weights.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    pub login: Option<f64>,
    pub api: Option<f64>,
    pub logout: Option<f64>,
    pub refresh: Option<f64>,
    #[serde(rename = "revoke-user", alias = "revoke_user")]
    pub revoke_user: Option<f64>,
}

/// Options swept into one comparison: every combination of the listed values, per strategy (a key
/// only multiplies the strategies it applies to: `alg` and `pad_bytes` leave `none` and `session` alone).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    pub alg: Option<Vec<Alg>>,
    pub pad_bytes: Option<Vec<usize>>,
    pub roles: Option<Vec<usize>>,
    pub scopes: Option<Vec<usize>>,
    pub authz: Option<Vec<AuthzSource>>,
    pub rate: Option<Vec<f64>>,
    pub connections: Option<Vec<usize>>,
    /// jwt-denylist only: fail closed and fail open side by side.
    pub fail_open: Option<Vec<bool>>,
    /// session and session-cached: stale graces side by side (`["0s", "2s"]`).
    pub stale_grace: Option<Vec<Dur>>,
    /// Redis stores: writes without and with `WAIT` for replicas, side by side (`[0, 1]`).
    pub store_wait_replicas: Option<Vec<u32>>,
    /// `store.delay = ["0ms", "1ms", "5ms"]`: the store at several network distances.
    pub store: Option<MatrixStore>,
    /// JWT strategies: access-token lifetimes (the revocation window of a pure JWT).
    pub access_ttl: Option<Vec<Dur>>,
    /// JWT strategies: clock-skew leeways (they add to the revocation window).
    pub leeway: Option<Vec<Dur>>,
    /// Bearer-token strategies: `["bearer", "cookie"]` side by side.
    pub token_transport: Option<Vec<TokenTransport>>,
    /// Migrating strategies (`hybrid`): shares of older clients side by side (`[0.9, 0.5, 0.1, 0.0]`).
    pub legacy_fraction: Option<Vec<f64>>,
    /// Strategies serving browsers and API clients (`web+api`): shares of API clients side by
    /// side (`[0, 0.5, 1]`).
    pub api_client_fraction: Option<Vec<f64>>,
    /// Transports side by side (`["http1", "h2c", "h2-tls"]`).
    pub transport: Option<Vec<Transport>>,
    /// HTTP/2 HPACK policies for the credential header, side by side.
    pub hpack: Option<Vec<HpackPolicy>>,
    /// Requests per connection side by side (`[1, 10, 0]`; 0 keeps connections alive).
    pub requests_per_connection: Option<Vec<RequestsPerConnection>>,
    /// TLS transports: full handshakes and resumed ones side by side (`[false, true]`).
    pub tls_resumption: Option<Vec<bool>>,
}

/// Store options swept in `[matrix]` (`store.delay = [...]`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MatrixStore {
    pub delay: Option<Vec<Dur>>,
    /// `store.outage_mode = ["pause", "kill"]`: the `[store.outage]` in each mode, side by side.
    pub outage_mode: Option<Vec<OutageMode>>,
    /// `store.failover_mode = ["kill", "cut-replication"]`: the `[store.failover]` in each mode.
    pub failover_mode: Option<Vec<FailoverMode>>,
    /// `store.min_replicas_to_write = [0, 1]`: the Sentinel group's data nodes with each setting.
    pub min_replicas_to_write: Option<Vec<u32>>,
}

/// The revocation-window probe run against each target after its traffic.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// Logouts probed per strategy. Default 5; 0 skips the probe.
    pub revocation_probes: Option<u32>,
    /// How long to keep probing one revoked credential. Default 2s.
    pub revocation_max_wait: Option<Dur>,
    /// Run the availability prober through the measured window even without an outage or a key
    /// rotation (its requests are counted, and divide the per-request figures like any other).
    pub availability: Option<bool>,
    /// After each strategy's measured window, pause the store this long and record what the target
    /// does (the store-down column, measured). Default 800ms; "0s" skips it. Private Redis only.
    pub store_down_pause: Option<Dur>,
}

/// `[capacity]`: the objective each rate stage is judged against (docs/scenarios.md, "Capacity").
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CapacitySection {
    /// p99 latency of all of a stage's requests must stay at or below this, milliseconds.
    pub p99_ms: f64,
    /// Largest share (0..1) of a stage's requests that may end in an error. Default 0.001.
    pub max_error_rate: Option<f64>,
    /// The report also projects this many requests per second (`authbench project --rps`).
    pub project_rps: Option<f64>,
    /// ... and this many live users (`--users`).
    pub project_users: Option<u64>,
    /// ... with this CPU headroom, percent (`--headroom`; default 30).
    pub project_headroom_pct: Option<f64>,
}

/// One `[thresholds]` entry as written, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThresholdEntry {
    pub metric: String,
    pub condition: String,
    /// 1-based line of the condition in the scenario file.
    pub line: usize,
}

/// A scenario file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse { path: String, line: usize, column: usize, message: String },
}

impl ScenarioError {
    /// Line and column (1-based) for parse errors.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            ScenarioError::Parse { line, column, .. } => Some((*line, *column)),
            ScenarioError::Read { .. } => None,
        }
    }
}

/// A parsed file with what was learnt about it.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    pub scenario: Scenario,
    /// Name for the results directory: `name`, else the file stem, else `quickstart`.
    pub name: String,
    /// `description`, else the leading comment.
    pub description: String,
    /// `None` for the built-in default.
    pub file: Option<PathBuf>,
    pub thresholds: Vec<ThresholdEntry>,
}

/// Read and parse a scenario file.
pub fn load(path: &Path) -> Result<LoadedScenario, ScenarioError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ScenarioError::Read { path: path.to_path_buf(), source })?;
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "scenario".into());
    parse(&text, &path.display().to_string(), &stem).map(|mut l| {
        l.file = Some(path.to_path_buf());
        l
    })
}

/// The built-in default (`scenarios/quickstart.toml`).
pub fn quickstart() -> Result<LoadedScenario, ScenarioError> {
    parse(QUICKSTART_TOML, "scenarios/quickstart.toml", "quickstart")
}

/// Parse scenario text; `origin` names it in errors, `stem` is the fallback name.
pub fn parse(text: &str, origin: &str, stem: &str) -> Result<LoadedScenario, ScenarioError> {
    let scenario: Scenario = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
        ScenarioError::Parse { path: origin.to_owned(), line, column, message: e.message().trim().to_owned() }
    })?;
    let mut thresholds: Vec<(usize, ThresholdEntry)> = scenario
        .thresholds
        .iter()
        .map(|(metric, cond)| {
            let start = cond.span().start;
            let (line, _) = line_col(text, start);
            (start, ThresholdEntry { metric: metric.clone(), condition: cond.get_ref().clone(), line })
        })
        .collect();
    thresholds.sort_by_key(|(start, _)| *start);
    let name = scenario.name.clone().unwrap_or_else(|| stem.to_owned());
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(ScenarioError::Parse {
            path: origin.to_owned(),
            line: 1,
            column: 1,
            message: format!("name `{name}` must be non-empty [A-Za-z0-9_.-] (it names the results directory)"),
        });
    }
    if let Some(key) = scenario.target.unknown.first() {
        let (line, column) = line_col(text, key.span().start);
        let message = format!(
            "unknown key `{}` in [target]: expected an option ({}) or a strategy name ({})",
            key.get_ref(),
            TARGET_OPTION_KEYS.join(", "),
            StrategyKind::names()
        );
        return Err(ScenarioError::Parse { path: origin.to_owned(), line, column, message });
    }
    let listed = scenario.strategies.as_deref().unwrap_or(StrategyKind::ALL);
    for (strategy, over) in &scenario.target.overrides {
        let (line, column) = line_col(text, over.span().start);
        let err = |message: String| ScenarioError::Parse { path: origin.to_owned(), line, column, message };
        if !listed.contains(strategy) {
            let names: Vec<&str> = listed.iter().map(|s| s.name()).collect();
            return Err(err(format!(
                "[target.{strategy}] overrides a strategy this scenario does not run (strategies: {})",
                names.join(", ")
            )));
        }
        if over.get_ref().fail_open.is_some() && !strategy.profile().fail_open {
            let which = crate::plan::fail_open_names();
            return Err(err(format!("target.{strategy}.fail_open: fail_open applies to {which} only")));
        }
        if over.get_ref().stale_grace.is_some() && !strategy.profile().stale_reads {
            let which = crate::plan::stale_grace_names();
            return Err(err(format!("target.{strategy}.stale_grace: stale_grace applies to {which} only")));
        }
    }
    let description = scenario.description.clone().unwrap_or_else(|| leading_comment(text));
    Ok(LoadedScenario {
        scenario,
        name,
        description,
        file: None,
        thresholds: thresholds.into_iter().map(|(_, t)| t).collect(),
    })
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The comment block at the top of the file, `#` stripped, joined into one paragraph.
pub fn leading_comment(text: &str) -> String {
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(c) = t.strip_prefix('#') {
            let c = c.trim();
            if !c.is_empty() {
                out.push(c.to_owned());
            }
        } else if t.is_empty() && out.is_empty() {
            continue;
        } else {
            break;
        }
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("a\nbc\n", 3), (2, 2));
        assert_eq!(line_col("abc", 0), (1, 1));
    }

    #[test]
    fn leading_comment_joined() {
        assert_eq!(leading_comment("# One\n# two\n\nname = 'x'\n# not this"), "One two");
    }

    #[test]
    fn builtin_quickstart_parses() {
        let q = quickstart().expect("quickstart parses");
        assert_eq!(q.name, "quickstart");
        assert!(!q.description.is_empty());
    }

    #[test]
    fn format_duration_round_trips() {
        for s in ["10s", "250ms", "1500ms"] {
            let d = parse_duration(s).expect("parse");
            assert_eq!(parse_duration(&format_duration(d)).expect("reparse"), d);
        }
    }
}
