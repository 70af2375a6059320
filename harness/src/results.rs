//! The results format: what `report.json` holds (docs/design.md "Results format", `"schema": 1`).
//!
//! These types are the contract with tools outside the repo: fields named in docs/design.md keep their
//! names and units; new fields may be added (optional ones as `Option`, serialized as `null` when a
//! figure was not measured: never guessed). `results/schema.json` describes the same shape and a
//! test validates real output against it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the `report.json` layout.
pub const SCHEMA_VERSION: u32 = 1;

/// The operations a virtual user performs; each gets its own latency histogram.
pub const OPERATIONS: [&str; 5] = ["login", "api", "logout", "refresh", "revoke"];

/// One run: every strategy (and matrix variant) driven with the same traffic.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// Always [`SCHEMA_VERSION`].
    pub schema: u32,
    pub tool: ToolInfo,
    pub scenario: ScenarioInfo,
    /// The exact command line that produced this run.
    pub command: String,
    /// RFC 3339 UTC start time.
    pub started_at: String,
    pub machine: Machine,
    pub traffic: TrafficInfo,
    /// What store the targets ran on: `redis` (a private redis-server), `memory` (in-process) or
    /// `external` (`--target URL`: not ours to measure).
    pub store_kind: String,
    /// True when the run was stopped early (Ctrl-C); the figures cover what was measured.
    pub interrupted: bool,
    pub strategies: Vec<StrategyResult>,
    /// Threshold checks from the scenario, in file order.
    #[serde(default)]
    pub thresholds: Vec<ThresholdResult>,
    /// Anything the reader must know to trust the numbers (driver saturated, clock lag, ...).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// `authbench run --part K/N`: which part of a split run this is, and what must match for
    /// `authbench merge`; absent for a whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<PartInfo>,
    /// `authbench merge`: the parts this report was merged from, in part order; absent otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartInfo>,
}

/// One part of a split run (`authbench run --part K/N`), as `authbench merge` checks and aligns it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PartInfo {
    /// This part's number, 1..=n.
    pub k: u32,
    /// How many parts the run was split into.
    pub n: u32,
    /// Fingerprint of the whole scenario as resolved (before the split): parts of one run agree.
    pub scenario_hash: String,
    /// authbench's version.
    pub version: String,
    /// Fingerprint of the `authbench` executable that ran the part: parts of one build agree.
    pub build_id: String,
    /// Wall-clock start and end of the part's run, ms since the Unix epoch (this driver's clock).
    pub started_unix_ms: u64,
    pub ended_unix_ms: u64,
    /// Per strategy (by `name`): the measured window on this driver's clock and the raw sums
    /// behind the byte means, so merged means are exact.
    pub strategies: BTreeMap<String, PartStrategy>,
}

/// One strategy's measured window in one part.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PartStrategy {
    /// Start of the measured window (after warm-up), ms since the Unix epoch.
    pub window_start_unix_ms: u64,
    /// Its length, ms.
    pub window_ms: u64,
    /// Sum of the credential bytes of the api requests whose bytes were counted.
    pub credential_bytes_sum: u64,
    /// Sum of their request-head bytes.
    pub header_bytes_sum: u64,
    /// How many api requests were counted (the means' denominator).
    pub bytes_samples: u64,
    /// The target's `/metrics` counters at the start and at the end of the window: `merge` takes
    /// the earliest start and the latest end over the parts, so target CPU and store operations
    /// per request cover the whole split run. Absent when the target could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_start: Option<TargetReading>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_end: Option<TargetReading>,
    /// The observed store's `INFO` (`--observe-store`) at the start and the end of the window, for
    /// `merge` the same way: store CPU, network and commands over the whole split run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_start: Option<crate::collect::redis::InfoSnapshot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_end: Option<crate::collect::redis::InfoSnapshot>,
}

