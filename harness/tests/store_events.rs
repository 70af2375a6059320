//! Store distance, store outages, Redis Cluster and key rotation: the scenario options and their
//! errors, and short end-to-end runs against real redis-servers (skipped when none is installed).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use authbench::plan::{self, PlanError, RunArgs, RunPlan};
use authbench::results::{Report, StrategyResult};
use authbench::scenario::{self, OutageMode, StoreChoice};
use authbench::targets::config::StrategyKind;

fn plan_of(text: &str) -> Result<RunPlan, PlanError> {
    let loaded = scenario::parse(text, "test.toml", "test")?;
    plan::build_from(loaded, &RunArgs::default())
}

fn plan_err(text: &str) -> String {
    plan_of(text).expect_err("must be refused").to_string()
}

#[test]
fn store_table_parses_with_every_option() {
    let p = plan_of(
        "strategies = [\"session\", \"jwt-denylist\"]\n[store]\nkind = \"redis\"\ndelay = \"2ms\"\njitter = \"0.5ms\"\n\
         [store.outage]\nat = \"5s\"\nduration = \"3s\"\nmode = \"kill\"\n[traffic]\nduration = \"10s\"\n",
    )
    .expect("plan");
    assert_eq!(p.store, StoreChoice::Redis);
    assert_eq!(p.store_jitter, Duration::from_micros(500));
    let o = p.outage.expect("outage");
    assert_eq!((o.at.0, o.duration.0, o.mode), (Duration::from_secs(5), Duration::from_secs(3), OutageMode::Kill));
    assert!(p.variants.iter().all(|v| v.store_delay == Some(Duration::from_millis(2))));
}

#[test]
fn store_as_a_string_still_works_and_auto_becomes_redis_for_an_outage() {
    assert_eq!(plan_of("store = \"memory\"\n").expect("plan").store, StoreChoice::Memory);
    assert_eq!(plan_of("store = \"cluster\"\n").expect("plan").store, StoreChoice::Cluster);
    let p = plan_of("[store.outage]\nat = \"1s\"\nduration = \"1s\"\n").expect("plan");
    assert_eq!(p.store, StoreChoice::Redis, "an outage needs a real store");
    assert_eq!(p.outage.map(|o| o.mode), Some(OutageMode::Pause), "pause is the default mode");
    assert!(p.variants.iter().all(|v| v.store_delay.is_none()), "no proxy without a delay");
}

#[test]
fn store_errors_point_at_the_line() {
    let e = scenario::parse("name = \"x\"\n[store]\nkind = \"redis\"\ndelai = \"1ms\"\n", "t.toml", "t")
        .expect_err("unknown key");
    assert_eq!(e.position().map(|p| p.0), Some(4), "{e}");
    assert!(e.to_string().contains("delai") && e.to_string().contains("delay"), "{e}");

    let e = scenario::parse("[store]\n[store.outage]\nat = \"1s\"\nduration = \"1s\"\nmode = \"nap\"\n", "t.toml", "t")
        .expect_err("bad mode");
    assert_eq!(e.position().map(|p| p.0), Some(5), "{e}");
    assert!(e.to_string().contains("pause") && e.to_string().contains("kill"), "{e}");

    let e = scenario::parse("store = \"etcd\"\n", "t.toml", "t").expect_err("bad kind");
    assert_eq!(e.position().map(|p| p.0), Some(1), "{e}");
    assert!(e.to_string().contains("cluster"), "lists the kinds: {e}");

    let e = scenario::parse("[store.outage]\nat = \"1s\"\n", "t.toml", "t").expect_err("missing duration");
    assert!(e.to_string().contains("duration"), "{e}");

    let e = scenario::parse("[rotation]\nat = \"1s\"\noverlapp = \"1s\"\n", "t.toml", "t").expect_err("unknown");
    assert_eq!(e.position().map(|p| p.0), Some(3), "{e}");
}

