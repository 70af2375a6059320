//! Measurement accounting end to end on a real redis-server: probe traffic divides the per-request
//! figures instead of inflating them, the store-down column is measured after the window, kill-mode
//! outages record what they cost, and a short-lived JWT's revocation window is observed.

use std::path::Path;

use authbench::plan::{RunArgs, build_from};
use authbench::results::{Report, StrategyResult};
use authbench::scenario::{self, OutageMode};

fn redis_or_skip() -> bool {
    let ok = authbench::environment::redis_server_available();
    if !ok {
        eprintln!("redis-server not installed: skipping");
    }
    ok
}

fn run(text: &str, out: &Path) -> Report {
    crate::store_events::run(text, out)
}

fn find<'a>(r: &'a Report, name: &str) -> &'a StrategyResult {
    r.strategies.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{name} missing"))
}

#[test]
fn matrix_sweeps_outage_mode_access_ttl_and_leeway() {
    let text = "strategies = [\"session\", \"jwt\"]\n[store]\nkind = \"redis\"\n[store.outage]\nat = \"1s\"\n\
                duration = \"1s\"\n[traffic]\nduration = \"3s\"\n[matrix]\nstore.outage_mode = [\"pause\", \"kill\"]\n\
                access_ttl = [\"2s\", \"5s\"]\nleeway = [\"0s\", \"3s\"]\n";
    let plan = build_from(scenario::parse(text, "m.toml", "m").expect("parses"), &RunArgs::default()).expect("plan");
    // session: 2 outage modes; jwt: 2 modes x 2 ttls x 2 leeways.
    assert_eq!(plan.variants.len(), 2 + 8);
    let kill = plan.variants.iter().find(|v| v.label == "session store.outage_mode=kill").expect("kill variant");
    assert_eq!(kill.outage_mode, Some(OutageMode::Kill));
    let jwt = plan
        .variants
        .iter()
        .find(|v| v.label == "jwt access_ttl=2s leeway=3s store.outage_mode=pause")
        .expect("jwt variant");
    assert_eq!(jwt.target.access_ttl, Some(std::time::Duration::from_secs(2)));
    assert_eq!(jwt.target.leeway, std::time::Duration::from_secs(3));
    let no_table = "strategies = [\"session\"]\n[matrix]\nstore.outage_mode = [\"kill\"]\n";
    let err = build_from(scenario::parse(no_table, "m.toml", "m").expect("parses"), &RunArgs::default())
        .expect_err("an outage mode without an outage");
    assert!(err.to_string().contains("[store.outage]"), "{err}");
}

/// The same open-loop traffic with and without the availability prober (200 polls/s next to 300
/// requests/s): store operations per request stay put, because the target's own count divides them.
/// The engine sends api requests only (after its users' first logins: 20 users log in within the
/// 500 ms warm-up, so no login falls in the window), so its requests and the
/// prober's polls cost the store the same one lookup: any change would be the accounting's.
#[test]
fn prober_traffic_does_not_inflate_per_request_store_ops() {
    if !redis_or_skip() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let scenario = |prober: bool| {
        format!(
            "strategies = [\"session\"]\n[store]\nkind = \"redis\"\n[traffic]\nmode = \"open\"\nrate = 300\n\
             connections = 8\nusers = 20\nwarmup = \"500ms\"\nduration = \"4s\"\n[mix]\napi = 100\nlogin = 0\n\
             logout = 0\nrefresh = 0\nrevoke-user = 0\n[probe]\nrevocation_probes = 0\nstore_down_pause = \"0s\"\n\
             availability = {prober}\n"
        )
    };
    let off = run(&scenario(false), &tmp.path().join("off"));
    let on = run(&scenario(true), &tmp.path().join("on"));
    let (off, on) = (find(&off, "session"), find(&on, "session"));
    let acc = on.requests_accounting.as_ref().expect("accounting recorded");
    assert_eq!(acc.per_request_denominator, "target");
    assert!(acc.prober_requests * 5 > acc.driver_requests, "the prober sent a real share: {acc:?}");
    let served = acc.target_requests.expect("the target counted its requests");
    assert!(served >= acc.driver_requests + acc.prober_requests * 9 / 10, "{acc:?}");
    let acc_off = off.requests_accounting.as_ref().expect("accounting recorded");
    assert_eq!(acc_off.prober_requests, 0);
    let (a, b) = (off.store.ops_per_request.expect("measured"), on.store.ops_per_request.expect("measured"));
    assert!((b - a).abs() <= 0.05 * a, "store ops per request: prober off {a:.3}, on {b:.3}");
}

