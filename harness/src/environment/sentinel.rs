//! A private Redis Sentinel group for a run: one primary, two replicas and three Sentinels, each a
//! process on a free loopback port, and the failover injected into it ([`inject_failover`]).
//!
//! Data nodes go through the one redis-server starter ([`super::redis::spawn_ready`]); replication is
//! diskless (nothing is written, even for a full sync). Sentinels are `redis-server <conf>
//! --sentinel` with a generated config in the group's temp dir, a quorum of 2 and short timers
//! ([`DOWN_AFTER_MS`], [`FAILOVER_TIMEOUT_MS`]), so a failover takes a second or two. The group
//! counts as started only when every Sentinel knows both replicas and both other Sentinels (a
//! failover needs all of that).
//!
//! Targets get [`SentinelGroup::url`] (`redis-sentinel://…`): they ask the Sentinels for the
//! primary, and again after a failover. The harness reads store load from the primary of the
//! moment ([`SentinelGroup::primary_url`]).

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use tokio::process::{Child, Command};

use super::outage::signal;
use super::redis::{DISKLESS_REPLICATION, FLUSH_TIMEOUT, PrivateDir, START_TIMEOUT, free_port, ping, spawn_ready};

/// The service name the Sentinels monitor and targets ask for.
pub const SERVICE: &str = "authbench";
/// Replicas of the primary.
const REPLICAS: usize = 2;
/// Sentinels; a quorum of [`QUORUM`] of them must agree the primary is down.
const SENTINELS: usize = 3;
const QUORUM: usize = 2;
/// `down-after-milliseconds`: how long the primary may not answer before a Sentinel thinks it down.
pub const DOWN_AFTER_MS: u64 = 1000;
/// `failover-timeout`: bounds each failover step (and the wait before a retry).
pub const FAILOVER_TIMEOUT_MS: u64 = 5000;
/// Longest wait for a started group to be ready (replicas online, Sentinels aware of each other).
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest wait, after the kill, for the Sentinels to name a new primary.
const PROMOTION_TIMEOUT: Duration = Duration::from_secs(15);

/// What a group is started with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SentinelOptions {
    /// `min-replicas-to-write` on every data node at start (0: off); a run sets it again per
    /// variant ([`SentinelGroup::set_min_replicas`]).
    pub min_replicas_to_write: u32,
    /// `min-replicas-max-lag`, seconds (at least 1).
    pub min_replicas_max_lag_s: u32,
}

/// One process of the group.
struct Proc {
    port: u16,
    /// Held so the process is killed on drop (`kill_on_drop`).
    child: Option<Child>,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.as_ref().and_then(Child::id).unwrap_or(0)
    }
}

/// A running Sentinel group. Every process is killed on drop.
pub struct SentinelGroup {
    /// Data nodes; index 0 was the primary at start.
    data: Vec<Proc>,
    sentinels: Vec<Proc>,
    /// Set once a failover was injected: the group is then rebuilt before it is used again.
    failed_over: Arc<AtomicBool>,
    /// What it was started with, for a rebuild.
    pub options: SentinelOptions,
    /// Every node's dir and the Sentinels' config files; removed on drop (declared last).
    dir: PrivateDir,
}

impl std::fmt::Debug for SentinelGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ports = |v: &[Proc]| v.iter().map(|p| p.port).collect::<Vec<_>>();
        f.debug_struct("SentinelGroup")
            .field("data", &ports(&self.data))
            .field("sentinels", &ports(&self.sentinels))
            .finish()
    }
}