#[test]
fn inconsistent_store_options_are_refused() {
    let m = plan_err("strategies = [\"session\"]\n[target]\nfail_open = true\n");
    assert!(m.contains("jwt-denylist"), "{m}");
    let m = plan_err("strategies = [\"session\"]\n[matrix]\nfail_open = [false, true]\n");
    assert!(m.contains("jwt-denylist"), "{m}");
    let m = plan_err("[store]\nkind = \"memory\"\ndelay = \"1ms\"\n");
    assert!(m.contains("Redis"), "{m}");
    let m = plan_err("[store]\nkind = \"cluster\"\n[store.outage]\nat = \"1s\"\nduration = \"1s\"\n");
    assert!(m.contains("cluster"), "{m}");
    let m = plan_err("[store]\nkind = \"redis\"\ncluster_nodes = 3\n");
    assert!(m.contains("cluster_nodes"), "{m}");
    let m = plan_err("[store]\nkind = \"cluster\"\ncluster_nodes = 2\n");
    assert!(m.contains("at least 3"), "{m}");
    let m = plan_err("[store.outage]\nat = \"4s\"\nduration = \"2s\"\n[traffic]\nduration = \"5s\"\n");
    assert!(m.contains("inside"), "the outage must end inside the window: {m}");
    let m = plan_err("strategies = [\"session\"]\n[rotation]\nat = \"1s\"\n");
    assert!(m.contains("JWT"), "{m}");
    let m = plan_err("[rotation]\nat = \"9s\"\n[traffic]\nduration = \"5s\"\n");
    assert!(m.contains("rotation"), "{m}");
}

#[test]
fn matrix_sweeps_store_delay_and_fail_open() {
    let p = plan_of(
        "strategies = [\"none\", \"session\", \"jwt-denylist\"]\n[matrix]\nstore.delay = [\"0ms\", \"0.5ms\", \"5ms\"]\n\
         fail_open = [false, true]\n",
    )
    .expect("plan");
    let labels: Vec<&str> = p.variants.iter().map(|v| v.label.as_str()).collect();
    assert!(labels.contains(&"none"), "store.delay leaves none alone: {labels:?}");
    assert!(labels.contains(&"session store.delay=0.5ms"), "{labels:?}");
    assert!(labels.contains(&"jwt-denylist fail_open=true store.delay=5ms"), "{labels:?}");
    assert_eq!(p.variants.len(), 1 + 3 + 6, "{labels:?}");
    let v = p.variants.iter().find(|v| v.label == "session store.delay=5ms").expect("variant");
    assert_eq!(v.store_delay, Some(Duration::from_millis(5)));
    assert!(!v.target.fail_open && !v.target.to_args().contains(&"--fail-open".to_owned()));
    let v = p.variants.iter().find(|v| v.label == "jwt-denylist fail_open=true store.delay=0ms").expect("variant");
    assert!(v.target.fail_open && v.target.to_args().contains(&"--fail-open".to_owned()));
    assert_eq!(v.store_delay, Some(Duration::ZERO), "0ms still goes through the proxy, for a fair baseline");
}

#[test]
fn rotation_overlap_goes_to_jwt_targets_only() {
    let p = plan_of(
        "strategies = [\"session\", \"jwt\"]\n[rotation]\nat = \"2s\"\noverlap = \"1500ms\"\n[traffic]\nduration = \"5s\"\n",
    )
    .expect("plan");
    let r = p.rotation.expect("rotation");
    assert_eq!((r.at, r.overlap), (Duration::from_secs(2), Duration::from_millis(1500)));
    let args = |k: StrategyKind| p.variants.iter().find(|v| v.strategy == k).expect("variant").target.to_args();
    assert!(args(StrategyKind::JWT).windows(2).any(|w| w[0] == "--rotation-overlap" && w[1] == "1500ms"));
    assert!(!args(StrategyKind::SESSION).contains(&"--rotation-overlap".to_owned()));
}

// ---- end to end (real redis-server) ----

