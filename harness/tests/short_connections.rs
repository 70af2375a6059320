//! Short-lived connections (`requests_per_connection`) and what TLS handshakes cost the target: the
//! driver opens one connection per request on every transport (as the target counts them), every
//! request ends in an outcome, the handshake counters and their CPU are present and positive after
//! TLS connections, resumption can be turned off, a bad value is refused with its file and key, and
//! a whole run reports it all in a report.json that matches the schema.

use std::time::Duration;

use authbench::collect::accounting::{TargetCounters, read_counters};
use authbench::engine::EngineOutput;
use authbench::engine::transport::{Transport, WireSettings};
use authbench::plan::{self, RunArgs, Stop};
use authbench::results::Report;
use authbench::targets::config::StrategyKind;

use crate::transports::{MIXED, config, drive, real_target};

/// Drive `strategy` over `wire` against a fresh real target; the engine's output and the target's
/// counters before and after.
async fn drive_counted(strategy: StrategyKind, wire: WireSettings) -> (EngineOutput, TargetCounters, TargetCounters) {
    let (url, _stop) = real_target(strategy, wire.transport.tls()).await;
    let before = read_counters(&url).await.expect("metrics before");
    let mut cfg = config(url.clone(), strategy, wire, MIXED);
    cfg.stop = Stop::Duration(Duration::from_millis(800));
    let out = drive(cfg).await;
    let after = read_counters(&url).await.expect("metrics after");
    (out, before, after)
}

