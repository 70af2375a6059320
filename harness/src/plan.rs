//! `authbench run` flags, and their validation (with the scenario file) into a [`RunPlan`] before
//! any work starts.
//!
//! The traffic shape is one [`Schedule`] (open loop at a rate or through stages, or closed loop over
//! N connections) combined with one [`Stop`] (after a duration, or when interrupted): one engine,
//! not one code path per combination.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::engine::transport::{HpackPolicy, Transport, WireSettings};
use crate::part::{PartSpec, TargetList};
use crate::scenario::{
    self, Failover, FailoverMode, LoadedScenario, Mode, Outage, OutageMode, Scenario, ScenarioError, StoreChoice,
    StoreOptions, ThresholdEntry,
};
use crate::targets::config::{Alg, AuthzSource, StrategyKind, TokenTransport, parse_duration};
use crate::targets::strategy::profile::{Clients, Degrade, Transport as CredentialTransport};

/// Command-line options of `authbench run`. Flags override the scenario file.
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// Scenario file (TOML, see docs/scenarios.md). Default: the built-in quickstart comparison.
    pub scenario: Option<PathBuf>,
    /// Keep-alive connections. Without -R: closed loop (back to back), as wrk and oha do.
    #[arg(short = 'c', long)]
    pub connections: Option<usize>,
    /// Measured duration per strategy (`10s`, `1m`).
    #[arg(short = 'z', long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Open loop at this many requests per second (latency from the intended send time).
    #[arg(short = 'R', long)]
    pub rate: Option<f64>,
    /// Strategy to run (repeatable). Default: the scenario's, else all five.
    #[arg(long = "strategy", value_enum)]
    pub strategies: Vec<StrategyKind>,
    /// Store for the targets: `auto` (private redis-server if installed, else memory), `memory`, `redis`,
    /// `cluster` (a private Redis Cluster), `postgres` (the local PostgreSQL), or a `postgres://` URL
    /// (PostgreSQL on that server). PostgreSQL runs use a schema of their own, dropped afterwards.
    #[arg(long, value_parser = parse_store_arg)]
    pub store: Option<StoreArg>,
    /// Traffic before measuring starts (`1s`).
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// Distinct virtual users.
    #[arg(long)]
    pub users: Option<usize>,
    /// Results directory. Default: results/<scenario>-<timestamp>.
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
    /// Drive already-running servers speaking the target contract instead of starting targets.
    /// Figures that need the target process or the store are then null. Several URLs
    /// (comma-separated or repeated) share the connections round-robin; `STRATEGY=URL` keys a URL
    /// to one strategy, so one run can drive a target per strategy.
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    pub target: Vec<String>,
    /// Target processes per strategy, sharing the store (overrides the scenario's `instances`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub instances: Option<u32>,
    /// With `--target`: the Redis the external targets use (`redis://HOST:PORT`; every node of a
    /// cluster, comma-separated), read over each measured window for the store figures (its own
    /// `INFO`: commands, CPU, network, memory), as for a store the run starts itself.
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    pub observe_store: Vec<String>,
    /// Drive part K of N of the scenario (`2/4`): its share of the rate, connections and users
    /// (named `p<K>-u<i>`), against shared `--target`s; `authbench merge` joins the parts.
    #[arg(long, value_name = "K/N", value_parser = crate::part::parse_part)]
    pub part: Option<crate::part::PartSpec>,
    /// Validate the scenario and flags into a plan, print it, and start nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Admin key of the `--target` server (for revoke-user); ignored when targets are started here.
    #[arg(long, env = "AUTHBENCH_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// Per-request timeout (`2s`).
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// No progress bar even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
    /// Run every variant this many times, interleaved (A B C A B C ...), keeping each repetition;
    /// the report gives each figure's median and 95 % confidence interval (docs/ci.md).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
}

/// How requests are started.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// Each request has an intended start time; latency counts from it.
    Open { stages: Vec<RateStage>, connections: usize },
    /// `connections` requests in flight, each sent as soon as the previous answer arrived.
    Closed { connections: usize },
}

impl Schedule {
    pub fn connections(&self) -> usize {
        match self {
            Schedule::Open { connections, .. } | Schedule::Closed { connections } => *connections,
        }
    }

    pub fn mode_name(&self) -> &'static str {
        match self {
            Schedule::Open { .. } => "open",
            Schedule::Closed { .. } => "closed",
        }
    }

    /// Rate of the first stage (open loop).
    pub fn first_rate(&self) -> Option<f64> {
        match self {
            Schedule::Open { stages, .. } => stages.first().map(|s| s.rate_per_sec),
            Schedule::Closed { .. } => None,
        }
    }
}

/// One open-loop stage: constant `rate_per_sec`, or a linear ramp from `from_rate_per_sec`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateStage {
    pub from_rate_per_sec: f64,
    pub rate_per_sec: f64,
    pub duration: Duration,
}

/// When the measured window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After this long (plus warm-up).
    Duration(Duration),
    /// Only on Ctrl-C (duration 0 with a single variant).
    Interrupted,
}

/// Operation weights, normalised to sum 1 when sampled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MixWeights {
    pub login: f64,
    pub api: f64,
    pub logout: f64,
    pub refresh: f64,
    pub revoke: f64,
}

