//! `authbench run`: for each strategy (and matrix variant) start a target as a child process (or
//! use `--target URL`), drive the traffic, read the collectors over the measured window, probe the
//! revocation window, and write the results directory, the terminal summary and the report.
//!
//! Ctrl-C stops the current traffic at once; what was measured is still written, marked
//! `interrupted: true`. A failing threshold makes the exit code 1.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use tokio::sync::watch;

use crate::collect::availability::{self, OutageWindow, Prober, RestartedRedis};
use crate::collect::cluster::RedisCluster;
use crate::collect::delay_proxy::DelayProxy;
use crate::collect::{self, RedisProcess, TargetProcess};
use crate::engine::record::{Op, Outcome, Recorder, outcomes_from};
use crate::engine::{Engine, EngineConfig, EngineOutput};
use crate::output::{self, summarize};
use crate::plan::{self, RunArgs, RunPlan, Variant};
use crate::progress::Progress;
use crate::results::{
    Errors, KillCost, OutageResult, Report, RevocationWindow, RotationResult, SCHEMA_VERSION, ScenarioInfo,
    ScheduleHealth, StoreDistance, StoreLoad, StrategyResult, ThresholdResult, TrafficInfo,
};
use crate::scenario::{OutageMode, StoreChoice};
use crate::targets::config::StrategyKind;

/// Driver CPU above this share of its cores means the driver may have been the bottleneck.
const DRIVER_SATURATED_PERCENT: f64 = 90.0;

