//! Capacity: the `[capacity]` objective in plans, breaking points from rate stages, USL fits of
//! connections sweeps, `authbench project` (inputs with their sources, "not measured" never
//! guessed, clear errors) and the report's capacity sections.

use std::process::Command;
use std::time::Duration;

use authbench::capacity::{self, Objective};
use authbench::plan::{self, RateStage, RunArgs};
use authbench::project;
use authbench::results::StageResult;
use authbench::scenario;

use crate::report::sample_report;

fn plan_of(text: &str) -> Result<plan::RunPlan, plan::PlanError> {
    let loaded = scenario::parse(text, "test.toml", "test").expect("parses");
    plan::build_from(loaded, &RunArgs::default())
}

const LADDER: &str = "[traffic]\nstages = [{ rate = 100, duration = \"1s\" }, { rate = 200, duration = \"1s\" }]\n";

#[test]
fn objective_needs_a_rising_open_loop_ladder() {
    let p = plan_of(&format!("{LADDER}[capacity]\np99_ms = 5\n")).expect("plan");
    assert_eq!(p.capacity, Some(Objective { p99_ms: 5.0, max_error_rate: capacity::DEFAULT_MAX_ERROR_RATE }));

    let e = plan_of("[traffic]\nmode = \"closed\"\n[capacity]\np99_ms = 5\n").expect_err("closed loop has no ladder");
    assert!(e.to_string().contains("open-loop rate ladder"), "{e}");
    let falling = "[traffic]\nstages = [{ rate = 200, duration = \"1s\" }, { rate = 100, duration = \"1s\" }]\n";
    let e = plan_of(&format!("{falling}[capacity]\np99_ms = 5\n")).expect_err("falling ladder");
    assert!(e.to_string().contains("rising ladder"), "{e}");
    let e = plan_of(&format!("{LADDER}[capacity]\np99_ms = 0\n")).expect_err("zero objective");
    assert!(e.to_string().contains("capacity.p99_ms"), "{e}");
    let e = plan_of(&format!("{LADDER}[capacity]\np99_ms = 5\nmax_error_rate = 2\n")).expect_err("share > 1");
    assert!(e.to_string().contains("max_error_rate"), "{e}");
    let e = scenario::parse("[capacity]\np99 = 5\n", "test.toml", "test").expect_err("unknown key");
    assert!(e.to_string().contains("p99_ms"), "names the expected key: {e}");
}

#[test]
fn shipped_capacity_scenarios_plan() {
    let root = crate::util::repo_root();
    let args = RunArgs { scenario: Some(root.join("scenarios/capacity.toml")), ..RunArgs::default() };
    let p = plan::build(&args).expect("capacity.toml plans");
    assert_eq!(p.capacity, Some(Objective { p99_ms: 10.0, max_error_rate: 0.001 }));
    assert_eq!(p.variants.len(), 5);
    let args = RunArgs { scenario: Some(root.join("scenarios/capacity-usl.toml")), ..RunArgs::default() };
    let p = plan::build(&args).expect("capacity-usl.toml plans");
    assert_eq!(p.variants.len(), 5 * 7, "every strategy at every connections value");
}

fn stage(rate: f64, achieved: f64, p99_us: u64, errors: u64) -> StageResult {
    StageResult { target_rate_per_sec: rate, achieved_rps: achieved, p50_us: p99_us / 3, p99_us, errors }
}

fn ladder(rates: &[f64]) -> Vec<RateStage> {
    rates
        .iter()
        .map(|&r| RateStage { from_rate_per_sec: r, rate_per_sec: r, duration: Duration::from_secs(2) })
        .collect()
}