impl MixWeights {
    pub fn as_map(&self) -> BTreeMap<String, f64> {
        [
            ("login", self.login),
            ("api", self.api),
            ("logout", self.logout),
            ("refresh", self.refresh),
            ("revoke", self.revoke),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// Options passed to one target process.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSettings {
    pub alg: Alg,
    pub access_ttl: Option<Duration>,
    pub leeway: Duration,
    pub roles: usize,
    pub scopes: usize,
    pub pad_bytes: usize,
    pub authz: AuthzSource,
    /// `--fail-open` (set only for jwt-denylist).
    pub fail_open: bool,
    /// `--stale-grace` (zero: not passed; set only where the profile supports stale reads).
    pub stale_grace: Duration,
    /// `--rotation-overlap` (set only for JWT strategies, when the scenario rotates the key).
    pub rotation_overlap: Option<Duration>,
    /// `--token-transport` (cookie only for bearer-token strategies).
    pub token_transport: TokenTransport,
    /// `--store-wait-replicas` (0: not passed).
    pub store_wait_replicas: u32,
    /// `--tls`: the variant's transport runs over TLS.
    pub tls: bool,
}

impl TargetSettings {
    /// What the target does when its store cannot answer the api check.
    pub fn degrade(&self) -> Degrade {
        Degrade::of(self.fail_open, self.stale_grace)
    }

    /// `authbench target` flags (without strategy, listen, store and admin key).
    pub fn to_args(&self) -> Vec<String> {
        let mut a = vec![
            "--alg".to_owned(),
            self.alg.name().to_owned(),
            "--leeway".to_owned(),
            scenario::format_duration(self.leeway),
            "--roles".to_owned(),
            self.roles.to_string(),
            "--scopes".to_owned(),
            self.scopes.to_string(),
            "--pad-bytes".to_owned(),
            self.pad_bytes.to_string(),
            "--authz".to_owned(),
            match self.authz {
                AuthzSource::Claims => "claims".to_owned(),
                AuthzSource::Store => "store".to_owned(),
            },
        ];
        if self.token_transport == TokenTransport::Cookie {
            a.push("--token-transport".to_owned());
            a.push("cookie".to_owned());
        }
        if let Some(ttl) = self.access_ttl {
            a.push("--access-ttl".to_owned());
            a.push(scenario::format_duration(ttl));
        }
        if self.fail_open {
            a.push("--fail-open".to_owned());
        }
        if !self.stale_grace.is_zero() {
            a.push("--stale-grace".to_owned());
            a.push(scenario::format_duration(self.stale_grace));
        }
        if let Some(o) = self.rotation_overlap {
            a.push("--rotation-overlap".to_owned());
            a.push(scenario::format_duration(o));
        }
        if self.store_wait_replicas > 0 {
            a.push("--store-wait-replicas".to_owned());
            a.push(self.store_wait_replicas.to_string());
        }
        if self.tls {
            a.push("--tls".to_owned());
        }
        a
    }
}

/// One thing measured: a strategy with its target options and schedule (one matrix point).
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Unique label: `jwt`, or `jwt alg=ES256 pad_bytes=1024` in a sweep.
    pub label: String,
    pub strategy: StrategyKind,
    /// The matrix point: one value per swept key that applies to the strategy.
    pub point: Vec<AxisValue>,
    pub target: TargetSettings,
    pub schedule: Schedule,
    /// Added latency per store round trip (through a delay proxy); `None`: targets talk to the store
    /// directly.
    pub store_delay: Option<Duration>,
    /// `matrix.store.outage_mode`: this variant's `[store.outage]` mode; `None`: the table's own.
    pub outage_mode: Option<OutageMode>,
    /// `matrix.store.failover_mode` and `matrix.store.min_replicas_to_write`: this variant's
    /// `[store.failover]` settings; `None`: the table's own.
    pub failover_mode: Option<FailoverMode>,
    pub min_replicas_to_write: Option<u32>,
    /// Transport, HPACK policy and streams per connection.
    pub wire: WireSettings,
    /// `matrix.legacy_fraction`: this variant's share of older clients; `None`: `[traffic]`'s.
    pub legacy_fraction: Option<f64>,
    /// `matrix.api_client_fraction`: this variant's share of API clients; `None`: `[traffic]`'s.
    pub api_client_fraction: Option<f64>,
}

impl Variant {
    /// The matrix point as report.json's `variant` writes it: key -> value text.
    pub fn coords(&self) -> BTreeMap<String, String> {
        self.point.iter().map(|v| (v.key().to_owned(), v.text())).collect()
    }
}

/// Everything a run needs, validated.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub name: String,
    pub description: String,
    pub file: Option<PathBuf>,
    pub variants: Vec<Variant>,
    pub stop: Stop,
    pub warmup: Duration,
    pub users: usize,
    pub timeout: Duration,
    pub mix: MixWeights,
    pub store: StoreChoice,
    /// `store = postgres`: the server the user named; `None`: the local default.
    pub postgres_url: Option<String>,
    /// Masters of the Redis Cluster (`store = cluster`).
    pub cluster_nodes: usize,
    /// Replicas of each cluster master (0: a killed master's slots stay down).
    pub cluster_replicas: usize,
    /// Spread of the store delay per round trip (with a delay proxy).
    pub store_jitter: Duration,
    /// Stop the store during each variant's measured window.
    pub outage: Option<Outage>,
    /// `kind = sentinel`: kill the primary during each variant's measured window.
    pub failover: Option<Failover>,
    /// Rotate the signing key during each JWT variant's measured window.
    pub rotation: Option<RotationPlan>,
    /// `--target`: the external targets (empty: the run starts its own).
    pub targets: TargetList,
    /// Target processes per strategy, sharing the store and one signing key; the driver's
    /// connections are spread over them round-robin, their CPU and counters are summed.
    pub instances: usize,
    /// `--observe-store`: the external targets' Redis, read for the store figures (empty: none).
    pub observe_store: Vec<String>,
    /// `--part K/N`: this run is one part of a split run; `None`: the whole run.
    pub part: Option<PartSpec>,
    /// Prefix of the virtual users' names (`p2-` for part 2, so parts never share a user).
    pub user_prefix: String,
    pub admin_key: Option<String>,
    pub out: Option<PathBuf>,
    pub thresholds: Vec<ThresholdEntry>,
    pub revoked_fraction: f64,
    pub tampered_fraction: f64,
    /// Share of users that log in as older clients (`[traffic] legacy_fraction`).
    pub legacy_fraction: f64,
    /// Share of users that log in as API clients (`[traffic] api_client_fraction`).
    pub api_client_fraction: f64,
    pub revocation_probes: u32,
    pub revocation_max_wait: Duration,
    pub progress: bool,
    /// Repetitions of every variant (`--repeat`), run interleaved; 1 = a single run.
    pub repeat: u32,
    /// The availability prober runs through every measured window (`[probe] availability`).
    pub availability_prober: bool,
    /// How long the store is paused after each measured window; None: no store-down check.
    pub store_down_pause: Option<Duration>,
    /// The scenario after overrides, as TOML (recorded in report.json).
    pub resolved_toml: String,
    /// `[capacity]`: the objective each rate stage is judged against (breaking points).
    pub capacity: Option<crate::capacity::Objective>,
}

/// `[rotation]`, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPlan {
    /// From the start of the measured window.
    pub at: Duration,
    pub overlap: Duration,
}

impl RunPlan {
    /// Measured duration of each variant; `None` when it runs until Ctrl-C.
    pub fn measured_duration(&self) -> Option<Duration> {
        match self.stop {
            Stop::Duration(d) => Some(d),
            Stop::Interrupted => None,
        }
    }
}

/// Flags or file that cannot make a run.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("{0}")]
    Invalid(String),
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, PlanError> {
    Err(PlanError::Invalid(msg.into()))
}

/// Load the scenario (or the built-in quickstart) and apply the flags.
pub fn build(args: &RunArgs) -> Result<RunPlan, PlanError> {
    let loaded = match &args.scenario {
        Some(p) => scenario::load(p)?,
        None => scenario::quickstart()?,
    };
    build_from(loaded, args)
}

/// `instances` (the flag over the file), checked: several need a store they share, targets the run
/// starts itself, and one signing key for their whole life (no key rotation).
fn instances(sc: &Scenario, args: &RunArgs, external: bool, store: &StorePlan) -> Result<usize, PlanError> {
    let n = args.instances.map(|n| n as usize).or(sc.instances).unwrap_or(1);
    match n {
        0 => invalid("instances must be at least 1"),
        1 => Ok(1),
        _ if external => invalid("instances starts target processes; with --target, give every instance's URL instead"),
        _ if store.kind == StoreChoice::Memory => invalid(
            "instances > 1 needs a shared store (redis, cluster or postgres): each memory store lives in one target",
        ),
        _ if store.rotation.is_some() => {
            invalid("instances > 1 with [rotation]: a key rotated on one instance is not on the others")
        }
        n => Ok(n),
    }
}

/// `--observe-store`, checked: only beside `--target` (a store the run starts is read anyway), and
/// only Redis URLs (its `INFO` is what is read).
fn observe_store(args: &RunArgs, external: bool) -> Result<Vec<String>, PlanError> {
    if args.observe_store.is_empty() {
        return Ok(Vec::new());
    }
    if !external {
        return invalid(
            "--observe-store names the store of --target servers; a store the run starts is observed anyway",
        );
    }
    if let Some(bad) = args.observe_store.iter().find(|u| !u.starts_with("redis://")) {
        return invalid(format!(
            "--observe-store takes redis://HOST:PORT URLs (the store's INFO is read), got `{bad}`"
        ));
    }
    Ok(args.observe_store.clone())
}

