//! The TCP delay proxy against real sockets: the latency it adds to a redis-server round trip is
//! what was configured (measured as a difference of medians, so machine speed cancels out), jitter
//! never reorders bytes, and stopping it closes everything.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use authbench::environment::DelayProxy;
use authbench::environment::RedisProcess;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bound on any single exchange in these tests.
const IO_BOUND: Duration = Duration::from_secs(5);

/// One PING round trip on an open connection.
async fn ping_rtt(conn: &mut TcpStream) -> Duration {
    let start = Instant::now();
    conn.write_all(b"PING\r\n").await.unwrap();
    let mut buf = [0u8; 7];
    tokio::time::timeout(IO_BOUND, conn.read_exact(&mut buf)).await.expect("PONG within bound").unwrap();
    assert_eq!(&buf, b"+PONG\r\n");
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adds_the_configured_round_trip_latency() {
    const DELAY: Duration = Duration::from_millis(20);
    let redis = RedisProcess::start().await.unwrap();
    let upstream = SocketAddr::from(([127, 0, 0, 1], redis.port));
    let proxy = DelayProxy::start(upstream, DELAY, Duration::ZERO).await.unwrap();
    let mut direct = TcpStream::connect(upstream).await.unwrap();
    let mut proxied = TcpStream::connect(proxy.addr()).await.unwrap();
    direct.set_nodelay(true).unwrap();
    proxied.set_nodelay(true).unwrap();
    // Warm up both paths, then interleave so both see the same machine conditions.
    ping_rtt(&mut direct).await;
    ping_rtt(&mut proxied).await;
    let (mut d, mut p) = (Vec::new(), Vec::new());
    for _ in 0..31 {
        d.push(ping_rtt(&mut direct).await);
        p.push(ping_rtt(&mut proxied).await);
    }
    let (md, mp) = (median(d), median(p));
    let added = mp.saturating_sub(md);
    // Never less than configured (timers only fire late); generous slack above for a loaded box.
    assert!(added >= DELAY.mul_f64(0.8), "added {added:?} (direct {md:?}, proxied {mp:?})");
    assert!(added <= DELAY + Duration::from_millis(30), "added {added:?} (direct {md:?}, proxied {mp:?})");
    proxy.stop().await;
}

/// An echo server on a free port; lives as long as the test's runtime.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jitter_never_reorders_bytes() {
    let upstream = echo_server().await;
    let proxy = DelayProxy::start(upstream, Duration::from_millis(10), Duration::from_millis(20)).await.unwrap();
    let conn = TcpStream::connect(proxy.addr()).await.unwrap();
    conn.set_nodelay(true).unwrap();
    let (mut r, mut w) = conn.into_split();
    let sent: Vec<u8> = (0..2000u32).flat_map(|i| format!("{i:05},").into_bytes()).collect();
    let to_send = sent.clone();
    let writer = tokio::spawn(async move {
        // Many small writes, so there are many chunks for jitter to (not) reorder.
        for piece in to_send.chunks(37) {
            w.write_all(piece).await.unwrap();
            tokio::task::yield_now().await;
        }
        w.shutdown().await.unwrap();
    });
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), r.read_to_end(&mut got)).await.expect("echo within bound").unwrap();
    writer.await.unwrap();
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "bytes reordered or altered by the proxy");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_closes_the_listener_and_connections() {
    let upstream = echo_server().await;
    let proxy = DelayProxy::start(upstream, Duration::from_millis(2), Duration::ZERO).await.unwrap();
    let addr = proxy.addr();
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"hi").await.unwrap();
    let mut buf = [0u8; 2];
    tokio::time::timeout(IO_BOUND, conn.read_exact(&mut buf)).await.unwrap().unwrap();
    assert_eq!(&buf, b"hi");
    proxy.stop().await;
    let mut rest = Vec::new();
    let n = tokio::time::timeout(IO_BOUND, conn.read_to_end(&mut rest)).await.expect("closed within bound");
    assert!(n.map_or(true, |n| n == 0), "the proxied connection must be closed");
    assert!(TcpStream::connect(addr).await.is_err(), "nothing listens after stop");
}
