//! `report.html`: one self-contained page (inline CSS, inline SVG; no scripts, no network, no
//! external references of any kind) for architects reading a run.

use std::fmt::Write as _;

use super::Run;
use super::fmt::{self, esc};
use super::plots::Rendered;
use super::summary::{DECISION_HEADERS, OUTAGE_HEADERS, ROTATION_HEADERS, Summary};
use crate::results::{LatencySummary, OPERATIONS, Report};

const CSS: &str = r#"
:root{--fg:#1b1f24;--muted:#5b636d;--line:#d8dde3;--bg:#fff;--alt:#f5f7f9;--bad:#c81e1e;--ok:#1d7a3a}
*{box-sizing:border-box}
body{font-family:"DejaVu Sans",system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:0;line-height:1.45;font-size:15px}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:26px;margin:0 0 6px}
h2{font-size:20px;margin:34px 0 10px;padding-bottom:4px;border-bottom:2px solid var(--line)}
h3{font-size:16px;margin:18px 0 6px}
p.question{font-size:16px;margin:6px 0 4px}
p.meta,.muted{color:var(--muted)}
nav{margin:10px 0 0;font-size:14px}
nav a{margin-right:14px;color:#1f5fa8;text-decoration:none}
table{border-collapse:collapse;width:100%;margin:8px 0;font-size:13.5px}
th,td{border:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:var(--alt);font-weight:600}
td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
tr:nth-child(even) td{background:#fbfcfd}
td.alarm{background:var(--bad)!important;color:#fff;font-weight:700;text-align:right}
td.pass{color:var(--ok);font-weight:700}
td.fail{color:var(--bad);font-weight:700}
.banner{background:var(--bad);color:#fff;padding:12px 16px;font-weight:700;border-radius:4px;margin:14px 0}
ul.warnings li{margin:4px 0}
ul.warnings li.security{color:var(--bad);font-weight:700}
ul.tradeoffs li{margin:6px 0}
figure{margin:18px 0 26px}
figure svg{max-width:100%;height:auto;display:block;border:1px solid var(--line)}
figcaption{color:var(--muted);font-size:13.5px;margin-top:4px}
pre{background:var(--alt);border:1px solid var(--line);padding:10px;overflow-x:auto;font-size:12.5px;white-space:pre-wrap}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:8px 0}
dt{font-weight:600}
dd{margin:0}
.foot{font-size:13px;color:var(--muted)}
"#;

/// The whole page.
pub fn page(report: &Report, summary: &Summary, plots: &[Rendered], runs: &[Run<'_>]) -> String {
    let mut h = String::new();
    let title = format!("authbench: {}", report.scenario.name);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        esc(&title)
    );
    let _ = writeln!(h, "<h1>{}</h1>", esc(&title));
    if !report.scenario.description.trim().is_empty() {
        let _ = writeln!(h, "<p class=\"question\">{}</p>", esc(report.scenario.description.trim()));
    }
    let _ = writeln!(
        h,
        "<p class=\"meta\">Started {} · {} loop · store: {} · {} strategies · authbench {}{}</p>",
        esc(&report.started_at),
        esc(&report.traffic.mode),
        esc(&report.store_kind),
        report.strategies.len(),
        esc(&report.tool.version),
        report.tool.git_sha.as_deref().map(|s| format!(" ({})", esc(short_sha(s)))).unwrap_or_default()
    );
    h.push_str(
        "<nav><a href=\"#decision\">Decision table</a><a href=\"#tradeoffs\">Trade-offs</a>\
         <a href=\"#articles\">The articles' questions</a><a href=\"#warnings\">Warnings</a>\
         <a href=\"#thresholds\">Thresholds</a><a href=\"#plots\">Plots</a><a href=\"#latency\">Latency</a>\
         <a href=\"#outcomes\">Outcomes</a><a href=\"#method\">Method</a></nav>\n",
    );
    let insecure: u64 = report.strategies.iter().map(|s| s.outcomes.unexpected_allow).sum();
    if insecure > 0 {
        let _ = writeln!(
            h,
            "<div class=\"banner\">SECURITY FAILURE: {insecure} revoked or forged credential(s) were accepted \
             (unexpected allow). See the decision table and warnings.</div>"
        );
    }
    if report.interrupted {
        h.push_str("<div class=\"banner\">The run was interrupted: the figures cover what was measured.</div>\n");
    }

    decision_table(&mut h, summary);
    events_tables(&mut h, summary);
    h.push_str("<h2 id=\"tradeoffs\">Trade-offs, in measured figures</h2>\n<ul class=\"tradeoffs\">\n");
    for t in &summary.tradeoffs {
        let _ = writeln!(h, "<li>{}</li>", esc(t));
    }
    h.push_str("</ul>\n");

    h.push_str("<h2 id=\"articles\">The articles' questions, answered by this run</h2>\n");
    if summary.answers.is_empty() {
        h.push_str("<p class=\"muted\">No strategies were measured.</p>\n");
    }
    for a in &summary.answers {
        let _ = writeln!(h, "<h3>{}</h3>\n<p>{}</p>\n<ul>", esc(&a.question), esc(&a.claim));
        for m in &a.measured {
            let _ = writeln!(h, "<li>{}</li>", esc(m));
        }
        h.push_str("</ul>\n");
    }

    h.push_str("<h2 id=\"warnings\">Warnings</h2>\n");
    if summary.warnings.is_empty() {
        h.push_str(
            "<p class=\"muted\">None: no errors, unexpected outcomes, late sends or other caveats were recorded.</p>\n",
        );
    } else {
        h.push_str("<ul class=\"warnings\">\n");
        for (security, w) in &summary.warnings {
            let class = if *security { " class=\"security\"" } else { "" };
            let _ = writeln!(h, "<li{class}>{}</li>", esc(w));
        }
        h.push_str("</ul>\n");
    }

    thresholds(&mut h, report);

    h.push_str("<h2 id=\"plots\">Plots</h2>\n<p class=\"muted\">Each plot is also saved as <code>plots/&lt;name&gt;.svg</code> and <code>.png</code> beside this file.</p>\n");
    for p in plots {
        let _ = writeln!(
            h,
            "<figure id=\"plot-{}\">\n{}\n<figcaption><strong>{}</strong> ({}.svg). {}</figcaption>\n</figure>",
            esc(&p.stem),
            inline_svg(&p.svg),
            esc(&p.title),
            esc(&p.stem),
            esc(&p.caption)
        );
    }

    latency_tables(&mut h, report);
    outcomes_table(&mut h, report);
    method(&mut h, report, runs);
    h.push_str("</main>\n</body>\n</html>\n");
    h
}

fn short_sha(s: &str) -> &str {
    s.get(..12).unwrap_or(s)
}

/// The plotters SVG as an inline element: no XML prologue, no namespace URI (the HTML parser puts
/// `<svg>` in the SVG namespace itself), so the page holds no address of any kind.
fn inline_svg(svg: &str) -> String {
    let body = match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    };
    body.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1).replacen("<svg ", "<svg role=\"img\" ", 1)
}

fn decision_table(h: &mut String, summary: &Summary) {
    h.push_str("<h2 id=\"decision\">Decision table</h2>\n<table>\n<tr>");
    for head in DECISION_HEADERS {
        let _ = write!(h, "<th>{}</th>", esc(head));
    }
    h.push_str("</tr>\n");
    for row in &summary.rows {
        h.push_str("<tr>");
        for (i, cell) in row.cells.iter().enumerate() {
            let class = match i {
                9 if row.unexpected_allow > 0 => " class=\"alarm\"",
                1..=6 | 9 => " class=\"num\"",
                _ => "",
            };
            let _ = write!(h, "<td{class}>{}</td>", esc(cell));
        }
        h.push_str("</tr>\n");
    }
    h.push_str(
        "</table>\n<p class=\"foot\">api p50/p99: latency of the api operation; req/s: completed requests per \
         second (all operations, all outcomes); target CPU: target process user+system CPU per request; store ops: \
         commands the store executed per request; revocation window: how long a revoked credential was still \
         accepted (≥ … (bound) when it outlived the run); store down: what a store outage injected by the run \
         did (\"measured\"), else the design behaviour (fail closed); unexpected allow: revoked or forged credentials accepted, must be 0.</p>\n",
    );
}

fn thresholds(h: &mut String, report: &Report) {
    h.push_str("<h2 id=\"thresholds\">Thresholds</h2>\n");
    if report.thresholds.is_empty() {
        h.push_str("<p class=\"muted\">The scenario sets no thresholds.</p>\n");
        return;
    }
    let failed = report.thresholds.iter().filter(|t| !t.passed).count();
    let _ = writeln!(
        h,
        "<p>{} of {} passed.</p>\n<table>\n<tr><th>metric</th><th>condition</th><th>actual</th><th>result</th></tr>",
        report.thresholds.len() - failed,
        report.thresholds.len()
    );
    for t in &report.thresholds {
        let (class, word) = if t.passed { ("pass", "pass") } else { ("fail", "FAIL") };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"{class}\">{word}</td></tr>",
            esc(&t.metric),
            esc(&t.condition),
            esc(&fmt::opt(t.actual, ""))
        );
    }
    h.push_str("</table>\n");
}

