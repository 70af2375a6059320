//! Store load read from the store itself (the servers are started by `environment::redis`).
//!
//! Store load over a measured window is the difference of two [`snapshot`]s of Redis's own `INFO`:
//! calls by command (`commandstats`), network bytes (`stats`), CPU (`cpu`), memory (`memory`) and
//! keys (`keyspace`). The snapshot must not measure itself, so it is taken with one `INFO all`
//! command over a fresh raw RESP connection of its own, whose every byte is known:
//! - Redis counts a command in `commandstats` after it runs, so an `INFO` never counts itself, and
//!   the earlier snapshot's `INFO` is dropped by name (along with the harness's other
//!   housekeeping commands, see [`HOUSEKEEPING_COMMANDS`]) and its execution time (`usec`)
//!   subtracted from the CPU figure;
//! - Redis counts input bytes when it reads them and output bytes when it writes them, so a
//!   snapshot's reading already includes its own request bytes but not its reply: both are recorded
//!   ([`InfoSnapshot::own_input_bytes`], [`InfoSnapshot::own_output_bytes`]) and subtracted exactly.
//!
//! The memory store lives inside the target, so its operations come from the target's `/metrics`
//! ([`metrics_store_ops`]); its CPU is already in the target's CPU.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::results::{NodeLoad, StoreLoad};

/// Upper bound on one snapshot.
pub const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(5);

/// Commands the harness itself sends to the store (snapshots, flushes, connection setup). Never
/// issued by a target per request, so they are left out of the per-request figures. `ping` is *not*
/// here: a target's own health pings are real store load.
pub const HOUSEKEEPING_COMMANDS: [&str; 9] =
    ["info", "dbsize", "config", "flushall", "flushdb", "client", "hello", "auth", "select"];

/// The installed server's version, e.g. `7.0.15` (from `redis-server --version`).
pub fn redis_server_version() -> Option<String> {
    let out = std::process::Command::new("redis-server").arg("--version").stdin(Stdio::null()).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v = text.split_ascii_whitespace().find_map(|w| w.strip_prefix("v="))?;
    Some(v.to_owned())
}

/// Redis's own counters at one instant (cumulative since start or the last `CONFIG RESETSTAT`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InfoSnapshot {
    /// `commandstats` calls by lower-case command name (subcommands folded into their command),
    /// without [`HOUSEKEEPING_COMMANDS`].
    pub calls_by_command: BTreeMap<String, u64>,
    /// `total_net_input_bytes` as read.
    pub net_input_bytes: u64,
    /// `total_net_output_bytes` as read.
    pub net_output_bytes: u64,
    /// `used_cpu_sys` + `used_cpu_user`, microseconds.
    pub cpu_us: u64,
    /// `used_memory`.
    pub used_memory_bytes: u64,
    /// Keys in all databases (`keyspace`).
    pub keys: u64,
    /// `usec` spent in [`HOUSEKEEPING_COMMANDS`] so far: subtracted from the store CPU figure.
    pub housekeeping_usec: u64,
    /// Bytes this snapshot sent. Already counted in its own `net_input_bytes` reading.
    pub own_input_bytes: u64,
    /// Bytes this snapshot received: counted only by *later* readings.
    pub own_output_bytes: u64,
    /// Each node's own counters when this is a sum over a cluster's nodes ([`snapshot_sum`] of
    /// several URLs), in URL order; empty for one server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeCounters>,
}

/// The counters of one node that per-node load needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeCounters {
    /// `commandstats` calls, housekeeping left out, all commands together.
    pub calls: u64,
    pub cpu_us: u64,
    pub housekeeping_usec: u64,
}

/// Read Redis's counters at `url` (`redis://host:port[/db]`) with one `INFO all` over a fresh
/// connection of its own (see the module docs for why it is not the `redis` crate's).
pub async fn snapshot(url: &str) -> anyhow::Result<InfoSnapshot> {
    tokio::time::timeout(SNAPSHOT_TIMEOUT, snapshot_inner(url))
        .await
        .map_err(|_| anyhow!("INFO from {url}: no answer within {} s", SNAPSHOT_TIMEOUT.as_secs()))?
        .with_context(|| format!("INFO from {url}"))
}

