//! A run split over several drivers and merged: N `authbench run --part K/N` processes at once
//! against one real target (started in this process), then `authbench merge`; the merge refusing
//! parts that do not belong together; and the Kubernetes manifests under `deploy/`, parsed, with
//! the driver Job's command run through `authbench run --dry-run` for every completion index.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use authbench::results::Report;
use authbench::targets::{StrategyKind, TargetArgs};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer as _, V2Serializer};

const ADMIN_KEY: &str = "distributed-test-admin-key-0123";
/// The whole scenario's open-loop rate, requests per second (split over the parts).
const RATE_PER_SEC: f64 = 400.0;
/// The merged achieved rate must be within this share of [`RATE_PER_SEC`]: the parts' schedules
/// are exact, so what is left is requests cut at the window's edges and a loaded debug build.
const RATE_TOLERANCE: f64 = 0.10;

/// A real `session` target on the memory store, served in-process on a free port until dropped.
struct InProcessTarget {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcessTarget {
    fn start() -> InProcessTarget {
        Self::on_store("memory")
    }

    /// A session target on `store` (`memory` or a `redis://` URL).
    fn on_store(store: &str) -> InProcessTarget {
        let mut args = TargetArgs::new(StrategyKind::SESSION);
        args.admin_key = Some(ADMIN_KEY.to_owned());
        args.store = store.to_owned();
        let config = args.validate().expect("valid target config");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
                addr_tx.send(listener.local_addr().expect("addr")).expect("send addr");
                authbench_targets::serve(config, listener, async {
                    let _ = stopped.await;
                })
                .await
                .expect("target serves");
            });
        });
        let addr = addr_rx.recv().expect("target address");
        InProcessTarget { url: format!("http://{addr}"), stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for InProcessTarget {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `authbench run --part K/N` arguments against `url`, writing to `out`.
fn part_args(url: &str, k: u32, n: u32, out: &Path) -> Vec<String> {
    let rate = RATE_PER_SEC.to_string();
    let part = format!("{k}/{n}");
    let mut a: Vec<String> = [
        "run",
        "--strategy",
        "session",
        "--target",
        url,
        "--admin-key",
        ADMIN_KEY,
        "--part",
        &part,
        "-R",
        &rate,
        "-c",
        "4",
        "--users",
        "40",
        "-z",
        "2s",
        "--warmup",
        "500ms",
        "--no-progress",
        "-o",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    a.push(out.display().to_string());
    a
}

/// Run N parts at the same time; their results directories.
fn run_parts(url: &str, n: u32, root: &Path) -> Vec<PathBuf> {
    run_parts_with(url, n, root, &[])
}

/// As [`run_parts`], with `extra` flags on every part.
fn run_parts_with(url: &str, n: u32, root: &Path, extra: &[&str]) -> Vec<PathBuf> {
    let dirs: Vec<PathBuf> = (1..=n).map(|k| root.join(format!("part-{k}"))).collect();
    // Output piped, so the parallel parts do not interleave on the test's terminal.
    let children: Vec<_> = (1..=n)
        .map(|k| {
            Command::new(crate::util::authbench_exe())
                .args(part_args(url, k, n, &dirs[k as usize - 1]))
                .args(extra)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("part spawns")
        })
        .collect();
    for (k, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().expect("part runs");
        assert!(out.status.success(), "part {}/{n} failed: {}", k + 1, String::from_utf8_lossy(&out.stderr));
    }
    dirs
}

fn merge(dirs: &[PathBuf], out: &Path) -> Output {
    Command::new(crate::util::authbench_exe()).arg("merge").args(dirs).arg("-o").arg(out).output().expect("merge runs")
}

fn load(dir: &Path) -> Report {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).expect("report.json")).expect("parses")
}

/// A results directory's full-resolution histograms of the `session` strategy, by name.
fn histograms(dir: &Path) -> Vec<(String, Histogram<u64>)> {
    authbench::merge::read_full_histograms(&dir.join("hist/session/histograms.b64")).expect("histograms.b64")
}

fn serialized(h: &Histogram<u64>) -> Vec<u8> {
    let mut v = Vec::new();
    V2Serializer::new().serialize(h, &mut v).expect("serializes");
    v
}

fn check_merge_is_exact(parts: &[PathBuf], merged_dir: &Path) {
    let n = parts.len();
    let reports: Vec<Report> = parts.iter().map(|d| load(d)).collect();
    for (k, r) in reports.iter().enumerate() {
        let p = r.part.as_ref().expect("a part's report.json says so");
        assert_eq!((p.k as usize, p.n as usize), (k + 1, n));
    }
    let merged = load(merged_dir);
    assert_eq!(merged.parts.len(), n);
    let (s, each): (_, Vec<_>) = (&merged.strategies[0], reports.iter().map(|r| &r.strategies[0]).collect());
    // Request counts: the merged count is the parts' sum, per operation too.
    assert_eq!(s.requests, each.iter().map(|p| p.requests).sum::<u64>());
    let api_sum: u64 = each.iter().map(|p| p.latency_us.get("api").map_or(0, |l| l.count)).sum();
    assert_eq!(s.latency_us["api"].count, api_sum);
    assert_eq!(s.errors.total, each.iter().map(|p| p.errors.total).sum::<u64>());
    // Histograms: the merged one is exactly the sum of the parts' (byte for byte, serialized).
    let mut sums: std::collections::BTreeMap<String, Histogram<u64>> = Default::default();
    for d in parts {
        for (name, h) in histograms(d) {
            sums.entry(name).or_insert_with(authbench::engine::record::new_histogram).add(&h).expect("adds");
        }
    }
    let merged_h: std::collections::BTreeMap<_, _> = histograms(merged_dir).into_iter().collect();
    assert_eq!(merged_h.keys().collect::<Vec<_>>(), sums.keys().collect::<Vec<_>>());
    for (name, h) in &sums {
        assert_eq!(serialized(&merged_h[name]), serialized(h), "{name}: merged histogram != sum of the parts'");
    }
    // The report's percentiles are the summed histogram's.
    let api = &sums["latency.api"];
    assert_eq!(s.latency_us["api"].p99, api.value_at_quantile(0.99));
    assert_eq!(s.latency_us["api"].p50, api.value_at_quantile(0.5));
    // The rate: the parts' slices add up to the scenario's rate.
    let achieved = s.schedule.achieved_rate_per_sec;
    assert!(
        (achieved - RATE_PER_SEC).abs() <= RATE_TOLERANCE * RATE_PER_SEC,
        "merged rate {achieved:.1} req/s, scenario {RATE_PER_SEC} ± {:.0}%",
        RATE_TOLERANCE * 100.0
    );
    let scheduled = s.schedule.target_rate_per_sec.expect("open loop");
    assert!((scheduled - RATE_PER_SEC).abs() < 1e-6, "scheduled {scheduled}");
    assert_eq!(merged.traffic.connections, 4.max(n));
    assert_eq!(merged.traffic.users, 40);
    // Target figures from the target's own /metrics over the whole split run (the target here runs
    // inside this test process, so its CPU holds the test's other threads too: only its presence is
    // checked); a session api request is one store GET.
    assert!(s.target_cpu_us_per_request.is_some_and(|us| us > 0.0), "target CPU from /metrics");
    let gets = s.store.ops_by_command.get("get").copied().unwrap_or(0.0);
    assert!(s.store.measured && gets > 0.5, "store GETs per request from the target's counters: {gets}");
    for f in ["report.html", "report.md", "summary.csv", "hist/session/api.hgrm", "hist/session/intervals.hlog"] {
        assert!(merged_dir.join(f).is_file(), "{f} missing from the merged directory");
    }
    validate_against_schema(merged_dir);
    validate_against_schema(&parts[0]);
}

/// `report.json` in `dir` matches `results/schema.json` (the contract: parts and merges only add).
fn validate_against_schema(dir: &Path) {
    let text = std::fs::read_to_string(crate::util::repo_root().join("results/schema.json")).expect("schema");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
    let instance: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).expect("read")).expect("JSON");
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    let errors: Vec<String> = validator.iter_errors(&instance).map(|e| format!("{e} at {}", e.instance_path)).collect();
    assert!(errors.is_empty(), "{}: report.json does not match results/schema.json: {errors:#?}", dir.display());
}

