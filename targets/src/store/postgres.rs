//! The PostgreSQL store: a [`KvStore`] over a `deadpool-postgres` pool of `tokio-postgres`
//! connections, on one table this module creates in a schema of the caller's choosing.
//!
//! This module owns the schema, the SQL of every operation, the TTL design and the failure policy.
//!
//! **Schema.** One `UNLOGGED` table `<schema>.kv (key text primary key, value bytea, members
//! text[], expires_at timestamptz)`: a key holds either a byte string (`value`) or a set of
//! strings (`members`), as a Redis key holds one type. `UNLOGGED` skips the write-ahead log, which is
//! what an in-memory Redis without persistence (the comparison point) also gives up: the table is
//! emptied by crash recovery (every session logged out, every denylist entry forgotten; the
//! per-user not-before entries are forgotten too), and it is not replicated. A deployment that must
//! keep revocations across a crash should drop `UNLOGGED` (one word in [`schema_sql`]) and pay a WAL
//! flush per write.
//!
//! **TTL.** `expires_at` is checked on every read (`expires_at > now()`, the database's clock, so
//! target clocks do not matter), and a sweeper task deletes expired rows every
//! [`SWEEP_INTERVAL`]. No index on `expires_at`: updates that keep the key (the refresh rotation, set
//! re-expiry) then stay eligible for HOT updates (no index touched), and the sweep is one sequential
//! scan per interval. Partitioning by expiry time was rejected: `ON CONFLICT (key)` needs a unique
//! index on `key` alone, which a table partitioned by `expires_at` cannot have (a partitioned
//! table's unique keys must include the partition key), and re-expiring a set would move its row
//! between partitions.
//!
//! **Atomicity.** Every operation is one statement in its own implicit transaction, one round trip,
//! so "store operations per request" counts what crossed the wire, as on Redis. The refresh
//! rotation ([`KvStore::set_xx_get`]) locks the row (`SELECT … FOR UPDATE` in a CTE) and updates it in
//! the same statement; a concurrent redemption waits for the lock and then reads the *new* value
//! (READ COMMITTED re-checks a locked row against its latest version), so exactly one sees the live
//! token.
//!
//! **Failure policy.** Every statement runs under the server-side `statement_timeout` (the target's
//! store timeout) and a client-side guard slightly longer; a connection whose guard fired is taken
//! out of the pool (the server may be stopped, not just slow). Pool checkout waits at most the store
//! timeout, connecting at most [`CONNECT_TIMEOUT`]. So PostgreSQL being down or slow turns into a
//! prompt [`StoreError`] (503, fail closed), and the pool connects again by itself when the server
//! returns. A server that is down at start-up is not fatal: the schema is created by a background
//! task that retries until it succeeds.

use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::{Command, KvStore};
use crate::error::StoreError;

/// Schema used when the URL names none.
pub const DEFAULT_SCHEMA: &str = "authbench";

/// The `application_name` prefix of every target connection; the schema follows it (see
/// [`application_name`]), so the harness can find the backend processes that serve one run's
/// targets (their CPU is the store's CPU).
pub const APPLICATION_NAME: &str = "authbench-target";

/// `authbench-target:<schema>`, cut to PostgreSQL's 63-byte limit on a character boundary.
pub fn application_name(schema: &str) -> String {
    let mut name = format!("{APPLICATION_NAME}:{schema}");
    while name.len() > 63 {
        name.pop();
    }
    name
}

/// How often expired rows are deleted. Reads never see them anyway; the sweep only bounds the
/// table's size, so a slow cadence costs nothing in correctness.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// Longest TCP connect plus start-up handshake for a new pooled connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Slack added to the statement timeout for the client-side guard, so the server's own cancel
/// (a clean error, the connection kept) normally fires first.
const GUARD_SLACK: Duration = Duration::from_millis(50);

/// How often the start-up task retries creating the schema while the server is unreachable.
const SCHEMA_RETRY: Duration = Duration::from_millis(500);

