//! Threshold parsing (errors say what was expected) and evaluation against a report.

use authbench::thresholds::{Figure, Op, Threshold, ThresholdError};

use crate::report::{matrix_report, sample_report};

#[test]
fn parses_operation_and_strategy_figures() {
    let t = Threshold::parse("jwt.api.p99_us", "< 2000").unwrap();
    assert_eq!(t.strategy, "jwt");
    assert_eq!(t.figure, Figure::Latency { operation: "api".into(), figure: "p99_us".into() });
    assert_eq!((t.op, t.limit), (Op::Lt, 2000.0));

    let t = Threshold::parse("jwt-denylist.throughput_rps", ">= 5_000").unwrap();
    assert_eq!(t.strategy, "jwt-denylist");
    assert_eq!(t.figure, Figure::Strategy("throughput_rps".into()));
    assert_eq!((t.op, t.limit), (Op::Ge, 5000.0));

    let t = Threshold::parse("session.revocation_window_ms.max", "<=0").unwrap();
    assert_eq!(t.strategy, "session");
    assert_eq!(t.figure, Figure::Strategy("revocation_window_ms.max".into()));
    assert_eq!(t.op, Op::Le);

    for (metric, cond) in [
        ("session.target_cpu_us_per_request", "< 100"),
        ("session.unexpected_allow", "== 0"),
        ("session.store.ops_per_request", "<= 1.5"),
        ("jwt.login.p50_us", "> 0"),
        ("jwt alg=ES256.api.p999_us", "< 1e4"),
    ] {
        Threshold::parse(metric, cond).unwrap_or_else(|e| panic!("{metric} = {cond}: {e}"));
    }
    let t = Threshold::parse("jwt alg=ES256.api.p999_us", "< 1e4").unwrap();
    assert_eq!(t.strategy, "jwt alg=ES256");
}

#[test]
fn parse_errors_say_what_was_expected() {
    let e = Threshold::parse("jwt.api.p98_us", "< 1").unwrap_err();
    assert!(matches!(e, ThresholdError::UnknownMetric { .. }));
    let msg = e.to_string();
    assert!(msg.contains("`jwt.api.p98_us`"), "{msg}");
    assert!(msg.contains("expected `<strategy>.<operation>.<figure>`"), "{msg}");
    assert!(msg.contains("p99_us") && msg.contains("throughput_rps") && msg.contains("api"), "{msg}");

    let msg = Threshold::parse("throughput_rps", "< 1").unwrap_err().to_string();
    assert!(msg.contains("expected"), "a figure without a strategy: {msg}");

    let msg = Threshold::parse("jwt.api.p99_us", "2000").unwrap_err().to_string();
    assert!(msg.contains("no comparison operator"), "{msg}");
    assert!(msg.contains("`<`, `<=`, `>`, `>=`, `==`"), "{msg}");

    let msg = Threshold::parse("jwt.api.p99_us", "< 2ms").unwrap_err().to_string();
    assert!(msg.contains("expected a number after `<`, found `2ms`"), "{msg}");

    let msg = Threshold::parse("jwt.api.p99_us", "<").unwrap_err().to_string();
    assert!(msg.contains("expected a number"), "{msg}");

    assert_eq!(Threshold::parse("  ", "< 1").unwrap_err(), ThresholdError::EmptyMetric);
}

#[test]
fn evaluates_pass_and_fail() {
    let r = sample_report();
    // jwt api p99 is 480 µs in the sample.
    let cases = [
        ("< 2000", true),
        ("< 480", false),
        ("<= 480", true),
        ("> 480", false),
        (">= 480", true),
        ("== 480", true),
        ("== 481", false),
    ];
    for (cond, pass) in cases {
        let res = Threshold::parse("jwt.api.p99_us", cond).unwrap().evaluate(&r);
        assert_eq!(res.actual, Some(480.0));
        assert_eq!(res.passed, pass, "p99 480 {cond}");
        assert_eq!(res.condition, cond);
        assert_eq!(res.metric, "jwt.api.p99_us");
    }
    let res = Threshold::parse("session.revocation_window_ms.max", "<= 0").unwrap().evaluate(&r);
    assert!(res.passed);
    let res = Threshold::parse("jwt.revocation_window_ms.max", "<= 1000").unwrap().evaluate(&r);
    assert!(!res.passed);
    assert_eq!(res.actual, Some(330_000.0));
    let res = Threshold::parse("session.unexpected_allow", "== 0").unwrap().evaluate(&r);
    assert!(res.passed);
    let res = Threshold::parse("jwt-denylist.throughput_rps", "> 9000").unwrap().evaluate(&r);
    assert!(res.passed, "{res:?}");
    let res = Threshold::parse("jwt alg=ES256 pad_bytes=0.target_cpu_us_per_request", "< 100")
        .unwrap()
        .evaluate(&matrix_report());
    assert_eq!(res.actual, Some(60.0));
    assert!(res.passed);
}

#[test]
fn missing_metrics_never_pass_and_say_why() {
    let r = sample_report();
    let res = Threshold::parse("jwtx.api.p99_us", "< 2000").unwrap().evaluate(&r);
    assert_eq!(res.actual, None);
    assert!(!res.passed);
    assert!(res.condition.starts_with("< 2000 (not in report: no strategy named `jwtx`"), "{}", res.condition);
    assert!(res.condition.contains("session"), "lists the strategies it has: {}", res.condition);

    let res = Threshold::parse("jwt.refresh.p99_us", "< 2000").unwrap().evaluate(&r);
    assert!(!res.passed);
    assert!(res.condition.contains("no `refresh` requests measured"), "{}", res.condition);

    // jwt-refresh's target CPU is null in the sample: not measured, not 0.
    let res = Threshold::parse("jwt-refresh.target_cpu_us_per_request", "< 1000").unwrap().evaluate(&r);
    assert_eq!(res.actual, None);
    assert!(!res.passed);
    assert!(res.condition.contains("not measured"), "{}", res.condition);
}
