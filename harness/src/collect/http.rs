//! A tiny HTTP/1.1 client for probes and setup calls: one fresh connection per request (TLS for an
//! `https://` target), bounded time, whole body read into memory.
//!
//! Not the load generator: the traffic engine keeps its own connections. This one favours being
//! simple and self-contained (hyper's low-level `client::conn::http1` over a tokio `TcpStream`, no
//! connection pool) over speed, which is right for a few hundred requests at most.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
pub use http::{HeaderMap, Method, header};
use http::{Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Upper bound on one request: connect, send, and read the whole answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// `host:port` of an `http://host:port[/]` (or `https://`) base URL.
pub fn authority(base_url: &str) -> anyhow::Result<String> {
    let uri: Uri = base_url.parse().with_context(|| format!("`{base_url}` is not a URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        bail!("`{base_url}`: only http:// and https:// targets are supported");
    }
    let auth = uri.authority().ok_or_else(|| anyhow!("`{base_url}` has no host"))?;
    let port = auth.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
    Ok(format!("{}:{port}", auth.host()))
}

/// Send one request to `base_url` + `path` and read the whole answer, within [`REQUEST_TIMEOUT`].
///
/// `headers` are added as given (`host` is set from the URL; `content-length` from the body). A
/// body, when present, is sent with `content-type: application/json` unless a header says
/// otherwise. Returns the status code, the response headers and the body.
pub async fn request(
    base_url: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Bytes>,
) -> anyhow::Result<(u16, HeaderMap, Bytes)> {
    let what = format!("{method} {base_url}{path}");
    tokio::time::timeout(REQUEST_TIMEOUT, request_inner(base_url, method, path, headers, body))
        .await
        .map_err(|_| anyhow!("{what}: no answer within {} s", REQUEST_TIMEOUT.as_secs()))?
        .with_context(|| what)
}

async fn request_inner(
    base_url: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Bytes>,
) -> anyhow::Result<(u16, HeaderMap, Bytes)> {
    let authority = authority(base_url)?;
    let stream = TcpStream::connect(&authority).await.with_context(|| format!("connecting to {authority}"))?;
    let _ = stream.set_nodelay(true);
    let mut sender = if base_url.starts_with("https://") {
        // A target started with --tls: its certificate is self-signed (see engine::transport).
        let config = crate::engine::transport::client_config(b"http/1.1", false).context("TLS client")?;
        let host = authority.rsplit_once(':').map_or(authority.as_str(), |(h, _)| h);
        let name = rustls::pki_types::ServerName::try_from(host.to_owned()).context("TLS server name")?;
        let tls = tokio_rustls::TlsConnector::from(config).connect(name, stream).await.context("TLS handshake")?;
        handshake(tls).await?
    } else {
        handshake(stream).await?
    };

    let mut builder = Request::builder().method(method).uri(path).header(header::HOST, &authority);
    let has_content_type = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    if body.is_some() && !has_content_type {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    let req = builder.body(Full::new(body.unwrap_or_default())).context("building the request")?;
    let resp = sender.send_request(req).await?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.context("reading the response body")?.to_bytes();
    Ok((parts.status.as_u16(), parts.headers, body))
}

/// HTTP/1.1 on `io`, the connection driven by a task of its own until the sender drops.
async fn handshake<I>(io: I) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// `GET base_url + path`.
pub async fn get(base_url: &str, path: &str, headers: &[(&str, &str)]) -> anyhow::Result<(u16, HeaderMap, Bytes)> {
    request(base_url, Method::GET, path, headers, None).await
}

/// `POST base_url + path` with a JSON body.
pub async fn post_json(
    base_url: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> anyhow::Result<(u16, HeaderMap, Bytes)> {
    request(base_url, Method::POST, path, headers, Some(Bytes::from(body.to_string()))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_from_base_url() {
        assert_eq!(authority("http://127.0.0.1:8080").unwrap(), "127.0.0.1:8080");
        assert_eq!(authority("http://localhost:9/").unwrap(), "localhost:9");
        assert_eq!(authority("http://example.test").unwrap(), "example.test:80");
        assert_eq!(authority("https://x:1").unwrap(), "x:1", "a --tls target");
        assert_eq!(authority("https://x").unwrap(), "x:443");
        assert!(authority("ftp://x:1").is_err());
        assert!(authority("not a url").is_err());
    }
}
