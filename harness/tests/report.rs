//! Rendering: every plot is written as valid SVG and PNG, the HTML is self-contained, null figures
//! read "not measured", re-rendering is deterministic, and `authbench report` reproduces a run's
//! report from its `report.json`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use authbench::figures;
use authbench::output;
use authbench::report::{self, knee_index, parse_hgrm};
use authbench::results::*;

/// How the sample's bounded windows (5.5 min from exp + leeway, 9 s observed) read everywhere.
const BOUND_TEXT: &str = "≤ 5.5 min, from exp + leeway; still accepted after 9.0 s";

fn lat(p50: u64, count: u64) -> LatencySummary {
    LatencySummary {
        count,
        mean: p50 as f64 * 1.1,
        p50,
        p90: p50 * 2,
        p99: p50 * 4,
        p999: p50 * 9,
        max: p50 * 20,
        min: p50 / 2,
        stdev: p50 as f64 / 3.0,
    }
}

fn strategy(name: &str, kind: &str, api_p50: u64) -> StrategyResult {
    let mut latency_us = BTreeMap::new();
    latency_us.insert("api".to_string(), lat(api_p50, 90_000));
    latency_us.insert("login".to_string(), lat(api_p50 * 3, 5_000));
    latency_us.insert("logout".to_string(), lat(api_p50 * 2, 5_000));
    let stored = matches!(kind, "session" | "jwt-denylist" | "jwt-refresh");
    StrategyResult {
        name: name.to_string(),
        strategy: kind.to_string(),
        variant: BTreeMap::new(),
        requests: 100_000,
        throughput_rps: 10_000.0 - api_p50 as f64,
        success_rps: 9_900.0,
        failure_rps: 0.0,
        errors: Errors::default(),
        outcomes: Outcomes { expected_allow: 95_000, expected_deny: 5_000, ..Outcomes::default() },
        service_time_us: latency_us.clone(),
        latency_us,
        latency_by_outcome_us: BTreeMap::new(),
        latency_by_client_us: BTreeMap::new(),
        credential_bytes: match kind {
            "none" => 0.0,
            "session" => 43.0,
            _ => 281.0,
        },
        request_header_bytes: 120.0 + if kind == "session" { 50.0 } else { 300.0 },
        wire: None,
        store: StoreLoad {
            measured: true,
            ops_per_request: Some(if kind == "session" || kind == "jwt-denylist" {
                1.0
            } else if kind == "jwt-refresh" {
                0.08
            } else {
                0.0
            }),
            ops_by_command: if stored { BTreeMap::from([("GET".to_string(), 1.0)]) } else { BTreeMap::new() },
            cpu_us_per_request: if stored { Some(2.5) } else { Some(0.0) },
            net_bytes_per_request: Some(if stored { 90.0 } else { 0.0 }),
            memory_bytes_per_session: if stored { Some(180.0) } else { None },
            nodes: Vec::new(),
            in_flight_mean: None,
        },
        target_cpu_us_per_request: Some(20.0 + api_p50 as f64 / 10.0),
        revocation_window_ms: match kind {
            "session" | "jwt-denylist" => RevocationWindow {
                p50: Some(0.0),
                max: Some(0.0),
                probes: 40,
                bounded: false,
                observed_max: Some(0.0),
                ..RevocationWindow::default()
            },
            "jwt" => RevocationWindow {
                p50: Some(330_000.0),
                max: Some(330_000.0),
                probes: 40,
                bounded: true,
                observed_max: Some(9_000.0),
                ..RevocationWindow::default()
            },
            "jwt-refresh" => RevocationWindow {
                p50: Some(150_000.0),
                max: Some(330_000.0),
                probes: 40,
                bounded: true,
                observed_max: Some(9_000.0),
                ..RevocationWindow::default()
            },
            _ => RevocationWindow::default(),
        },
        schedule: ScheduleHealth {
            target_rate_per_sec: Some(10_000.0),
            achieved_rate_per_sec: 9_990.0,
            late_starts: 0,
            max_lag_us: 300,
            driver_cpu_percent: Some(40.0),
        },
        timeline: (0..10)
            .map(|t| TimelinePoint {
                t_s: t as f64,
                rps: 9_800.0 + (t * 37 % 300) as f64,
                p50_us: api_p50 + t,
                p99_us: api_p50 * 4 + t * 3,
                errors: 0,
            })
            .collect(),
        stages: Vec::new(),
        store_distance: None,
        outage: None,
        failover: None,
        rotation: None,
        repeats: Vec::new(),
        requests_accounting: None,
        store_down: None,
        auth_paths: BTreeMap::new(),
        instances: Vec::new(),
        capacity: None,
        usl: None,
        cache: None,
        connections: None,
    }
}

