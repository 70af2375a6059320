//! The one place a `redis-server` is started: a private server of the run's own ([`RedisProcess`]),
//! each node of a Redis Cluster (`super::cluster`) and the fresh server a kill-mode outage brings
//! back on the same port (`super::outage`) all go through [`spawn_ready`].
//!
//! Every server is loopback only, persists nothing (`--save "" --appendonly no`), keeps whatever it
//! would write in a private temp dir, and counts as started only once it answers PING.

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// How long a fresh redis-server may take to answer PING.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Flags of a data node with replicas (a Sentinel group's, a cluster's): replicas sync from the
/// primary's memory at once (no RDB file on disk, no delay), so a replica restarted or added
/// mid-run is in step within milliseconds on loopback.
pub const DISKLESS_REPLICATION: [&str; 6] =
    ["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0", "--repl-diskless-load", "on-empty-db"];
/// Upper bound on one flush.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one PING may take before the server counts as not (yet) answering.
const PING_TIMEOUT: Duration = Duration::from_millis(500);

/// A redis-server of the run's own: loopback only, nothing persisted, data dir in a temp dir.
/// Killed on drop.
pub struct RedisProcess {
    pub port: u16,
    /// `redis://127.0.0.1:PORT`, what targets get as `--store`.
    pub url: String,
    /// Held so the server is reaped and killed on drop (`kill_on_drop`).
    child: Option<Child>,
    /// `--dir`: where redis-server would write anything; removed on drop.
    dir: PrivateDir,
}

impl std::fmt::Debug for RedisProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisProcess").field("url", &self.url).field("pid", &self.pid()).finish()
    }
}

impl RedisProcess {
    /// Start `redis-server` on a free loopback port and wait (at most [`START_TIMEOUT`]) until it
    /// answers PING. A lost race for the port is retried on another.
    pub async fn start() -> anyhow::Result<RedisProcess> {
        let mut last_err = anyhow!("redis-server did not start");
        for _ in 0..3 {
            match Self::start_on(free_port()?, START_TIMEOUT).await {
                Ok(r) => return Ok(r),
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }

    /// Start `redis-server` on `port` (which must be free), waiting at most `ready_within` for PING.
    pub async fn start_on(port: u16, ready_within: Duration) -> anyhow::Result<RedisProcess> {
        let dir = PrivateDir::create("redis").context("creating a temp dir for redis-server")?;
        let child = spawn_ready(port, &dir.0, &[], ready_within).await?;
        let url = format!("redis://127.0.0.1:{port}");
        tracing::debug!(%url, pid = child.id(), "redis-server started");
        Ok(RedisProcess { port, url, child: Some(child), dir })
    }

    /// `FLUSHALL` and `CONFIG RESETSTAT`: an empty store with zeroed counters, between strategies.
    pub async fn flush(&self) -> anyhow::Result<()> {
        let url = self.url.clone();
        tokio::time::timeout(FLUSH_TIMEOUT, async move {
            let client = ::redis::Client::open(url.as_str())?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            ::redis::cmd("FLUSHALL").query_async::<()>(&mut conn).await?;
            ::redis::cmd("CONFIG").arg("RESETSTAT").query_async::<()>(&mut conn).await?;
            anyhow::Ok(())
        })
        .await
        .map_err(|_| anyhow!("flushing {}: no answer within {} s", self.url, FLUSH_TIMEOUT.as_secs()))?
        .with_context(|| format!("flushing {}", self.url))
    }

    /// Kill the server and reap it (nothing is persisted, so there is nothing to shut down cleanly).
    pub async fn stop(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
        tracing::debug!(dir = %self.dir.0.display(), "redis-server stopped");
    }

    /// The server's pid (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().and_then(Child::id).unwrap_or(0)
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
    }
}

/// Spawn `redis-server` on loopback `port` with nothing persisted, its files in `dir`, plus `extra`
/// arguments (cluster mode), and wait at most `ready_within` until it answers PING. The child is
/// killed when dropped. An early exit is an error carrying the server's stderr.
pub(crate) async fn spawn_ready(
    port: u16,
    dir: &Path,
    extra: &[String],
    ready_within: Duration,
) -> anyhow::Result<Child> {
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(extra)
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting redis-server (is it installed? scripts/setup installs it)")?;
    let deadline = Instant::now() + ready_within;
    while !ping(port).await {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = tokio::time::timeout(Duration::from_secs(1), e.read_to_string(&mut err)).await;
            }
            bail!("redis-server on port {port} exited ({status}): {}", err.trim());
        }
        if Instant::now() >= deadline {
            let _ = child.start_kill();
            bail!("redis-server on port {port} did not answer PING within {ready_within:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Nothing more to read from stderr; a full pipe must not block the server.
    drop(child.stderr.take());
    Ok(child)
}

/// PING over a fresh raw connection; true on `+PONG` within [`PING_TIMEOUT`].
pub(crate) async fn ping(port: u16) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        s.write_all(b"PING\r\n").await.ok()?;
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf).await.ok()?;
        Some(buf[..n].starts_with(b"+PONG"))
    };
    matches!(tokio::time::timeout(PING_TIMEOUT, attempt).await, Ok(Some(true)))
}

/// A free loopback port (bound, then released for a child to bind).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(StdListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// True when `redis-server` is on `PATH`.
pub fn redis_server_available() -> bool {
    std::process::Command::new("redis-server")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A fresh directory under the system temp dir, removed (with its contents) on drop.
pub(crate) struct PrivateDir(pub(crate) PathBuf);

impl PrivateDir {
    /// `authbench-<what>-<pid>-<n>-<nanos>` under the temp dir.
    pub(crate) fn create(what: &str) -> std::io::Result<PrivateDir> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("authbench-{what}-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir(&path)?;
        Ok(PrivateDir(path))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