/// Entry point of `authbench run`.
pub fn main(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let plan = plan::build(args)?;
    let external = plan.target_url.is_some();
    let cpu = collect::cpu_plan();
    let (target_cpu, driver_threads, pinning) = if external {
        let n = std::thread::available_parallelism().map_or(1, usize::from);
        (None, n, "external target: driver not pinned".to_owned())
    } else if let Some(t) = cpu.target_cpu {
        match collect::pin_current_process(&cpu.driver_cpus) {
            Ok(()) => (Some(t), cpu.driver_cpus.len().max(1), cpu.description.clone()),
            Err(e) => {
                tracing::warn!("could not pin the driver: {e:#}");
                (Some(t), cpu.driver_cpus.len().max(1), format!("{} (driver pinning failed: {e})", cpu.description))
            }
        }
    } else {
        (None, 1, cpu.description.clone())
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(driver_threads)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let command = std::env::args().map(|a| shell_quote(&a)).collect::<Vec<_>>().join(" ");
    rt.block_on(run_plan(plan, RunEnv { target_cpu, driver_threads, pinning, command }))
}

/// Where and how the driver runs.
#[derive(Debug, Clone)]
pub struct RunEnv {
    pub target_cpu: Option<usize>,
    pub driver_threads: usize,
    pub pinning: String,
    pub command: String,
}

/// Run a validated plan; returns the results directory and the report through the exit code path.
pub async fn run_plan(plan: RunPlan, env: RunEnv) -> anyhow::Result<ExitCode> {
    let (dir, report) = execute(&plan, &env).await?;
    output::note(&format!("\n{}", output::summary_table(&report)));
    for w in &report.warnings {
        output::note(&format!("warning: {w}"));
    }
    let unexpected: u64 = report.strategies.iter().map(|s| s.outcomes.unexpected_allow).sum();
    if unexpected > 0 {
        output::note(&format!(
            "!!! SECURITY: {unexpected} request(s) with a revoked or forged credential were ACCEPTED (unexpected_allow) !!!"
        ));
    }
    let mut failed = 0;
    for t in &report.thresholds {
        let actual = t.actual.map_or_else(|| "not measured".to_owned(), |a| format!("{a}"));
        output::note(&format!(
            "threshold {} {}: {} (actual {actual})",
            t.metric,
            t.condition,
            if t.passed { "pass" } else { "FAIL" }
        ));
        if !t.passed {
            failed += 1;
        }
    }
    output::note(&format!("results: {}", dir.display()));
    Ok(if failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Everything but the printing: run every variant and write the results directory.
pub async fn execute(plan: &RunPlan, env: &RunEnv) -> anyhow::Result<(PathBuf, Report)> {
    let started = SystemTime::now();
    let dir = plan
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(format!("{}-{}", plan.name, output::dir_stamp(started))));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            output::note("\ninterrupted: stopping and writing what was measured");
            let _ = stop_tx.send(true);
        }
    });

    let mut warnings = Vec::new();
    // The store.
    let mut stores = Stores::default();
    let store_kind = if plan.target_url.is_some() {
        "external".to_owned()
    } else if plan.store == StoreChoice::Cluster {
        anyhow::ensure!(collect::redis_server_available(), "store cluster: redis-server is not installed");
        stores.cluster = Some(
            RedisCluster::start(plan.cluster_nodes)
                .await
                .with_context(|| format!("starting a private {}-node Redis Cluster", plan.cluster_nodes))?,
        );
        "cluster".to_owned()
    } else {
        let want_redis = match plan.store {
            StoreChoice::Memory => false,
            StoreChoice::Redis | StoreChoice::Cluster => {
                anyhow::ensure!(
                    collect::redis_server_available(),
                    "store redis (needed for store.delay / store.outage too): redis-server is not installed"
                );
                true
            }
            StoreChoice::Auto => {
                let available = collect::redis_server_available();
                if !available {
                    warnings.push("redis-server not installed: targets used the in-process memory store".to_owned());
                }
                available
            }
        };
        if want_redis {
            stores.redis = Some(RedisProcess::start().await.context("starting a private redis-server")?);
            "redis".to_owned()
        } else {
            "memory".to_owned()
        }
    };
    output::note(&format!(
        "authbench run {}: {} variant(s), store {store_kind}, {} — results in {}",
        plan.name,
        plan.variants.len(),
        env.pinning,
        dir.display()
    ));

    let admin_key = match (&plan.target_url, &plan.admin_key) {
        (Some(_), Some(k)) => Some(k.clone()),
        (Some(_), None) => None,
        (None, _) => Some(random_hex(32)),
    };
    let exe = std::env::current_exe().context("locating the authbench executable")?;
    let mut strategies = Vec::new();
    let mut interrupted = false;
    for variant in &plan.variants {
        if *stop_rx.borrow() {
            interrupted = true;
            break;
        }
        let result =
            run_variant(plan, env, variant, &exe, &mut stores, admin_key.as_deref(), started, &dir, stop_rx.clone())
                .await
                .with_context(|| format!("strategy {}", variant.label))?;
        interrupted |= result.1;
        warnings.extend(result.2);
        strategies.push(result.0);
    }
    ctrl_c.abort();
    stores.stop().await;

    let tool = collect::tool_info();
    let first = plan.variants.first();
    let report_base = Report {
        schema: SCHEMA_VERSION,
        tool,
        scenario: ScenarioInfo {
            name: plan.name.clone(),
            file: plan.file.as_ref().map(|p| p.display().to_string()),
            description: plan.description.clone(),
            resolved_toml: plan.resolved_toml.clone(),
        },
        command: env.command.clone(),
        started_at: output::rfc3339(started),
        machine: collect::machine(&env.pinning),
        traffic: TrafficInfo {
            mode: first.map_or("closed", |v| v.schedule.mode_name()).to_owned(),
            rate_per_sec: first.and_then(|v| v.schedule.first_rate()),
            connections: first.map_or(0, |v| v.schedule.connections()),
            users: plan.users,
            warmup_s: plan.warmup.as_secs_f64(),
            duration_s: plan.measured_duration().map_or(0.0, |d| d.as_secs_f64()),
            mix: plan.mix.as_map(),
        },
        store_kind,
        interrupted,
        strategies,
        thresholds: Vec::new(),
        warnings,
    };
    let mut report = report_base;
    report.thresholds = evaluate_thresholds(plan, &report);
    output::write_report_json(&dir, &report)?;
    output::write_summary_csv(&dir, &report)?;
    output::write_run_readme(&dir, &report)?;
    render_report(&dir, &report);
    Ok((dir, report))
}

/// The scenario's thresholds against the report, in file order.
fn evaluate_thresholds(plan: &RunPlan, report: &Report) -> Vec<ThresholdResult> {
    plan.thresholds
        .iter()
        .map(|t| match crate::thresholds::Threshold::parse(&t.metric, &t.condition) {
            Ok(th) => th.evaluate(report),
            Err(e) => ThresholdResult {
                metric: t.metric.clone(),
                condition: format!("{} (line {}: {e})", t.condition, t.line),
                actual: None,
                passed: false,
            },
        })
        .collect()
}

