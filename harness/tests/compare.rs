//! `authbench compare`: exit 0 when nothing tracked worsened past the limit, 1 when something did,
//! 2 on input it cannot use, with a clear error.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use authbench::compare::{Rule, Verdict, compare, judge};
use authbench::figures::Better;
use authbench::results::Report;

use crate::report::sample_report;

fn write(dir: &Path, name: &str, r: &Report) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(r).unwrap()).unwrap();
    p
}

fn run(args: &[&Path], extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_authbench")).arg("compare").args(args).args(extra).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn api_mut(r: &mut Report, strategy: usize) -> &mut authbench::results::LatencySummary {
    r.strategies[strategy].latency_us.get_mut("api").unwrap()
}

#[test]
fn equal_runs_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "base.json", &sample_report());
    let new = write(dir.path(), "new.json", &sample_report());
    let out = run(&[&base, &new], &[]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("OK: no tracked figure worsened by more than 10%"));
    assert!(stdout(&out).contains("p99_us"));
}

#[test]
fn improved_run_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "base.json", &sample_report());
    let mut better = sample_report();
    api_mut(&mut better, 2).p99 /= 2;
    better.strategies[2].throughput_rps *= 1.5;
    better.strategies[1].credential_bytes = 20.0;
    let new = write(dir.path(), "new.json", &better);
    let out = run(&[&base, &new], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("better"));
}

#[test]
fn regressed_latency_exits_1_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "base.json", &sample_report());
    let mut worse = sample_report();
    api_mut(&mut worse, 2).p99 = api_mut(&mut worse, 2).p99 * 3 / 2;
    let new = write(dir.path(), "new.json", &worse);
    let out = run(&[&base, &new], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("REGRESSED"), "{text}");
    assert!(text.contains("FAIL: 1 tracked figure(s)"), "{text}");
    assert!(text.contains("jwt api p99_us: 480 -> 720 (+50.0%)"), "{text}");
}

#[test]
fn max_regression_sets_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "base.json", &sample_report());
    let mut slightly = sample_report();
    slightly.strategies[1].target_cpu_us_per_request =
        slightly.strategies[1].target_cpu_us_per_request.map(|c| c * 1.05);
    let new = write(dir.path(), "new.json", &slightly);
    assert_eq!(run(&[&base, &new], &[]).status.code(), Some(0));
    assert_eq!(run(&[&base, &new], &["--max-regression", "2"]).status.code(), Some(1));
}

#[test]
fn throughput_down_and_store_ops_up_regress() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "base.json", &sample_report());
    let mut slower = sample_report();
    slower.strategies[0].throughput_rps *= 0.5;
    let new = write(dir.path(), "slower.json", &slower);
    assert_eq!(run(&[&base, &new], &[]).status.code(), Some(1));
    let mut chattier = sample_report();
    chattier.strategies[2].store.ops_per_request = Some(1.0); // was 0: +inf%
    let new = write(dir.path(), "chattier.json", &chattier);
    let out = run(&[&base, &new], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("+inf%"));
}