/// Longest wait in [`PostgresStore::connect`] for the schema to be created before the target starts
/// anyway (store routes answer 503 until the background task succeeds).
const STARTUP_WAIT: Duration = Duration::from_secs(2);

/// Connection settings.
#[derive(Debug, Clone)]
pub struct PostgresStoreOptions {
    /// `postgres://` (or `postgresql://`) URL; an extra `schema=NAME` query parameter picks the
    /// schema (default [`DEFAULT_SCHEMA`]) and is removed before the URL reaches the driver.
    pub url: String,
    /// Connections in the pool (each one a PostgreSQL backend process).
    pub pool_size: usize,
    /// Per-statement timeout (server-side `statement_timeout`, plus the client-side guard).
    pub command_timeout: Duration,
}

/// The SQL of every operation, with the schema name filled in once. Each is prepared once per
/// connection (deadpool's statement cache), never parsed per request.
struct Sql {
    get: String,
    mget: String,
    set: String,
    del: String,
    set_xx_get: String,
    sadd: String,
    smembers: String,
    ping: String,
    sweep: String,
}

impl Sql {
    fn new(schema: &str) -> Self {
        let t = format!("{}.kv", quote_ident(schema));
        Sql {
            get: format!("SELECT value FROM {t} WHERE key = $1 AND expires_at > now()"),
            mget: format!("SELECT key, value FROM {t} WHERE key = ANY($1) AND expires_at > now()"),
            set: format!(
                "INSERT INTO {t} (key, value, members, expires_at) \
                 VALUES ($1, $2, NULL, now() + $3::float8 * interval '1 millisecond') \
                 ON CONFLICT (key) DO UPDATE \
                 SET value = EXCLUDED.value, members = NULL, expires_at = EXCLUDED.expires_at"
            ),
            del: format!(
                "WITH d AS (DELETE FROM {t} WHERE key = ANY($1) RETURNING expires_at) \
                 SELECT count(*) FROM d WHERE expires_at > now()"
            ),
            set_xx_get: format!(
                "WITH old AS (SELECT key, value FROM {t} \
                   WHERE key = $1 AND expires_at > now() AND value IS NOT NULL FOR UPDATE), \
                 upd AS (UPDATE {t} AS k SET value = $2 FROM old WHERE k.key = old.key) \
                 SELECT value FROM old"
            ),
            sadd: format!(
                "INSERT INTO {t} AS k (key, value, members, expires_at) \
                 VALUES ($1, NULL, ARRAY[$2::text], now() + $3::float8 * interval '1 millisecond') \
                 ON CONFLICT (key) DO UPDATE SET \
                   members = CASE WHEN k.expires_at <= now() OR k.members IS NULL THEN EXCLUDED.members \
                                  WHEN $2::text = ANY(k.members) THEN k.members \
                                  ELSE array_append(k.members, $2::text) END, \
                   value = NULL, expires_at = EXCLUDED.expires_at"
            ),
            smembers: format!("SELECT members FROM {t} WHERE key = $1 AND expires_at > now()"),
            // Touches the table, so a ping proves the schema exists (and is attributable to it).
            ping: format!("SELECT 1 FROM {t} LIMIT 0"),
            sweep: format!("DELETE FROM {t} WHERE expires_at <= now()"),
        }
    }
}

/// Which store command a statement of this module is, from its text as PostgreSQL reports it
/// (`pg_stat_statements` normalizes constants to `$n`, so only the statement's shape is compared).
/// `None` for anything else, including the sweep (housekeeping, not a request's work).
pub fn command_of_statement(sql: &str) -> Option<Command> {
    let sql = sql.trim_start();
    let starts = |p: &str| sql.starts_with(p);
    if starts("WITH old AS") {
        Some(Command::Set)
    } else if starts("WITH d AS (DELETE") {
        Some(Command::Del)
    } else if starts("SELECT key, value FROM") {
        Some(Command::Mget)
    } else if starts("SELECT value FROM") {
        Some(Command::Get)
    } else if starts("SELECT members FROM") {
        Some(Command::Smembers)
    } else if starts("INSERT INTO") && sql.contains("ARRAY[") {
        Some(Command::Sadd)
    } else if starts("INSERT INTO") {
        Some(Command::Set)
    } else if starts("SELECT") && sql.contains(" LIMIT ") {
        Some(Command::Ping)
    } else {
        None
    }
}