#[test]
fn breaking_point_is_the_last_stage_before_the_first_miss() {
    let obj = Objective { p99_ms: 5.0, max_error_rate: 0.001 };
    let stages = ladder(&[1000.0, 2000.0, 4000.0, 8000.0]);
    let results = [
        stage(1000.0, 1000.0, 800, 0),
        stage(2000.0, 1999.0, 1200, 0),
        stage(4000.0, 3990.0, 2500, 0),
        stage(8000.0, 6000.0, 90_000, 0),
    ];
    let b = capacity::breaking_point(obj, &stages, &results);
    assert_eq!(b.max_rate_meeting_objective_per_sec, Some(4000.0));
    assert_eq!(b.achieved_rps_at_max, Some(3990.0));
    assert_eq!(b.knee_rate_per_sec, Some(4000.0), "p99 2.5 ms is past twice the first stage's 0.8 ms");
    assert!(b.first_miss.as_deref().is_some_and(|m| m.contains("8") && m.contains("p99")), "{:?}", b.first_miss);
    assert_eq!(b.stage_error_rates, vec![Some(0.0); 4]);

    // Errors alone break it: 10 of 4 000 requests is 0.25 % > 0.1 %.
    let results = [stage(1000.0, 1000.0, 800, 0), stage(2000.0, 2000.0, 900, 10)];
    let b = capacity::breaking_point(obj, &ladder(&[1000.0, 2000.0]), &results);
    assert_eq!(b.max_rate_meeting_objective_per_sec, Some(1000.0));
    assert!(b.first_miss.as_deref().is_some_and(|m| m.contains("errors")), "{:?}", b.first_miss);

    // Every stage met it: no miss, the breaking point is above the ladder.
    let results = [stage(1000.0, 1000.0, 800, 0), stage(2000.0, 2000.0, 900, 0)];
    let b = capacity::breaking_point(obj, &ladder(&[1000.0, 2000.0]), &results);
    assert_eq!((b.max_rate_meeting_objective_per_sec, b.first_miss.clone()), (Some(2000.0), None));
    let mut s = sample_report().strategies.remove(0);
    s.stages = results.to_vec();
    s.capacity = Some(b);
    let rows = capacity::breaking_rows(std::slice::from_ref(&s));
    assert!(rows[0][4].contains("above the ladder"), "{:?}", rows[0]);
}

#[test]
fn a_stall_followed_by_a_met_stage_is_transient_not_the_breaking_point() {
    let obj = Objective { p99_ms: 5.0, max_error_rate: 0.001 };
    let stages = ladder(&[1000.0, 2000.0, 4000.0, 8000.0, 16000.0]);
    let results = [
        stage(1000.0, 1000.0, 800, 0),
        stage(2000.0, 2000.0, 31_000, 0), // one stall
        stage(4000.0, 4000.0, 900, 0),
        stage(8000.0, 7000.0, 90_000, 0),
        stage(16000.0, 9000.0, 400_000, 0),
    ];
    let b = capacity::breaking_point(obj, &stages, &results);
    assert_eq!(b.max_rate_meeting_objective_per_sec, Some(4000.0), "the stall at 2 000 is not the limit");
    assert_eq!(b.transient_misses.len(), 1, "{:?}", b.transient_misses);
    assert!(b.transient_misses[0].starts_with("2"), "{:?}", b.transient_misses);
    assert!(b.first_miss.as_deref().is_some_and(|m| m.starts_with("8")), "{:?}", b.first_miss);
    assert_eq!(b.knee_rate_per_sec, Some(8000.0), "the knee skips the stall too");
    let mut s = sample_report().strategies.remove(0);
    s.stages = results.to_vec();
    s.capacity = Some(b);
    let rows = capacity::breaking_rows(std::slice::from_ref(&s));
    assert!(rows[0][4].contains("transient") && rows[0][4].contains("31"), "{:?}", rows[0]);

    // A miss at the ladder's top is sustained: nothing above it says otherwise.
    let b = capacity::breaking_point(obj, &ladder(&[1000.0, 2000.0]), &results[..2]);
    assert_eq!(b.max_rate_meeting_objective_per_sec, Some(1000.0));
    assert!(b.transient_misses.is_empty());
}

