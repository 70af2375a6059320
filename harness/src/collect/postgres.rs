//! PostgreSQL for a run: a schema of the run's own on a server the harness can reach, and store load
//! read from PostgreSQL's own statistics, as Redis load is read from `INFO`.
//!
//! The server is the one the user names (`--store postgres://…`) or, by default, the one
//! `scripts/setup` provides on 127.0.0.1:5432 ([`DEFAULT_SERVER_URL`], overridable with
//! [`SERVER_URL_ENV`]). The run creates a schema with a unique name, points every target at it
//! (`?schema=` in the store URL), empties it between strategies and drops it at the end: nothing
//! outside it is touched.
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
//! The snapshot's own statements do not touch the run's table, so they never count as store
//! operations, and they run on the harness's own connection, whose backend is not a target's.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, anyhow};
use authbench_targets::store::postgres::{application_name, command_of_statement, quote_ident};
use tokio_postgres::{Client, NoTls};

use crate::results::StoreLoad;

/// The server used when a scenario says `store = "postgres"` and names none.
pub const DEFAULT_SERVER_URL: &str = "postgres://authbench:authbench@127.0.0.1:5432/authbench";
/// Environment variable overriding [`DEFAULT_SERVER_URL`].
pub const SERVER_URL_ENV: &str = "AUTHBENCH_POSTGRES_URL";
/// Upper bound on connecting and on each housekeeping statement.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// The default server URL: [`SERVER_URL_ENV`] when set, else [`DEFAULT_SERVER_URL`].
pub fn default_server_url() -> String {
    std::env::var(SERVER_URL_ENV).unwrap_or_else(|_| DEFAULT_SERVER_URL.to_owned())
}

/// A schema of the run's own on a PostgreSQL server, with the harness's connection to it.
pub struct PgRunSchema {
    /// The server as named (without our `schema=` parameter).
    server_url: String,
    /// The schema's name (unquoted).
    pub schema: String,
    /// `server_version` as the server reports it, for the report's tool list.
    pub version: String,
    /// Whether `pg_stat_statements` answered: per-command operation counts come from it.
    pub has_statements: bool,
    /// The harness's own connection (snapshots, emptying, dropping).
    client: Client,
    /// Set once the schema has been dropped, so drop does not try again.
    dropped: bool,
}

impl std::fmt::Debug for PgRunSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgRunSchema").field("schema", &self.schema).field("version", &self.version).finish()
    }
}

/// One connection (driver task spawned), bounded by [`STATEMENT_TIMEOUT`].
async fn connect(url: &str) -> anyhow::Result<Client> {
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

impl PgRunSchema {
    /// Connect to `server_url` and create a fresh schema named after `label` and the time.
    pub async fn create(server_url: &str, label: &str) -> anyhow::Result<Self> {
        let client = connect(server_url).await?;
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let clean: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
            .take(20)
            .collect();
        let schema = format!("authbench_run_{clean}_{}_{}", stamp.as_millis(), std::process::id());
        bounded(client.batch_execute(&format!("CREATE SCHEMA {}", quote_ident(&schema))))
            .await
            .with_context(|| format!("creating schema {schema} on {server_url}"))?;
        let version = bounded(client.query_one("SHOW server_version", &[]))
            .await
            .ok()
            .and_then(|r| r.try_get::<_, String>(0).ok())
            .unwrap_or_default();
        let has_statements =
            bounded(client.query_one("SELECT count(*) FROM pg_stat_statements LIMIT 1", &[])).await.is_ok();
        Ok(PgRunSchema { server_url: server_url.to_owned(), schema, version, has_statements, client, dropped: false })
    }

    /// What targets get as `--store`: the server URL plus `schema=`.
    pub fn store_url(&self) -> String {
        let sep = if self.server_url.contains('?') { '&' } else { '?' };
        format!("{}{sep}schema={}", self.server_url, self.schema)
    }

    fn table(&self) -> String {
        format!("{}.kv", quote_ident(&self.schema))
    }

    /// Empty the run's table (between strategies), if the targets have created it yet.
    pub async fn flush(&self) -> anyhow::Result<()> {
        let sql = format!(
            "DO $$ BEGIN IF to_regclass('{t}') IS NOT NULL THEN TRUNCATE {t}; END IF; END $$",
            t = self.table().replace('\'', "''")
        );
        bounded(self.client.batch_execute(&sql)).await.context("emptying the run's PostgreSQL table")
    }

    /// Drop the schema and everything in it.
    pub async fn drop_schema(mut self) -> anyhow::Result<()> {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", quote_ident(&self.schema));
        let r = bounded(self.client.batch_execute(&sql)).await;
        self.dropped = r.is_ok();
        r.with_context(|| format!("dropping schema {}", self.schema))
    }

    /// Cumulative counters now (see the module docs for what each one is).
    pub async fn snapshot(&self) -> anyhow::Result<PgSnapshot> {
        let calls_by_command = if self.has_statements { Some(self.statement_calls().await?) } else { None };
        let app = application_name(&self.schema);
        let pids: Vec<i32> =
            bounded(self.client.query("SELECT pid FROM pg_stat_activity WHERE application_name = $1", &[&app]))
                .await
                .context("listing the targets' PostgreSQL backends")?
                .iter()
                .filter_map(|r| r.try_get(0).ok())
                .collect();
        let backend_cpu = backend_cpu(&pids);
        let table = self.table().replace('\'', "''");
        let size_sql = format!("SELECT coalesce(pg_total_relation_size(to_regclass('{table}')), 0)::int8");
        let relation_bytes: i64 = bounded(self.client.query_one(&size_sql, &[]))
            .await
            .context("reading the table size")?
            .try_get(0)
            .unwrap_or(0);
        Ok(PgSnapshot { calls_by_command, backend_cpu, relation_bytes })
    }

    /// `pg_stat_statements` calls on the run's table, by store command.
    async fn statement_calls(&self) -> anyhow::Result<BTreeMap<String, u64>> {
        let pattern = format!("%{}%", self.table().replace('%', "\\%").replace('_', "\\_"));
        let rows = bounded(
            self.client.query("SELECT query, calls::int8 FROM pg_stat_statements WHERE query LIKE $1", &[&pattern]),
        )
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
}

impl Drop for PgRunSchema {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Not dropped explicitly (an error path): drop it from a thread of its own, since this may
        // run inside the runtime and must not block it on a future.
        let (url, schema) = (self.server_url.clone(), self.schema.clone());
        let done = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                if let Ok(c) = connect(&url).await {
                    let _ =
                        bounded(c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", quote_ident(&schema))))
                            .await;
                }
            });
        });
        let _ = done.join();
    }
}

async fn bounded<T>(f: impl Future<Output = Result<T, tokio_postgres::Error>>) -> anyhow::Result<T> {
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
