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

use crate::scenario::{
    self, LoadedScenario, Mode, Outage, OutageMode, Scenario, ScenarioError, StoreChoice, StoreOptions, ThresholdEntry,
};
use crate::targets::config::{Alg, AuthzSource, StrategyKind, parse_duration};

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
    /// `cluster` (a private Redis Cluster).
    #[arg(long, value_enum)]
    pub store: Option<StoreChoice>,
    /// Traffic before measuring starts (`1s`).
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// Distinct virtual users.
    #[arg(long)]
    pub users: Option<usize>,
    /// Results directory. Default: results/<scenario>-<timestamp>.
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
    /// Drive an already-running server speaking the target contract instead of starting targets.
    /// Figures that need the target process or the store are then null.
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Admin key of the `--target` server (for revoke-user); ignored when targets are started here.
    #[arg(long, env = "AUTHBENCH_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// Per-request timeout (`2s`).
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// No progress bar even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
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
    /// `--rotation-overlap` (set only for JWT strategies, when the scenario rotates the key).
    pub rotation_overlap: Option<Duration>,
}

impl TargetSettings {
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
        if let Some(ttl) = self.access_ttl {
            a.push("--access-ttl".to_owned());
            a.push(scenario::format_duration(ttl));
        }
        if self.fail_open {
            a.push("--fail-open".to_owned());
        }
        if let Some(o) = self.rotation_overlap {
            a.push("--rotation-overlap".to_owned());
            a.push(scenario::format_duration(o));
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
    pub coords: BTreeMap<String, String>,
    pub target: TargetSettings,
    pub schedule: Schedule,
    /// Added latency per store round trip (through a delay proxy); `None`: targets talk to the store
    /// directly.
    pub store_delay: Option<Duration>,
    /// `matrix.store.outage_mode`: this variant's `[store.outage]` mode; `None`: the table's own.
    pub outage_mode: Option<OutageMode>,
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
    /// Nodes of the Redis Cluster (`store = cluster`).
    pub cluster_nodes: usize,
    /// Spread of the store delay per round trip (with a delay proxy).
    pub store_jitter: Duration,
    /// Stop the store during each variant's measured window.
    pub outage: Option<Outage>,
    /// Rotate the signing key during each JWT variant's measured window.
    pub rotation: Option<RotationPlan>,
    pub target_url: Option<String>,
    pub admin_key: Option<String>,
    pub out: Option<PathBuf>,
    pub thresholds: Vec<ThresholdEntry>,
    pub revoked_fraction: f64,
    pub tampered_fraction: f64,
    pub revocation_probes: u32,
    pub revocation_max_wait: Duration,
    pub progress: bool,
    /// The availability prober runs through every measured window (`[probe] availability`).
    pub availability_prober: bool,
    /// How long the store is paused after each measured window; None: no store-down check.
    pub store_down_pause: Option<Duration>,
    /// The scenario after overrides, as TOML (recorded in report.json).
    pub resolved_toml: String,
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

/// Apply the flags to a parsed scenario and validate the result.
pub fn build_from(loaded: LoadedScenario, args: &RunArgs) -> Result<RunPlan, PlanError> {
    let mut sc: Scenario = loaded.scenario.clone();
    // Overrides, written back into the scenario so the resolved TOML shows what ran.
    if !args.strategies.is_empty() {
        sc.strategies = Some(args.strategies.clone());
    }
    if let Some(s) = args.store {
        sc.store.get_or_insert_with(StoreOptions::default).kind = Some(s);
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

    let connections = t.connections.unwrap_or(16);
    if connections == 0 || connections > 10_000 {
        return invalid(format!("connections must be 1..=10000, got {connections}"));
    }
    let users = t.users.unwrap_or(1000);
    if users == 0 || users > 10_000_000 {
        return invalid(format!("users must be 1..=10000000, got {users}"));
    }
    let duration = t.duration.map_or(Duration::from_secs(5), |d| d.0);
    let warmup = t.warmup.map_or(Duration::from_secs(1), |d| d.0);
    let timeout = t.timeout.map_or(Duration::from_secs(2), |d| d.0);
    if timeout.is_zero() {
        return invalid("timeout must be more than 0");
    }
    let frac = |name: &str, v: Option<f64>, default: f64| -> Result<f64, PlanError> {
        let v = v.unwrap_or(default);
        if !(0.0..=0.5).contains(&v) {
            return invalid(format!("traffic.{name} must be between 0 and 0.5, got {v}"));
        }
        Ok(v)
    };
    let revoked_fraction = frac("revoked_fraction", t.revoked_fraction, 0.01)?;
    let tampered_fraction = frac("tampered_fraction", t.tampered_fraction, 0.005)?;

    let mode = t.mode.unwrap_or(if t.rate.is_some() || t.stages.is_some() || sc.matrix.rate.is_some() {
        Mode::Open
    } else {
        Mode::Closed
    });
    let base_stages: Option<Vec<RateStage>> = match mode {
        Mode::Closed => {
            if t.rate.is_some() || t.stages.is_some() {
                return invalid("traffic.mode = \"closed\" takes no rate or stages (use mode = \"open\")");
            }
            None
        }
        Mode::Open => match (&t.stages, t.rate) {
            (Some(_), Some(_)) => return invalid("give traffic.rate or traffic.stages, not both"),
            (Some(stages), None) => {
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
                Some(out)
            }
            (None, Some(r)) => {
                check_rate(r)?;
                Some(vec![RateStage { from_rate_per_sec: r, rate_per_sec: r, duration }])
            }
            (None, None) if sc.matrix.rate.is_some() => None,
            (None, None) => return invalid("open loop needs traffic.rate, traffic.stages or -R"),
        },
    };

    let stop = if duration.is_zero() && base_stages.as_ref().is_none_or(|s| s.len() == 1) {
        Stop::Interrupted
    } else {
        Stop::Duration(
            base_stages.as_ref().filter(|s| s.len() > 1).map_or(duration, |s| s.iter().map(|x| x.duration).sum()),
        )
    };

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

    let strategies = sc.strategies.clone().unwrap_or_else(|| StrategyKind::ALL.to_vec());
    if strategies.is_empty() {
        return invalid("strategies is empty");
    }
    let store_plan = store_plan(&sc, &strategies, stop, args.target.is_some())?;

    // `[target.<strategy>]` tables for strategies the flags left out did not run: drop them.
    sc.target.overrides.retain(|(k, _)| strategies.contains(k));
    let rotation_overlap = store_plan.rotation.map(|r| r.overlap);
    let base_target = |strategy: StrategyKind| {
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
            rotation_overlap,
        }
    };

    let variants =
        expand(&strategies, &sc, base_target, connections, base_stages.as_deref(), duration, mode, store_plan.delay)?;
    if let Some(v) = variants.iter().find(|v| v.schedule.connections() > users) {
        return invalid(format!(
            "{} connections need at least as many users (users = {users}): each connection drives its own users",
            v.schedule.connections()
        ));
    }
    if stop == Stop::Interrupted && variants.len() > 1 {
        return invalid("duration 0 (run until Ctrl-C) needs exactly one strategy and no matrix");
    }
    if let Some(url) = &args.target {
        if !url.starts_with("http://") {
            return invalid(format!("--target must be an http:// URL, got `{url}`"));
        }
        if variants.len() != 1 {
            return invalid("--target drives one server: name its strategy with exactly one --strategy");
        }
    }

    let revocation_probes = sc.probe.revocation_probes.unwrap_or(5);
    let revocation_max_wait = sc.probe.revocation_max_wait.map_or(Duration::from_secs(2), |d| d.0);
    let resolved_toml = toml::to_string(&sc).unwrap_or_default();
    Ok(RunPlan {
        name: loaded.name,
        description: loaded.description,
        file: loaded.file,
        variants,
        stop,
        warmup,
        users,
        timeout,
        mix,
        store: if args.target.is_some() { StoreChoice::Auto } else { store_plan.kind },
        cluster_nodes: store_plan.cluster_nodes,
        store_jitter: store_plan.jitter,
        outage: store_plan.outage,
        rotation: store_plan.rotation,
        target_url: args.target.clone(),
        admin_key: args.admin_key.clone(),
        out: args.out.clone(),
        thresholds: loaded.thresholds,
        revoked_fraction,
        tampered_fraction,
        revocation_probes,
        revocation_max_wait,
        progress: !args.no_progress,
        resolved_toml,
        availability_prober: sc.probe.availability.unwrap_or(false),
        store_down_pause: Some(sc.probe.store_down_pause.map_or(DEFAULT_STORE_DOWN_PAUSE, |d| d.0))
            .filter(|d| !d.is_zero()),
    })
}

/// How long the store is paused after each measured window unless the scenario says otherwise.
pub const DEFAULT_STORE_DOWN_PAUSE: Duration = Duration::from_millis(800);

/// The `[store]`, `[rotation]` and fail-open options, validated together.
struct StorePlan {
    kind: StoreChoice,
    cluster_nodes: usize,
    delay: Option<Duration>,
    jitter: Duration,
    outage: Option<Outage>,
    rotation: Option<RotationPlan>,
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
    if external && (needs_redis || kind == StoreChoice::Cluster) {
        return invalid(
            "store.delay, store.jitter, store.outage and a cluster store need targets started by the run (not --target)",
        );
    }
    if kind == StoreChoice::Auto && needs_redis {
        kind = StoreChoice::Redis; // a delay or an outage needs a real store: say so if it is missing
    }
    if needs_redis && kind == StoreChoice::Memory {
        return invalid("store.delay, store.jitter and store.outage need a Redis store (kind = \"redis\"), not memory");
    }
    if needs_redis && kind == StoreChoice::Cluster {
        return invalid(
            "store.delay, store.jitter and store.outage are for kind = \"redis\": a cluster's clients follow its \
             redirects to the nodes' own addresses, past a proxy",
        );
    }
    if so.cluster_nodes.is_some() && kind != StoreChoice::Cluster {
        return invalid("store.cluster_nodes needs kind = \"cluster\"");
    }
    let cluster_nodes = so.cluster_nodes.unwrap_or(3);
    if !(3..=16).contains(&cluster_nodes) {
        return invalid(format!(
            "store.cluster_nodes must be 3..=16 (Redis Cluster needs at least 3), got {cluster_nodes}"
        ));
    }
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
    let has = |k: StrategyKind| strategies.contains(&k);
    if sc.target.all.fail_open == Some(true) && !has(StrategyKind::JwtDenylist) {
        return invalid("target.fail_open applies to jwt-denylist only, and no jwt-denylist strategy is listed");
    }
    if sc.matrix.fail_open.is_some() && !has(StrategyKind::JwtDenylist) {
        return invalid("matrix.fail_open applies to jwt-denylist only, and no jwt-denylist strategy is listed");
    }
    let rotation = match &sc.rotation {
        None => None,
        Some(r) => {
            if !strategies.iter().any(|s| s.uses_jwt()) {
                return invalid("[rotation] rotates a JWT signing key: list at least one JWT strategy");
            }
            if r.at.0.is_zero() {
                return invalid("rotation.at must be more than 0");
            }
            within("rotation.at", r.at.0)?;
            Some(RotationPlan { at: r.at.0, overlap: r.overlap.map_or(Duration::ZERO, |d| d.0) })
        }
    };
    Ok(StorePlan {
        kind,
        cluster_nodes,
        delay: if needs_proxy { Some(so.delay.map_or(Duration::ZERO, |d| d.0)) } else { None },
        jitter: so.jitter.map_or(Duration::ZERO, |d| d.0),
        outage: so.outage,
        rotation,
    })
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

/// Which matrix keys change what a strategy does.
fn applies(key: &str, s: StrategyKind) -> bool {
    match key {
        "alg" | "pad_bytes" | "scopes" => s.uses_jwt(),
        "roles" | "authz" | "store.delay" => s != StrategyKind::None,
        "fail_open" => s == StrategyKind::JwtDenylist,
        "access_ttl" | "leeway" => s.uses_jwt(),
        _ => true,
    }
}

#[allow(clippy::too_many_arguments)]
fn expand(
    strategies: &[StrategyKind],
    sc: &Scenario,
    base: impl Fn(StrategyKind) -> TargetSettings,
    connections: usize,
    stages: Option<&[RateStage]>,
    duration: Duration,
    mode: Mode,
    base_delay: Option<Duration>,
) -> Result<Vec<Variant>, PlanError> {
    let m = &sc.matrix;
    // (key, values as text) for every swept key, in a fixed order.
    let mut axes: Vec<(&str, Vec<String>)> = Vec::new();
    let mut push = |key: &'static str, vals: Option<Vec<String>>| -> Result<(), PlanError> {
        if let Some(v) = vals {
            if v.is_empty() {
                return invalid(format!("matrix.{key} is empty"));
            }
            axes.push((key, v));
        }
        Ok(())
    };
    push("alg", m.alg.as_ref().map(|v| v.iter().map(|a| a.name().to_owned()).collect()))?;
    push("pad_bytes", m.pad_bytes.as_ref().map(|v| v.iter().map(ToString::to_string).collect()))?;
    push("roles", m.roles.as_ref().map(|v| v.iter().map(ToString::to_string).collect()))?;
    push("scopes", m.scopes.as_ref().map(|v| v.iter().map(ToString::to_string).collect()))?;
    push(
        "authz",
        m.authz.as_ref().map(|v| {
            v.iter().map(|a| if *a == AuthzSource::Store { "store".to_owned() } else { "claims".to_owned() }).collect()
        }),
    )?;
    push("rate", m.rate.as_ref().map(|v| v.iter().map(ToString::to_string).collect()))?;
    push("connections", m.connections.as_ref().map(|v| v.iter().map(ToString::to_string).collect()))?;
    push("fail_open", m.fail_open.as_ref().map(|v| v.iter().map(ToString::to_string).collect()))?;
    push(
        "store.delay",
        m.store.as_ref().and_then(|s| s.delay.as_ref()).map(|v| v.iter().map(|d| delay_coord(d.0)).collect()),
    )?;
    let durations = |v: &Option<Vec<crate::scenario::Dur>>| {
        v.as_ref().map(|v| v.iter().map(|d| crate::scenario::format_duration(d.0)).collect())
    };
    push("access_ttl", durations(&m.access_ttl))?;
    push("leeway", durations(&m.leeway))?;
    push(
        "store.outage_mode",
        m.store.as_ref().and_then(|s| s.outage_mode.as_ref()).map(|v| v.iter().map(|o| o.name().to_owned()).collect()),
    )?;
    if axes.iter().any(|(k, _)| *k == "store.outage_mode") && sc.store.as_ref().is_none_or(|s| s.outage.is_none()) {
        return invalid("matrix.store.outage_mode needs a [store.outage] table (when and how long)");
    }
    if axes.iter().any(|(k, _)| *k == "rate") && mode == Mode::Closed {
        return invalid("matrix.rate needs open loop (traffic.mode = \"open\")");
    }

    let mut out: Vec<Variant> = Vec::new();
    for &strategy in strategies {
        let relevant: Vec<&(&str, Vec<String>)> = axes.iter().filter(|(k, _)| applies(k, strategy)).collect();
        let mut combos: Vec<BTreeMap<String, String>> = vec![BTreeMap::new()];
        for (key, vals) in &relevant {
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    vals.iter().map(move |v| {
                        let mut c = c.clone();
                        c.insert((*key).to_owned(), v.clone());
                        c
                    })
                })
                .collect();
        }
        for coords in combos {
            // `[target]`, then `[target.<strategy>]`, then the matrix point: the matrix value wins.
            let mut target = base(strategy);
            let mut conns = connections;
            let mut rate: Option<f64> = None;
            let mut store_delay = base_delay;
            let mut outage_mode = None;
            for (k, v) in &coords {
                let bad = || PlanError::Invalid(format!("matrix.{k}: bad value `{v}`"));
                match k.as_str() {
                    "alg" => target.alg = Alg::ALL.into_iter().find(|a| a.name() == v).ok_or_else(bad)?,
                    "pad_bytes" => target.pad_bytes = v.parse().map_err(|_| bad())?,
                    "roles" => target.roles = v.parse().map_err(|_| bad())?,
                    "scopes" => target.scopes = v.parse().map_err(|_| bad())?,
                    "authz" => target.authz = if v == "store" { AuthzSource::Store } else { AuthzSource::Claims },
                    "rate" => rate = Some(v.parse().map_err(|_| bad())?),
                    "connections" => conns = v.parse().map_err(|_| bad())?,
                    "fail_open" => target.fail_open = v.parse().map_err(|_| bad())?,
                    "store.delay" => store_delay = Some(parse_duration(v).map_err(|_| bad())?),
                    "access_ttl" => target.access_ttl = Some(parse_duration(v).map_err(|_| bad())?),
                    "leeway" => target.leeway = parse_duration(v).map_err(|_| bad())?,
                    "store.outage_mode" => {
                        outage_mode = Some(if v == "kill" { OutageMode::Kill } else { OutageMode::Pause })
                    }
                    _ => {}
                }
            }
            if conns == 0 {
                return invalid("matrix.connections values must be >= 1");
            }
            if strategy != StrategyKind::JwtDenylist {
                target.fail_open = false;
            }
            if !strategy.uses_jwt() {
                target.rotation_overlap = None;
            }
            let schedule = match mode {
                Mode::Closed => Schedule::Closed { connections: conns },
                Mode::Open => {
                    let stages = match (rate, stages) {
                        (Some(r), _) => {
                            check_rate(r)?;
                            vec![RateStage { from_rate_per_sec: r, rate_per_sec: r, duration }]
                        }
                        (None, Some(s)) => s.to_vec(),
                        (None, None) => return invalid("open loop needs a rate"),
                    };
                    Schedule::Open { stages, connections: conns }
                }
            };
            let label = if coords.is_empty() {
                strategy.name().to_owned()
            } else {
                let c: Vec<String> = coords.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{} {}", strategy.name(), c.join(" "))
            };
            out.push(Variant { label, strategy, coords, target, schedule, store_delay, outage_mode });
        }
    }
    Ok(out)
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
