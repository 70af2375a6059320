//! Request accounting over a measured window: how many requests the target itself served, how many
//! of them were the driver's and how many the harness's own probes, and which count divides the
//! per-request figures (target CPU, store operations, store CPU and network).
//!
//! The target counts every request it answers in `authbench_requests_total{route,status}` on
//! `GET /metrics`. Two readings, one at each edge of the window, give the requests it served in
//! between; the `/metrics` route itself is left out (the readings are the harness's, not load).
//! Everything the target did in the window (CPU, store commands) was done for those requests, the
//! availability prober's polls included, so they are the denominator; the driver's own count is
//! kept beside it, and the difference (requests in flight at the window's edges) is shown, not
//! hidden. The connections the target accepted, and with TLS its handshakes and their CPU, are read
//! from the same two readings.

use std::collections::BTreeMap;

use super::snapshot::InstanceReading;
use crate::results::{CacheResult, InstanceLoad, RequestAccounting, StrategyResult, TargetConnections, TlsHandshakes};

/// The metric a target counts its answers in.
const REQUESTS_METRIC: &str = "authbench_requests_total";
/// The metric a target counts its api verification paths in.
const AUTH_PATH_METRIC: &str = "authbench_auth_path_total";
/// The metrics a cached strategy's target reports its read cache in.
const CACHE_EVENTS_METRIC: &str = "authbench_cache_events_total";
const CACHE_SIZE_METRIC: &str = "authbench_cache_size";
/// The metric a target reports its own CPU in.
const CPU_METRIC: &str = "authbench_process_cpu_seconds_total";
/// Sum over store operations of the operations in flight when each started (by `store` label).
const IN_FLIGHT_METRIC: &str = "authbench_store_in_flight_at_start_total";
/// The metrics a target counts its connections and TLS handshakes in.
const CONNECTIONS_METRIC: &str = "authbench_connections_accepted_total";
const HANDSHAKES_METRIC: &str = "authbench_tls_handshakes_total";
const HANDSHAKE_CPU_METRIC: &str = "authbench_tls_handshake_cpu_seconds_total";
/// The route of the readings themselves, left out of the count.
const METRICS_ROUTE: &str = "/metrics";

/// One reading of a target's `/metrics` counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetCounters {
    /// Requests answered so far, every route but `/metrics`.
    pub requests: u64,
    /// Store operations issued so far, by command (the memory store's only load figure).
    pub store_ops: BTreeMap<String, u64>,
    /// Api requests verified so far, by verification path (strategies with more than one).
    pub auth_paths: BTreeMap<String, u64>,
    /// Read cache events so far, by event (cached strategies; empty otherwise).
    pub cache_events: BTreeMap<String, u64>,
    /// Read cache size now: `entries`, `bytes`, `max_entries` (cached strategies; empty otherwise).
    pub cache_size: BTreeMap<String, u64>,
    /// The target process's own CPU so far (`authbench_process_cpu_seconds_total`), seconds:
    /// target CPU for a target this run did not start.
    pub cpu_seconds: Option<f64>,
    /// Sum over the store operations issued so far of the operations in flight when each started
    /// (`authbench_store_in_flight_at_start_total`): with `store_ops`, how many commands shared
    /// the store connection, the concurrency a store operation's client cost depends on.
    pub store_in_flight_at_start: u64,
    /// Connections accepted so far, every transport; `None` for a target that does not count them.
    pub connections_accepted: Option<u64>,
    /// TLS handshakes so far, by kind (`full`, `resumed`, `failed`); empty in clear text.
    pub tls_handshakes: BTreeMap<String, u64>,
    /// Thread CPU inside TLS handshakes so far, by kind, seconds; empty in clear text.
    pub tls_handshake_cpu_seconds: BTreeMap<String, f64>,
}

impl TargetCounters {
    /// Add another target's counters (instances of one strategy).
    pub fn add(&mut self, other: &TargetCounters) {
        self.requests += other.requests;
        for (k, v) in &other.store_ops {
            *self.store_ops.entry(k.clone()).or_insert(0) += v;
        }
        for (k, v) in &other.auth_paths {
            *self.auth_paths.entry(k.clone()).or_insert(0) += v;
        }
        for (k, v) in &other.cache_events {
            *self.cache_events.entry(k.clone()).or_insert(0) += v;
        }
        for (k, v) in &other.cache_size {
            *self.cache_size.entry(k.clone()).or_insert(0) += v;
        }
        self.cpu_seconds = self.cpu_seconds.zip(other.cpu_seconds).map(|(a, b)| a + b);
        self.store_in_flight_at_start += other.store_in_flight_at_start;
        self.connections_accepted = self.connections_accepted.zip(other.connections_accepted).map(|(a, b)| a + b);
        for (k, v) in &other.tls_handshakes {
            *self.tls_handshakes.entry(k.clone()).or_insert(0) += v;
        }
        for (k, v) in &other.tls_handshake_cpu_seconds {
            *self.tls_handshake_cpu_seconds.entry(k.clone()).or_insert(0.0) += v;
        }
    }
}

