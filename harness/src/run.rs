//! `authbench run`: for each strategy (and matrix variant) start a target as a child process (or
//! use `--target URL`), drive the traffic, read the collectors over the measured window, probe the
//! revocation window, and write the results directory, the terminal summary and the report.
//!
//! Ctrl-C stops the current traffic at once; what was measured is still written, marked
//! `interrupted: true`. A failing threshold makes the exit code 1.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use anyhow::Context;
use hdrhistogram::Histogram;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::collect::accounting::TargetCounters;
use crate::collect::availability::{self, OutageWindow, ProbeLog, Prober};
use crate::collect::redis::InfoSnapshot;
use crate::collect::{self, Snapshots};
use crate::engine::record::{ClientKind, Op, Outcome, Recorder, outcomes_from};
use crate::engine::transport::WireSettings;
use crate::engine::{Engine, EngineConfig, EngineOutput};
use crate::environment::{self, Environment, OutageEnd, Store, VariantEnv};
use crate::output::{self, summarize};
use crate::plan::{self, RotationPlan, RunArgs, RunPlan, Variant};
use crate::progress::Progress;
use crate::report::{OpLatency, RunLatency};
use crate::results::LatencySummary;
use crate::results::{
    Errors, KillCost, OutageResult, PartInfo, PartStrategy, Report, RevocationWindow, RotationResult, SCHEMA_VERSION,
    ScenarioInfo, ScheduleHealth, StoreDistance, StoreDownCheck, StrategyResult, TargetReading, ThresholdResult,
    TrafficInfo, WireBytes,
};
use crate::scenario::{Outage, OutageMode};
use crate::targets::strategy::profile::Clients;

/// Driver CPU above this share of its cores means the driver may have been the bottleneck.
const DRIVER_SATURATED_PERCENT: f64 = 90.0;

/// Entry point of `authbench run`.
pub fn main(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let plan = plan::build(args)?;
    if args.dry_run {
        print!("{}", crate::part::describe(&plan));
        println!("dry run: the plan is valid; nothing was started");
        return Ok(ExitCode::SUCCESS);
    }
    let external = !plan.targets.is_empty();
    let cpu = environment::cpu_plan();
    let (target_cpu, driver_threads, pinning) = if external {
        let n = std::thread::available_parallelism().map_or(1, usize::from);
        (None, n, "external target: driver not pinned".to_owned())
    } else if let Some(t) = cpu.target_cpu {
        match environment::pin_current_process(&cpu.driver_cpus) {
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
    let mut environment = Environment::start(plan, env.target_cpu, &mut warnings).await?;
    output::note(&format!(
        "authbench run {}: {} variant(s), store {}, {} — results in {}",
        plan.name,
        plan.variants.len(),
        environment.store_kind,
        env.pinning,
        dir.display()
    ));
    let mut done = RunSoFar { runs: vec![Vec::new(); plan.variants.len()], ..RunSoFar::default() };
    // With --repeat N: A B C, A B C, ... so slow drift of the machine falls on every variant alike.
    'repetitions: for rep in 1..=plan.repeat {
        // Each repetition's histogram files go to repeats/<k>/ (a single run: the directory itself).
        let rep_dir = if plan.repeat > 1 { dir.join("repeats").join(rep.to_string()) } else { dir.clone() };
        for (index, variant) in plan.variants.iter().enumerate() {
            if *stop_rx.borrow() {
                done.interrupted = true;
                break 'repetitions;
            }
            let ctx = VariantCtx { plan, env, variant, dir: &rep_dir, started };
            let v = ctx
                .run(&mut environment, stop_rx.clone())
                .await
                .with_context(|| format!("strategy {} (repetition {rep} of {})", variant.label, plan.repeat))?;
            let tag = if plan.repeat > 1 { format!("repetition {rep}: ") } else { String::new() };
            done.add(index, v, &tag, &mut warnings);
        }
    }
    ctrl_c.abort();
    let store_kind = environment.store_kind;
    environment.stop().await;

    let mut strategies = done
        .runs
        .into_iter()
        .filter(|reps| !reps.is_empty())
        .map(crate::repeats::combine)
        .collect::<Result<Vec<_>, _>>()?;
    crate::capacity::annotate(plan.capacity, &plan.variants, &mut strategies);
    let mut report = report_of(plan, env, started, store_kind, done.interrupted, strategies, warnings);
    report.thresholds = evaluate_thresholds(plan, &report);
    report.part = plan.part.map(|p| part_info(plan, p, started, done.part_strategies));
    output::write_report_json(&dir, &report)?;
    output::write_summary_csv(&dir, &report)?;
    output::write_run_readme(&dir, &report)?;
    if let Err(e) = crate::report::render_run(&dir, &report, &done.latency) {
        output::note(&format!("warning: the human report could not be rendered: {e:#}"));
    }
    Ok((dir, report))
}

/// What the variants run so far measured.
#[derive(Default)]
struct RunSoFar {
    /// Every repetition of each variant, by the variant's index in the plan (one without --repeat).
    runs: Vec<Vec<StrategyResult>>,
    /// Each variant's latency histograms by operation, for the report's full latency curves (the
    /// first repetition's with --repeat).
    latency: RunLatency,
    interrupted: bool,
    /// Each variant's window on the wall clock and byte sums, for a part's `report.json` (the
    /// first repetition's; parts do not repeat).
    part_strategies: BTreeMap<String, PartStrategy>,
}

impl RunSoFar {
    /// Records variant `index`'s result; `tag` prefixes its warnings (`repetition 2: `).
    fn add(&mut self, index: usize, v: VariantDone, tag: &str, warnings: &mut Vec<String>) {
        self.interrupted |= v.interrupted;
        warnings.extend(v.warnings.into_iter().map(|w| format!("{tag}{w}")));
        self.latency.entry(v.result.name.clone()).or_insert(v.latency);
        self.part_strategies.entry(v.result.name.clone()).or_insert(v.part);
        self.runs[index].push(v.result);
    }
}

/// The report of a finished run, thresholds not yet evaluated.
fn report_of(
    plan: &RunPlan,
    env: &RunEnv,
    started: SystemTime,
    store_kind: &str,
    interrupted: bool,
    strategies: Vec<StrategyResult>,
    warnings: Vec<String>,
) -> Report {
    let first = plan.variants.first();
    Report {
        schema: SCHEMA_VERSION,
        tool: collect::tool_info(),
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
            instances: plan.instances,
        },
        store_kind: store_kind.to_owned(),
        interrupted,
        strategies,
        thresholds: Vec::new(),
        warnings,
        part: None,
        parts: Vec::new(),
    }
}