/// One reading of a target's cumulative `/metrics` counters, with when it was taken.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TargetReading {
    /// When it was read, ms since the Unix epoch (this driver's clock).
    pub unix_ms: u64,
    /// Requests the target had answered (every route but `/metrics`).
    pub requests: u64,
    /// The target process's own CPU so far, seconds; null when it does not report it.
    pub cpu_seconds: Option<f64>,
    /// Store operations it had issued, by command.
    pub store_ops: BTreeMap<String, u64>,
    /// Api requests it had verified, by verification path.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub auth_paths: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
    /// `git rev-parse HEAD` of the authbench checkout, if known.
    pub git_sha: Option<String>,
    pub rustc: Option<String>,
    pub redis_server: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScenarioInfo {
    pub name: String,
    /// Path of the scenario file, if the run used one.
    pub file: Option<String>,
    /// The question the scenario answers (its leading comment / `description`).
    pub description: String,
    /// The scenario as run (after CLI overrides), as TOML text.
    pub resolved_toml: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: Option<String>,
    pub kernel: Option<String>,
    pub memory_bytes: Option<u64>,
    /// How driver and target were placed, e.g. "target pinned to CPU 1, driver to CPU 0".
    pub pinning: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrafficInfo {
    /// `open` (constant rate, latency from intended send time) or `closed` (back-to-back).
    pub mode: String,
    /// Target rate for open loop (of the first stage when staged), requests per second.
    pub rate_per_sec: Option<f64>,
    pub connections: usize,
    pub users: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// Operation mix weights by operation name.
    pub mix: BTreeMap<String, f64>,
    /// Target processes per strategy sharing the store (`instances`); 1 in results written before.
    #[serde(default = "one")]
    pub instances: usize,
}

fn one() -> usize {
    1
}

/// Everything measured for one strategy (or one matrix variant of it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StrategyResult {
    /// Unique label: the strategy, plus the matrix coordinates for sweeps (`jwt alg=ES256`).
    pub name: String,
    /// The strategy kind (`none`, `session`, `jwt`, `jwt-denylist`, `jwt-refresh`).
    pub strategy: String,
    /// Matrix coordinates of this variant (option -> value); empty without a matrix.
    #[serde(default)]
    pub variant: BTreeMap<String, String>,
    /// Requests completed in the measured window (all outcomes).
    pub requests: u64,
    /// Completed requests per second over the measured window.
    pub throughput_rps: f64,
    pub success_rps: f64,
    pub failure_rps: f64,
    pub errors: Errors,
    pub outcomes: Outcomes,
    /// Per operation; in open loop counted from the intended send time (coordinated omission
    /// corrected).
    pub latency_us: BTreeMap<String, LatencySummary>,
    /// Per operation, from the actual send time (uncorrected service time).
    pub service_time_us: BTreeMap<String, LatencySummary>,
    /// Per outcome class, the latency of api requests that ended in it.
    #[serde(default)]
    pub latency_by_outcome_us: BTreeMap<String, LatencySummary>,
    /// For a strategy serving browsers and API clients (`web+api`), the latency of the api
    /// requests each population sent (`browser`, `api`); absent for other strategies.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub latency_by_client_us: BTreeMap<String, LatencySummary>,
    /// Mean bytes of the credential as sent per api request (cookie value or bearer token).
    pub credential_bytes: f64,
    /// Mean bytes of the whole request head per api request.
    pub request_header_bytes: f64,
    /// Bytes that crossed the driver's sockets (after TLS), per request and direction, with the
    /// transport they crossed; null in results written before it existed or not measured (a merged
    /// split run).
    #[serde(default)]
    pub wire: Option<WireBytes>,
    pub store: StoreLoad,
    /// Target process CPU (user+system) per completed request; null when not measured.
    pub target_cpu_us_per_request: Option<f64>,
    pub revocation_window_ms: RevocationWindow,
    pub schedule: ScheduleHealth,
    /// Per-second samples over the measured window, for the over-time plots.
    #[serde(default)]
    pub timeline: Vec<TimelinePoint>,
    /// One entry per rate stage (capacity curve); empty for unstaged runs.
    #[serde(default)]
    pub stages: Vec<StageResult>,
    /// The store's added network distance (delay proxy); null when the targets reached it directly.
    #[serde(default)]
    pub store_distance: Option<StoreDistance>,
    /// What a store outage did to this strategy (`[store.outage]`); null when none was injected.
    #[serde(default)]
    pub outage: Option<OutageResult>,
    /// What a Sentinel failover did and forgot (`[store.failover]`); null when none was injected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverResult>,
    /// What a signing-key rotation did (`[rotation]`, JWT strategies); null otherwise.
    #[serde(default)]
    pub rotation: Option<RotationResult>,
    /// With `authbench run --repeat N`: every repetition of this variant, whole, in run order (each
    /// with an empty `repeats`); the fields above then summarise them (medians; counts summed; see
    /// `harness/src/repeats.rs`). Absent for a single run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repeats: Vec<StrategyResult>,
    /// Who sent the requests the target served in the measured window, and which count divides the
    /// per-request figures; null in results written before it existed.
    #[serde(default)]
    pub requests_accounting: Option<RequestAccounting>,
    /// The store-down column, measured: a short store pause after the measured window (so it
    /// skews nothing measured); null when none was run (memory store, `--target`, an in-window
    /// outage already measured it, or the scenario turned it off).
    #[serde(default)]
    pub store_down: Option<StoreDownCheck>,
    /// Api requests verified on each of the strategy's verification paths in the measured window
    /// (from the target's `/metrics`), for strategies with more than one (a hybrid's token and
    /// session paths); empty otherwise.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub auth_paths: BTreeMap<String, u64>,
    /// With several instances: each one's share of the window, from its own `/metrics` and
    /// `/proc` (the other figures sum them); empty with one instance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<InstanceLoad>,
    /// A cached strategy's in-process read cache (its `/metrics`, summed over instances); null for
    /// strategies without one, and where the target's counters were not read.
    #[serde(default)]
    pub cache: Option<CacheResult>,
    /// Connections the targets accepted in the window and, with TLS, the handshakes and their CPU
    /// (the targets' `/metrics`, summed over instances); null where the counters were not read
    /// (merged split runs, targets that do not report them).
    #[serde(default)]
    pub connections: Option<TargetConnections>,
    /// The breaking point of a staged open-loop run against the scenario's `[capacity]` objective
    /// (`harness/src/capacity.rs`); null when the run had no objective or no stages.
    #[serde(default)]
    pub capacity: Option<BreakingPoint>,
    /// The Universal Scalability Law fit of the closed-loop `matrix.connections` sweep this variant
    /// belongs to (the same fit on every variant of the sweep); null outside such a sweep.
    #[serde(default)]
    pub usl: Option<UslResult>,
}