/// Counters summed over several servers (every node of a cluster) field by field, so
/// [`store_load`] works on them unchanged; for one server, its [`snapshot`].
pub async fn snapshot_sum(urls: &[String]) -> anyhow::Result<InfoSnapshot> {
    let mut total = InfoSnapshot::default();
    for url in urls {
        let s = snapshot(url).await?;
        if urls.len() > 1 {
            total.nodes.push(NodeCounters {
                calls: s.calls_by_command.values().sum(),
                cpu_us: s.cpu_us,
                housekeeping_usec: s.housekeeping_usec,
            });
        }
        for (cmd, calls) in s.calls_by_command {
            *total.calls_by_command.entry(cmd).or_insert(0) += calls;
        }
        total.net_input_bytes += s.net_input_bytes;
        total.net_output_bytes += s.net_output_bytes;
        total.cpu_us += s.cpu_us;
        total.used_memory_bytes += s.used_memory_bytes;
        total.keys += s.keys;
        total.housekeeping_usec += s.housekeeping_usec;
        total.own_input_bytes += s.own_input_bytes;
        total.own_output_bytes += s.own_output_bytes;
    }
    Ok(total)
}

async fn snapshot_inner(url: &str) -> anyhow::Result<InfoSnapshot> {
    let addr = redis_addr(url)?;
    let mut stream = BufReader::new(TcpStream::connect(&addr).await.with_context(|| format!("connecting to {addr}"))?);
    let request = b"*2\r\n$4\r\nINFO\r\n$3\r\nall\r\n";
    stream.get_mut().write_all(request).await?;
    let (text, reply_bytes) = read_bulk_string(&mut stream).await?;
    let mut snap = parse_info(&text);
    snap.own_input_bytes = request.len() as u64;
    snap.own_output_bytes = reply_bytes;
    Ok(snap)
}

/// `host:port` of a `redis://[user:pass@]host[:port][/db]` URL. Credentials are refused: the
/// harness measures its own private server, which has none.
fn redis_addr(url: &str) -> anyhow::Result<String> {
    let rest = url.strip_prefix("redis://").ok_or_else(|| anyhow!("`{url}` is not a redis:// URL"))?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    if hostport.contains('@') {
        bail!("`{url}`: store snapshots do not support credentials");
    }
    if hostport.is_empty() {
        bail!("`{url}` has no host");
    }
    // A bracketed IPv6 literal ends with `]`; otherwise a `:` means a port is present.
    let has_port = if hostport.starts_with('[') { hostport.contains("]:") } else { hostport.contains(':') };
    Ok(if has_port { hostport.to_owned() } else { format!("{hostport}:6379") })
}

/// Read one RESP2 bulk string reply (`$<len>\r\n<bytes>\r\n`); returns it and its size on the wire.
async fn read_bulk_string(stream: &mut BufReader<TcpStream>) -> anyhow::Result<(String, u64)> {
    let mut header = String::new();
    stream.read_line(&mut header).await?;
    if let Some(err) = header.strip_prefix('-') {
        bail!("redis answered: {}", err.trim());
    }
    let len: usize = header
        .strip_prefix('$')
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| anyhow!("unexpected reply `{}`", header.trim()))?;
    let mut body = vec![0u8; len + 2];
    stream.read_exact(&mut body).await?;
    body.truncate(len);
    Ok((String::from_utf8_lossy(&body).into_owned(), (header.len() + len + 2) as u64))
}

