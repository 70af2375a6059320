//! How the driver's requests travel (`[traffic] transport`, `hpack`, `streams_per_connection`,
//! `requests_per_connection`, `tls_resumption`): HTTP/1.1 or HTTP/2, in clear text or over TLS, how
//! the credential header is compressed under HTTP/2, how many requests a connection carries before
//! the driver closes it, and the TLS client configuration (resuming sessions or not). Also the [`Exchange`] seam the connection loop drives,
//! so each transport's client is its own type and the HTTP/1.1 one stays monomorphic.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::http::{Answer, Fail};

/// The protocol stack between the driver and a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// HTTP/1.1 in clear text, the engine's own codec (as wrk).
    #[default]
    Http1,
    /// HTTP/2 in clear text with prior knowledge (h2c), streams multiplexed over the connections.
    H2c,
    /// HTTP/2 over TLS (ALPN `h2`), as browsers and most API clients speak it.
    H2Tls,
    /// HTTP/1.1 over TLS (ALPN `http/1.1`).
    Http1Tls,
}

impl Transport {
    pub const ALL: [Transport; 4] = [Transport::Http1, Transport::H2c, Transport::H2Tls, Transport::Http1Tls];

    /// The scenario spelling.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Http1 => "http1",
            Transport::H2c => "h2c",
            Transport::H2Tls => "h2-tls",
            Transport::Http1Tls => "http1-tls",
        }
    }

    pub fn tls(self) -> bool {
        matches!(self, Transport::H2Tls | Transport::Http1Tls)
    }

    pub fn h2(self) -> bool {
        matches!(self, Transport::H2c | Transport::H2Tls)
    }

    /// The target URL scheme this transport needs.
    pub fn scheme(self) -> &'static str {
        if self.tls() { "https" } else { "http" }
    }
}

/// Whether the driver's HTTP/2 client marks the credential header (`authorization` or `cookie`)
/// sensitive for HPACK. A reader maps it to their client by asking: does my HTTP/2 library send
/// this header as a never-indexed literal (`never-indexed`), or leave the choice to its encoder
/// (`indexed`)?
///
/// The driver's HTTP/2 client is hyper's, whose encoder (the h2 crate) never puts an
/// `authorization` or `cookie` value in the header table whatever the flag (it sends them as
/// literals without indexing; its source says the rule is borrowed from nghttp2): under this
/// driver the two policies differ only in one bit of the representation, not in size. What an
/// encoder that does index credentials would cost is not measured (see docs/design.md, "The wire").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum HpackPolicy {
    /// No sensitive flag: the encoder may index the header (the default of every HTTP/2 library).
    #[default]
    Indexed,
    /// `HeaderValue::set_sensitive(true)`: a never-indexed literal on every request (RFC 7541
    /// 6.2.3), which no intermediary may index either (reqwest does this for basic and bearer auth
    /// it sets itself).
    NeverIndexed,
}

impl HpackPolicy {
    pub fn name(self) -> &'static str {
        match self {
            HpackPolicy::Indexed => "indexed",
            HpackPolicy::NeverIndexed => "never-indexed",
        }
    }
}

/// The wire settings of one variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireSettings {
    pub transport: Transport,
    /// HTTP/2 only: how the credential header is compressed.
    pub hpack: HpackPolicy,
    /// HTTP/2 only: how many of the variant's request slots (`connections`) share one TCP
    /// connection as concurrent streams; HTTP/1.1: always 1.
    pub streams_per_connection: usize,
    /// Requests a connection carries before the driver closes it and opens a new one (TCP connect,
    /// and the TLS handshake with TLS), as short-lived clients do; 0 keeps connections alive for
    /// the whole run. Under HTTP/2, the requests of all the connection's streams together.
    pub requests_per_connection: u32,
    /// TLS: a new connection resumes the session of the slot's last one (a ticket, as browsers
    /// do) instead of a full handshake. Ignored in clear text.
    pub tls_resumption: bool,
}

impl WireSettings {
    /// Whether a connection is closed after `served` requests.
    pub fn recycle_after(&self, served: u32) -> bool {
        self.requests_per_connection > 0 && served >= self.requests_per_connection
    }
}

impl Default for WireSettings {
    fn default() -> Self {
        WireSettings {
            transport: Transport::Http1,
            hpack: HpackPolicy::Indexed,
            streams_per_connection: 1,
            requests_per_connection: 0,
            tls_resumption: true,
        }
    }
}

/// What the connection loop needs from a transport's client: one request slot with one request in
/// flight at a time, its request written by the planner as HTTP/1.1 bytes into [`Exchange::req`].
pub(super) trait Exchange {
    /// The request to send next, as HTTP/1.1 bytes (written by the planner).
    fn req(&mut self) -> &mut Vec<u8>;
    /// Send the request and read the whole answer.
    async fn exchange(&mut self) -> Result<Answer, Fail>;
    /// Body of the last answer.
    fn body(&self) -> &[u8];
    /// After a timeout: give up on the request (and on an HTTP/1.1 connection).
    fn drop_connection(&mut self);
    /// The measured window starts with this slot's next request: snapshot the byte counters.
    fn mark_window(&mut self);
    /// Bytes written to and read from the socket since [`Exchange::mark_window`] (after TLS), when
    /// this slot reports its connection's counters (one slot per connection does).
    fn window_bytes(&self) -> Option<WindowBytes>;
}

/// Bytes that crossed one connection's socket in the measured window, and the connections opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowBytes {
    pub sent: u64,
    pub received: u64,
    /// TCP (and TLS) connections opened in the window.
    pub connects: u64,
}

/// The driver's TLS client configuration, offering `alpn`; with `resumption`, sessions are kept
/// (rustls's in-memory store: TLS 1.3 tickets, TLS 1.2 ids and tickets) and offered on the next
/// connection, else every connection makes a full handshake.
///
/// The certificate is not verified: the targets present a self-signed certificate made at start-up
/// and the driver measures cost, not trust. The handshake signatures are still checked, so the
/// target does all the work a verifying client makes it do.
pub fn client_config(alpn: &[u8], resumption: bool) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(AnyCertificate(provider.clone()));
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    if !resumption {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Ok(Arc::new(config))
}

/// Accepts any server certificate, verifies the handshake signatures made with it.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
