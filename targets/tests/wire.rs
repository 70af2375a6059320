//! HTTP/2 and TLS on the target: h2c by prior knowledge beside HTTP/1.1 on the clear-text port, TLS
//! with a certificate given by file and ALPN choosing HTTP/2 or HTTP/1.1, the same answers on every
//! protocol, handshake counters in `/metrics`, and bad certificate files refused at start-up.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};

use crate::util::{TestTarget, args, client};
use authbench_targets::StrategyKind;

#[tokio::test]
async fn clear_text_port_serves_http1_and_h2c_alike() {
    let t = TestTarget::start(args(StrategyKind::JWT)).await;
    let h1 = client();
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    for (c, version) in [(&h1, reqwest::Version::HTTP_11), (&h2, reqwest::Version::HTTP_2)] {
        let r = c.get(t.url("/health")).send().await.unwrap();
        assert_eq!((r.version(), r.status().as_u16()), (version, 200));
        let r = c.get(t.url("/api/resource")).header("authorization", "Bearer not.a.token").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "bad token refused on {version:?}");
        assert!(r.headers().contains_key("www-authenticate"));
        let login: serde_json::Value = c
            .post(t.url("/login"))
            .json(&serde_json::json!({"user": "alice"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["access_token"].as_str().unwrap();
        let r = c.get(t.url("/api/resource")).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "valid token accepted on {version:?}");
    }
    t.stop().await;
}

/// A certificate for `localhost` made for the test, written as PEM files.
fn cert_files(dir: &std::path::Path) -> (CertificateDer<'static>, std::path::PathBuf, std::path::PathBuf) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (made.cert.der().clone(), cert, key)
}

/// A TLS connection to `addr` trusting only `ca`, offering `alpn`; returns the stream and the
/// protocol the server chose.
async fn tls_connect(
    addr: std::net::SocketAddr,
    ca: &CertificateDer<'static>,
    alpn: &[u8],
) -> (tokio_rustls::client::TlsStream<tokio::net::TcpStream>, Option<Vec<u8>>) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap();
    let chosen = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    (tls, chosen)
}

fn get(path: &str) -> http::Request<Empty<Bytes>> {
    http::Request::get(format!("https://localhost{path}")).body(Empty::new()).unwrap()
}

#[tokio::test]
async fn tls_with_a_certificate_file_serves_h2_and_http1_by_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = cert_files(dir.path());
    let mut a = args(StrategyKind::SESSION);
    a.tls_cert = Some(cert);
    a.tls_key = Some(key);
    let t = TestTarget::start(a).await;

    let (tls, chosen) = tls_connect(t.addr, &ca, b"h2").await;
    assert_eq!(chosen.as_deref(), Some(&b"h2"[..]));
    let (mut h2, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    let r = h2.send_request(get("/api/resource")).await.unwrap();
    assert_eq!((r.version(), r.status().as_u16()), (http::Version::HTTP_2, 401), "no session over h2+TLS");

    let (tls, chosen) = tls_connect(t.addr, &ca, b"http/1.1").await;
    assert_eq!(chosen.as_deref(), Some(&b"http/1.1"[..]));
    let (mut h1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    let r = h1.send_request(get("/health")).await.unwrap();
    assert_eq!((r.version(), r.status().as_u16()), (http::Version::HTTP_11, 200));
    let metrics = h1.send_request(get("/metrics")).await.unwrap().into_body().collect().await.unwrap().to_bytes();
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(metrics.contains("authbench_tls_handshakes_total{kind=\"full\"} 2"), "{metrics}");

    // Clear text on the TLS port is not served.
    let raw = crate::util::raw(t.addr, b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert!(!raw.contains("200"), "{raw}");
    t.stop().await;
}

#[test]
fn bad_certificate_files_are_refused_naming_the_flag_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = cert_files(dir.path());
    let mut a = args(StrategyKind::SESSION);
    a.tls_cert = Some(dir.path().join("missing.pem"));
    a.tls_key = Some(key.clone());
    let e = a.validate().unwrap_err().to_string();
    assert!(e.contains("--tls-cert") && e.contains("missing.pem"), "{e}");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a PEM file").unwrap();
    a.tls_cert = Some(junk);
    let e = a.validate().unwrap_err().to_string();
    assert!(e.contains("--tls-cert") && e.contains("expected PEM"), "{e}");
    a.tls_cert = Some(cert);
    a.tls_key = Some(dir.path().join("junk.pem"));
    let e = a.validate().unwrap_err().to_string();
    assert!(e.contains("--tls-key") && e.contains("expected PEM"), "{e}");
}