/// What identifies this part of a split run for `authbench merge`.
fn part_info(
    plan: &RunPlan,
    part: crate::part::PartSpec,
    started: SystemTime,
    strategies: BTreeMap<String, PartStrategy>,
) -> PartInfo {
    PartInfo {
        k: part.k,
        n: part.n,
        scenario_hash: crate::part::scenario_hash(&plan.resolved_toml),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        build_id: crate::part::build_id(),
        started_unix_ms: unix_ms(started),
        ended_unix_ms: unix_ms(SystemTime::now()),
        strategies,
    }
}

/// Milliseconds since the Unix epoch (0 for a clock before it).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
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

/// One variant's run: what it needs from the whole run.
struct VariantCtx<'a> {
    plan: &'a RunPlan,
    env: &'a RunEnv,
    variant: &'a Variant,
    /// The results directory (the variant's exports go to `hist/<label>/`).
    dir: &'a Path,
    /// Start of the whole run: the interval logs' base time.
    started: SystemTime,
}

/// What one variant gives the run.
struct VariantDone {
    result: StrategyResult,
    latency: OpLatency,
    /// The window on the wall clock and the byte sums (for a part's `report.json`).
    part: PartStrategy,
    interrupted: bool,
    warnings: Vec<String>,
}

/// What the drive phase measured.
struct Driven {
    out: EngineOutput,
    /// Collector readings at the start and the end of the measured window.
    before: Snapshots,
    after: Snapshots,
    /// The target's `/metrics` counters at both ends, even where `before`/`after` drop them (a
    /// split run): a part keeps them for `merge`.
    target_readings: (Option<TargetCounters>, Option<TargetCounters>),
    /// The observed store's `INFO` at both ends, kept the same way (`--observe-store`).
    store_readings: (Option<InfoSnapshot>, Option<InfoSnapshot>),
    /// What the availability prober saw (store outage, key rotation).
    probe_log: Option<ProbeLog>,
    /// Whether the store outage was injected (it is reported only then).
    outage_ran: bool,
    /// Kill mode: the keys the store held when it was killed (what the kill lost).
    keys_lost: Option<u64>,
    /// When the signing key was rotated, and the new key id.
    rotated: Option<(Instant, Option<String>)>,
    /// What the Sentinel failover did and forgot (`[store.failover]`).
    failover: Option<crate::results::FailoverResult>,
    /// Start of the measured window on the wall clock.
    window_start_wall: SystemTime,
}

