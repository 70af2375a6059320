//! `authbench compare BASE NEW`: the differences between two runs, per strategy and operation, and
//! whether a tracked figure regressed by more than a percentage (for CI).
//!
//! Tracked figures are the figure registry's ([`crate::figures`], `tracked`): today latency
//! p50/p99/p999 of every operation both runs measured, throughput, target CPU per request, store
//! operations per request and credential bytes. Each regresses in the direction the registry says
//! is worse. Figures that either run did not measure (null) are shown as `n/a` and never count as a
//! regression.
//!
//! When both runs have repetitions (`authbench run --repeat N`), each figure is compared through its
//! repetitions ([`crate::stats`]): medians with 95 % bootstrap intervals, and a figure regresses only
//! when its median worsened by more than the limit AND the two-sided Mann-Whitney test finds the
//! change significant at `--alpha`; otherwise it is "no significant change". With a single run on
//! either side the verdict compares two numbers, as it always did, and says it is without
//! confidence. `--gate` narrows the figures that can fail the compare; `--format markdown` writes
//! the result for a pull-request comment.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::cli::{CompareArgs, CompareFormat};
use crate::figures::{self, Better};
use crate::repeats;
use crate::results::{OPERATIONS, Report, SCHEMA_VERSION, StrategyResult};
use crate::stats::{self, Interval, Significance};

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
    #[error("--alpha must be a probability between 0 and 1 (exclusive), got {0}")]
    BadAlpha(f64),
    #[error(
        "--gate {0}: not a tracked figure; use a key such as target_cpu_us_per_request, throughput_rps, p50_us (every operation) or api.p50_us"
    )]
    UnknownGate(String),
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
    /// Worse by more than the allowed regression (and, with repetitions, significant): fails the
    /// compare when the figure is gated.
    Regressed,
    /// One side did not measure it.
    NotComparable,
    /// Moved, for a figure with no better direction.
    Changed,
    /// With repetitions: the test could not tell the two runs apart at the stated level.
    NoSignificantChange,
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
            Verdict::NoSignificantChange => "no significant change",
        }
    }
}

/// What counts as a regression.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Allowed worsening of a figure, percent.
    pub max_regression_pct: f64,
    /// Significance level of the change test (used when both sides have repetitions).
    pub alpha: f64,
    /// Figures that can fail the compare (`key` for every operation, or `op.key`); empty: all
    /// tracked figures.
    pub gate: Vec<String>,
}

impl Rule {
    /// Every tracked figure gated, at the default significance level.
    pub fn new(max_regression_pct: f64) -> Rule {
        Rule { max_regression_pct, alpha: stats::DEFAULT_ALPHA, gate: Vec::new() }
    }

    fn gates(&self, operation: Option<&str>, key: &str) -> bool {
        self.gate.is_empty()
            || self.gate.iter().any(|g| {
                g == key
                    || operation.is_some_and(|op| g.strip_prefix(op).and_then(|r| r.strip_prefix('.')) == Some(key))
            })
    }
}

/// Tail percentiles that a comparison with repetitions does not gate on unless `--gate` names
/// them: in an A/A experiment on a quiet machine (the same build, five `ci.toml --repeat 5` runs,
/// all 20 ordered comparisons; docs/ci.md) they were the only tracked figures ever reported as a
/// significant regression, in 10 of the 20 comparisons, while no other figure was in any.
pub const UNGATED_BY_DEFAULT: [&str; 2] = ["p99_us", "p999_us"];

/// Checks `--gate` keys against the tracked figures of the registry.
pub fn check_gate(gate: &[String]) -> Result<(), CompareError> {
    let tracked = |name: &str, per_operation: bool| {
        figures::all().any(|f| f.tracked && f.per_operation() == per_operation && f.key == name)
    };
    for g in gate {
        let per_op = g.split_once('.').is_some_and(|(op, key)| OPERATIONS.contains(&op) && tracked(key, true));
        if !(tracked(g, false) || tracked(g, true) || per_op) {
            return Err(CompareError::UnknownGate(g.clone()));
        }
    }
    Ok(())
}