fn lat_cells(l: &LatencySummary) -> String {
    [l.count as f64, l.mean, l.p50 as f64, l.p90 as f64, l.p99 as f64, l.p999 as f64, l.max as f64]
        .iter()
        .map(|v| format!("<td class=\"num\">{}</td>", esc(&fmt::num(*v))))
        .collect()
}

fn latency_tables(h: &mut String, report: &Report) {
    h.push_str(
        "<h2 id=\"latency\">Latency by operation (µs)</h2>\n<p class=\"muted\">Latency: open loop counts from the \
         intended send time (coordinated omission corrected); service time counts from the actual send time. \
         HdrHistogram, 3 significant digits.</p>\n<table>\n<tr><th>strategy</th><th>operation</th><th>count</th>\
         <th>mean</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>service p50</th>\
         <th>service p99</th></tr>\n",
    );
    for s in &report.strategies {
        for op in OPERATIONS {
            let Some(l) = s.latency_us.get(op).filter(|l| l.count > 0) else { continue };
            let service = s.service_time_us.get(op).filter(|l| l.count > 0);
            let svc = |f: fn(&LatencySummary) -> u64| {
                service.map(|l| fmt::num(f(l) as f64)).unwrap_or_else(|| fmt::NOT_MEASURED.into())
            };
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{op}</td>{}<td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&s.name),
                lat_cells(l),
                esc(&svc(|l| l.p50)),
                esc(&svc(|l| l.p99))
            );
        }
    }
    h.push_str("</table>\n");
}