/// Apply the flags to a parsed scenario and validate the result.
pub fn build_from(loaded: LoadedScenario, args: &RunArgs) -> Result<RunPlan, PlanError> {
    let mut sc: Scenario = loaded.scenario.clone();
    apply_flags(&mut sc, args)?;
    let targets = TargetList::parse(&args.target)?;
    let external = !targets.is_empty();
    let traffic = TrafficPlan::from_scenario(&sc)?;
    let mix = mix_of(&sc)?;
    let strategies = sc.strategies.clone().unwrap_or_else(|| StrategyKind::ALL.to_vec());
    if strategies.is_empty() {
        return invalid("strategies is empty");
    }
    let store_plan = store_plan(&sc, &strategies, traffic.stop, external)?;
    // `[target.<strategy>]` tables for strategies the flags left out did not run: drop them.
    sc.target.overrides.retain(|(k, _)| strategies.contains(k));
    check_client_kinds(&sc, &strategies, loaded.file.as_deref())?;
    let variants = expand(&strategies, &sc, &traffic, &store_plan)?;
    check_variants(&variants, &traffic, &targets, &strategies)?;
    if args.repeat > 1 && traffic.stop == Stop::Interrupted {
        return invalid("--repeat needs a measured duration: duration 0 runs until Ctrl-C");
    }
    let capacity = crate::capacity::objective(sc.capacity, &variants).map_err(PlanError::Invalid)?;
    let resolved_toml = toml::to_string(&sc).unwrap_or_default();
    let instances = instances(&sc, args, external, &store_plan)?;
    let mut plan = RunPlan {
        capacity,
        name: loaded.name,
        description: loaded.description,
        file: loaded.file,
        variants,
        stop: traffic.stop,
        warmup: traffic.warmup,
        users: traffic.users,
        timeout: traffic.timeout,
        mix,
        store: if external { StoreChoice::Auto } else { store_plan.kind },
        postgres_url: store_plan.postgres_url,
        cluster_nodes: store_plan.cluster_nodes,
        cluster_replicas: store_plan.cluster_replicas,
        store_jitter: store_plan.jitter,
        outage: store_plan.outage,
        failover: store_plan.failover,
        rotation: store_plan.rotation,
        observe_store: observe_store(args, external)?,
        instances,
        targets,
        part: None,
        user_prefix: String::new(),
        admin_key: args.admin_key.clone(),
        out: args.out.clone(),
        thresholds: loaded.thresholds,
        revoked_fraction: traffic.revoked_fraction,
        tampered_fraction: traffic.tampered_fraction,
        legacy_fraction: traffic.legacy_fraction,
        api_client_fraction: traffic.api_client_fraction,
        revocation_probes: sc.probe.revocation_probes.unwrap_or(5),
        revocation_max_wait: sc.probe.revocation_max_wait.map_or(Duration::from_secs(2), |d| d.0),
        progress: !args.no_progress,
        // `RunArgs::default()` has 0; clap's default is 1.
        repeat: args.repeat.max(1),
        resolved_toml,
        availability_prober: sc.probe.availability.unwrap_or(false),
        store_down_pause: Some(sc.probe.store_down_pause.map_or(DEFAULT_STORE_DOWN_PAUSE, |d| d.0))
            .filter(|d| !d.is_zero()),
    };
    if let Some(part) = args.part {
        crate::part::apply(&mut plan, part)?;
    }
    Ok(plan)
}

/// `--store`: a store kind, or a `postgres://` URL (kind `postgres` on that server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreArg {
    pub kind: StoreChoice,
    /// The PostgreSQL server named by a URL.
    pub url: Option<String>,
}

fn parse_store_arg(s: &str) -> Result<StoreArg, String> {
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        return Ok(StoreArg { kind: StoreChoice::Postgres, url: Some(s.to_owned()) });
    }
    use clap::ValueEnum;
    StoreChoice::from_str(s, true)
        .map(|kind| StoreArg { kind, url: None })
        .map_err(|_| format!("expected auto, memory, redis, cluster, postgres or a postgres:// URL, got `{s}`"))
}
/// How long the store is paused after each measured window unless the scenario says otherwise.
pub const DEFAULT_STORE_DOWN_PAUSE: Duration = Duration::from_millis(800);

/// The flags, written into the scenario so the resolved TOML shows what ran.
fn apply_flags(sc: &mut Scenario, args: &RunArgs) -> Result<(), PlanError> {
    if !args.strategies.is_empty() {
        sc.strategies = Some(args.strategies.clone());
    }
    if let Some(s) = &args.store {
        let so = sc.store.get_or_insert_with(StoreOptions::default);
        so.kind = Some(s.kind);
        if s.url.is_some() || s.kind != StoreChoice::Postgres {
            so.url.clone_from(&s.url);
        }
    }
    let t = &mut sc.traffic;
    if let Some(c) = args.connections {
        t.connections = Some(c);
    }
    match (args.rate, args.connections) {
        (Some(r), _) => {
            t.mode = Some(Mode::Open);
            t.rate = Some(r);
            t.stages = None;
            sc.matrix.rate = None;
        }
        (None, Some(_)) => {
            t.mode = Some(Mode::Closed);
            t.rate = None;
            t.stages = None;
            sc.matrix.rate = None;
        }
        (None, None) => {}
    }
    if let Some(d) = args.duration {
        if t.stages.is_some() {
            return invalid(
                "-z/--duration cannot shorten a staged scenario: its stages set the duration (use -R for one rate)",
            );
        }
        t.duration = Some(scenario::Dur(d));
    }
    if let Some(w) = args.warmup {
        t.warmup = Some(scenario::Dur(w));
    }
    if let Some(u) = args.users {
        t.users = Some(u);
    }
    if let Some(to) = args.timeout {
        t.timeout = Some(scenario::Dur(to));
    }
    Ok(())
}

/// `[traffic]` with defaults, validated.
struct TrafficPlan {
    connections: usize,
    users: usize,
    /// Measured duration of one rate (stages set their own).
    duration: Duration,
    warmup: Duration,
    timeout: Duration,
    revoked_fraction: f64,
    tampered_fraction: f64,
    legacy_fraction: f64,
    /// A share of users, so from 0 to 1 (the other shares are of requests, at most a half).
    api_client_fraction: f64,
    mode: Mode,
    /// Open loop without a swept rate: the stages every variant runs.
    stages: Option<Vec<RateStage>>,
    stop: Stop,
    /// `transport`, `hpack`, `streams_per_connection` (the matrix may override the first two).
    wire: WireSettings,
}

impl TrafficPlan {
    fn from_scenario(sc: &Scenario) -> Result<TrafficPlan, PlanError> {
        let t = &sc.traffic;
        let connections = t.connections.unwrap_or(16);
        if connections == 0 || connections > 10_000 {
            return invalid(format!("connections must be 1..=10000, got {connections}"));
        }
        let users = t.users.unwrap_or(1000);
        if users == 0 || users > 10_000_000 {
            return invalid(format!("users must be 1..=10000000, got {users}"));
        }
        let duration = t.duration.map_or(Duration::from_secs(5), |d| d.0);
        let timeout = t.timeout.map_or(Duration::from_secs(2), |d| d.0);
        if timeout.is_zero() {
            return invalid("timeout must be more than 0");
        }
        let mode = t.mode.unwrap_or(if t.rate.is_some() || t.stages.is_some() || sc.matrix.rate.is_some() {
            Mode::Open
        } else {
            Mode::Closed
        });
        let stages = base_stages(sc, mode, duration)?;
        let stop = if duration.is_zero() && stages.as_ref().is_none_or(|s| s.len() == 1) {
            Stop::Interrupted
        } else {
            Stop::Duration(
                stages.as_ref().filter(|s| s.len() > 1).map_or(duration, |s| s.iter().map(|x| x.duration).sum()),
            )
        };
        Ok(TrafficPlan {
            connections,
            users,
            duration,
            warmup: t.warmup.map_or(Duration::from_secs(1), |d| d.0),
            timeout,
            revoked_fraction: fraction("revoked_fraction", t.revoked_fraction, 0.01)?,
            tampered_fraction: fraction("tampered_fraction", t.tampered_fraction, 0.005)?,
            legacy_fraction: fraction("legacy_fraction", t.legacy_fraction, 0.0)?,
            api_client_fraction: share("api_client_fraction", t.api_client_fraction)?,
            mode,
            stages,
            stop,
            wire: wire_settings(t)?,
        })
    }
}