/// One compared figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub strategy: String,
    /// The operation for latency figures, `None` for per-strategy figures.
    pub operation: Option<String>,
    /// The figure's registry key.
    pub figure: &'static str,
    /// The base value: with repetitions, the median over them.
    pub base: Option<f64>,
    pub new: Option<f64>,
    /// 95 % interval of the base median (repetitions only).
    pub base_ci: Option<Interval>,
    pub new_ci: Option<Interval>,
    /// Repetitions that measured the figure on each side.
    pub n: (usize, usize),
    /// `(new - base) / base * 100`; infinite when base is 0 and new is not.
    pub change_pct: Option<f64>,
    /// Two-sided Mann-Whitney p-value; `None` without repetitions on both sides.
    pub p_value: Option<f64>,
    pub verdict: Verdict,
    /// The figure can fail the compare (`--gate`).
    pub gated: bool,
}

impl Row {
    /// `api p99_us` or `target_cpu_us_per_request`.
    fn name(&self) -> String {
        match &self.operation {
            Some(op) => format!("{op} {}", self.figure),
            None => self.figure.to_string(),
        }
    }

    fn verdict_text(&self) -> String {
        match (self.verdict, self.gated) {
            (Verdict::Regressed, false) => "regressed (not gated)".to_string(),
            (v, _) => v.label().to_string(),
        }
    }
}

/// The result of comparing two reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub rule: Rule,
    pub rows: Vec<Row>,
    /// Strategies only BASE has (not compared).
    pub only_in_base: Vec<String>,
    /// Strategies only NEW has (not compared).
    pub only_in_new: Vec<String>,
    /// The control (a strategy that sends no credential) moved its target CPU per request
    /// significantly and beyond the allowed regression: the machine changed between the runs, so
    /// the other strategies' changes hold that drift too. Says by how much; `None` otherwise.
    pub machine_drift: Option<String>,
}