impl SentinelGroup {
    /// Start a primary, its replicas and the Sentinels, and wait (bounded) until the group can fail
    /// over. A lost race for a port is retried with other ports.
    pub async fn start(options: SentinelOptions) -> anyhow::Result<SentinelGroup> {
        let mut last_err = anyhow!("the Sentinel group did not start");
        for _ in 0..3 {
            match Self::start_once(options).await {
                Ok(g) => return Ok(g),
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }

    async fn start_once(options: SentinelOptions) -> anyhow::Result<SentinelGroup> {
        let dir = PrivateDir::create("sentinel").context("creating a temp dir for the Sentinel group")?;
        let mut group =
            SentinelGroup { data: Vec::new(), sentinels: Vec::new(), failed_over: Arc::default(), options, dir };
        let primary = free_port()?;
        for i in 0..=REPLICAS {
            let port = if i == 0 { primary } else { free_port()? };
            let child = group.start_data_node(i, port, (i > 0).then_some(primary)).await?;
            group.data.push(Proc { port, child: Some(child) });
        }
        group.wait_replicas_online(primary).await?;
        for i in 0..SENTINELS {
            let port = free_port()?;
            let child = group.start_sentinel(i, port, primary).await?;
            group.sentinels.push(Proc { port, child: Some(child) });
        }
        group.wait_sentinels_ready().await?;
        tracing::debug!(?group, "sentinel group started");
        Ok(group)
    }

    /// Data node `i` on `port`, a replica of `primary` when given.
    async fn start_data_node(&self, i: usize, port: u16, primary: Option<u16>) -> anyhow::Result<Child> {
        let node_dir = self.dir.0.join(format!("data-{i}"));
        std::fs::create_dir(&node_dir).context("creating a data node dir")?;
        let o = self.options;
        let mut extra: Vec<String> = DISKLESS_REPLICATION
            .into_iter()
            .chain([
                "--min-replicas-to-write",
                &o.min_replicas_to_write.to_string(),
                "--min-replicas-max-lag",
                &o.min_replicas_max_lag_s.max(1).to_string(),
            ])
            .map(str::to_owned)
            .collect();
        if let Some(p) = primary {
            extra.extend(["--replicaof".to_owned(), "127.0.0.1".to_owned(), p.to_string()]);
        }
        spawn_ready(port, &node_dir, &extra, START_TIMEOUT).await.with_context(|| format!("data node on port {port}"))
    }

    /// Sentinel `i` on `port`, monitoring `primary`, from a config file of its own (Sentinels
    /// rewrite it).
    async fn start_sentinel(&self, i: usize, port: u16, primary: u16) -> anyhow::Result<Child> {
        let conf = self.dir.0.join(format!("sentinel-{i}.conf"));
        let text = format!(
            "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {dir}\n\
             sentinel monitor {SERVICE} 127.0.0.1 {primary} {QUORUM}\n\
             sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n\
             sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n\
             sentinel parallel-syncs {SERVICE} {REPLICAS}\n",
            dir = self.dir.0.display()
        );
        std::fs::write(&conf, text).context("writing a Sentinel config")?;
        let mut child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting redis-server --sentinel (is redis-server installed? scripts/setup installs it)")?;
        let deadline = Instant::now() + START_TIMEOUT;
        while !ping(port).await {
            if let Ok(Some(status)) = child.try_wait() {
                bail!("Sentinel on port {port} exited ({status})");
            }
            if Instant::now() >= deadline {
                bail!("Sentinel on port {port} did not answer PING within {START_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(child)
    }

    /// Until the primary reports every replica online.
    async fn wait_replicas_online(&self, primary: u16) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let info: String = query(primary, &["INFO", "replication"]).await.unwrap_or_default();
            if info.matches("state=online").count() >= REPLICAS {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("the replicas of 127.0.0.1:{primary} were not online within {READY_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Until every Sentinel knows both replicas and every other Sentinel.
    async fn wait_sentinels_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        for s in &self.sentinels {
            loop {
                let replicas: Vec<::redis::Value> =
                    query(s.port, &["SENTINEL", "REPLICAS", SERVICE]).await.unwrap_or_default();
                let others: Vec<::redis::Value> =
                    query(s.port, &["SENTINEL", "SENTINELS", SERVICE]).await.unwrap_or_default();
                if replicas.len() >= REPLICAS && others.len() >= SENTINELS - 1 {
                    break;
                }
                if Instant::now() >= deadline {
                    bail!(
                        "Sentinel {} knew {} replicas and {} other Sentinels after {READY_TIMEOUT:?}",
                        s.port,
                        replicas.len(),
                        others.len()
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// What targets get as `--store`: every Sentinel, and the service name.
    pub fn url(&self) -> String {
        let mut ports = self.sentinels.iter().map(|s| s.port);
        let first = ports.next().unwrap_or(0);
        let nodes: String = ports.map(|p| format!("&node=127.0.0.1:{p}")).collect();
        format!("redis-sentinel://127.0.0.1:{first}/0?sentinelServiceName={SERVICE}{nodes}")
    }

    /// The primary the Sentinels name now.
    pub async fn primary_port(&self) -> anyhow::Result<u16> {
        primary_of(&self.sentinel_ports()).await.ok_or_else(|| anyhow!("no Sentinel named a primary"))
    }

    /// `redis://` URL of the primary at start (what the run reads store load from until a failover).
    pub fn primary_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.data.first().map_or(0, |p| p.port))
    }

    /// Whether a failover was injected (the group must be rebuilt before it is used again).
    pub fn failed_over(&self) -> bool {
        self.failed_over.load(Ordering::Relaxed)
    }

    fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|s| s.port).collect()
    }

    /// The processes and ports a failover task needs (it outlives no borrow of the group).
    pub fn handles(&self) -> super::FailoverHandles {
        super::FailoverHandles::Sentinel(SentinelHandles {
            primary: (self.data[0].pid(), self.data[0].port),
            replicas: self.data[1..].iter().map(|p| (p.pid(), p.port)).collect(),
            sentinels: self.sentinel_ports(),
            failed_over: Arc::clone(&self.failed_over),
        })
    }

    /// `FLUSHALL` (replicated) and `CONFIG RESETSTAT` on the primary: an empty store with zeroed
    /// counters, between variants.
    pub async fn flush(&self) -> anyhow::Result<()> {
        let port = self.primary_port().await?;
        for cmd in [&["FLUSHALL"][..], &["CONFIG", "RESETSTAT"]] {
            let _: () = query(port, cmd).await.with_context(|| format!("{} on the primary {port}", cmd.join(" ")))?;
        }
        Ok(())
    }

    /// `CONFIG SET min-replicas-to-write` / `min-replicas-max-lag` on every data node (a replica
    /// promoted later keeps it).
    pub async fn set_min_replicas(&self, replicas: u32, max_lag_s: u32) -> anyhow::Result<()> {
        let (n, lag) = (replicas.to_string(), max_lag_s.max(1).to_string());
        for p in &self.data {
            let args = ["CONFIG", "SET", "min-replicas-to-write", n.as_str(), "min-replicas-max-lag", lag.as_str()];
            let _: () = query(p.port, &args).await.with_context(|| format!("CONFIG SET on data node {}", p.port))?;
        }
        Ok(())
    }

    /// Kill every process and reap it (nothing is persisted).
    pub async fn stop(mut self) {
        for p in self.data.iter_mut().chain(self.sentinels.iter_mut()) {
            if let Some(mut c) = p.child.take() {
                let _ = c.kill().await;
            }
        }
        tracing::debug!(dir = %self.dir.0.display(), "sentinel group stopped");
    }
}

impl Drop for SentinelGroup {
    fn drop(&mut self) {
        for p in self.data.iter_mut().chain(self.sentinels.iter_mut()) {
            if let Some(c) = p.child.as_mut() {
                let _ = c.start_kill();
            }
        }
    }
}

/// What a failover task holds of a Sentinel group: process ids and ports, not the group.
#[derive(Debug, Clone)]
pub struct SentinelHandles {
    /// The primary at start: (pid, port).
    pub primary: (u32, u16),
    /// Its replicas: (pid, port).
    pub replicas: Vec<(u32, u16)>,
    /// Sentinel ports, asked which primary they name.
    pub sentinels: Vec<u16>,
    /// The group's flag: set by an injection, so the group is rebuilt before the next variant.
    failed_over: Arc<AtomicBool>,
}

/// Resumes stopped replicas on drop, so a failed injection never leaves them stopped.
pub struct ResumeOnDrop(Vec<u32>);

impl ResumeOnDrop {
    /// Stop (SIGSTOP) every one of `pids`; the guard resumes them when dropped. A failure part way
    /// resumes those already stopped.
    pub fn stop(pids: impl IntoIterator<Item = u32>) -> anyhow::Result<Self> {
        let mut guard = ResumeOnDrop(Vec::new());
        for pid in pids {
            signal(pid, libc::SIGSTOP)?;
            guard.0.push(pid);
        }
        Ok(guard)
    }
}

impl Drop for ResumeOnDrop {
    fn drop(&mut self) {
        for &pid in &self.0 {
            let _ = signal(pid, libc::SIGCONT);
        }
    }
}

impl SentinelHandles {
    /// Cut replication (`cut-replication`): stop the replicas (SIGSTOP, so they cannot reconnect
    /// and resync from the backlog) and drop their links on the primary (`CLIENT KILL TYPE
    /// replica`): from here the primary acknowledges writes no replica will ever see. Returns the
    /// guard that resumes the replicas.
    pub async fn cut_replication(&self) -> anyhow::Result<ResumeOnDrop> {
        self.failed_over.store(true, Ordering::Relaxed);
        let guard = ResumeOnDrop::stop(self.replicas.iter().map(|r| r.0))?;
        let _: i64 = query(self.primary.1, &["CLIENT", "KILL", "TYPE", "replica"])
            .await
            .context("dropping the replication links on the primary")?;
        Ok(guard)
    }

    /// Kill the primary (SIGKILL). The Sentinels then promote a replica on their own; the group
    /// is rebuilt before it is used again.
    pub fn kill_primary(&self) -> anyhow::Result<()> {
        self.failed_over.store(true, Ordering::Relaxed);
        signal(self.primary.0, libc::SIGKILL).context("killing the primary")
    }

    /// Wait (bounded) until the Sentinels name a primary other than the killed one; its port and
    /// when it was first named.
    pub async fn wait_promoted(&self) -> Option<(u16, Instant)> {
        let deadline = Instant::now() + PROMOTION_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(port) = primary_of(&self.sentinels).await
                && port != self.primary.1
            {
                return Some((port, Instant::now()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

/// The primary the first answering Sentinel names (`SENTINEL GET-MASTER-ADDR-BY-NAME`).
async fn primary_of(sentinels: &[u16]) -> Option<u16> {
    for &port in sentinels {
        if let Ok(addr) = query::<Vec<String>>(port, &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE]).await
            && let Some(p) = addr.get(1).and_then(|p| p.parse().ok())
        {
            return Some(p);
        }
    }
    None
}

/// One command on a fresh connection to `127.0.0.1:port`, bounded by [`FLUSH_TIMEOUT`].
async fn query<T: ::redis::FromRedisValue>(port: u16, args: &[&str]) -> anyhow::Result<T> {
    let attempt = async {
        let client = ::redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let mut cmd = ::redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        anyhow::Ok(cmd.query_async::<T>(&mut conn).await?)
    };
    tokio::time::timeout(FLUSH_TIMEOUT, attempt)
        .await
        .map_err(|_| anyhow!("{} on port {port}: no answer within {FLUSH_TIMEOUT:?}", args.join(" ")))?
}
