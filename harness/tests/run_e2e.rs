//! End to end: `authbench run` (the quickstart, shortened by flags) as a user runs it, every
//! promised file, the report validated against `results/schema.json`, store load read from a real
//! redis-server, and the revocation window per strategy.

use std::path::Path;
use std::process::Command;

use authbench::results::Report;

fn run_quickstart(out: &Path, store: &str) -> Report {
    // 64 users (not the quickstart's 1000): every user logs in before its first api call, and on a
    // loaded machine with a debug build 1000 initial logins can outlast a 2.5 s run.
    let status = Command::new(crate::util::authbench_exe())
        .args(["run", "-z", "2s", "--warmup", "500ms", "--users", "64", "--store", store, "--no-progress", "-o"])
        .arg(out)
        .current_dir(crate::util::repo_root())
        .status()
        .expect("authbench runs");
    assert!(status.success(), "authbench run failed: {status}");
    let text = std::fs::read_to_string(out.join("report.json")).expect("report.json");
    serde_json::from_str(&text).expect("report.json parses as Report")
}

fn validate_against_schema(dir: &Path) {
    let schema_text = std::fs::read_to_string(crate::util::repo_root().join("results/schema.json")).expect("schema");
    let schema: serde_json::Value = serde_json::from_str(&schema_text).expect("schema is JSON");
    let instance: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).expect("read")).expect("JSON");
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    let errors: Vec<String> =
        validator.iter_errors(&instance).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    assert!(errors.is_empty(), "report.json does not match results/schema.json: {errors:#?}");
}

/// `authbench run SCENARIO -o DIR` with `extra` flags: it succeeds, its report.json matches the
/// schema, and is returned.
fn run_scenario(extra: &[&str], scenario: &Path, dir: &Path) -> Report {
    let status = Command::new(crate::util::authbench_exe())
        .args(["run", "--no-progress"])
        .args(extra)
        .arg("-o")
        .arg(dir)
        .arg(scenario)
        .status()
        .expect("runs");
    assert!(status.success(), "{status}");
    validate_against_schema(dir);
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).expect("read")).expect("parse")
}