/// Connections as the targets saw them over the measured window (their `/metrics`, summed over
/// instances): how many were accepted and, with TLS, what their handshakes cost.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TargetConnections {
    /// Connections accepted in the window, every transport; the harness's own connections
    /// (a `/metrics` reading at the window's end, probes in the window) included.
    pub accepted: u64,
    /// The requests the per-request figures divide by: the target's own count (the driver's when
    /// that could not be read), as for target CPU per request.
    pub requests: u64,
    /// TLS handshakes and their CPU; null when the target served clear text.
    pub tls: Option<TlsHandshakes>,
}

/// TLS handshakes the targets completed in the window, by kind, and the thread CPU spent inside
/// them (measured around each accept future).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TlsHandshakes {
    /// Full handshakes (new sessions: key exchange and a certificate signature).
    pub full: u64,
    /// Resumed handshakes (a ticket or cached session).
    pub resumed: u64,
    /// Handshakes that failed or timed out.
    pub failed: u64,
    /// Thread CPU inside the full handshakes, all of them, µs.
    pub full_cpu_us: f64,
    /// Thread CPU inside the resumed handshakes, µs.
    pub resumed_cpu_us: f64,
    /// Thread CPU inside the failed handshakes, µs.
    pub failed_cpu_us: f64,
}

impl TlsHandshakes {
    /// Thread CPU in every handshake of the window, µs.
    pub fn total_cpu_us(&self) -> f64 {
        self.full_cpu_us + self.resumed_cpu_us + self.failed_cpu_us
    }
}