#[test]
fn usl_is_fitted_per_connections_sweep() {
    let base = sample_report().strategies.remove(2);
    let mut sweep: Vec<_> = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
        .iter()
        .map(|&n: &f64| {
            let mut s = base.clone();
            s.name = format!("jwt connections={n}");
            s.variant.insert("connections".into(), format!("{n}"));
            s.throughput_rps = authbench::usl::usl(3000.0, 0.03, 0.001, n);
            s
        })
        .collect();
    capacity::annotate_usl(&mut sweep);
    let u = sweep[3].usl.clone().expect("a fit on every variant of the sweep");
    assert_eq!(u.sweep, "jwt");
    assert_eq!(u.points.len(), 6);
    assert!(!u.poor_fit, "{u:?}");
    assert!(u.r_squared.is_some_and(|r| r > 0.99), "{u:?}");
    assert!(u.sigma.is_some_and(|s| (s - 0.03).abs() < 0.01), "{u:?}");
    let rows = capacity::usl_rows(&sweep);
    assert_eq!(rows.len(), 1, "one row per sweep");
    assert!(rows[0][7].contains("good fit"), "{:?}", rows[0]);

    // Two points: no fit, and the row says why.
    let mut short: Vec<_> = sweep.drain(..2).collect();
    capacity::annotate_usl(&mut short);
    let u = short[0].usl.clone().expect("a result");
    assert!(u.poor_fit && u.error.is_some() && u.sigma.is_none(), "{u:?}");
    assert!(capacity::usl_rows(&short)[0][7].contains("no fit"));
}

#[test]
fn projection_prints_inputs_with_sources_and_never_guesses() {
    let runs = vec![("results/sample".to_string(), sample_report())];
    let p = project::project(&runs, 500_000.0, Some(1_000_000), 30.0).expect("projection");
    let by = |name: &str| p.strategies.iter().find(|s| s.strategy == name).expect(name);
    let out = |name: &str, what: &str| by(name).outputs.iter().find(|o| o.what == what).expect(what).clone();

    // session: target CPU 20 + 140/10 = 34 µs; store CPU 2.5 µs/request; 180 B per session.
    let cores = out("session", "target cores").value.expect("cores");
    assert!((cores - 500_000.0 * 34.0 / 1e6 / 0.7).abs() < 1e-6, "{cores}");
    assert_eq!(out("session", "Redis shards").value, Some((500_000.0f64 * 2.5 / 1e6 / 0.7).ceil()));
    assert_eq!(out("session", "store memory").value, Some(180.0 * 1e6));
    let cpu_input = by("session").inputs.iter().find(|i| i.figure == "target_cpu_us_per_request").expect("input");
    assert_eq!(cpu_input.source.as_deref(), Some("results/sample"));

    // jwt: no store commands measured, so no store and nothing stored (from the measurement).
    assert_eq!(out("jwt", "Redis shards").value, Some(0.0));
    assert_eq!(out("jwt", "store memory").value, Some(0.0));
    // jwt-denylist: its logins write no record (the profile says so), so memory per login is no
    // memory per user.
    let dl = out("jwt-denylist", "store memory");
    assert!(dl.value.is_none() && dl.note.as_deref().is_some_and(|n| n.contains("logins write no store record")));
    // jwt-refresh: target CPU was not measured, so no cores figure.
    let missing = out("jwt-refresh", "target cores");
    assert_eq!(missing.value, None);
    assert!(missing.note.as_deref().is_some_and(|n| n.contains("not measured")));

    let table = project::table(&p);
    assert!(table.contains("not measured") && table.contains("from results/sample"), "{table}");
    assert!(table.contains("assumptions:") && table.contains("one thread"), "{table}");
    let json = serde_json::to_value(&p).expect("json");
    assert_eq!(json["strategies"][0]["inputs"][0]["figure"], "target_cpu_us_per_request");

    // Bandwidth: the sample counted no socket bytes, so inbound comes from the request heads and
    // outbound is not measured.
    let outbound = out("session", "outbound bandwidth");
    assert!(outbound.value.is_none() && outbound.note.as_deref().is_some_and(|n| n.contains("not measured")));
    assert_eq!(out("session", "inbound bandwidth").value, Some(500_000.0 * 170.0));
    let mut counted = sample_report();
    for s in &mut counted.strategies {
        s.wire = Some(authbench::results::WireBytes {
            transport: "http1".to_string(),
            sent_bytes_per_request: 111.0,
            received_bytes_per_request: 142.0,
            ..Default::default()
        });
    }
    let p2 = project::project(&[("results/wire".to_string(), counted)], 1000.0, None, 30.0).expect("projection");
    let bw = |what: &str| p2.strategies[1].outputs.iter().find(|o| o.what == what).and_then(|o| o.value);
    assert_eq!((bw("inbound bandwidth"), bw("outbound bandwidth")), (Some(111_000.0), Some(142_000.0)));

    let no_users = project::project(&runs, 1000.0, None, 0.0).expect("projection");
    let mem = no_users.strategies[1].outputs.iter().find(|o| o.what == "store memory").expect("memory");
    assert!(mem.value.is_none() && mem.note.as_deref().is_some_and(|n| n.contains("--users")));
    assert!(project::project(&runs, 0.0, None, 30.0).is_err());
    assert!(project::project(&runs, 10.0, None, 100.0).is_err());
}

