//! Writing a results directory: `report.json`, `summary.csv`, per-operation HdrHistogram percentile
//! files (`hist/<strategy>/<op>.hgrm`, as wrk2 and HdrHistogram print them), HdrHistogram interval
//! logs (`hist/<strategy>/intervals.hlog`), the run's `README.md`, and the terminal summary table.
//! `results/README.md` documents the layout.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2Serializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use crate::engine::record::{FinishedInterval, Op, new_histogram};
use crate::figures::{self, Figure};
use crate::results::{LatencySummary, Report};

/// File-name-safe form of a strategy label (`jwt alg=ES256` -> `jwt_alg_ES256`); the same rule as
/// the report's reader.
pub fn slug(s: &str) -> String {
    let mut out: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
    while out.contains("__") {
        out = out.replace("__", "_");
    }
    out.trim_matches('_').to_string()
}

/// `2026-05-01T12:34:56Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, (s / 60) % 60, s % 60)
}

/// `20260501-123456` for directory names.
pub fn dir_stamp(t: SystemTime) -> String {
    rfc3339(t).replace(['-', ':'], "").replace('T', "-").trim_end_matches('Z').to_owned()
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Summary figures of a µs histogram.
pub fn summarize(h: &Histogram<u64>) -> LatencySummary {
    if h.is_empty() {
        return LatencySummary::default();
    }
    LatencySummary {
        count: h.len(),
        mean: h.mean(),
        p50: h.value_at_quantile(0.5),
        p90: h.value_at_quantile(0.9),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
        min: h.min(),
        stdev: h.stdev(),
    }
}

/// The HdrHistogram percentile distribution text (values in microseconds).
pub fn hgrm_text(h: &Histogram<u64>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "       Value     Percentile TotalCount 1/(1-Percentile)\n");
    for (value, q, total) in crate::report::hgrm::rows(h) {
        if q < 1.0 {
            let _ = writeln!(out, "{:12.3} {:2.12} {:10} {:14.2}", value as f64, q, total, 1.0 / (1.0 - q));
        } else {
            let _ = writeln!(out, "{:12.3} {:2.12} {:10}", value as f64, q, total);
        }
    }
    let _ = writeln!(out, "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]", h.mean(), h.stdev());
    let _ = writeln!(out, "#[Max     = {:12.3}, Total count    = {:12}]", h.max() as f64, h.len());
    // 3 significant digits: 2048 sub-buckets per bucket.
    let _ = writeln!(out, "#[Buckets = {:12}, SubBuckets     = {:12}]", h.buckets(), 2048);
    let _ = writeln!(out, "# values in microseconds");
    out
}

/// Write `hist/<slug>/<op>.hgrm` (latency) and `<op>.service.hgrm` (uncorrected) for every
/// operation that has requests.
pub fn write_histograms(dir: &Path, label: &str, ops: &[(Op, &Histogram<u64>, &Histogram<u64>)]) -> anyhow::Result<()> {
    let d = dir.join("hist").join(slug(label));
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    for (op, latency, service) in ops {
        if latency.is_empty() {
            continue;
        }
        std::fs::write(d.join(format!("{}.hgrm", op.name())), hgrm_text(latency))?;
        std::fs::write(d.join(format!("{}.service.hgrm", op.name())), hgrm_text(service))?;
    }
    Ok(())
}

/// The file holding a variant's full-resolution histograms: `hist/<slug>/histograms.b64`.
pub const FULL_HISTOGRAMS_FILE: &str = "histograms.b64";