/// `[traffic]` transport keys with defaults, validated.
fn wire_settings(t: &scenario::Traffic) -> Result<WireSettings, PlanError> {
    let streams_per_connection = t.streams_per_connection.unwrap_or(1);
    if !(1..=1000).contains(&streams_per_connection) {
        return invalid(format!("traffic.streams_per_connection must be 1..=1000, got {streams_per_connection}"));
    }
    Ok(WireSettings {
        transport: t.transport.unwrap_or_default(),
        hpack: t.hpack.unwrap_or_default(),
        streams_per_connection,
        requests_per_connection: t.requests_per_connection.map_or(0, |n| n.0),
        tls_resumption: t.tls_resumption.unwrap_or(true),
    })
}

/// `traffic.<name>`, a share of users between 0 and 1 (default 0).
fn share(name: &str, v: Option<f64>) -> Result<f64, PlanError> {
    let v = v.unwrap_or(0.0);
    if !(0.0..=1.0).contains(&v) {
        return invalid(format!("traffic.{name} must be between 0 and 1, got {v}"));
    }
    Ok(v)
}

/// `traffic.<name>`, a share of requests between 0 and 0.5.
fn fraction(name: &str, v: Option<f64>, default: f64) -> Result<f64, PlanError> {
    let v = v.unwrap_or(default);
    if !(0.0..=0.5).contains(&v) {
        return invalid(format!("traffic.{name} must be between 0 and 0.5, got {v}"));
    }
    Ok(v)
}

/// The open-loop stages from `traffic.rate` or `traffic.stages`; `None` in closed loop or when the
/// matrix sweeps the rate.
fn base_stages(sc: &Scenario, mode: Mode, duration: Duration) -> Result<Option<Vec<RateStage>>, PlanError> {
    let t = &sc.traffic;
    match (mode, &t.stages, t.rate) {
        (Mode::Closed, None, None) => Ok(None),
        (Mode::Closed, _, _) => invalid("traffic.mode = \"closed\" takes no rate or stages (use mode = \"open\")"),
        (Mode::Open, Some(_), Some(_)) => invalid("give traffic.rate or traffic.stages, not both"),
        (Mode::Open, Some(stages), None) => {
            if stages.is_empty() {
                return invalid("traffic.stages is empty");
            }
            let mut prev = 0.0;
            let mut out = Vec::new();
            for s in stages {
                check_rate(s.rate)?;
                if s.duration.0.is_zero() {
                    return invalid("every stage needs a duration > 0");
                }
                out.push(RateStage {
                    from_rate_per_sec: if s.ramp { prev } else { s.rate },
                    rate_per_sec: s.rate,
                    duration: s.duration.0,
                });
                prev = s.rate;
            }
            Ok(Some(out))
        }
        (Mode::Open, None, Some(r)) => {
            check_rate(r)?;
            Ok(Some(vec![RateStage { from_rate_per_sec: r, rate_per_sec: r, duration }]))
        }
        (Mode::Open, None, None) if sc.matrix.rate.is_some() => Ok(None),
        (Mode::Open, None, None) => invalid("open loop needs traffic.rate, traffic.stages or -R"),
    }
}

/// `[mix]` with defaults, validated.
fn mix_of(sc: &Scenario) -> Result<MixWeights, PlanError> {
    let m = &sc.mix;
    let mix = MixWeights {
        login: m.login.unwrap_or(4.0),
        api: m.api.unwrap_or(90.0),
        logout: m.logout.unwrap_or(3.0),
        refresh: m.refresh.unwrap_or(2.0),
        revoke: m.revoke_user.unwrap_or(1.0),
    };
    let weights = [mix.login, mix.api, mix.logout, mix.refresh, mix.revoke];
    if weights.iter().any(|w| !w.is_finite() || *w < 0.0) || weights.iter().sum::<f64>() <= 0.0 {
        return invalid("mix weights must be >= 0 and not all 0");
    }
    Ok(mix)
}

/// What the variants together need of users, the stop rule and the `--target` URLs.
fn check_variants(
    variants: &[Variant],
    traffic: &TrafficPlan,
    targets: &TargetList,
    strategies: &[StrategyKind],
) -> Result<(), PlanError> {
    if !targets.is_empty() {
        targets.check(strategies, variants.len())?;
    }
    let users = traffic.users;
    if let Some(v) = variants.iter().find(|v| v.schedule.connections() > users) {
        return invalid(format!(
            "{} connections need at least as many users (users = {users}): each connection drives its own users",
            v.schedule.connections()
        ));
    }
    if traffic.stop == Stop::Interrupted && variants.len() > 1 {
        return invalid("duration 0 (run until Ctrl-C) needs exactly one strategy and no matrix");
    }
    Ok(())
}

/// `api_client_fraction` (in `[traffic]` or `[matrix]`) needs a strategy that serves browsers and
/// API clients apart: anywhere else it would measure nothing, so the plan refuses it, naming the
/// file and the key.
fn check_client_kinds(
    sc: &Scenario,
    strategies: &[StrategyKind],
    file: Option<&std::path::Path>,
) -> Result<(), PlanError> {
    let key = match (sc.traffic.api_client_fraction, &sc.matrix.api_client_fraction) {
        (Some(f), _) if f > 0.0 => "traffic.api_client_fraction",
        (_, Some(_)) => "matrix.api_client_fraction",
        _ => return Ok(()),
    };
    if strategies.iter().any(|s| s.profile().clients == Clients::BrowserAndApi) {
        return Ok(());
    }
    let serving: Vec<&str> =
        StrategyKind::ALL.iter().filter(|s| s.profile().clients == Clients::BrowserAndApi).map(|s| s.name()).collect();
    let running: Vec<&str> = strategies.iter().map(|s| s.name()).collect();
    let file = file.map_or_else(|| "the scenario".to_owned(), |f| f.display().to_string());
    invalid(format!(
        "{file}: {key} applies to strategies serving browsers and API clients ({}) only; this run has {}",
        serving.join(", "),
        running.join(", ")
    ))
}

/// The `[store]`, `[rotation]` and fail-open options, validated together.
struct StorePlan {
    kind: StoreChoice,
    /// `kind = postgres`: the server named (`None`: the local default).
    postgres_url: Option<String>,
    cluster_nodes: usize,
    cluster_replicas: usize,
    delay: Option<Duration>,
    jitter: Duration,
    outage: Option<Outage>,
    failover: Option<Failover>,
    rotation: Option<RotationPlan>,
}

/// The PostgreSQL server of a `postgres` store; `url` is refused for other kinds, and delays,
/// outages and `--target` for this one.
fn postgres_url(
    so: &StoreOptions,
    kind: StoreChoice,
    needs_redis: bool,
    external: bool,
) -> Result<Option<String>, PlanError> {
    if kind != StoreChoice::Postgres {
        return match so.url {
            Some(_) => invalid("store.url names a PostgreSQL server: it needs kind = \"postgres\""),
            None => Ok(None),
        };
    }
    if needs_redis {
        return invalid("store.delay, store.jitter and store.outage need kind = \"redis\", not postgres");
    }
    if external {
        return invalid("a postgres store needs targets started by the run (not --target)");
    }
    match &so.url {
        Some(u) if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) => {
            invalid(format!("store.url must be a postgres:// URL, got `{u}`"))
        }
        other => Ok(other.clone()),
    }
}