impl Comparison {
    /// Gated rows that worsened beyond the allowed regression (and significantly, with repetitions).
    pub fn regressions(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.verdict == Verdict::Regressed && r.gated)
    }

    /// True when any gated figure regressed.
    pub fn regressed(&self) -> bool {
        self.regressions().next().is_some()
    }

    /// True when every compared row had repetitions on both sides (verdicts with confidence).
    pub fn with_confidence(&self) -> bool {
        !self.rows.is_empty() && self.rows.iter().all(|r| r.p_value.is_some() || r.verdict == Verdict::NotComparable)
    }

    /// How the verdicts were reached, one paragraph.
    pub fn method(&self) -> String {
        let pct = self.rule.max_regression_pct;
        if self.with_confidence() {
            let (nb, nn) = self.rows.iter().map(|r| r.n).max().unwrap_or((0, 0));
            format!(
                "Both runs have repetitions (up to {nb} base, {nn} new). Values are medians over the repetitions with \
                 {:.0} % percentile-bootstrap intervals ({} resamples, fixed seed). A figure regresses only when its \
                 median worsened by more than {pct}% AND the two-sided exact Mann-Whitney rank-sum test finds the \
                 change significant at alpha = {} (per figure; at 5 v 5 repetitions the smallest possible p is 0.008).",
                stats::CONFIDENCE_LEVEL * 100.0,
                stats::BOOTSTRAP_RESAMPLES,
                self.rule.alpha,
            )
        } else {
            format!(
                "Single runs: each figure is one number per side, so the verdict is WITHOUT CONFIDENCE (noise cannot be \
                 told from a change). A figure regresses when it worsened by more than {pct}%. Run both sides with \
                 `authbench run --repeat 5` for medians, intervals and a significance test."
            )
        }
    }

    fn gate_text(&self) -> String {
        match (self.rule.gate.is_empty(), self.with_confidence()) {
            (true, true) => format!(
                "every tracked figure but the tail percentiles ({}), which an A/A experiment showed too noisy at 5 \
                 repetitions (docs/ci.md); name them with --gate to gate on them",
                UNGATED_BY_DEFAULT.join(", ")
            ),
            (true, false) => "every tracked figure".to_string(),
            (false, _) => self.rule.gate.join(", "),
        }
    }

    /// A plain-text table of every row, then the method and a summary line.
    pub fn to_table(&self) -> String {
        let header = ["strategy", "operation", "figure", "base", "new", "change", "p", "verdict"];
        let mut lines: Vec<[String; 8]> = vec![header.map(str::to_string)];
        for r in &self.rows {
            lines.push([
                r.strategy.clone(),
                r.operation.clone().unwrap_or_else(|| "-".to_string()),
                r.figure.to_string(),
                fmt_estimate(r.base, r.base_ci),
                fmt_estimate(r.new, r.new_ci),
                fmt_change(r.change_pct),
                fmt_p(r.p_value),
                r.verdict_text(),
            ]);
        }
        let mut out = aligned(&lines);
        for name in &self.only_in_base {
            let _ = writeln!(out, "note: `{name}` is only in BASE (not compared)");
        }
        for name in &self.only_in_new {
            let _ = writeln!(out, "note: `{name}` is only in NEW (not compared)");
        }
        let _ = writeln!(out, "\nmethod: {}\ngated: {}", self.method(), self.gate_text());
        if let Some(drift) = &self.machine_drift {
            let _ = writeln!(out, "WARNING: {drift}");
        }
        out.push_str(&self.verdict_lines());
        out
    }

    fn verdict_lines(&self) -> String {
        let mut out = String::new();
        let n = self.regressions().count();
        let significantly = if self.with_confidence() { " significantly" } else { "" };
        if n == 0 {
            let _ = writeln!(
                out,
                "OK: no tracked figure{significantly} worsened by more than {}%",
                self.rule.max_regression_pct
            );
        } else {
            let _ = writeln!(
                out,
                "FAIL: {n} tracked figure(s){significantly} worsened by more than {}%:",
                self.rule.max_regression_pct
            );
            for r in self.regressions() {
                let op = r.operation.as_deref().map(|o| format!("{o} ")).unwrap_or_default();
                let p = r.p_value.map(|p| format!(", p = {}", fmt_p(Some(p)))).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  {} {op}{}: {} -> {} ({}{p})",
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

    /// Markdown for a pull-request comment: the verdict, the method, the gated and significant
    /// rows, then every row in a collapsed section.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from("### authbench compare\n\n");
        let n = self.regressions().count();
        let _ = if n == 0 {
            writeln!(out, "**No significant regression** of the gated figures ({}).\n", self.gate_text())
        } else {
            writeln!(out, "**{n} gated figure(s) regressed** ({}).\n", self.gate_text())
        };
        let _ = writeln!(out, "{}\n", self.method());
        if let Some(drift) = &self.machine_drift {
            let _ = writeln!(out, "> [!WARNING]\n> {drift}\n");
        }
        let notable: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| r.gated || matches!(r.verdict, Verdict::Regressed | Verdict::Worse | Verdict::Better))
            .collect();
        md_rows(&mut out, &notable);
        for name in &self.only_in_base {
            let _ = writeln!(out, "\n`{name}` is only in BASE (not compared).");
        }
        for name in &self.only_in_new {
            let _ = writeln!(out, "\n`{name}` is only in NEW (not compared).");
        }
        let _ = writeln!(out, "\n<details><summary>All {} compared figures</summary>\n", self.rows.len());
        md_rows(&mut out, &self.rows.iter().collect::<Vec<_>>());
        out.push_str("\n</details>\n");
        out
    }
}

fn md_rows(out: &mut String, rows: &[&Row]) {
    out.push_str("| strategy | figure | base | new | change | p | verdict |\n|---|---|--:|--:|--:|--:|---|\n");
    for r in rows {
        let verdict = if r.verdict == Verdict::Regressed && r.gated {
            format!("**{}**", r.verdict_text())
        } else {
            r.verdict_text()
        };
        let _ = writeln!(
            out,
            "| {} | {}{} | {} | {} | {} | {} | {verdict} |",
            r.strategy.replace('|', "\\|"),
            r.name(),
            if r.gated { " (gated)" } else { "" },
            fmt_estimate(r.base, r.base_ci),
            fmt_estimate(r.new, r.new_ci),
            fmt_change(r.change_pct),
            fmt_p(r.p_value),
        );
    }
}