fn redis_or_skip() -> bool {
    let ok = authbench::environment::redis_server_available();
    if !ok {
        eprintln!("redis-server not installed: skipping");
    }
    ok
}

/// Run `authbench run` on a scenario text; the report, validated against results/schema.json.
pub(crate) fn run(text: &str, out: &Path) -> Report {
    let file = out.with_extension("toml");
    std::fs::write(&file, text).expect("write scenario");
    let output = Command::new(crate::util::authbench_exe())
        .args(["run", "--no-progress", "-o"])
        .arg(out)
        .arg(&file)
        .current_dir(crate::util::repo_root())
        .output()
        .expect("authbench runs");
    let json = std::fs::read_to_string(out.join("report.json"))
        .unwrap_or_else(|_| panic!("no report.json: {}\n{}", output.status, String::from_utf8_lossy(&output.stderr)));
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::util::repo_root().join("results/schema.json")).expect("schema"),
    )
    .expect("schema JSON");
    let instance: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    let errors: Vec<String> = validator.iter_errors(&instance).map(|e| format!("{e} at {}", e.instance_path)).collect();
    assert!(errors.is_empty(), "report.json does not match results/schema.json: {errors:#?}");
    serde_json::from_str(&json).expect("report.json parses")
}

fn find<'a>(r: &'a Report, name: &str) -> &'a StrategyResult {
    r.strategies
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("{name} missing: {:?}", r.strategies.iter().map(|s| &s.name).collect::<Vec<_>>()))
}

/// Light open-loop traffic measured for `duration`, no revocation probe (tables last in the file).
fn short(duration: &str) -> String {
    format!(
        "[traffic]\nmode = \"open\"\nrate = 150\nconnections = 4\nusers = 100\nwarmup = \"300ms\"\n\
         revoked_fraction = 0.05\nduration = \"{duration}\"\n[probe]\nrevocation_probes = 0\n"
    )
}

#[test]
fn pause_outage_fail_closed_and_fail_open() {
    if !redis_or_skip() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let text = format!(
        "strategies = [\"session\", \"jwt-denylist\"]\n[store]\nkind = \"redis\"\n[store.outage]\nat = \"2s\"\n\
         duration = \"2s\"\nmode = \"pause\"\n[matrix]\nfail_open = [false, true]\n{}",
        short("6s")
    );
    let report = run(&text, &tmp.path().join("outage"));
    assert_eq!(report.store_kind, "redis");
    for name in ["session", "jwt-denylist fail_open=false"] {
        let s = find(&report, name);
        let o = s.outage.as_ref().unwrap_or_else(|| panic!("{name}: outage measured"));
        assert_eq!(o.mode, "pause");
        assert!(!o.fail_open);
        assert!(o.during.get("503").copied().unwrap_or(0) > 0, "{name} fails closed: {o:?}");
        assert_eq!(s.outcomes.unexpected_allow, 0, "{name}: fail closed allows nothing: {o:?}");
        assert_eq!(o.unexpected_allow, 0);
        assert_eq!(o.revoked_allowed_during, Some(0), "{name}: {o:?}");
        assert!(o.first_failure_ms.is_some(), "{name}: {o:?}");
        let rec = o.recovery_ms.unwrap_or_else(|| panic!("{name}: recovery measured: {o:?}"));
        assert!(rec < 1500.0, "{name}: recovers soon after SIGCONT: {o:?}");
        assert!(o.after.get("200").copied().unwrap_or(0) > 0, "{name}: {o:?}");
        assert!(o.before.get("200").copied().unwrap_or(0) > 0, "{name}: {o:?}");
    }
    let s = find(&report, "jwt-denylist fail_open=true");
    let o = s.outage.as_ref().expect("outage measured");
    assert!(o.fail_open);
    assert!(o.during.get("200").copied().unwrap_or(0) > 0, "fail-open answers 200 during the outage: {o:?}");
    assert_eq!(o.during.get("503"), None, "fail-open never answers 503: {o:?}");
    assert!(o.revoked_allowed_during.unwrap_or(0) > 0, "the revoked credential got through: {o:?}");
    assert_eq!(o.unexpected_allow, s.outcomes.unexpected_allow);
    let md = std::fs::read_to_string(tmp.path().join("outage/report.md")).expect("report.md");
    assert!(md.contains("## Store outage") && md.contains("(fail-open)") && md.contains("measured (pause"), "{md}");
}

