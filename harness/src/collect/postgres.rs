//! Store load read from PostgreSQL's own statistics, as Redis load is read from `INFO`. The run's
//! schema itself (created, emptied, dropped) is `crate::environment::postgres`.
//!
//! Store load over a measured window is the difference of two [`PgSnapshot`]s:
//! - **operations by command**: `pg_stat_statements` calls of the statements on the run's table,
//!   each classified into the store command it implements
//!   ([`authbench_targets::store::postgres::command_of_statement`]), so the names line up with
//!   Redis's. When `pg_stat_statements` is not loaded on the server they are not measured here and
//!   the caller falls back to the targets' own `/metrics` counters (one statement per operation);
//! - **CPU**: user + system time of the backend processes serving the run's targets (found by
//!   their `application_name`), read from `/proc/<pid>/stat`: measured only when the server runs on
//!   this machine and those files are readable. Other PostgreSQL processes (checkpointer, WAL
//!   writer, autovacuum) are not included;
//! - **storage growth**: `pg_total_relation_size` of the run's table (heap + index + TOAST), the
//!   counterpart of Redis's `used_memory`;
//! - **network bytes**: PostgreSQL does not count them; not measured.
//!
//! A snapshot opens a connection of its own: its statements do not touch the run's table, so they
//! never count as store operations, and its backend is not a target's, so its CPU is not counted.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, anyhow};
use authbench_targets::store::postgres::{application_name, command_of_statement, quote_ident};
use tokio_postgres::{Client, NoTls};

use crate::results::StoreLoad;

/// Upper bound on connecting and on each statement of a snapshot.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// One connection (driver task spawned), bounded by [`STATEMENT_TIMEOUT`].
pub async fn connect(url: &str) -> anyhow::Result<Client> {
    let (client, conn) = tokio::time::timeout(STATEMENT_TIMEOUT, tokio_postgres::connect(url, NoTls))
        .await
        .map_err(|_| anyhow!("connecting to PostgreSQL at {url}: no answer within {STATEMENT_TIMEOUT:?}"))?
        .map_err(|e| {
            anyhow!(
                "connecting to PostgreSQL at {url}: {} (scripts/setup installs and starts a local server)",
                authbench_targets::store::postgres::describe(&e)
            )
        })?;
    tokio::spawn(conn);
    Ok(client)
}

/// Cumulative counters of the run's `schema` on the server at `server_url`, now (see the module
/// docs for what each one is). `with_statements`: read `pg_stat_statements` (it answers).
pub async fn snapshot(server_url: &str, schema: &str, with_statements: bool) -> anyhow::Result<PgSnapshot> {
    let client = connect(server_url).await?;
    let table = format!("{}.kv", quote_ident(schema));
    let calls_by_command = if with_statements { Some(statement_calls(&client, &table).await?) } else { None };
    let app = application_name(schema);
    let pids: Vec<i32> = bounded(client.query("SELECT pid FROM pg_stat_activity WHERE application_name = $1", &[&app]))
        .await
        .context("listing the targets' PostgreSQL backends")?
        .iter()
        .filter_map(|r| r.try_get(0).ok())
        .collect();
    let size_sql =
        format!("SELECT coalesce(pg_total_relation_size(to_regclass('{}')), 0)::int8", table.replace('\'', "''"));
    let relation_bytes: i64 =
        bounded(client.query_one(&size_sql, &[])).await.context("reading the table size")?.try_get(0).unwrap_or(0);
    Ok(PgSnapshot { calls_by_command, backend_cpu: backend_cpu(&pids), relation_bytes })
}

/// Whether `pg_stat_statements` answers on this server (loaded and created in the database).
pub async fn has_statements(client: &Client) -> bool {
    bounded(client.query_one("SELECT count(*) FROM pg_stat_statements LIMIT 1", &[])).await.is_ok()
}

/// `pg_stat_statements` calls on `table`, by store command.
async fn statement_calls(client: &Client, table: &str) -> anyhow::Result<BTreeMap<String, u64>> {
    let pattern = format!("%{}%", table.replace('%', "\\%").replace('_', "\\_"));
    let rows =
        bounded(client.query("SELECT query, calls::int8 FROM pg_stat_statements WHERE query LIKE $1", &[&pattern]))
            .await
            .context("reading pg_stat_statements")?;
    let mut out = BTreeMap::new();
    for row in rows {
        let (Ok(query), Ok(calls)) = (row.try_get::<_, &str>(0), row.try_get::<_, i64>(1)) else { continue };
        if let Some(cmd) = command_of_statement(query) {
            *out.entry(cmd.name().to_owned()).or_insert(0) += u64::try_from(calls).unwrap_or(0);
        }
    }
    Ok(out)
}

/// `f`, bounded by [`STATEMENT_TIMEOUT`], its error with its cause.
pub async fn bounded<T>(f: impl Future<Output = Result<T, tokio_postgres::Error>>) -> anyhow::Result<T> {
    match tokio::time::timeout(STATEMENT_TIMEOUT, f).await {
        Ok(r) => r.map_err(|e| anyhow!(authbench_targets::store::postgres::describe(&e))),
        Err(_) => Err(anyhow!("PostgreSQL did not answer within {STATEMENT_TIMEOUT:?}")),
    }
}