/// Rows of cells as aligned columns (numbers right-aligned), with a rule under the header.
fn aligned<const N: usize>(lines: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for line in lines {
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
            .map(|(col, (cell, w))| if (3..=6).contains(&col) { format!("{cell:>w$}") } else { format!("{cell:<w$}") })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            let _ = writeln!(out, "{}", rule.join("  "));
        }
    }
    out
}

fn fmt_value(v: Option<f64>) -> String {
    match v {
        None => "n/a".to_string(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) if v.abs() >= 100.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.3}"),
    }
}

/// `12.3 [11.9, 13.0]` with an interval, the value alone without.
fn fmt_estimate(v: Option<f64>, ci: Option<Interval>) -> String {
    match ci {
        Some(ci) => format!("{} [{}, {}]", fmt_value(v), fmt_value(Some(ci.low)), fmt_value(Some(ci.high))),
        None => fmt_value(v),
    }
}

fn fmt_change(c: Option<f64>) -> String {
    match c {
        None => "n/a".to_string(),
        Some(c) if c.is_infinite() => if c > 0.0 { "+inf%" } else { "-inf%" }.to_string(),
        Some(c) => format!("{c:+.1}%"),
    }
}

fn fmt_p(p: Option<f64>) -> String {
    match p {
        None => "-".to_string(),
        Some(p) if p < 0.001 => "<0.001".to_string(),
        Some(p) => format!("{p:.3}"),
    }
}

/// Compares every strategy both reports have (matched by name).
pub fn compare(base: &Report, new: &Report, rule: &Rule) -> Comparison {
    let mut rows = Vec::new();
    for b in &base.strategies {
        let Some(n) = new.strategies.iter().find(|n| n.name == b.name) else { continue };
        compare_strategy(b, n, rule, &mut rows);
    }
    let names = |r: &Report| r.strategies.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    let (base_names, new_names) = (names(base), names(new));
    let only_in_base = base_names.iter().filter(|b| !new_names.contains(b)).cloned().collect();
    let only_in_new = new_names.iter().filter(|n| !base_names.contains(n)).cloned().collect();
    let machine_drift = machine_drift(base, &rows, rule);
    Comparison { rule: rule.clone(), rows, only_in_base, only_in_new, machine_drift }
}

/// The control's own target CPU change, when significant (with repetitions) and beyond the
/// allowed regression in either direction: the control does no authentication, so a change in
/// it is the machine's, not the change under test's.
fn machine_drift(base: &Report, rows: &[Row], rule: &Rule) -> Option<String> {
    use crate::targets::config::StrategyKind;
    use crate::targets::strategy::profile::Transport;
    let control = |name: &str| {
        base.strategies.iter().any(|s| {
            s.name == name
                && StrategyKind::from_name(&s.strategy).is_some_and(|k| k.profile().transport == Transport::None)
        })
    };
    let row = rows.iter().find(|r| r.figure == figures::TARGET_CPU_US_PER_REQUEST.key && control(&r.strategy))?;
    let (change, p) = (row.change_pct?, row.p_value?);
    (p < rule.alpha && change.abs() > rule.max_regression_pct).then(|| {
        format!(
            "the control `{}` (no authentication) itself moved its target CPU per request {} (p = {}): the machine \
             changed between the runs, and every other change below includes that drift. Compare runs made under \
             the same load.",
            row.strategy,
            fmt_change(Some(change)),
            fmt_p(Some(p))
        )
    })
}