#[test]
fn split_runs_merge_exactly() {
    let target = InProcessTarget::start();
    let tmp = tempfile::tempdir().expect("tmp");
    for n in 2..=4u32 {
        let root = tmp.path().join(format!("n{n}"));
        let parts = run_parts(&target.url, n, &root);
        let merged_dir = root.join("merged");
        let out = merge(&parts, &merged_dir);
        assert!(out.status.success(), "merge of {n} parts failed: {}", String::from_utf8_lossy(&out.stderr));
        check_merge_is_exact(&parts, &merged_dir);
        // Parts' users are disjoint: no part logged another's users out.
        let merged = load(&merged_dir);
        assert_eq!(merged.strategies[0].outcomes.unexpected_allow, 0);
    }
    refusals(&tmp.path().join("n2"));
    warnings(&tmp.path().join("n2"));
}

/// A copy of the part directory `from` at `to`, its `report.json` changed by `edit`.
fn doctored(from: &Path, to: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    copy_dir(from, to);
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(to.join("report.json")).expect("read")).expect("json");
    edit(&mut v);
    std::fs::write(to.join("report.json"), v.to_string()).expect("write");
}

/// What a distributed run must be warned about: clock skew, a part behind its schedule, an error
/// class one part saw alone.
fn warnings(root: &Path) {
    let (p1, p2, odd) = (root.join("part-1"), root.join("part-2"), root.join("odd-part-2"));
    doctored(&p2, &odd, |v| {
        let start = v["part"]["started_unix_ms"].as_u64().expect("start");
        v["part"]["started_unix_ms"] = (start + 5_000).into();
        v["strategies"][0]["schedule"]["achieved_rate_per_sec"] = 1.0.into();
        v["strategies"][0]["errors"]["by_class"]["status_503"] = 3.into();
    });
    let out = merge(&[p1, odd], &root.join("odd-merged"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for what in ["clock skew", "lagged its schedule", "`status_503` error(s) that no other part saw"] {
        assert!(err.contains(what), "expected a warning with `{what}` in: {err}");
    }
}

/// Parts that do not belong together are refused with exit 2 and a message naming why.
fn refusals(root: &Path) {
    let (p1, p2) = (root.join("part-1"), root.join("part-2"));
    let refused = |dirs: &[PathBuf], what: &str| {
        let out = merge(dirs, &root.join("refused"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains(what), "expected `{what}` in: {err}");
    };
    refused(std::slice::from_ref(&p1), "missing part(s) 2 of 2");
    refused(&[p1.clone(), p1.clone()], "given twice");
    refused(&[root.join("merged"), p2.clone()], "not a part");
    for (field, what) in [("scenario_hash", "different scenarios"), ("build_id", "different builds")] {
        let other = root.join(format!("other-{field}"));
        doctored(&p2, &other, |v| v["part"][field] = "fnv1a64:0000000000000000".into());
        refused(&[p1.clone(), other], what);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).expect("copy");
        }
    }
}

#[test]
fn part_flags_are_validated_in_the_plan() {
    use authbench::plan::{RunArgs, build};
    let url = vec!["http://127.0.0.1:1".to_owned()];
    let args = |part: &str| RunArgs {
        strategies: vec![StrategyKind::JWT],
        target: url.clone(),
        part: Some(authbench::part::parse_part(part).expect("parses")),
        ..RunArgs::default()
    };
    let p = build(&args("2/3")).expect("plan");
    assert_eq!(p.users, 333, "1000 users over 3 parts: 334, 333, 333");
    assert_eq!(p.variants[0].schedule.connections(), 5, "16 connections over 3: 6, 5, 5");
    assert_eq!(p.user_prefix, "p2-");
    assert_eq!(p.revocation_probes, 5, "every part probes (its own probe users), so parts stay in step");
    let e = build(&RunArgs { target: Vec::new(), ..args("1/2") }).expect_err("--part without --target");
    assert!(e.to_string().contains("--target"), "{e}");
    let out =
        Command::new(crate::util::authbench_exe()).args(["run", "--part", "5/4", "--dry-run"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 <= K <= N"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Every YAML document under `deploy/`.
fn manifests() -> Vec<(PathBuf, serde_yaml::Value)> {
    use serde::Deserialize as _;
    let mut docs = Vec::new();
    let mut stack = vec![crate::util::repo_root().join("deploy")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("deploy/ exists") {
            let path = e.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                let text = std::fs::read_to_string(&path).expect("read");
                for doc in serde_yaml::Deserializer::from_str(&text) {
                    let v = serde_yaml::Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    if !v.is_null() {
                        docs.push((path.clone(), v));
                    }
                }
            }
        }
    }
    docs
}

fn find<'a>(docs: &'a [(PathBuf, serde_yaml::Value)], kind: &str) -> Vec<&'a serde_yaml::Value> {
    docs.iter().filter(|(_, d)| d["kind"].as_str() == Some(kind)).map(|(_, d)| d).collect()
}

/// The `sh -c` script of a pod template's first container.
fn script(pod_spec: &serde_yaml::Value) -> String {
    let c = &pod_spec["containers"][0];
    let mut words: Vec<&str> = c["command"].as_sequence().into_iter().flatten().filter_map(|v| v.as_str()).collect();
    words.extend(c["args"].as_sequence().into_iter().flatten().filter_map(|v| v.as_str()));
    assert!(words.len() == 3 && words[1] == "-c", "expected [sh, -c, script], got {words:?}");
    words[2].to_owned()
}

#[test]
fn deploy_manifests_parse_and_the_driver_job_is_a_valid_run() {
    let docs = manifests();
    for (path, d) in &docs {
        assert!(d["apiVersion"].is_string() && d["kind"].is_string(), "{}: apiVersion and kind", path.display());
    }
    // A Deployment and a Service per strategy, each serving `authbench target` for it.
    let deployments = find(&docs, "Deployment");
    for kind in StrategyKind::ALL {
        // Kubernetes names allow no `+` (`web+api` deploys as `authbench-web-api`).
        let object = format!("authbench-{}", kind.name().replace('+', "-"));
        let d = deployments
            .iter()
            .find(|d| d["metadata"]["name"].as_str() == Some(object.as_str()))
            .unwrap_or_else(|| panic!("no Deployment for {}", kind.name()));
        let args: Vec<&str> = d["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_sequence()
            .expect("args")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let argv: Vec<&str> = std::iter::once("authbench").chain(args.iter().copied()).collect();
        let cli = <authbench::cli::Cli as clap::Parser>::try_parse_from(&argv)
            .unwrap_or_else(|e| panic!("{}: `{}` does not parse: {e}", kind.name(), argv.join(" ")));
        assert!(matches!(cli.command, authbench::cli::Command::Target(ref t) if t.strategy == *kind));
        assert!(find(&docs, "Service").iter().any(|s| s["metadata"]["name"] == d["metadata"]["name"]));
    }
    assert!(!find(&docs, "StatefulSet").is_empty(), "a quick-start Redis StatefulSet");
    // The drivers: an Indexed Job whose completion index becomes --part.
    let job = find(&docs, "Job").into_iter().find(|j| j["spec"]["completionMode"] == "Indexed").expect("Indexed Job");
    let completions = job["spec"]["completions"].as_u64().expect("completions");
    let job_script = script(&job["spec"]["template"]["spec"]);
    assert!(job_script.contains("JOB_COMPLETION_INDEX"), "{job_script}");
    let bin = tempfile::tempdir().expect("tmp");
    std::os::unix::fs::symlink(crate::util::authbench_exe(), bin.path().join("authbench")).expect("symlink");
    let path = format!("{}:{}", bin.path().display(), std::env::var("PATH").unwrap_or_default());
    for index in 0..completions {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{job_script} --dry-run"))
            .env("PATH", &path)
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .env("AUTHBENCH_ADMIN_KEY", ADMIN_KEY)
            .output()
            .expect("sh runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "index {index}: {}{stdout}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains(&format!("part: {}/{completions}", index + 1)), "{stdout}");
    }
    // The collection step merges every part.
    let collect = find(&docs, "Pod").into_iter().chain(find(&docs, "Job")).map(|p| {
        let spec = if p["kind"] == "Pod" { &p["spec"] } else { &p["spec"]["template"]["spec"] };
        script(spec)
    });
    assert!(collect.into_iter().any(|s| s.contains("authbench merge")), "a collection step runs authbench merge");
}

#[test]
fn several_target_urls_share_the_connections() {
    let (a, b) = (InProcessTarget::start(), InProcessTarget::start());
    let tmp = tempfile::tempdir().expect("tmp");
    let urls = format!("{},{}", a.url, b.url);
    let out = Command::new(crate::util::authbench_exe())
        .args(["run", "--strategy", "session", "--target", &urls, "--admin-key", ADMIN_KEY, "-c", "4", "--users", "8"])
        .args(["-z", "1s", "--warmup", "0s", "--no-progress", "-o"])
        .arg(tmp.path().join("run"))
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    for t in [&a, &b] {
        let served = rt.block_on(authbench::collect::accounting::read_counters(&t.url)).expect("metrics").requests;
        assert!(served > 50, "{} served {served} requests: every URL gets its share of the connections", t.url);
    }
    let report = load(&tmp.path().join("run"));
    let s = &report.strategies[0];
    assert_eq!(s.outcomes.unexpected_deny, 0, "each user stays on its connection's target");
    let accounting = s.requests_accounting.as_ref().expect("accounting");
    assert_eq!(accounting.per_request_denominator, "driver", "one target's /metrics does not count the run");
}

/// With `--observe-store`, the store's own INFO at the earliest window start and the latest window
/// end gives the merged run its store figures; no single part divides them by its own requests.
#[test]
fn the_observed_store_is_measured_over_the_whole_split_run() {
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let redis = rt.block_on(authbench::environment::RedisProcess::start()).expect("redis-server starts");
    let target = InProcessTarget::on_store(&redis.url);
    let tmp = tempfile::tempdir().expect("tmp");
    let parts = run_parts_with(&target.url, 2, tmp.path(), &["--observe-store", &redis.url]);
    for p in &parts {
        let s = &load(p).strategies[0];
        assert!(s.store.cpu_us_per_request.is_none(), "a part does not divide the shared store by its own count");
    }
    let merged_dir = tmp.path().join("merged");
    let out = merge(&parts, &merged_dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = &load(&merged_dir).strategies[0];
    assert!(s.store.measured && s.store.cpu_us_per_request.is_some_and(|us| us > 0.0), "{:?}", s.store);
    let gets = s.store.ops_by_command.get("get").copied().unwrap_or(0.0);
    assert!(gets > 0.5, "a session api request is one GET, read from Redis itself: {gets}");
    assert!(s.store.net_bytes_per_request.is_some_and(|b| b > 0.0));
    validate_against_schema(&merged_dir);
    // Only beside --target, and only Redis.
    let bad = Command::new(crate::util::authbench_exe())
        .args(["run", "--dry-run", "--target", &target.url, "--strategy", "session", "--observe-store", "memory"])
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--observe-store takes redis://"));
}
