//! Full latency curves: the percentile distribution of a latency histogram, drawn from the run's
//! histograms in memory ([`Curves::Memory`], a fresh `authbench run`) or read back from the
//! HdrHistogram percentile text a results directory holds (`.hgrm`: the columns
//! `Value Percentile TotalCount 1/(1-Percentile)`; [`Curves::Files`], `authbench report DIR`).
//! Both give the same points: [`rows`] is what the `.hgrm` export writes, and [`points`] keeps
//! percentiles at the precision the file holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

/// A variant's latency histograms (µs) by operation name.
pub type OpLatency = BTreeMap<String, Histogram<u64>>;
/// Every variant's latency histograms, by variant label (the strategy's `name` in the report).
pub type RunLatency = BTreeMap<String, OpLatency>;

/// Where full latency curves come from.
#[derive(Debug, Clone, Copy)]
pub enum Curves<'a> {
    /// The run's histograms, in memory.
    Memory(&'a RunLatency),
    /// A results directory holding `hist/<strategy>/<op>.hgrm`.
    Files(&'a Path),
    /// No full curves (overlays of several runs draw summary points).
    None,
}

impl Curves<'_> {
    /// The curve of `strategy`'s `op`, if there is one with points.
    pub fn get(&self, strategy: &str, op: &str) -> Option<Vec<HgrmPoint>> {
        match self {
            Curves::Memory(run) => Some(points(run.get(strategy)?.get(op)?)).filter(|p| !p.is_empty()),
            Curves::Files(dir) => load(dir, strategy, op).map(|(_, p)| p),
            Curves::None => None,
        }
    }
}

/// The rows of `h`'s percentile distribution (`.hgrm`): value (µs), percentile (0..=1) and
/// cumulative count, five steps per halving of the remaining tail.
pub fn rows(h: &Histogram<u64>) -> Vec<(u64, f64, u64)> {
    let mut total = 0u64;
    if h.is_empty() {
        return Vec::new();
    }
    h.iter_quantiles(5)
        .map(|v| {
            total += v.count_since_last_iteration();
            (v.value_iterated_to(), v.quantile_iterated_to(), total)
        })
        .collect()
}

/// The points of `h`'s percentile distribution, exactly as [`parse_hgrm`] reads them back from its
/// `.hgrm` export: percentiles at the 12 decimals the file holds.
pub fn points(h: &Histogram<u64>) -> Vec<HgrmPoint> {
    let mut points: Vec<HgrmPoint> = rows(h)
        .into_iter()
        .map(|(value, q, total_count)| HgrmPoint {
            value_us: value as f64,
            percentile: format!("{q:.12}").parse().unwrap_or(q),
            total_count,
        })
        .collect();
    points.sort_by(|a, b| a.percentile.total_cmp(&b.percentile));
    points
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::record::{compact, new_histogram};

    #[test]
    fn curves_from_memory_and_from_the_export_are_the_same() {
        let mut h = new_histogram();
        for (i, v) in [1u64, 7, 150, 151, 999, 2_500, 40_000, 250_000, 3_000_000].into_iter().enumerate() {
            h.record_n(v, i as u64 * 13 + 1).expect("in range");
        }
        let from_file = parse_hgrm(&crate::output::hgrm_text(&h));
        assert!(from_file.len() > 10);
        assert_eq!(points(&h), from_file);
        assert_eq!(points(&compact(&h)), from_file, "a compacted copy draws the same curve");
        assert!(points(&new_histogram()).is_empty());
    }

    #[test]
    fn compact_copies_serialize_like_the_original() {
        use hdrhistogram::serialization::{Serializer, V2Serializer};
        let mut h = new_histogram();
        for v in [3u64, 80, 81, 4_000, 123_456] {
            h.record_n(v, v % 7 + 1).expect("in range");
        }
        let mut back = new_histogram();
        back.add(compact(&h)).expect("fits");
        let (mut a, mut b) = (Vec::new(), Vec::new());
        V2Serializer::new().serialize(&h, &mut a).expect("serializes");
        V2Serializer::new().serialize(&back, &mut b).expect("serializes");
        assert_eq!(a, b);
        assert_eq!(back.max(), h.max());
    }
}