fn compare_strategy(b: &StrategyResult, n: &StrategyResult, rule: &Rule, rows: &mut Vec<Row>) {
    let tracked = || figures::all().filter(|f| f.tracked);
    let mut push = |operation: Option<&str>, figure: &'static figures::Figure| {
        let mut row = compare_figure(b, n, operation.unwrap_or(""), figure, rule);
        row.operation = operation.map(str::to_string);
        let tail_by_default = rule.gate.is_empty() && row.p_value.is_some() && UNGATED_BY_DEFAULT.contains(&figure.key);
        row.gated = rule.gates(operation, figure.key) && !tail_by_default;
        rows.push(row);
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

/// One figure of one strategy: through the repetitions when both sides have at least two that
/// measured it, else value against value.
fn compare_figure(
    b: &StrategyResult,
    n: &StrategyResult,
    op: &str,
    figure: &'static figures::Figure,
    rule: &Rule,
) -> Row {
    let (bs, ns) = (repeats::samples(b, figure, op), repeats::samples(n, figure, op));
    let mut row = Row {
        strategy: b.name.clone(),
        operation: None,
        figure: figure.key,
        base: stats::median(&bs),
        new: stats::median(&ns),
        base_ci: None,
        new_ci: None,
        n: (bs.len(), ns.len()),
        change_pct: None,
        p_value: None,
        verdict: Verdict::NotComparable,
        gated: false,
    };
    let repeated = repeats::count(b) > 1 && repeats::count(n) > 1;
    match stats::change_test(&bs, &ns).filter(|_| repeated && bs.len() > 1 && ns.len() > 1) {
        Some(t) => {
            row.base_ci = t.base.ci;
            row.new_ci = t.new.ci;
            row.change_pct = Some(t.change_pct);
            row.p_value = Some(t.test.p_value);
            row.verdict = significance_verdict(&t, figure.better, rule);
        }
        None => (row.change_pct, row.verdict) = judge(row.base, row.new, figure.better, rule.max_regression_pct),
    }
    row
}

fn significance_verdict(t: &stats::ChangeTest, better: Better, rule: &Rule) -> Verdict {
    let worsening = match better {
        Better::Lower => t.change_pct,
        Better::Higher => -t.change_pct,
        Better::Neither => {
            let significant = t.test.p_value < rule.alpha && t.change_pct != 0.0;
            return if significant { Verdict::Changed } else { Verdict::NoSignificantChange };
        }
    };
    match stats::verdict(worsening, t.test.p_value, rule.max_regression_pct, rule.alpha) {
        Significance::Regressed => Verdict::Regressed,
        Significance::WorseWithinLimit => Verdict::Worse,
        Significance::Better => Verdict::Better,
        Significance::NoSignificantChange => Verdict::NoSignificantChange,
    }
}

/// The relative change and the verdict for one figure measured once on each side.
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

/// `authbench compare`: loads both inputs, prints the table (or Markdown) to stdout and returns
/// whether a gated figure regressed.
pub fn main(args: &CompareArgs) -> Result<bool, CompareError> {
    let pct = args.max_regression_pct;
    if !pct.is_finite() || pct < 0.0 {
        return Err(CompareError::BadMaxRegression(pct));
    }
    if !(args.alpha > 0.0 && args.alpha < 1.0) {
        return Err(CompareError::BadAlpha(args.alpha));
    }
    check_gate(&args.gate)?;
    let base_report = load_report(&args.base)?;
    let new_report = load_report(&args.new)?;
    let rule = Rule { max_regression_pct: pct, alpha: args.alpha, gate: args.gate.clone() };
    let cmp = compare(&base_report, &new_report, &rule);
    let side = |path: &Path, r: &Report| {
        let reps = r.strategies.iter().map(repeats::count).max().unwrap_or(1);
        format!("{} ({}, {reps} repetition(s))", path.display(), r.started_at)
    };
    let text = match args.format {
        CompareFormat::Text => format!(
            "BASE: {}\nNEW:  {}\n\n{}",
            side(&args.base, &base_report),
            side(&args.new, &new_report),
            cmp.to_table()
        ),
        CompareFormat::Markdown => format!(
            "{}\nBASE: `{}`  \nNEW: `{}`\n",
            cmp.to_markdown(),
            side(&args.base, &base_report),
            side(&args.new, &new_report)
        ),
    };
    // A closed pipe (`| head`) is not an error worth a panic; the exit status still tells.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
    Ok(cmp.regressed())
}