/// Read the target's counters (`GET /metrics`).
pub async fn read_counters(base_url: &str) -> anyhow::Result<TargetCounters> {
    let (status, _, body) = super::http::get(base_url, METRICS_ROUTE, &[]).await?;
    anyhow::ensure!(status == 200, "GET {base_url}{METRICS_ROUTE} answered {status}");
    let text = String::from_utf8_lossy(&body);
    Ok(TargetCounters {
        requests: parse_requests_total(&text),
        store_ops: super::redis::parse_metrics_store_ops(&text),
        auth_paths: super::redis::parse_counter_by_label(&text, AUTH_PATH_METRIC, "path"),
        cache_events: super::redis::parse_counter_by_label(&text, CACHE_EVENTS_METRIC, "event"),
        cache_size: super::redis::parse_counter_by_label(&text, CACHE_SIZE_METRIC, "what"),
        cpu_seconds: parse_gauge(&text, CPU_METRIC),
        store_in_flight_at_start: super::redis::parse_counter_by_label(&text, IN_FLIGHT_METRIC, "store").values().sum(),
        connections_accepted: parse_gauge(&text, CONNECTIONS_METRIC).map(|n| n as u64),
        tls_handshakes: super::redis::parse_counter_by_label(&text, HANDSHAKES_METRIC, "kind"),
        tls_handshake_cpu_seconds: super::redis::parse_float_by_label(&text, HANDSHAKE_CPU_METRIC, "kind"),
    })
}

/// The value of an unlabelled sample `metric VALUE`.
fn parse_gauge(text: &str, metric: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let v = l.strip_prefix(metric)?.strip_prefix(' ')?;
        v.trim().parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0)
    })
}

/// Sum of `authbench_requests_total` over every route but `/metrics`.
pub fn parse_requests_total(text: &str) -> u64 {
    let mut total = 0u64;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(REQUESTS_METRIC).and_then(|r| r.strip_prefix('{')) else { continue };
        let Some((labels, value)) = rest.rsplit_once('}') else { continue };
        if labels.split(',').any(|kv| kv.trim() == format!("route=\"{METRICS_ROUTE}\"")) {
            continue;
        }
        let Some(n) = value.split_ascii_whitespace().next().and_then(|v| v.parse::<f64>().ok()) else { continue };
        if n.is_finite() && n >= 0.0 {
            total = total.saturating_add(n as u64);
        }
    }
    total
}

/// The window's accounting from the target's two readings, the driver's count and the prober's.
pub fn reconcile(
    before: Option<&TargetCounters>,
    after: Option<&TargetCounters>,
    driver_requests: u64,
    prober_requests: u64,
) -> RequestAccounting {
    let target_requests = match (before, after) {
        (Some(b), Some(a)) => Some(a.requests.saturating_sub(b.requests)),
        _ => None,
    };
    let usable = target_requests.filter(|n| *n > 0);
    RequestAccounting {
        target_requests,
        driver_requests,
        prober_requests,
        revocation_probe_requests_in_window: 0,
        revocation_probe_requests_after_window: None,
        unaccounted_requests: target_requests.map(|t| t as i64 - driver_requests as i64 - prober_requests as i64),
        per_request_denominator: if usable.is_some() { "target" } else { "driver" }.to_owned(),
    }
}

/// Api requests verified on each path in the window (empty for a strategy with one path).
pub fn auth_paths(before: Option<&TargetCounters>, after: Option<&TargetCounters>) -> BTreeMap<String, u64> {
    let (Some(b), Some(a)) = (before, after) else { return BTreeMap::new() };
    counter_growth(&b.auth_paths, &a.auth_paths)
}

/// The read cache over the window: events grown since `before`, sizes as of `after`. `None` for a
/// target without a cache (no cache metrics).
pub fn cache(before: Option<&TargetCounters>, after: Option<&TargetCounters>) -> Option<CacheResult> {
    let (b, a) = (before?, after?);
    if a.cache_events.is_empty() {
        return None;
    }
    let size = |what: &str| a.cache_size.get(what).copied().unwrap_or(0);
    Some(CacheResult {
        events: counter_growth(&b.cache_events, &a.cache_events),
        entries: size("entries"),
        accounted_bytes: size("bytes"),
        max_entries: size("max_entries"),
    })
}