/// The statements that create the schema and its table; idempotent.
pub fn schema_sql(schema: &str) -> String {
    let s = quote_ident(schema);
    format!(
        "CREATE SCHEMA IF NOT EXISTS {s}; \
         CREATE UNLOGGED TABLE IF NOT EXISTS {s}.kv ( \
           key text PRIMARY KEY, \
           value bytea, \
           members text[], \
           expires_at timestamptz NOT NULL, \
           CHECK ((value IS NULL) <> (members IS NULL)))"
    )
}

/// `"name"`, with embedded quotes doubled: safe to splice into SQL as an identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A cheaply cloneable handle on the shared pool.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// The connections; checkout waits at most the statement timeout.
    pool: Pool,
    /// Every statement, schema-qualified.
    sql: Sql,
    /// The schema this store's table lives in.
    schema: String,
    /// The statement timeout, for the error we report and the client-side guard.
    command_timeout: Duration,
}

impl PostgresStore {
    /// Build the pool, create the schema (retrying in the background while the server is
    /// unreachable) and start the sweeper. Fails only on a configuration error (a malformed URL).
    pub async fn connect(opts: PostgresStoreOptions) -> Result<Self, StoreError> {
        let (mut config, schema) = parse_url(&opts.url)?;
        let timeout_ms = opts.command_timeout.as_millis().max(1);
        config
            .application_name(application_name(&schema))
            .connect_timeout(CONNECT_TIMEOUT)
            .options(format!("-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms}"));
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(opts.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(opts.command_timeout))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(opts.command_timeout))
            .build()
            .map_err(|e| StoreError::Unavailable(format!("postgres pool: {e}")))?;
        let inner = Arc::new(Inner { pool, sql: Sql::new(&schema), schema, command_timeout: opts.command_timeout });
        let store = PostgresStore { inner };

        let ready = tokio::spawn(create_schema_until_done(Arc::downgrade(&store.inner)));
        match tokio::time::timeout(STARTUP_WAIT, ready).await {
            Ok(_) => tracing::info!(schema = %store.inner.schema, "postgres store ready"),
            Err(_) => tracing::warn!(
                schema = %store.inner.schema,
                "postgres not reachable yet; creating the schema in the background"
            ),
        }
        tokio::spawn(sweep_forever(Arc::downgrade(&store.inner)));
        Ok(store)
    }

    /// The schema holding this store's table.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// Delete every expired row now; returns how many were deleted. The sweeper calls this every
    /// [`SWEEP_INTERVAL`].
    pub async fn sweep(&self) -> Result<u64, StoreError> {
        self.inner.execute("sweep", &self.inner.sql.sweep, &[]).await
    }
}

/// Split our `schema=` parameter off the URL and parse the rest as a driver config.
fn parse_url(url: &str) -> Result<(tokio_postgres::Config, String), StoreError> {
    let invalid = |why: String| StoreError::Unavailable(format!("invalid postgres URL `{url}`: {why}"));
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut schema = DEFAULT_SCHEMA.to_owned();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("schema=") {
            Some(name) if !name.is_empty() => name.clone_into(&mut schema),
            Some(_) => return Err(invalid("`schema=` needs a name".into())),
            None => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    let config = tokio_postgres::Config::from_str(&rest).map_err(|e| invalid(e.to_string()))?;
    if config.get_hosts().is_empty() {
        return Err(invalid("no host".into()));
    }
    Ok((config, schema))
}

/// Create the schema, retrying every [`SCHEMA_RETRY`] until it succeeds or the store is dropped.
async fn create_schema_until_done(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        match inner.create_schema().await {
            Ok(()) => return,
            Err(e) => tracing::debug!(error = %e, "postgres schema not created yet"),
        }
        drop(inner);
        tokio::time::sleep(SCHEMA_RETRY).await;
    }
}