#[test]
fn projection_checks_linear_scaling_against_a_several_instance_run() {
    let mut one = sample_report();
    let mut two = sample_report();
    two.traffic.instances = 2;
    // jwt scaled linearly (+4 %); session's CPU per request rose by half.
    for s in &mut two.strategies {
        let cpu = s.target_cpu_us_per_request.map(|c| if s.name == "session" { c * 1.5 } else { c * 1.04 });
        s.target_cpu_us_per_request = cpu;
    }
    // The targets counted the store concurrency in both runs.
    for (s1, s2) in one.strategies.iter_mut().zip(&mut two.strategies) {
        (s1.store.in_flight_mean, s2.store.in_flight_mean) = (Some(9.3), Some(4.1));
    }
    let runs = vec![("results/one".to_string(), one), ("results/two".to_string(), two)];
    let p = project::project(&runs, 1000.0, None, 30.0).expect("projection");
    let check = |name: &str| p.scaling_checks.iter().find(|c| c.strategy == name).expect(name).clone();
    let jwt = check("jwt");
    assert!(jwt.agrees && (jwt.difference_pct - 4.0).abs() < 1e-9 && jwt.instances == 2, "{jwt:?}");
    let session = check("session");
    assert!(!session.agrees && (session.difference_pct - 50.0).abs() < 1e-9, "{session:?}");
    // Where it went: the CPU per store operation above the baseline, in each run.
    assert!(session.why.as_deref().is_some_and(|w| w.contains("per store operation")), "{session:?}");
    assert!(session.why.as_deref().is_some_and(|w| w.contains("9.3") && w.contains("4.1")), "{session:?}");
    // A strategy without store work is explained by the baseline's own shift.
    let jwt_why = jwt.why.as_deref().unwrap_or_default();
    assert!(jwt_why.contains("baseline") && jwt_why.contains("+4 %"), "{jwt:?}");
    let table = project::table(&p);
    assert!(table.contains("DISAGREES by more than 25 %") && table.contains("agrees within 25 %"), "{table}");

    // One run alone checks nothing.
    let alone = project::project(&runs[..1], 1000.0, None, 30.0).expect("projection");
    assert!(alone.scaling_checks.is_empty());
}