#[test]
fn quickstart_end_to_end_on_redis() {
    if !authbench::environment::redis_server_available() {
        eprintln!("redis-server not installed: skipping (the memory run below still covers the files)");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("run");
    let report = run_quickstart(&dir, "redis");

    // Every promised file.
    for f in ["report.json", "summary.csv", "README.md"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    for s in ["none", "session", "jwt", "jwt-denylist", "jwt-refresh"] {
        for f in ["api.hgrm", "api.service.hgrm", "intervals.hlog"] {
            let p = dir.join("hist").join(s).join(f);
            assert!(p.is_file(), "{} missing", p.display());
        }
    }
    let hgrm = std::fs::read_to_string(dir.join("hist/jwt/api.hgrm")).expect("hgrm");
    assert!(hgrm.contains("Percentile") && hgrm.contains("#[Max"), "{hgrm}");
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("README");
    assert!(readme.contains("authbench") && readme.contains("git SHA") && readme.contains("machine"), "{readme}");
    validate_against_schema(&dir);

    assert_eq!(report.schema, 1);
    assert_eq!(report.store_kind, "redis");
    assert!(!report.interrupted);
    assert_eq!(report.strategies.len(), 5);
    let by = |n: &str| report.strategies.iter().find(|s| s.name == n).unwrap_or_else(|| panic!("{n}"));
    for s in &report.strategies {
        assert!(s.requests > 100, "{}: {} requests", s.name, s.requests);
        assert_eq!(s.outcomes.unexpected_allow, 0, "{}: a correct target accepted a revoked credential", s.name);
        assert!(s.latency_us.contains_key("api"));
        assert!(s.target_cpu_us_per_request.is_some(), "{}: target CPU measured", s.name);
    }

    // Store load from redis INFO: a session check is a store lookup per api request; jwt needs none.
    let session = by("session");
    let api = session.latency_us["api"].count as f64;
    let store_ops = session.store.ops_per_request.expect("session store measured") * session.requests as f64;
    assert!(store_ops >= api, "session: {store_ops} store ops for {api} api requests");
    let jwt = by("jwt");
    assert_eq!(jwt.store.ops_per_request, Some(0.0), "jwt touches no store: {:?}", jwt.store);

    // Revocation window: 0 for session and denylist, > 0 (bounded by exp) for jwt.
    for n in ["session", "jwt-denylist"] {
        let w = &by(n).revocation_window_ms;
        assert!(w.probes > 0, "{n}: probed");
        assert!(!w.bounded && w.max.is_some_and(|m| m < 50.0), "{n}: window {w:?}");
    }
    let w = &jwt.revocation_window_ms;
    assert!(w.bounded && w.max.is_some_and(|m| m > 1000.0), "jwt: window {w:?}");
    // Credential bytes: a JWT is bigger than a session id.
    assert!(jwt.credential_bytes > session.credential_bytes && session.credential_bytes > 0.0);
}

#[test]
fn memory_store_run_writes_valid_report_and_thresholds_decide_exit_code() {
    let tmp = tempfile::tempdir().expect("tmp");
    let scenario = tmp.path().join("t.toml");
    std::fs::write(
        &scenario,
        "# Test.\nstrategies = [\"session\"]\n[traffic]\nduration = \"1s\"\nwarmup = \"0s\"\nconnections = 2\nusers = 20\n\
         [probe]\nrevocation_probes = 1\n[thresholds]\n\"session.api.p99_us\" = \"< 1\"\n",
    )
    .expect("write");
    let dir = tmp.path().join("run");
    let status = Command::new(crate::util::authbench_exe())
        .args(["run", "--store", "memory", "--no-progress", "-o"])
        .arg(&dir)
        .arg(&scenario)
        .status()
        .expect("runs");
    assert_eq!(status.code(), Some(1), "a failing threshold exits 1");
    validate_against_schema(&dir);
    let report: Report =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).expect("read")).expect("parse");
    assert_eq!(report.store_kind, "memory");
    assert_eq!(report.thresholds.len(), 1);
    assert!(!report.thresholds[0].passed);
    let s = &report.strategies[0];
    assert!(
        s.store.measured && s.store.ops_per_request.is_some_and(|o| o > 0.0),
        "memory store ops from /metrics: {:?}",
        s.store
    );
}

#[test]
fn external_target_leaves_process_and_store_figures_null() {
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let url = rt.block_on(crate::util::spawn_server(|_, _, _| crate::util::Reply::ok(r#"{"user":"u"}"#)));
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("run");
    let status = Command::new(crate::util::authbench_exe())
        .args([
            "run",
            "--strategy",
            "none",
            "-z",
            "1s",
            "--warmup",
            "0s",
            "-c",
            "2",
            "--no-progress",
            "--target",
            &url,
            "-o",
        ])
        .arg(&dir)
        .status()
        .expect("runs");
    assert!(status.success());
    let report: Report =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).expect("read")).expect("parse");
    assert_eq!(report.store_kind, "external");
    let s = &report.strategies[0];
    assert!(s.requests > 0);
    // A server that does not report its CPU on /metrics (an authbench target does): not measured.
    assert_eq!(s.target_cpu_us_per_request, None);
    assert!(!s.store.measured && s.store.ops_per_request.is_none());
    drop(rt);
}

#[test]
fn repeated_run_keeps_every_repetition_and_reports_medians_with_intervals() {
    let tmp = tempfile::tempdir().expect("tmp");
    let scenario = tmp.path().join("r.toml");
    std::fs::write(
        &scenario,
        "# Test.\nstrategies = [\"none\", \"jwt\"]\n[traffic]\nduration = \"1s\"\nwarmup = \"0s\"\nconnections = 2\n\
         users = 20\n[probe]\nrevocation_probes = 0\n",
    )
    .expect("write");
    let dir = tmp.path().join("run");
    let report = run_scenario(&["--store", "memory", "--repeat", "3"], &scenario, &dir);
    for s in &report.strategies {
        assert_eq!(s.repeats.len(), 3, "{}: every repetition kept", s.name);
        assert!(s.repeats.iter().all(|r| r.repeats.is_empty() && r.name == s.name));
        assert_eq!(s.requests, s.repeats.iter().map(|r| r.requests).sum::<u64>(), "requests summed");
        for k in 1..=3 {
            let hist = dir.join("repeats").join(k.to_string()).join("hist").join(&s.name).join("api.hgrm");
            assert!(hist.is_file(), "{} missing", hist.display());
        }
    }
    let md = std::fs::read_to_string(dir.join("report.md")).expect("report.md");
    assert!(md.contains("## Repetitions: median and 95 % interval"), "{md}");
    assert!(md.contains("percentile bootstrap"), "the method is stated");
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    assert!(html.contains("each dot one repetition"), "the per-request plots show every repetition");
    // The same run compared with itself: nothing differs, so nothing is significant.
    let out = Command::new(crate::util::authbench_exe())
        .args(["compare", "--format", "markdown"])
        .arg(&dir)
        .arg(&dir)
        .output()
        .expect("compare");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("No significant regression") && text.contains("Mann-Whitney"), "{text}");
}

