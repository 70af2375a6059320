//! `report.md`: the decision table, trade-offs, warnings and thresholds as Markdown, for PR comments.

use std::fmt::Write as _;

use super::fmt::{self, md_cell};
use super::plots::Rendered;
use super::summary::{FAILOVER_FOOT, FAILOVER_HEADERS, OUTAGE_HEADERS, ROTATION_HEADERS, Summary, decision_headers};
use crate::results::Report;

/// The whole page.
pub fn page(report: &Report, summary: &Summary, plots: &[Rendered]) -> String {
    let mut m = String::new();
    heading(&mut m, report);
    decision_table(&mut m, summary);
    repetitions(&mut m, report);
    events_tables(&mut m, summary);
    capacity_tables(&mut m, report);
    wire_table(&mut m, report);
    connections_tables(&mut m, report);
    tradeoffs_and_warnings(&mut m, summary);
    thresholds(&mut m, report);
    plot_links(&mut m, plots);
    m.push_str("\nFull report with method and plots: `report.html`.\n");
    m
}

/// Title, the scenario's question, the run line and the security banner.
fn heading(m: &mut String, report: &Report) {
    let _ = writeln!(m, "# authbench: {}\n", report.scenario.name);
    if !report.scenario.description.trim().is_empty() {
        let _ = writeln!(m, "> {}\n", report.scenario.description.trim().replace('\n', "\n> "));
    }
    let _ = writeln!(
        m,
        "Started {} · {} loop · store: {} · authbench {}{}\n",
        report.started_at,
        report.traffic.mode,
        report.store_kind,
        report.tool.version,
        report.tool.git_sha.as_deref().map(|s| format!(" ({})", s.get(..12).unwrap_or(s))).unwrap_or_default()
    );
    let insecure: u64 = report.strategies.iter().map(|s| s.outcomes.unexpected_allow).sum();
    if insecure > 0 {
        let _ = writeln!(
            m,
            "> [!CAUTION]\n> **SECURITY FAILURE: {insecure} revoked or forged credential(s) were accepted (unexpected allow).**\n"
        );
    }
}

/// The decision table, one row per strategy, with the notes on its store-down and revocation cells.
fn decision_table(m: &mut String, summary: &Summary) {
    m.push_str("## Decision table\n\n");
    let heads = decision_headers();
    let _ = writeln!(m, "| {} |", heads.join(" | "));
    let aligns: Vec<&str> =
        (0..heads.len()).map(|i| if (1..=6).contains(&i) || i == 9 { "---:" } else { "---" }).collect();
    let _ = writeln!(m, "| {} |", aligns.join(" | "));
    for row in &summary.rows {
        let cells: Vec<String> = row
            .cells
            .iter()
            .enumerate()
            .map(|(i, c)| if i == 9 && row.unexpected_allow > 0 { format!("**{} ⚠**", md_cell(c)) } else { md_cell(c) })
            .collect();
        let _ = writeln!(m, "| {} |", cells.join(" | "));
    }
    m.push_str(
        "\n*store down*: what a store outage injected by this run (in the window, or a short pause after it) did, \
         measured by a prober holding a valid credential; \"not measured\" when the run injected none. *revocation window* \"≤ …, from exp + leeway\": \
         the revoked credential was still accepted when probing ended, so only this upper bound is known.\n\n",
    );
}

/// With `--repeat`: every tracked figure's median and 95 % interval over the repetitions.
fn repetitions(m: &mut String, report: &Report) {
    let repeated = crate::repeats::table(report);
    if !repeated.is_empty() {
        m.push_str("## Repetitions: median and 95 % interval\n\n");
        md_table(m, &crate::repeats::TABLE_HEADERS, repeated.iter().map(|r| r.as_slice()));
        let _ = writeln!(m, "\n{}\n", crate::repeats::method_text(crate::repeats::in_report(report)));
    }
}

/// The store-outage and key-rotation tables, each only when the run measured one.
fn events_tables(m: &mut String, summary: &Summary) {
    if !summary.outage_rows.is_empty() {
        m.push_str("## Store outage\n\n");
        md_table(m, &OUTAGE_HEADERS, summary.outage_rows.iter().map(|r| r.as_slice()));
        m.push_str(
            "\nA health prober polled `GET /api/resource` with one valid credential about every 10 ms; recovery is \
             from the outage end to the first 200 again; revoked allowed: a logged-out credential accepted during the \
             outage.\n\n",
        );
    }
    if !summary.failover_rows.is_empty() {
        m.push_str("## Failover (Sentinel, Redis Cluster)\n\n");
        md_table(m, &FAILOVER_HEADERS, summary.failover_rows.iter().map(|r| r.as_slice()));
        m.push('\n');
        m.push_str(FAILOVER_FOOT);
        m.push_str("\n\n");
    }
    if !summary.rotation_rows.is_empty() {
        m.push_str("## Key rotation\n\n");
        md_table(m, &ROTATION_HEADERS, summary.rotation_rows.iter().map(|r| r.as_slice()));
        m.push('\n');
    }
}

