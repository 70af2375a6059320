//! A small TCP delay proxy: puts the store at a chosen network distance from the targets.
//!
//! [`DelayProxy`] listens on a free loopback port and forwards every connection to `upstream`, both
//! ways, holding each chunk it reads for `delay/2 ± jitter/2` before writing it on. A request and
//! its reply each cross it once, so one round trip gains about `delay` (± `jitter`).
//!
//! Byte order is never changed: each direction of each connection is one FIFO queue of
//! `(chunk, release time)` drained by one writer, and a chunk's release time is never earlier than
//! the one before it (jitter can stretch gaps between chunks, never swap them). The queue is
//! bounded, so a fast sender is slowed down (TCP back-pressure) rather than buffered without limit.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// Longest wait for the upstream connection of one accepted client.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes read per chunk.
const CHUNK_BYTES: usize = 16 * 1024;
/// Chunks in flight per direction before the reader stops reading (back-pressure).
const QUEUE_CHUNKS: usize = 256;
/// How close to a chunk's release time tokio's (1 ms, rounding-up) timer may take us.
const COARSE_MARGIN: Duration = Duration::from_millis(2);

/// A running delay proxy. Stops (closing every proxied connection) on [`DelayProxy::stop`] or drop.
#[derive(Debug)]
pub struct DelayProxy {
    /// Where clients connect instead of `upstream`.
    addr: SocketAddr,
    /// The accept loop; it owns every connection's tasks, so aborting it ends them all.
    task: Option<JoinHandle<()>>,
}

/// The delay of one direction: each chunk waits `one_way ± jitter_half` (uniform), at least 0.
#[derive(Debug, Clone, Copy)]
struct OneWay {
    one_way: Duration,
    jitter_half: Duration,
}

impl OneWay {
    fn sample(self) -> Duration {
        if self.jitter_half.is_zero() {
            return self.one_way;
        }
        let spread = self.jitter_half.as_secs_f64();
        let offset = (fastrand::f64() * 2.0 - 1.0) * spread;
        Duration::from_secs_f64((self.one_way.as_secs_f64() + offset).max(0.0))
    }
}

impl DelayProxy {
    /// Listen on `127.0.0.1:0` and forward to `upstream`, adding `delay` (± `jitter`) per round trip.
    pub async fn start(upstream: SocketAddr, delay: Duration, jitter: Duration) -> anyhow::Result<DelayProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the delay proxy")?;
        let addr = listener.local_addr()?;
        let dir = OneWay { one_way: delay / 2, jitter_half: jitter / 2 };
        let task = tokio::spawn(accept_loop(listener, upstream, dir));
        tracing::debug!(%addr, %upstream, delay_ms = delay.as_millis(), jitter_ms = jitter.as_millis(), "delay proxy started");
        Ok(DelayProxy { addr, task: Some(task) })
    }

    /// The address to connect to instead of `upstream`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting and close every proxied connection.
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, dir: OneWay) {
    // Dropped (aborting every connection) when this task is aborted.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    connections.spawn(proxy_connection(client, upstream, dir));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "delay proxy: accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            // Reap finished connections so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn proxy_connection(client: TcpStream, upstream: SocketAddr, dir: OneWay) {
    let server = match tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(upstream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%upstream, error = %e, "delay proxy: upstream refused");
            return;
        }
        Err(_) => {
            tracing::debug!(%upstream, "delay proxy: upstream connect timed out");
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // Either direction ending (EOF forwarded, or an error) leaves the other to finish by itself;
    // both must end for the connection to be done.
    tokio::join!(pipe(client_read, server_write, dir), pipe(server_read, client_write, dir));
}

/// One direction: read chunks, stamp each with its release time, write them in order when due.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, dir: OneWay) {
    // `None` marks end of stream, released like data so the FIN is delayed too.
    let (tx, mut rx) = mpsc::channel::<(Option<Vec<u8>>, Instant)>(QUEUE_CHUNKS);
    let reader = async move {
        let mut last_release = Instant::now();
        loop {
            let mut buf = vec![0u8; CHUNK_BYTES];
            let read = from.read(&mut buf).await;
            // Never earlier than the previous chunk: jitter must not reorder bytes.
            let release = (Instant::now() + dir.sample()).max(last_release);
            last_release = release;
            match read {
                Ok(0) | Err(_) => {
                    let _ = tx.send((None, release)).await;
                    return;
                }
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send((Some(buf), release)).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((chunk, release)) = rx.recv().await {
            wait_until(release).await;
            match chunk {
                Some(bytes) => {
                    if to.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                None => {
                    let _ = to.shutdown().await;
                    return;
                }
            }
        }
    };
    tokio::join!(reader, writer);
}

/// Wait until `release`, precisely. tokio's timer wheel has 1 ms resolution and rounds every sleep
/// up, which would add up to 1 ms per direction (~2 ms per round trip, even at delay 0). So a chunk
/// already due goes straight through, tokio sleeps only to within [`COARSE_MARGIN`] of the deadline,
/// and the rest is an OS sleep (tens of µs precision) on the blocking pool: no spinning on the
/// driver's CPU. At most one such sleep per direction and connection is in flight.
async fn wait_until(release: Instant) {
    let now = Instant::now();
    if release <= now {
        return;
    }
    if let Some(coarse) = release.checked_sub(COARSE_MARGIN)
        && coarse > now
    {
        tokio::time::sleep_until(coarse).await;
    }
    let rest = release.saturating_duration_since(Instant::now());
    if !rest.is_zero() {
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
    }
}
