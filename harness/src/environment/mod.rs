//! Everything a run starts and stops, and nothing it measures (that is `collect/`):
//! - [`redis`]: the one `redis-server` starter, and a private server of the run's own;
//! - [`cluster`]: a private Redis Cluster, with or without replicas (its nodes started by the same
//!   starter), and the failover injected into one of its masters;
//! - [`sentinel`]: a private primary with replicas and Sentinels, and the failover injected into it;
//! - [`failover`]: what a failover task holds of either, behind one interface;
//! - [`postgres`]: a schema of the run's own on a PostgreSQL server;
//! - [`delay_proxy`]: a TCP proxy that puts the store at a network distance (latency, jitter);
//! - [`outage`]: store outages injected during a run (pause, or kill and restart empty);
//! - [`target`]: target servers as child processes (`authbench target ...`), pinned to a CPU;
//! - [`cpu`]: the CPU plan that keeps driver and target apart, and pinning the driver.
//!
//! [`Environment`] is what one `authbench run` holds for its whole length: the store and what every
//! target is started with. [`VariantEnv`] is what one variant (a strategy at one matrix point) runs
//! against: its target and, for a store at a distance, the delay proxy in front of the store.

pub mod cluster;
pub mod cpu;
pub mod delay_proxy;
pub mod failover;
pub mod outage;
pub mod postgres;
pub mod redis;
pub mod sentinel;
pub mod target;

use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::task::JoinHandle;

pub use self::cluster::{ClusterOptions, RedisCluster};
pub use self::cpu::{CpuPlan, cpu_plan, pin_current_process};
pub use self::delay_proxy::DelayProxy;
pub use self::failover::{FailoverHandles, Victim};
pub use self::postgres::PgRunSchema;
pub use self::redis::{RedisProcess, redis_server_available};
pub use self::sentinel::{SentinelGroup, SentinelOptions};
pub use self::target::TargetProcess;
use crate::collect::StoreSource;
use crate::plan::{RunPlan, Variant};
use crate::scenario::{Outage, StoreChoice};

/// The run's store: a private redis-server, a private Redis Cluster or a PostgreSQL schema of the
/// run's own; none for the memory store (inside each target) and for `--target`.
#[derive(Debug, Default)]
pub struct Store {
    /// `--observe-store`: the external targets' Redis, read but not run by us.
    observed: Vec<String>,
    redis: Option<RedisProcess>,
    /// A Redis Cluster, rebuilt between variants after a failover (locked as the Sentinel group).
    cluster: Option<tokio::sync::Mutex<RedisCluster>>,
    postgres: Option<PgRunSchema>,
    /// A Sentinel group, rebuilt between variants after a failover (hence the lock: `flush` does
    /// it through a shared reference).
    sentinel: Option<tokio::sync::Mutex<SentinelGroup>>,
}