/// Parse the text of `INFO all`. Unknown or missing fields read as 0.
pub fn parse_info(text: &str) -> InfoSnapshot {
    let mut snap = InfoSnapshot::default();
    let mut cpu_sys_us = 0u64;
    let mut cpu_user_us = 0u64;
    for line in text.lines() {
        let Some((key, value)) = line.trim_end().split_once(':') else { continue };
        if let Some(name) = key.strip_prefix("cmdstat_") {
            // `cmdstat_client|setinfo` -> `client`: one figure per command.
            let name = name.split('|').next().unwrap_or(name).to_ascii_lowercase();
            let calls = kv_field(value, "calls").unwrap_or(0);
            if HOUSEKEEPING_COMMANDS.contains(&name.as_str()) {
                snap.housekeeping_usec += kv_field(value, "usec").unwrap_or(0);
            } else {
                *snap.calls_by_command.entry(name).or_insert(0) += calls;
            }
            continue;
        }
        if key.starts_with("db") && key[2..].bytes().all(|b| b.is_ascii_digit()) {
            snap.keys += kv_field(value, "keys").unwrap_or(0);
            continue;
        }
        match key {
            "total_net_input_bytes" => snap.net_input_bytes = value.parse().unwrap_or(0),
            "total_net_output_bytes" => snap.net_output_bytes = value.parse().unwrap_or(0),
            "used_memory" => snap.used_memory_bytes = value.parse().unwrap_or(0),
            "used_cpu_sys" => cpu_sys_us = seconds_to_us(value),
            "used_cpu_user" => cpu_user_us = seconds_to_us(value),
            _ => {}
        }
    }
    snap.cpu_us = cpu_sys_us + cpu_user_us;
    snap
}

/// `calls=3,usec=10,...` -> the value of `name`.
fn kv_field(value: &str, name: &str) -> Option<u64> {
    value.split(',').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == name)?.1.parse().ok())
}

fn seconds_to_us(value: &str) -> u64 {
    value.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).map_or(0, |s| (s * 1e6).round() as u64)
}

/// Store load over the window between two snapshots of the same server.
///
/// Every per-request figure is divided by `total_requests`: **all** operations the driver completed
/// in the window (login, api, logout, refresh, revoke), because every one of them may touch the
/// store. `None` when `total_requests` is 0.
/// - `ops_per_request`, `ops_by_command`: store commands (housekeeping excluded) per request;
/// - `cpu_us_per_request`: redis-server CPU (user + system) minus the time spent in the harness's
///   own housekeeping commands, per request;
/// - `net_bytes_per_request`: bytes in + out over all clients, minus the snapshots' own, per
///   request;
/// - `memory_bytes_per_session`: growth of `used_memory` divided by `sessions_created` (the
///   session or token records created in the window); `None` when none were created. Can be
///   negative if records expired or were deleted faster than they were created.
pub fn store_load(
    before: &InfoSnapshot,
    after: &InfoSnapshot,
    total_requests: u64,
    sessions_created: u64,
) -> StoreLoad {
    let ops = command_deltas(&before.calls_by_command, &after.calls_by_command);
    let total_ops: u64 = ops.values().sum();
    let per = |n: u64| (total_requests > 0).then(|| n as f64 / total_requests as f64);

    let cpu_us = after
        .cpu_us
        .saturating_sub(before.cpu_us)
        .saturating_sub(after.housekeeping_usec.saturating_sub(before.housekeeping_usec));
    // The later reading includes its own request and the earlier snapshot's reply.
    let net_in = after.net_input_bytes.saturating_sub(before.net_input_bytes).saturating_sub(after.own_input_bytes);
    let net_out =
        after.net_output_bytes.saturating_sub(before.net_output_bytes).saturating_sub(before.own_output_bytes);
    let memory_delta = after.used_memory_bytes as f64 - before.used_memory_bytes as f64;
    let nodes = if before.nodes.len() == after.nodes.len() {
        before.nodes.iter().zip(&after.nodes).map(|(b, a)| node_load(b, a, total_requests)).collect()
    } else {
        Vec::new()
    };

    StoreLoad {
        nodes,
        in_flight_mean: None,
        measured: true,
        ops_per_request: per(total_ops),
        ops_by_command: if total_requests > 0 {
            ops.into_iter().map(|(k, v)| (k, v as f64 / total_requests as f64)).collect()
        } else {
            BTreeMap::new()
        },
        cpu_us_per_request: per(cpu_us),
        net_bytes_per_request: per(net_in + net_out),
        memory_bytes_per_session: (sessions_created > 0).then(|| memory_delta / sessions_created as f64),
    }
}

/// One node's load per request between two readings of its counters.
fn node_load(before: &NodeCounters, after: &NodeCounters, total_requests: u64) -> NodeLoad {
    let per = |n: u64| (total_requests > 0).then(|| n as f64 / total_requests as f64);
    let cpu_us = after
        .cpu_us
        .saturating_sub(before.cpu_us)
        .saturating_sub(after.housekeeping_usec.saturating_sub(before.housekeeping_usec));
    NodeLoad { ops_per_request: per(after.calls.saturating_sub(before.calls)), cpu_us_per_request: per(cpu_us) }
}