/// One instance's load over the measured window (`instances = N`, N > 1).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InstanceLoad {
    /// Requests it served (its own count, every route but `/metrics`, probes included).
    pub requests: u64,
    /// Its share of the requests all instances served, %.
    pub requests_pct: f64,
    /// Its process's CPU over the window divided by the requests it served, µs; null when either
    /// reading is missing.
    pub target_cpu_us_per_request: Option<f64>,
    /// Store operations it issued (its own count, by command summed) per request it served.
    pub store_ops_per_request: Option<f64>,
}

/// What crossed the wire for one variant, counted at the driver's sockets over the measured window.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WireBytes {
    /// `http1`, `h2c`, `h2-tls` or `http1-tls`.
    pub transport: String,
    /// HTTP/2 only: `indexed` or `never-indexed` (how the credential header is compressed); null
    /// for HTTP/1.1, which does not compress headers.
    pub hpack: Option<String>,
    /// Request slots sharing one TCP connection (HTTP/2 streams); 1 for HTTP/1.1.
    pub streams_per_connection: usize,
    /// Bytes the driver wrote, all requests of the window (frames, TLS records and all).
    pub sent_bytes: u64,
    /// Bytes the driver read.
    pub received_bytes: u64,
    /// TCP connections opened in the window (each a TLS handshake with TLS).
    pub connections_opened: u64,
    /// Requests a connection carried before the driver closed it (`requests_per_connection`); 0:
    /// kept alive for the run. 0 in results written before it existed.
    #[serde(default)]
    pub requests_per_connection: u32,
    /// TLS transports: whether a new connection resumed the previous session (`tls_resumption`);
    /// null in clear text.
    #[serde(default)]
    pub tls_resumption: Option<bool>,
    /// `sent_bytes` / requests: what one request of the mix costs upstream.
    pub sent_bytes_per_request: f64,
    /// `received_bytes` / requests.
    pub received_bytes_per_request: f64,
}

/// Where one strategy stops meeting the capacity objective, from its rate stages.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BreakingPoint {
    /// The objective: p99 latency of every request of a stage (all operations), ms.
    pub objective_p99_ms: f64,
    /// The objective: largest share of a stage's requests that ended in an error.
    pub objective_max_error_rate: f64,
    /// Target rate of the highest stage, of those below the first sustained miss, that met the objective
    /// (p99, error share, and achieved rate at least 95 % of the target); null when the first
    /// stage already missed it.
    pub max_rate_meeting_objective_per_sec: Option<f64>,
    /// Achieved rate of that stage, req/s.
    pub achieved_rps_at_max: Option<f64>,
    /// Target rate of the first stage past the knee (p99 above twice the lowest stage's, or the
    /// achieved rate below 95 % of the target); null when no stage was.
    pub knee_rate_per_sec: Option<f64>,
    /// Why the first stage of a sustained miss (a missed stage whose next stage missed too, or the
    /// ladder's last stage) missed the objective; null when none did (the breaking point is then
    /// above the ladder).
    pub first_miss: Option<String>,
    /// Stages below the breaking point that missed while the next, higher stage met the objective
    /// (a stall, not the design's limit), each with why it missed. Shown, never dropped.
    #[serde(default)]
    pub transient_misses: Vec<String>,
    /// Error share of each stage, in stage order (errors / requests of the stage); null for a
    /// stage without requests.
    pub stage_error_rates: Vec<Option<f64>>,
}

/// A USL fit of (connections, throughput) points from a closed-loop connections sweep.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct UslResult {
    /// The sweep's name: the strategy label without its `connections=` coordinate.
    pub sweep: String,
    /// Where the points came from, e.g. `closed-loop matrix.connections sweep: throughput_rps`.
    pub source: String,
    /// The fitted points: connections -> measured throughput, req/s.
    pub points: Vec<UslPoint>,
    /// Contention coefficient σ.
    pub sigma: Option<f64>,
    /// Coherency coefficient κ.
    pub kappa: Option<f64>,
    /// Throughput of one connection without contention, req/s.
    pub lambda_rps: Option<f64>,
    /// N* = sqrt((1 − σ)/κ); null when κ = 0 (no peak within the model) or the fit failed.
    pub peak_connections: Option<f64>,
    /// X(N*), req/s.
    pub peak_throughput_rps: Option<f64>,
    pub r_squared: Option<f64>,
    /// Fewer than 4 points or R² below 0.9: the coefficients are not to be trusted.
    pub poor_fit: bool,
    /// Why there is no fit, when there is none (too few points).
    pub error: Option<String>,
}