/// `instances = 2`: two target processes per strategy on one private redis-server, sharing one
/// signing key; the driver spreads its connections over both and the per-request figures count
/// both (their requests, CPU and store operations are summed).
#[test]
fn two_instances_share_the_store_and_both_serve() {
    let tmp = tempfile::tempdir().expect("tmp");
    let scenario = tmp.path().join("i.toml");
    std::fs::write(
        &scenario,
        "# Test.\nstrategies = [\"session\", \"jwt\"]\ninstances = 2\nstore = \"redis\"\n[target]\nalg = \"ES256\"\n\
         [traffic]\nduration = \"1s\"\nwarmup = \"0s\"\nconnections = 4\nusers = 40\n[probe]\nrevocation_probes = 2\n",
    )
    .expect("write");
    let dir = tmp.path().join("run");
    let report = run_scenario(&[], &scenario, &dir);
    assert_eq!(report.traffic.instances, 2);
    for s in &report.strategies {
        assert!(s.requests > 0, "{}", s.name);
        assert_eq!(s.outcomes.unexpected_deny + s.outcomes.unexpected_allow, 0, "{}: {:?}", s.name, s.outcomes);
        let acc = s.requests_accounting.as_ref().expect("accounting");
        let served = acc.target_requests.expect("both instances' /metrics read");
        // Only one instance's counters would be about half of what the driver sent.
        assert!(served as f64 >= 0.95 * acc.driver_requests as f64, "{}: {served} of {}", s.name, acc.driver_requests);
        assert!(s.target_cpu_us_per_request.is_some_and(|us| us > 0.0));
        // Each instance's own share: both served, their counts add up to the summed one.
        assert_eq!(s.instances.len(), 2, "{}: per-instance load", s.name);
        assert_eq!(s.instances.iter().map(|i| i.requests).sum::<u64>(), served, "{}", s.name);
        for i in &s.instances {
            assert!(i.requests > 0 && i.target_cpu_us_per_request.is_some_and(|us| us > 0.0), "{}: {i:?}", s.name);
            assert!(i.requests_pct > 10.0, "{}: connections spread over both: {i:?}", s.name);
        }
        let session_ops = s.instances.iter().all(|i| i.store_ops_per_request.is_some_and(|o| o > 0.5));
        assert_eq!(session_ops, s.name == "session", "{}: store ops counted by each instance", s.name);
    }
    // Refused before any work: a memory store cannot be shared.
    let out = Command::new(crate::util::authbench_exe())
        .args(["run", "--dry-run", "--store", "memory", "--instances", "2"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs a shared store"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The cached strategies on two instances: the revocation probe revokes through one instance and
/// replays on the other, so the window it reports is cross-instance (refused, not bounded, for the
/// cached strategies; bounded by `exp` for `jwt`), and the cache figures are read from both.
#[test]
fn cached_strategies_revoke_across_instances() {
    if !authbench::environment::redis_server_available() {
        eprintln!("redis-server not installed: skipping");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let scenario = tmp.path().join("c.toml");
    std::fs::write(
        &scenario,
        "# Test.\nstrategies = [\"jwt\", \"session-cached\", \"jwt-denylist-cached\"]\ninstances = 2\nstore = \"redis\"\n\
         [traffic]\nduration = \"1s\"\nwarmup = \"200ms\"\nconnections = 4\nusers = 40\n\
         [probe]\nrevocation_probes = 4\nrevocation_max_wait = \"1s\"\n",
    )
    .expect("write");
    let dir = tmp.path().join("run");
    let report = run_scenario(&[], &scenario, &dir);
    for s in &report.strategies {
        let w = &s.revocation_window_ms;
        assert_eq!(w.other_instances, Some(1), "{}: replayed on the other instance", s.name);
        assert_eq!(w.probes, 4, "{}", s.name);
        if s.name == "jwt" {
            assert!(w.bounded && s.cache.is_none(), "{}: {w:?}", s.name);
            continue;
        }
        assert!(!w.bounded, "{}: the other instance kept accepting a revoked credential: {w:?}", s.name);
        assert!(w.max.is_some_and(|ms| ms < 1000.0), "{}: {w:?}", s.name);
        let cache = s.cache.as_ref().expect("cache figures read from both instances");
        assert!(cache.events.get("hit").copied().unwrap_or(0) > 0, "{}: {cache:?}", s.name);
        assert!(cache.max_entries >= 2, "{}: two instances' bounds summed: {cache:?}", s.name);
        assert_eq!(s.outcomes.unexpected_allow, 0, "{}: {:?}", s.name, s.outcomes);
    }
}

/// JWTs in a cookie (`token_transport = "cookie"`): the driver reads the `at` cookie and the CSRF
/// token from login answers and sends the token back as a cookie, logouts carry the CSRF token (a
/// logout refused with 403 would show as unexpected denies and failed revocation probes), and
/// strategies without a bearer token are left alone.
#[test]
fn jwts_in_a_cookie_run_end_to_end_with_csrf_on_logout() {
    let tmp = tempfile::tempdir().expect("tmp");
    let scenario = tmp.path().join("c.toml");
    std::fs::write(
        &scenario,
        "# Test.\nstrategies = [\"session\", \"jwt-denylist\", \"jwt-refresh\"]\nstore = \"memory\"\n\
         [target]\ntoken_transport = \"cookie\"\n\
         [traffic]\nduration = \"1s\"\nwarmup = \"0s\"\nconnections = 4\nusers = 40\n\
         [mix]\napi = 80\nlogin = 10\nlogout = 10\n[probe]\nrevocation_probes = 2\n",
    )
    .expect("write");
    let dir = tmp.path().join("run");
    let report = run_scenario(&[], &scenario, &dir);
    for s in &report.strategies {
        assert!(s.requests > 0, "{}", s.name);
        assert_eq!(s.outcomes.unexpected_deny + s.outcomes.unexpected_allow, 0, "{}: {:?}", s.name, s.outcomes);
        let logouts = s.latency_us.get("logout").map_or(0, |l| l.count);
        assert!(logouts > 0, "{}: logouts ran", s.name);
    }
    let denylist = report.strategies.iter().find(|s| s.strategy == "jwt-denylist").expect("jwt-denylist");
    assert!(denylist.credential_bytes > 100.0, "the JWT travels: {}", denylist.credential_bytes);
    // ... as a cookie: the head around the credential is `cookie: at=`, one byte shorter than the
    // session's `cookie: sid=` (a bearer header, `authorization: Bearer `, would be 10 bytes longer).
    let session = report.strategies.iter().find(|s| s.strategy == "session").expect("session");
    let around = |s: &authbench::results::StrategyResult| s.request_header_bytes - s.credential_bytes;
    assert!((around(session) - around(denylist) - 1.0).abs() < 1e-6, "{} vs {}", around(session), around(denylist));
    // Its logouts took effect at once: the probes saw the revoked cookie refused.
    let w = &denylist.revocation_window_ms;
    assert!(w.probes > 0 && !w.bounded, "{w:?}");
}
