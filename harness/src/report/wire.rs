//! The "bytes on the wire" section: per variant, what crossed the driver's sockets per request in
//! each direction on its transport, beside the uncompressed header bytes, the bandwidth at the run's
//! rate, and whether a heavier credential's extra bytes survive HTTP/2 header compression (the
//! articles' "an extra kilobyte per request adds up").

use std::collections::BTreeMap;

use crate::figures;
use crate::report::fmt;
use crate::results::{Report, StrategyResult};

/// Column headings of the table.
pub const HEADERS: [&str; 8] = [
    "variant",
    "transport",
    "HPACK policy",
    "credential",
    "request head (uncompressed)",
    "sent / req",
    "received / req",
    "both ways at the run's rate",
];

/// How the figures were measured, printed under the table.
pub const METHOD: &str = "Sent and received: bytes the driver wrote to and read from its sockets in the measured \
     window (below TLS, so TLS records, HTTP/2 frames and compressed headers count), divided by the window's \
     requests (every operation of the mix). Credential and request head: the api requests' credential and whole \
     head as HTTP/1.1 text, before any compression. The rate is the run's target rate in open loop, else its \
     achieved throughput. HTTP/2 here is hyper's client, whose HPACK encoder (the h2 crate) never indexes an \
     `authorization` or `cookie` value: the credential is sent in full (Huffman-coded) on every request under \
     both policies, which differ only in the never-indexed bit.";

/// Whether the section applies: some variant ran on a transport other than clear HTTP/1.1.
pub fn applies(report: &Report) -> bool {
    report.strategies.iter().any(|s| s.wire.as_ref().is_some_and(|w| w.transport != "http1"))
}

/// One row per variant that has wire figures.
pub fn rows(report: &Report) -> Vec<[String; 8]> {
    report
        .strategies
        .iter()
        .filter_map(|s| {
            let w = s.wire.as_ref()?;
            let rate = s.schedule.target_rate_per_sec.unwrap_or(s.throughput_rps);
            let both = (w.sent_bytes_per_request + w.received_bytes_per_request) * rate;
            Some([
                s.name.clone(),
                w.transport.clone(),
                w.hpack.clone().unwrap_or_else(|| "n/a (HTTP/1.1)".to_owned()),
                figures::CREDENTIAL_BYTES.format(s, ""),
                figures::REQUEST_HEADER_BYTES.format(s, ""),
                figures::WIRE_SENT_BYTES_PER_REQUEST.format(s, ""),
                figures::WIRE_RECEIVED_BYTES_PER_REQUEST.format(s, ""),
                format!("{} at {} req/s", bandwidth(both), fmt::num(rate)),
            ])
        })
        .collect()
}

/// `1.2 MB/s` (decimal units, as links are sold).
fn bandwidth(bytes_per_sec: f64) -> String {
    match bytes_per_sec {
        b if b >= 1e6 => format!("{:.2} MB/s", b / 1e6),
        b if b >= 1e3 => format!("{:.1} kB/s", b / 1e3),
        b => format!("{b:.0} B/s"),
    }
}

/// The variant's label without its transport and HPACK coordinates: what it is besides the wire.
fn base_label(s: &StrategyResult) -> String {
    s.name.split(' ').filter(|p| !p.starts_with("transport=") && !p.starts_with("hpack=")).collect::<Vec<_>>().join(" ")
}

/// Per transport and policy: each variant's extra bytes sent per request over the lightest
/// credential-carrying variant on the same wire.
fn extras(report: &Report) -> BTreeMap<String, Vec<(String, f64)>> {
    let mut groups: BTreeMap<String, Vec<(String, f64, f64)>> = BTreeMap::new();
    for s in report.strategies.iter().filter(|s| s.credential_bytes > 0.0) {
        let Some(w) = &s.wire else { continue };
        let key = format!("{}{}", w.transport, w.hpack.as_deref().map(|h| format!(" {h}")).unwrap_or_default());
        groups.entry(key).or_default().push((base_label(s), w.sent_bytes_per_request, s.credential_bytes));
    }
    groups
        .into_iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(k, v)| {
            let lightest = v.iter().map(|x| x.1).fold(f64::INFINITY, f64::min);
            (k, v.into_iter().map(|(label, sent, _)| (label, sent - lightest)).collect())
        })
        .collect()
}

/// The sentences on the bandwidth claim: for the heaviest credential, its extra bytes per request
/// on clear HTTP/1.1 and what HTTP/2 keeps of them. Empty when the run cannot tell (no HTTP/1.1
/// and HTTP/2 pair, or a single credential-carrying variant per wire).
pub fn verdict(report: &Report) -> Vec<String> {
    let extras = extras(report);
    let Some(h1) = extras.get("http1") else { return Vec::new() };
    let Some((heaviest, h1_extra)) = h1.iter().max_by(|a, b| a.1.total_cmp(&b.1)).cloned() else {
        return Vec::new();
    };
    if h1_extra < 1.0 {
        return Vec::new();
    }
    let mut out = vec![format!(
        "On clear HTTP/1.1, `{heaviest}` sends {} more per request than the lightest credential.",
        fmt::opt(Some(h1_extra), "B")
    )];
    for (wire, list) in extras.iter().filter(|(k, _)| k.starts_with("h2")) {
        let Some((_, extra)) = list.iter().find(|(l, _)| *l == heaviest) else { continue };
        let kept = extra / h1_extra * 100.0;
        let holds = if kept >= 50.0 { "holds" } else { "does not hold" };
        out.push(format!(
            "On {wire}: {} more per request ({kept:.0} % of the HTTP/1.1 difference): the claim that the extra \
             bytes add up {holds} on this transport with this client.",
            fmt::opt(Some(*extra), "B")
        ));
    }
    out
}