impl Store {
    /// Start the store `plan` asks for. Returns it with its name in `report.json` (`store_kind`:
    /// `external`, `cluster`, `redis` or `memory`); a fallback to memory is noted in `warnings`.
    pub async fn start(plan: &RunPlan, warnings: &mut Vec<String>) -> anyhow::Result<(Store, &'static str)> {
        if !plan.targets.is_empty() {
            return Ok((Store { observed: plan.observe_store.clone(), ..Store::default() }, "external"));
        }
        let want_redis = match plan.store {
            StoreChoice::Memory => false,
            StoreChoice::Cluster => {
                anyhow::ensure!(redis_server_available(), "store cluster: redis-server is not installed");
                let options = ClusterOptions { masters: plan.cluster_nodes, replicas: plan.cluster_replicas };
                let cluster = RedisCluster::start_with(options).await.with_context(|| {
                    format!(
                        "starting a private Redis Cluster of {} masters with {} replica(s) each",
                        options.masters, options.replicas
                    )
                })?;
                let cluster = Some(tokio::sync::Mutex::new(cluster));
                return Ok((Store { cluster, ..Store::default() }, "cluster"));
            }
            StoreChoice::Postgres => return Store::start_postgres(plan, warnings).await,
            StoreChoice::Sentinel => {
                anyhow::ensure!(redis_server_available(), "store sentinel: redis-server is not installed");
                let group = SentinelGroup::start(sentinel_options(plan))
                    .await
                    .context("starting a private Redis primary with 2 replicas and 3 Sentinels")?;
                return Ok((Store { sentinel: Some(tokio::sync::Mutex::new(group)), ..Store::default() }, "sentinel"));
            }
            StoreChoice::Redis => {
                anyhow::ensure!(
                    redis_server_available(),
                    "store redis (needed for store.delay / store.outage too): redis-server is not installed"
                );
                true
            }
            StoreChoice::Auto => {
                let available = redis_server_available();
                if !available {
                    warnings.push("redis-server not installed: targets used the in-process memory store".to_owned());
                }
                available
            }
        };
        if !want_redis {
            anyhow::ensure!(
                plan.instances == 1,
                "instances = {} needs a shared store, and redis-server is not installed: install it (scripts/setup) or \
                 choose store postgres",
                plan.instances
            );
            return Ok((Store::default(), "memory"));
        }
        let redis = RedisProcess::start().await.context("starting a private redis-server")?;
        Ok((Store { redis: Some(redis), ..Store::default() }, "redis"))
    }

    /// A schema of the run's own on the named PostgreSQL server, or the local default one.
    async fn start_postgres(plan: &RunPlan, warnings: &mut Vec<String>) -> anyhow::Result<(Store, &'static str)> {
        let url = plan.postgres_url.clone().unwrap_or_else(postgres::default_server_url);
        let schema = PgRunSchema::create(&url, &plan.name).await.context("preparing the PostgreSQL store")?;
        tracing::info!(schema = %schema.schema, version = %schema.version, "postgres store ready");
        if !schema.has_statements {
            warnings.push(
                "PostgreSQL: pg_stat_statements is not loaded, so store operations by command are the targets' \
                 own /metrics counts (one SQL statement per operation), not PostgreSQL's"
                    .to_owned(),
            );
        }
        Ok((Store { postgres: Some(schema), ..Store::default() }, "postgres"))
    }

    /// What the targets get as `--store`.
    pub fn target_arg(&self) -> String {
        if let Some(g) = self.sentinel.as_ref().and_then(|m| m.try_lock().ok()) {
            return g.url();
        }
        let cluster = self.cluster.as_ref().and_then(|m| m.try_lock().ok());
        match (&self.redis, cluster, &self.postgres) {
            (Some(r), _, _) => r.url.clone(),
            (None, Some(c), _) => c.urls(),
            (None, None, Some(p)) => p.store_url(),
            (None, None, None) => "memory".to_owned(),
        }
    }

    /// Where the store's own counters are read; `target_started`: whether the memory store's
    /// counters can be read from a target this run started.
    pub fn source(&self, target_started: bool) -> StoreSource {
        if let Some(g) = self.sentinel.as_ref().and_then(|m| m.try_lock().ok()) {
            return StoreSource::Redis(vec![g.primary_url()]);
        }
        let cluster = self.cluster.as_ref().and_then(|m| m.try_lock().ok());
        match (&self.redis, cluster, &self.postgres) {
            (Some(r), _, _) => StoreSource::Redis(vec![r.url.clone()]),
            (None, Some(c), _) => StoreSource::Redis(c.url_list()),
            (None, None, Some(p)) => StoreSource::Postgres {
                server_url: p.server_url().to_owned(),
                schema: p.schema.clone(),
                statements: p.has_statements,
            },
            (None, None, None) if !self.observed.is_empty() => StoreSource::Redis(self.observed.clone()),
            (None, None, None) if target_started => StoreSource::TargetMetrics,
            (None, None, None) => StoreSource::None,
        }
    }