fn store_plan(sc: &Scenario, strategies: &[StrategyKind], stop: Stop, external: bool) -> Result<StorePlan, PlanError> {
    let so = sc.store.clone().unwrap_or_default();
    let swept_delay = sc.matrix.store.as_ref().and_then(|m| m.delay.as_ref());
    if swept_delay.is_some_and(Vec::is_empty) {
        return invalid("matrix.store.delay is empty");
    }
    let needs_proxy = so.delay.is_some() || so.jitter.is_some() || swept_delay.is_some();
    let needs_redis = needs_proxy || so.outage.is_some();
    let mut kind = so.kind.unwrap_or_default();
    sentinel_checks(&so, kind, needs_redis, external)?;
    if external && (needs_redis || kind == StoreChoice::Cluster) {
        return invalid(
            "store.delay, store.jitter, store.outage and a cluster store need targets started by the run (not --target)",
        );
    }
    if kind == StoreChoice::Auto && needs_redis {
        kind = StoreChoice::Redis; // a delay or an outage needs a real store: say so if it is missing
    }
    let postgres_url = postgres_url(&so, kind, needs_redis, external)?;
    if needs_redis && kind == StoreChoice::Memory {
        return invalid("store.delay, store.jitter and store.outage need a Redis store (kind = \"redis\"), not memory");
    }
    if needs_redis && kind == StoreChoice::Cluster {
        return invalid(
            "store.delay, store.jitter and store.outage are for kind = \"redis\": a cluster's clients follow its \
             redirects to the nodes' own addresses, past a proxy",
        );
    }
    let (cluster_nodes, cluster_replicas) = cluster_shape(&so, kind)?;
    let measured = match stop {
        Stop::Duration(d) => Some(d),
        Stop::Interrupted => None,
    };
    let within = |what: &str, end: Duration| -> Result<(), PlanError> {
        match measured {
            Some(d) if end < d => Ok(()),
            Some(d) => invalid(format!(
                "{what} ends at {} but the measured window is {}: it must end inside it (with time to recover)",
                scenario::format_duration(end),
                scenario::format_duration(d)
            )),
            None => invalid(format!("{what} needs a measured duration (not 0 = until Ctrl-C)")),
        }
    };
    if let Some(o) = &so.outage {
        if o.at.0.is_zero() || o.duration.0.is_zero() {
            return invalid("store.outage.at and store.outage.duration must be more than 0");
        }
        within("store.outage", o.at.0 + o.duration.0)?;
    }
    degrade_checks(sc, strategies)?;
    so.failover.as_ref().map_or(Ok(()), |f| failover_checks(f, &within))?;
    partial_outage_checks(sc, &so, kind, cluster_replicas)?;
    let rotation = rotation_plan(sc, strategies, &within)?;
    Ok(StorePlan {
        kind,
        postgres_url,
        cluster_nodes,
        cluster_replicas,
        delay: if needs_proxy { Some(so.delay.map_or(Duration::ZERO, |d| d.0)) } else { None },
        jitter: so.jitter.map_or(Duration::ZERO, |d| d.0),
        outage: so.outage,
        failover: so.failover,
        rotation,
    })
}

/// `fail_open` and `stale_grace` name strategies that support them, or are errors.
fn degrade_checks(sc: &Scenario, strategies: &[StrategyKind]) -> Result<(), PlanError> {
    if !strategies.iter().any(|s| s.profile().fail_open) {
        let which = fail_open_names();
        if sc.target.all.fail_open == Some(true) {
            return invalid(format!("target.fail_open applies to {which} only, and none of them is listed"));
        }
        if sc.matrix.fail_open.is_some() {
            return invalid(format!("matrix.fail_open applies to {which} only, and none of them is listed"));
        }
    }
    if !strategies.iter().any(|s| s.profile().stale_reads) {
        let which = stale_grace_names();
        if sc.target.all.stale_grace.is_some_and(|d| !d.0.is_zero()) || sc.matrix.stale_grace.is_some() {
            return invalid(format!("stale_grace applies to {which} only, and none of them is listed"));
        }
    }
    Ok(())
}

/// `store.cluster_nodes` (masters) and `store.cluster_replicas`, checked: only for a cluster, 3..=16
/// masters, at most [`crate::environment::cluster::MAX_REPLICAS`] replicas each.
fn cluster_shape(so: &StoreOptions, kind: StoreChoice) -> Result<(usize, usize), PlanError> {
    if (so.cluster_nodes.is_some() || so.cluster_replicas.is_some()) && kind != StoreChoice::Cluster {
        return invalid("store.cluster_nodes and store.cluster_replicas need kind = \"cluster\"");
    }
    let cluster_nodes = so.cluster_nodes.unwrap_or(3);
    if !(3..=16).contains(&cluster_nodes) {
        return invalid(format!(
            "store.cluster_nodes must be 3..=16 (Redis Cluster needs at least 3), got {cluster_nodes}"
        ));
    }
    let replicas = so.cluster_replicas.unwrap_or(0);
    let max = crate::environment::cluster::MAX_REPLICAS;
    if replicas > max {
        return invalid(format!("store.cluster_replicas must be 0..={max}, got {replicas}"));
    }
    Ok((cluster_nodes, replicas))
}

/// A Sentinel store: no delay proxy or outage (they are for one redis-server), targets started by
/// the run; `[store.failover]` only with it or a cluster.
fn sentinel_checks(so: &StoreOptions, kind: StoreChoice, needs_redis: bool, external: bool) -> Result<(), PlanError> {
    if kind == StoreChoice::Sentinel && needs_redis {
        return invalid(
            "store.delay, store.jitter and store.outage are for kind = \"redis\"; with kind = \"sentinel\" use \
             [store.failover]",
        );
    }
    if so.failover.is_some() && !matches!(kind, StoreChoice::Sentinel | StoreChoice::Cluster) {
        return invalid(
            "[store.failover] needs kind = \"sentinel\" (a primary with replicas and Sentinels) or kind = \"cluster\"",
        );
    }
    if external && kind == StoreChoice::Sentinel {
        return invalid("a sentinel store needs targets started by the run (not --target)");
    }
    Ok(())
}

/// A cluster failover without replicas is a partial outage: nothing to cut replication from, and
/// `min-replicas-to-write` would refuse every write.
fn partial_outage_checks(
    sc: &Scenario,
    so: &StoreOptions,
    kind: StoreChoice,
    replicas: usize,
) -> Result<(), PlanError> {
    let Some(f) = so.failover.as_ref().filter(|_| kind == StoreChoice::Cluster && replicas == 0) else {
        return Ok(());
    };
    let m = sc.matrix.store.as_ref();
    let swept_cut = m.and_then(|m| m.failover_mode.as_ref()).is_some_and(|v| v.contains(&FailoverMode::CutReplication));
    if f.mode == FailoverMode::CutReplication || swept_cut {
        return invalid(
            "store.failover.mode = \"cut-replication\" needs replicas to cut: set store.cluster_replicas (a cluster \
             without replicas fails over nothing: a kill is a partial outage)",
        );
    }
    let swept_min = m.and_then(|m| m.min_replicas_to_write.as_ref()).is_some_and(|v| v.iter().any(|&n| n > 0));
    if f.min_replicas_to_write.is_some_and(|n| n > 0) || swept_min {
        return invalid("store.failover.min_replicas_to_write > 0 needs store.cluster_replicas > 0");
    }
    Ok(())
}

/// `[store.failover]`, checked: the kill inside the measured window, the lead before it shorter
/// than the Sentinels' `down-after-milliseconds` (stopped replicas must not look down).
fn failover_checks(f: &Failover, within: &dyn Fn(&str, Duration) -> Result<(), PlanError>) -> Result<(), PlanError> {
    let lead = f.lead.map_or(crate::collect::failover::DEFAULT_LEAD, |d| d.0);
    if f.at.0.is_zero() || lead.is_zero() {
        return invalid("store.failover.at and store.failover.lead must be more than 0");
    }
    if lead >= f.at.0 {
        return invalid("store.failover.lead must be shorter than store.failover.at (it ends at the kill)");
    }
    let max_lead = Duration::from_millis(crate::environment::sentinel::DOWN_AFTER_MS * 4 / 5);
    if lead > max_lead {
        return invalid(format!(
            "store.failover.lead must be at most {} (below the Sentinels' down-after-milliseconds and the \
             cluster-node-timeout, or the stopped replicas look down too)",
            scenario::format_duration(max_lead)
        ));
    }
    if f.probes == Some(0) {
        return invalid("store.failover.probes must be at least 1");
    }
    within("store.failover.at", f.at.0)
}