/// A synthetic five-strategy run: every figure present except the control's store memory and one
/// strategy's target CPU (to check "not measured"); pure JWT and refresh have bounded windows.
pub fn sample_report() -> Report {
    let mut strategies = vec![
        strategy("none", "none", 80),
        strategy("session", "session", 140),
        strategy("jwt", "jwt", 120),
        strategy("jwt-denylist", "jwt-denylist", 160),
        strategy("jwt-refresh", "jwt-refresh", 125),
    ];
    strategies[4].target_cpu_us_per_request = None;
    strategies[4].latency_us.insert("refresh".to_string(), lat(300, 800));
    for (k, s) in strategies.iter_mut().take(3).enumerate() {
        let k = k as u64;
        s.stages = [1_000.0, 2_000.0, 4_000.0, 8_000.0, 12_000.0]
            .iter()
            .enumerate()
            .map(|(i, &rate)| StageResult {
                target_rate_per_sec: rate,
                achieved_rps: if i == 4 { rate * (0.6 + 0.1 * k as f64) } else { rate * 0.999 },
                p50_us: 100 + i as u64 * 10,
                p99_us: 300 + k * 60 + (i as u64).pow(3) * (40 + k * 30),
                errors: 0,
            })
            .collect();
    }
    Report {
        schema: SCHEMA_VERSION,
        tool: ToolInfo {
            name: "authbench".into(),
            version: "0.1.0".into(),
            git_sha: Some("0123456789abcdef0123456789abcdef01234567".into()),
            rustc: Some("rustc 1.88.0".into()),
            redis_server: Some("7.0.15".into()),
        },
        scenario: ScenarioInfo {
            name: "compare-all".into(),
            file: Some("scenarios/compare-all.toml".into()),
            description: "What does each strategy cost per request, and what does it buy?".into(),
            resolved_toml: "[traffic]\nmode = \"open\"\nrate = 10000\n".into(),
        },
        command: "authbench run scenarios/compare-all.toml".into(),
        started_at: "2026-11-23T12:00:00Z".into(),
        machine: Machine {
            cpus: 2,
            cpu_model: Some("Test CPU".into()),
            kernel: Some("6.1.0".into()),
            memory_bytes: Some(8 << 30),
            pinning: "target pinned to CPU 1, driver to CPU 0".into(),
        },
        traffic: TrafficInfo {
            mode: "open".into(),
            rate_per_sec: Some(10_000.0),
            connections: 32,
            users: 1000,
            warmup_s: 5.0,
            duration_s: 10.0,
            mix: BTreeMap::from([("api".to_string(), 0.9), ("login".to_string(), 0.05), ("logout".to_string(), 0.05)]),
            instances: 1,
        },
        store_kind: "redis".into(),
        interrupted: false,
        strategies,
        thresholds: vec![
            ThresholdResult {
                metric: "jwt.api.p99_us".into(),
                condition: "< 2000".into(),
                actual: Some(480.0),
                passed: true,
            },
            ThresholdResult {
                metric: "session.revocation_window_ms.max".into(),
                condition: "<= 0".into(),
                actual: Some(0.0),
                passed: true,
            },
        ],
        warnings: vec!["driver CPU reached 40% of one core".into()],
        part: None,
        parts: Vec::new(),
    }
}

/// A matrix sweep: jwt over `alg` (categorical) and `pad_bytes` (numeric).
pub fn matrix_report() -> Report {
    let mut r = sample_report();
    r.strategies.clear();
    for (ai, alg) in ["HS256", "ES256", "RS256"].iter().enumerate() {
        for (pi, pad) in [0u32, 512, 2048].iter().enumerate() {
            let mut s =
                strategy(&format!("jwt alg={alg} pad_bytes={pad}"), "jwt", 100 + pi as u64 * 20 + ai as u64 * 5);
            s.variant =
                BTreeMap::from([("alg".to_string(), alg.to_string()), ("pad_bytes".to_string(), pad.to_string())]);
            s.credential_bytes = 200.0 + f64::from(*pad) * 1.34;
            s.target_cpu_us_per_request = Some([8.0, 60.0, 45.0][ai] + pi as f64);
            r.strategies.push(s);
        }
    }
    r
}

/// Minimal XML well-formedness: balanced, properly nested tags with a single `<svg>` root.
fn assert_well_formed_svg(text: &str, what: &str) {
    let start = text.find("<svg").unwrap_or_else(|| panic!("{what}: no <svg root"));
    assert!(
        text[..start].trim().is_empty() || text[..start].trim_start().starts_with("<?xml"),
        "{what}: junk before <svg"
    );
    let mut stack: Vec<String> = Vec::new();
    let mut rest = &text[start..];
    let mut roots = 0;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').unwrap_or_else(|| panic!("{what}: unterminated tag")) + open;
        let tag = &rest[open + 1..close];
        if let Some(name) = tag.strip_prefix('/') {
            let top = stack.pop().unwrap_or_else(|| panic!("{what}: stray </{name}>"));
            assert_eq!(top, name.trim(), "{what}: mismatched closing tag");
        } else if !tag.starts_with('!') && !tag.starts_with('?') {
            let name: String = tag.chars().take_while(|c| !c.is_whitespace() && *c != '/').collect();
            if stack.is_empty() {
                roots += 1;
                assert_eq!(name, "svg", "{what}: root element is not svg");
            }
            if !tag.ends_with('/') {
                stack.push(name);
            }
        }
        rest = &rest[close + 1..];
    }
    assert!(stack.is_empty(), "{what}: unclosed tags {stack:?}");
    assert_eq!(roots, 1, "{what}: expected exactly one root");
    assert!(rest.trim().is_empty(), "{what}: text after the root");
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// PNG signature, chunk CRCs, IHDR dimensions, IDAT and IEND present. Returns (width, height).
fn assert_valid_png(bytes: &[u8], what: &str) -> (u32, u32) {
    assert!(bytes.len() > 3_000, "{what}: PNG is only {} bytes", bytes.len());
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{what}: PNG signature");
    let mut pos = 8;
    let mut dims = None;
    let mut idat = 0usize;
    let mut iend = false;
    while pos + 12 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &bytes[pos + 4..pos + 8];
        let data = &bytes[pos + 8..pos + 8 + len];
        let crc = u32::from_be_bytes(bytes[pos + 8 + len..pos + 12 + len].try_into().unwrap());
        assert_eq!(crc, crc32(&bytes[pos + 4..pos + 8 + len]), "{what}: bad CRC in {}", String::from_utf8_lossy(kind));
        match kind {
            b"IHDR" => {
                dims = Some((
                    u32::from_be_bytes(data[0..4].try_into().unwrap()),
                    u32::from_be_bytes(data[4..8].try_into().unwrap()),
                ))
            }
            b"IDAT" => idat += len,
            b"IEND" => iend = true,
            _ => {}
        }
        pos += 12 + len;
    }
    assert!(iend, "{what}: no IEND");
    assert!(idat > 2_000, "{what}: image data is trivially small ({idat} bytes)");
    let (w, h) = dims.unwrap_or_else(|| panic!("{what}: no IHDR"));
    assert!(w >= 600 && h >= 200, "{what}: tiny image {w}x{h}");
    (w, h)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