/// Run the sweep every [`SWEEP_INTERVAL`] until the store is dropped.
async fn sweep_forever(weak: Weak<Inner>) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = weak.upgrade() else { return };
        match inner.execute("sweep", &inner.sql.sweep, &[]).await {
            Ok(n) if n > 0 => tracing::debug!(deleted = n, "postgres sweep"),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "postgres sweep failed"),
        }
    }
}

impl Inner {
    /// Create the schema and table under an advisory lock, so targets starting together on one
    /// schema do not race in `CREATE … IF NOT EXISTS` (which is not atomic against itself).
    async fn create_schema(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.map_err("schema", &e))?;
        tx.execute("SELECT pg_advisory_xact_lock(hashtext('authbench.schema'))", &[])
            .await
            .map_err(|e| self.map_err("schema", &e))?;
        tx.batch_execute(&schema_sql(&self.schema)).await.map_err(|e| self.map_err("schema", &e))?;
        tx.commit().await.map_err(|e| self.map_err("schema", &e))
    }

    /// A pooled connection: waits at most the statement timeout for a free one.
    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Timeout(_) => self.timeout(),
            PoolError::Backend(e) => StoreError::Unavailable(format!("postgres: {}", describe(&e))),
            other => StoreError::Unavailable(format!("postgres: {other}")),
        })
    }

    fn timeout(&self) -> StoreError {
        StoreError::Timeout(u64::try_from(self.command_timeout.as_millis()).unwrap_or(u64::MAX))
    }

    fn map_err(&self, what: &'static str, e: &tokio_postgres::Error) -> StoreError {
        match e.code() {
            Some(c) if *c == SqlState::QUERY_CANCELED || *c == SqlState::LOCK_NOT_AVAILABLE => self.timeout(),
            Some(c) if *c == SqlState::CHECK_VIOLATION => StoreError::Corrupt(what),
            _ => StoreError::Unavailable(format!("postgres {what}: {}", describe(e))),
        }
    }

    /// Check out a connection, prepare (cached) and run `f` under the client-side guard. A
    /// connection whose guard fired is removed from the pool rather than reused.
    async fn run<T, F, Fut>(&self, what: &'static str, sql: &str, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(Arc<Object>, tokio_postgres::Statement) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let client = Arc::new(self.client().await?);
        let work = async {
            let stmt = client.prepare_cached(sql).await?;
            f(client.clone(), stmt).await
        };
        let outcome = tokio::time::timeout(self.command_timeout + GUARD_SLACK, work).await;
        match outcome {
            Ok(result) => result.map_err(|e| self.map_err(what, &e)),
            Err(_) => {
                if let Ok(object) = Arc::try_unwrap(client) {
                    drop(Object::take(object));
                }
                Err(self.timeout())
            }
        }
    }

    async fn execute(&self, what: &'static str, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        self.run(what, sql, |c, stmt| async move { c.execute(&stmt, params).await }).await
    }

    async fn query_opt(
        &self,
        what: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<tokio_postgres::Row>, StoreError> {
        self.run(what, sql, |c, stmt| async move { c.query_opt(&stmt, params).await }).await
    }

    async fn query(
        &self,
        what: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        self.run(what, sql, |c, stmt| async move { c.query(&stmt, params).await }).await
    }
}

/// The error with its cause (the driver's own text omits it for connection errors).
pub fn describe(e: &tokio_postgres::Error) -> String {
    let text = e.to_string();
    match std::error::Error::source(e).map(ToString::to_string) {
        Some(cause) if !text.contains(&cause) => format!("{text}: {cause}"),
        _ => text,
    }
}

/// Column `idx` of `row` as optional bytes, or [`StoreError::Corrupt`].
fn bytes_at(row: &tokio_postgres::Row, idx: usize, what: &'static str) -> Result<Option<Bytes>, StoreError> {
    row.try_get::<_, Option<&[u8]>>(idx).map(|v| v.map(Bytes::copy_from_slice)).map_err(|_| StoreError::Corrupt(what))
}

