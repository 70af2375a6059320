//! `report.html`: one self-contained page (inline CSS, inline SVG; no scripts, no network, no
//! external references of any kind) for architects reading a run.

use std::fmt::Write as _;

use super::Run;
use super::fmt::{self, esc};
use super::plots::Rendered;
use super::summary::{FAILOVER_FOOT, FAILOVER_HEADERS, OUTAGE_HEADERS, ROTATION_HEADERS, Summary, decision_headers};
use crate::figures;
use crate::results::{Machine, OPERATIONS, Report, TrafficInfo};

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
    heading(&mut h, report);
    banners(&mut h, report);
    decision_table(&mut h, summary);
    repetitions_table(&mut h, report);
    events_tables(&mut h, summary);
    capacity_tables(&mut h, report);
    wire_table(&mut h, report);
    connections_tables(&mut h, report);
    tradeoffs(&mut h, summary);
    answers(&mut h, summary);
    warnings(&mut h, summary);
    thresholds(&mut h, report);
    figures_section(&mut h, plots);
    latency_tables(&mut h, report);
    outcomes_table(&mut h, report);
    method(&mut h, report, runs);
    h.push_str("</main>\n</body>\n</html>\n");
    h
}

/// The document head (with the inline CSS), the title, the scenario's question, the run line and
/// the section links.
fn heading(h: &mut String, report: &Report) {
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
}

/// The banners above everything else: accepted revoked or forged credentials, an interrupted run.
fn banners(h: &mut String, report: &Report) {
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
}

fn tradeoffs(h: &mut String, summary: &Summary) {
    h.push_str("<h2 id=\"tradeoffs\">Trade-offs, in measured figures</h2>\n<ul class=\"tradeoffs\">\n");
    for t in &summary.tradeoffs {
        let _ = writeln!(h, "<li>{}</li>", esc(t));
    }
    h.push_str("</ul>\n");
}

/// The articles' questions, each with its claim and what this run measured about it.
fn answers(h: &mut String, summary: &Summary) {
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
}

/// The run's warnings, security ones marked; says so when there are none.
fn warnings(h: &mut String, summary: &Summary) {
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
}