/// The store-outage and key-rotation tables, when the run injected either.
fn events_tables(h: &mut String, summary: &Summary) {
    fn table<const N: usize>(h: &mut String, heads: [&str; N], rows: &[[String; N]]) {
        h.push_str("<table>\n<tr>");
        for head in heads {
            let _ = write!(h, "<th>{}</th>", esc(head));
        }
        h.push_str("</tr>\n");
        for row in rows {
            h.push_str("<tr>");
            for (i, cell) in row.iter().enumerate() {
                let _ = write!(h, "<td{}>{}</td>", if i == 0 { "" } else { " class=\"num\"" }, esc(cell));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
    }
    if !summary.outage_rows.is_empty() {
        h.push_str("<h2 id=\"outage\">Store outage</h2>\n");
        table(h, OUTAGE_HEADERS, &summary.outage_rows);
        h.push_str(
            "<p class=\"foot\">A health prober held one valid credential and polled <code>GET /api/resource</code> \
             about every 10 ms; answers are counted by when they arrived (before, during or after the outage). first failure: from the outage \
             start to the first non-200 answer (includes the target's store timeout); recovery: from the outage end to \
             the first 200 again; revoked allowed during: a logged-out credential polled beside it and accepted during \
             the outage (the price of failing open); unexpected allow (run): revoked or forged credentials the traffic \
             engine saw accepted over the whole window.</p>\n",
        );
    }
    if !summary.rotation_rows.is_empty() {
        h.push_str("<h2 id=\"rotation\">Key rotation</h2>\n");
        table(h, ROTATION_HEADERS, &summary.rotation_rows);
        h.push_str(
            "<p class=\"foot\">The signing key was rotated with <code>POST /admin/rotate-key</code>. old token \
             rejected after: from the rotation's answer to the send time of the first 401 for a token issued before it \
             (the mass logout; about the overlap, 0 without one). Logins per second of the measured window show the \
             re-login storm that follows.</p>\n",
        );
    }
}

fn outcomes_table(h: &mut String, report: &Report) {
    h.push_str(
        "<h2 id=\"outcomes\">Outcomes and errors</h2>\n<p class=\"muted\">Every request ends in exactly one outcome \
         class; none is dropped.</p>\n<table>\n<tr><th>strategy</th><th>requests</th><th>expected allow</th>\
         <th>expected deny</th><th>unexpected allow</th><th>unexpected deny</th><th>timeout</th><th>connect error</th>\
         <th>protocol error</th><th>errors by class</th><th>store CPU / req</th><th>store net / req</th>\
         <th>store mem / session</th></tr>\n",
    );
    for s in &report.strategies {
        let o = &s.outcomes;
        let classes: Vec<String> = s.errors.by_class.iter().map(|(c, n)| format!("{c}: {n}")).collect();
        let ua = if o.unexpected_allow > 0 { "alarm" } else { "num" };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"{ua}\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&s.name),
            s.requests,
            o.expected_allow,
            o.expected_deny,
            o.unexpected_allow,
            o.unexpected_deny,
            o.timeout,
            o.connect_error,
            o.protocol_error,
            esc(&if classes.is_empty() { "none".to_string() } else { classes.join(", ") }),
            esc(&fmt::opt(s.store.cpu_us_per_request, "µs")),
            esc(&fmt::opt(s.store.net_bytes_per_request, "B")),
            esc(&fmt::opt(s.store.memory_bytes_per_session, "B"))
        );
    }
    h.push_str("</table>\n");
}

fn dl(h: &mut String, items: &[(&str, String)]) {
    h.push_str("<dl>\n");
    for (k, v) in items {
        let _ = writeln!(h, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
    }
    h.push_str("</dl>\n");
}

fn method_of(h: &mut String, r: &Report) {
    let m = &r.machine;
    let t = &r.traffic;
    let or_unknown = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".to_string());
    let mix: Vec<String> = t.mix.iter().map(|(k, v)| format!("{k} {}", fmt::num(*v))).collect();
    let correction = if t.mode == "open" {
        "Open loop (constant rate): every request has an intended send time from the schedule, and latency counts \
         from it, so a stalled server cannot hide its stall (coordinated omission corrected). Service time \
         (from the actual send) is reported beside it."
    } else {
        "Closed loop (back-to-back): each connection sends its next request when the previous one completes, so \
         latency counts from the actual send time and is not corrected for coordinated omission; use open loop \
         for latency under a fixed load."
    };
    dl(
        h,
        &[
            ("command", r.command.clone()),
            ("started", r.started_at.clone()),
            (
                "machine",
                format!(
                    "{} CPUs, {}, kernel {}, memory {}",
                    m.cpus,
                    or_unknown(&m.cpu_model),
                    or_unknown(&m.kernel),
                    m.memory_bytes
                        .map(|b| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64))
                        .unwrap_or_else(|| "unknown".into())
                ),
            ),
            ("pinning", m.pinning.clone()),
            (
                "versions",
                format!(
                    "{} {}, rustc {}, redis-server {}",
                    r.tool.name,
                    r.tool.version,
                    or_unknown(&r.tool.rustc),
                    or_unknown(&r.tool.redis_server)
                ),
            ),
            ("git SHA", or_unknown(&r.tool.git_sha)),
            ("store", r.store_kind.clone()),
            (
                "traffic",
                format!(
                    "{} loop, rate {}, {} connections, {} users, mix: {}",
                    t.mode,
                    t.rate_per_sec.map(|v| format!("{} req/s", fmt::num(v))).unwrap_or_else(|| "unlimited".into()),
                    t.connections,
                    t.users,
                    if mix.is_empty() { "n/a".to_string() } else { mix.join(", ") }
                ),
            ),
            ("warm-up", format!("{} s (not measured)", fmt::num(t.warmup_s))),
            ("measured window", format!("{} s", fmt::num(t.duration_s))),
            ("latency correction", correction.to_string()),
            (
                "scenario",
                format!(
                    "{}{}",
                    r.scenario.name,
                    r.scenario.file.as_deref().map(|f| format!(" ({f})")).unwrap_or_default()
                ),
            ),
        ],
    );
    if !r.scenario.description.trim().is_empty() {
        let _ = writeln!(h, "<p><strong>Question:</strong> {}</p>", esc(r.scenario.description.trim()));
    }
    if !r.scenario.resolved_toml.trim().is_empty() {
        let _ = writeln!(
            h,
            "<details><summary>Scenario as run (after command-line overrides)</summary><pre>{}</pre></details>",
            esc(&r.scenario.resolved_toml)
        );
    }
}

fn method(h: &mut String, report: &Report, runs: &[Run<'_>]) {
    h.push_str("<h2 id=\"method\">Method</h2>\n");
    if runs.is_empty() {
        method_of(h, report);
    } else {
        for run in runs {
            let _ = writeln!(h, "<h3>Run {}</h3>", esc(&run.label));
            method_of(h, run.report);
        }
    }
    h.push_str(
        "<h3>What each figure means</h3>\n<dl>\n\
         <dt>latency</dt><dd>Per operation (login, api, logout, refresh, revoke), HdrHistogram in microseconds, 3 significant digits.</dd>\n\
         <dt>throughput</dt><dd>Completed operations per second over the measured window; successes and failures counted apart.</dd>\n\
         <dt>credential bytes</dt><dd>Mean bytes of the credential as sent per api request (cookie value or bearer token); request header bytes: the whole request head.</dd>\n\
         <dt>store load</dt><dd>Read from the store itself over the measured window (Redis INFO commandstats/stats/cpu, or the memory store's /metrics): operations, CPU and network bytes per request.</dd>\n\
         <dt>target CPU</dt><dd>The target process's own user+system CPU per completed request.</dd>\n\
         <dt>revocation window</dt><dd>After a logout or revoke-user, how long the revoked credential is still accepted, probed directly. A window longer than the run is reported as a bound read from the token's exp (plus leeway), and marked as such.</dd>\n\
         <dt>outcome</dt><dd>Exactly one per request: expected allow, expected deny, unexpected allow (security failure), unexpected deny, timeout, connect error, protocol error.</dd>\n\
         <dt>not measured</dt><dd>A figure the run could not observe is shown as \"not measured\", never as 0.</dd>\n\
         </dl>\n",
    );
}