fn millis(ttl: Duration) -> f64 {
    ttl.as_secs_f64() * 1000.0
}

impl KvStore for PostgresStore {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let row = self.inner.query_opt("get", &self.inner.sql.get, &[&key]).await?;
        match row {
            Some(row) => bytes_at(&row, 0, "get"),
            None => Ok(None),
        }
    }

    async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.inner.query("mget", &self.inner.sql.mget, &[&keys]).await?;
        let mut out = vec![None; keys.len()];
        for row in &rows {
            let key: &str = row.try_get(0).map_err(|_| StoreError::Corrupt("mget"))?;
            let value = bytes_at(row, 1, "mget")?;
            for (slot, k) in out.iter_mut().zip(keys) {
                if *k == key {
                    slot.clone_from(&value);
                }
            }
        }
        Ok(out)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        self.inner.execute("set", &self.inner.sql.set, &[&key, &value, &millis(ttl)]).await.map(drop)
    }

    async fn del(&self, keys: &[&str]) -> Result<u64, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let row = self.inner.query_opt("del", &self.inner.sql.del, &[&keys]).await?;
        let n: i64 = row.and_then(|r| r.try_get(0).ok()).ok_or(StoreError::Corrupt("del"))?;
        u64::try_from(n).map_err(|_| StoreError::Corrupt("del"))
    }

    async fn set_xx_get(&self, key: &str, value: &[u8]) -> Result<Option<Bytes>, StoreError> {
        let row = self.inner.query_opt("set_xx_get", &self.inner.sql.set_xx_get, &[&key, &value]).await?;
        match row {
            Some(row) => bytes_at(&row, 0, "set_xx_get"),
            None => Ok(None),
        }
    }

    async fn sadd(&self, key: &str, member: &str, ttl: Duration) -> Result<(), StoreError> {
        self.inner.execute("sadd", &self.inner.sql.sadd, &[&key, &member, &millis(ttl)]).await.map(drop)
    }

    async fn smembers(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let row = self.inner.query_opt("smembers", &self.inner.sql.smembers, &[&key]).await?;
        match row {
            Some(row) => row
                .try_get::<_, Option<Vec<String>>>(0)
                .map(Option::unwrap_or_default)
                .map_err(|_| StoreError::Corrupt("smembers")),
            None => Ok(Vec::new()),
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.execute("ping", &self.inner.sql.ping, &[]).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_parameter_is_split_off() {
        let (c, s) = parse_url("postgres://u@127.0.0.1:5432/db?schema=run_1&connect_timeout=3").unwrap();
        assert_eq!(s, "run_1");
        assert_eq!(c.get_dbname(), Some("db"));
        let (_, s) = parse_url("postgresql://u@localhost/db").unwrap();
        assert_eq!(s, DEFAULT_SCHEMA);
        assert!(parse_url("postgres://u@localhost/db?schema=").is_err());
        assert!(parse_url("postgres://u@localhost/db?bogus=1").is_err());
    }

    #[test]
    fn every_statement_is_classified_as_its_command() {
        let sql = Sql::new("s");
        let cases = [
            (&sql.get, Some(Command::Get)),
            (&sql.mget, Some(Command::Mget)),
            (&sql.set, Some(Command::Set)),
            (&sql.del, Some(Command::Del)),
            (&sql.set_xx_get, Some(Command::Set)),
            (&sql.sadd, Some(Command::Sadd)),
            (&sql.smembers, Some(Command::Smembers)),
            (&sql.ping, Some(Command::Ping)),
            (&sql.sweep, None),
        ];
        for (text, want) in cases {
            assert_eq!(command_of_statement(text), want, "{text}");
            // As pg_stat_statements shows it: constants replaced by parameters.
            let normalized = text.replace("'1 millisecond'", "$9").replace("LIMIT 0", "LIMIT $1");
            assert_eq!(command_of_statement(&normalized), want, "{normalized}");
        }
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("a"), "\"a\"");
        assert_eq!(quote_ident("a\"; drop"), "\"a\"\"; drop\"");
    }
}
