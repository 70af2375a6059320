//! Scenario files and `authbench run` flags: parsing, errors that point at file/line/column, unknown
//! keys, overrides, and every shipped scenario.

use std::time::Duration;

use authbench::plan::{self, RunArgs, Schedule, Stop};
use authbench::scenario::{self, ScenarioError};
use authbench::targets::config::{Alg, StrategyKind};

fn parse_err(text: &str) -> ScenarioError {
    scenario::parse(text, "test.toml", "test").expect_err("must fail")
}

#[test]
fn unknown_key_is_an_error_with_line_and_column() {
    let e = parse_err("name = \"x\"\n\n[traffic]\nconections = 3\n");
    assert_eq!(e.position(), Some((4, 1)), "{e}");
    let msg = e.to_string();
    assert!(msg.starts_with("test.toml:4:1:"), "{msg}");
    assert!(msg.contains("conections") && msg.contains("connections"), "names the key and what was expected: {msg}");
}

#[test]
fn unknown_top_level_table_is_an_error() {
    let e = parse_err("[trafic]\nrate = 3\n");
    assert!(e.to_string().contains("trafic"), "{e}");
}

#[test]
fn bad_duration_names_what_was_expected() {
    let e = parse_err("[traffic]\nduration = \"5q\"\n");
    assert_eq!(e.position().map(|p| p.0), Some(2));
    assert!(e.to_string().contains("ms, s, m, h or d"), "{e}");
}

#[test]
fn wrong_type_names_the_type() {
    let e = parse_err("[traffic]\nconnections = \"many\"\n");
    assert_eq!(e.position().map(|p| p.0), Some(2));
    assert!(e.to_string().contains("expected usize"), "{e}");
}

#[test]
fn unknown_strategy_lists_the_valid_ones() {
    let e = parse_err("strategies = [\"jwt\", \"oauth\"]\n");
    assert!(e.to_string().contains("oauth") && e.to_string().contains("jwt-denylist"), "{e}");
}

#[test]
fn missing_file_is_named() {
    let e = scenario::load(std::path::Path::new("/nonexistent/x.toml")).expect_err("missing");
    assert!(e.to_string().contains("/nonexistent/x.toml"), "{e}");
}

#[test]
fn thresholds_keep_file_order_and_lines() {
    let text = "# q\n[thresholds]\n\"jwt.api.p99_us\" = \"< 2000\"\n\"a.api.p50_us\" = \"< 10\"\n";
    let l = scenario::parse(text, "t.toml", "t").expect("parses");
    assert_eq!(l.thresholds.len(), 2);
    assert_eq!(l.thresholds[0].metric, "jwt.api.p99_us");
    assert_eq!(l.thresholds[0].condition, "< 2000");
    assert_eq!(l.thresholds[0].line, 3);
    assert_eq!(l.thresholds[1].line, 4);
    assert_eq!(l.description, "q");
}

#[test]
fn every_shipped_scenario_parses_and_plans() {
    let dir = crate::util::repo_root().join("scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("scenarios/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).expect("read");
            assert!(text.starts_with('#'), "{} must open with a comment saying its question", path.display());
            let args = RunArgs { scenario: Some(path.clone()), ..RunArgs::default() };
            let p = plan::build(&args).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!p.variants.is_empty());
            assert!(!p.description.is_empty());
            n += 1;
        }
    }
    assert!(n >= 5, "five shipped scenarios, found {n}");
}

#[test]
fn flags_override_the_file() {
    let args = RunArgs {
        connections: Some(3),
        duration: Some(Duration::from_secs(2)),
        strategies: vec![StrategyKind::SESSION],
        users: Some(7),
        ..RunArgs::default()
    };
    let p = plan::build(&args).expect("plan");
    assert_eq!(p.variants.len(), 1);
    assert_eq!(p.variants[0].strategy, StrategyKind::SESSION);
    assert_eq!(p.variants[0].schedule, Schedule::Closed { connections: 3 });
    assert_eq!(p.stop, Stop::Duration(Duration::from_secs(2)));
    assert_eq!(p.users, 7);
    assert!(p.resolved_toml.contains("users = 7"), "{}", p.resolved_toml);
}

