//! Threshold parsing (errors say what was expected) and evaluation against a report.

use authbench::figures;
use authbench::thresholds::{Op, Threshold, ThresholdError};

use crate::report::{matrix_report, sample_report};

#[test]
fn parses_operation_and_strategy_figures() {
    let t = Threshold::parse("jwt.api.p99_us", "< 2000").unwrap();
    assert_eq!(t.strategy, "jwt");
    assert_eq!((t.operation.as_deref(), t.figure), (Some("api"), &figures::P99_US));
    assert_eq!((t.op, t.limit), (Op::Lt, 2000.0));

    let t = Threshold::parse("jwt-denylist.throughput_rps", ">= 5_000").unwrap();
    assert_eq!(t.strategy, "jwt-denylist");
    assert_eq!((t.operation.as_deref(), t.figure), (None, &figures::THROUGHPUT_RPS));
    assert_eq!((t.op, t.limit), (Op::Ge, 5000.0));

    let t = Threshold::parse("session.revocation_window_ms.max", "<=0").unwrap();
    assert_eq!(t.strategy, "session");
    assert_eq!(t.figure, &figures::REVOCATION_WINDOW_MS_MAX);
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

#[test]
fn keys_come_from_the_registry_and_old_spellings_still_read() {
    // Every registry key is a threshold metric.
    for f in figures::all() {
        let metric = if f.per_operation() { format!("jwt.api.{}", f.key) } else { format!("jwt.{}", f.key) };
        let t = Threshold::parse(&metric, "< 1").unwrap_or_else(|e| panic!("{metric}: {e}"));
        assert_eq!(t.figure, f, "{metric}");
        assert_eq!(t.deprecation(), None, "{metric}");
    }
    // Deprecated spellings read the same figure, with a note naming the key to write instead.
    let r = sample_report();
    for (old, figure) in [
        ("session.store_ops_per_request", &figures::STORE_OPS_PER_REQUEST),
        ("session.errors", &figures::ERRORS_TOTAL),
        ("session.revocation_window_ms_max", &figures::REVOCATION_WINDOW_MS_MAX),
    ] {
        let t = Threshold::parse(old, "<= 1").unwrap_or_else(|e| panic!("{old}: {e}"));
        assert_eq!(t.figure, figure, "{old}");
        assert_eq!(t.strategy, "session");
        let note = t.deprecation().expect("deprecation note");
        assert!(note.contains(figure.key), "{note}");
        let new = Threshold::parse(&format!("session.{}", figure.key), "<= 1").unwrap();
        assert_eq!(t.evaluate(&r).actual, new.evaluate(&r).actual, "{old}");
    }
    assert_eq!(Threshold::parse("session.store_ops_per_request", "<= 1").unwrap().evaluate(&r).actual, Some(1.0));
}
