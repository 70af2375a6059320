//! The engine on a misbehaving wire: raw TCP servers (not HTTP libraries, which would not misbehave on
//! demand) that close after reading a request, or reset in the middle of an answer. A request that
//! may have reached the server is never sent twice, and a cut-short answer is a protocol error.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use authbench::engine::record::{Op, Outcome};
use authbench::engine::{Engine, EngineConfig, EngineOutput};
use authbench::plan::{MixWeights, RateStage, Schedule, Stop};
use authbench::targets::config::StrategyKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Every request is a `POST /login` (a `none` target's login is a POST with a body).
const LOGIN_ONLY: MixWeights = MixWeights { login: 1.0, api: 0.0, logout: 0.0, refresh: 0.0, revoke: 0.0 };

/// What the raw server does with the n-th request it reads (counted over all connections).
#[derive(Debug, Clone, Copy)]
enum Act {
    /// A complete 200 answer; the connection stays open.
    Answer,
    /// Close the connection without answering.
    Close,
    /// Send the head and part of the body, then reset the connection (`SO_LINGER` 0).
    /// `content_length`: declare the full body length, or leave the body delimited by close.
    ResetMidBody { content_length: bool },
}

/// Requests the raw server read: (connection number, request number).
type Seen = Arc<Mutex<Vec<(usize, usize)>>>;

/// A raw HTTP/1.1 server on a free loopback port acting as `act(request number)` says.
async fn raw_server(act: fn(usize) -> Act) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        let mut conn = 0;
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(serve(s, conn, act, log.clone()));
            conn += 1;
        }
    });
    (url, seen)
}

async fn serve(mut s: TcpStream, conn: usize, act: fn(usize) -> Act, seen: Seen) {
    while read_request(&mut s).await {
        let n = {
            let mut seen = seen.lock().expect("lock");
            let n = seen.len();
            seen.push((conn, n));
            n
        };
        match act(n) {
            Act::Answer => {
                let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
                if s.write_all(answer).await.is_err() {
                    return;
                }
            }
            Act::Close => return,
            Act::ResetMidBody { content_length } => {
                let head: &[u8] = if content_length {
                    b"HTTP/1.1 200 OK\r\ncontent-length: 40\r\n\r\n{\"access_"
                } else {
                    b"HTTP/1.1 200 OK\r\n\r\n{\"access_"
                };
                let _ = s.write_all(head).await;
                // Let the part reach the driver before the reset (ordering, not a timing check: a
                // reset that overtakes it must be a protocol error just the same).
                tokio::time::sleep(Duration::from_millis(100)).await;
                s.set_zero_linger().expect("SO_LINGER 0");
                drop(s);
                return;
            }
        }
    }
}

/// Read one request (head and `content-length` body); false at EOF or on an error.
async fn read_request(s: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4) {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let body_len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().expect("content-length"));
            if buf.len() >= end + body_len {
                assert!(head.starts_with("post /login "), "unexpected request {head:?}");
                return true;
            }
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
    }
}

/// An open-loop run of exactly `requests` logins on one connection, 1 s long.
async fn run(url: String, requests: u32) -> EngineOutput {
    let rate = f64::from(requests);
    let cfg = EngineConfig {
        base_url: url,
        strategy: StrategyKind::NONE,
        schedule: Schedule::Open {
            stages: vec![RateStage { from_rate_per_sec: rate, rate_per_sec: rate, duration: Duration::from_secs(1) }],
            connections: 1,
        },
        stop: Stop::Duration(Duration::from_secs(1)),
        warmup: Duration::ZERO,
        users: 1,
        mix: LOGIN_ONLY,
        timeout: Duration::from_secs(5),
        admin_key: None,
        revoked_fraction: 0.0,
        tampered_fraction: 0.0,
        legacy_users: 0,
        api_client_users: 0,
        workers: 1,
        user_prefix: String::new(),
        wire: Default::default(),
    };
    let (_tx, rx) = watch::channel(false);
    Engine::new(cfg).await.expect("engine").run(Instant::now(), rx).await.expect("run")
}

fn outcome(out: &EngineOutput, o: Outcome) -> u64 {
    out.recorder.ops[Op::Login as usize].outcomes[o as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_read_then_closed_unanswered_is_sent_once_and_a_protocol_error() {
    let (url, seen) = raw_server(|_| Act::Close).await;
    let out = run(url, 1).await;
    assert_eq!(seen.lock().expect("lock").len(), 1, "the server read the POST exactly once");
    assert_eq!(out.recorder.requests(), 1);
    assert_eq!(outcome(&out, Outcome::ProtocolError), 1);
    assert_eq!(out.recorder.errors.get("protocol").copied(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_on_a_reused_connection_closed_unanswered_is_not_resent() {
    // The first POST is answered and the connection kept; the second, on it, is read and dropped.
    let (url, seen) = raw_server(|n| if n == 0 { Act::Answer } else { Act::Close }).await;
    let out = run(url, 2).await;
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen, vec![(0, 0), (0, 1)], "both POSTs on one connection, each read once");
    assert_eq!(out.recorder.requests(), 2);
    assert_eq!(outcome(&out, Outcome::ExpectedAllow), 1);
    assert_eq!(outcome(&out, Outcome::ProtocolError), 1);
    assert_eq!(out.recorder.errors.get("protocol").copied(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_mid_body_is_a_protocol_error_not_an_answer() {
    for content_length in [false, true] {
        let (url, seen) = raw_server(if content_length {
            |_| Act::ResetMidBody { content_length: true }
        } else {
            |_| Act::ResetMidBody { content_length: false }
        })
        .await;
        let out = run(url, 1).await;
        assert_eq!(seen.lock().expect("lock").len(), 1, "content-length {content_length}: sent once");
        assert_eq!(outcome(&out, Outcome::ExpectedAllow), 0, "content-length {content_length}: a cut answer accepted");
        assert_eq!(outcome(&out, Outcome::ProtocolError), 1, "content-length {content_length}");
    }
}