#[test]
fn results_directories_are_accepted() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    write(a.path(), "report.json", &sample_report());
    write(b.path(), "report.json", &sample_report());
    let out = run(&[a.path(), b.path()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn bad_input_exits_2_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.json", &sample_report());

    let malformed = dir.path().join("malformed.json");
    std::fs::write(&malformed, "{\"schema\": 1, \"strategies\": [").unwrap();
    let out = run(&[&good, &malformed], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("malformed.json is not valid JSON"), "{}", stderr(&out));

    let missing = dir.path().join("missing.json");
    let out = run(&[&missing, &good], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));

    let mut v = serde_json::to_value(sample_report()).unwrap();
    v["schema"] = serde_json::json!(2);
    let future = dir.path().join("future.json");
    std::fs::write(&future, v.to_string()).unwrap();
    let out = run(&[&good, &future], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("has report schema 2, this authbench reads schema 1"), "{}", stderr(&out));

    let mut v = serde_json::to_value(sample_report()).unwrap();
    v.as_object_mut().unwrap().remove("strategies");
    let partial = dir.path().join("partial.json");
    std::fs::write(&partial, v.to_string()).unwrap();
    let out = run(&[&good, &partial], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does not match report.json schema 1"), "{}", stderr(&out));
    assert!(stderr(&out).contains("strategies"), "{}", stderr(&out));

    let out = run(&[&good, &good], &["--max-regression", "-5"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn judge_directions_and_nulls() {
    assert_eq!(judge(Some(100.0), Some(100.0), Better::Lower, 10.0), (Some(0.0), Verdict::Equal));
    assert_eq!(judge(Some(100.0), Some(105.0), Better::Lower, 10.0).1, Verdict::Worse);
    assert_eq!(judge(Some(100.0), Some(111.0), Better::Lower, 10.0).1, Verdict::Regressed);
    assert_eq!(judge(Some(100.0), Some(80.0), Better::Lower, 10.0).1, Verdict::Better);
    assert_eq!(judge(Some(100.0), Some(80.0), Better::Higher, 10.0).1, Verdict::Regressed);
    assert_eq!(judge(Some(100.0), Some(120.0), Better::Higher, 10.0).1, Verdict::Better);
    assert_eq!(judge(None, Some(1.0), Better::Lower, 10.0), (None, Verdict::NotComparable));
    assert_eq!(judge(Some(0.0), Some(0.0), Better::Lower, 10.0).1, Verdict::Equal);
}

#[test]
fn strategies_in_one_run_only_are_noted_not_failed() {
    let base = sample_report();
    let mut new = sample_report();
    new.strategies.pop();
    let cmp = compare(&base, &new, &Rule::new(10.0));
    assert!(!cmp.regressed());
    assert_eq!(cmp.only_in_base, vec!["jwt-refresh".to_string()]);
    assert!(cmp.to_table().contains("`jwt-refresh` is only in BASE"));
    // A figure one run did not measure is n/a, never a regression.
    let mut nulls = sample_report();
    nulls.strategies[0].target_cpu_us_per_request = None;
    let cmp = compare(&base, &nulls, &Rule::new(10.0));
    assert!(!cmp.regressed());
    assert!(cmp.rows.iter().any(|r| r.figure == "target_cpu_us_per_request" && r.verdict == Verdict::NotComparable));
}

/// `sample_report` with five repetitions per strategy, each strategy's target CPU scaled by
/// `scale(strategy index)` and spread a little per repetition.
fn repeated(scale: impl Fn(usize) -> f64) -> Report {
    let mut r = sample_report();
    for (i, s) in r.strategies.iter_mut().enumerate() {
        let base = s.target_cpu_us_per_request.unwrap_or(10.0) * scale(i);
        s.repeats = (0..5)
            .map(|k| {
                let mut one = s.clone();
                one.target_cpu_us_per_request = Some(base * (1.0 + 0.01 * k as f64));
                one
            })
            .collect();
        s.target_cpu_us_per_request = Some(base * 1.02);
    }
    r
}

#[test]
fn a_control_that_moved_is_called_machine_drift() {
    let base = repeated(|_| 1.0);
    let same = compare(&base, &repeated(|_| 1.0), &Rule::new(10.0));
    assert_eq!(same.machine_drift, None, "nothing moved");
    // Every strategy 30 % dearer, the control (`none`, no authentication) included: the machine.
    let loaded = compare(&base, &repeated(|_| 1.3), &Rule::new(10.0));
    let drift = loaded.machine_drift.clone().expect("the control moved");
    assert!(drift.contains("`none`") && drift.contains("+30"), "{drift}");
    assert!(loaded.to_table().contains("WARNING: the control `none`"));
    assert!(loaded.to_markdown().contains("[!WARNING]"));
    // Only an authenticating strategy dearer: a real change, no drift.
    let real = compare(&base, &repeated(|i| if i == 2 { 1.3 } else { 1.0 }), &Rule::new(10.0));
    assert_eq!(real.machine_drift, None);
    assert!(real.regressed());
}

#[test]
fn tail_percentiles_are_shown_but_not_gated_by_default_with_repetitions() {
    let base = repeated(|_| 1.0);
    let mut new = repeated(|_| 1.0);
    let triple_p99 = |r: &mut authbench::results::StrategyResult| {
        if let Some(api) = r.latency_us.get_mut("api") {
            api.p99 *= 3;
        }
    };
    for s in &mut new.strategies {
        s.repeats.iter_mut().for_each(triple_p99);
        triple_p99(s);
    }
    let cmp = compare(&base, &new, &Rule::new(10.0));
    let p99 = cmp.rows.iter().find(|r| r.figure == "p99_us" && r.operation.as_deref() == Some("api")).expect("row");
    assert_eq!(p99.verdict, Verdict::Regressed, "shown as regressed");
    assert!(!p99.gated && !cmp.regressed(), "but not gated without --gate");
    assert!(cmp.to_table().contains("but the tail percentiles"));
    let mut rule = Rule::new(10.0);
    rule.gate = vec!["api.p99_us".to_owned()];
    assert!(compare(&base, &new, &rule).regressed(), "gated when named");
}