/// One measured point of a USL sweep.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct UslPoint {
    pub connections: f64,
    pub throughput_rps: f64,
}

/// The requests of one measured window, counted by the target and by the harness's senders.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RequestAccounting {
    /// Requests the target answered in the window, by its own `/metrics` counter
    /// (`authbench_requests_total`, every route but `/metrics`); null when it could not be read.
    pub target_requests: Option<u64>,
    /// Requests the driver completed in the window (the same as `requests`).
    pub driver_requests: u64,
    /// Requests the availability prober sent in the window (polls and re-logins): the harness's own.
    pub prober_requests: u64,
    /// Revocation-probe requests inside the window: 0, the probe runs after it.
    pub revocation_probe_requests_in_window: u64,
    /// Requests the target answered while the revocation probe ran after the window (its count).
    pub revocation_probe_requests_after_window: Option<u64>,
    /// `target_requests - driver_requests - prober_requests`: requests in flight at the window's
    /// edges (negative: the driver counted answers the target had counted before the window).
    pub unaccounted_requests: Option<i64>,
    /// `target` or `driver`: the count that divides target CPU, store operations, store CPU and
    /// store network per request.
    pub per_request_denominator: String,
}

/// What a short store pause after the measured window did to one strategy's target, seen by a
/// prober polling `GET /api/resource` with a valid credential and `POST /login`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StoreDownCheck {
    /// `pause` (SIGSTOP, then SIGCONT).
    pub mode: String,
    /// How long the store was stopped.
    pub duration_ms: f64,
    /// api answers by phase (`before`, `during`, `after` the pause, by when the answer arrived)
    /// and status (`200`, `503`, `timeout`, `error`).
    pub api: BTreeMap<String, BTreeMap<String, u64>>,
    /// login answers, the same way.
    pub login: BTreeMap<String, BTreeMap<String, u64>>,
    /// Measured behaviour of api requests while the store was down: `unaffected` (all 200),
    /// `fails closed` (no 200), `fails open` (200 while the store check failed; fail-open targets),
    /// `mixed`, or `not measured` (no answer arrived during the pause).
    pub api_behaviour: String,
    /// The same for logins.
    pub login_behaviour: String,
    /// From the pause's end to the first 200 for an api poll sent after it; null if none came.
    pub api_recovery_ms: Option<f64>,
    /// From the pause's end to the first 200 for a login sent after it; null if none came.
    pub login_recovery_ms: Option<f64>,
    /// The behaviour the strategy's profile expects (`api/login`, as above); null until strategy
    /// profiles carry one.
    pub expected: Option<String>,
    /// Whether the measured behaviour matched `expected`; null without an expectation.
    pub matches_expected: Option<bool>,
}

/// Latency added to every store round trip by the harness's delay proxy.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct StoreDistance {
    pub delay_ms: f64,
    /// Spread of the delay (uniform, ± half of it each way).
    pub jitter_ms: f64,
}

