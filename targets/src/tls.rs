//! TLS for a target (`--tls`, `--tls-cert`, `--tls-key`): the rustls server configuration, on the
//! aws-lc-rs provider the JWT code already uses, offering HTTP/2 and HTTP/1.1 by ALPN, with a
//! certificate given by file or a self-signed one made at start-up; and the handshake counters
//! `/metrics` reports (full and resumed, with the CPU each kind took, measured by [`CpuTimed`]
//! around the accept future), so a run can put TLS cost next to auth cost.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

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

/// TLS handshakes the target completed, by kind (`/metrics`: `authbench_tls_handshakes_total`),
/// and the thread CPU spent inside their accept futures (`authbench_tls_handshake_cpu_seconds_total`).
#[derive(Debug, Default)]
pub struct HandshakeCounters {
    /// Full handshakes (a new session: key exchange and a certificate signature).
    pub full: AtomicU64,
    /// Resumed handshakes (a ticket or cached session: no certificate signature).
    pub resumed: AtomicU64,
    /// Handshakes that failed or timed out.
    pub failed: AtomicU64,
    /// Thread CPU inside the accept future of full handshakes, nanoseconds: the cost of a new session.
    pub full_cpu_ns: AtomicU64,
    /// Thread CPU inside the accept future of resumed handshakes, nanoseconds.
    pub resumed_cpu_ns: AtomicU64,
    /// Thread CPU inside the accept future of failed handshakes, nanoseconds (work that served nobody).
    pub failed_cpu_ns: AtomicU64,
}

impl HandshakeCounters {
    /// Count one completed handshake of `kind` that took `cpu_ns` of thread CPU.
    pub fn completed(&self, kind: Option<rustls::HandshakeKind>, cpu_ns: u64) {
        let (counter, cpu) = match kind {
            Some(rustls::HandshakeKind::Resumed) => (&self.resumed, &self.resumed_cpu_ns),
            _ => (&self.full, &self.full_cpu_ns),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        cpu.fetch_add(cpu_ns, Ordering::Relaxed);
    }

    /// Count one failed (or timed-out) handshake that took `cpu_ns` of thread CPU.
    pub fn failed(&self, cpu_ns: u64) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.failed_cpu_ns.fetch_add(cpu_ns, Ordering::Relaxed);
    }

    /// The Prometheus lines (empty when the target serves no TLS).
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let kinds = [
            ("full", &self.full, &self.full_cpu_ns),
            ("resumed", &self.resumed, &self.resumed_cpu_ns),
            ("failed", &self.failed, &self.failed_cpu_ns),
        ];
        let _ = writeln!(out, "# HELP authbench_tls_handshakes_total TLS handshakes, by kind.");
        let _ = writeln!(out, "# TYPE authbench_tls_handshakes_total counter");
        for (kind, c, _) in kinds {
            let _ = writeln!(out, "authbench_tls_handshakes_total{{kind=\"{kind}\"}} {}", c.load(Ordering::Relaxed));
        }
        let _ = writeln!(
            out,
            "# HELP authbench_tls_handshake_cpu_seconds_total Thread CPU spent inside TLS accept futures, by kind."
        );
        let _ = writeln!(out, "# TYPE authbench_tls_handshake_cpu_seconds_total counter");
        for (kind, _, ns) in kinds {
            let secs = ns.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(out, "authbench_tls_handshake_cpu_seconds_total{{kind=\"{kind}\"}} {secs:.9}");
        }
    }
}

/// This thread's CPU time so far (`CLOCK_THREAD_CPUTIME_ID`), nanoseconds; 0 when the clock
/// cannot be read.
pub fn thread_cpu_ns() -> u64 {
    // SAFETY: clock_gettime only writes into the zeroed timespec we own.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return 0;
    }
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}

/// A future that adds up the thread CPU spent inside its polls: what the wrapped work itself cost,
/// whatever else the thread did between polls. Resolves to the inner output and that CPU in
/// nanoseconds. A poll is measured on the thread that ran it, so the sum stays right when a
/// multi-thread runtime moves the task.
pub struct CpuTimed<F> {
    /// The work being measured.
    inner: F,
    /// Thread CPU spent inside `inner`'s polls so far, nanoseconds.
    spent_ns: u64,
}

impl<F> CpuTimed<F> {
    pub fn new(inner: F) -> Self {
        CpuTimed { inner, spent_ns: 0 }
    }

    /// Thread CPU spent inside the polls so far (also after a timeout dropped the wait), nanoseconds.
    pub fn spent_ns(&self) -> u64 {
        self.spent_ns
    }
}

impl<F: Future + Unpin> Future for CpuTimed<F> {
    type Output = (F::Output, u64);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let before = thread_cpu_ns();
        let polled = Pin::new(&mut self.inner).poll(cx);
        self.spent_ns += thread_cpu_ns().saturating_sub(before);
        polled.map(|out| (out, self.spent_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_timed_counts_the_work_inside_its_polls() {
        let busy = std::future::poll_fn(|_| {
            let start = thread_cpu_ns();
            let mut x = 0u64;
            while thread_cpu_ns().saturating_sub(start) < 2_000_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            Poll::Ready(x)
        });
        let (_, spent_ns) = poll_once(CpuTimed::new(Box::pin(busy)));
        assert!(spent_ns >= 2_000_000, "spent {spent_ns} ns");
    }

    /// Poll a future that is ready on its first poll.
    fn poll_once<F: Future + Unpin>(mut f: F) -> F::Output {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        match Pin::new(&mut f).poll(&mut cx) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("not ready on the first poll"),
        }
    }

    #[test]
    fn counters_render_counts_and_cpu_by_kind() {
        let c = HandshakeCounters::default();
        c.completed(None, 400_000);
        c.completed(Some(rustls::HandshakeKind::Resumed), 100_000);
        c.failed(5_000);
        let mut out = String::new();
        c.render(&mut out);
        assert!(out.contains("authbench_tls_handshakes_total{kind=\"full\"} 1"), "{out}");
        assert!(out.contains("authbench_tls_handshake_cpu_seconds_total{kind=\"full\"} 0.000400000"), "{out}");
        assert!(out.contains("authbench_tls_handshake_cpu_seconds_total{kind=\"resumed\"} 0.000100000"), "{out}");
        assert!(out.contains("authbench_tls_handshake_cpu_seconds_total{kind=\"failed\"} 0.000005000"), "{out}");
    }
}