    /// An empty store with zeroed counters, between variants.
    pub async fn flush(&self) -> anyhow::Result<()> {
        if let Some(r) = &self.redis {
            r.flush().await?;
        }
        if let Some(m) = &self.cluster {
            let mut cluster = m.lock().await;
            if cluster.failed_over() {
                // Rebuilt rather than healed, as the Sentinel group below.
                let fresh = RedisCluster::start_with(cluster.options).await.context("rebuilding the Redis Cluster")?;
                std::mem::replace(&mut *cluster, fresh).stop().await;
            } else {
                cluster.flush().await?;
            }
        }
        if let Some(p) = &self.postgres {
            p.flush().await?;
        }
        if let Some(m) = &self.sentinel {
            let mut group = m.lock().await;
            if group.failed_over() {
                // Rebuilt rather than healed: every variant fails over the same fresh topology.
                let fresh = SentinelGroup::start(group.options).await.context("rebuilding the Sentinel group")?;
                std::mem::replace(&mut *group, fresh).stop().await;
            } else {
                group.flush().await?;
            }
        }
        Ok(())
    }

    /// `min-replicas-to-write` (and its max lag, seconds) on every data node of the Sentinel group
    /// or the cluster (nothing without one).
    pub async fn set_min_replicas(&self, replicas: u32, max_lag_s: u32) -> anyhow::Result<()> {
        if let Some(m) = &self.cluster {
            return m.lock().await.set_min_replicas(replicas, max_lag_s).await;
        }
        match &self.sentinel {
            Some(m) => m.lock().await.set_min_replicas(replicas, max_lag_s).await,
            None => Ok(()),
        }
    }

    /// What a failover task needs of the Sentinel group or the cluster (none without either).
    pub fn failover_handles(&self) -> Option<FailoverHandles> {
        if let Some(c) = self.cluster.as_ref().and_then(|m| m.try_lock().ok()) {
            return c.handles().map(FailoverHandles::Cluster);
        }
        self.sentinel.as_ref().and_then(|m| m.try_lock().ok()).map(|g| g.handles())
    }

    /// Start `outage` at `at` on the private redis-server (none without one), running the caller's
    /// `first` (a reading of the store, say) just before it. The task ends after the outage with
    /// `first`'s output and, in kill mode, the fresh server now on the port, for [`Store::replace`].
    pub fn schedule_outage<F>(
        &self,
        at: Instant,
        outage: Outage,
        first: F,
    ) -> Option<JoinHandle<(F::Output, OutageEnd)>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let r = self.redis.as_ref()?;
        let (pid, port) = (r.pid(), r.port);
        Some(tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let first = first.await;
            (first, outage::inject_outage(pid, port, outage.mode, outage.duration.0).await)
        }))
    }

    /// The private redis-server's URL (none without one).
    pub fn redis_url(&self) -> Option<String> {
        self.redis.as_ref().map(|r| r.url.clone())
    }

    /// The private redis-server's process id and port, for a store-down check (none without one).
    pub fn redis_process(&self) -> Option<(u32, u16)> {
        self.redis.as_ref().map(|r| (r.pid(), r.port))
    }

    /// After a kill-mode outage: the server that now serves the port takes the killed one's place.
    pub fn replace(&mut self, restarted: RedisProcess) {
        self.redis = Some(restarted);
    }

    pub async fn stop(self) {
        if let Some(r) = self.redis {
            r.stop().await;
        }
        if let Some(m) = self.cluster {
            m.into_inner().stop().await;
        }
        if let Some(m) = self.sentinel {
            m.into_inner().stop().await;
        }
        if let Some(p) = self.postgres
            && let Err(e) = p.drop_schema().await
        {
            tracing::warn!(error = %e, "dropping the run's PostgreSQL schema");
        }
    }
}