/// `[rotation]`, validated: a JWT strategy to rotate for, at a time `within` the measured window.
fn rotation_plan(
    sc: &Scenario,
    strategies: &[StrategyKind],
    within: &dyn Fn(&str, Duration) -> Result<(), PlanError>,
) -> Result<Option<RotationPlan>, PlanError> {
    let Some(r) = &sc.rotation else { return Ok(None) };
    if !strategies.iter().any(|s| s.uses_jwt()) {
        return invalid("[rotation] rotates a JWT signing key: list at least one JWT strategy");
    }
    if r.at.0.is_zero() {
        return invalid("rotation.at must be more than 0");
    }
    within("rotation.at", r.at.0)?;
    Ok(Some(RotationPlan { at: r.at.0, overlap: r.overlap.map_or(Duration::ZERO, |d| d.0) }))
}

/// `5ms`, `0.5ms`, `0ms`: a store delay as a matrix coordinate (always in ms, so values line up).
pub fn delay_coord(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    format!("{}ms", (ms * 1000.0).round() / 1000.0)
}

fn check_rate(r: f64) -> Result<(), PlanError> {
    if !r.is_finite() || r <= 0.0 || r > 10_000_000.0 {
        return invalid(format!("rate must be > 0 and <= 10000000 requests/s, got {r}"));
    }
    Ok(())
}

/// The strategies that support `fail_open`, for messages.
pub fn fail_open_names() -> String {
    let names: Vec<&str> = StrategyKind::ALL.iter().filter(|s| s.profile().fail_open).map(|s| s.name()).collect();
    names.join(", ")
}

/// The strategies that support `stale_grace`, for messages.
pub fn stale_grace_names() -> String {
    let names: Vec<&str> = StrategyKind::ALL.iter().filter(|s| s.profile().stale_reads).map(|s| s.name()).collect();
    names.join(", ")
}

/// Which matrix keys change what a strategy does (from its profile).
fn applies(key: &str, s: StrategyKind) -> bool {
    match key {
        "alg" | "pad_bytes" | "scopes" => s.uses_jwt(),
        "roles" | "authz" | "store.delay" => s.profile().has_credential(),
        "fail_open" => s.profile().fail_open,
        "stale_grace" => s.profile().stale_reads,
        "store_wait_replicas" | "store.min_replicas_to_write" => writes_store(s),
        "access_ttl" | "leeway" => s.uses_jwt(),
        "token_transport" => s.profile().transport == CredentialTransport::Bearer,
        "hpack" => s.profile().has_credential(),
        // Older clients exist only where a strategy verifies more than one kind of credential.
        "legacy_fraction" => s.profile().clients == Clients::CurrentAndLegacy,
        // API clients exist only where one backend serves browsers and API clients.
        "api_client_fraction" => s.profile().clients == Clients::BrowserAndApi,
        _ => true,
    }
}

/// One value of a swept `[matrix]` key, typed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AxisValue {
    Alg(Alg),
    PadBytes(usize),
    Roles(usize),
    Scopes(usize),
    Authz(AuthzSource),
    RatePerSec(f64),
    Connections(usize),
    FailOpen(bool),
    /// Strategies with stale reads: how old an answer may be served while the store is down.
    StaleGrace(Duration),
    StoreDelay(Duration),
    /// JWT strategies: the access-token lifetime.
    AccessTtl(Duration),
    /// JWT strategies: the clock-skew leeway on `exp`.
    Leeway(Duration),
    /// How the `[store.outage]` stops the store.
    OutageMode(OutageMode),
    /// Bearer-token strategies: header or cookie.
    TokenTransport(TokenTransport),
    /// Replicas every store write waits for (`WAIT`).
    StoreWaitReplicas(u32),
    /// How the `[store.failover]` fails the primary.
    FailoverMode(FailoverMode),
    /// `min-replicas-to-write` on the Sentinel group's data nodes.
    MinReplicasToWrite(u32),
    /// Strategies migrating between designs: the share of users that are older clients.
    LegacyFraction(f64),
    /// Strategies serving browsers and API clients: the share of users that are API clients.
    ApiClientFraction(f64),
    /// How requests travel.
    Transport(Transport),
    /// HTTP/2: how the credential header is compressed.
    Hpack(HpackPolicy),
    /// Requests a connection carries before the driver closes it (0: kept alive).
    RequestsPerConnection(u32),
    /// TLS: new connections resume the previous session, or make a full handshake.
    TlsResumption(bool),
}

impl AxisValue {
    /// The `[matrix]` key, as report.json's `variant` coordinates and labels name it.
    pub fn key(self) -> &'static str {
        match self {
            AxisValue::Alg(_) => "alg",
            AxisValue::PadBytes(_) => "pad_bytes",
            AxisValue::Roles(_) => "roles",
            AxisValue::Scopes(_) => "scopes",
            AxisValue::Authz(_) => "authz",
            AxisValue::RatePerSec(_) => "rate",
            AxisValue::Connections(_) => "connections",
            AxisValue::FailOpen(_) => "fail_open",
            AxisValue::StaleGrace(_) => "stale_grace",
            AxisValue::StoreDelay(_) => "store.delay",
            AxisValue::AccessTtl(_) => "access_ttl",
            AxisValue::Leeway(_) => "leeway",
            AxisValue::OutageMode(_) => "store.outage_mode",
            AxisValue::TokenTransport(_) => "token_transport",
            AxisValue::StoreWaitReplicas(_) => "store_wait_replicas",
            AxisValue::FailoverMode(_) => "store.failover_mode",
            AxisValue::MinReplicasToWrite(_) => "store.min_replicas_to_write",
            AxisValue::LegacyFraction(_) => "legacy_fraction",
            AxisValue::ApiClientFraction(_) => "api_client_fraction",
            AxisValue::Transport(_) => "transport",
            AxisValue::Hpack(_) => "hpack",
            AxisValue::RequestsPerConnection(_) => "requests_per_connection",
            AxisValue::TlsResumption(_) => "tls_resumption",
        }
    }

    /// The value as report.json's `variant` coordinates and labels write it.
    pub fn text(self) -> String {
        match self {
            AxisValue::Alg(a) => a.name().to_owned(),
            AxisValue::PadBytes(n) | AxisValue::Roles(n) | AxisValue::Scopes(n) | AxisValue::Connections(n) => {
                n.to_string()
            }
            AxisValue::Authz(AuthzSource::Store) => "store".to_owned(),
            AxisValue::Authz(AuthzSource::Claims) => "claims".to_owned(),
            AxisValue::RatePerSec(r) => r.to_string(),
            AxisValue::FailOpen(b) | AxisValue::TlsResumption(b) => b.to_string(),
            AxisValue::RequestsPerConnection(n) => n.to_string(),
            AxisValue::StoreDelay(d) => delay_coord(d),
            AxisValue::AccessTtl(d) | AxisValue::Leeway(d) | AxisValue::StaleGrace(d) => scenario::format_duration(d),
            AxisValue::OutageMode(m) => m.name().to_owned(),
            AxisValue::TokenTransport(TokenTransport::Bearer) => "bearer".to_owned(),
            AxisValue::TokenTransport(TokenTransport::Cookie) => "cookie".to_owned(),
            AxisValue::StoreWaitReplicas(n) | AxisValue::MinReplicasToWrite(n) => n.to_string(),
            AxisValue::FailoverMode(m) => m.name().to_owned(),
            AxisValue::LegacyFraction(f) | AxisValue::ApiClientFraction(f) => f.to_string(),
            AxisValue::Transport(t) => t.name().to_owned(),
            AxisValue::Hpack(h) => h.name().to_owned(),
        }
    }

    /// Set this value in a variant being built.
    fn apply(self, v: &mut VariantDraft) {
        match self {
            AxisValue::Alg(a) => v.target.alg = a,
            AxisValue::PadBytes(n) => v.target.pad_bytes = n,
            AxisValue::Roles(n) => v.target.roles = n,
            AxisValue::Scopes(n) => v.target.scopes = n,
            AxisValue::Authz(a) => v.target.authz = a,
            AxisValue::RatePerSec(r) => v.rate_per_sec = Some(r),
            AxisValue::Connections(n) => v.connections = n,
            AxisValue::FailOpen(b) => v.target.fail_open = b,
            AxisValue::StaleGrace(d) => v.target.stale_grace = d,
            AxisValue::StoreDelay(d) => v.store_delay = Some(d),
            AxisValue::AccessTtl(d) => v.target.access_ttl = Some(d),
            AxisValue::Leeway(d) => v.target.leeway = d,
            AxisValue::OutageMode(m) => v.outage_mode = Some(m),
            AxisValue::TokenTransport(t) => v.target.token_transport = t,
            AxisValue::StoreWaitReplicas(n) => v.target.store_wait_replicas = n,
            AxisValue::FailoverMode(m) => v.failover_mode = Some(m),
            AxisValue::MinReplicasToWrite(n) => v.min_replicas_to_write = Some(n),
            AxisValue::LegacyFraction(f) => v.legacy_fraction = Some(f),
            AxisValue::ApiClientFraction(f) => v.api_client_fraction = Some(f),
            AxisValue::Transport(t) => v.wire.transport = t,
            AxisValue::Hpack(h) => v.wire.hpack = h,
            AxisValue::RequestsPerConnection(n) => v.wire.requests_per_connection = n,
            AxisValue::TlsResumption(b) => v.wire.tls_resumption = b,
        }
    }
}