/// Every plot inline, with its title, file name and caption.
fn figures_section(h: &mut String, plots: &[Rendered]) {
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
    for head in decision_headers() {
        let _ = write!(h, "<th>{}</th>", esc(&head));
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
         accepted (\"≤ …, from exp + leeway\": still accepted when probing ended, so only this upper bound is \
         known); store down: what a store outage injected by this run (in the window, or a short pause after it) did, \
         measured by a prober holding a valid credential, \"not measured\" when the run injected none; unexpected allow: revoked or forged credentials accepted, must be 0.</p>\n",
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

/// The latency table's columns after strategy and operation.
static LATENCY_TABLE_FIGURES: [&figures::Figure; 9] = [
    &figures::COUNT,
    &figures::MEAN_US,
    &figures::P50_US,
    &figures::P90_US,
    &figures::P99_US,
    &figures::P999_US,
    &figures::MAX_US,
    &figures::SERVICE_P50_US,
    &figures::SERVICE_P99_US,
];

fn latency_tables(h: &mut String, report: &Report) {
    h.push_str(
        "<h2 id=\"latency\">Latency by operation (µs)</h2>\n<p class=\"muted\">Latency: open loop counts from the \
         intended send time (coordinated omission corrected); service time counts from the actual send time. \
         HdrHistogram, 3 significant digits.</p>\n<table>\n<tr><th>strategy</th><th>operation</th>",
    );
    for f in LATENCY_TABLE_FIGURES {
        let _ = write!(h, "<th>{}</th>", esc(f.label));
    }
    h.push_str("</tr>\n");
    for s in &report.strategies {
        for op in OPERATIONS {
            if figures::COUNT.value(s, op).is_none() {
                continue;
            }
            let _ = write!(h, "<tr><td>{}</td><td>{op}</td>", esc(&s.name));
            for f in LATENCY_TABLE_FIGURES {
                let cell = f.value(s, op).map_or_else(|| fmt::NOT_MEASURED.to_string(), fmt::num);
                let _ = write!(h, "<td class=\"num\">{}</td>", esc(&cell));
            }
            h.push_str("</tr>\n");
        }
    }
    h.push_str("</table>\n");
}

/// A table of already-formatted cells; columns from `numeric_from` on are right-aligned numbers.
fn text_table<const N: usize>(h: &mut String, heads: [&str; N], rows: &[[String; N]], numeric_from: usize) {
    h.push_str("<table>\n<tr>");
    for head in heads {
        let _ = write!(h, "<th>{}</th>", esc(head));
    }
    h.push_str("</tr>\n");
    for row in rows {
        h.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let _ = write!(h, "<td{}>{}</td>", if i < numeric_from { "" } else { " class=\"num\"" }, esc(cell));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

/// The store-outage and key-rotation tables, when the run injected either.
fn events_tables(h: &mut String, summary: &Summary) {
    if !summary.outage_rows.is_empty() {
        h.push_str("<h2 id=\"outage\">Store outage</h2>\n");
        text_table(h, OUTAGE_HEADERS, &summary.outage_rows, 1);
        h.push_str(
            "<p class=\"foot\">A health prober held one valid credential and polled <code>GET /api/resource</code> \
             about every 10 ms; answers are counted by when they arrived (before, during or after the outage). first failure: from the outage \
             start to the first non-200 answer (includes the target's store timeout); recovery: from the outage end to \
             the first 200 again; revoked allowed during: a logged-out credential polled beside it and accepted during \
             the outage (the price of failing open); unexpected allow (run): revoked or forged credentials the traffic \
             engine saw accepted over the whole window.</p>\n",
        );
    }
    if !summary.failover_rows.is_empty() {
        h.push_str("<h2 id=\"failover\">Failover (Sentinel, Redis Cluster)</h2>\n");
        let rows: Vec<[String; 9]> =
            summary.failover_rows.iter().map(|r| r.clone().map(|c| c.replace("**", ""))).collect();
        text_table(h, FAILOVER_HEADERS, &rows, 1);
        h.push_str(&format!("<p class=\"foot\">{}</p>\n", FAILOVER_FOOT));
    }
    if !summary.rotation_rows.is_empty() {
        h.push_str("<h2 id=\"rotation\">Key rotation</h2>\n");
        text_table(h, ROTATION_HEADERS, &summary.rotation_rows, 1);
        h.push_str(
            "<p class=\"foot\">The signing key was rotated with <code>POST /admin/rotate-key</code>. old token \
             rejected after: from the rotation's answer to the send time of the first 401 for a token issued before it \
             (the mass logout; about the overlap, 0 without one). Logins per second of the measured window show the \
             re-login storm that follows.</p>\n",
        );
    }
}

/// Bytes on the wire, when a variant ran on a transport other than clear HTTP/1.1.
fn wire_table(h: &mut String, report: &Report) {
    if !super::wire::applies(report) {
        return;
    }
    h.push_str("<h2 id=\"wire\">Bytes on the wire</h2>\n");
    text_table(h, super::wire::HEADERS, &super::wire::rows(report), 3);
    let _ = writeln!(h, "<p class=\"foot\">{}</p>", esc(super::wire::METHOD));
    let verdict = super::wire::verdict(report);
    if !verdict.is_empty() {
        h.push_str("<ul>\n");
        for line in verdict {
            let _ = writeln!(h, "<li>{}</li>", esc(&line));
        }
        h.push_str("</ul>\n");
    }
}

/// Connections and TLS, when a variant ran over TLS or closed its connections on purpose.
fn connections_tables(h: &mut String, report: &Report) {
    use super::connections;
    if !connections::applies(report) {
        return;
    }
    h.push_str("<h2 id=\"connections\">Connections and TLS</h2>\n");
    text_table(h, connections::HEADERS, &connections::rows(report), 2);
    let versus = connections::versus_rows(report);
    if !versus.is_empty() {
        h.push_str("<h3>TLS cost next to auth cost</h3>\n");
        text_table(h, connections::VERSUS_HEADERS, &versus, 1);
    }
    let _ = writeln!(h, "<p class=\"foot\">{}</p>", esc(connections::METHOD));
}

/// The breaking points and the USL fits, when the run measured them.
fn capacity_tables(h: &mut String, report: &Report) {
    use crate::capacity;
    let breaking = capacity::breaking_rows(&report.strategies);
    if !breaking.is_empty() {
        h.push_str("<h2 id=\"capacity\">Capacity: breaking points</h2>\n");
        text_table(h, capacity::BREAKING_HEADERS, &breaking, usize::MAX);
        let _ = writeln!(h, "<p class=\"foot\">{}</p>", esc(capacity::BREAKING_METHOD));
    }
    let usl = capacity::usl_rows(&report.strategies);
    if !usl.is_empty() {
        h.push_str("<h2 id=\"usl\">Capacity: Universal Scalability Law fit</h2>\n");
        text_table(h, capacity::USL_HEADERS, &usl, usize::MAX);
        let _ = writeln!(h, "<p class=\"foot\">{}</p>", esc(capacity::USL_METHOD));
    }
    if let Some(p) = capacity::scenario_projection(report) {
        h.push_str("<h2 id=\"projection\">Capacity: projection from this run</h2>\n");
        let _ = writeln!(h, "<pre>{}</pre>", esc(&crate::project::table(&p)));
        h.push_str(
            "<p class=\"foot\">The scenario's <code>[capacity] project_rps</code> and <code>project_users</code>, \
             projected from this run's measured figures (<code>authbench project</code> does the same from any \
             results directories).</p>\n",
        );
    }
}

/// The outcomes table's figure columns; errors by class sit between the counts and the store figures.
static OUTCOME_FIGURES: [&figures::Figure; 8] = [
    &figures::REQUESTS,
    &figures::EXPECTED_ALLOW,
    &figures::EXPECTED_DENY,
    &figures::UNEXPECTED_ALLOW,
    &figures::UNEXPECTED_DENY,
    &figures::TIMEOUT,
    &figures::CONNECT_ERROR,
    &figures::PROTOCOL_ERROR,
];

/// The store figures the outcomes table shows after the errors by class.
static STORE_FIGURES: [&figures::Figure; 3] = [
    &figures::STORE_CPU_US_PER_REQUEST,
    &figures::STORE_NET_BYTES_PER_REQUEST,
    &figures::STORE_MEMORY_BYTES_PER_SESSION,
];

fn outcomes_table(h: &mut String, report: &Report) {
    h.push_str(
        "<h2 id=\"outcomes\">Outcomes and errors</h2>\n<p class=\"muted\">Every request ends in exactly one outcome \
         class; none is dropped.</p>\n<table>\n<tr><th>strategy</th>",
    );
    let heads =
        OUTCOME_FIGURES.iter().map(|f| f.label).chain(["errors by class"]).chain(STORE_FIGURES.iter().map(|f| f.label));
    for head in heads {
        let _ = write!(h, "<th>{}</th>", esc(head));
    }
    h.push_str("</tr>\n");
    for s in &report.strategies {
        let _ = write!(h, "<tr><td>{}</td>", esc(&s.name));
        for f in OUTCOME_FIGURES {
            let alarm = *f == figures::UNEXPECTED_ALLOW && s.outcomes.unexpected_allow > 0;
            let _ = write!(h, "<td class=\"{}\">{}</td>", if alarm { "alarm" } else { "num" }, esc(&f.format(s, "")));
        }
        let classes: Vec<String> = s.errors.by_class.iter().map(|(c, n)| format!("{c}: {n}")).collect();
        let _ =
            write!(h, "<td>{}</td>", esc(&if classes.is_empty() { "none".to_string() } else { classes.join(", ") }));
        for f in STORE_FIGURES {
            let _ = write!(h, "<td class=\"num\">{}</td>", esc(&f.format(s, "")));
        }
        h.push_str("</tr>\n");
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

fn or_unknown(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "unknown".to_string())
}

/// The machine the run ran on, in one line.
fn machine_line(m: &Machine) -> String {
    format!(
        "{} CPUs, {}, kernel {}, memory {}",
        m.cpus,
        or_unknown(&m.cpu_model),
        or_unknown(&m.kernel),
        m.memory_bytes
            .map(|b| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64))
            .unwrap_or_else(|| "unknown".into())
    )
}

/// The traffic the run offered, in one line.
fn traffic_line(t: &TrafficInfo) -> String {
    let mix: Vec<String> = t.mix.iter().map(|(k, v)| format!("{k} {}", fmt::num(*v))).collect();
    let instances = if t.instances > 1 {
        format!(
            ", {} target instances per strategy sharing the store and one signing key (connections spread \
             round-robin; CPU and counters summed)",
            t.instances
        )
    } else {
        String::new()
    };
    format!(
        "{} loop, rate {}, {} connections, {} users, mix: {}{instances}",
        t.mode,
        t.rate_per_sec.map(|v| format!("{} req/s", fmt::num(v))).unwrap_or_else(|| "unlimited".into()),
        t.connections,
        t.users,
        if mix.is_empty() { "n/a".to_string() } else { mix.join(", ") }
    )
}

/// One run's method: machine, versions, traffic, windows, latency correction and scenario.
fn method_of(h: &mut String, r: &Report) {
    let m = &r.machine;
    let t = &r.traffic;
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
            ("machine", machine_line(m)),
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
            ("traffic", traffic_line(t)),
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
    if let Some(line) = super::summary::store_op_cost_line(r) {
        let _ = writeln!(h, "<p><strong>What a store operation costs the target:</strong> {}</p>", esc(&line));
    }
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

/// Median, interval and range of every tracked figure over the repetitions (`--repeat`).
fn repetitions_table(h: &mut String, report: &Report) {
    let rows = crate::repeats::table(report);
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<h2 id=\"repetitions\">Repetitions: median and 95 % interval</h2>\n<p class=\"muted\">{} repetitions per \
         variant, interleaved; the decision table above shows the medians. Method: see <a href=\"#method\">Method</a>.</p>\n<table>\n<tr>",
        crate::repeats::in_report(report)
    );
    for head in crate::repeats::TABLE_HEADERS {
        let _ = write!(h, "<th>{}</th>", esc(head));
    }
    h.push_str("</tr>\n");
    for row in &rows {
        h.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let class = if i >= 2 { " class=\"num\"" } else { "" };
            let _ = write!(h, "<td{class}>{}</td>", esc(cell));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

fn method(h: &mut String, report: &Report, runs: &[Run<'_>]) {
    h.push_str("<h2 id=\"method\">Method</h2>\n");
    if crate::repeats::in_report(report) > 1 {
        let _ = writeln!(
            h,
            "<h3>Repetitions</h3>\n<p>{}</p>",
            esc(&crate::repeats::method_text(crate::repeats::in_report(report)))
        );
    }
    if runs.is_empty() {
        method_of(h, report);
    } else {
        for run in runs {
            let _ = writeln!(h, "<h3>Run {}</h3>", esc(&run.label));
            method_of(h, run.report);
        }
    }
    h.push_str(
        "<h3>What each figure means</h3>\n<p class=\"muted\">From the figure registry \
         (<code>harness/src/figures.rs</code>); keys are what thresholds, <code>compare</code> and \
         <code>summary.csv</code> use, per-operation ones written <code>&lt;operation&gt;.&lt;key&gt;</code>. \
         Every request ends in exactly one outcome class; a figure the run could not observe reads \
         \"not measured\", never 0.</p>\n<dl>\n",
    );
    for f in figures::all() {
        let _ = writeln!(
            h,
            "<dt>{} (<code>{}</code>)</dt><dd>{}</dd>",
            esc(f.label),
            esc(f.key),
            esc(&f.full_definition())
        );
    }
    h.push_str("</dl>\n");
}