/// Per-command growth between two cumulative counter maps; commands that did not grow are left out.
/// A counter that went backwards (a reset in between) counts from zero.
fn command_deltas(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(cmd, &n)| {
            let prev = before.get(cmd).copied().unwrap_or(0);
            let d = if n >= prev { n - prev } else { n };
            (d > 0).then(|| (cmd.clone(), d))
        })
        .collect()
}

/// Store operations by command from a target's `GET /metrics`
/// (`authbench_store_operations_total{store="...",command="get"} N`), cumulative since it started.
pub async fn metrics_store_ops(base_url: &str) -> anyhow::Result<BTreeMap<String, u64>> {
    let (status, _, body) = super::http::get(base_url, "/metrics", &[]).await?;
    if status != 200 {
        bail!("GET {base_url}/metrics answered {status}");
    }
    Ok(parse_metrics_store_ops(&String::from_utf8_lossy(&body)))
}

/// Parse the `authbench_store_operations_total` samples of a Prometheus text exposition.
pub fn parse_metrics_store_ops(text: &str) -> BTreeMap<String, u64> {
    parse_counter_by_label(text, "authbench_store_operations_total", "command")
}

/// The samples of counter `metric` in a Prometheus text exposition, summed by the value of label
/// `by`.
pub fn parse_counter_by_label(text: &str, metric: &str, by: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(metric) else { continue };
        let Some(labels_and_value) = rest.strip_prefix('{') else { continue };
        let Some((labels, value)) = labels_and_value.rsplit_once('}') else { continue };
        let Some(command) = label(labels, by) else { continue };
        // Counters are integers, but the format allows floats (`1e+06`).
        let Some(n) = value.split_ascii_whitespace().next().and_then(|v| v.parse::<f64>().ok()) else { continue };
        if n.is_finite() && n >= 0.0 {
            *out.entry(command.to_owned()).or_insert(0) += n as u64;
        }
    }
    out
}

/// Every sample of `metric` as a float, keyed by its `by` label (summed when a key repeats): for
/// counters that are not whole numbers (`..._seconds_total`).
pub fn parse_float_by_label(text: &str, metric: &str, by: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(metric).and_then(|r| r.strip_prefix('{')) else { continue };
        let Some((labels, value)) = rest.rsplit_once('}') else { continue };
        let Some(key) = label(labels, by) else { continue };
        let Some(x) = value.split_ascii_whitespace().next().and_then(|v| v.parse::<f64>().ok()) else { continue };
        if x.is_finite() && x >= 0.0 {
            *out.entry(key.to_owned()).or_insert(0.0) += x;
        }
    }
    out
}

/// The value of `name="value"` in a Prometheus label set (values here never contain quotes).
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

