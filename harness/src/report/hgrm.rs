//! Reads HdrHistogram percentile distribution text (`.hgrm`: the columns
//! `Value Percentile TotalCount 1/(1-Percentile)`), for full latency spectrum curves.

use std::path::{Path, PathBuf};

/// One row of a percentile distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HgrmPoint {
    /// Latency, microseconds.
    pub value_us: f64,
    /// Percentile as a fraction, 0..=1.
    pub percentile: f64,
    pub total_count: u64,
}

/// Parses `.hgrm` text, skipping the header, blank lines and the `#[...]` footer. Rows need a
/// numeric value, percentile and total count (the fourth column may be missing or `inf` on the last
/// row); others are skipped. The result is sorted by percentile.
pub fn parse_hgrm(text: &str) -> Vec<HgrmPoint> {
    let mut points: Vec<HgrmPoint> = text
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let cols: Vec<&str> = line.split_whitespace().collect();
            // The last row (percentile 1.0) may leave out the infinite 1/(1-Percentile) column.
            if cols.len() != 4 && cols.len() != 3 {
                return None;
            }
            let value_us = cols[0].parse::<f64>().ok()?;
            let percentile = cols[1].parse::<f64>().ok()?;
            let total_count = cols[2].parse::<f64>().ok()?;
            if !value_us.is_finite() || !(0.0..=1.0).contains(&percentile) {
                return None;
            }
            Some(HgrmPoint { value_us, percentile, total_count: total_count.max(0.0) as u64 })
        })
        .collect();
    points.sort_by(|a, b| a.percentile.total_cmp(&b.percentile));
    points
}

/// Where a strategy's histogram for `op` may be: `hist/<name>/<op>.hgrm`, with the name as is or
/// made file-name safe.
pub fn candidates(dir: &Path, strategy: &str, op: &str) -> Vec<PathBuf> {
    let file = format!("{op}.hgrm");
    let mut out = vec![dir.join("hist").join(strategy).join(&file)];
    let slug = super::fmt::slug(strategy);
    if slug != strategy {
        out.push(dir.join("hist").join(slug).join(&file));
    }
    out
}

/// Reads the first existing, non-empty histogram for `strategy`/`op` under `dir`.
pub fn load(dir: &Path, strategy: &str, op: &str) -> Option<(PathBuf, Vec<HgrmPoint>)> {
    candidates(dir, strategy, op).into_iter().find_map(|p| {
        let text = std::fs::read_to_string(&p).ok()?;
        let points = parse_hgrm(&text);
        (!points.is_empty()).then_some((p, points))
    })
}
