//! A private Redis Cluster for a run: three or more `redis-server` processes in cluster mode on free
//! loopback ports, joined with `redis-cli --cluster create` (all masters, no replicas), and torn
//! down on [`RedisCluster::stop`] or drop.
//!
//! Each node is started by the one redis-server starter ([`super::redis::spawn_ready`]). Store load
//! on a cluster is measured by `collect::redis::snapshot_sum` over [`RedisCluster::url_list`].

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use super::redis::{FLUSH_TIMEOUT, PrivateDir, START_TIMEOUT, free_port, spawn_ready};

/// Fewest masters Redis Cluster accepts.
pub const MIN_NODES: usize = 3;
/// Longest `redis-cli --cluster create` may take.
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait, after create, for every node to report `cluster_state:ok`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// `cluster-node-timeout`: how long a node may be unreachable before it counts as failing.
const NODE_TIMEOUT_MS: u64 = 2000;

/// One cluster node: a redis-server child process.
struct Node {
    /// Client port (`redis://127.0.0.1:PORT`).
    port: u16,
    /// Held so the process is killed on drop (`kill_on_drop`).
    child: Option<Child>,
}

/// A running local Redis Cluster. Killed (every node) on drop.
pub struct RedisCluster {
    nodes: Vec<Node>,
    /// Data dir and `nodes-<port>.conf` files of every node; removed on drop (after the nodes,
    /// being declared last).
    dir: PrivateDir,
}

impl std::fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCluster").field("ports", &self.ports()).finish()
    }
}

impl RedisCluster {
    /// Start `nodes` (at least [`MIN_NODES`]) cluster-mode redis-servers, create the cluster and
    /// wait (bounded) until every node reports `cluster_state:ok`. A lost race for a port is
    /// retried with other ports.
    pub async fn start(nodes: usize) -> anyhow::Result<RedisCluster> {
        if nodes < MIN_NODES {
            bail!("a Redis Cluster needs at least {MIN_NODES} nodes, got {nodes}");
        }
        let mut last_err = anyhow!("the Redis Cluster did not start");
        for _ in 0..3 {
            match Self::start_once(nodes).await {
                Ok(c) => return Ok(c),
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }

    async fn start_once(n: usize) -> anyhow::Result<RedisCluster> {
        let dir = PrivateDir::create("cluster").context("creating a temp dir for the cluster")?;
        let mut cluster = RedisCluster { nodes: Vec::with_capacity(n), dir };
        for _ in 0..n {
            let port = free_port()?;
            // The cluster bus port must be free too: the default (port + 10000) may not even exist.
            let bus_port = free_port()?;
            let conf = cluster.dir.0.join(format!("nodes-{port}.conf"));
            let extra: Vec<String> = [
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &bus_port.to_string(),
                "--cluster-node-timeout",
                &NODE_TIMEOUT_MS.to_string(),
                "--cluster-config-file",
                &conf.to_string_lossy(),
            ]
            .map(str::to_owned)
            .to_vec();
            let child = spawn_ready(port, &cluster.dir.0, &extra, START_TIMEOUT)
                .await
                .with_context(|| format!("cluster node on port {port}"))?;
            cluster.nodes.push(Node { port, child: Some(child) });
        }
        cluster.create().await?;
        cluster.wait_ready().await?;
        tracing::debug!(ports = ?cluster.ports(), "redis cluster started");
        Ok(cluster)
    }

    /// `redis-cli --cluster create` over every node: all masters, slots spread evenly.
    async fn create(&self) -> anyhow::Result<()> {
        let addrs: Vec<String> = self.ports().iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let create = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
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

    /// Wait (at most [`READY_TIMEOUT`]) until every node reports `cluster_state:ok`.
    async fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        for port in self.ports() {
            loop {
                let info = command(port, "CLUSTER INFO").await.unwrap_or_default();
                if info.lines().any(|l| l.trim() == "cluster_state:ok") {
                    break;
                }
                if Instant::now() >= deadline {
                    bail!("cluster node {port} not `cluster_state:ok` within {READY_TIMEOUT:?}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// Every node's `redis://127.0.0.1:PORT`, comma-joined: what a target's `--store` takes.
    pub fn urls(&self) -> String {
        self.url_list().join(",")
    }

    /// Every node's `redis://127.0.0.1:PORT`.
    pub fn url_list(&self) -> Vec<String> {
        self.ports().iter().map(|p| format!("redis://127.0.0.1:{p}")).collect()
    }

    /// Every node's client port.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// `FLUSHALL` and `CONFIG RESETSTAT` on every node: an empty cluster with zeroed counters.
    pub async fn flush(&self) -> anyhow::Result<()> {
        for port in self.ports() {
            for cmd in ["FLUSHALL", "CONFIG RESETSTAT"] {
                let reply = command(port, cmd).await.ok_or_else(|| anyhow!("{cmd} on node {port}: no answer"))?;
                if !reply.starts_with('+') {
                    bail!("{cmd} on node {port}: {reply}");
                }
            }
        }
        Ok(())
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