/// The breaking points and USL fits, each only when the run measured them.
fn capacity_tables(m: &mut String, report: &Report) {
    use crate::capacity;
    let breaking = capacity::breaking_rows(&report.strategies);
    if !breaking.is_empty() {
        m.push_str("## Capacity: breaking points\n\n");
        md_table(m, &capacity::BREAKING_HEADERS, breaking.iter().map(|r| r.as_slice()));
        let _ = writeln!(m, "\n{}\n", capacity::BREAKING_METHOD);
    }
    let usl = capacity::usl_rows(&report.strategies);
    if !usl.is_empty() {
        m.push_str("## Capacity: Universal Scalability Law fit\n\n");
        md_table(m, &capacity::USL_HEADERS, usl.iter().map(|r| r.as_slice()));
        let _ = writeln!(m, "\n{}\n", capacity::USL_METHOD);
    }
    if let Some(p) = capacity::scenario_projection(report) {
        m.push_str("## Capacity: projection from this run\n\n```\n");
        m.push_str(&crate::project::table(&p));
        m.push_str("```\n\n");
    }
}

/// Bytes on the wire, when a variant ran on a transport other than clear HTTP/1.1.
fn wire_table(m: &mut String, report: &Report) {
    if !super::wire::applies(report) {
        return;
    }
    m.push_str(
        "## Bytes on the wire

",
    );
    let rows = super::wire::rows(report);
    md_table(m, &super::wire::HEADERS, rows.iter().map(|r| r.as_slice()));
    let _ = writeln!(m, "\n{}\n", super::wire::METHOD);
    for line in super::wire::verdict(report) {
        let _ = writeln!(m, "- {line}");
    }
    m.push('\n');
}

/// Connections and TLS, when a variant ran over TLS or closed its connections on purpose.
fn connections_tables(m: &mut String, report: &Report) {
    use super::connections;
    if !connections::applies(report) {
        return;
    }
    m.push_str("## Connections and TLS\n\n");
    let rows = connections::rows(report);
    md_table(m, &connections::HEADERS, rows.iter().map(|r| r.as_slice()));
    let versus = connections::versus_rows(report);
    if !versus.is_empty() {
        m.push_str("\n### TLS cost next to auth cost\n\n");
        md_table(m, &connections::VERSUS_HEADERS, versus.iter().map(|r| r.as_slice()));
    }
    let _ = writeln!(m, "\n{}\n", connections::METHOD);
}

/// The trade-off sentences, then the warnings (security ones in bold) when there are any.
fn tradeoffs_and_warnings(m: &mut String, summary: &Summary) {
    m.push_str("## Trade-offs\n\n");
    for t in &summary.tradeoffs {
        let _ = writeln!(m, "- {t}");
    }
    if !summary.warnings.is_empty() {
        m.push_str("\n## Warnings\n\n");
        for (security, w) in &summary.warnings {
            if *security {
                let _ = writeln!(m, "- **{w}**");
            } else {
                let _ = writeln!(m, "- {w}");
            }
        }
    }
}

/// The thresholds the run checked, when it checked any.
fn thresholds(m: &mut String, report: &Report) {
    if !report.thresholds.is_empty() {
        m.push_str("\n## Thresholds\n\n| metric | condition | actual | result |\n| --- | --- | ---: | --- |\n");
        for t in &report.thresholds {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} |",
                md_cell(&t.metric),
                md_cell(&t.condition),
                fmt::opt(t.actual, ""),
                if t.passed { "pass" } else { "**FAIL**" }
            );
        }
    }
}

/// Links to the saved plot files.
fn plot_links(m: &mut String, plots: &[Rendered]) {
    if !plots.is_empty() {
        m.push_str("\n## Plots\n\n");
        for p in plots {
            let _ = writeln!(m, "- [{}](plots/{}.svg) ([png](plots/{}.png))", p.title, p.stem, p.stem);
        }
    }
}

fn md_table<'a>(m: &mut String, heads: &[&str], rows: impl Iterator<Item = &'a [String]>) {
    let _ = writeln!(m, "| {} |", heads.join(" | "));
    let aligns: Vec<&str> = (0..heads.len()).map(|i| if i == 0 { "---" } else { "---:" }).collect();
    let _ = writeln!(m, "| {} |", aligns.join(" | "));
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| md_cell(c)).collect();
        let _ = writeln!(m, "| {} |", cells.join(" | "));
    }
}