/// Write `hist/<slug>/histograms.b64`: every histogram of the variant at full resolution
/// (HdrHistogram V2 serialization, base64), one per line as `<name> <base64>`. Names are
/// `latency.<op>`, `service.<op>` and `api_outcome.<outcome>`. `authbench merge` adds these
/// exactly; the `.hgrm` files are percentiles only.
pub fn write_full_histograms(dir: &Path, label: &str, rec: &crate::engine::record::Recorder) -> anyhow::Result<()> {
    use base64::Engine as _;
    use hdrhistogram::serialization::Serializer as _;
    let d = dir.join("hist").join(slug(label));
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    let mut named: Vec<(String, &Histogram<u64>)> = Vec::new();
    for op in Op::ALL {
        let s = &rec.ops[op as usize];
        if !s.latency.is_empty() {
            named.push((format!("latency.{}", op.name()), &s.latency));
            named.push((format!("service.{}", op.name()), &s.service));
        }
    }
    for o in crate::engine::record::Outcome::ALL {
        if let Some(h) = rec.api_by_outcome[o as usize].as_ref().filter(|h| !h.is_empty()) {
            named.push((format!("api_outcome.{}", o.name()), h));
        }
    }
    for c in crate::engine::record::ClientKind::ALL {
        if let Some(h) = rec.api_by_client[c as usize].as_ref().filter(|h| !h.is_empty()) {
            named.push((format!("api_client.{}", c.name()), h));
        }
    }
    let mut out = String::from(
        "# authbench full-resolution histograms (HdrHistogram V2, base64; values in µs): <name> <base64>\n",
    );
    let mut ser = V2Serializer::new();
    for (name, h) in named {
        let mut bytes = Vec::new();
        ser.serialize(h, &mut bytes).map_err(|e| anyhow::anyhow!("serializing histogram {name}: {e:?}"))?;
        let _ = writeln!(out, "{name} {}", base64::engine::general_purpose::STANDARD.encode(&bytes));
    }
    let path = d.join(FULL_HISTOGRAMS_FILE);
    std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Write `hist/<slug>/intervals.hlog`: one histogram per operation per second, tagged by operation.
pub fn write_interval_log(
    dir: &Path,
    label: &str,
    started: SystemTime,
    intervals: &[FinishedInterval],
) -> anyhow::Result<()> {
    let d = dir.join("hist").join(slug(label));
    std::fs::create_dir_all(&d)?;
    let path = d.join("intervals.hlog");
    let mut buf: Vec<u8> = Vec::new();
    let mut ser = V2Serializer::new();
    {
        let mut w = IntervalLogWriterBuilder::new()
            .add_comment(&format!("authbench interval log: {label}; values in microseconds; tag = operation"))
            .with_start_time(started)
            .with_base_time(started)
            .begin_log_with(&mut buf, &mut ser)?;
        for iv in intervals {
            for (i, compact) in iv.ops.iter().enumerate() {
                let Some(compact) = compact else { continue };
                // Written with the bounds of every other histogram of the run (1 µs .. 1 h).
                let mut h = new_histogram();
                h.add(compact).map_err(|e| anyhow::anyhow!("writing interval log: {e:?}"))?;
                let tag = Tag::new(Op::ALL[i].name());
                w.write_histogram(&h, Duration::from_secs(iv.index), Duration::from_secs(1), tag)
                    .map_err(|e| anyhow::anyhow!("writing interval log: {e:?}"))?;
            }
        }
    }
    std::fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

pub fn write_report_json(dir: &Path, report: &Report) -> anyhow::Result<PathBuf> {
    let path = dir.join("report.json");
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// `summary.csv`'s per-operation columns, after `strategy,operation`.
pub static CSV_OPERATION_FIGURES: [&Figure; 8] = [
    &figures::COUNT,
    &figures::MEAN_US,
    &figures::P50_US,
    &figures::P90_US,
    &figures::P99_US,
    &figures::P999_US,
    &figures::MAX_US,
    &figures::SERVICE_P99_US,
];

/// `summary.csv`'s per-strategy columns (repeated on each of the strategy's rows).
pub static CSV_STRATEGY_FIGURES: [&Figure; 10] = [
    &figures::THROUGHPUT_RPS,
    &figures::ERRORS_TOTAL,
    &figures::UNEXPECTED_ALLOW,
    &figures::UNEXPECTED_DENY,
    &figures::CREDENTIAL_BYTES,
    &figures::REQUEST_HEADER_BYTES,
    &figures::STORE_OPS_PER_REQUEST,
    &figures::TARGET_CPU_US_PER_REQUEST,
    &figures::REVOCATION_WINDOW_MS_MAX,
    &figures::REVOCATION_WINDOW_MS_OBSERVED_MAX,
];

/// A CSV number: integers as such, others with three decimals, nulls empty.
fn csv_value(v: Option<f64>) -> String {
    match v {
        None => String::new(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) => format!("{v:.3}"),
    }
}

/// The header of `summary.csv`: `strategy,operation`, then the registry keys of its figures.
pub fn summary_csv_header() -> String {
    let keys = CSV_OPERATION_FIGURES.iter().chain(CSV_STRATEGY_FIGURES.iter()).map(|f| f.key);
    std::iter::once("strategy").chain(std::iter::once("operation")).chain(keys).collect::<Vec<_>>().join(",")
}

/// One row per strategy and operation; the columns are registry figures, headed by their keys.
pub fn write_summary_csv(dir: &Path, report: &Report) -> anyhow::Result<()> {
    let mut out = summary_csv_header();
    out.push('\n');
    for s in &report.strategies {
        for op in s.latency_us.keys() {
            let values = CSV_OPERATION_FIGURES
                .iter()
                .chain(CSV_STRATEGY_FIGURES.iter())
                .map(|f| csv_value(f.value(s, op)))
                .collect::<Vec<_>>();
            let _ = writeln!(out, "{},{op},{}", csv_field(&s.name), values.join(","));
        }
    }
    std::fs::write(dir.join("summary.csv"), out)?;
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

/// The run's own README: the exact command, git SHA, scenario, tool versions and machine.
pub fn write_run_readme(dir: &Path, report: &Report) -> anyhow::Result<()> {
    let t = &report.tool;
    let m = &report.machine;
    let mut out = String::new();
    let _ = writeln!(out, "# authbench run: {}\n", report.scenario.name);
    let _ = writeln!(out, "{}\n", report.scenario.description);
    let _ = writeln!(out, "- command: `{}`", report.command);
    let _ = writeln!(out, "- started: {}", report.started_at);
    let _ = writeln!(out, "- git SHA: {}", t.git_sha.as_deref().unwrap_or("unknown"));
    let _ = writeln!(out, "- authbench {}; rustc: {}", t.version, t.rustc.as_deref().unwrap_or("unknown"));
    let _ = writeln!(out, "- redis-server: {}", t.redis_server.as_deref().unwrap_or("not used / not installed"));
    let _ = writeln!(out, "- store: {}", report.store_kind);
    let _ = writeln!(
        out,
        "- machine: {} CPUs, {}, kernel {}, memory {} bytes",
        m.cpus,
        m.cpu_model.as_deref().unwrap_or("unknown CPU"),
        m.kernel.as_deref().unwrap_or("unknown"),
        m.memory_bytes.map_or_else(|| "unknown".to_owned(), |b| b.to_string())
    );
    let _ = writeln!(out, "- pinning: {}", m.pinning);
    let tr = &report.traffic;
    let _ = writeln!(
        out,
        "- traffic: {} loop, {} connections{}, {} users, warm-up {} s, {} s measured per strategy",
        tr.mode,
        tr.connections,
        tr.rate_per_sec.map_or_else(String::new, |r| format!(", {r} req/s")),
        tr.users,
        tr.warmup_s,
        tr.duration_s
    );
    if report.interrupted {
        let _ = writeln!(out, "- **interrupted** (Ctrl-C): the figures cover what was measured before the stop");
    }
    for w in &report.warnings {
        let _ = writeln!(out, "- warning: {w}");
    }
    let _ = writeln!(out, "\n## Files\n");
    let _ = writeln!(out, "- `report.json`: every figure (schema: `results/schema.json` in the repository)");
    let _ = writeln!(out, "- `summary.csv`: one row per strategy and operation");
    let _ = writeln!(
        out,
        "- `hist/<strategy>/<op>.hgrm`: latency percentile distribution (µs; open loop: from the intended send time)"
    );
    let _ = writeln!(out, "- `hist/<strategy>/<op>.service.hgrm`: the same from the actual send time (uncorrected)");
    let _ = writeln!(
        out,
        "- `hist/<strategy>/intervals.hlog`: HdrHistogram interval log, one histogram per operation per second"
    );
    let _ = writeln!(
        out,
        "- `hist/<strategy>/histograms.b64`: every histogram at full resolution (HdrHistogram V2, base64), for \
         `authbench merge`"
    );
    let _ = writeln!(out, "- `report.html`, `report.md`, plots: the human report, when rendered");
    out.push_str(&split_run_note(report));
    let _ = writeln!(out, "\n## Scenario as run\n\n```toml\n{}```", report.scenario.resolved_toml);
    std::fs::write(dir.join("README.md"), out)?;
    Ok(())
}

/// The run's README lines for a split run: which part this is, or which parts were merged.
fn split_run_note(report: &Report) -> String {
    let mut out = String::new();
    if !report.parts.is_empty() {
        let each: Vec<String> = report.parts.iter().map(|p| format!("{}/{}", p.k, p.n)).collect();
        let _ = writeln!(
            out,
            "\nMerged by `authbench merge` from parts {} (scenario {}, build {}); `report.json`'s `parts` has each \
             part's clock and windows.",
            each.join(", "),
            report.parts[0].scenario_hash,
            report.parts[0].build_id
        );
    }
    if let Some(p) = &report.part {
        let _ = writeln!(
            out,
            "\nThis is part {}/{} of a split run (scenario {}, build {}): merge the parts with `authbench merge`.",
            p.k, p.n, p.scenario_hash, p.build_id
        );
    }
    out
}

/// The terminal table's figures after the strategy name: each with the operation it is read for
/// (`api`) or `""` for per-strategy figures. Cells are written as the registry writes them, the
/// same words as the report pages (the revocation window's bound included).
pub static TERMINAL_FIGURES: [(&Figure, &str); 10] = [
    (&figures::THROUGHPUT_RPS, ""),
    (&figures::P50_US, "api"),
    (&figures::P99_US, "api"),
    (&figures::P999_US, "api"),
    (&figures::ERRORS_TOTAL, ""),
    (&figures::UNEXPECTED_ALLOW, ""),
    (&figures::CREDENTIAL_BYTES, ""),
    (&figures::STORE_OPS_PER_REQUEST, ""),
    (&figures::TARGET_CPU_US_PER_REQUEST, ""),
    (&figures::REVOCATION_WINDOW_MS_MAX, ""),
];

/// The terminal summary table: registry labels as heads, cells written with their units.
pub fn summary_table(report: &Report) -> String {
    let head: Vec<String> = std::iter::once("strategy".to_string())
        .chain(
            TERMINAL_FIGURES
                .iter()
                .map(|(f, op)| if op.is_empty() { f.label.to_string() } else { format!("{op} {}", f.label) }),
        )
        .collect();
    let rows: Vec<Vec<String>> = report
        .strategies
        .iter()
        .map(|s| {
            std::iter::once(s.name.clone()).chain(TERMINAL_FIGURES.iter().map(|(f, op)| f.format(s, op))).collect()
        })
        .collect();
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&head).chain(rows.iter()) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                let pad = w - cell.chars().count();
                if i == 0 || i == row.len() - 1 {
                    format!("{cell}{}", " ".repeat(pad))
                } else {
                    format!("{}{cell}", " ".repeat(pad))
                }
            })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    let _ = writeln!(
        out,
        "(unexpected allow: revoked or forged credentials accepted, must be 0; ≤ …: an upper bound from the token's \
         exp + leeway, the credential was still accepted when probing ended)"
    );
    out
}

/// Print a line to stderr now (flushes).
pub fn note(msg: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{msg}");
    let _ = e.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(1_709_251_200)), "2024-03-01T00:00:00Z");
        assert_eq!(dir_stamp(UNIX_EPOCH + Duration::from_secs(1_709_251_261)), "20240301-000101");
    }

    #[test]
    fn slug_matches_report_reader() {
        assert_eq!(slug("jwt alg=ES256 pad_bytes=0"), "jwt_alg_ES256_pad_bytes_0");
    }

    #[test]
    fn hgrm_has_footer() {
        let mut h = crate::engine::record::new_histogram();
        for v in 1..1000 {
            h.record(v).expect("record");
        }
        let t = hgrm_text(&h);
        assert!(t.contains("#[Max     =") && t.contains("Total count"), "{t}");
    }
}