#[test]
fn rate_flag_means_open_loop_and_connections_alone_closed() {
    let p = plan::build(&RunArgs { rate: Some(200.0), ..RunArgs::default() }).expect("plan");
    match &p.variants[0].schedule {
        Schedule::Open { stages, connections } => {
            assert_eq!(*connections, 16);
            assert_eq!(stages[0].rate_per_sec, 200.0);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn matrix_multiplies_only_the_strategies_it_applies_to() {
    let text = "strategies = [\"session\", \"jwt\"]\n[matrix]\nalg = [\"HS256\", \"ES256\"]\npad_bytes = [0, 1024]\n";
    let l = scenario::parse(text, "m.toml", "m").expect("parses");
    let p = plan::build_from(l, &RunArgs::default()).expect("plan");
    let labels: Vec<&str> = p.variants.iter().map(|v| v.label.as_str()).collect();
    assert_eq!(labels.len(), 5, "{labels:?}");
    assert_eq!(labels[0], "session");
    assert!(labels.contains(&"jwt alg=ES256 pad_bytes=1024"), "{labels:?}");
}

#[test]
fn staged_open_loop_sums_stage_durations() {
    let text =
        "[traffic]\nstages = [{ rate = 100, duration = \"2s\" }, { rate = 300, duration = \"3s\", ramp = true }]\n";
    let l = scenario::parse(text, "s.toml", "s").expect("parses");
    let p = plan::build_from(l, &RunArgs::default()).expect("plan");
    assert_eq!(p.stop, Stop::Duration(Duration::from_secs(5)));
    match &p.variants[0].schedule {
        Schedule::Open { stages, .. } => {
            assert_eq!(stages[1].from_rate_per_sec, 100.0);
            assert_eq!(stages[1].rate_per_sec, 300.0);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn invalid_combinations_are_refused_before_any_work() {
    let l = scenario::parse("[traffic]\nmode = \"closed\"\nrate = 10\n", "c.toml", "c").expect("parses");
    let e = plan::build_from(l, &RunArgs::default()).expect_err("closed with rate");
    assert!(e.to_string().contains("closed"), "{e}");
    let e = plan::build(&RunArgs { connections: Some(0), ..RunArgs::default() }).expect_err("0 connections");
    assert!(e.to_string().contains("connections"), "{e}");
    let e = plan::build(&RunArgs { target: vec!["http://127.0.0.1:1".into()], ..RunArgs::default() })
        .expect_err("--target with five strategies");
    assert!(e.to_string().contains("--strategy"), "{e}");
}

const OVERRIDES: &str = "\
strategies = [\"session\", \"jwt\", \"jwt-denylist\", \"jwt-refresh\"]

[target]
alg = \"HS256\"
access_ttl = \"15m\"
roles = 4

[target.jwt-refresh]
access_ttl = \"1m\"

[target.jwt-denylist]
alg = \"ES256\"
fail_open = true
";

#[test]
fn target_overrides_apply_to_their_strategy_only() {
    let l = scenario::parse(OVERRIDES, "o.toml", "o").expect("parses");
    let p = plan::build_from(l, &RunArgs::default()).expect("plan");
    let v = |s: StrategyKind| p.variants.iter().find(|v| v.strategy == s).expect("variant");
    let (session, jwt, deny, refresh) =
        (v(StrategyKind::SESSION), v(StrategyKind::JWT), v(StrategyKind::JWT_DENYLIST), v(StrategyKind::JWT_REFRESH));
    assert_eq!((jwt.target.alg, jwt.target.access_ttl), (Alg::Hs256, Some(Duration::from_secs(900))));
    assert!(!jwt.target.fail_open);
    assert_eq!((refresh.target.alg, refresh.target.access_ttl), (Alg::Hs256, Some(Duration::from_secs(60))));
    assert_eq!((deny.target.alg, deny.target.access_ttl), (Alg::Es256, Some(Duration::from_secs(900))));
    assert!(deny.target.fail_open && deny.target.to_args().contains(&"--fail-open".to_owned()));
    assert_eq!(session.target.access_ttl, Some(Duration::from_secs(900)));
    assert!([session, jwt, deny, refresh].iter().all(|v| v.target.roles == 4), "[target] keys reach every strategy");
    assert!(refresh.target.to_args().windows(2).any(|w| w == ["--access-ttl", "60s"]));
    // Labels stay the strategy names; the resolved TOML keeps the overrides.
    let labels: Vec<&str> = p.variants.iter().map(|v| v.label.as_str()).collect();
    assert_eq!(labels, ["session", "jwt", "jwt-denylist", "jwt-refresh"]);
    assert!(p.resolved_toml.contains("[target.jwt-refresh]"), "{}", p.resolved_toml);
    let again = scenario::parse(&p.resolved_toml, "r.toml", "r").expect("resolved TOML parses back");
    assert_eq!(again.scenario.target, scenario::parse(OVERRIDES, "o.toml", "o").expect("parses").scenario.target);
}

#[test]
fn target_override_for_an_unknown_strategy_names_the_valid_ones() {
    let e = parse_err("[target]\nalg = \"HS256\"\n\n[target.jwt-refrsh]\naccess_ttl = \"1m\"\n");
    assert_eq!(e.position().map(|p| p.0), Some(4), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("jwt-refrsh") && msg.contains("jwt-refresh") && msg.contains("alg"), "{msg}");
}

#[test]
fn target_override_for_a_strategy_not_listed_is_an_error() {
    let e = parse_err("strategies = [\"session\", \"jwt\"]\n\n[target.jwt-refresh]\naccess_ttl = \"1m\"\n");
    assert_eq!(e.position().map(|p| p.0), Some(3), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("jwt-refresh") && msg.contains("session, jwt"), "{msg}");
    // A strategy left out by --strategy just drops its override.
    let l = scenario::parse(OVERRIDES, "o.toml", "o").expect("parses");
    let p = plan::build_from(l, &RunArgs { strategies: vec![StrategyKind::JWT], ..RunArgs::default() }).expect("plan");
    assert_eq!(p.variants.len(), 1);
    assert!(!p.resolved_toml.contains("jwt-refresh"), "{}", p.resolved_toml);
}

#[test]
fn unknown_key_inside_a_target_override_is_named() {
    let e = parse_err("[target.jwt]\nalg = \"ES256\"\naccess_tll = \"1m\"\n");
    assert_eq!(e.position(), Some((3, 1)), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("access_tll") && msg.contains("access_ttl"), "{msg}");
    let e = parse_err("[target.jwt]\nfail_open = true\n");
    assert!(e.to_string().contains("applies to jwt-denylist"), "{e}");
}

#[test]
fn matrix_value_wins_over_a_target_override() {
    let text = "strategies = [\"jwt\", \"jwt-refresh\"]\n[target]\npad_bytes = 64\n[target.jwt]\nalg = \"ES256\"\n\
                pad_bytes = 512\n[matrix]\nalg = [\"HS256\", \"EdDSA\"]\n";
    let l = scenario::parse(text, "m.toml", "m").expect("parses");
    let p = plan::build_from(l, &RunArgs::default()).expect("plan");
    let got: Vec<(&str, Alg, usize)> =
        p.variants.iter().map(|v| (v.label.as_str(), v.target.alg, v.target.pad_bytes)).collect();
    assert_eq!(
        got,
        [
            ("jwt alg=HS256", Alg::Hs256, 512),
            ("jwt alg=EdDSA", Alg::EdDsa, 512),
            ("jwt-refresh alg=HS256", Alg::Hs256, 64),
            ("jwt-refresh alg=EdDSA", Alg::EdDsa, 64),
        ]
    );
}

#[test]
fn matrix_points_are_typed_and_written_as_before() {
    let text = "strategies = [\"session\", \"jwt-denylist\"]\n[traffic]\nmode = \"open\"\n[matrix]\n\
                rate = [100, 1500.5]\nfail_open = [false, true]\nstore.delay = [\"0.5ms\", \"2ms\"]\n";
    let l = scenario::parse(text, "m.toml", "m").expect("parses");
    let p = plan::build_from(l, &RunArgs::default()).expect("plan");
    // session: rate x delay; jwt-denylist: rate x fail_open x delay.
    assert_eq!(p.variants.len(), 4 + 8);
    let v = &p.variants[1];
    assert_eq!(v.label, "session rate=100 store.delay=2ms");
    let coords: Vec<(String, String)> = v.coords().into_iter().collect();
    assert_eq!(coords, [("rate".to_owned(), "100".to_owned()), ("store.delay".to_owned(), "2ms".to_owned())]);
    assert_eq!(v.store_delay, Some(Duration::from_millis(2)));
    let last = p.variants.last().expect("variants");
    assert_eq!(last.label, "jwt-denylist fail_open=true rate=1500.5 store.delay=2ms");
    assert!(last.target.fail_open);
    assert!(matches!(&last.schedule, Schedule::Open { stages, .. } if stages[0].rate_per_sec == 1500.5));
    let first_delay = &p.variants[0];
    assert_eq!(first_delay.coords()["store.delay"], "0.5ms");
    assert_eq!(first_delay.store_delay, Some(Duration::from_micros(500)));
}