/// CPU time (µs) of each backend whose `/proc/<pid>/stat` is readable; `None` when none is (a
/// remote server, or no target connected yet).
fn backend_cpu(pids: &[i32]) -> Option<BTreeMap<i32, u64>> {
    let cpu: BTreeMap<i32, u64> = pids
        .iter()
        .filter_map(|&pid| {
            let t = super::process::proc_cpu_time(u32::try_from(pid).ok()?).ok()?;
            Some((pid, u64::try_from(t.as_micros()).unwrap_or(u64::MAX)))
        })
        .collect();
    (!cpu.is_empty()).then_some(cpu)
}

/// Cumulative PostgreSQL counters for one run's schema at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PgSnapshot {
    /// `pg_stat_statements` calls by store command; `None` when the extension is not available.
    pub calls_by_command: Option<BTreeMap<String, u64>>,
    /// CPU (µs) of each target backend by pid; `None` when not readable.
    pub backend_cpu: Option<BTreeMap<i32, u64>>,
    /// Heap + index + TOAST bytes of the run's table.
    pub relation_bytes: i64,
}

/// The targets' own store counters before and after a window (from `/metrics`).
pub type MetricsOps<'a> = (&'a BTreeMap<String, u64>, &'a BTreeMap<String, u64>);

/// Store load between two snapshots, divided by `total_requests` (every operation the driver
/// completed, as for Redis). `metrics_ops` (the targets' own counters before and after) stands in
/// for the operation counts when `pg_stat_statements` is not available.
pub fn store_load(
    before: &PgSnapshot,
    after: &PgSnapshot,
    metrics_ops: Option<MetricsOps<'_>>,
    total_requests: u64,
    sessions_created: u64,
) -> StoreLoad {
    let ops = match (&before.calls_by_command, &after.calls_by_command, metrics_ops) {
        (Some(b), Some(a), _) => Some(deltas(b, a)),
        (_, _, Some((b, a))) => Some(deltas(b, a)),
        _ => None,
    };
    let n = total_requests as f64;
    let per = |v: u64| (total_requests > 0).then(|| v as f64 / n);
    let cpu_us = match (&before.backend_cpu, &after.backend_cpu) {
        // A backend that appeared in the window counts from zero; one that vanished is lost
        // (pooled connections live as long as the target, so neither happens in a steady run).
        (Some(b), Some(a)) => Some(a.iter().map(|(pid, &t)| t.saturating_sub(b.get(pid).copied().unwrap_or(0))).sum()),
        (None, Some(a)) => Some(a.values().sum()),
        _ => None,
    };
    let growth = (after.relation_bytes - before.relation_bytes) as f64;
    StoreLoad {
        measured: ops.is_some() || cpu_us.is_some(),
        ops_per_request: ops.as_ref().and_then(|o| per(o.values().sum())),
        ops_by_command: match (&ops, total_requests > 0) {
            (Some(o), true) => o.iter().map(|(k, &v)| (k.clone(), v as f64 / n)).collect(),
            _ => BTreeMap::new(),
        },
        cpu_us_per_request: cpu_us.and_then(per),
        net_bytes_per_request: None,
        memory_bytes_per_session: (sessions_created > 0).then(|| growth / sessions_created as f64),
        nodes: Vec::new(),
        in_flight_mean: None,
    }
}

/// Growth of each counter; counters that did not grow are left out.
fn deltas(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, &v)| {
            let d = v.saturating_sub(before.get(k).copied().unwrap_or(0));
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn load_from_statements_and_backend_cpu() {
        let before = PgSnapshot {
            calls_by_command: Some(map(&[("get", 10), ("set", 2)])),
            backend_cpu: Some([(1, 1_000), (2, 500)].into()),
            relation_bytes: 8192,
        };
        let after = PgSnapshot {
            calls_by_command: Some(map(&[("get", 110), ("set", 12), ("sadd", 10)])),
            backend_cpu: Some([(1, 3_000), (2, 1_500), (3, 500)].into()),
            relation_bytes: 8192 + 10 * 200,
        };
        let load = store_load(&before, &after, None, 100, 10);
        assert!(load.measured);
        assert_eq!(load.ops_per_request, Some(1.2));
        assert_eq!(load.ops_by_command.get("get"), Some(&1.0));
        assert_eq!(load.ops_by_command.get("sadd"), Some(&0.1));
        assert_eq!(load.cpu_us_per_request, Some(35.0), "2000 + 1000 + a new backend's 500 µs");
        assert_eq!(load.net_bytes_per_request, None, "PostgreSQL does not count bytes: not measured");
        assert_eq!(load.memory_bytes_per_session, Some(200.0));
    }

    #[test]
    fn metrics_stand_in_without_pg_stat_statements() {
        let snap = PgSnapshot::default();
        let (b, a) = (map(&[("get", 5)]), map(&[("get", 55), ("del", 5)]));
        let load = store_load(&snap, &snap, Some((&b, &a)), 50, 0);
        assert_eq!(load.ops_per_request, Some(1.1));
        assert_eq!(load.cpu_us_per_request, None, "unreadable backends: not measured");
        assert_eq!(load.memory_bytes_per_session, None);
        let none = store_load(&snap, &snap, None, 50, 0);
        assert!(!none.measured);
    }
}
