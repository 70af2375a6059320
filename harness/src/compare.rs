//! `authbench compare BASE NEW`: the differences between two runs, per strategy and operation, and
//! whether a tracked figure regressed by more than a percentage (for CI).
//!
//! Tracked figures are the figure registry's ([`crate::figures`], `tracked`): today latency
//! p50/p99/p999 of every operation both runs measured, throughput, target CPU per request, store
//! operations per request and credential bytes. Each regresses in the direction the registry says
//! is worse. Figures that either run did not measure (null) are shown as `n/a` and never count as a
//! regression.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::figures::{self, Better};
use crate::results::{Report, SCHEMA_VERSION, StrategyResult};

/// Default `--max-regression`, percent.
pub const DEFAULT_MAX_REGRESSION_PCT: f64 = 10.0;

/// Why a compare input could not be used (exit status 2).
#[derive(Debug, Error)]
pub enum CompareError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{} is not valid JSON: {source}", path.display())]
    Json { path: PathBuf, source: serde_json::Error },
    #[error(
        "{} has report schema {found}, this authbench reads schema {SCHEMA_VERSION}: re-run it or compare with a matching version",
        path.display()
    )]
    SchemaVersion { path: PathBuf, found: String },
    #[error("{} does not match report.json schema {SCHEMA_VERSION}: {source}", path.display())]
    Schema { path: PathBuf, source: serde_json::Error },
    #[error("--max-regression must be a finite percentage >= 0, got {0}")]
    BadMaxRegression(f64),
}

/// Reads a `report.json`, given the file itself or the results directory holding it.
pub fn load_report(path: &Path) -> Result<Report, CompareError> {
    let file = if path.is_dir() { path.join("report.json") } else { path.to_path_buf() };
    let text = std::fs::read_to_string(&file).map_err(|source| CompareError::Read { path: file.clone(), source })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| CompareError::Json { path: file.clone(), source })?;
    match value.get("schema") {
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(u64::from(SCHEMA_VERSION)) => {}
        Some(other) => return Err(CompareError::SchemaVersion { path: file, found: other.to_string() }),
        None => return Err(CompareError::SchemaVersion { path: file, found: "missing".to_string() }),
    }
    serde_json::from_value(value).map_err(|source| CompareError::Schema { path: file, source })
}

/// How one figure moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Equal,
    Better,
    /// Worse, but within the allowed regression.
    Worse,
    /// Worse by more than the allowed regression: fails the compare.
    Regressed,
    /// One side did not measure it.
    NotComparable,
    /// Moved, for a figure with no better direction.
    Changed,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Equal => "=",
            Verdict::Better => "better",
            Verdict::Worse => "worse (within limit)",
            Verdict::Regressed => "REGRESSED",
            Verdict::NotComparable => "n/a",
            Verdict::Changed => "changed",
        }
    }
}

/// One compared figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub strategy: String,
    /// The operation for latency figures, `None` for per-strategy figures.
    pub operation: Option<String>,
    /// The figure's registry key.
    pub figure: &'static str,
    pub base: Option<f64>,
    pub new: Option<f64>,
    /// `(new - base) / base * 100`; infinite when base is 0 and new is not.
    pub change_pct: Option<f64>,
    pub verdict: Verdict,
}

/// The result of comparing two reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub max_regression_pct: f64,
    pub rows: Vec<Row>,
    /// Strategies only BASE has (not compared).
    pub only_in_base: Vec<String>,
    /// Strategies only NEW has (not compared).
    pub only_in_new: Vec<String>,
}

impl Comparison {
    /// Rows that worsened beyond the allowed regression.
    pub fn regressions(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.verdict == Verdict::Regressed)
    }

    /// True when any tracked figure regressed.
    pub fn regressed(&self) -> bool {
        self.regressions().next().is_some()
    }

    /// A plain-text table of every row, then a summary line.
    pub fn to_table(&self) -> String {
        let header = ["strategy", "operation", "figure", "base", "new", "change", "verdict"];
        let mut lines: Vec<[String; 7]> = vec![header.map(str::to_string)];
        for r in &self.rows {
            lines.push([
                r.strategy.clone(),
                r.operation.clone().unwrap_or_else(|| "-".to_string()),
                r.figure.to_string(),
                fmt_value(r.base),
                fmt_value(r.new),
                fmt_change(r.change_pct),
                r.verdict.label().to_string(),
            ]);
        }
        let mut widths = [0usize; 7];
        for line in &lines {
            for (w, cell) in widths.iter_mut().zip(line) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for (i, line) in lines.iter().enumerate() {
            let cells: Vec<String> = line
                .iter()
                .zip(widths)
                .enumerate()
                .map(
                    |(col, (cell, w))| {
                        if (3..=5).contains(&col) { format!("{cell:>w$}") } else { format!("{cell:<w$}") }
                    },
                )
                .collect();
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
            if i == 0 {
                let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                let _ = writeln!(out, "{}", rule.join("  "));
            }
        }
        for name in &self.only_in_base {
            let _ = writeln!(out, "note: `{name}` is only in BASE (not compared)");
        }
        for name in &self.only_in_new {
            let _ = writeln!(out, "note: `{name}` is only in NEW (not compared)");
        }
        let n = self.regressions().count();
        if n == 0 {
            let _ = writeln!(out, "OK: no tracked figure worsened by more than {}%", self.max_regression_pct);
        } else {
            let _ = writeln!(out, "FAIL: {n} tracked figure(s) worsened by more than {}%:", self.max_regression_pct);
            for r in self.regressions() {
                let op = r.operation.as_deref().map(|o| format!("{o} ")).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  {} {op}{}: {} -> {} ({})",
                    r.strategy,
                    r.figure,
                    fmt_value(r.base),
                    fmt_value(r.new),
                    fmt_change(r.change_pct)
                );
            }
        }
        out
    }
}