/// The HTML/Markdown report and plots; a failure there does not lose the measurements.
fn render_report(dir: &Path, report: &Report) {
    if let Err(e) = crate::report::render(dir, report) {
        output::note(&format!("warning: the human report could not be rendered: {e:#}"));
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_variant(
    plan: &RunPlan,
    env: &RunEnv,
    variant: &Variant,
    exe: &Path,
    stores: &mut Stores,
    admin_key: Option<&str>,
    started: SystemTime,
    dir: &Path,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<(StrategyResult, bool, Vec<String>)> {
    let mut warnings = Vec::new();
    stores.flush().await.context("flushing the store between strategies")?;
    // The store at a distance: targets reach it through a delay proxy (snapshots go direct).
    let proxy = match (variant.store_delay, &stores.redis) {
        (Some(delay), Some(r)) => Some(
            DelayProxy::start(std::net::SocketAddr::from(([127, 0, 0, 1], r.port)), delay, plan.store_jitter)
                .await
                .context("starting the store delay proxy")?,
        ),
        _ => None,
    };
    let store_arg = match &proxy {
        Some(p) => format!("redis://{}", p.addr()),
        None => stores.target_arg(),
    };
    // Start the target (unless external).
    let target = match &plan.target_url {
        Some(_) => None,
        None => {
            let mut args: Vec<String> = vec![
                "target".into(),
                "--strategy".into(),
                variant.strategy.name().into(),
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--store".into(),
                store_arg,
            ];
            if let Some(k) = admin_key {
                args.push("--admin-key".into());
                args.push(k.into());
            }
            if env.target_cpu.is_some() {
                args.push("--worker-threads".into());
                args.push("1".into());
            }
            args.extend(variant.target.to_args());
            Some(TargetProcess::spawn(exe, &args, env.target_cpu).await.context("starting the target")?)
        }
    };
    let base_url = match (&plan.target_url, &target) {
        (Some(u), _) => u.trim_end_matches('/').to_owned(),
        (None, Some(t)) => t.base_url.clone(),
        (None, None) => anyhow::bail!("no target"),
    };
    let engine = Engine::new(EngineConfig {
        base_url: base_url.clone(),
        strategy: variant.strategy,
        schedule: variant.schedule.clone(),
        stop: plan.stop,
        warmup: plan.warmup,
        users: plan.users,
        mix: plan.mix,
        timeout: plan.timeout,
        admin_key: admin_key.map(str::to_owned),
        revoked_fraction: plan.revoked_fraction,
        tampered_fraction: plan.tampered_fraction,
        workers: env.driver_threads,
    })
    .await?;
    let total = plan.measured_duration().map(|d| d + plan.warmup);
    let progress = Progress::start(plan.progress, &variant.label, total, plan.warmup, engine.live());

    // Store outage and key rotation: a health prober next to the engine, and timers for the events.
    let rotation = plan.rotation.filter(|_| variant.strategy.uses_jwt());
    // `matrix.store.outage_mode`: this variant's mode in place of the table's.
    let variant_outage =
        plan.outage.map(|o| crate::scenario::Outage { mode: variant.outage_mode.unwrap_or(o.mode), ..o });
    let wants_prober = variant_outage.is_some() || rotation.is_some() || plan.availability_prober;
    let prober_creds = if wants_prober && variant.strategy != StrategyKind::None {
        Some(availability::ProberCredentials::login(&base_url, variant.strategy).await?)
    } else {
        None
    };
    let t0 = Instant::now();
    let measure_start = t0 + plan.warmup;
    let measure_end = plan.measured_duration().map(|d| measure_start + d);
    let outage_window = variant_outage.map(|o| OutageWindow { at: o.at.0, duration: o.duration.0 });
    let prober = match (prober_creds, measure_end) {
        (Some(c), Some(end)) => Some(Prober::spawn(c, &base_url, measure_start, end, outage_window)),
        _ => None,
    };
    let outage_task = match (variant_outage, &stores.redis) {
        (Some(o), Some(r)) => {
            let (pid, port, url) = (stores.redis_pid(), r.port, r.url.clone());
            Some(tokio::spawn(async move {
                tokio::time::sleep_until((measure_start + o.at.0).into()).await;
                // Kill mode: what the store held is what the kill loses.
                let keys = match o.mode {
                    OutageMode::Kill => collect::snapshot(&url).await.ok().map(|s| s.keys),
                    OutageMode::Pause => None,
                };
                availability::inject_outage(pid, port, o.mode, o.duration.0).await.map(|r| (r, keys))
            }))
        }
        _ => None,
    };
    let rotation_task = match (rotation, admin_key) {
        (Some(r), Some(key)) => {
            let (base, key) = (base_url.clone(), key.to_owned());
            Some(tokio::spawn(async move {
                tokio::time::sleep_until((measure_start + r.at).into()).await;
                let kid = availability::rotate_key(&base, &key).await;
                (Instant::now(), kid)
            }))
        }
        _ => None,
    };
    let st: &Stores = stores;
    let snap_before = async {
        tokio::time::sleep_until(measure_start.into()).await;
        Snapshots::take(st, target.as_ref(), &base_url).await
    };
    let (out, before) = tokio::join!(engine.run(t0, stop.clone()), snap_before);
    let out = out?;
    let mut outage_ran = false;
    let mut keys_lost = None;
    if let Some(task) = outage_task {
        match task.await {
            Ok(Ok((restarted, keys))) => {
                outage_ran = true;
                keys_lost = keys;
                if let Some(r) = restarted {
                    stores.restarted = Some(r);
                    warnings.push(format!(
                        "{}: the store was killed and restarted empty: its load figures count from the restart",
                        variant.label
                    ));
                }
            }
            Ok(Err(e)) => warnings.push(format!("{}: the store outage could not be injected: {e:#}", variant.label)),
            Err(e) => warnings.push(format!("{}: the store outage task failed: {e}", variant.label)),
        }
    }
    let rotated = match rotation_task {
        Some(task) => match task.await {
            Ok((at, Ok(kid))) => Some((at, kid)),
            Ok((_, Err(e))) => {
                warnings.push(format!("{}: the key rotation failed: {e:#}", variant.label));
                None
            }
            Err(e) => {
                warnings.push(format!("{}: the key rotation task failed: {e}", variant.label));
                None
            }
        },
        None => None,
    };
    let probe_log = match prober {
        Some(p) => Some(p.finish().await),
        None => None,
    };
    let after = Snapshots::take(stores, target.as_ref(), &base_url).await;

    // The revocation window, probed directly (not after an interrupt).
    let revocation = if !out.interrupted && plan.revocation_probes > 0 && variant.strategy != StrategyKind::None {
        progress.message("probing the revocation window");
        collect::probe(
            &base_url,
            variant.strategy,
            admin_key.unwrap_or(""),
            plan.revocation_probes,
            plan.revocation_max_wait,
            variant.target.leeway,
        )
        .await
    } else {
        RevocationWindow::default()
    };
    let after_probes = match revocation.probes {
        0 => None,
        _ => collect::accounting::read_counters(&base_url).await.ok(),
    };
    let store_down = store_down_hook(plan, stores, target.is_some(), &base_url, out.interrupted).await;
    progress.finish(if out.interrupted { "interrupted" } else { "done" });
    if let Some(t) = target
        && let Err(e) = t.stop().await
    {
        warnings.push(format!("{}: stopping the target: {e:#}", variant.label));
    }
    if let Some(p) = proxy {
        p.stop().await;
    }

    let mut result = strategy_result(variant, &out, &before, &after, revocation, env, &mut warnings);
    let prober_requests = probe_log.as_ref().map_or(0, availability::ProbeLog::requests);
    let mut accounting = collect::accounting::reconcile(
        before.counters.as_ref(),
        after.counters.as_ref(),
        result.requests,
        prober_requests,
    );
    accounting.revocation_probe_requests_after_window =
        after_probes.zip(after.counters.as_ref()).map(|(p, a)| p.requests.saturating_sub(a.requests));
    collect::accounting::apply(&mut result, accounting);
    result.store_down = store_down_result(store_down, variant, &mut warnings);
    result.store_distance = variant
        .store_delay
        .map(|d| StoreDistance { delay_ms: d.as_secs_f64() * 1e3, jitter_ms: plan.store_jitter.as_secs_f64() * 1e3 });
    if let (Some(o), Some(log), true) = (variant_outage, &probe_log, outage_ran) {
        result.outage = Some(OutageResult {
            mode: o.mode.name().to_owned(),
            at_s: o.at.0.as_secs_f64(),
            duration_s: o.duration.0.as_secs_f64(),
            fail_open: variant.target.fail_open,
            before: log.phases[0].clone(),
            during: log.phases[1].clone(),
            after: log.phases[2].clone(),
            first_failure_ms: log.first_failure_ms,
            recovery_ms: log.recovery_ms,
            unexpected_allow: result.outcomes.unexpected_allow,
            revoked_allowed_during: log.revoked_probed.then(|| log.revoked_phases[1].get("200").copied().unwrap_or(0)),
            credential_lost: log.credential_lost,
            kill_cost: (o.mode == OutageMode::Kill).then(|| kill_cost(&out, o.at.0, keys_lost, &result)),
        });
    }
    if let (Some(r), Some((rotated_at, kid))) = (rotation, rotated) {
        let logins = logins_per_second(&out);
        let at_s = r.at.as_secs() as usize;
        let before: Vec<u64> = logins.iter().take(at_s).copied().collect();
        result.rotation = Some(RotationResult {
            at_s: r.at.as_secs_f64(),
            overlap_s: r.overlap.as_secs_f64(),
            kid,
            old_token_rejected_after_ms: probe_log
                .as_ref()
                .and_then(|l| l.first_401_sent)
                .map(|t| t.saturating_duration_since(rotated_at).as_secs_f64() * 1e3),
            logins_per_s_before: median(&before),
            logins_peak_per_s_after: logins.iter().skip(at_s).copied().max(),
            logins_per_second: logins,
        });
    }
    write_variant_files(dir, variant, &out, started)?;
    Ok((result, out.interrupted, warnings))
}

/// The store-down check after the window, when the plan asks for one and the run owns a private
/// redis-server (not after an interrupt, nor when an outage inside the window already measured it).
async fn store_down_hook(
    plan: &RunPlan,
    stores: &Stores,
    own_target: bool,
    base_url: &str,
    interrupted: bool,
) -> Option<anyhow::Result<crate::results::StoreDownCheck>> {
    let pause = plan.store_down_pause.filter(|_| own_target && !interrupted && plan.outage.is_none())?;
    let redis = stores.redis.as_ref()?;
    let check_plan =
        collect::store_down::StoreDownPlan { store_pid: stores.redis_pid(), store_port: redis.port, pause };
    Some(collect::store_down::check(base_url, check_plan).await)
}

/// The store-down check as a result, compared with what the strategy is expected to do.
fn store_down_result(
    check: Option<anyhow::Result<crate::results::StoreDownCheck>>,
    variant: &Variant,
    warnings: &mut Vec<String>,
) -> Option<crate::results::StoreDownCheck> {
    match check? {
        Ok(mut c) => {
            let expected = collect::store_down::expected_behaviour(variant.strategy);
            if let Some(w) = collect::store_down::compare_with_expected(&mut c, expected) {
                warnings.push(format!("{}: {w}", variant.label));
            }
            Some(c)
        }
        Err(e) => {
            warnings.push(format!("{}: the store-down check failed: {e:#}", variant.label));
            None
        }
    }
}

/// What a kill-mode outage at `at` cost: the keys the store lost and the re-login storm.
fn kill_cost(out: &EngineOutput, at: Duration, store_keys_lost: Option<u64>, result: &StrategyResult) -> KillCost {
    let logins = logins_per_second(out);
    let at_s = at.as_secs() as usize;
    let before: Vec<u64> = logins.iter().take(at_s).copied().collect();
    KillCost {
        store_keys_lost,
        unexpected_deny: result.outcomes.unexpected_deny,
        logins_per_s_before: median(&before),
        logins_peak_per_s_after: logins.iter().skip(at_s).copied().max(),
        logins_per_second: logins,
    }
}

/// The run's store: a private redis-server (possibly restarted after a kill-mode outage) or a
/// private Redis Cluster; neither for the memory store and `--target`.
#[derive(Default)]
struct Stores {
    redis: Option<RedisProcess>,
    cluster: Option<RedisCluster>,
    /// After a kill-mode outage: the fresh server now on the redis port.
    restarted: Option<RestartedRedis>,
}

impl Stores {
    /// What the targets get as `--store`.
    fn target_arg(&self) -> String {
        match (&self.redis, &self.cluster) {
            (Some(r), _) => r.url.clone(),
            (None, Some(c)) => c.urls(),
            (None, None) => "memory".to_owned(),
        }
    }

    /// The process now serving the redis port.
    fn redis_pid(&self) -> u32 {
        self.restarted.as_ref().map_or_else(|| self.redis.as_ref().map_or(0, RedisProcess::pid), RestartedRedis::pid)
    }

    async fn flush(&self) -> anyhow::Result<()> {
        if let Some(r) = &self.redis {
            r.flush().await?;
        }
        if let Some(c) = &self.cluster {
            c.flush().await?;
        }
        Ok(())
    }

    async fn stop(self) {
        if let Some(r) = self.redis {
            r.stop().await;
        }
        if let Some(c) = self.cluster {
            c.stop().await;
        }
        drop(self.restarted);
    }
}

/// Median of per-second counts (robust to the first second's burst of initial logins).
fn median(v: &[u64]) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_unstable();
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2] as f64),
        _ => Some((v[n / 2 - 1] + v[n / 2]) as f64 / 2.0),
    }
}