#[test]
fn projection_checks_shards_against_a_cluster_run() {
    use authbench::results::NodeLoad;
    let mut one = sample_report();
    one.store_kind = "redis".to_string();
    let mut cluster = sample_report();
    cluster.store_kind = "cluster".to_string();
    for s in &mut cluster.strategies {
        // session: 3 µs of store CPU per request over 3 nodes, the busiest carrying half the commands.
        s.store.cpu_us_per_request = s.store.cpu_us_per_request.map(|c| c * 1.2);
        s.store.nodes = [0.5, 0.25, 0.25]
            .iter()
            .map(|share| NodeLoad { ops_per_request: Some(share * 1.0), cpu_us_per_request: Some(share * 3.0) })
            .collect();
    }
    let runs = vec![("results/one".to_string(), one), ("results/cluster".to_string(), cluster)];
    let p = project::project(&runs, 1000.0, None, 30.0).expect("projection");
    let c = p.cluster_checks.iter().find(|c| c.strategy == "session").expect("session checked");
    // One node: 2.5 µs -> 400k req/s; predicted 3 nodes: 1.2M. Busiest node 1.5 µs -> 667k: -44 %.
    assert!((c.predicted_ceiling_rps - 1_200_000.0).abs() < 1e-6, "{c:?}");
    assert!((c.measured_ceiling_rps - 1e6 / 1.5).abs() < 1e-6, "{c:?}");
    assert!(!c.agrees && c.nodes == 3 && c.busiest_ops_share_pct.is_some_and(|s| (s - 50.0).abs() < 1e-9));
    let table = project::table(&p);
    assert!(
        table.contains("Redis shards checked") && table.contains("busiest node's share of commands 50 %"),
        "{table}"
    );
    // A strategy without store CPU (jwt) is not checked.
    assert!(p.cluster_checks.iter().all(|c| c.strategy != "jwt"));
}

#[test]
fn project_cli_reads_a_results_dir_and_names_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    authbench::output::write_report_json(dir.path(), &sample_report()).expect("report.json");
    let ok = Command::new(crate::util::authbench_exe())
        .args(["project", dir.path().to_str().expect("utf-8"), "--rps", "500000", "--users", "1000000"])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{stdout}{}", String::from_utf8_lossy(&ok.stderr));
    assert!(stdout.contains("Redis shards") && stdout.contains("session"), "{stdout}");

    let bad = Command::new(crate::util::authbench_exe())
        .args(["project", "/nonexistent/results", "--rps", "5"])
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("cannot read"), "{}", String::from_utf8_lossy(&bad.stderr));
    let bad = Command::new(crate::util::authbench_exe())
        .args(["project", dir.path().to_str().expect("utf-8"), "--rps", "0"])
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--rps"), "{}", String::from_utf8_lossy(&bad.stderr));
}

#[test]
fn report_shows_breaking_points_and_usl_fits() {
    let mut r = sample_report();
    let obj = Objective { p99_ms: 1.0, max_error_rate: 0.001 };
    for s in r.strategies.iter_mut().filter(|s| !s.stages.is_empty()) {
        let stages = ladder(&s.stages.iter().map(|st| st.target_rate_per_sec).collect::<Vec<_>>());
        s.capacity = Some(capacity::breaking_point(obj, &stages, &s.stages));
    }
    // The shipped scenario's resolved TOML carries its projection settings into the report.
    let args =
        RunArgs { scenario: Some(crate::util::repo_root().join("scenarios/capacity.toml")), ..RunArgs::default() };
    r.scenario.resolved_toml = plan::build(&args).expect("plan").resolved_toml;
    let dir = tempfile::tempdir().expect("tempdir");
    authbench::report::render(dir.path(), &r).expect("render");
    let md = std::fs::read_to_string(dir.path().join("report.md")).expect("report.md");
    assert!(md.contains("## Capacity: breaking points"), "{md}");
    assert!(md.contains("## Capacity: projection from this run") && md.contains("500"), "{md}");
    assert!(md.contains("p99 ≤ 1"), "{md}");
    let html = std::fs::read_to_string(dir.path().join("report.html")).expect("report.html");
    assert!(html.contains("id=\"capacity\""));
    assert!(dir.path().join("plots/capacity.svg").exists());
}