/// A store outage measured by a health prober: one valid credential polling `GET /api/resource`
/// about every 10 ms, each answer classed by when it was sent (before / during / after the outage).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OutageResult {
    /// `pause` (SIGSTOP/SIGCONT) or `kill` (SIGKILL, then a fresh empty server on the same port).
    pub mode: String,
    /// Start of the outage, seconds from the start of the measured window.
    pub at_s: f64,
    pub duration_s: f64,
    /// The target ran with `--fail-open` (jwt-denylist): store errors let requests through.
    pub fail_open: bool,
    /// The target's `--stale-grace`, ms (session, session-cached): store errors answered from
    /// answers at most this old; null when it ran without one.
    #[serde(default)]
    pub stale_grace_ms: Option<f64>,
    /// Prober answers that arrived before / during / after the outage, by status code (`200`,
    /// `503`, ...) or `timeout` / `error` (no answer).
    pub before: BTreeMap<String, u64>,
    pub during: BTreeMap<String, u64>,
    pub after: BTreeMap<String, u64>,
    /// From the outage start to the first failed prober answer; null when none failed.
    pub first_failure_ms: Option<f64>,
    /// From the outage end to the first 200 again; null when none came before the window ended.
    pub recovery_ms: Option<f64>,
    /// Unexpected allows (revoked or forged credentials accepted) over the whole measured window;
    /// with fail-open they come from the outage.
    pub unexpected_allow: u64,
    /// A revoked credential the prober also polled (session, jwt-denylist), accepted during the
    /// outage: the security cost of failing open, probed directly. Null when not probed.
    pub revoked_allowed_during: Option<u64>,
    /// The prober's credential stopped working after the outage (the store lost its data) and it
    /// had to log in again.
    pub credential_lost: bool,
    /// The api status the strategy's profile expects while its store is down (with this run's
    /// `authz` and `fail_open`): 200 unaffected or failing open, 503 failing closed.
    #[serde(default)]
    pub design_status: Option<u16>,
    /// Share (0..1) of the prober's answers during the outage that had `design_status`: the
    /// design checked against what was measured. Null without answers.
    #[serde(default)]
    pub design_match_share: Option<f64>,
    /// Kill mode: what losing the store's data cost; null in pause mode.
    #[serde(default)]
    pub kill_cost: Option<KillCost>,
}

/// A failover (`[store.failover]`): the primary of a Sentinel group or one master of a Redis
/// Cluster killed mid-window, a replica promoted (none for a cluster master without replicas: a
/// partial outage), and what the failover forgot, probed directly (`collect::failover`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FailoverResult {
    /// `kill` or `cut-replication` (replication cut `lead_ms` before the kill).
    pub mode: String,
    /// `sentinel` or `cluster` (empty in reports written before clusters failed over: sentinel).
    #[serde(default)]
    pub store: String,
    /// Replicas of the killed node that could take over; 0: a partial outage (its slots stay down).
    #[serde(default)]
    pub replicas: u32,
    /// Cluster: the killed master's hash slots (`0-5460`): the keys, and so the users and
    /// sessions, it took down. Null for a Sentinel primary (it held every key).
    #[serde(default)]
    pub failed_slots: Option<String>,
    /// Share (0..1) of the key space the killed node served (1 for a Sentinel primary): about
    /// this share of the probes' keys lived on it.
    #[serde(default)]
    pub key_share: f64,
    /// The kill, seconds from the start of the measured window.
    pub at_s: f64,
    /// How long before the kill the probes revoked credentials and created sessions (and, in
    /// `cut-replication` mode, replication was cut).
    pub lead_ms: f64,
    /// The targets' `--store-wait-replicas` (0: writes not waited for).
    pub wait_replicas: u32,
    /// `min-replicas-to-write` on the data nodes (0: off) and its `min-replicas-max-lag`, seconds.
    pub min_replicas_to_write: u32,
    pub min_replicas_max_lag_s: u32,
    /// From the kill to the first time a Sentinel named a new primary; null when none did in time.
    pub promoted_after_ms: Option<f64>,
    /// From the kill to the failover poller's first failed answer (a valid credential on
    /// `GET /api/resource` about every 10 ms); null when none failed.
    pub first_failure_ms: Option<f64>,
    /// The failover as requests saw it: from the poller's first failed answer to its first 200
    /// after it; null when none failed (or none succeeded again in time).
    pub failover_ms: Option<f64>,
    /// Poller answers that were not 200 during the failover.
    pub failed_answers: u64,
    /// Requests of the traffic over the measured window that did not end as expected (errors,
    /// 503s, unexpected denies): the failover is the only fault the window holds.
    pub errors_in_window: u64,
    /// Revocations (logout, revoke-user) the probes sent in the lead that the target answered 200.
    /// Null for a strategy without a revocation a store could forget.
    pub revocations_acknowledged: Option<u64>,
    /// Revocations answered otherwise (503: the store, or `WAIT`, refused them): the client knows.
    pub revocations_refused: Option<u64>,
    /// Acknowledged revocations whose credential was accepted again after the failover: each an
    /// unexpected allow, the security cost of the failover.
    pub revocations_lost: Option<u64>,
    /// Logins the probes made in the lead that the target answered 200.
    pub sessions_acknowledged: Option<u64>,
    pub sessions_refused: Option<u64>,
    /// Acknowledged logins whose credential was refused after the failover (the session or refresh
    /// family was lost).
    pub sessions_lost: Option<u64>,
    /// Replays that got no 200 or 401 before the replay deadline (not counted either way).
    pub replays_unanswered: u64,
}

