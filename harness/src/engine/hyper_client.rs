//! The driver's client for HTTP/2 (h2c and over TLS) and HTTP/1.1 over TLS: hyper's client
//! connections, shared by the request slots of one connection as concurrent streams, with the
//! bytes that cross each socket counted below TLS.
//!
//! The planner writes every request as HTTP/1.1 bytes (one planner for every transport); a slot
//! turns them into an `http::Request` (request line, headers, body), marking the credential header
//! sensitive when the scenario asks for never-indexed HPACK. Requests are never resent: a request
//! whose connection fails is a protocol error, and the next request opens a new connection. With
//! `requests_per_connection`, a connection takes that many requests (over all its streams) and is
//! then let go: it closes when its last answer is read, and the next request opens a new one.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::http::{Answer, Fail};
use super::transport::{Exchange, HpackPolicy, WindowBytes, WireSettings};

/// Bytes through one connection's socket (all its TCP connections over the run), and connects.
#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
    connects: AtomicU64,
}

impl Counters {
    fn read(&self) -> WindowBytes {
        WindowBytes {
            sent: self.sent.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            connects: self.connects.load(Ordering::Relaxed),
        }
    }
}

/// A socket that counts the bytes written to and read from it.
struct Counted<S> {
    inner: S,
    counters: Arc<Counters>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        self.counters.received.fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.counters.sent.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &r {
            self.counters.sent.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A request sender on an open connection.
enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Sender::H1(s) => s.is_closed(),
            Sender::H2(s) => s.is_closed(),
        }
    }
}

/// An open connection's sender and the requests started on it.
struct Open {
    sender: Sender,
    /// Requests started on this connection (all its streams): what `requests_per_connection` caps.
    started: u32,
}

/// One connection (reopened on demand) shared by the slots that multiplex over it.
pub(super) struct SharedConn {
    addr: SocketAddr,
    /// The transport, and how many requests a connection carries before it is let go.
    wire: WireSettings,
    /// TLS transports: the connector (ALPN set for the transport, resuming sessions or not) and the
    /// name sent as SNI.
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    /// The open connection; `None` before the first request, after a failure, and once it has
    /// taken its `requests_per_connection`.
    sender: tokio::sync::Mutex<Option<Open>>,
    counters: Arc<Counters>,
    /// The counters when the measured window started (set by the first slot to get there).
    window_start: std::sync::Mutex<Option<WindowBytes>>,
}

impl SharedConn {
    pub fn new(addr: SocketAddr, wire: WireSettings, host: &str) -> Result<Arc<SharedConn>, String> {
        let transport = wire.transport;
        let tls = if transport.tls() {
            let alpn = if transport.h2() { b"h2".as_slice() } else { b"http/1.1".as_slice() };
            let config =
                super::transport::client_config(alpn, wire.tls_resumption).map_err(|e| format!("TLS client: {e}"))?;
            let name = host.rsplit_once(':').map_or(host, |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
            let name = ServerName::try_from(name.to_owned()).map_err(|e| format!("TLS server name `{name}`: {e}"))?;
            Some((tokio_rustls::TlsConnector::from(config), name))
        } else {
            None
        };
        Ok(Arc::new(SharedConn {
            addr,
            wire,
            tls,
            sender: tokio::sync::Mutex::new(None),
            counters: Arc::new(Counters::default()),
            window_start: std::sync::Mutex::new(None),
        }))
    }

    /// Open a connection (TCP, TLS when configured, the HTTP handshake) and start driving it.
    async fn connect(&self) -> Result<Sender, Fail> {
        let tcp = TcpStream::connect(self.addr).await.map_err(|_| Fail::Connect)?;
        let _ = tcp.set_nodelay(true);
        self.counters.connects.fetch_add(1, Ordering::Relaxed);
        let counted = Counted { inner: tcp, counters: self.counters.clone() };
        match &self.tls {
            None => self.handshake(counted).await,
            Some((connector, name)) => {
                let tls = connector.connect(name.clone(), counted).await.map_err(|_| Fail::Connect)?;
                self.handshake(tls).await
            }
        }
    }

    async fn handshake<I>(&self, io: I) -> Result<Sender, Fail>
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let io = TokioIo::new(io);
        if self.wire.transport.h2() {
            let (sender, conn) = http2::handshake(TokioExecutor::new(), io).await.map_err(|_| Fail::Connect)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(Sender::H2(sender))
        } else {
            let (sender, conn) = http1::handshake(io).await.map_err(|_| Fail::Connect)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(Sender::H1(sender))
        }
    }
}

