//! Every collector read at one instant: a measured window's figures are the difference of the
//! [`Snapshots`] taken at its two ends.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::accounting::{TargetCounters, read_counters};
use super::postgres::PgSnapshot;
use super::process::{proc_cpu_time, self_cpu_time};
use super::redis::{InfoSnapshot, snapshot_sum, store_load, store_load_from_metrics};
use crate::results::StoreLoad;

/// Where the store's own counters are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSource {
    /// Redis `INFO` of these servers, summed (one server, or every node of a cluster).
    Redis(Vec<String>),
    /// The memory store inside a target started by this run: its `/metrics`.
    TargetMetrics,
    /// PostgreSQL's statistics for the run's schema; the target's `/metrics` stand in for the
    /// operation counts when `pg_stat_statements` does not answer (`statements` false).
    Postgres { server_url: String, schema: String, statements: bool },
    /// Not measurable (`--target`).
    None,
}

/// Every target's counters, each and summed; the sum is `None` unless every one could be read.
async fn read_all_counters(urls: &[String]) -> (Vec<Option<TargetCounters>>, Option<TargetCounters>) {
    let mut each = Vec::with_capacity(urls.len());
    for url in urls {
        each.push(read_counters(url).await.ok());
    }
    let mut total: Option<TargetCounters> = None;
    for c in &each {
        match (&mut total, c) {
            (_, None) => return (each, None),
            (Some(t), Some(c)) => t.add(c),
            (None, Some(c)) => total = Some(c.clone()),
        }
    }
    (each, total)
}

/// One instance's own readings (several instances only), in the order of the run's URLs.
#[derive(Debug, Clone)]
pub struct InstanceReading {
    /// Its `/metrics` counters; `None` if unread.
    pub counters: Option<TargetCounters>,
    /// Its process's CPU so far (this run started it).
    pub cpu: Option<Duration>,
}

/// Collector readings at one instant.
#[derive(Debug, Clone)]
pub struct Snapshots {
    /// Redis's counters (summed over a cluster's nodes).
    pub redis: Option<InfoSnapshot>,
    /// The target's own `/metrics` counters (requests served, store operations); None if unread.
    pub counters: Option<TargetCounters>,
    /// The memory store's operations by command, from the target's `/metrics` (also read for a
    /// PostgreSQL store without `pg_stat_statements`).
    pub memory_ops: Option<BTreeMap<String, u64>>,
    /// PostgreSQL's counters for the run's schema.
    pub postgres: Option<PgSnapshot>,
    /// The target process's CPU so far: from `/proc` for a target this run started, else from the
    /// target's own `/metrics` (none when it does not report it).
    pub target_cpu: Option<Duration>,
    /// The driver's own CPU so far.
    pub driver_cpu: Duration,
    /// Each instance's own readings, when the run started several (empty otherwise): the summed
    /// figures above hide how the load spread over them.
    pub instances: Vec<InstanceReading>,
    /// When the readings were taken (the window's wall time is the difference).
    pub at: Instant,
}

impl Snapshots {
    /// Read every collector: the store's counters from `store`, the CPU of the target process
    /// `target_pid` (if this run started it) and of the driver.
    /// With several instances (`target_pids`, `urls`), their CPU and counters are summed.
    pub async fn take(store: &StoreSource, target_pids: &[u32], urls: &[String]) -> Snapshots {
        let at = Instant::now();
        let driver_cpu = self_cpu_time();
        let (mut redis, mut memory_ops, mut postgres) = (None, None, None);
        let (each, counters) = read_all_counters(urls).await;
        // Each started process's CPU, read once: summed below, and kept per instance.
        let cpus: Vec<Option<Duration>> = target_pids.iter().map(|&pid| proc_cpu_time(pid).ok()).collect();
        // A target this run did not start reports its own CPU on `/metrics`.
        let target_cpu = if target_pids.is_empty() {
            counters.as_ref().and_then(|c| c.cpu_seconds).map(Duration::from_secs_f64)
        } else {
            cpus.iter().copied().sum::<Option<Duration>>()
        };
        let instances = if cpus.len() > 1 && cpus.len() == each.len() {
            each.into_iter().zip(cpus).map(|(counters, cpu)| InstanceReading { counters, cpu }).collect()
        } else {
            Vec::new()
        };
        let metrics_ops = || counters.as_ref().map(|c| c.store_ops.clone());
        match store {
            StoreSource::Redis(urls) => redis = snapshot_sum(urls).await.ok(),
            StoreSource::TargetMetrics => memory_ops = metrics_ops(),
            StoreSource::Postgres { server_url, schema, statements } => {
                postgres = super::postgres::snapshot(server_url, schema, *statements).await.ok();
                if !statements {
                    memory_ops = metrics_ops();
                }
            }
            StoreSource::None => {}
        }
        Snapshots { redis, counters, memory_ops, postgres, target_cpu, driver_cpu, instances, at }
    }

    /// Store load between `self` and the later `after`, per request (see [`store_load`]); not
    /// measured when either reading is missing.
    pub fn store_load(&self, after: &Snapshots, requests: u64, sessions_created: u64) -> StoreLoad {
        if let (Some(b), Some(a)) = (&self.postgres, &after.postgres) {
            let metrics = self.memory_ops.as_ref().zip(after.memory_ops.as_ref());
            return super::postgres::store_load(b, a, metrics, requests, sessions_created);
        }
        match (&self.redis, &after.redis, &self.memory_ops, &after.memory_ops) {
            (Some(b), Some(a), _, _) => store_load(b, a, requests, sessions_created),
            (_, _, Some(b), Some(a)) => store_load_from_metrics(b, a, requests),
            _ => StoreLoad::default(),
        }
    }
}
