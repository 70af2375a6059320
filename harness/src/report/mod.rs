//! The human report of a run: `report.html` (one self-contained file: inline CSS and SVG, no
//! network), `report.md` (the decision table, for PR comments) and `plots/*.svg` + `plots/*.png`.
//!
//! Everything is rendered from a [`Report`] (what `report.json` holds) plus full latency curves:
//! from the run's histograms in memory right after a run ([`render_run`]), or from the
//! per-operation percentile files `hist/<strategy>/<op>.hgrm` a saved results directory holds
//! ([`render`], `authbench report DIR`); both give the same points ([`hgrm`]). Rendering is deterministic: the same `report.json` gives the same files, so
//! `authbench report DIR` reproduces a run's report. Null figures are shown as "not measured",
//! never as 0.
//!
//! Text in the plots uses DejaVu Sans, embedded in the binary (`harness/assets/`, Bitstream Vera
//! license) and registered with plotters' `ab_glyph` backend: no system fonts or fontconfig are
//! needed at build or run time.

mod cached;
mod connections;
pub(crate) mod fmt;
pub mod hgrm;
mod html;
mod markdown;
mod plots;
pub(crate) mod summary;
mod wire;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, bail};

use crate::results::Report;

pub use hgrm::{Curves, HgrmPoint, OpLatency, RunLatency, parse_hgrm};
pub use summary::knee_index;

/// The font family name the plots use, in PNG (rasterized from the embedded font) and SVG
/// (`font-family`).
pub const FONT_FAMILY: &str = "DejaVu Sans";

static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Registers the embedded font with plotters once per process.
fn register_font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT_FAMILY, plotters::style::FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if *ok { Ok(()) } else { bail!("the embedded font {FONT_FAMILY} could not be loaded") }
}

/// One run to render, with where its per-operation histograms live (if anywhere).
struct Run<'a> {
    label: String,
    report: &'a Report,
}

/// Writes `report.html`, `report.md` and `plots/*.{svg,png}` into `dir` (the run's results
/// directory, whose `hist/` is used for full latency curves when present). Does not write
/// `report.json` or `summary.csv`: those are the driver's.
pub fn render(dir: &Path, report: &Report) -> anyhow::Result<()> {
    render_into(dir, report, Curves::Files(dir), &[])
}

/// Like [`render`], but reading `hist/` from `source` (the results directory) and writing to `out`.
pub fn render_from(out: &Path, report: &Report, source: &Path) -> anyhow::Result<()> {
    render_into(out, report, Curves::Files(source), &[])
}

/// The report of a run just made, into its results directory `dir`: full latency curves from the
/// run's histograms in memory (by strategy name, then operation).
pub fn render_run(dir: &Path, report: &Report, latency: &RunLatency) -> anyhow::Result<()> {
    render_into(dir, report, Curves::Memory(latency), &[])
}

/// Overlays several runs into one report in `out`: every strategy appears once per run, labelled
/// `<label>: <name>`, on the same plots and in the same tables; the method section lists each run.
pub fn render_many(out: &Path, reports: &[(String, Report)]) -> anyhow::Result<()> {
    let Some((_, first)) = reports.first() else { bail!("render_many needs at least one report") };
    if reports.len() == 1 {
        return render_into(out, first, Curves::None, &[]);
    }
    let mut merged = first.clone();
    merged.strategies.clear();
    merged.thresholds.clear();
    merged.warnings.clear();
    merged.interrupted = false;
    merged.scenario.name = reports.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>().join(" vs ");
    for (label, r) in reports {
        for s in &r.strategies {
            let mut s = s.clone();
            s.name = format!("{label}: {}", s.name);
            merged.strategies.push(s);
        }
        for t in &r.thresholds {
            let mut t = t.clone();
            t.metric = format!("{label}: {}", t.metric);
            merged.thresholds.push(t);
        }
        merged.warnings.extend(r.warnings.iter().map(|w| format!("{label}: {w}")));
        if r.interrupted {
            merged.warnings.push(format!("{label}: the run was interrupted; its figures cover what was measured"));
        }
    }
    let runs: Vec<Run<'_>> = reports.iter().map(|(label, report)| Run { label: label.clone(), report }).collect();
    render_into(out, &merged, Curves::None, &runs)
}

fn render_into(out: &Path, report: &Report, curves: Curves<'_>, runs: &[Run<'_>]) -> anyhow::Result<()> {
    register_font()?;
    let plot_dir = out.join("plots");
    std::fs::create_dir_all(&plot_dir).with_context(|| format!("creating {}", plot_dir.display()))?;
    let specs = plots::all(report, curves);
    let mut rendered = Vec::with_capacity(specs.len());
    for spec in &specs {
        let svg = plots::emit(&plot_dir, spec).with_context(|| format!("drawing plot {}", spec.stem))?;
        rendered.push(plots::Rendered {
            stem: spec.stem.clone(),
            title: spec.title.clone(),
            caption: spec.caption.clone(),
            svg,
        });
    }
    let summary = summary::Summary::new(report);
    let html = html::page(report, &summary, &rendered, runs);
    let html_path = out.join("report.html");
    std::fs::write(&html_path, html).with_context(|| format!("writing {}", html_path.display()))?;
    let md = markdown::page(report, &summary, &rendered);
    let md_path = out.join("report.md");
    std::fs::write(&md_path, md).with_context(|| format!("writing {}", md_path.display()))?;
    Ok(())
}

/// `authbench report DIR [DIR...] [-o OUT]`: re-renders from saved results directories (each
/// `DIR/report.json`, or a `report.json` path). One DIR renders into OUT (default: DIR itself);
/// several overlay into OUT, which is then required. Returns the directory written.
pub fn main(dirs: &[PathBuf], out: Option<&Path>) -> anyhow::Result<PathBuf> {
    let mut loaded = Vec::with_capacity(dirs.len());
    for d in dirs {
        let report = crate::compare::load_report(d)?;
        let dir = if d.is_dir() { d.clone() } else { d.parent().map(Path::to_path_buf).unwrap_or_default() };
        loaded.push((dir, report));
    }
    match loaded.as_slice() {
        [] => bail!("give at least one results directory"),
        [(dir, report)] => {
            let target = out.map(Path::to_path_buf).unwrap_or_else(|| dir.clone());
            render_from(&target, report, dir)?;
            Ok(target)
        }
        many => {
            let Some(target) = out else {
                bail!("several results directories are overlaid into one report: give the output directory with -o OUT")
            };
            let mut labelled: Vec<(String, Report)> = Vec::with_capacity(many.len());
            for (i, (dir, r)) in many.iter().enumerate() {
                let mut label = dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| format!("run{}", i + 1));
                if labelled.iter().any(|(l, _)| *l == label) {
                    label = format!("{label}#{}", i + 1);
                }
                labelled.push((label, r.clone()));
            }
            render_many(target, &labelled)?;
            Ok(target.to_path_buf())
        }
    }
}