/// The Sentinel group's data-node settings from the plan's `[store.failover]`.
fn sentinel_options(plan: &RunPlan) -> SentinelOptions {
    let f = plan.failover.as_ref();
    SentinelOptions {
        min_replicas_to_write: f.and_then(|f| f.min_replicas_to_write).unwrap_or(0),
        min_replicas_max_lag_s: f
            .and_then(|f| f.min_replicas_max_lag)
            .unwrap_or(crate::collect::failover::DEFAULT_MAX_LAG_S),
    }
}

/// What an outage task ends with: in kill mode, the fresh server on the store's port.
pub type OutageEnd = anyhow::Result<Option<RedisProcess>>;

/// What a whole run holds: the store and what every target is started with.
#[derive(Debug)]
pub struct Environment {
    pub store: Store,
    /// `report.json`'s `store_kind`.
    pub store_kind: &'static str,
    /// Handed to every target started here (and the one of `--target`, if given): revoke-user and
    /// key rotation need it.
    pub admin_key: Option<String>,
    /// `authbench` itself: targets are `authbench target ...` child processes.
    exe: PathBuf,
    /// The CPU targets are pinned to (and then run with one worker thread).
    target_cpu: Option<usize>,
    /// `--target`: no target is started; each variant drives the URLs given for its strategy.
    external: crate::part::TargetList,
    /// Spread of the store delay per round trip (with a delay proxy).
    store_jitter: Duration,
    /// Target processes per variant (`instances`), sharing the store and one signing key.
    instances: usize,
}

impl Environment {
    /// Start the run's store and settle what targets are started with.
    pub async fn start(
        plan: &RunPlan,
        target_cpu: Option<usize>,
        warnings: &mut Vec<String>,
    ) -> anyhow::Result<Environment> {
        let (store, store_kind) = Store::start(plan, warnings).await?;
        let admin_key = if plan.targets.is_empty() { Some(random_hex(32)) } else { plan.admin_key.clone() };
        Ok(Environment {
            store,
            store_kind,
            admin_key,
            exe: std::env::current_exe().context("locating the authbench executable")?,
            target_cpu,
            external: plan.targets.clone(),
            store_jitter: plan.store_jitter,
            instances: plan.instances,
        })
    }

    /// Flush the store, then start what `variant` runs against.
    pub async fn start_variant(&self, variant: &Variant) -> anyhow::Result<VariantEnv> {
        self.store.flush().await.context("flushing the store between strategies")?;
        if !self.external.is_empty() {
            let urls = self.external.urls_for(variant.strategy);
            let base_url = urls.first().cloned().context("no --target URL for this strategy")?;
            return Ok(VariantEnv { target: None, more: Vec::new(), key: None, proxy: None, base_url, urls });
        }
        // The store at a distance: targets reach it through a delay proxy (snapshots go direct).
        let proxy = match (variant.store_delay, &self.store.redis) {
            (Some(delay), Some(r)) => Some(
                DelayProxy::start(SocketAddr::from(([127, 0, 0, 1], r.port)), delay, self.store_jitter)
                    .await
                    .context("starting the store delay proxy")?,
            ),
            _ => None,
        };
        let store_arg = proxy.as_ref().map_or_else(|| self.store.target_arg(), |p| format!("redis://{}", p.addr()));
        let mut args = self.target_args(variant, store_arg);
        let key = if self.instances > 1 && variant.strategy.uses_jwt() {
            Some(SharedKey::new(variant.target.alg).context("making the instances' shared signing key")?)
        } else {
            None
        };
        let envs = key.as_ref().map(|k| k.apply(&mut args)).unwrap_or_default();
        let mut started = Vec::with_capacity(self.instances);
        for i in 0..self.instances {
            let t = TargetProcess::spawn_with_env(&self.exe, &args, &envs, self.target_cpu)
                .await
                .with_context(|| format!("starting target instance {}", i + 1))?;
            started.push(t);
        }
        let urls: Vec<String> = started.iter().map(|t| t.base_url.clone()).collect();
        let mut started = started.into_iter();
        let target = started.next();
        let base_url = urls.first().cloned().context("no target instance started")?;
        Ok(VariantEnv { target, more: started.collect(), key, proxy, urls, base_url })
    }