impl VariantCtx<'_> {
    /// The phases: start the variant's environment, drive, probe the revocation window, stop the
    /// environment, assemble the result and write the exports.
    async fn run(&self, environment: &mut Environment, stop: watch::Receiver<bool>) -> anyhow::Result<VariantDone> {
        let mut warnings = Vec::new();
        let venv = environment.start_variant(self.variant).await?;
        let (driven, progress) = self.drive(environment, &venv, stop, &mut warnings).await?;
        let admin_key = environment.admin_key.as_deref();
        let revocation = self.probe_revocation(&venv.urls, admin_key, &driven, &progress).await;
        let after_window = self.after_window(environment, &venv, &driven, revocation.probes).await;
        progress.finish(if driven.out.interrupted { "interrupted" } else { "done" });
        if let Err(e) = venv.stop().await {
            warnings.push(format!("{}: stopping the target: {e:#}", self.variant.label));
        }
        let result = self.assemble(&driven, revocation, after_window, &mut warnings);
        self.write_exports(&driven.out)?;
        let interrupted = driven.out.interrupted;
        let rec = &driven.out.recorder;
        let start_ms = unix_ms(driven.window_start_wall);
        let window_ms = driven.out.measured.as_millis() as u64;
        let part = PartStrategy {
            window_start_unix_ms: start_ms,
            window_ms,
            credential_bytes_sum: rec.credential_bytes_sum,
            header_bytes_sum: rec.header_bytes_sum,
            bytes_samples: rec.bytes_samples,
            target_start: driven.target_readings.0.as_ref().map(|c| target_reading(c, start_ms)),
            target_end: driven.target_readings.1.as_ref().map(|c| target_reading(c, start_ms + window_ms)),
            store_start: driven.store_readings.0.clone(),
            store_end: driven.store_readings.1.clone(),
        };
        Ok(VariantDone { result, latency: latency_by_op(driven.out), part, interrupted, warnings })
    }

    /// Drive phase: the engine's traffic, with the availability prober and the timed events (store
    /// outage, key rotation) beside it, and the collectors read at both ends of the measured window.
    async fn drive(
        &self,
        environment: &mut Environment,
        venv: &VariantEnv,
        stop: watch::Receiver<bool>,
        warnings: &mut Vec<String>,
    ) -> anyhow::Result<(Driven, Progress)> {
        let (plan, variant) = (self.plan, self.variant);
        let admin_key = environment.admin_key.as_deref();
        let engine = Engine::new(self.engine_config(&venv.urls.join(","), admin_key)).await?;
        let total = plan.measured_duration().map(|d| d + plan.warmup);
        let progress = Progress::start(plan.progress, &variant.label, total, plan.warmup, engine.live());
        let rotation = plan.rotation.filter(|_| variant.strategy.uses_jwt());
        let outage = self.outage();
        let wants_prober = outage.is_some() || rotation.is_some() || plan.availability_prober;
        let prober_creds = if wants_prober && variant.strategy.profile().has_credential() {
            Some(availability::ProberCredentials::login(&venv.urls, variant.strategy).await?)
        } else {
            None
        };
        let failover = self.prepare_failover(environment, venv).await?;
        let (t0, t0_wall) = (Instant::now(), SystemTime::now());
        let window = Window::new(t0, plan, outage);
        let failover =
            failover.map(|(p, h, s)| tokio::spawn(collect::failover::run(p, h, s, window.start + s.failover.at.0)));
        let prober = match (prober_creds, window.end) {
            (Some(c), Some(end)) => Some(Prober::spawn(c, &venv.base_url, window.start, end, window.outage)),
            _ => None,
        };
        let events = TimedEvents::schedule(&environment.store, venv, admin_key, window.start, outage, rotation);
        let source = environment.store.source(venv.target.is_some());
        let target_pids = venv.pids();
        // Own instances are all read and summed; of several external targets, the first (below).
        let readable = if target_pids.is_empty() { &venv.urls[..1] } else { &venv.urls[..] };
        let snap_before = async {
            tokio::time::sleep_until(window.start.into()).await;
            Snapshots::take(&source, &target_pids, readable).await
        };
        let (out, mut before) = tokio::join!(engine.run(t0, stop), snap_before);
        let out = out?;
        let (outage_ran, keys_lost, rotated) = events.finish(&variant.label, &mut environment.store, warnings).await;
        let failover = join_failover(failover, &variant.label, warnings).await;
        let probe_log = match prober {
            Some(p) => Some(p.finish().await),
            None => None,
        };
        let mut after = Snapshots::take(&source, &target_pids, readable).await;
        // Kept for `merge`, which reads the shared target over the whole split run.
        let target_readings = (before.counters.clone(), after.counters.clone());
        let store_readings = (before.redis.clone(), after.redis.clone());
        if plan.part.is_some() {
            // The observed store served every part: its counters are merged, not divided here.
            (before.redis, after.redis) = (None, None);
        }
        if plan.part.is_some() || (target_pids.is_empty() && venv.urls.len() > 1) {
            // A target shared with other parts, or several targets: one target's /metrics does not
            // count this driver's requests (nor its CPU this driver's load alone), so the driver's
            // own count divides and target CPU is left to `merge`.
            (before.counters, after.counters) = (None, None);
            (before.target_cpu, after.target_cpu) = (None, None);
        }
        let window_start_wall = t0_wall + plan.warmup;
        let driven = Driven {
            out,
            before,
            after,
            target_readings,
            store_readings,
            probe_log,
            outage_ran,
            keys_lost,
            rotated,
            failover,
            window_start_wall,
        };
        Ok((driven, progress))
    }

    /// `[store.failover]`: the forget probes' users logged in (before the window) and what the
    /// failover task needs; `None` without a failover or a Sentinel group.
    async fn prepare_failover(
        &self,
        environment: &Environment,
        venv: &VariantEnv,
    ) -> anyhow::Result<Option<FailoverStart>> {
        let (Some(failover), Some(handles)) = (self.failover(), environment.store.failover_handles()) else {
            return Ok(None);
        };
        let max_lag_s = failover.min_replicas_max_lag.unwrap_or(collect::failover::DEFAULT_MAX_LAG_S);
        environment
            .store
            .set_min_replicas(failover.min_replicas_to_write.unwrap_or(0), max_lag_s)
            .await
            .context("setting min-replicas-to-write on the data nodes")?;
        let settings =
            collect::failover::FailoverSettings { failover, wait_replicas: self.variant.target.store_wait_replicas };
        let admin_key = environment.admin_key.as_deref().unwrap_or("");
        let prepared = collect::failover::prepare(
            &venv.base_url,
            self.variant.strategy,
            admin_key,
            &self.plan.user_prefix,
            settings.probes(),
        )
        .await
        .context("logging in the failover probes' users")?
        .watch_more(handles.watches().saturating_sub(1))
        .await
        .context("logging in the failover poller's users")?;
        Ok(Some((prepared, handles, settings)))
    }

    /// The run's `[store.failover]` with this variant's matrix values (mode, min-replicas).
    fn failover(&self) -> Option<crate::scenario::Failover> {
        let v = self.variant;
        self.plan.failover.map(|f| crate::scenario::Failover {
            mode: v.failover_mode.unwrap_or(f.mode),
            min_replicas_to_write: v.min_replicas_to_write.or(f.min_replicas_to_write),
            ..f
        })
    }

    /// The run's `[store.outage]`, in this variant's `matrix.store.outage_mode` if it sweeps one.
    fn outage(&self) -> Option<Outage> {
        self.plan.outage.map(|o| Outage { mode: self.variant.outage_mode.unwrap_or(o.mode), ..o })
    }

    /// After-window phase: the target's counters after the revocation probes (they fall outside
    /// the window), then the store-down check (a short store pause, so it skews nothing measured).
    async fn after_window(
        &self,
        environment: &Environment,
        venv: &VariantEnv,
        driven: &Driven,
        revocation_probes: u64,
    ) -> AfterWindow {
        let counters = match revocation_probes {
            0 => None,
            _ => collect::accounting::read_counters(&venv.base_url).await.ok(),
        };
        let store_down = self.store_down(environment, venv, driven.out.interrupted).await;
        AfterWindow { counters, store_down }
    }

    /// The store-down check, when the plan asks for one, the run started the target and owns a
    /// private redis-server (not after an interrupt, nor when an outage in the window measured it).
    async fn store_down(
        &self,
        environment: &Environment,
        venv: &VariantEnv,
        interrupted: bool,
    ) -> Option<anyhow::Result<StoreDownCheck>> {
        let plan = self.plan;
        let pause = plan.store_down_pause.filter(|_| venv.target.is_some() && !interrupted && plan.outage.is_none())?;
        let (store_pid, store_port) = environment.store.redis_process()?;
        let check_plan = collect::store_down::StoreDownPlan {
            store_pid,
            store_port,
            pause,
            transport: self.variant.strategy.profile().transport,
        };
        Some(collect::store_down::check(&venv.base_url, check_plan).await)
    }

    /// Users of a second client kind: the variant's share (`matrix`), else `[traffic]`'s, of the
    /// users, where the strategy has that kind (`clients`); none elsewhere.
    fn users_of(&self, clients: Clients, variant_share: Option<f64>, traffic_share: f64) -> usize {
        if self.variant.strategy.profile().clients != clients {
            return 0;
        }
        (variant_share.unwrap_or(traffic_share) * self.plan.users as f64).round() as usize
    }

    fn engine_config(&self, base_url: &str, admin_key: Option<&str>) -> EngineConfig {
        let (plan, variant) = (self.plan, self.variant);
        EngineConfig {
            base_url: base_url.to_owned(),
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
            legacy_users: self.users_of(Clients::CurrentAndLegacy, variant.legacy_fraction, plan.legacy_fraction),
            api_client_users: self.users_of(
                Clients::BrowserAndApi,
                variant.api_client_fraction,
                plan.api_client_fraction,
            ),
            workers: self.env.driver_threads,
            user_prefix: plan.user_prefix.clone(),
            wire: variant.wire,
        }
    }

    /// The revocation window, probed directly after the traffic (not after an interrupt).
    async fn probe_revocation(
        &self,
        base_urls: &[String],
        admin_key: Option<&str>,
        driven: &Driven,
        progress: &Progress,
    ) -> RevocationWindow {
        let (plan, variant) = (self.plan, self.variant);
        if driven.out.interrupted || plan.revocation_probes == 0 || !variant.strategy.profile().has_credential() {
            return RevocationWindow::default();
        }
        progress.message("probing the revocation window");
        collect::revocation::probe_instances(
            &plan.user_prefix,
            base_urls,
            variant.strategy,
            admin_key.unwrap_or(""),
            plan.revocation_probes,
            plan.revocation_max_wait,
            variant.target.leeway,
        )
        .await
    }

    /// Assemble phase: the variant's figures from what the drive phase measured.
    fn assemble(
        &self,
        d: &Driven,
        revocation: RevocationWindow,
        after_window: AfterWindow,
        warnings: &mut Vec<String>,
    ) -> StrategyResult {
        let (plan, variant) = (self.plan, self.variant);
        let mut result = strategy_result(variant, &d.out, &d.before, &d.after, revocation, self.env, warnings);
        let prober_requests = d.probe_log.as_ref().map_or(0, ProbeLog::requests);
        let mut accounting = collect::accounting::reconcile(
            d.before.counters.as_ref(),
            d.after.counters.as_ref(),
            result.requests,
            prober_requests,
        );
        accounting.revocation_probe_requests_after_window =
            after_window.counters.zip(d.after.counters.as_ref()).map(|(p, a)| p.requests.saturating_sub(a.requests));
        collect::accounting::apply(&mut result, accounting);
        result.auth_paths = collect::accounting::auth_paths(d.before.counters.as_ref(), d.after.counters.as_ref());
        result.cache = collect::accounting::cache(d.before.counters.as_ref(), d.after.counters.as_ref());
        result.instances = collect::accounting::per_instance(&d.before.instances, &d.after.instances);
        result.store.in_flight_mean =
            collect::accounting::store_in_flight_mean(d.before.counters.as_ref(), d.after.counters.as_ref());
        result.connections =
            collect::accounting::connections(d.before.counters.as_ref(), d.after.counters.as_ref(), &result);
        result.store_down = store_down_result(after_window.store_down, variant, warnings);
        result.store_distance = variant.store_delay.map(|d| StoreDistance {
            delay_ms: d.as_secs_f64() * 1e3,
            jitter_ms: plan.store_jitter.as_secs_f64() * 1e3,
        });
        if let (Some(o), Some(log), true) = (self.outage(), &d.probe_log, d.outage_ran) {
            let (status, share) =
                availability::design_check(variant.strategy, variant.target.authz, variant.target.degrade(), log);
            let mut outage = outage_result(o, log, &variant.target, result.outcomes.unexpected_allow);
            (outage.design_status, outage.design_match_share) = (Some(status), share);
            outage.kill_cost = (o.mode == OutageMode::Kill).then(|| kill_cost(&d.out, o.at.0, d.keys_lost, &result));
            result.outage = Some(outage);
        }
        if let Some(mut f) = d.failover.clone() {
            let o = &result.outcomes;
            f.errors_in_window = result.requests.saturating_sub(o.expected_allow + o.expected_deny);
            result.failover = Some(f);
        }
        if let (Some(r), Some((rotated_at, kid))) = (plan.rotation, &d.rotated) {
            result.rotation = Some(rotation_result(r, &d.out, *rotated_at, kid.clone(), d.probe_log.as_ref()));
        }
        result
    }

    /// The variant's exports: `hist/<label>/<op>.hgrm` and `intervals.hlog`, written from the
    /// histograms in memory.
    fn write_exports(&self, out: &EngineOutput) -> anyhow::Result<()> {
        let rec = &out.recorder;
        let ops: Vec<_> =
            Op::ALL.iter().map(|op| (*op, &rec.ops[*op as usize].latency, &rec.ops[*op as usize].service)).collect();
        output::write_histograms(self.dir, &self.variant.label, &ops)?;
        output::write_interval_log(self.dir, &self.variant.label, self.started, &out.intervals)?;
        output::write_full_histograms(self.dir, &self.variant.label, rec)?;
        Ok(())
    }
}