/// Store load of an in-process (memory) store from two `/metrics` readings: operations only,
/// divided by `total_requests` (all operations, as in [`store_load`]). CPU and network are `None`:
/// the store runs inside the target, so its CPU is part of the target's and it has no network.
pub fn store_load_from_metrics(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
    total_requests: u64,
) -> StoreLoad {
    let ops = command_deltas(before, after);
    let total: u64 = ops.values().sum();
    let (ops_per_request, ops_by_command) = if total_requests > 0 {
        let n = total_requests as f64;
        (Some(total as f64 / n), ops.into_iter().map(|(k, v)| (k, v as f64 / n)).collect())
    } else {
        (None, BTreeMap::new())
    };
    StoreLoad {
        measured: true,
        ops_per_request,
        ops_by_command,
        cpu_us_per_request: None,
        net_bytes_per_request: None,
        memory_bytes_per_session: None,
        nodes: Vec::new(),
        in_flight_mean: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "# Server\r\nredis_version:7.0.15\r\n# Memory\r\nused_memory:1000000\r\n\
        # Stats\r\ntotal_net_input_bytes:500\r\ntotal_net_output_bytes:9000\r\n\
        # CPU\r\nused_cpu_sys:0.250000\r\nused_cpu_user:1.500001\r\n\
        # Commandstats\r\ncmdstat_get:calls=100,usec=300,usec_per_call=3.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_info:calls=4,usec=400,usec_per_call=100.00\r\n\
        cmdstat_client|setinfo:calls=2,usec=2,usec_per_call=1.00\r\n\
        cmdstat_set:calls=7,usec=20,usec_per_call=3.00\r\n\
        # Keyspace\r\ndb0:keys=5,expires=5,avg_ttl=100\r\ndb3:keys=2,expires=0,avg_ttl=0\r\n";

    #[test]
    fn parses_info() {
        let s = parse_info(INFO);
        assert_eq!(s.calls_by_command.get("get"), Some(&100));
        assert_eq!(s.calls_by_command.get("set"), Some(&7));
        assert!(!s.calls_by_command.contains_key("info"));
        assert!(!s.calls_by_command.contains_key("client"));
        assert_eq!(s.housekeeping_usec, 402);
        assert_eq!(s.net_input_bytes, 500);
        assert_eq!(s.net_output_bytes, 9000);
        assert_eq!(s.cpu_us, 1_750_001);
        assert_eq!(s.used_memory_bytes, 1_000_000);
        assert_eq!(s.keys, 7);
    }

    #[test]
    fn store_load_per_request() {
        let before = InfoSnapshot {
            calls_by_command: [("get".to_owned(), 10)].into(),
            net_input_bytes: 100,
            net_output_bytes: 1000,
            cpu_us: 1000,
            used_memory_bytes: 1000,
            keys: 0,
            housekeeping_usec: 50,
            own_input_bytes: 20,
            own_output_bytes: 800,
            nodes: Vec::new(),
        };
        let after = InfoSnapshot {
            calls_by_command: [("get".to_owned(), 110), ("set".to_owned(), 50)].into(),
            net_input_bytes: 100 + 20 + 4000,
            net_output_bytes: 1000 + 800 + 2000,
            cpu_us: 1000 + 100 + 500,
            used_memory_bytes: 6000,
            keys: 50,
            housekeeping_usec: 150,
            own_input_bytes: 20,
            own_output_bytes: 800,
            nodes: Vec::new(),
        };
        let l = store_load(&before, &after, 100, 50);
        assert!(l.measured);
        assert_eq!(l.ops_per_request, Some(1.5));
        assert_eq!(l.ops_by_command.get("get"), Some(&1.0));
        assert_eq!(l.ops_by_command.get("set"), Some(&0.5));
        assert_eq!(l.cpu_us_per_request, Some(5.0));
        assert_eq!(l.net_bytes_per_request, Some(60.0));
        assert_eq!(l.memory_bytes_per_session, Some(100.0));
        let none = store_load(&before, &after, 0, 0);
        assert_eq!(none.ops_per_request, None);
        assert_eq!(none.memory_bytes_per_session, None);
    }

    #[test]
    fn parses_metrics() {
        let text = "# HELP authbench_store_operations_total x\n# TYPE authbench_store_operations_total counter\n\
            authbench_store_operations_total{store=\"memory\",command=\"get\"} 42\n\
            authbench_store_operations_total{store=\"memory\",command=\"pexpire\"} 3\n\
            authbench_store_errors_total{store=\"memory\",command=\"get\"} 9\n\
            authbench_requests_total{strategy=\"session\",route=\"/login\",status=\"200\"} 3\n";
        let m = parse_metrics_store_ops(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m["get"], 42);
        assert_eq!(m["pexpire"], 3);
        let before = [("get".to_owned(), 2)].into();
        let l = store_load_from_metrics(&before, &m, 20);
        assert_eq!(l.ops_per_request, Some(43.0 / 20.0));
        assert_eq!(l.ops_by_command["get"], 2.0);
        assert_eq!(l.cpu_us_per_request, None);
    }

    #[test]
    fn redis_addresses() {
        assert_eq!(redis_addr("redis://127.0.0.1:7000").unwrap(), "127.0.0.1:7000");
        assert_eq!(redis_addr("redis://localhost/2").unwrap(), "localhost:6379");
        assert_eq!(redis_addr("redis://[::1]:7000/0").unwrap(), "[::1]:7000");
        assert!(redis_addr("redis://u:p@h:1").is_err());
        assert!(redis_addr("http://h:1").is_err());
    }
}
