//! A private Redis Cluster for a run: three or more masters, each with `replicas` replicas (none by
//! default), every node a `redis-server` in cluster mode on free loopback ports, joined with
//! `redis-cli --cluster create --cluster-replicas N`, and torn down on [`RedisCluster::stop`] or
//! drop. Also the failover injected into one shard of it ([`ShardHandles`]).
//!
//! Each node is started by the one redis-server starter ([`super::redis::spawn_ready`]).
//! Replication is diskless (nothing is written, even for a full sync). Every node runs with
//! `cluster-require-full-coverage no`, so while one master is down (failing over, or gone for good
//! with no replica) the other masters keep serving their slots; with replicas the
//! `cluster-node-timeout` is short ([`NODE_TIMEOUT_REPLICAS_MS`]) so a failover takes a second or
//! two. Store load is measured by `collect::redis::snapshot_sum` over [`RedisCluster::url_list`]
//! (the masters at start: a replica replays its master's writes and would count them twice).

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use super::outage::signal;
use super::redis::{DISKLESS_REPLICATION, FLUSH_TIMEOUT, PrivateDir, START_TIMEOUT, free_port, spawn_ready};
use super::sentinel::ResumeOnDrop;

/// Fewest masters Redis Cluster accepts.
pub const MIN_NODES: usize = 3;
/// Most replicas per master a run may ask for.
pub const MAX_REPLICAS: usize = 2;
/// Hash slots of a Redis Cluster.
pub const SLOTS: u32 = 16384;
/// Longest `redis-cli --cluster create` may take.
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait, after create, for every node to report `cluster_state:ok` (and every replica to
/// be in sync).
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// `cluster-node-timeout` of a cluster of masters only: how long a node may be unreachable before
/// it counts as failing.
const NODE_TIMEOUT_MS: u64 = 2000;
/// `cluster-node-timeout` with replicas: a master unreachable this long is failed over (the
/// replica's election adds about half a second to a second).
pub const NODE_TIMEOUT_REPLICAS_MS: u64 = 1000;
/// Longest wait, after the kill, for a replica to take the dead master's slots.
const PROMOTION_TIMEOUT: Duration = Duration::from_secs(15);

/// What a cluster is started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterOptions {
    /// Masters (at least [`MIN_NODES`]): the slots are spread evenly over them.
    pub masters: usize,
    /// Replicas of each master (`--cluster-replicas`); 0: a master that dies takes its slots with it.
    pub replicas: usize,
}

/// One cluster node: a redis-server child process.
struct Node {
    /// Client port (`redis://127.0.0.1:PORT`).
    port: u16,
    /// Held so the process is killed on drop (`kill_on_drop`).
    child: Option<Child>,
}

impl Node {
    fn pid(&self) -> u32 {
        self.child.as_ref().and_then(Child::id).unwrap_or(0)
    }
}

/// One master and its replicas as `CLUSTER NODES` named them after create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// The master's client port.
    pub master: u16,
    /// Its replicas' client ports.
    pub replicas: Vec<u16>,
    /// Its slot ranges, inclusive.
    pub slots: Vec<(u16, u16)>,
}

/// A running local Redis Cluster. Killed (every node) on drop.
pub struct RedisCluster {
    nodes: Vec<Node>,
    /// What it was started with, for a rebuild.
    pub options: ClusterOptions,
    /// Masters with their replicas and slots, as the cluster named them after create.
    shards: Vec<Shard>,
    /// Set once a failover was injected: the cluster is then rebuilt before it is used again.
    failed_over: Arc<AtomicBool>,
    /// Data dir and `nodes-<port>.conf` files of every node; removed on drop (after the nodes,
    /// being declared last).
    dir: PrivateDir,
}

impl std::fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCluster").field("shards", &self.shards).finish()
    }
}

impl RedisCluster {
    /// Start `nodes` (at least [`MIN_NODES`]) cluster-mode masters without replicas.
    pub async fn start(nodes: usize) -> anyhow::Result<RedisCluster> {
        Self::start_with(ClusterOptions { masters: nodes, replicas: 0 }).await
    }