/// Logins (any answer) per second of the measured window, from the engine's per-second histograms.
fn logins_per_second(out: &EngineOutput) -> Vec<u64> {
    let mut per: Vec<u64> = Vec::new();
    for f in &out.intervals {
        let Some(bytes) = f.ops.get(Op::Login as usize).filter(|b| !b.is_empty()) else { continue };
        let n = hdrhistogram::serialization::Deserializer::new()
            .deserialize::<u64, _>(&mut &bytes[..])
            .map_or(0, |h: hdrhistogram::Histogram<u64>| h.len());
        let i = f.index as usize;
        if per.len() <= i {
            per.resize(i + 1, 0);
        }
        per[i] += n;
    }
    let secs = out.measured.as_secs_f64().ceil() as usize;
    if per.len() < secs {
        per.resize(secs, 0);
    }
    per
}

/// Collector readings at one instant.
struct Snapshots {
    redis: Option<collect::InfoSnapshot>,
    /// The target's own `/metrics` counters (requests served, store operations); None if unread.
    counters: Option<collect::accounting::TargetCounters>,
    memory_ops: Option<BTreeMap<String, u64>>,
    target_cpu: Option<Duration>,
    driver_cpu: Duration,
    at: Instant,
}

impl Snapshots {
    async fn take(stores: &Stores, target: Option<&TargetProcess>, base_url: &str) -> Snapshots {
        let at = Instant::now();
        let driver_cpu = collect::self_cpu_time();
        let target_cpu = target.and_then(|t| t.cpu_time().ok());
        let redis_snap = match (&stores.redis, &stores.cluster) {
            (Some(r), _) => collect::redis::snapshot(&r.url).await.ok(),
            (None, Some(c)) => c.snapshot_all().await.ok(),
            (None, None) => None,
        };
        let counters = collect::accounting::read_counters(base_url).await.ok();
        let memory_ops = if stores.redis.is_none() && stores.cluster.is_none() && target.is_some() {
            counters.as_ref().map(|c| c.store_ops.clone())
        } else {
            None
        };
        Snapshots { redis: redis_snap, counters, memory_ops, target_cpu, driver_cpu, at }
    }
}