#[test]
fn kill_outage_restarts_the_store_empty() {
    if !redis_or_skip() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let text = format!(
        "strategies = [\"session\"]\n[store]\nkind = \"redis\"\n[store.outage]\nat = \"1s\"\nduration = \"1s\"\n\
         mode = \"kill\"\n{}",
        short("4s")
    );
    let report = run(&text, &tmp.path().join("kill"));
    let o = find(&report, "session").outage.clone().expect("outage measured");
    assert_eq!(o.mode, "kill");
    assert!(o.first_failure_ms.is_some(), "{o:?}");
    assert!(o.credential_lost, "the restarted store is empty: the session is gone: {o:?}");
    assert!(o.recovery_ms.is_some(), "a new login works on the restarted store: {o:?}");
    assert!(report.warnings.iter().any(|w| w.contains("restarted")), "{:?}", report.warnings);
}

#[test]
fn store_delay_raises_session_latency() {
    if !redis_or_skip() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let text = format!(
        "strategies = [\"session\"]\n[store]\nkind = \"redis\"\n[matrix]\nstore.delay = [\"0ms\", \"5ms\"]\n{}",
        short("2s")
    );
    let report = run(&text, &tmp.path().join("delay"));
    let p50 = |name: &str| find(&report, name).latency_us["api"].p50 as f64;
    let (near, far) = (p50("session store.delay=0ms"), p50("session store.delay=5ms"));
    assert!(far - near >= 3000.0, "5 ms of store distance must show in session's api p50: {near} µs -> {far} µs");
    let d = find(&report, "session store.delay=5ms").store_distance.expect("store distance recorded");
    assert_eq!(d.delay_ms, 5.0);
    assert!(tmp.path().join("delay/plots/sweep-store.delay-p99.svg").is_file(), "the sweep plot is drawn");
}

#[test]
fn key_rotation_rejects_the_old_token() {
    if !redis_or_skip() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let text = format!("strategies = [\"jwt\"]\n[rotation]\nat = \"1500ms\"\noverlap = \"0s\"\n{}", short("3s"));
    let report = run(&text, &tmp.path().join("rotation"));
    let r = find(&report, "jwt").rotation.clone().expect("rotation measured");
    assert!(r.kid.is_some(), "{r:?}");
    let after = r.old_token_rejected_after_ms.expect("the old token was rejected");
    assert!(after < 500.0, "no overlap: rejected at once, got {after} ms");
    assert!(r.logins_peak_per_s_after.unwrap_or(0) > 0, "users log in again: {r:?}");
    assert_eq!(r.logins_per_second.len(), 3, "{r:?}");
}

#[test]
fn matrix_sweeps_the_legacy_share_of_migrating_strategies_only() {
    let p =
        plan_of("strategies = [\"session\", \"hybrid\"]\nstore = \"memory\"\n[matrix]\nlegacy_fraction = [1.0, 0.0]\n")
            .expect("plans");
    let labels: Vec<&str> = p.variants.iter().map(|v| v.label.as_str()).collect();
    assert_eq!(labels, ["session", "hybrid legacy_fraction=1", "hybrid legacy_fraction=0"]);
    let shares: Vec<Option<f64>> = p.variants.iter().map(|v| v.legacy_fraction).collect();
    assert_eq!(shares, [None, Some(1.0), Some(0.0)], "session has one kind of client: not swept");
    let e = plan_err("strategies = [\"hybrid\"]\nstore = \"memory\"\n[matrix]\nlegacy_fraction = [1.5]\n");
    assert!(e.contains("legacy_fraction") && e.contains("from 0 to 1"), "{e}");
}