const EXPECTED_PLOTS: [&str; 12] = [
    "latency-api",
    "latency-login",
    "latency-logout",
    "latency-refresh",
    "timeline-latency",
    "timeline-throughput",
    "bytes",
    "store-ops",
    "store-cpu",
    "target-cpu",
    "revocation-window",
    "capacity",
];

#[test]
fn render_writes_every_plot_as_valid_svg_and_png() {
    let dir = tempfile::tempdir().unwrap();
    let r = sample_report();
    report::render(dir.path(), &r).unwrap();
    assert!(dir.path().join("report.html").is_file());
    assert!(dir.path().join("report.md").is_file());
    assert!(!dir.path().join("summary.csv").exists(), "summary.csv is the driver's");
    for stem in EXPECTED_PLOTS {
        let svg = read(&dir.path().join("plots").join(format!("{stem}.svg")));
        assert_well_formed_svg(&svg, stem);
        assert!(svg.contains("font-family=\"DejaVu Sans\""), "{stem}: embedded font name");
        assert!(!svg.contains("href"), "{stem}: SVG must be self-contained");
        let png = std::fs::read(dir.path().join("plots").join(format!("{stem}.png"))).unwrap();
        let (w, h) = assert_valid_png(&png, stem);
        assert!(svg.contains(&format!("viewBox=\"0 0 {w} {h}\"")), "{stem}: SVG and PNG sizes differ");
    }
    // One drawn line per strategy in the spectrum, and every strategy named in the bar charts.
    let api = read(&dir.path().join("plots/latency-api.svg"));
    let lines = api.matches("<polyline").count() + api.matches("<path").count();
    assert!(lines >= r.strategies.len(), "latency-api: {lines} lines for {} strategies", r.strategies.len());
    for stem in ["latency-api", "bytes", "store-ops", "target-cpu", "revocation-window", "timeline-throughput"] {
        let svg = read(&dir.path().join("plots").join(format!("{stem}.svg")));
        for s in &r.strategies {
            assert!(svg.contains(&s.name), "{stem}: strategy {} not named", s.name);
        }
    }
}

#[test]
fn nulls_read_not_measured_and_bounds_are_marked() {
    let dir = tempfile::tempdir().unwrap();
    report::render(dir.path(), &sample_report()).unwrap();
    let cpu = read(&dir.path().join("plots/target-cpu.svg"));
    assert!(cpu.contains("not measured"), "null target CPU must read 'not measured'");
    let rev = read(&dir.path().join("plots/revocation-window.svg"));
    assert!(rev.contains(BOUND_TEXT), "bounded window label missing");
    let md = read(&dir.path().join("report.md"));
    let refresh_row = md.lines().find(|l| l.starts_with("| jwt-refresh |")).unwrap();
    assert!(refresh_row.contains("not measured"), "{refresh_row}");
    assert!(refresh_row.contains(BOUND_TEXT), "{refresh_row}");
    let html = read(&dir.path().join("report.html"));
    assert!(html.contains("not measured"));
}

#[test]
fn html_is_self_contained() {
    let dir = tempfile::tempdir().unwrap();
    report::render(dir.path(), &sample_report()).unwrap();
    let html = read(&dir.path().join("report.html"));
    for bad in ["http://", "https://", "src=", "<link", "@import", "url(", "<script", "<img", "<iframe", "xlink:href"] {
        assert!(!html.contains(bad), "report.html contains `{bad}`");
    }
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.matches("<svg").count() >= 12, "plots are inlined");
    for section in [
        "id=\"decision\"",
        "id=\"tradeoffs\"",
        "id=\"articles\"",
        "id=\"warnings\"",
        "id=\"thresholds\"",
        "id=\"method\"",
    ] {
        assert!(html.contains(section), "missing section {section}");
    }
    // The method names how latency was corrected, the machine and the version.
    assert!(html.contains("intended send time"));
    assert!(html.contains("target pinned to CPU 1"));
    assert!(html.contains("0123456789abcdef0123456789abcdef01234567"));
    // Trade-offs cite measured figures against the control.
    assert!(html.contains("session: +60 µs p50 (+240 µs p99) over none"), "trade-off sentence");
}