/// Every request the driver made ended in exactly one class, and none failed.
fn assert_every_request_has_an_outcome(out: &EngineOutput, what: &str) {
    let rec = &out.recorder;
    let o = rec.outcomes();
    assert!(rec.requests() > 20, "{what}: only {} requests", rec.requests());
    assert_eq!(o.iter().sum::<u64>(), rec.requests(), "{what}: every request in one class: {o:?}");
    let failed = rec.errors.values().sum::<u64>();
    assert_eq!(failed, 0, "{what}: errors {:?}", rec.errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_per_connection_opens_a_connection_per_request_on_every_transport() {
    for transport in [Transport::Http1, Transport::H2c, Transport::Http1Tls, Transport::H2Tls] {
        let what = transport.name();
        let wire = WireSettings { transport, requests_per_connection: 1, ..WireSettings::default() };
        let (out, before, after) = drive_counted(StrategyKind::JWT, wire).await;
        assert_every_request_has_an_outcome(&out, what);
        let accepted = after.connections_accepted.expect("counted") - before.connections_accepted.expect("counted");
        let served = after.requests - before.requests;
        // The reading after the run came on a connection of its own (its /metrics request is not
        // in `requests`); every other connection carried exactly one request.
        assert_eq!(accepted - 1, served, "{what}: one connection per request served");
        assert_eq!(out.recorder.wire.connects, out.recorder.requests(), "{what}: the driver's own count");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_alive_connections_are_opened_once() {
    let wire = WireSettings { transport: Transport::Http1Tls, ..WireSettings::default() };
    let (out, before, after) = drive_counted(StrategyKind::SESSION, wire).await;
    assert_every_request_has_an_outcome(&out, "kept alive");
    let accepted = after.connections_accepted.expect("counted") - before.connections_accepted.expect("counted");
    assert_eq!(accepted, 4 + 1, "the 4 connections, and the reading after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_are_counted_with_their_cpu_full_and_resumed() {
    let wire = WireSettings { transport: Transport::H2Tls, requests_per_connection: 2, ..WireSettings::default() };
    let (out, before, after) = drive_counted(StrategyKind::NONE, wire).await;
    assert_every_request_has_an_outcome(&out, "h2-tls resuming");
    let grown = |k: &str| {
        after.tls_handshakes.get(k).copied().unwrap_or(0) - before.tls_handshakes.get(k).copied().unwrap_or(0)
    };
    let cpu = |k: &str| {
        after.tls_handshake_cpu_seconds.get(k).copied().unwrap_or(0.0)
            - before.tls_handshake_cpu_seconds.get(k).copied().unwrap_or(0.0)
    };
    assert!(grown("full") >= 4, "each connection's first handshake is full: {:?}", after.tls_handshakes);
    assert!(grown("resumed") > grown("full"), "later ones resume: {:?}", after.tls_handshakes);
    assert_eq!(grown("failed"), 0);
    assert!(cpu("full") > 0.0 && cpu("resumed") > 0.0, "{:?}", after.tls_handshake_cpu_seconds);

    let off = WireSettings { tls_resumption: false, ..wire };
    let (out, before, after) = drive_counted(StrategyKind::NONE, off).await;
    assert_every_request_has_an_outcome(&out, "h2-tls without resumption");
    let resumed = after.tls_handshakes.get("resumed").copied().unwrap_or(0) - before.tls_handshakes["resumed"];
    assert_eq!(resumed, 0, "no session offered, none resumed");
    assert!(after.tls_handshakes["full"] - before.tls_handshakes["full"] > 10);
}

#[test]
fn a_bad_requests_per_connection_names_the_file_and_the_key() {
    let dir = tempfile::tempdir().expect("tmp");
    for (text, line) in [
        ("[traffic]\nrequests_per_connection = -1\n", 2),
        ("[traffic]\ntransport = \"h2-tls\"\n\n[matrix]\nrequests_per_connection = [1, 2000000]\n", 5),
    ] {
        let path = dir.path().join("short.toml");
        std::fs::write(&path, text).expect("write");
        let e = plan::build(&RunArgs { scenario: Some(path.clone()), ..RunArgs::default() }).expect_err("refused");
        let msg = e.to_string();
        assert!(msg.starts_with(&format!("{}:{line}:", path.display())), "{msg}");
        assert!(msg.contains("requests_per_connection must be 0"), "{msg}");
    }
}

#[test]
fn resumption_is_swept_only_where_connections_are_reopened_over_tls() {
    let text = "strategies = [\"none\"]\n[matrix]\ntransport = [\"http1\", \"h2-tls\"]\n\
                requests_per_connection = [1, 0]\ntls_resumption = [true, false]\n";
    let l = authbench::scenario::parse(text, "t.toml", "t").expect("parses");
    let p = plan::build_from(l, &RunArgs::default()).expect("plan");
    let labels: Vec<&str> = p.variants.iter().map(|v| v.label.as_str()).collect();
    // http1 x {1, 0}: once each; h2-tls kept alive: once; h2-tls x 1: both.
    assert_eq!(labels.len(), 5, "{labels:#?}");
    let off: Vec<&str> = labels.iter().copied().filter(|l| l.contains("tls_resumption=false")).collect();
    assert_eq!(off, ["none requests_per_connection=1 tls_resumption=false transport=h2-tls"]);
}

/// `authbench run` on a scenario text; the report, validated against results/schema.json.
fn run(text: &str) -> (Report, String) {
    let dir = tempfile::tempdir().expect("tmp");
    let scenario = dir.path().join("short.toml");
    std::fs::write(&scenario, text).expect("write");
    let out = dir.path().join("out");
    let status = std::process::Command::new(crate::util::authbench_exe())
        .args(["run", "--no-progress", "--store", "memory", "-o"])
        .arg(&out)
        .arg(&scenario)
        .status()
        .expect("runs");
    assert!(status.success(), "{status}");
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::util::repo_root().join("results/schema.json")).expect("schema"),
    )
    .expect("schema is JSON");
    let instance: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).expect("read")).expect("JSON");
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    let errors: Vec<String> = validator.iter_errors(&instance).map(|e| format!("{e} at {}", e.instance_path)).collect();
    assert!(errors.is_empty(), "report.json does not match results/schema.json: {errors:#?}");
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    (serde_json::from_value(instance).expect("a Report"), md)
}

#[test]
fn a_short_connection_run_reports_handshake_cost_beside_auth_cost() {
    let (report, md) = run("strategies = [\"none\", \"jwt\"]\n\
         [traffic]\nconnections = 4\nusers = 16\nwarmup = \"300ms\"\nduration = \"1s\"\n\
         transport = \"http1-tls\"\nrequests_per_connection = 2\n\
         [probe]\nrevocation_probes = 1\nstore_down_pause = \"0s\"\n");
    for s in &report.strategies {
        let c = s.connections.as_ref().expect("connections read");
        let per_request = authbench::figures::CONNECTIONS_PER_REQUEST.value(s, "").expect("measured");
        assert!(per_request > 0.3 && per_request <= 1.0, "{}: {per_request} connections per request", s.name);
        let tls = c.tls.as_ref().expect("TLS counted");
        assert!(tls.full > 0 && tls.resumed > 0, "{}: {tls:?}", s.name);
        for f in [&authbench::figures::TLS_FULL_HANDSHAKE_CPU_US, &authbench::figures::TLS_RESUMED_HANDSHAKE_CPU_US] {
            assert!(f.value(s, "").is_some_and(|v| v > 0.0), "{}: {}", s.name, f.key);
        }
        assert_eq!(s.wire.as_ref().map(|w| (w.requests_per_connection, w.tls_resumption)), Some((2, Some(true))));
    }
    assert!(md.contains("## Connections and TLS") && md.contains("### TLS cost next to auth cost"), "{md}");
    assert!(md.contains("one full handshake = requests of auth"), "{md}");
}
