//! The engine on every transport through a real target (HTTP/2 in clear text and over TLS, HTTP/1.1
//! over TLS), every request in exactly one outcome class; and the socket byte counts checked
//! against a known request and answer.

use std::time::{Duration, Instant};

use authbench::engine::record::Outcome;
use authbench::engine::transport::{HpackPolicy, Transport, WireSettings};
use authbench::engine::{Engine, EngineConfig, EngineOutput};
use authbench::plan::{MixWeights, Schedule, Stop};
use authbench::targets::config::StrategyKind;
use authbench::targets::{TargetArgs, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

const ADMIN_KEY: &str = "wire-test-admin-key";

/// A real target serving `strategy` on a free port (TLS with a self-signed certificate when `tls`);
/// returns its URL and the sender that stops it.
pub(crate) async fn real_target(strategy: StrategyKind, tls: bool) -> (String, oneshot::Sender<()>) {
    let mut args = TargetArgs::new(strategy);
    args.tls = tls;
    args.admin_key = Some(ADMIN_KEY.to_owned());
    let config = args.validate().expect("target config");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(config, listener, async {
        let _ = stopped.await;
    }));
    (format!("{}://{addr}", if tls { "https" } else { "http" }), stop)
}

pub(crate) fn config(base_url: String, strategy: StrategyKind, wire: WireSettings, mix: MixWeights) -> EngineConfig {
    EngineConfig {
        base_url,
        strategy,
        schedule: Schedule::Closed { connections: 4 },
        stop: Stop::Duration(Duration::from_millis(1500)),
        warmup: Duration::ZERO,
        users: 8,
        mix,
        timeout: Duration::from_secs(2),
        admin_key: Some(ADMIN_KEY.to_owned()),
        revoked_fraction: 0.1,
        tampered_fraction: 0.1,
        legacy_users: 0,
        api_client_users: 0,
        workers: 1,
        user_prefix: String::new(),
        wire,
    }
}

pub(crate) async fn drive(cfg: EngineConfig) -> EngineOutput {
    let (_tx, rx) = watch::channel(false);
    Engine::new(cfg).await.expect("engine").run(Instant::now(), rx).await.expect("run")
}

pub(crate) const MIXED: MixWeights = MixWeights { login: 1.0, api: 20.0, logout: 2.0, refresh: 0.0, revoke: 1.0 };

/// Every request ends in one class, none of them a failure; revoked and tampered credentials were
/// sent and refused; the connections were opened once and shared by their streams.
fn assert_clean(out: &EngineOutput, connections: u64, what: &str) {
    let rec = &out.recorder;
    let o = rec.outcomes();
    let n = rec.requests();
    assert!(n > 50, "{what}: only {n} requests");
    assert_eq!(o.iter().sum::<u64>(), n, "{what}: every request in exactly one class: {o:?}");
    for bad in [Outcome::UnexpectedAllow, Outcome::UnexpectedDeny, Outcome::Timeout, Outcome::ConnectError] {
        assert_eq!(o[bad as usize], 0, "{what}: {bad:?} in {o:?}");
    }
    assert_eq!(o[Outcome::ProtocolError as usize], 0, "{what}: protocol errors in {o:?}");
    assert!(o[Outcome::ExpectedDeny as usize] > 0, "{what}: injected credentials refused: {o:?}");
    assert!(rec.wire.sent > n * 20 && rec.wire.received > n * 20, "{what}: wire bytes {:?}", rec.wire);
    assert_eq!(rec.wire.connects, connections, "{what}: connections opened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_through_the_real_target() {
    let (url, _stop) = real_target(StrategyKind::JWT_DENYLIST, false).await;
    let wire = WireSettings {
        transport: Transport::H2c,
        hpack: HpackPolicy::Indexed,
        streams_per_connection: 2,
        ..WireSettings::default()
    };
    let out = drive(config(url, StrategyKind::JWT_DENYLIST, wire, MIXED)).await;
    assert_clean(&out, 2, "h2c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_over_tls_through_the_real_target() {
    let (url, _stop) = real_target(StrategyKind::SESSION, true).await;
    let wire = WireSettings {
        transport: Transport::H2Tls,
        hpack: HpackPolicy::NeverIndexed,
        streams_per_connection: 4,
        ..WireSettings::default()
    };
    let out = drive(config(url, StrategyKind::SESSION, wire, MIXED)).await;
    assert_clean(&out, 1, "h2-tls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_over_tls_through_the_real_target() {
    let (url, _stop) = real_target(StrategyKind::JWT_DENYLIST, true).await;
    let wire = WireSettings { transport: Transport::Http1Tls, ..WireSettings::default() };
    let out = drive(config(url, StrategyKind::JWT_DENYLIST, wire, MIXED)).await;
    assert_clean(&out, 4, "http1-tls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_transport_needs_an_https_url() {
    let (url, _stop) = real_target(StrategyKind::NONE, false).await;
    let wire = WireSettings { transport: Transport::H2Tls, ..WireSettings::default() };
    assert!(Engine::new(config(url, StrategyKind::NONE, wire, MIXED)).await.is_err());
}

/// The answer of the raw server below: 38 bytes.
const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";

/// A raw HTTP/1.1 server answering every request head with [`ANSWER`].
async fn fixed_answer_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = s.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        if s.write_all(ANSWER).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_bytes_are_the_requests_and_answers_exactly() {
    let url = fixed_answer_server().await;
    let api_only = MixWeights { login: 0.0, api: 1.0, logout: 0.0, refresh: 0.0, revoke: 0.0 };
    let mut cfg = config(url, StrategyKind::NONE, WireSettings::default(), api_only);
    cfg.stop = Stop::Duration(Duration::from_millis(500));
    let out = drive(cfg).await;
    let rec = &out.recorder;
    let n = rec.requests();
    assert!(n > 50, "{n} requests");
    // `none` api requests: `GET /api/resource HTTP/1.1`, `host`, the empty line; no body.
    assert_eq!(rec.bytes_samples, n);
    assert_eq!(rec.wire.sent, rec.header_bytes_sum, "sent = the request heads written");
    assert_eq!(rec.wire.received, n * ANSWER.len() as u64, "received = the answers read");
    assert_eq!(rec.wire.connects, 4);
}

#[test]
fn wire_scenario_expands_transports_and_policies_without_http1_duplicates() {
    let path = crate::util::repo_root().join("scenarios/wire.toml");
    let args = authbench::plan::RunArgs { scenario: Some(path), ..Default::default() };
    let plan = authbench::plan::build(&args).expect("scenarios/wire.toml plans");
    let labels: Vec<&str> = plan.variants.iter().map(|v| v.label.as_str()).collect();
    // none: 3 transports; session: http1 once + 2 HTTP/2 transports x 2 policies; JWT strategies
    // and hybrid: that times 2 claim sizes.
    let count = |s: &str| plan.variants.iter().filter(|v| v.strategy.name() == s).count();
    assert_eq!((count("none"), count("session"), count("jwt")), (3, 5, 10), "{labels:#?}");
    for v in &plan.variants {
        assert_eq!(v.target.tls, v.wire.transport.tls(), "{}", v.label);
        assert_eq!(v.target.to_args().contains(&"--tls".to_owned()), v.wire.transport.tls(), "{}", v.label);
        let streams = if v.wire.transport.h2() { 4 } else { 1 };
        assert_eq!(v.wire.streams_per_connection, streams, "{}", v.label);
        if !v.wire.transport.h2() {
            assert_eq!(v.wire.hpack, HpackPolicy::Indexed, "{}: HTTP/1.1 measured once", v.label);
        }
    }
}