/// A variant's settings while its matrix point is applied.
struct VariantDraft {
    target: TargetSettings,
    connections: usize,
    rate_per_sec: Option<f64>,
    store_delay: Option<Duration>,
    outage_mode: Option<OutageMode>,
    failover_mode: Option<FailoverMode>,
    min_replicas_to_write: Option<u32>,
    wire: WireSettings,
    legacy_fraction: Option<f64>,
    api_client_fraction: Option<f64>,
}

/// Every swept `[matrix]` key with its values, in a fixed order.
fn axes(m: &scenario::Matrix) -> Result<Vec<Vec<AxisValue>>, PlanError> {
    fn axis<T: Copy>(key: &str, vals: Option<&[T]>, f: fn(T) -> AxisValue) -> Result<Vec<AxisValue>, PlanError> {
        match vals {
            Some([]) => invalid(format!("matrix.{key} is empty")),
            Some(v) => Ok(v.iter().map(|x| f(*x)).collect()),
            None => Ok(Vec::new()),
        }
    }
    let delays: Option<Vec<Duration>> =
        m.store.as_ref().and_then(|s| s.delay.as_ref()).map(|v| v.iter().map(|d| d.0).collect());
    let durations = |v: &Option<Vec<scenario::Dur>>| -> Option<Vec<Duration>> {
        v.as_ref().map(|v| v.iter().map(|d| d.0).collect())
    };
    let (access_ttls, leeways) = (durations(&m.access_ttl), durations(&m.leeway));
    let stale_graces = durations(&m.stale_grace);
    let outage_modes = m.store.as_ref().and_then(|s| s.outage_mode.as_deref());
    let failover_modes = m.store.as_ref().and_then(|s| s.failover_mode.as_deref());
    let min_replicas = m.store.as_ref().and_then(|s| s.min_replicas_to_write.as_deref());
    let per_connection: Option<Vec<u32>> = m.requests_per_connection.as_ref().map(|v| v.iter().map(|n| n.0).collect());
    let all = vec![
        axis("alg", m.alg.as_deref(), AxisValue::Alg)?,
        axis("pad_bytes", m.pad_bytes.as_deref(), AxisValue::PadBytes)?,
        axis("roles", m.roles.as_deref(), AxisValue::Roles)?,
        axis("scopes", m.scopes.as_deref(), AxisValue::Scopes)?,
        axis("authz", m.authz.as_deref(), AxisValue::Authz)?,
        axis("rate", m.rate.as_deref(), AxisValue::RatePerSec)?,
        axis("connections", m.connections.as_deref(), AxisValue::Connections)?,
        axis("fail_open", m.fail_open.as_deref(), AxisValue::FailOpen)?,
        axis("stale_grace", stale_graces.as_deref(), AxisValue::StaleGrace)?,
        axis("store.delay", delays.as_deref(), AxisValue::StoreDelay)?,
        axis("access_ttl", access_ttls.as_deref(), AxisValue::AccessTtl)?,
        axis("leeway", leeways.as_deref(), AxisValue::Leeway)?,
        axis("store.outage_mode", outage_modes, AxisValue::OutageMode)?,
        axis("token_transport", m.token_transport.as_deref(), AxisValue::TokenTransport)?,
        axis("store_wait_replicas", m.store_wait_replicas.as_deref(), AxisValue::StoreWaitReplicas)?,
        axis("store.failover_mode", failover_modes, AxisValue::FailoverMode)?,
        axis("store.min_replicas_to_write", min_replicas, AxisValue::MinReplicasToWrite)?,
        axis("legacy_fraction", m.legacy_fraction.as_deref(), AxisValue::LegacyFraction)?,
        axis("api_client_fraction", m.api_client_fraction.as_deref(), AxisValue::ApiClientFraction)?,
        axis("transport", m.transport.as_deref(), AxisValue::Transport)?,
        axis("hpack", m.hpack.as_deref(), AxisValue::Hpack)?,
        axis("requests_per_connection", per_connection.as_deref(), AxisValue::RequestsPerConnection)?,
        axis("tls_resumption", m.tls_resumption.as_deref(), AxisValue::TlsResumption)?,
    ];
    Ok(all.into_iter().filter(|a| !a.is_empty()).collect())
}

/// Every matrix point of `strategy`: one value of each axis that applies to it.
fn points(axes: &[Vec<AxisValue>], strategy: StrategyKind) -> Vec<Vec<AxisValue>> {
    let mut points: Vec<Vec<AxisValue>> = vec![Vec::new()];
    for axis in axes.iter().filter(|a| applies(a[0].key(), strategy)) {
        points = points
            .into_iter()
            .flat_map(|p| {
                axis.iter().map(move |v| {
                    let mut p = p.clone();
                    p.push(*v);
                    p
                })
            })
            .collect();
    }
    points
}

/// The variants: every strategy at every matrix point that applies to it.
fn expand(
    strategies: &[StrategyKind],
    sc: &Scenario,
    traffic: &TrafficPlan,
    store: &StorePlan,
) -> Result<Vec<Variant>, PlanError> {
    let axes = axes(&sc.matrix)?;
    if traffic.mode == Mode::Closed && axes.iter().any(|a| a[0].key() == "rate") {
        return invalid("matrix.rate needs open loop (traffic.mode = \"open\")");
    }
    if store.outage.is_none() && axes.iter().any(|a| a[0].key() == "store.outage_mode") {
        return invalid("matrix.store.outage_mode needs a [store.outage] table (when and how long)");
    }
    let failover_axis =
        |a: &&Vec<AxisValue>| a[0].key().starts_with("store.failover") || a[0].key().starts_with("store.min");
    if store.failover.is_none() && axes.iter().any(|a| failover_axis(&a)) {
        return invalid(
            "matrix.store.failover_mode and matrix.store.min_replicas_to_write need a [store.failover] table",
        );
    }
    let mut out: Vec<Variant> = Vec::new();
    for &strategy in strategies {
        let first_hpack = sc.matrix.hpack.as_ref().and_then(|v| v.first().copied()).unwrap_or_default();
        let first_resumption = sc.matrix.tls_resumption.as_ref().and_then(|v| v.first().copied());
        let repeats = |p: &Vec<AxisValue>| {
            hpack_without_http2(p, first_hpack) || resumption_without_reconnects(p, traffic.wire, first_resumption)
        };
        for point in points(&axes, strategy).into_iter().filter(|p| !repeats(p)) {
            out.push(variant(strategy, sc, traffic, store, point)?);
        }
    }
    Ok(out)
}