    /// Start the masters and their replicas, create the cluster and wait (bounded) until every
    /// node reports `cluster_state:ok` and every replica is in sync. A lost race for a port is
    /// retried with other ports.
    pub async fn start_with(options: ClusterOptions) -> anyhow::Result<RedisCluster> {
        if options.masters < MIN_NODES {
            bail!("a Redis Cluster needs at least {MIN_NODES} nodes, got {}", options.masters);
        }
        if options.replicas > MAX_REPLICAS {
            bail!("at most {MAX_REPLICAS} replicas per master, got {}", options.replicas);
        }
        let mut last_err = anyhow!("the Redis Cluster did not start");
        for _ in 0..3 {
            match Self::start_once(options).await {
                Ok(c) => return Ok(c),
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }

    async fn start_once(options: ClusterOptions) -> anyhow::Result<RedisCluster> {
        let dir = PrivateDir::create("cluster").context("creating a temp dir for the cluster")?;
        let n = options.masters * (1 + options.replicas);
        let mut cluster = RedisCluster {
            nodes: Vec::with_capacity(n),
            options,
            shards: Vec::new(),
            failed_over: Arc::default(),
            dir,
        };
        for _ in 0..n {
            let port = free_port()?;
            let child = cluster.start_node(port).await.with_context(|| format!("cluster node on port {port}"))?;
            cluster.nodes.push(Node { port, child: Some(child) });
        }
        cluster.create().await?;
        cluster.shards = cluster.read_shards().await?;
        cluster.wait_ready().await?;
        tracing::debug!(?cluster, "redis cluster started");
        Ok(cluster)
    }

    /// One cluster-mode node on `port`.
    async fn start_node(&self, port: u16) -> anyhow::Result<Child> {
        // The cluster bus port must be free too: the default (port + 10000) may not even exist.
        let bus_port = free_port()?;
        let conf = self.dir.0.join(format!("nodes-{port}.conf"));
        let timeout_ms = if self.options.replicas > 0 { NODE_TIMEOUT_REPLICAS_MS } else { NODE_TIMEOUT_MS };
        let extra: Vec<String> = [
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            &bus_port.to_string(),
            "--cluster-node-timeout",
            &timeout_ms.to_string(),
            "--cluster-config-file",
            &conf.to_string_lossy(),
            "--cluster-require-full-coverage",
            "no",
        ]
        .into_iter()
        .chain(DISKLESS_REPLICATION)
        .map(str::to_owned)
        .collect();
        spawn_ready(port, &self.dir.0, &extra, START_TIMEOUT).await
    }

    /// `redis-cli --cluster create` over every node, slots spread evenly over the masters.
    async fn create(&self) -> anyhow::Result<()> {
        let addrs: Vec<String> = self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let create = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", &self.options.replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(CREATE_TIMEOUT, create)
            .await
            .map_err(|_| anyhow!("redis-cli --cluster create took longer than {CREATE_TIMEOUT:?}"))?
            .context("running redis-cli (is it installed? scripts/setup installs it)")?;
        if !out.status.success() {
            bail!(
                "redis-cli --cluster create failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// The masters, their replicas and slots, from the first node's `CLUSTER NODES`, masters in
    /// slot order; waits (at most [`READY_TIMEOUT`]) until that node knows every replica's role
    /// (the replicas' `CLUSTER REPLICATE` reaches it by gossip).
    async fn read_shards(&self) -> anyhow::Result<Vec<Shard>> {
        let port = self.nodes.first().map_or(0, |n| n.port);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let text = command(port, "CLUSTER NODES").await.unwrap_or_default();
            let shards = parse_shards(&text);
            let replicas: usize = shards.iter().map(|s| s.replicas.len()).sum();
            if shards.len() == self.options.masters && replicas == self.options.masters * self.options.replicas {
                return Ok(shards);
            }
            if Instant::now() >= deadline {
                bail!(
                    "the cluster has {} masters and {replicas} replicas after {READY_TIMEOUT:?}: {text}",
                    shards.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait (at most [`READY_TIMEOUT`]) until every node reports `cluster_state:ok` and every
    /// replica's link to its master is up.
    async fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let replicas: Vec<u16> = self.shards.iter().flat_map(|s| s.replicas.iter().copied()).collect();
        for port in self.ports() {
            let (cmd, want) = if replicas.contains(&port) {
                ("INFO replication", "master_link_status:up")
            } else {
                ("CLUSTER INFO", "cluster_state:ok")
            };
            loop {
                let info = command(port, cmd).await.unwrap_or_default();
                let cluster_ok = command(port, "CLUSTER INFO").await.unwrap_or_default();
                if info.lines().any(|l| l.trim() == want) && cluster_ok.contains("cluster_state:ok") {
                    break;
                }
                if Instant::now() >= deadline {
                    bail!("cluster node {port} not `{want}` within {READY_TIMEOUT:?}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// The masters' `redis://127.0.0.1:PORT`, comma-joined: what a target's `--store` takes (the
    /// client finds the replicas, and a promoted one, in the cluster's own slot map).
    pub fn urls(&self) -> String {
        self.url_list().join(",")
    }

    /// The masters' `redis://127.0.0.1:PORT` at start, in slot order.
    pub fn url_list(&self) -> Vec<String> {
        self.shards.iter().map(|s| format!("redis://127.0.0.1:{}", s.master)).collect()
    }

    /// Every node's client port (masters and replicas).
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// The masters with their replicas and slots, as at start.
    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// Whether a failover was injected (the cluster must be rebuilt before it is used again).
    pub fn failed_over(&self) -> bool {
        self.failed_over.load(Ordering::Relaxed)
    }

    /// `FLUSHALL` (replicated) and `CONFIG RESETSTAT` on every master, `CONFIG RESETSTAT` on every
    /// replica: an empty cluster with zeroed counters.
    pub async fn flush(&self) -> anyhow::Result<()> {
        for shard in &self.shards {
            for cmd in ["FLUSHALL", "CONFIG RESETSTAT"] {
                expect_ok(shard.master, cmd).await?;
            }
            for &replica in &shard.replicas {
                expect_ok(replica, "CONFIG RESETSTAT").await?;
            }
        }
        Ok(())
    }

    /// `CONFIG SET min-replicas-to-write` / `min-replicas-max-lag` on every node (a replica
    /// promoted later keeps it).
    pub async fn set_min_replicas(&self, replicas: u32, max_lag_s: u32) -> anyhow::Result<()> {
        let cmd = format!("CONFIG SET min-replicas-to-write {replicas} min-replicas-max-lag {}", max_lag_s.max(1));
        for port in self.ports() {
            expect_ok(port, &cmd).await?;
        }
        Ok(())
    }

    /// What a failover task needs to fail the first master (slots from 0): its process, its
    /// replicas' and the other masters' ports. `None` before the cluster was read.
    pub fn handles(&self) -> Option<ShardHandles> {
        let victim = self.shards.first()?;
        let pid_of = |port: u16| self.nodes.iter().find(|n| n.port == port).map_or(0, Node::pid);
        Some(ShardHandles {
            master: (pid_of(victim.master), victim.master),
            replicas: victim.replicas.iter().map(|&p| (pid_of(p), p)).collect(),
            survivors: self.shards[1..].iter().map(|s| s.master).collect(),
            slots: victim.slots.clone(),
            failed_over: Arc::clone(&self.failed_over),
        })
    }

    /// Kill every node and reap it (nothing is persisted).
    pub async fn stop(mut self) {
        for node in &mut self.nodes {
            if let Some(mut c) = node.child.take() {
                let _ = c.kill().await;
            }
        }
        tracing::debug!(dir = %self.dir.0.display(), "redis cluster stopped");
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(c) = node.child.as_mut() {
                let _ = c.start_kill();
            }
        }
    }
}

/// What a failover task holds of one shard: process ids and ports, not the cluster.
#[derive(Debug, Clone)]
pub struct ShardHandles {
    /// The master failed: (pid, port).
    pub master: (u32, u16),
    /// Its replicas: (pid, port); empty: nothing takes its slots over (a partial outage).
    pub replicas: Vec<(u32, u16)>,
    /// The other masters' ports, asked who owns the failed master's slots.
    pub survivors: Vec<u16>,
    /// The failed master's slot ranges, inclusive.
    pub slots: Vec<(u16, u16)>,
    /// The cluster's flag: set by an injection, so the cluster is rebuilt before the next variant.
    failed_over: Arc<AtomicBool>,
}

impl ShardHandles {
    /// Stop the master's replicas (SIGSTOP) and drop their links on it: from here it acknowledges
    /// writes no replica will see. Returns the guard that resumes the replicas.
    pub async fn cut_replication(&self) -> anyhow::Result<ResumeOnDrop> {
        self.failed_over.store(true, Ordering::Relaxed);
        let guard = ResumeOnDrop::stop(self.replicas.iter().map(|r| r.0))?;
        let reply = command(self.master.1, "CLIENT KILL TYPE replica").await;
        if !reply.as_deref().is_some_and(|r| r.starts_with(':')) {
            bail!("dropping the replication links on master {}: {reply:?}", self.master.1);
        }
        Ok(guard)
    }

    /// Kill the master (SIGKILL); a replica, if it has one, takes its slots over on its own.
    pub fn kill_master(&self) -> anyhow::Result<()> {
        self.failed_over.store(true, Ordering::Relaxed);
        signal(self.master.0, libc::SIGKILL).context("killing the cluster master")
    }

    /// Wait (bounded) until a surviving master's `CLUSTER NODES` names another node master of the
    /// killed one's first slot; that node's port and when it was first seen. `None` at once when
    /// the master had no replica.
    pub async fn wait_promoted(&self) -> Option<(u16, Instant)> {
        let first_slot = self.slots.first()?.0;
        if self.replicas.is_empty() {
            return None;
        }
        let deadline = Instant::now() + PROMOTION_TIMEOUT;
        while Instant::now() < deadline {
            for &port in &self.survivors {
                let text = command(port, "CLUSTER NODES").await.unwrap_or_default();
                let owner = parse_shards(&text).into_iter().find(|s| s.slots.iter().any(|r| r.0 == first_slot));
                if let Some(s) = owner.filter(|s| s.master != self.master.1) {
                    return Some((s.master, Instant::now()));
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Hash slots the master served.
    pub fn slot_count(&self) -> u32 {
        self.slots.iter().map(|(a, b)| u32::from(b - a) + 1).sum()
    }
}

/// Masters (flag `master`, not `fail`) with slots and their replicas, from `CLUSTER NODES` text,
/// in slot order. Lines: `id ip:port@bus[,host] flags master-id ping pong epoch link slot...`.
pub fn parse_shards(text: &str) -> Vec<Shard> {
    let lines: Vec<Vec<&str>> =
        text.lines().map(|l| l.split_whitespace().collect()).filter(|f: &Vec<&str>| f.len() >= 8).collect();
    let port = |addr: &str| addr.split('@').next()?.rsplit(':').next()?.parse::<u16>().ok();
    let mut shards: Vec<(String, Shard)> = Vec::new();
    for f in &lines {
        let flags: Vec<&str> = f[2].split(',').collect();
        if !flags.contains(&"master") || flags.contains(&"fail") {
            continue;
        }
        let slots: Vec<(u16, u16)> =
            f[8..].iter().filter(|s| !s.starts_with('[')).filter_map(|s| slot_range(s)).collect();
        if let (Some(p), false) = (port(f[1]), slots.is_empty()) {
            shards.push((f[0].to_owned(), Shard { master: p, replicas: Vec::new(), slots }));
        }
    }
    for f in &lines {
        if let (Some((_, shard)), Some(p)) = (shards.iter_mut().find(|(id, _)| id == f[3]), port(f[1])) {
            shard.replicas.push(p);
        }
    }
    let mut shards: Vec<Shard> = shards.into_iter().map(|(_, s)| s).collect();
    shards.sort_by_key(|s| s.slots.first().map_or(u16::MAX, |r| r.0));
    shards
}

/// `a-b` or `a` as an inclusive range.
fn slot_range(s: &str) -> Option<(u16, u16)> {
    match s.split_once('-') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => s.parse().ok().map(|a| (a, a)),
    }
}

/// Slot ranges as text: `0-5460` or `0-10, 12`.
pub fn slots_text(slots: &[(u16, u16)]) -> String {
    let parts: Vec<String> =
        slots.iter().map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
    parts.join(", ")
}

/// Run `cmd` on a node and require `+OK`.
async fn expect_ok(port: u16, cmd: &str) -> anyhow::Result<()> {
    let reply = command(port, cmd).await.ok_or_else(|| anyhow!("{cmd} on node {port}: no answer"))?;
    if !reply.starts_with('+') {
        bail!("{cmd} on node {port}: {reply}");
    }
    Ok(())
}

/// Send one inline command to a node over a fresh connection; the reply's first line, or for a
/// bulk string its text. `None` on any failure or after [`FLUSH_TIMEOUT`].
async fn command(port: u16, cmd: &str) -> Option<String> {
    let attempt = async {
        let mut s = BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.ok()?);
        s.get_mut().write_all(format!("{cmd}\r\n").as_bytes()).await.ok()?;
        let mut line = String::new();
        s.read_line(&mut line).await.ok()?;
        let line = line.trim_end().to_owned();
        match line.strip_prefix('$').map(str::parse::<usize>) {
            Some(Ok(len)) => {
                let mut body = vec![0u8; len + 2];
                s.read_exact(&mut body).await.ok()?;
                body.truncate(len);
                Some(String::from_utf8_lossy(&body).into_owned())
            }
            _ => Some(line),
        }
    };
    tokio::time::timeout(FLUSH_TIMEOUT, attempt).await.ok().flatten()
}
