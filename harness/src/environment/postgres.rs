//! A schema of the run's own on a PostgreSQL server: created before the first target starts, emptied
//! between variants, dropped at the end (or, on an error path, when dropped). Nothing outside it is
//! touched. Its store load is read by `crate::collect::postgres`.
//!
//! The server is the one the user names (`--store postgres://…`, `[store] url`) or, by default, the
//! one `scripts/setup` provides on 127.0.0.1:5432 ([`DEFAULT_SERVER_URL`], overridable with
//! [`SERVER_URL_ENV`]). Targets get the server's URL plus `schema=<name>`.

use anyhow::Context;
use authbench_targets::store::postgres::quote_ident;
use tokio_postgres::Client;

use crate::collect::postgres::{bounded, connect, has_statements};

/// The server used when a scenario says `store = "postgres"` and names none.
pub const DEFAULT_SERVER_URL: &str = "postgres://authbench:authbench@127.0.0.1:5432/authbench";
/// Environment variable overriding [`DEFAULT_SERVER_URL`].
pub const SERVER_URL_ENV: &str = "AUTHBENCH_POSTGRES_URL";

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
    /// `server_version` as the server reports it, for the report's warnings and logs.
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
        let has_statements = has_statements(&client).await;
        Ok(PgRunSchema { server_url: server_url.to_owned(), schema, version, has_statements, client, dropped: false })
    }

    /// The server as named (what snapshots connect to).
    pub fn server_url(&self) -> &str {
        &self.server_url
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