/// What a kill-mode outage cost: the store came back empty, so every credential it held was lost.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct KillCost {
    /// Keys the store held just before the kill (sessions, refresh families, denylist entries),
    /// read from its `INFO keyspace`: the credentials (or revocations) lost; null if unread.
    pub store_keys_lost: Option<u64>,
    /// Requests the driver sent with a credential it held valid that were refused, over the
    /// measured window (the engine's `unexpected_deny`; without the kill it is about 0): the users
    /// logged out by it.
    pub unexpected_deny: u64,
    /// Logins (any answer) per second over the measured window, from the engine's histograms.
    pub logins_per_second: Vec<u64>,
    /// Median logins per second before the outage.
    pub logins_per_s_before: Option<f64>,
    /// Most logins in one second from the outage on: the re-login storm.
    pub logins_peak_per_s_after: Option<u64>,
}

/// A signing-key rotation (`POST /admin/rotate-key`) and what followed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RotationResult {
    /// Seconds from the start of the measured window.
    pub at_s: f64,
    /// How long old-key tokens were to stay valid.
    pub overlap_s: f64,
    /// Key id of the new key, as the target answered.
    pub kid: Option<String>,
    /// From the rotation to the first 401 for a token issued before it (the mass logout); null
    /// when it was still accepted when the window ended.
    pub old_token_rejected_after_ms: Option<f64>,
    /// Logins (any answer) per second of the measured window (index = second).
    pub logins_per_second: Vec<u64>,
    /// Median logins per second before the rotation (the median, so the users' first logins at
    /// the start do not count as the usual rate).
    pub logins_per_s_before: Option<f64>,
    /// Most logins in one second after the rotation (the re-login storm).
    pub logins_peak_per_s_after: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Errors {
    pub total: u64,
    /// `connect`, `timeout`, `protocol`, `status_<code>`.
    pub by_class: BTreeMap<String, u64>,
}

/// Every request ends in exactly one of these.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Outcomes {
    pub expected_allow: u64,
    pub expected_deny: u64,
    /// A revoked or forged credential was accepted: a security failure.
    pub unexpected_allow: u64,
    pub unexpected_deny: u64,
    pub timeout: u64,
    pub connect_error: u64,
    pub protocol_error: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub min: u64,
    pub stdev: f64,
}

/// Store load read from the store itself over the measured window.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StoreLoad {
    /// False when the store could not be observed (memory store figures come from `/metrics`,
    /// `--target URL` runs have none); the per-request figures are then null.
    pub measured: bool,
    pub ops_per_request: Option<f64>,
    /// Store commands per request, by command name (Redis `INFO commandstats`).
    pub ops_by_command: BTreeMap<String, f64>,
    pub cpu_us_per_request: Option<f64>,
    pub net_bytes_per_request: Option<f64>,
    /// Store memory growth per live session/token record created in the run.
    pub memory_bytes_per_session: Option<f64>,
    /// Per node of a Redis Cluster, in the order of its seed URLs (empty for one server): how the
    /// load spread, so the busiest node (the first to saturate) can be told from the mean.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeLoad>,
    /// Mean store operations in flight on a target when one started (itself included), from the
    /// targets' `/metrics`: the concurrency each instance's store connection worked at, which a
    /// store operation's client CPU depends on. Null when the targets issued none.
    #[serde(default)]
    pub in_flight_mean: Option<f64>,
}