/// Each instance's load over the window from its own readings (empty unless several instances
/// were read at both ends).
pub fn per_instance(before: &[InstanceReading], after: &[InstanceReading]) -> Vec<InstanceLoad> {
    if before.len() != after.len() || before.len() < 2 {
        return Vec::new();
    }
    let served: Vec<Option<u64>> = before
        .iter()
        .zip(after)
        .map(|(b, a)| Some(a.counters.as_ref()?.requests.saturating_sub(b.counters.as_ref()?.requests)))
        .collect();
    let total: u64 = served.iter().flatten().sum();
    before
        .iter()
        .zip(after)
        .zip(&served)
        .map(|((b, a), n)| {
            let n = n.unwrap_or(0);
            let per_req = |x: f64| (n > 0).then(|| x / n as f64);
            let cpu = b.cpu.zip(a.cpu).map(|(b, a)| a.saturating_sub(b).as_secs_f64() * 1e6);
            let ops = b
                .counters
                .as_ref()
                .zip(a.counters.as_ref())
                .map(|(b, a)| counter_growth(&b.store_ops, &a.store_ops).values().sum::<u64>() as f64);
            InstanceLoad {
                requests: n,
                requests_pct: if total > 0 { 100.0 * n as f64 / total as f64 } else { 0.0 },
                target_cpu_us_per_request: cpu.and_then(per_req),
                store_ops_per_request: ops.and_then(per_req),
            }
        })
        .collect()
}

/// Mean store operations in flight when one started, over the window (itself included), from the
/// targets' own counters; `None` when no store operation was issued in it or a reading is missing.
pub fn store_in_flight_mean(before: Option<&TargetCounters>, after: Option<&TargetCounters>) -> Option<f64> {
    let (b, a) = (before?, after?);
    let ops: u64 = counter_growth(&b.store_ops, &a.store_ops).values().sum();
    let in_flight = a.store_in_flight_at_start.checked_sub(b.store_in_flight_at_start)?;
    (ops > 0).then(|| in_flight as f64 / ops as f64)
}

/// The connections the target accepted in the window and, with TLS, its handshakes and their
/// CPU; `None` when either reading is missing or the target does not count connections. Per-request
/// figures divide by the same requests as target CPU per request (the target's count, else the
/// driver's), so call it after [`apply`].
pub fn connections(
    before: Option<&TargetCounters>,
    after: Option<&TargetCounters>,
    result: &StrategyResult,
) -> Option<TargetConnections> {
    let (b, a) = (before?, after?);
    let accepted = a.connections_accepted?.saturating_sub(b.connections_accepted?);
    let served = result.requests_accounting.as_ref().and_then(|acc| acc.target_requests).filter(|n| *n > 0);
    let tls = (!a.tls_handshakes.is_empty()).then(|| {
        let count = |k: &str| {
            a.tls_handshakes.get(k).copied().unwrap_or(0).saturating_sub(b.tls_handshakes.get(k).copied().unwrap_or(0))
        };
        let cpu_us = |k: &str| {
            let at = |m: &BTreeMap<String, f64>| m.get(k).copied().unwrap_or(0.0);
            (at(&a.tls_handshake_cpu_seconds) - at(&b.tls_handshake_cpu_seconds)).max(0.0) * 1e6
        };
        TlsHandshakes {
            full: count("full"),
            resumed: count("resumed"),
            failed: count("failed"),
            full_cpu_us: cpu_us("full"),
            resumed_cpu_us: cpu_us("resumed"),
            failed_cpu_us: cpu_us("failed"),
        }
    });
    Some(TargetConnections { accepted, requests: served.unwrap_or(result.requests), tls })
}

/// How much each of `after`'s labelled counters grew since `before` (0 for one that did not, so a
/// path nobody took still shows).
pub fn counter_growth(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after.iter().map(|(k, n)| (k.clone(), n.saturating_sub(before.get(k).copied().unwrap_or(0)))).collect()
}

