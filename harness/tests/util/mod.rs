//! Shared test helpers: the built `authbench` binary, tiny HTTP servers written for one test.

#![allow(dead_code)]

use std::path::PathBuf;

/// The `authbench` binary cargo built for these tests.
pub fn authbench_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_authbench"))
}

/// Repository root (the workspace).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// What a test server answers: status, JSON body, and how long to sleep first.
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn ok(body: &str) -> Reply {
        Reply { status: 200, body: body.to_owned(), delay: Duration::ZERO }
    }
}

/// Serve `handler(method, path, request number)` on a free loopback port; returns `http://IP:PORT`.
/// The server lives as long as the test's runtime.
pub async fn spawn_server<F>(handler: F) -> String
where
    F: Fn(&str, &str, u64) -> Reply + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handler = Arc::new(handler);
    let counter = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let handler = handler.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let handler = handler.clone();
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    async move {
                        let reply = handler(req.method().as_str(), req.uri().path(), n);
                        if !reply.delay.is_zero() {
                            tokio::time::sleep(reply.delay).await;
                        }
                        let mut resp = Response::new(Full::new(Bytes::from(reply.body)));
                        *resp.status_mut() = hyper::StatusCode::from_u16(reply.status).expect("status");
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    format!("http://{addr}")
}