#[test]
fn matrix_sweeps_the_api_client_share_of_web_api_only() {
    let text = "strategies = [\"session\", \"web+api\", \"hybrid\"]\nstore = \"memory\"\n[matrix]\n\
                api_client_fraction = [0.0, 0.5, 1.0]\nlegacy_fraction = [0.5]\n";
    let p = plan_of(text).expect("plans");
    let labels: Vec<&str> = p.variants.iter().map(|v| v.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "session",
            "web+api api_client_fraction=0",
            "web+api api_client_fraction=0.5",
            "web+api api_client_fraction=1",
            "hybrid legacy_fraction=0.5"
        ],
        "each share applies to its own kind of strategy only"
    );
    let shares: Vec<Option<f64>> = p.variants.iter().map(|v| v.api_client_fraction).collect();
    assert_eq!(shares, [None, Some(0.0), Some(0.5), Some(1.0), None]);
    let e = plan_err("strategies = [\"web+api\"]\nstore = \"memory\"\n[matrix]\napi_client_fraction = [1.5]\n");
    assert!(e.contains("api_client_fraction") && e.contains("from 0 to 1"), "{e}");
    let e = plan_err("strategies = [\"web+api\"]\n[traffic]\napi_client_fraction = 1.5\n");
    assert!(e.contains("traffic.api_client_fraction") && e.contains("between 0 and 1"), "{e}");
    assert_eq!(plan_of("[traffic]\napi_client_fraction = 0.25\n").expect("all strategies").api_client_fraction, 0.25);
}

#[test]
fn api_client_fraction_without_a_two_kind_strategy_names_the_file_and_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    for (text, key) in [
        (
            "strategies = [\"session\", \"jwt-denylist\"]\n[traffic]\napi_client_fraction = 0.5\n",
            "traffic.api_client_fraction",
        ),
        ("strategies = [\"hybrid\"]\n[matrix]\napi_client_fraction = [0.0, 1.0]\n", "matrix.api_client_fraction"),
    ] {
        let file = tmp.path().join("mix.toml");
        std::fs::write(&file, text).expect("write");
        let loaded = scenario::load(&file).expect("parses");
        let e = plan::build_from(loaded, &RunArgs::default()).expect_err("refused").to_string();
        assert!(e.contains(&file.display().to_string()) && e.contains(key), "{e}");
        assert!(e.contains("web+api"), "names the strategies it applies to: {e}");
    }
}

/// `web+api` with half its users API clients, end to end on the memory store: both populations'
/// api latency, both verification paths counted, revocation probed on both kinds, nothing revoked
/// or forged accepted.
#[test]
fn web_api_population_mix_end_to_end() {
    let tmp = tempfile::tempdir().expect("tmp");
    let text = "strategies = [\"web+api\"]\nstore = \"memory\"\n[traffic]\nconnections = 4\nusers = 40\n\
                warmup = \"300ms\"\nduration = \"2s\"\nrevoked_fraction = 0.05\napi_client_fraction = 0.5\n\
                [probe]\nrevocation_probes = 4\n";
    let report = run(text, &tmp.path().join("web-api"));
    let s = find(&report, "web+api");
    for client in ["browser", "api"] {
        let l = s.latency_by_client_us.get(client).unwrap_or_else(|| panic!("{client} latency: {s:?}"));
        assert!(l.count > 0, "{client}: {l:?}");
    }
    for path in ["session", "bearer"] {
        assert!(s.auth_paths.get(path).copied().unwrap_or(0) > 0, "{path} path counted: {:?}", s.auth_paths);
    }
    assert_eq!((s.outcomes.unexpected_allow, s.outcomes.unexpected_deny), (0, 0), "{:?}", s.outcomes);
    let w = &s.revocation_window_ms;
    assert!(w.probes == 4 && w.max.is_some() && !w.bounded, "both kinds revoked at once: {w:?}");
}