    /// `authbench target ...` flags for `variant`.
    fn target_args(&self, variant: &Variant, store_arg: String) -> Vec<String> {
        let mut args: Vec<String> =
            ["target", "--strategy", variant.strategy.name(), "--listen", "127.0.0.1:0"].map(str::to_owned).to_vec();
        args.extend(["--store".to_owned(), store_arg]);
        if let Some(k) = &self.admin_key {
            args.extend(["--admin-key".to_owned(), k.clone()]);
        }
        if self.target_cpu.is_some() {
            args.extend(["--worker-threads".to_owned(), "1".to_owned()]);
        }
        args.extend(variant.target.to_args());
        args
    }

    pub async fn stop(self) {
        self.store.stop().await;
    }
}

/// What one variant runs against.
#[derive(Debug)]
pub struct VariantEnv {
    /// The target child process (the first instance); `None` with `--target`.
    pub target: Option<TargetProcess>,
    /// The other instances (`instances` > 1), serving the same strategy on the same store.
    more: Vec<TargetProcess>,
    /// The signing key every instance was started with (`instances` > 1, JWT strategies).
    key: Option<SharedKey>,
    /// In front of the store when the variant puts it at a distance.
    proxy: Option<DelayProxy>,
    /// `http://IP:PORT` of the target, without a trailing `/` (with several `--target` URLs, the
    /// first: the probes and the `/metrics` readings go there).
    pub base_url: String,
    /// Every URL the engine spreads its connections over (round-robin); `[base_url]` unless
    /// `--target` gave several.
    pub urls: Vec<String>,
}

impl VariantEnv {
    /// Stop the target (SIGTERM, then SIGKILL) and the proxy.
    pub async fn stop(self) -> anyhow::Result<()> {
        let mut stopped = match self.target {
            Some(t) => t.stop().await,
            None => Ok(()),
        };
        for t in self.more {
            stopped = stopped.and(t.stop().await);
        }
        drop(self.key);
        if let Some(p) = self.proxy {
            p.stop().await;
        }
        stopped
    }
}

impl VariantEnv {
    /// The processes of every instance this run started (empty with `--target`).
    pub fn pids(&self) -> Vec<u32> {
        self.target.iter().chain(&self.more).map(|t| t.pid).collect()
    }
}

/// One signing key for every instance of a JWT strategy, so a token one instance signed verifies
/// on the others: an HMAC secret handed over in the environment (`AUTHBENCH_SECRET`), or a PKCS#8
/// key in a private file (mode 0600, removed when the variant ends) for the asymmetric algorithms.
#[derive(Debug)]
struct SharedKey {
    secret: Option<String>,
    key_file: Option<PathBuf>,
}

impl SharedKey {
    fn new(alg: crate::targets::config::Alg) -> anyhow::Result<SharedKey> {
        if alg.is_symmetric() {
            return Ok(SharedKey { secret: Some(random_hex(64)), key_file: None });
        }
        let pem = crate::targets::keys::generate_pem(alg).map_err(|e| anyhow::anyhow!("{e}"))?;
        let path = std::env::temp_dir().join(format!("authbench-key-{}.pem", random_hex(16)));
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
        std::io::Write::write_all(&mut f, pem.as_bytes())?;
        Ok(SharedKey { secret: None, key_file: Some(path) })
    }

    /// Add `--key-file` to `args`; the environment variables every instance gets.
    fn apply(&self, args: &mut Vec<String>) -> Vec<(String, String)> {
        if let Some(path) = &self.key_file {
            args.extend(["--key-file".to_owned(), path.display().to_string()]);
        }
        self.secret.iter().map(|s| ("AUTHBENCH_SECRET".to_owned(), s.clone())).collect()
    }
}

impl Drop for SharedKey {
    fn drop(&mut self) {
        if let Some(path) = &self.key_file {
            let _ = std::fs::remove_file(path);
        }
    }
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