#[test]
fn unexpected_allow_is_loud() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = sample_report();
    r.strategies[2].outcomes.unexpected_allow = 3;
    report::render(dir.path(), &r).unwrap();
    let html = read(&dir.path().join("report.html"));
    assert!(html.contains("<td class=\"alarm\">3</td>"));
    assert!(html.contains("SECURITY FAILURE"));
    let md = read(&dir.path().join("report.md"));
    assert!(md.contains("**3 ⚠**"));
    assert!(md.contains("SECURITY FAILURE"));
}

/// Every cell of the decision table in report.md, by row (header and rule excluded).
fn md_decision_rows(md: &str) -> Vec<Vec<String>> {
    let table = md.split("## Decision table").nth(1).unwrap();
    table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().to_string()).collect())
        .collect()
}

fn outage(during: &[(&str, u64)], recovery_ms: Option<f64>) -> OutageResult {
    OutageResult {
        mode: "pause".into(),
        at_s: 2.0,
        duration_s: 2.0,
        during: during.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
        first_failure_ms: during.iter().any(|(k, _)| *k != "200").then_some(3.0),
        recovery_ms,
        ..OutageResult::default()
    }
}

#[test]
fn without_an_outage_store_down_is_not_measured_and_nothing_is_design() {
    let dir = tempfile::tempdir().unwrap();
    let r = sample_report();
    report::render(dir.path(), &r).unwrap();
    let md = read(&dir.path().join("report.md"));
    let rows = md_decision_rows(&md);
    assert_eq!(rows.len(), r.strategies.len());
    for row in &rows {
        assert_eq!(row[8], "not measured", "store-down cell: {row:?}");
        for cell in row {
            assert!(!cell.contains("design"), "a decision-table cell speaks of design: {cell}");
        }
    }
    let html = read(&dir.path().join("report.html"));
    for page in [&md, &html] {
        assert!(!page.contains("by design") && !page.contains("(design)") && !page.contains("not exercised"));
        assert!(!page.contains("back in"), "nothing failed, so nothing came back");
    }
    assert!(html.contains("store down: not measured, this run injected no store outage"), "articles' section");
}

#[test]
fn with_an_outage_store_down_shows_what_was_measured() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = sample_report();
    r.strategies[1].outage = Some(outage(&[("503", 176), ("200", 4)], Some(12.0)));
    r.strategies[2].outage = Some(outage(&[("200", 180)], Some(0.0)));
    report::render(dir.path(), &r).unwrap();
    let md = read(&dir.path().join("report.md"));
    let rows = md_decision_rows(&md);
    assert_eq!(rows[1][8], "measured (pause 2.0 s): partly failed (503 ×176, 200 ×4), back in 12 ms");
    assert_eq!(rows[2][8], "measured (pause 2.0 s): stayed up (200 ×180)", "no 'back in' for what never failed");
    assert_eq!(rows[3][8], "not measured", "the outage did not cover jwt-denylist");
    let html = read(&dir.path().join("report.html"));
    assert!(!html.contains("not exercised") && !html.contains("by design"));
    assert!(html.contains("what the store outage this run injected did"), "articles' section names the outage");
    assert!(html.contains("Store down: measured (pause 2.0 s): partly failed"), "trade-off sentence cites it");
}

#[test]
fn revocation_bound_reads_the_same_in_terminal_markdown_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let r = sample_report();
    report::render(dir.path(), &r).unwrap();
    let terminal = output::summary_table(&r);
    let md = read(&dir.path().join("report.md"));
    let html = read(&dir.path().join("report.html"));
    for (page, text) in [("terminal", &terminal), ("report.md", &md), ("report.html", &html)] {
        assert!(text.contains(BOUND_TEXT), "{page} lacks `{BOUND_TEXT}`");
        assert!(!text.contains("≥ 5.5") && !text.contains("<=330000"), "{page} prints the bound the wrong way round");
    }
    // An observed window is printed as observed.
    assert!(terminal.contains("0 ms (40 probes)"), "{terminal}");
    let jwt = &r.strategies[2];
    assert_eq!(figures::revocation_window_text(jwt), BOUND_TEXT);
}

#[test]
fn tables_and_csv_draw_their_figures_from_the_registry() {
    let keys: Vec<&str> = figures::all().map(|f| f.key).collect();
    let dir = tempfile::tempdir().unwrap();
    let r = sample_report();
    output::write_summary_csv(dir.path(), &r).unwrap();
    let csv = read(&dir.path().join("summary.csv"));
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(&header[..2], ["strategy", "operation"]);
    for col in &header[2..] {
        assert!(keys.contains(col), "summary.csv column `{col}` is not a registry key");
    }
    assert!(header.contains(&"store.ops_per_request") && header.contains(&"revocation_window_ms.max"));
    let session_api = csv.lines().find(|l| l.starts_with("session,api,")).unwrap();
    let ops_col = header.iter().position(|c| *c == "store.ops_per_request").unwrap();
    assert_eq!(session_api.split(',').nth(ops_col), Some("1"));
    let labels: Vec<String> = figures::all()
        .flat_map(|f| [f.label.to_string(), format!("api {}", f.label)])
        .chain(["strategy".to_string(), "store down".to_string()])
        .collect();
    let terminal = output::summary_table(&r);
    let terminal_head: Vec<&str> =
        terminal.lines().next().unwrap().split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(terminal_head.len(), 11, "{terminal_head:?}");
    for head in terminal_head {
        assert!(labels.iter().any(|l| l == head), "terminal head `{head}` is not a registry label");
    }
    report::render(dir.path(), &r).unwrap();
    let md = read(&dir.path().join("report.md"));
    let md_head = md.lines().find(|l| l.starts_with("| strategy |")).unwrap();
    for head in md_head.trim_matches('|').split(" | ").map(str::trim) {
        assert!(labels.iter().any(|l| l == head), "decision-table head `{head}` is not a registry label");
    }
}