/// One cluster node's share of the store load over the measured window.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeLoad {
    /// Commands this node executed per request (the harness's own left out).
    pub ops_per_request: Option<f64>,
    /// This node's CPU (`used_cpu_sys` + `used_cpu_user`, housekeeping subtracted) per request, µs.
    pub cpu_us_per_request: Option<f64>,
}

/// How long a revoked credential kept working, probed directly.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RevocationWindow {
    pub p50: Option<f64>,
    pub max: Option<f64>,
    pub probes: u64,
    /// True when some credential was still accepted at the end of the run: `max` is then the
    /// bound read from the token's `exp` (+ leeway), not an observation.
    pub bounded: bool,
    /// Longest window actually observed (credential still accepted), ms.
    pub observed_max: Option<f64>,
    /// The access token's lifetime (`exp - iat` of the probed tokens), seconds; null without JWTs.
    #[serde(default)]
    pub access_ttl_s: Option<f64>,
    /// The target's `--leeway`, seconds; null without JWTs.
    #[serde(default)]
    pub leeway_s: Option<f64>,
    /// How often the revoked credential was presented again (the window's resolution), ms.
    #[serde(default)]
    pub poll_interval_ms: Option<f64>,
    /// With several instances: on how many instances other than the revoking one each probe
    /// replayed the revoked credential (the window runs until every one of them refused it).
    /// Null with one instance (the credential is replayed where it was revoked).
    #[serde(default)]
    pub other_instances: Option<u64>,
}

/// A cached strategy's read cache over the measured window, from the targets' `/metrics`
/// (`authbench_cache_events_total`, `authbench_cache_size`), summed over instances.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CacheResult {
    /// How often each cache event happened in the window (`hit`, `miss`, `bypass`, `fill`,
    /// `fill_rejected`, `eviction`, `invalidation`, `flush`).
    pub events: BTreeMap<String, u64>,
    /// Entries held at the window's end.
    pub entries: u64,
    /// Bytes the cache's structures held at the window's end (slots at capacity + keys + values).
    pub accounted_bytes: u64,
    /// The configured bound, entries (summed over instances).
    pub max_entries: u64,
}

/// Whether the driver kept its schedule (open loop) and its own CPU.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ScheduleHealth {
    pub target_rate_per_sec: Option<f64>,
    pub achieved_rate_per_sec: f64,
    /// Requests sent more than 1 ms after their intended time.
    pub late_starts: u64,
    pub max_lag_us: u64,
    /// Driver process CPU over the measured window, percent of one core.
    pub driver_cpu_percent: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TimelinePoint {
    pub t_s: f64,
    pub rps: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub errors: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StageResult {
    pub target_rate_per_sec: f64,
    pub achieved_rps: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub errors: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ThresholdResult {
    /// As written in the scenario, e.g. `jwt.api.p99_us`.
    pub metric: String,
    /// As written, e.g. `< 2000`.
    pub condition: String,
    pub actual: Option<f64>,
    pub passed: bool,
}

#[cfg(test)]
mod tests {
    use crate::targets::StrategyKind;

    /// `results/schema.json` names strategies by a pattern, so a new strategy needs no schema edit;
    /// every registered name must match it.
    #[test]
    fn schema_accepts_every_registered_strategy() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../results/schema.json");
        let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let field = &schema["$defs"]["strategy"]["properties"]["strategy"];
        let pattern = field["pattern"].as_str().expect("strategy names are a pattern");
        assert_eq!(pattern, "^[a-z][a-z0-9+-]*$", "this test's matcher follows the pattern");
        for kind in StrategyKind::ALL {
            let name = kind.name();
            let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
                && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '+' || c == '-');
            assert!(ok, "{name} does not match the schema's strategy pattern");
        }
        assert!(field.get("enum").is_none(), "no closed list of names in the schema");
    }
}