/// One request slot: one request in flight at a time, on a connection it may share.
pub(super) struct Slot {
    conn: Arc<SharedConn>,
    /// This slot reports its connection's byte counters (one slot per connection does).
    leader: bool,
    /// `http://host:port` or `https://host:port`: the request URI's scheme and authority.
    origin: String,
    hpack: HpackPolicy,
    /// The request as the planner wrote it (HTTP/1.1 bytes).
    pub req: Vec<u8>,
    body: Bytes,
}

impl Slot {
    pub fn new(conn: Arc<SharedConn>, leader: bool, host: &str, hpack: HpackPolicy) -> Slot {
        let origin = format!("{}://{host}", conn.wire.transport.scheme());
        Slot { conn, leader, origin, hpack, req: Vec::with_capacity(512), body: Bytes::new() }
    }

    /// The planner's HTTP/1.1 bytes as a request (`host` becomes the URI authority).
    fn request(&self) -> Result<Request<Full<Bytes>>, Fail> {
        let head_end = self.req.windows(4).position(|w| w == b"\r\n\r\n").ok_or(Fail::Protocol)?;
        let head = std::str::from_utf8(&self.req[..head_end]).map_err(|_| Fail::Protocol)?;
        let mut lines = head.split("\r\n");
        let mut first = lines.next().ok_or(Fail::Protocol)?.split(' ');
        let method = Method::from_bytes(first.next().ok_or(Fail::Protocol)?.as_bytes()).map_err(|_| Fail::Protocol)?;
        let path = first.next().ok_or(Fail::Protocol)?;
        let mut builder = Request::builder().method(method).uri(format!("{}{path}", self.origin));
        for line in lines {
            let (name, value) = line.split_once(": ").ok_or(Fail::Protocol)?;
            if name == "host" {
                continue;
            }
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| Fail::Protocol)?;
            let mut value = HeaderValue::from_str(value).map_err(|_| Fail::Protocol)?;
            if self.hpack == HpackPolicy::NeverIndexed
                && (name == http::header::AUTHORIZATION || name == http::header::COOKIE)
            {
                value.set_sensitive(true);
            }
            builder = builder.header(name, value);
        }
        let body = Bytes::copy_from_slice(&self.req[head_end + 4..]);
        builder.body(Full::new(body)).map_err(|_| Fail::Protocol)
    }

    /// A sender on an open connection, counted as one more request started on it: the shared
    /// one, or a new connection when there is none. HTTP/1.1 takes the sender (the connection is
    /// this slot's alone); so does the request that is a connection's last, which lets it go.
    async fn sender(&self) -> Result<Open, Fail> {
        let mut guard = self.conn.sender.lock().await;
        if guard.as_ref().is_none_or(|o| o.sender.is_closed()) {
            *guard = Some(Open { sender: self.conn.connect().await?, started: 0 });
        }
        let Some(open) = guard.as_mut() else { return Err(Fail::Connect) };
        open.started += 1;
        match &open.sender {
            Sender::H2(s) if !self.conn.wire.recycle_after(open.started) => {
                Ok(Open { sender: Sender::H2(s.clone()), started: open.started })
            }
            _ => guard.take().ok_or(Fail::Connect),
        }
    }

    async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<Answer, Fail> {
        let mut open = self.sender().await?;
        let response = match &mut open.sender {
            Sender::H2(s) => s.send_request(req).await,
            Sender::H1(s) => s.send_request(req).await,
        };
        let response = response.map_err(|_| Fail::Protocol)?;
        let (parts, body) = response.into_parts();
        self.body = body.collect().await.map_err(|_| Fail::Protocol)?.to_bytes();
        if matches!(open.sender, Sender::H1(_)) && !self.conn.wire.recycle_after(open.started) {
            // The answer is whole: the connection can carry this slot's next request.
            let mut guard = self.conn.sender.lock().await;
            if guard.is_none() && !open.sender.is_closed() {
                *guard = Some(open);
            }
        }
        let set_cookie = parts.headers.get(http::header::SET_COOKIE).cloned();
        Ok(Answer { status: parts.status.as_u16(), set_cookie })
    }
}

impl Exchange for Slot {
    fn req(&mut self) -> &mut Vec<u8> {
        &mut self.req
    }