/// Targets of Markdown links and images (`](target)`) and of HTML `href`/`src` attributes.
fn link_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in text.split("](").skip(1) {
        out.push(part.split(')').next().unwrap().to_string());
    }
    for attr in ["href=\"", "src=\""] {
        for part in text.split(attr).skip(1) {
            out.push(part.split('"').next().unwrap().to_string());
        }
    }
    out
}

#[test]
fn every_link_in_the_report_resolves_to_a_written_file() {
    for r in [sample_report(), matrix_report(), revocation_sweep_report()] {
        let dir = tempfile::tempdir().unwrap();
        report::render(dir.path(), &r).unwrap();
        let md = read(&dir.path().join("report.md"));
        let html = read(&dir.path().join("report.html"));
        let md_links = link_targets(&md);
        assert!(!md_links.is_empty(), "report.md links its plots");
        for target in md_links.iter().chain(link_targets(&html).iter()) {
            if let Some(anchor) = target.strip_prefix('#') {
                assert!(html.contains(&format!("id=\"{anchor}\"")), "dangling anchor #{anchor}");
                continue;
            }
            assert!(dir.path().join(target).is_file(), "the report links `{target}`, which it did not write");
        }
    }
}

/// jwt and jwt-refresh swept over access_ttl (2, 5, 10 s) and leeway (0, 2 s): windows observed.
fn revocation_sweep_report() -> Report {
    let mut r = sample_report();
    r.strategies.clear();
    for kind in ["jwt", "jwt-refresh"] {
        for ttl in [2u64, 5, 10] {
            for leeway in [0u64, 2] {
                let mut s = strategy(&format!("{kind} access_ttl={ttl}s leeway={leeway}s"), kind, 120);
                s.variant = BTreeMap::from([
                    ("access_ttl".to_string(), format!("{ttl}s")),
                    ("leeway".to_string(), format!("{leeway}s")),
                ]);
                let window_ms = (ttl * 1000) as f64 * 0.8 + (leeway * 1000) as f64 * 0.9;
                s.revocation_window_ms = RevocationWindow {
                    p50: Some(window_ms),
                    max: Some(window_ms),
                    probes: 5,
                    bounded: false,
                    observed_max: Some(window_ms),
                    access_ttl_s: Some(ttl as f64),
                    leeway_s: Some(leeway as f64),
                    ..RevocationWindow::default()
                };
                r.strategies.push(s);
            }
        }
    }
    r
}

#[test]
fn revocation_sweep_plots_the_observed_window_against_ttl_plus_leeway() {
    let dir = tempfile::tempdir().unwrap();
    report::render(dir.path(), &revocation_sweep_report()).unwrap();
    let svg = read(&dir.path().join("plots/revocation-vs-ttl.svg"));
    assert_well_formed_svg(&svg, "revocation-vs-ttl");
    assert!(svg.contains("access TTL + leeway"));
    let html = read(&dir.path().join("report.html"));
    // Mean window beyond the TTL: 0.8 * ttl - ttl (mean over 2, 5, 10 s: -1.13 s) plus 0.9 * leeway.
    assert!(html.contains("leeway 0 s: -1.13 s beyond the access TTL"), "what the leeway adds");
    assert!(html.contains("leeway 2 s: 0.67 s beyond the access TTL"), "what the leeway adds");
    // Without a sweep, no such plot.
    let plain = tempfile::tempdir().unwrap();
    report::render(plain.path(), &sample_report()).unwrap();
    assert!(!plain.path().join("plots/revocation-vs-ttl.svg").exists());
}

#[test]
fn docs_figures_match_the_registry() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let mut checked = 0;
    for name in ["design.md"] {
        let path = docs.join(name);
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let Some(expected) = figures::with_docs_section(&text) else { continue };
        if std::env::var_os("AUTHBENCH_BLESS").is_some() {
            std::fs::write(&path, &expected).unwrap();
            checked += 1;
            continue;
        }
        assert_eq!(
            text,
            expected,
            "{} is out of step with the figure registry: rerun with AUTHBENCH_BLESS=1",
            path.display()
        );
        checked += 1;
    }
    assert!(checked > 0, "no docs page holds the figure definitions between the figures markers");
}

#[test]
fn rendering_is_deterministic() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    report::render(a.path(), &sample_report()).unwrap();
    report::render(b.path(), &sample_report()).unwrap();
    assert_eq!(read(&a.path().join("report.md")), read(&b.path().join("report.md")));
    assert_eq!(read(&a.path().join("report.html")), read(&b.path().join("report.html")));
}