/// Re-divide `result`'s per-request figures (computed over the driver's requests) by the requests
/// the target served, and record the accounting. Without a target count they stay as they are.
pub fn apply(result: &mut StrategyResult, accounting: RequestAccounting) {
    let driver = accounting.driver_requests;
    if let Some(served) = accounting.target_requests.filter(|n| *n > 0 && driver > 0) {
        let scale = driver as f64 / served as f64;
        let rescale = |v: &mut Option<f64>| {
            if let Some(x) = v {
                *x *= scale;
            }
        };
        rescale(&mut result.target_cpu_us_per_request);
        rescale(&mut result.store.ops_per_request);
        rescale(&mut result.store.cpu_us_per_request);
        rescale(&mut result.store.net_bytes_per_request);
        result.store.ops_by_command.values_mut().for_each(|x| *x *= scale);
    }
    result.requests_accounting = Some(accounting);
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = "# TYPE authbench_requests_total counter\n\
        authbench_requests_total{strategy=\"session\",route=\"/login\",status=\"200\"} 10\n\
        authbench_requests_total{strategy=\"session\",route=\"/api/resource\",status=\"200\"} 85\n\
        authbench_requests_total{strategy=\"session\",route=\"/api/resource\",status=\"401\"} 5\n\
        authbench_requests_total{strategy=\"session\",route=\"/metrics\",status=\"200\"} 7\n\
        authbench_store_operations_total{store=\"memory\",command=\"get\"} 90\n";

    #[test]
    fn counts_every_route_but_metrics() {
        assert_eq!(parse_requests_total(METRICS), 100);
        assert_eq!(parse_requests_total(""), 0);
    }

    #[test]
    fn connections_and_handshakes_grow_over_the_window() {
        let text = |accepted: u64, full: u64, full_s: f64| {
            format!(
                "authbench_connections_accepted_total {accepted}\n\
                 authbench_tls_handshakes_total{{kind=\"full\"}} {full}\n\
                 authbench_tls_handshakes_total{{kind=\"resumed\"}} 0\n\
                 authbench_tls_handshake_cpu_seconds_total{{kind=\"full\"}} {full_s:.9}\n"
            )
        };
        let read = |t: &str| TargetCounters {
            connections_accepted: parse_gauge(t, CONNECTIONS_METRIC).map(|n| n as u64),
            tls_handshakes: super::super::redis::parse_counter_by_label(t, HANDSHAKES_METRIC, "kind"),
            tls_handshake_cpu_seconds: super::super::redis::parse_float_by_label(t, HANDSHAKE_CPU_METRIC, "kind"),
            ..TargetCounters::default()
        };
        let (b, a) = (read(&text(4, 4, 0.002)), read(&text(104, 54, 0.022)));
        let result: StrategyResult = serde_json::from_value(serde_json::json!({
            "name": "none", "strategy": "none", "requests": 1000, "throughput_rps": 1.0, "success_rps": 1.0,
            "failure_rps": 0.0, "errors": {"total": 0, "by_class": {}},
            "outcomes": {"expected_allow": 0, "expected_deny": 0, "unexpected_allow": 0, "unexpected_deny": 0,
                "timeout": 0, "connect_error": 0, "protocol_error": 0},
            "latency_us": {}, "service_time_us": {}, "credential_bytes": 0.0, "request_header_bytes": 0.0,
            "store": {"measured": false, "ops_per_request": null, "ops_by_command": {}, "cpu_us_per_request": null,
                "net_bytes_per_request": null, "memory_bytes_per_session": null},
            "target_cpu_us_per_request": null,
            "revocation_window_ms": {"p50": null, "max": null, "probes": 0, "bounded": false, "observed_max": null},
            "schedule": {"target_rate_per_sec": null, "achieved_rate_per_sec": 1.0, "late_starts": 0, "max_lag_us": 0,
                "driver_cpu_percent": null}
        }))
        .expect("result");
        let c = connections(Some(&b), Some(&a), &result).expect("counted");
        assert_eq!((c.accepted, c.requests), (100, 1000));
        let tls = c.tls.expect("tls");
        assert_eq!((tls.full, tls.resumed, tls.failed), (50, 0, 0));
        assert!((tls.full_cpu_us - 20_000.0).abs() < 1e-6, "{}", tls.full_cpu_us);
        let clear = read("authbench_connections_accepted_total 3\n");
        assert_eq!(connections(Some(&clear), Some(&clear), &result).and_then(|c| c.tls), None);
        assert_eq!(connections(Some(&TargetCounters::default()), Some(&clear), &result), None, "not counted");
    }

    #[test]
    fn reconciles_and_rescales() {
        let before = TargetCounters { requests: 100, ..TargetCounters::default() };
        let after = TargetCounters { requests: 1100, ..TargetCounters::default() };
        let acc = reconcile(Some(&before), Some(&after), 600, 390);
        assert_eq!(acc.target_requests, Some(1000));
        assert_eq!(acc.unaccounted_requests, Some(10));
        assert_eq!(acc.per_request_denominator, "target");
        let none = reconcile(None, Some(&after), 600, 0);
        assert_eq!((none.target_requests, none.per_request_denominator.as_str()), (None, "driver"));
    }
}