fn fmt_value(v: Option<f64>) -> String {
    match v {
        None => "n/a".to_string(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) if v.abs() >= 100.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.3}"),
    }
}

fn fmt_change(c: Option<f64>) -> String {
    match c {
        None => "n/a".to_string(),
        Some(c) if c.is_infinite() => if c > 0.0 { "+inf%" } else { "-inf%" }.to_string(),
        Some(c) => format!("{c:+.1}%"),
    }
}

/// Compares every strategy both reports have (matched by name).
pub fn compare(base: &Report, new: &Report, max_regression_pct: f64) -> Comparison {
    let mut rows = Vec::new();
    for b in &base.strategies {
        let Some(n) = new.strategies.iter().find(|n| n.name == b.name) else { continue };
        compare_strategy(b, n, max_regression_pct, &mut rows);
    }
    let only_in_base = base
        .strategies
        .iter()
        .filter(|b| !new.strategies.iter().any(|n| n.name == b.name))
        .map(|b| b.name.clone())
        .collect();
    let only_in_new = new
        .strategies
        .iter()
        .filter(|n| !base.strategies.iter().any(|b| b.name == n.name))
        .map(|n| n.name.clone())
        .collect();
    Comparison { max_regression_pct, rows, only_in_base, only_in_new }
}

fn compare_strategy(b: &StrategyResult, n: &StrategyResult, pct: f64, rows: &mut Vec<Row>) {
    let tracked = || figures::all().filter(|f| f.tracked);
    let mut push = |operation: Option<&str>, figure: &'static figures::Figure| {
        let op = operation.unwrap_or("");
        let (base, new) = (figure.value(b, op), figure.value(n, op));
        let (change_pct, verdict) = judge(base, new, figure.better, pct);
        rows.push(Row {
            strategy: b.name.clone(),
            operation: operation.map(str::to_string),
            figure: figure.key,
            base,
            new,
            change_pct,
            verdict,
        });
    };
    for (op, bl) in &b.latency_us {
        let Some(nl) = n.latency_us.get(op) else { continue };
        if bl.count == 0 || nl.count == 0 {
            continue;
        }
        for figure in tracked().filter(|f| f.per_operation()) {
            push(Some(op), figure);
        }
    }
    for figure in tracked().filter(|f| !f.per_operation()) {
        push(None, figure);
    }
}

/// The relative change and the verdict for one figure.
pub fn judge(base: Option<f64>, new: Option<f64>, better: Better, max_regression_pct: f64) -> (Option<f64>, Verdict) {
    let (Some(b), Some(n)) = (base, new) else { return (None, Verdict::NotComparable) };
    if !b.is_finite() || !n.is_finite() {
        return (None, Verdict::NotComparable);
    }
    let change = if b == n {
        0.0
    } else if b == 0.0 {
        if n > 0.0 { f64::INFINITY } else { f64::NEG_INFINITY }
    } else {
        (n - b) / b.abs() * 100.0
    };
    let worsening = match better {
        Better::Lower => change,
        Better::Higher => -change,
        Better::Neither => return (Some(change), if change == 0.0 { Verdict::Equal } else { Verdict::Changed }),
    };
    let verdict = if change == 0.0 {
        Verdict::Equal
    } else if worsening > max_regression_pct {
        Verdict::Regressed
    } else if worsening > 0.0 {
        Verdict::Worse
    } else {
        Verdict::Better
    };
    (Some(change), verdict)
}

/// `authbench compare`: loads both inputs, prints the table to stdout and returns whether a tracked
/// figure regressed.
pub fn main(base: &Path, new: &Path, max_regression_pct: f64) -> Result<bool, CompareError> {
    if !max_regression_pct.is_finite() || max_regression_pct < 0.0 {
        return Err(CompareError::BadMaxRegression(max_regression_pct));
    }
    let base_report = load_report(base)?;
    let new_report = load_report(new)?;
    let cmp = compare(&base_report, &new_report, max_regression_pct);
    println!("BASE: {} ({})", base.display(), base_report.started_at);
    println!("NEW:  {} ({})", new.display(), new_report.started_at);
    println!();
    print!("{}", cmp.to_table());
    Ok(cmp.regressed())
}