fn strategy_result(
    variant: &Variant,
    out: &EngineOutput,
    before: &Snapshots,
    after: &Snapshots,
    revocation: RevocationWindow,
    env: &RunEnv,
    warnings: &mut Vec<String>,
) -> StrategyResult {
    let rec: &Recorder = &out.recorder;
    let secs = out.measured.as_secs_f64().max(1e-9);
    let requests = rec.requests();
    let counts = rec.outcomes();
    let outcomes = outcomes_from(&counts);
    let ok: u64 = counts[Outcome::ExpectedAllow as usize] + counts[Outcome::ExpectedDeny as usize];
    let mut latency_us = BTreeMap::new();
    let mut service_time_us = BTreeMap::new();
    for op in Op::ALL {
        let s = &rec.ops[op as usize];
        if !s.latency.is_empty() {
            latency_us.insert(op.name().to_owned(), summarize(&s.latency));
            service_time_us.insert(op.name().to_owned(), summarize(&s.service));
        }
    }
    let latency_by_outcome_us = Outcome::ALL
        .iter()
        .filter_map(|o| rec.api_by_outcome[*o as usize].as_ref().map(|h| (o.name().to_owned(), summarize(h))))
        .collect();
    let store = match (&before.redis, &after.redis, &before.memory_ops, &after.memory_ops) {
        (Some(b), Some(a), _, _) => collect::store_load(b, a, requests, rec.logins_ok),
        (_, _, Some(b), Some(a)) => collect::redis::store_load_from_metrics(b, a, requests),
        _ => StoreLoad::default(),
    };
    let target_cpu_us_per_request = match (before.target_cpu, after.target_cpu) {
        (Some(b), Some(a)) if requests > 0 => Some(a.saturating_sub(b).as_secs_f64() * 1e6 / requests as f64),
        _ => None,
    };
    let wall = after.at.saturating_duration_since(before.at).as_secs_f64().max(1e-9);
    let driver_cpu_percent = after.driver_cpu.saturating_sub(before.driver_cpu).as_secs_f64() / wall * 100.0;
    let driver_cores = env.driver_threads.max(1) as f64;
    if driver_cpu_percent > DRIVER_SATURATED_PERCENT * driver_cores {
        warnings.push(format!(
            "{}: the driver used {driver_cpu_percent:.0}% CPU of its {driver_cores} core(s): it may have been the bottleneck",
            variant.label
        ));
    }
    let achieved = requests as f64 / secs;
    if let Some(target) = out.target_rate_per_sec
        && achieved < 0.95 * target
    {
        warnings.push(format!(
            "{}: achieved {achieved:.0} req/s of the {target:.0} req/s asked ({} late starts): the target (or too few \
             connections) could not keep up",
            variant.label, rec.late_starts
        ));
    }
    if outcomes.unexpected_allow > 0 {
        warnings.push(format!(
            "{}: SECURITY: {} request(s) with a revoked or forged credential were accepted",
            variant.label, outcomes.unexpected_allow
        ));
    }
    let bytes_n = rec.bytes_samples.max(1) as f64;
    StrategyResult {
        name: variant.label.clone(),
        strategy: variant.strategy.name().to_owned(),
        variant: variant.coords.clone(),
        requests,
        throughput_rps: achieved,
        success_rps: ok as f64 / secs,
        failure_rps: (requests - ok) as f64 / secs,
        errors: Errors { total: rec.errors.values().sum(), by_class: rec.errors.clone() },
        outcomes,
        latency_us,
        service_time_us,
        latency_by_outcome_us,
        credential_bytes: rec.credential_bytes_sum as f64 / bytes_n,
        request_header_bytes: rec.header_bytes_sum as f64 / bytes_n,
        store,
        target_cpu_us_per_request,
        revocation_window_ms: revocation,
        schedule: ScheduleHealth {
            target_rate_per_sec: out.target_rate_per_sec,
            achieved_rate_per_sec: achieved,
            late_starts: rec.late_starts,
            max_lag_us: rec.max_lag_us,
            driver_cpu_percent: Some(driver_cpu_percent),
        },
        timeline: out.intervals.iter().map(|i| i.point.clone()).collect(),
        stages: out.stages.clone(),
        store_distance: None,
        outage: None,
        rotation: None,
        requests_accounting: None,
        store_down: None,
    }
}

fn write_variant_files(dir: &Path, variant: &Variant, out: &EngineOutput, started: SystemTime) -> anyhow::Result<()> {
    let rec = &out.recorder;
    let ops: Vec<_> =
        Op::ALL.iter().map(|op| (*op, &rec.ops[*op as usize].latency, &rec.ops[*op as usize].service)).collect();
    output::write_histograms(dir, &variant.label, &ops)?;
    output::write_interval_log(dir, &variant.label, started, &out.intervals)?;
    Ok(())
}

/// `n` random hex characters (the admin key handed to the targets this run starts).
fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n.div_ceil(2)];
    // The OS CSPRNG when readable; the key only guards a loopback target during a benchmark.
    if std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes)).is_err() {
        bytes.iter_mut().for_each(|b| *b = fastrand::u8(..));
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()[..n].to_owned()
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