#[test]
fn matrix_sweeps_plot_the_swept_option() {
    let dir = tempfile::tempdir().unwrap();
    report::render(dir.path(), &matrix_report()).unwrap();
    for stem in ["sweep-alg-cpu", "sweep-alg-p99", "sweep-alg-bytes", "sweep-pad_bytes-p99", "sweep-pad_bytes-cpu"] {
        let p = dir.path().join("plots").join(format!("{stem}.svg"));
        let svg = read(&p);
        assert_well_formed_svg(&svg, stem);
        assert_valid_png(&std::fs::read(p.with_extension("png")).unwrap(), stem);
    }
    let alg = read(&dir.path().join("plots/sweep-alg-cpu.svg"));
    assert!(alg.contains("alg=ES256"), "categorical sweep labels its values");
    let pad = read(&dir.path().join("plots/sweep-pad_bytes-p99.svg"));
    assert!(pad.contains("jwt alg=HS256"), "numeric sweep: one line per fixed-option group");
}

#[test]
fn hgrm_files_give_full_curves() {
    let text = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n\
                     100.000 0.000000000000          1           1.00\n\
                     150.000 0.500000000000        500           2.00\n\
                     400.000 0.990000000000        990         100.00\n\
                    2000.000 1.000000000000       1000\n\
                #[Mean    =      160.000, StdDeviation   =       50.000]\n\
                #[Max     =     2000.000, Total count    =         1000]\n";
    let pts = parse_hgrm(text);
    assert_eq!(pts.len(), 4, "the last row may leave out 1/(1-Percentile): {pts:?}");
    assert_eq!(pts[1].value_us, 150.0);
    assert_eq!(pts[3].value_us, 2000.0);
    let full_text = text.replace("       1000\n", "       1000            inf\n");
    let full = parse_hgrm(&full_text);
    assert_eq!(full.len(), 4, "{full:?}");
    assert_eq!(full[3].percentile, 1.0);
    let dir = tempfile::tempdir().unwrap();
    let hist = dir.path().join("hist/jwt");
    std::fs::create_dir_all(&hist).unwrap();
    std::fs::write(hist.join("api.hgrm"), &full_text).unwrap();
    report::render(dir.path(), &sample_report()).unwrap();
    let html = read(&dir.path().join("report.html"));
    assert!(html.contains("Full curves where hist/"), "the caption says which curves are full");
}

#[test]
fn knee_is_first_stage_past_twice_base_p99_or_short_of_rate() {
    let st = |rate: f64, achieved: f64, p99: u64| StageResult {
        target_rate_per_sec: rate,
        achieved_rps: achieved,
        p50_us: 1,
        p99_us: p99,
        errors: 0,
    };
    assert_eq!(knee_index(&[]), None);
    assert_eq!(knee_index(&[st(100.0, 100.0, 500), st(200.0, 200.0, 900)]), None);
    assert_eq!(knee_index(&[st(100.0, 100.0, 500), st(200.0, 200.0, 900), st(400.0, 400.0, 1001)]), Some(2));
    assert_eq!(knee_index(&[st(100.0, 100.0, 500), st(200.0, 180.0, 600)]), Some(1));
}

#[test]
fn render_many_overlays_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut other = sample_report();
    other.strategies.truncate(2);
    report::render_many(dir.path(), &[("before".into(), sample_report()), ("after".into(), other)]).unwrap();
    let svg = read(&dir.path().join("plots/latency-api.svg"));
    assert!(svg.contains("before: jwt") && svg.contains("after: session"));
    let html = read(&dir.path().join("report.html"));
    assert!(html.contains("<h3>Run before</h3>") && html.contains("<h3>Run after</h3>"));
}

