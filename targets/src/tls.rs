//! TLS for a target (`--tls`, `--tls-cert`, `--tls-key`): the rustls server configuration, on the
//! aws-lc-rs provider the JWT code already uses, offering HTTP/2 and HTTP/1.1 by ALPN, with a
//! certificate given by file or a self-signed one made at start-up; and the handshake counters
//! `/metrics` reports (full and resumed), so a run can put TLS cost next to auth cost.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// ALPN identifiers offered, in the server's order of preference.
pub const ALPN_H2: &[u8] = b"h2";
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {flag} {path}: {source}")]
    Read { flag: &'static str, path: String, source: std::io::Error },
    #[error("{flag} {path}: expected PEM ({what}), found none usable")]
    Pem { flag: &'static str, path: String, what: &'static str },
    #[error("generating the self-signed certificate: {0}")]
    Generate(String),
    #[error("the TLS certificate and key do not make a server configuration: {0}")]
    Config(String),
}

/// Where the certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// Made at start-up for `localhost`, `127.0.0.1` and `::1`; a client cannot verify it and the
    /// driver does not try (see docs/design.md, "The wire").
    SelfSigned,
    /// PEM files: the certificate chain and its PKCS#8, PKCS#1 or SEC1 private key.
    Files { cert: std::path::PathBuf, key: std::path::PathBuf },
}

/// The rustls server configuration for `source`: TLS 1.3 and 1.2, ALPN `h2` then `http/1.1`,
/// session resumption by tickets and by the in-memory session cache (rustls defaults).
pub fn server_config(source: &CertSource) -> Result<Arc<ServerConfig>, TlsError> {
    let (certs, key) = match source {
        CertSource::SelfSigned => self_signed()?,
        CertSource::Files { cert, key } => (read_certs(cert)?, read_key(key)?),
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()];
    // Stateless resumption as browsers use it (TLS 1.3 tickets); the session cache stays on too.
    config.ticketer =
        rustls::crypto::aws_lc_rs::Ticketer::new().map_err(|e| TlsError::Config(format!("ticketer: {e}")))?;
    Ok(Arc::new(config))
}

fn self_signed() -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    let made = rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    let key =
        PrivateKeyDer::try_from(made.signing_key.serialize_der()).map_err(|e| TlsError::Generate(e.to_owned()))?;
    Ok((vec![made.cert.der().clone()], key))
}

fn read_file(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { flag, path: path.display().to_string(), source })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file("--tls-cert", path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok).collect();
    if certs.is_empty() {
        return Err(TlsError::Pem { flag: "--tls-cert", path: path.display().to_string(), what: "CERTIFICATE" });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_file("--tls-key", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| TlsError::Pem {
        flag: "--tls-key",
        path: path.display().to_string(),
        what: "PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY",
    })
}

/// TLS handshakes the target completed, by kind (`/metrics`: `authbench_tls_handshakes_total`).
#[derive(Debug, Default)]
pub struct HandshakeCounters {
    /// Full handshakes (a new session: key exchange and a certificate signature).
    pub full: AtomicU64,
    /// Resumed handshakes (a ticket or cached session: no certificate signature).
    pub resumed: AtomicU64,
    /// Handshakes that failed or timed out.
    pub failed: AtomicU64,
}

impl HandshakeCounters {
    /// Count one completed handshake of `kind`.
    pub fn completed(&self, kind: Option<rustls::HandshakeKind>) {
        let counter = match kind {
            Some(rustls::HandshakeKind::Resumed) => &self.resumed,
            _ => &self.full,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus lines (empty when the target serves no TLS).
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(out, "# TYPE authbench_tls_handshakes_total counter");
        for (kind, c) in [("full", &self.full), ("resumed", &self.resumed), ("failed", &self.failed)] {
            let _ = writeln!(out, "authbench_tls_handshakes_total{{kind=\"{kind}\"}} {}", c.load(Ordering::Relaxed));
        }
    }
}