    async fn exchange(&mut self) -> Result<Answer, Fail> {
        self.body = Bytes::new();
        let req = self.request()?;
        self.send(req).await
    }

    fn body(&self) -> &[u8] {
        &self.body
    }

    fn drop_connection(&mut self) {
        // HTTP/2: dropping the timed-out request reset its stream; the connection serves the
        // other slots. HTTP/1.1: the sender went with the request, so the next one reconnects.
    }

    fn mark_window(&mut self) {
        if let Ok(mut start) = self.conn.window_start.lock()
            && start.is_none()
        {
            *start = Some(self.conn.counters.read());
        }
    }

    fn window_bytes(&self) -> Option<WindowBytes> {
        if !self.leader {
            return None;
        }
        let start = (*self.conn.window_start.lock().ok()?)?;
        let now = self.conn.counters.read();
        Some(WindowBytes {
            sent: now.sent - start.sent,
            received: now.received - start.received,
            connects: now.connects - start.connects,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes an h2c client slot writes for `requests` api requests carrying `authorization`,
    /// captured by a listener that never answers (the client does not wait for the server's
    /// SETTINGS before sending).
    async fn captured(hpack: HpackPolicy, requests: usize) -> Vec<u8> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let capture = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut all = Vec::new();
            let mut buf = [0u8; 4096];
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(400);
            while let Ok(Ok(n)) =
                tokio::time::timeout_at(deadline, tokio::io::AsyncReadExt::read(&mut s, &mut buf)).await
            {
                if n == 0 {
                    break;
                }
                all.extend_from_slice(&buf[..n]);
            }
            all
        });
        let wire = WireSettings { transport: super::super::transport::Transport::H2c, ..WireSettings::default() };
        let conn = SharedConn::new(addr, wire, "t").expect("conn");
        let mut slots: Vec<Slot> = (0..requests).map(|i| Slot::new(conn.clone(), i == 0, "t", hpack)).collect();
        let token = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MCJ9.c2lnbmF0dXJlLWJ5dGVzLWhlcmU";
        for slot in &mut slots {
            let mut w = super::super::http::RequestWriter::start(&mut slot.req, "GET", b"/api/resource", b"t");
            w.header(b"authorization", token.as_bytes());
            w.finish(false, b"");
        }
        let sends = slots.iter_mut().map(|s| async move {
            let _ = tokio::time::timeout(std::time::Duration::from_millis(300), s.exchange()).await;
        });
        futures_util::future::join_all(sends).await;
        capture.await.expect("capture")
    }

    fn count(hay: &[u8], needle: &[u8]) -> usize {
        hay.windows(needle.len()).filter(|w| *w == needle).count()
    }

    #[tokio::test]
    async fn never_indexed_policy_reaches_the_wire_and_costs_what_the_default_costs() {
        // `authorization` is static-table name 23: with a 4-bit prefix, 0x0f 0x08 (literal without
        // indexing) or 0x1f 0x08 (never indexed); an indexed representation would start 0x40-0x7f.
        let plain = captured(HpackPolicy::Indexed, 3).await;
        let never = captured(HpackPolicy::NeverIndexed, 3).await;
        assert_eq!(count(&never, &[0x1f, 0x08]), 3, "three never-indexed literals");
        assert_eq!(count(&plain, &[0x1f, 0x08]), 0);
        // The h2 crate never indexes `authorization`: a literal on every request under both policies.
        assert_eq!(count(&plain, &[0x0f, 0x08]), 3, "three literals without indexing");
        assert_eq!(plain.len(), never.len(), "same bytes on the wire under both policies");
    }

    #[test]
    fn the_planners_bytes_become_the_request() {
        let wire = WireSettings { transport: super::super::transport::Transport::H2c, ..WireSettings::default() };
        let conn = SharedConn::new("127.0.0.1:1".parse().expect("addr"), wire, "h:1").expect("conn");
        let mut slot = Slot::new(conn, true, "h:1", HpackPolicy::NeverIndexed);
        let mut w = super::super::http::RequestWriter::start(&mut slot.req, "POST", b"/logout", b"h:1");
        w.header(b"cookie", b"sid=abc");
        w.finish(true, b"{}");
        let req = slot.request().expect("request");
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri().to_string(), "http://h:1/logout");
        assert!(req.headers()["cookie"].is_sensitive());
        assert!(req.headers().get("host").is_none(), "the host travels as :authority");
        assert_eq!(req.headers()["content-length"], "2");
    }
}