#[test]
fn report_command_reproduces_the_tables_from_report_json() {
    let dir = tempfile::tempdir().unwrap();
    let r = sample_report();
    std::fs::write(dir.path().join("report.json"), serde_json::to_string_pretty(&r).unwrap()).unwrap();
    report::render(dir.path(), &r).unwrap();
    let original = read(&dir.path().join("report.md"));
    std::fs::remove_file(dir.path().join("report.md")).unwrap();
    std::fs::remove_dir_all(dir.path().join("plots")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_authbench")).arg("report").arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(read(&dir.path().join("report.md")), original);
    assert!(dir.path().join("plots/latency-api.png").is_file());

    // Several directories overlay into -o OUT.
    let second = tempfile::tempdir().unwrap();
    std::fs::write(second.path().join("report.json"), serde_json::to_string(&r).unwrap()).unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_authbench"))
        .arg("report")
        .arg(dir.path())
        .arg(second.path())
        .arg("-o")
        .arg(out_dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out_dir.path().join("report.html").is_file());

    // Without -o, several directories are refused with a clear message.
    let out = Command::new(env!("CARGO_BIN_EXE_authbench"))
        .arg("report")
        .arg(dir.path())
        .arg(second.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-o OUT"));

    // A directory without report.json is an error, not an empty report.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_authbench")).arg("report").arg(empty.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("report.json"));
}

/// Writes the sample runs (each a report.json + its rendered report: the sample, a matrix, a
/// revocation sweep, one with a store outage, one with an `.hgrm` full curve, and an overlay of two)
/// under `$AUTHBENCH_SAMPLE_OUT`, for looking at them (`scripts/check-report-render`) or diffing a
/// refactor's output against a saved copy. Ignored by default.
#[test]
#[ignore]
fn write_sample_report_for_inspection() {
    let Some(out) = std::env::var_os("AUTHBENCH_SAMPLE_OUT") else { return };
    let out = Path::new(&out);
    let mut with_outage = sample_report();
    with_outage.strategies[1].outage = Some(outage(&[("503", 176), ("200", 4)], Some(12.0)));
    with_outage.strategies[2].outage = Some(outage(&[("200", 180)], Some(0.0)));
    let runs = [
        ("sample", sample_report()),
        ("matrix", matrix_report()),
        ("revocation", revocation_sweep_report()),
        ("outage", with_outage),
        ("hgrm", sample_report()),
    ];
    for (name, r) in &runs {
        let dir = out.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("report.json"), serde_json::to_string_pretty(r).unwrap()).unwrap();
        if *name == "hgrm" {
            // One full curve from a percentile file, the rest from the summary percentiles.
            let hist = dir.join("hist/jwt");
            std::fs::create_dir_all(&hist).unwrap();
            let hgrm = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n\
                            100.000 0.000000000000          1           1.00\n\
                            150.000 0.500000000000        500           2.00\n\
                            400.000 0.990000000000        990         100.00\n\
                           2000.000 1.000000000000       1000            inf\n";
            std::fs::write(hist.join("api.hgrm"), hgrm).unwrap();
        }
        report::render(&dir, r).unwrap();
    }
    let overlay: Vec<(String, Report)> = runs.iter().take(2).map(|(n, r)| (n.to_string(), r.clone())).collect();
    let dir = out.join("overlay");
    std::fs::create_dir_all(&dir).unwrap();
    report::render_many(&dir, &overlay).unwrap();
}

#[test]
fn permission_lookups_say_how_much_of_the_jwt_advantage_survives() {
    let with_authz = |name: &str, kind: &str, authz: &str, cpu: f64, ops: f64| {
        let mut s = strategy(name, kind, 400);
        s.variant.insert("authz".to_string(), authz.to_string());
        s.target_cpu_us_per_request = Some(cpu);
        s.store.ops_per_request = Some(ops);
        s
    };
    let mut r = sample_report();
    r.strategies = vec![
        strategy("none", "none", 300),
        with_authz("session authz=claims", "session", "claims", 20.0, 1.0),
        with_authz("jwt authz=claims", "jwt", "claims", 12.0, 0.0),
        with_authz("jwt authz=store", "jwt", "store", 18.0, 1.0),
    ];
    let dir = tempfile::tempdir().unwrap();
    report::render(dir.path(), &r).unwrap();
    let html = read(&dir.path().join("report.html"));
    assert!(html.contains("Permission lookups"), "the question is asked");
    // CPU: session 20, jwt 12 -> gap 8; with the lookup 18 -> 2 of 8 kept = 25 %.
    assert!(html.contains("25 % of it kept"), "CPU share: {html}");
    // Store ops: gap 1, with the lookup level with session: nothing kept.
    assert!(html.contains("none of it kept"), "store-ops share");

    // Without an authz=store twin there is nothing to answer.
    r.strategies.pop();
    let dir = tempfile::tempdir().unwrap();
    report::render(dir.path(), &r).unwrap();
    assert!(!read(&dir.path().join("report.html")).contains("Permission lookups"));
}

#[test]
fn cached_answer_places_each_cached_strategy_between_its_sibling_and_the_stateless_jwt() {
    let with = |name: &str, cpu: f64, ops: f64| {
        let mut s = strategy(name, name, 300);
        s.target_cpu_us_per_request = Some(cpu);
        s.store.ops_per_request = Some(ops);
        s
    };
    let mut cached = with("session-cached", 12.0, 0.05);
    // 90 000 api requests (the sample's api count); 1 800 lookups went to the store.
    let events = [("hit", 88_200), ("miss", 1_500), ("bypass", 300)];
    cached.cache = Some(CacheResult {
        events: events.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
        entries: 100,
        accounted_bytes: 20_000,
        max_entries: 1000,
    });
    let mut r = sample_report();
    r.strategies = vec![strategy("none", "none", 100), with("session", 20.0, 1.0), with("jwt", 10.0, 0.0), cached];
    let c = r.strategies.iter().find(|s| s.name == "session-cached").expect("cached");
    assert_eq!(figures::CACHE_STORE_READS_PER_API_REQUEST.value(c, ""), Some(0.02));
    let dir = tempfile::tempdir().unwrap();
    report::render(dir.path(), &r).unwrap();
    let html = read(&dir.path().join("report.html"));
    assert!(html.contains("Cached strategies: between a JWT and a session"), "the question is asked");
    // CPU 12 between jwt 10 and session 20: a fifth of the way.
    assert!(html.contains("20 % of the way from jwt to session"), "{html}");
    assert!(html.contains("at most 0.020 per api request"), "api store reads: {html}");
    let md = read(&dir.path().join("report.md"));
    assert!(md.contains("Between jwt (0 %) and session (100 %), measured here: target CPU 20 %"), "trade-off: {md}");

    // Without a measured cache there is nothing to place.
    r.strategies.pop();
    let dir = tempfile::tempdir().unwrap();
    report::render(dir.path(), &r).unwrap();
    assert!(!read(&dir.path().join("report.html")).contains("Cached strategies: between"));
}

#[test]
fn web_api_answer_gives_each_population_beside_the_designs_alone() {
    let mixed = |share: &str, clients: &[(&str, u64)]| {
        let mut s = strategy(&format!("web+api api_client_fraction={share}"), "web+api", 200);
        s.variant.insert("api_client_fraction".to_string(), share.to_string());
        s.latency_by_client_us = clients.iter().map(|(c, p50)| (c.to_string(), lat(*p50, 100))).collect();
        s.auth_paths = BTreeMap::from([("session".to_string(), 60), ("bearer".to_string(), 40)]);
        s
    };
    let mut r = sample_report();
    r.strategies = vec![
        strategy("none", "none", 80),
        strategy("session", "session", 140),
        strategy("jwt", "jwt", 120),
        strategy("jwt-denylist", "jwt-denylist", 160),
        mixed("0.5", &[("browser", 150), ("api", 175)]),
        mixed("1", &[("api", 180)]),
    ];
    let dir = tempfile::tempdir().unwrap();
    report::render(dir.path(), &r).unwrap();
    let html = read(&dir.path().join("report.html"));
    assert!(html.contains("Sessions for the web, JWTs for APIs"), "the question is asked");
    let line = |name: &str| {
        let li = |l: &&str| l.starts_with("<li>") && l.contains(name);
        html.lines().find(li).unwrap_or_else(|| panic!("{name} in {html}")).to_owned()
    };
    let half = line("web+api api_client_fraction=0.5: browsers api p50 150");
    assert!(half.contains("API clients api p50 175") && half.contains("bearer 40 %, session 60 %"), "{half}");
    let all_api = line("web+api api_client_fraction=1: browsers not measured");
    assert!(all_api.contains("API clients api p50 180"), "{all_api}");
    for alone in ["session (alone)", "jwt-denylist (alone)"] {
        assert!(line(alone).contains("target CPU per request"), "{alone} beside it");
    }
    assert!(!html.contains("<li>jwt (alone)"), "a design without immediate revocation is not one of its paths");

    // Without a strategy serving both kinds of client, nothing to answer.
    r.strategies.truncate(4);
    let dir = tempfile::tempdir().unwrap();
    report::render(dir.path(), &r).unwrap();
    assert!(!read(&dir.path().join("report.html")).contains("JWTs for APIs"));
}

#[test]
fn scale_claims_are_answered_from_the_run_unit_costs() {
    let dir = tempfile::tempdir().unwrap();
    report::render(dir.path(), &sample_report()).unwrap();
    let html = read(&dir.path().join("report.html"));
    // session: 2.5 µs of store CPU per request -> one command thread saturates at 400 000 req/s.
    // (fmt::num groups thousands with a narrow no-break space.)
    assert!(html.contains("saturates at about 400\u{202f}000 req/s"), "{html}");
    // jwt: no store commands; its 281-byte credential is 28.1 MB/s at 100 000 req/s.
    assert!(html.contains("no store commands on the request path"));
    assert!(html.contains("28.1 MB/s at 100\u{202f}000 req/s"), "{html}");
}

#[test]
fn failover_rows_name_the_cluster_master_and_the_share_a_partial_outage_cost() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = sample_report();
    let requests = r.strategies[1].requests;
    r.strategies[1].failover = Some(FailoverResult {
        mode: "kill".into(),
        store: "cluster".into(),
        replicas: 0,
        failed_slots: Some("0-5460".into()),
        key_share: 5461.0 / 16384.0,
        at_s: 2.0,
        first_failure_ms: Some(1.0),
        failed_answers: 400,
        errors_in_window: requests / 4,
        revocations_acknowledged: Some(30),
        revocations_refused: Some(10),
        revocations_lost: Some(0),
        replays_unanswered: 9,
        ..FailoverResult::default()
    });
    r.strategies[3].failover = Some(FailoverResult {
        mode: "cut-replication".into(),
        store: "cluster".into(),
        replicas: 1,
        failed_slots: Some("0-5460".into()),
        key_share: 5461.0 / 16384.0,
        at_s: 2.0,
        lead_ms: 300.0,
        promoted_after_ms: Some(1800.0),
        revocations_lost: Some(3),
        ..FailoverResult::default()
    });
    report::render(dir.path(), &r).unwrap();
    let md = read(&dir.path().join("report.md"));
    assert!(md.contains("## Failover (Sentinel, Redis Cluster)"), "{md}");
    assert!(
        md.contains("cluster master, slots 0-5460 (33 % of keys, no replica: partial outage): kill at 2.0 s"),
        "{md}"
    );
    assert!(md.contains(&format!("{} of {requests} (25.0 %)", requests / 4)), "the share the dead slots cost: {md}");
    assert!(md.contains("none: no replica (its slots stay down)"), "{md}");
    assert!(md.contains("not back: no replica (400 failed answers)"), "{md}");
    assert!(md.contains("9 (503: keys on the dead master)"), "{md}");
    assert!(md.contains("cluster master, slots 0-5460 (33 % of keys, 1 replica(s)): cut-replication"), "{md}");
    assert!(md.contains("3 LOST (unexpected allow)"), "{md}");
    let pct = figures::all().find(|f| f.key == "failover.errors_pct").unwrap();
    assert_eq!(pct.value(&r.strategies[1], ""), Some(100.0 * (requests / 4) as f64 / requests as f64));
}