/// What happened after the measured window, for the assemble phase.
struct AfterWindow {
    /// The target's counters after the revocation probes (`None` when none were sent).
    counters: Option<collect::accounting::TargetCounters>,
    /// The store-down check, if one ran.
    store_down: Option<anyhow::Result<StoreDownCheck>>,
}

/// The store-down check as a result, compared with what the strategy's profile says it does.
fn store_down_result(
    check: Option<anyhow::Result<StoreDownCheck>>,
    variant: &Variant,
    warnings: &mut Vec<String>,
) -> Option<StoreDownCheck> {
    match check? {
        Ok(mut c) => {
            let expected = collect::store_down::expected_behaviour(
                variant.strategy,
                variant.target.authz,
                variant.target.degrade(),
            );
            if let Some(w) = collect::store_down::compare_with_expected(&mut c, Some(expected)) {
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
fn kill_cost(
    out: &EngineOutput,
    at: std::time::Duration,
    store_keys_lost: Option<u64>,
    result: &StrategyResult,
) -> KillCost {
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

/// What the failover task starts with: the probes' users, the group's handles, the settings.
type FailoverStart = (collect::failover::Prepared, environment::FailoverHandles, collect::failover::FailoverSettings);

/// Wait for the failover task (it ends after its replays); a failure is a warning.
async fn join_failover(
    task: Option<JoinHandle<anyhow::Result<crate::results::FailoverResult>>>,
    label: &str,
    warnings: &mut Vec<String>,
) -> Option<crate::results::FailoverResult> {
    match task?.await {
        Ok(Ok(r)) => {
            warnings.push(format!(
                "{label}: store load not measured: it is read from the primary (of a cluster, every master), which the failover killed"
            ));
            Some(r)
        }
        Ok(Err(e)) => {
            warnings.push(format!("{label}: the failover could not be injected or measured: {e:#}"));
            None
        }
        Err(e) => {
            warnings.push(format!("{label}: the failover task failed: {e}"));
            None
        }
    }
}

/// The measured window of one variant, from the engine's start `t0`.
struct Window {
    start: Instant,
    /// `None` when the run lasts until Ctrl-C.
    end: Option<Instant>,
    /// When the store outage falls in it.
    outage: Option<OutageWindow>,
}

impl Window {
    fn new(t0: Instant, plan: &RunPlan, outage: Option<Outage>) -> Window {
        let start = t0 + plan.warmup;
        Window {
            start,
            end: plan.measured_duration().map(|d| start + d),
            outage: outage.map(|o| OutageWindow { at: o.at.0, duration: o.duration.0 }),
        }
    }
}

/// The events a variant's measured window may hold besides the traffic, each a task that sleeps
/// until its time.
struct TimedEvents {
    /// Ends with the outage's end and, in kill mode, the keys the store held when it was killed.
    outage: Option<JoinHandle<(Option<u64>, OutageEnd)>>,
    /// Ends with when the key was rotated and the answer (the new key id).
    rotation: Option<JoinHandle<(Instant, anyhow::Result<Option<String>>)>>,
}

impl TimedEvents {
    fn schedule(
        store: &Store,
        venv: &VariantEnv,
        admin_key: Option<&str>,
        measure_start: Instant,
        outage: Option<Outage>,
        rotation: Option<RotationPlan>,
    ) -> TimedEvents {
        // Kill mode: what the store held is what the kill loses, read just before it.
        let url = store.redis_url();
        let outage = outage.and_then(|o| {
            let keys = async move {
                match (o.mode, url) {
                    (OutageMode::Kill, Some(u)) => collect::snapshot(&u).await.ok().map(|s| s.keys),
                    _ => None,
                }
            };
            store.schedule_outage(measure_start + o.at.0, o, keys)
        });
        let rotation = match (rotation, admin_key) {
            (Some(r), Some(key)) => {
                let (base, key) = (venv.base_url.clone(), key.to_owned());
                Some(tokio::spawn(async move {
                    tokio::time::sleep_until((measure_start + r.at).into()).await;
                    let kid = availability::rotate_key(&base, &key).await;
                    (Instant::now(), kid)
                }))
            }
            _ => None,
        };
        TimedEvents { outage, rotation }
    }

    /// Wait for both; whether the outage ran (and the keys a kill lost), and when (and to which key
    /// id) the key was rotated. After a kill-mode outage the store's fresh server takes the killed
    /// one's place.
    async fn finish(
        self,
        label: &str,
        store: &mut Store,
        warnings: &mut Vec<String>,
    ) -> (bool, Option<u64>, Option<(Instant, Option<String>)>) {
        let (mut outage_ran, mut keys_lost) = (false, None);
        match self.outage {
            None => {}
            Some(task) => match task.await {
                Ok((keys, Ok(restarted))) => {
                    (outage_ran, keys_lost) = (true, keys);
                    if let Some(r) = restarted {
                        store.replace(r);
                        warnings.push(format!(
                            "{label}: the store was killed and restarted empty: its load figures count from the restart"
                        ));
                    }
                }
                Ok((_, Err(e))) => warnings.push(format!("{label}: the store outage could not be injected: {e:#}")),
                Err(e) => warnings.push(format!("{label}: the store outage task failed: {e}")),
            },
        }
        let rotated = match self.rotation {
            None => None,
            Some(task) => match task.await {
                Ok((at, Ok(kid))) => Some((at, kid)),
                Ok((_, Err(e))) => {
                    warnings.push(format!("{label}: the key rotation failed: {e:#}"));
                    None
                }
                Err(e) => {
                    warnings.push(format!("{label}: the key rotation task failed: {e}"));
                    None
                }
            },
        };
        (outage_ran, keys_lost, rotated)
    }
}

/// The outage section of a variant's result, from the prober's log.
fn outage_result(
    o: Outage,
    log: &ProbeLog,
    target: &crate::plan::TargetSettings,
    unexpected_allow: u64,
) -> OutageResult {
    OutageResult {
        mode: o.mode.name().to_owned(),
        at_s: o.at.0.as_secs_f64(),
        duration_s: o.duration.0.as_secs_f64(),
        fail_open: target.fail_open,
        stale_grace_ms: (!target.stale_grace.is_zero()).then_some(target.stale_grace.as_secs_f64() * 1e3),
        before: log.phases[0].clone(),
        during: log.phases[1].clone(),
        after: log.phases[2].clone(),
        first_failure_ms: log.first_failure_ms,
        recovery_ms: log.recovery_ms,
        unexpected_allow,
        revoked_allowed_during: log.revoked_probed.then(|| log.revoked_phases[1].get("200").copied().unwrap_or(0)),
        credential_lost: log.credential_lost,
        ..OutageResult::default()
    }
}

/// The key rotation section of a variant's result.
fn rotation_result(
    r: RotationPlan,
    out: &EngineOutput,
    rotated_at: Instant,
    kid: Option<String>,
    probe_log: Option<&ProbeLog>,
) -> RotationResult {
    let logins = logins_per_second(out);
    let at_s = r.at.as_secs() as usize;
    let before: Vec<u64> = logins.iter().take(at_s).copied().collect();
    RotationResult {
        at_s: r.at.as_secs_f64(),
        overlap_s: r.overlap.as_secs_f64(),
        kid,
        old_token_rejected_after_ms: probe_log
            .and_then(|l| l.first_401_sent)
            .map(|t| t.saturating_duration_since(rotated_at).as_secs_f64() * 1e3),
        logins_per_s_before: median(&before),
        logins_peak_per_s_after: logins.iter().skip(at_s).copied().max(),
        logins_per_second: logins,
    }
}

/// The latency histogram of every operation that had requests, by operation name (moved out of
/// the engine's output: the report draws its full latency curves from them).
fn latency_by_op(out: EngineOutput) -> OpLatency {
    out.recorder
        .ops
        .into_iter()
        .zip(Op::ALL)
        .filter(|(s, _)| !s.latency.is_empty())
        .map(|(s, op)| (op.name().to_owned(), s.latency))
        .collect()
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
    let secs = out.measured.as_secs_f64().ceil() as usize;
    let mut per: Vec<u64> = vec![0; secs];
    for f in &out.intervals {
        let n = f.ops.get(Op::Login as usize).and_then(Option::as_ref).map_or(0, Histogram::len);
        let i = f.index as usize;
        if per.len() <= i {
            per.resize(i + 1, 0);
        }
        per[i] += n;
    }
    per
}

/// What says whether a variant's figures can be trusted.
struct Health {
    /// The driver's CPU over the window, percent of one core.
    driver_cpu_percent: f64,
    /// Requests per second the driver completed.
    achieved: f64,
    /// Revoked or forged credentials accepted.
    unexpected_allow: u64,
}

impl Health {
    /// A warning for a saturated driver, a rate not reached, and any accepted bad credential.
    fn warn(&self, label: &str, out: &EngineOutput, env: &RunEnv, warnings: &mut Vec<String>) {
        let (driver_cpu_percent, achieved) = (self.driver_cpu_percent, self.achieved);
        let driver_cores = env.driver_threads.max(1) as f64;
        if driver_cpu_percent > DRIVER_SATURATED_PERCENT * driver_cores {
            warnings.push(format!(
                "{label}: the driver used {driver_cpu_percent:.0}% CPU of its {driver_cores} core(s): it may have been \
                 the bottleneck"
            ));
        }
        if let Some(target) = out.target_rate_per_sec
            && achieved < 0.95 * target
        {
            warnings.push(format!(
                "{label}: achieved {achieved:.0} req/s of the {target:.0} req/s asked ({} late starts): the target (or \
                 too few connections) could not keep up",
                out.recorder.late_starts
            ));
        }
        if self.unexpected_allow > 0 {
            warnings.push(format!(
                "{label}: SECURITY: {} request(s) with a revoked or forged credential were accepted",
                self.unexpected_allow
            ));
        }
    }
}

/// Latency summaries by operation (from the intended send time, and from the actual one) and of
/// api requests by outcome class.
type LatencySummaries =
    (BTreeMap<String, LatencySummary>, BTreeMap<String, LatencySummary>, BTreeMap<String, LatencySummary>);

fn latency_summaries(rec: &Recorder) -> LatencySummaries {
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
    (latency_us, service_time_us, latency_by_outcome_us)
}

/// Api latency per client kind, for a strategy serving two (empty otherwise).
fn latency_by_client(rec: &Recorder) -> BTreeMap<String, LatencySummary> {
    ClientKind::ALL
        .iter()
        .filter_map(|c| rec.api_by_client[*c as usize].as_ref().map(|h| (c.name().to_owned(), summarize(h))))
        .collect()
}

/// The variant's figures over the measured window, from the engine's output and the collectors'
/// readings at both ends of it.
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
    let (latency_us, service_time_us, latency_by_outcome_us) = latency_summaries(rec);
    let store = before.store_load(after, requests, rec.logins_ok);
    let target_cpu_us_per_request = match (before.target_cpu, after.target_cpu) {
        (Some(b), Some(a)) if requests > 0 => Some(a.saturating_sub(b).as_secs_f64() * 1e6 / requests as f64),
        _ => None,
    };
    let wall = after.at.saturating_duration_since(before.at).as_secs_f64().max(1e-9);
    let driver_cpu_percent = after.driver_cpu.saturating_sub(before.driver_cpu).as_secs_f64() / wall * 100.0;
    let achieved = requests as f64 / secs;
    let health = Health { driver_cpu_percent, achieved, unexpected_allow: outcomes.unexpected_allow };
    health.warn(&variant.label, out, env, warnings);
    let bytes_n = rec.bytes_samples.max(1) as f64;
    StrategyResult {
        name: variant.label.clone(),
        strategy: variant.strategy.name().to_owned(),
        variant: variant.coords(),
        requests,
        throughput_rps: achieved,
        success_rps: ok as f64 / secs,
        failure_rps: (requests - ok) as f64 / secs,
        errors: Errors { total: rec.errors.values().sum(), by_class: rec.errors.clone() },
        outcomes,
        latency_us,
        service_time_us,
        latency_by_outcome_us,
        latency_by_client_us: latency_by_client(rec),
        credential_bytes: rec.credential_bytes_sum as f64 / bytes_n,
        request_header_bytes: rec.header_bytes_sum as f64 / bytes_n,
        wire: Some(wire_bytes(&variant.wire, rec, requests)),
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
        failover: None,
        rotation: None,
        repeats: Vec::new(),
        requests_accounting: None,
        store_down: None,
        auth_paths: BTreeMap::new(),
        instances: Vec::new(),
        capacity: None,
        usl: None,
        cache: None,
        connections: None,
    }
}

/// The socket byte counts of a variant, per request of the measured window.
fn wire_bytes(wire: &WireSettings, rec: &Recorder, requests: u64) -> WireBytes {
    let n = requests.max(1) as f64;
    WireBytes {
        transport: wire.transport.name().to_owned(),
        hpack: wire.transport.h2().then(|| wire.hpack.name().to_owned()),
        streams_per_connection: wire.streams_per_connection,
        sent_bytes: rec.wire.sent,
        received_bytes: rec.wire.received,
        connections_opened: rec.wire.connects,
        requests_per_connection: wire.requests_per_connection,
        tls_resumption: wire.transport.tls().then_some(wire.tls_resumption),
        sent_bytes_per_request: rec.wire.sent as f64 / n,
        received_bytes_per_request: rec.wire.received as f64 / n,
    }
}

/// A `/metrics` reading as a split run keeps it for `merge`.
fn target_reading(c: &TargetCounters, unix_ms: u64) -> TargetReading {
    TargetReading {
        unix_ms,
        requests: c.requests,
        cpu_seconds: c.cpu_seconds,
        store_ops: c.store_ops.clone(),
        auth_paths: c.auth_paths.clone(),
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