/// After the window the store is paused briefly: session fails closed and recovers, pure JWT is
/// unaffected; a kill-mode outage records the keys it lost.
#[test]
fn store_down_is_measured_and_kill_mode_costs_are_recorded() {
    if !redis_or_skip() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let text = "strategies = [\"session\", \"jwt\"]\n[store]\nkind = \"redis\"\n[traffic]\nmode = \"open\"\n\
                rate = 150\nconnections = 4\nusers = 100\nwarmup = \"300ms\"\nduration = \"1s\"\n[probe]\n\
                revocation_probes = 0\n";
    let report = run(text, &tmp.path().join("down"));
    let session = find(&report, "session").store_down.clone().expect("store down measured for session");
    assert!(session.api_behaviour.starts_with("fails closed"), "{session:?}");
    assert!(session.login_behaviour.starts_with("fails closed"), "{session:?}");
    assert!(session.api_recovery_ms.is_some() && session.login_recovery_ms.is_some(), "{session:?}");
    let jwt = find(&report, "jwt").store_down.clone().expect("store down measured for jwt");
    assert_eq!(jwt.api_behaviour, "unaffected (200)", "{jwt:?}");

    let text = "strategies = [\"session\"]\n[store]\nkind = \"redis\"\n[store.outage]\nat = \"1s\"\n\
                duration = \"1s\"\n[matrix]\nstore.outage_mode = [\"pause\", \"kill\"]\n[traffic]\nmode = \"open\"\n\
                rate = 150\nconnections = 4\nusers = 100\nwarmup = \"300ms\"\nduration = \"4s\"\n[probe]\n\
                revocation_probes = 0\n";
    let report = run(text, &tmp.path().join("kill"));
    let pause = find(&report, "session store.outage_mode=pause").outage.clone().expect("pause measured");
    assert!(pause.kill_cost.is_none() && !pause.credential_lost, "{pause:?}");
    let kill = find(&report, "session store.outage_mode=kill");
    let o = kill.outage.clone().expect("kill measured");
    assert_eq!(o.mode, "kill");
    let cost = o.kill_cost.expect("kill cost recorded");
    assert!(cost.store_keys_lost.unwrap_or(0) > 0, "the store held sessions when killed: {cost:?}");
    assert!(cost.logins_peak_per_s_after.is_some(), "{cost:?}");
    assert!(kill.store_down.is_none(), "an in-window outage already measured the store-down column");
}

/// jwt-refresh with a 2 s access token and 1 s leeway: the revoked access token is seen refused, no
/// later than exp + leeway (exp is a whole second: iat + ttl + leeway + 1 s) plus one poll.
#[test]
fn short_lived_access_token_revocation_window_is_observed() {
    if !redis_or_skip() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let text = "strategies = [\"jwt-refresh\"]\n[store]\nkind = \"redis\"\n[target]\naccess_ttl = \"2s\"\n\
                leeway = \"1s\"\n[traffic]\nmode = \"open\"\nrate = 100\nconnections = 2\nusers = 20\n\
                warmup = \"300ms\"\nduration = \"1s\"\n[probe]\nrevocation_probes = 3\nrevocation_max_wait = \"8s\"\n\
                store_down_pause = \"0s\"\n";
    let report = run(text, &tmp.path().join("rev"));
    let w = find(&report, "jwt-refresh").revocation_window_ms.clone();
    assert_eq!(w.probes, 3, "{w:?}");
    assert!(!w.bounded, "every revoked token was seen refused: {w:?}");
    assert_eq!((w.access_ttl_s, w.leeway_s), (Some(2.0), Some(1.0)), "{w:?}");
    let interval = w.poll_interval_ms.expect("interval recorded");
    let max = w.max.expect("window measured");
    let p50 = w.p50.expect("p50");
    assert!(p50 > 0.0, "the access token outlives its revocation: {w:?}");
    let ceiling_ms = (2.0 + 1.0 + 1.0) * 1000.0 + interval;
    assert!(max <= ceiling_ms, "observed {max} ms > ttl + leeway + 1 s + one poll ({ceiling_ms} ms): {w:?}");
    assert!(p50 >= 1000.0, "the leeway alone keeps it 1 s past exp: {w:?}");
}