/// A point that sweeps the HPACK policy on an HTTP/1.1 transport beyond its first value: HTTP/1.1
/// does not compress headers, so it would measure the same thing again.
fn hpack_without_http2(point: &[AxisValue], first_hpack: HpackPolicy) -> bool {
    let http1 = point.iter().any(|v| matches!(v, AxisValue::Transport(t) if !t.h2()));
    http1 && point.iter().any(|v| matches!(v, AxisValue::Hpack(h) if *h != first_hpack))
}

/// A point that sweeps TLS resumption beyond its first value where no connection is reopened on
/// purpose (clear text, or connections kept alive): it would measure the same thing again.
fn resumption_without_reconnects(point: &[AxisValue], base: WireSettings, first: Option<bool>) -> bool {
    let mut wire = base;
    for v in point {
        match *v {
            AxisValue::Transport(t) => wire.transport = t,
            AxisValue::RequestsPerConnection(n) => wire.requests_per_connection = n,
            AxisValue::TlsResumption(b) => wire.tls_resumption = b,
            _ => {}
        }
    }
    let reconnects = wire.transport.tls() && wire.requests_per_connection > 0;
    !reconnects && first.is_some_and(|f| wire.tls_resumption != f)
}

/// One variant: `[target]`, then `[target.<strategy>]`, then the matrix point (the matrix value wins).
fn variant(
    strategy: StrategyKind,
    sc: &Scenario,
    traffic: &TrafficPlan,
    store: &StorePlan,
    point: Vec<AxisValue>,
) -> Result<Variant, PlanError> {
    let mut draft = VariantDraft {
        target: base_target(sc, strategy, store.rotation.map(|r| r.overlap)),
        connections: traffic.connections,
        rate_per_sec: None,
        store_delay: store.delay,
        outage_mode: None,
        failover_mode: None,
        min_replicas_to_write: None,
        wire: traffic.wire,
        legacy_fraction: None,
        api_client_fraction: None,
    };
    for v in &point {
        v.apply(&mut draft);
    }
    settle(&mut draft, strategy, store)?;
    let schedule = match traffic.mode {
        Mode::Closed => Schedule::Closed { connections: draft.connections },
        Mode::Open => {
            let stages = match (draft.rate_per_sec, &traffic.stages) {
                (Some(r), _) => {
                    check_rate(r)?;
                    vec![RateStage { from_rate_per_sec: r, rate_per_sec: r, duration: traffic.duration }]
                }
                (None, Some(s)) => s.clone(),
                (None, None) => return invalid("open loop needs a rate"),
            };
            Schedule::Open { stages, connections: draft.connections }
        }
    };
    let coords: BTreeMap<String, String> = point.iter().map(|v| (v.key().to_owned(), v.text())).collect();
    let label = if coords.is_empty() {
        strategy.name().to_owned()
    } else {
        let c: Vec<String> = coords.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{} {}", strategy.name(), c.join(" "))
    };
    Ok(Variant {
        label,
        strategy,
        point,
        target: draft.target,
        schedule,
        store_delay: draft.store_delay,
        outage_mode: draft.outage_mode,
        failover_mode: draft.failover_mode,
        min_replicas_to_write: draft.min_replicas_to_write,
        wire: draft.wire,
        legacy_fraction: draft.legacy_fraction,
        api_client_fraction: draft.api_client_fraction,
    })
}

/// Make a variant's settings consistent after its matrix point is applied (options a strategy
/// does not have are dropped), and refuse values no run could honour.
fn settle(draft: &mut VariantDraft, strategy: StrategyKind, store: &StorePlan) -> Result<(), PlanError> {
    if !draft.wire.transport.h2() {
        // HTTP/1.1 carries one request per connection at a time.
        draft.wire.streams_per_connection = 1;
    }
    draft.target.tls = draft.wire.transport.tls();
    if draft.connections == 0 {
        return invalid("matrix.connections values must be >= 1");
    }
    if draft.legacy_fraction.is_some_and(|f| !(0.0..=1.0).contains(&f)) {
        return invalid("matrix.legacy_fraction values must be shares from 0 to 1");
    }
    if draft.api_client_fraction.is_some_and(|f| !(0.0..=1.0).contains(&f)) {
        return invalid("matrix.api_client_fraction values must be shares from 0 to 1");
    }
    if !strategy.profile().fail_open {
        draft.target.fail_open = false;
    }
    if !strategy.profile().stale_reads {
        draft.target.stale_grace = Duration::ZERO;
    }
    if draft.target.fail_open && !draft.target.stale_grace.is_zero() {
        return invalid(format!("{}: fail_open and stale_grace are two answers to one outage: choose one", strategy));
    }
    if !strategy.uses_jwt() {
        draft.target.rotation_overlap = None;
    }
    if !writes_store(strategy) {
        draft.target.store_wait_replicas = 0;
    }
    if draft.target.store_wait_replicas > 0
        && !matches!(store.kind, StoreChoice::Redis | StoreChoice::Sentinel | StoreChoice::Cluster)
    {
        return invalid(format!(
            "store_wait_replicas needs a Redis store with replicas (kind = \"sentinel\"), not {}",
            store.kind.name()
        ));
    }
    let wait = draft.target.store_wait_replicas as usize;
    if store.kind == StoreChoice::Cluster && wait > store.cluster_replicas {
        return invalid(format!(
            "store_wait_replicas = {wait} needs as many replicas per cluster master: set store.cluster_replicas \
             (now {}), or every write fails",
            store.cluster_replicas
        ));
    }
    Ok(())
}

/// `[target]` and `[target.<strategy>]` with defaults.
fn base_target(sc: &Scenario, strategy: StrategyKind, rotation_overlap: Option<Duration>) -> TargetSettings {
    let to = sc.target.for_strategy(strategy);
    TargetSettings {
        alg: to.alg.unwrap_or(Alg::Hs256),
        access_ttl: to.access_ttl.map(|d| d.0),
        leeway: to.leeway.map_or(Duration::from_secs(30), |d| d.0),
        roles: to.roles.unwrap_or(2),
        scopes: to.scopes.unwrap_or(2),
        pad_bytes: to.pad_bytes.unwrap_or(0),
        authz: to.authz.unwrap_or(AuthzSource::Claims),
        fail_open: to.fail_open.unwrap_or(false),
        stale_grace: to.stale_grace.map_or(Duration::ZERO, |d| d.0),
        rotation_overlap,
        // A cookie for the access token means something only where there is a bearer token.
        token_transport: to
            .token_transport
            .filter(|_| strategy.profile().transport == CredentialTransport::Bearer)
            .unwrap_or_default(),
        store_wait_replicas: to.store_wait_replicas.unwrap_or(0),
        tls: false,
    }
}

/// Whether a strategy writes to the store on login or logout (what `WAIT` can apply to).
fn writes_store(s: StrategyKind) -> bool {
    let ops = s.profile().store_ops;
    !ops.login.is_empty() || !ops.logout.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_args_is_closed_quickstart_over_all_strategies() {
        let plan = build(&RunArgs::default()).expect("plan");
        assert_eq!(plan.variants.len(), 5);
        assert!(matches!(plan.variants[0].schedule, Schedule::Closed { connections: 16 }));
    }

    #[test]
    fn rate_flag_makes_open_loop() {
        let args = RunArgs { rate: Some(500.0), connections: Some(4), ..RunArgs::default() };
        let plan = build(&args).expect("plan");
        assert!(
            matches!(&plan.variants[0].schedule, Schedule::Open { connections: 4, stages } if stages[0].rate_per_sec == 500.0)
        );
    }
}
