//! The plots, each drawn twice with plotters from the same description: SVG (inlined in the HTML
//! and saved as `plots/<stem>.svg`) and PNG (`plots/<stem>.png`).
//!
//! Which plots a report gets:
//! - `latency-<op>`: the latency percentile spectrum per strategy, x on a log "nines" axis
//!   (0 %, 90 %, 99 %, 99.9 %, 99.99 %), full curves from `hist/<strategy>/<op>.hgrm` when present,
//!   otherwise the summary points from `report.json` (p50, p90, p99, p99.9, max).
//! - `timeline-latency`, `timeline-throughput`: per-second samples over the measured window.
//! - `bytes`, `store-ops`, `store-cpu`, `target-cpu`, `revocation-window`: one bar per strategy;
//!   null figures are labelled "not measured", bounded revocation windows are hatched and labelled
//!   as an upper bound ("≤ …, from exp + leeway; still accepted after …").
//! - `sweep-<option>-{p99,cpu,bytes}`: for matrix variants, the figure against the swept option
//!   (lines for numeric options, bars otherwise).
//! - `revocation-vs-ttl`: for variants sweeping `access_ttl` and/or `leeway`, the observed
//!   revocation window against access TTL + leeway; skipped without such a sweep.
//!
//! Axis labels and units of figures come from the figure registry ([`crate::figures`]).
//! - `capacity`: p99 against achieved rate per rate stage, the knee marked, the `[capacity]` p99
//!   objective as a grey line.
//! - `usl`: throughput against connections per closed-loop connections sweep, with its USL fit.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::path::Path;

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::FONT_FAMILY;
use super::fmt;
use super::hgrm::Curves;
use super::summary::knee_index;
use crate::figures::{self, Figure};
use crate::results::{OPERATIONS, Report, StrategyResult};

/// Series colours (Tableau 10), by strategy position in the report.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(214, 39, 40),
];
const ALERT: RGBColor = RGBColor(200, 30, 30);
const GRID: RGBColor = RGBColor(218, 218, 218);
const GRID_LIGHT: RGBColor = RGBColor(244, 244, 244);
const MUTED: RGBColor = RGBColor(110, 110, 110);

/// Turns plotters' errors (generic over the backend) into `anyhow` errors.
trait PlotResult<T> {
    fn plot(self) -> anyhow::Result<T>;
}

impl<T, E: Display> PlotResult<T> for Result<T, E> {
    fn plot(self) -> anyhow::Result<T> {
        self.map_err(|e| anyhow!("plotting failed: {e}"))
    }
}

/// A plot after drawing: what the HTML needs.
pub struct Rendered {
    pub stem: String,
    pub title: String,
    pub caption: String,
    pub svg: String,
}

/// A plot to draw.
pub struct PlotSpec {
    /// File name without extension.
    pub stem: String,
    pub title: String,
    /// One or two sentences under the plot: what it shows and where the data came from.
    pub caption: String,
    pub size: (u32, u32),
    pub chart: Chart,
}

pub enum Chart {
    Lines(LineChart),
    Bars(BarChart),
}

/// How the x axis of a line chart is labelled.
#[derive(Clone, Copy)]
pub enum XAxis {
    /// x = -log10(1 - percentile): labelled 0 %, 90 %, 99 %, 99.9 %, ...
    Nines,
    Plain,
}

pub struct LineChart {
    pub x_label: String,
    pub y_label: String,
    pub x_axis: XAxis,
    pub log_y: bool,
    pub series: Vec<Series>,
    pub markers: Vec<Marker>,
}

pub struct Series {
    pub label: String,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
    /// Drawn thinner and lighter (e.g. p50 beside p99).
    pub secondary: bool,
    /// Draw a dot at every point (sparse data).
    pub dots: bool,
}

/// A labelled point drawn over the lines (the capacity knee).
pub struct Marker {
    pub x: f64,
    pub y: f64,
    pub text: String,
}

pub struct BarChart {
    pub x_label: String,
    /// Legend entries when a row has several bars (empty for one).
    pub legend: Vec<(String, RGBColor)>,
    pub rows: Vec<BarRow>,
}

pub struct BarRow {
    pub label: String,
    pub bars: Vec<Bar>,
}

pub struct Bar {
    /// `None`: not measured (drawn as text, never as a zero bar).
    pub value: Option<f64>,
    pub text: String,
    /// A lower bound, not an observation: hatched.
    pub bounded: bool,
    pub color: RGBColor,
    /// With `--repeat`: every repetition's value, drawn as dots joined by a line over the bar
    /// (which is their median). Empty for a single run.
    pub spread: Vec<f64>,
}

fn font(size: u32) -> FontDesc<'static> {
    FontDesc::new(FontFamily::Name(FONT_FAMILY), f64::from(size), FontStyle::Normal)
}

fn text_style(size: u32, color: RGBColor) -> TextStyle<'static> {
    font(size).color(&color)
}

/// Draws `spec` as SVG and PNG into `dir`; returns the SVG text.
pub fn emit(dir: &Path, spec: &PlotSpec) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, spec.size).into_drawing_area();
        draw(&root, spec)?;
        root.present().plot()?;
    }
    let svg_path = dir.join(format!("{}.svg", spec.stem));
    std::fs::write(&svg_path, &svg).map_err(|e| anyhow!("writing {}: {e}", svg_path.display()))?;
    let png_path = dir.join(format!("{}.png", spec.stem));
    {
        let root = BitMapBackend::new(&png_path, spec.size).into_drawing_area();
        draw(&root, spec)?;
        root.present().plot()?;
    }
    Ok(svg)
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, spec: &PlotSpec) -> anyhow::Result<()> {
    root.fill(&WHITE).plot()?;
    let (w, _) = root.dim_in_pixel();
    root.draw(&Text::new(
        spec.title.clone(),
        (i32::try_from(w / 2).unwrap_or(0), 10),
        text_style(20, BLACK).pos(Pos::new(HPos::Center, VPos::Top)),
    ))
    .plot()?;
    let body = root.margin(42, 12, 12, 24);
    match &spec.chart {
        Chart::Lines(c) => draw_lines(root, &body, c),
        Chart::Bars(c) => draw_bars(root, &body, c),
    }
}

fn nines_label(x: f64) -> String {
    let pct = 100.0 * (1.0 - 10f64.powf(-x));
    let decimals = (x.round() as i64 - 2).clamp(0, 6) as usize;
    format!("{pct:.decimals$}%")
}

fn axis_label(axis: XAxis, x: f64) -> String {
    match axis {
        XAxis::Nines => nines_label(x),
        XAxis::Plain => fmt::num(x),
    }
}

fn extent(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.filter(|v| v.is_finite()).fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// The shared body of a line chart, for linear and log y coordinates.
macro_rules! line_body {
    ($root:expr, $chart:expr, $c:expr, $log:expr) => {{
        let chart = &mut $chart;
        let c: &LineChart = $c;
        let y_desc = if $log { format!("{}, log scale", c.y_label) } else { c.y_label.clone() };
        let x_fmt = |x: &f64| axis_label(c.x_axis, *x);
        let y_fmt = |y: &f64| fmt::num(*y);
        let x_labels = match c.x_axis {
            XAxis::Nines => (chart.x_range().end.ceil() as usize + 1).max(2),
            XAxis::Plain => 8,
        };
        chart
            .configure_mesh()
            .light_line_style(GRID_LIGHT)
            .bold_line_style(GRID)
            .x_labels(x_labels)
            .y_labels(8)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .x_desc(c.x_label.as_str())
            .y_desc(y_desc.as_str())
            .label_style(text_style(13, BLACK))
            .axis_desc_style(text_style(14, BLACK))
            .draw()
            .plot()?;
        for s in &c.series {
            let color = s.color;
            let style = if s.secondary { color.mix(0.55).stroke_width(1) } else { color.stroke_width(2) };
            let points = s.points.clone();
            let drawn = chart.draw_series(LineSeries::new(points, style)).plot()?;
            if !s.label.is_empty() {
                drawn.label(s.label.clone()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], style));
            }
            if s.dots {
                chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled()))).plot()?;
            }
        }
        for (i, m) in c.markers.iter().enumerate() {
            let dy = -22 - 17 * i32::try_from(i).unwrap_or(0);
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((m.x, m.y))
                        + Circle::new((0, 0), 8, ALERT.stroke_width(2))
                        + PathElement::new(vec![(0, -8), (8, dy + 8)], ALERT.stroke_width(1))
                        + Text::new(m.text.clone(), (10, dy), text_style(13, ALERT)),
                ))
                .plot()?;
        }
        if c.series.iter().any(|s| !s.label.is_empty()) {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(MUTED)
                .label_font(text_style(13, BLACK))
                .draw()
                .plot()?;
        }
        let _ = $root;
        Ok(())
    }};
}

fn draw_lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    c: &LineChart,
) -> anyhow::Result<()> {
    let xs = extent(c.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).chain(c.markers.iter().map(|m| m.x)));
    let ys = extent(c.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).chain(c.markers.iter().map(|m| m.y)));
    let (x0, mut x1) = xs.unwrap_or((0.0, 1.0));
    let (x0, x1) = match c.x_axis {
        XAxis::Nines => {
            x1 = x1.max(4.0).ceil();
            (0.0, x1)
        }
        XAxis::Plain if x1 > x0 => {
            let pad = (x1 - x0) * 0.05;
            ((x0 - pad).max(if x0 >= 0.0 { 0.0 } else { f64::MIN }), x1 + pad)
        }
        XAxis::Plain => (x0 - 1.0, x1 + 1.0),
    };
    let (y0, y1) = ys.unwrap_or((0.0, 1.0));
    // Head room above the data for the legend (upper left), growing with its rows.
    let legend_rows = c.series.iter().filter(|s| !s.label.is_empty()).count() + c.markers.len();
    let free = (0.06 + 0.045 * legend_rows as f64).clamp(0.1, 0.55);
    let mut builder = ChartBuilder::on(area);
    builder.margin(8).x_label_area_size(46).y_label_area_size(78);
    // Log scale only when the data spans more than a decade and a half; plotters labels log axes at
    // powers of ten, which says little about a narrow range.
    let lo_pos = (y0.max(1.0) / 1.3).max(0.5);
    if c.log_y && y1 / lo_pos > 30.0 {
        let (l0, l1) = (lo_pos.log10(), y1.max(lo_pos * 10.0).log10());
        let hi = 10f64.powf(l0 + (l1 - l0) / (1.0 - free));
        let mut chart = builder.build_cartesian_2d(x0..x1, (lo_pos..hi).log_scale()).plot()?;
        line_body!(root, chart, c, true)
    } else {
        let lo = if y0 >= 0.0 { 0.0 } else { y0 * 1.1 };
        let span = if y1 > lo { y1 - lo } else { 1.0 };
        let hi = lo + span / (1.0 - free);
        let mut chart = builder.build_cartesian_2d(x0..x1, lo..hi).plot()?;
        line_body!(root, chart, c, false)
    }
}

fn draw_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    c: &BarChart,
) -> anyhow::Result<()> {
    let n_rows = c.rows.len().max(1);
    let max = c
        .rows
        .iter()
        .flat_map(|r| r.bars.iter().flat_map(|b| b.value.into_iter().chain(b.spread.iter().copied())))
        .filter(|x| x.is_finite())
        .fold(0.0f64, f64::max);
    let x_hi = if max > 0.0 { max * 1.45 } else { 1.0 };
    let longest = c.rows.iter().map(|r| r.label.chars().count()).max().unwrap_or(4);
    let label_px = ((longest as u32) * 8 + 20).clamp(80, 380);
    let legend_px = if c.legend.is_empty() { 0 } else { 28 };
    let area = area.margin(legend_px, 0, 0, 0);
    let mut chart = ChartBuilder::on(&area)
        .margin(8)
        .x_label_area_size(46)
        .y_label_area_size(label_px)
        .build_cartesian_2d(0.0..x_hi, -0.5..(n_rows as f64 - 0.5))
        .plot()?;
    let x_fmt = |x: &f64| fmt::num(*x);
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .light_line_style(WHITE)
        .bold_line_style(GRID)
        .x_labels(8)
        .x_label_formatter(&x_fmt)
        .x_desc(c.x_label.as_str())
        .label_style(text_style(13, BLACK))
        .axis_desc_style(text_style(14, BLACK))
        .draw()
        .plot()?;
    for (i, row) in c.rows.iter().enumerate() {
        draw_bar_row(root, &mut chart, row, (n_rows - 1 - i) as f64)?;
    }
    draw_bar_legend(root, &area, label_px, &c.legend)
}

/// The strategy-value grid of a bar chart: x the figure, y one unit per row.
type BarGrid<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One row of a bar chart centred at `center`: its label left of the axis, then its bars top to
/// bottom, each with its value (or "not measured") beside it.
fn draw_bar_row<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &mut BarGrid<'_, DB>,
    row: &BarRow,
    center: f64,
) -> anyhow::Result<()> {
    let (lx, ly) = chart.backend_coord(&(0.0, center));
    root.draw(&Text::new(
        row.label.clone(),
        (lx - 8, ly),
        text_style(13, BLACK).pos(Pos::new(HPos::Right, VPos::Center)),
    ))
    .plot()?;
    let k = row.bars.len().max(1) as f64;
    let band = 0.76 / k;
    for (j, bar) in row.bars.iter().enumerate() {
        let top = center + 0.38 - band * j as f64;
        let bottom = top - band * 0.9;
        draw_one_bar(root, chart, bar, (top, bottom))?;
    }
    Ok(())
}

/// One bar between `top` and `bottom` (in row units): filled (hatched and outlined when an upper
/// bound) with its text after it, or only its text when it has no value.
fn draw_one_bar<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &mut BarGrid<'_, DB>,
    bar: &Bar,
    (top, bottom): (f64, f64),
) -> anyhow::Result<()> {
    let mid = (top + bottom) / 2.0;
    match bar.value {
        Some(v) if v.is_finite() => {
            let fill = if bar.bounded { bar.color.mix(0.30).filled() } else { bar.color.mix(0.85).filled() };
            chart.draw_series(std::iter::once(Rectangle::new([(0.0, bottom), (v, top)], fill))).plot()?;
            let (l, t) = chart.backend_coord(&(0.0, top));
            let (r, b) = chart.backend_coord(&(v, bottom));
            if bar.bounded {
                hatch(root, (l, t, r, b), bar.color)?;
                root.draw(&Rectangle::new([(l, t), (r, b)], bar.color.stroke_width(2))).plot()?;
            }
            draw_spread(chart, &bar.spread, (top, bottom))?;
            let (r, _) = chart.backend_coord(&(bar.spread.iter().copied().fold(v, f64::max), mid));
            let (_, ty) = chart.backend_coord(&(v, mid));
            let color = if bar.bounded { ALERT } else { BLACK };
            root.draw(&Text::new(
                bar.text.clone(),
                (r + 6, ty),
                text_style(13, color).pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .plot()?;
        }
        _ => {
            let (x, y) = chart.backend_coord(&(0.0, mid));
            root.draw(&Text::new(
                bar.text.clone(),
                (x + 6, y),
                text_style(13, MUTED).pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .plot()?;
        }
    }
    Ok(())
}

/// Every repetition's value as a dot across the bar's middle, joined by a line from the lowest to
/// the highest: the spread the median bar hides.
fn draw_spread<DB: DrawingBackend>(
    chart: &mut BarGrid<'_, DB>,
    spread: &[f64],
    (top, bottom): (f64, f64),
) -> anyhow::Result<()> {
    let xs: Vec<f64> = spread.iter().copied().filter(|x| x.is_finite()).collect();
    let (Some(lo), Some(hi)) = (xs.iter().copied().reduce(f64::min), xs.iter().copied().reduce(f64::max)) else {
        return Ok(());
    };
    let mid = (top + bottom) / 2.0;
    chart.draw_series(std::iter::once(PathElement::new(vec![(lo, mid), (hi, mid)], BLACK.stroke_width(2)))).plot()?;
    chart.draw_series(xs.iter().map(|&x| Circle::new((x, mid), 4, BLACK.filled()))).plot()?;
    Ok(())
}

/// The legend above a bar chart, left-aligned with the plotting area: a swatch and a name per entry.
fn draw_bar_legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    label_px: u32,
    legend: &[(String, RGBColor)],
) -> anyhow::Result<()> {
    let mut x = area.get_base_pixel().0 + i32::try_from(label_px).unwrap_or(80) + 8;
    let y = area.get_base_pixel().1 - 14;
    for (name, color) in legend {
        root.draw(&Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.mix(0.85).filled())).plot()?;
        root.draw(&Text::new(name.clone(), (x + 20, y), text_style(13, BLACK).pos(Pos::new(HPos::Left, VPos::Center))))
            .plot()?;
        x += 20 + (name.chars().count() as i32) * 8 + 24;
    }
    Ok(())
}

/// Diagonal hatching inside a pixel rectangle (left, top, right, bottom).
fn hatch<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    (l, t, r, b): (i32, i32, i32, i32),
    color: RGBColor,
) -> anyhow::Result<()> {
    let h = b - t;
    let w = r - l;
    if h <= 0 || w <= 0 {
        return Ok(());
    }
    let mut d = -h;
    while d < w {
        // Points on the line x - l = d + (b - y), clipped to the rectangle.
        let (x0, y0) = if d >= 0 { (l + d, b) } else { (l, b + d) };
        let (x1, y1) = if d + h <= w { (l + d + h, t) } else { (r, b - (w - d)) };
        if x1 > x0 {
            root.draw(&PathElement::new(vec![(x0, y0), (x1, y1)], color.stroke_width(1))).plot()?;
        }
        d += 7;
    }
    Ok(())
}

/// Every plot the report gets, in the order the HTML shows them.
pub fn all(report: &Report, curves: Curves<'_>) -> Vec<PlotSpec> {
    let colors: BTreeMap<&str, RGBColor> =
        report.strategies.iter().enumerate().map(|(i, s)| (s.name.as_str(), PALETTE[i % PALETTE.len()])).collect();
    let color = |s: &StrategyResult| colors.get(s.name.as_str()).copied().unwrap_or(PALETTE[0]);
    let mut specs = latency_spectra(report, curves, &color);
    specs.extend(timelines(report, &color));
    specs.push(bytes_bars(report));
    specs.extend(per_request_bars(report, &color));
    specs.push(revocation_bars(report, &color));
    if let Some(spec) = revocation_vs_ttl(report, &color) {
        specs.push(spec);
    }
    specs.extend(sweeps(report, &color));
    if let Some(spec) = capacity(report, &color) {
        specs.push(spec);
    }
    if let Some(spec) = usl_fits(report, &color) {
        specs.push(spec);
    }
    specs
}

/// Latency spectra: api first, then the other operations that were measured.
fn latency_spectra(report: &Report, curves: Curves<'_>, color: &dyn Fn(&StrategyResult) -> RGBColor) -> Vec<PlotSpec> {
    let ops = std::iter::once("api").chain(OPERATIONS.iter().copied().filter(|o| *o != "api"));
    ops.filter_map(|op| spectrum(report, op, curves, color)).collect()
}

/// Per-second latency (p99 thick, p50 thin) and throughput over the measured window; none when no
/// strategy has a timeline.
fn timelines(report: &Report, color: &dyn Fn(&StrategyResult) -> RGBColor) -> Vec<PlotSpec> {
    if !report.strategies.iter().any(|s| !s.timeline.is_empty()) {
        return Vec::new();
    }
    let mut lat = Vec::new();
    let mut rps = Vec::new();
    for s in report.strategies.iter().filter(|s| !s.timeline.is_empty()) {
        lat.push(Series {
            label: format!("{} p99", s.name),
            color: color(s),
            points: s.timeline.iter().map(|p| (p.t_s, p.p99_us as f64)).collect(),
            secondary: false,
            dots: s.timeline.len() < 3,
        });
        lat.push(Series {
            label: String::new(),
            color: color(s),
            points: s.timeline.iter().map(|p| (p.t_s, p.p50_us as f64)).collect(),
            secondary: true,
            dots: false,
        });
        rps.push(Series {
            label: s.name.clone(),
            color: color(s),
            points: s.timeline.iter().map(|p| (p.t_s, p.rps)).collect(),
            secondary: false,
            dots: s.timeline.len() < 3,
        });
    }
    vec![timeline_latency(lat), timeline_throughput(rps)]
}

fn timeline_latency(series: Vec<Series>) -> PlotSpec {
    PlotSpec {
        stem: "timeline-latency".into(),
        title: "Latency over time (all operations)".into(),
        caption: "Per-second p99 (thick) and p50 (thin, lighter) over the measured window, after warm-up. \
                  Spikes show stalls (GC, store hiccups, saturation)."
            .into(),
        size: (1000, 520),
        chart: Chart::Lines(LineChart {
            x_label: "time in measured window (s)".into(),
            y_label: "latency (µs)".into(),
            x_axis: XAxis::Plain,
            log_y: true,
            series,
            markers: Vec::new(),
        }),
    }
}

fn timeline_throughput(series: Vec<Series>) -> PlotSpec {
    PlotSpec {
        stem: "timeline-throughput".into(),
        title: "Throughput over time".into(),
        caption: "Completed requests per second, every outcome counted.".into(),
        size: (1000, 480),
        chart: Chart::Lines(LineChart {
            x_label: "time in measured window (s)".into(),
            y_label: "requests per second".into(),
            x_axis: XAxis::Plain,
            log_y: false,
            series,
            markers: Vec::new(),
        }),
    }
}

/// Credential and request-head bytes per api request, two bars per strategy.
fn bytes_bars(report: &Report) -> PlotSpec {
    let rows = report
        .strategies
        .iter()
        .map(|s| BarRow {
            label: s.name.clone(),
            bars: vec![
                figure_bar(s, &figures::CREDENTIAL_BYTES, PALETTE[0]),
                figure_bar(s, &figures::REQUEST_HEADER_BYTES, PALETTE[1]),
            ],
        })
        .collect();
    bar_spec(
        "bytes",
        "Bytes on the wire per api request",
        "Mean credential bytes as sent (cookie value or bearer token) and whole request head bytes, per api request.",
        "bytes per request",
        vec![
            (figures::CREDENTIAL_BYTES.label.into(), PALETTE[0]),
            (figures::REQUEST_HEADER_BYTES.label.into(), PALETTE[1]),
        ],
        rows,
    )
}

/// Store commands, store CPU and target CPU per completed request, one bar per strategy each.
fn per_request_bars(report: &Report, color: &dyn Fn(&StrategyResult) -> RGBColor) -> Vec<PlotSpec> {
    let one = |f: &Figure| -> Vec<BarRow> {
        report
            .strategies
            .iter()
            .map(|s| BarRow { label: s.name.clone(), bars: vec![figure_bar(s, f, color(s))] })
            .collect()
    };
    let per_request = [
        (
            "store-ops",
            "Commands the store executed per completed request over the measured window, read from the store itself.",
            &figures::STORE_OPS_PER_REQUEST,
        ),
        (
            "store-cpu",
            "Store process CPU (user + system) per completed request, read from the store itself.",
            &figures::STORE_CPU_US_PER_REQUEST,
        ),
        (
            "target-cpu",
            "Target process CPU (user + system) per completed request, from the target's own accounting: \
             verification cost shows even on a noisy machine.",
            &figures::TARGET_CPU_US_PER_REQUEST,
        ),
    ];
    per_request
        .into_iter()
        .map(|(stem, caption, f)| bar_spec(stem, f.label, caption, &f.axis_label(), Vec::new(), one(f)))
        .collect()
}

/// The revocation window (max) per strategy, bounded windows hatched as upper bounds.
fn revocation_bars(report: &Report, color: &dyn Fn(&StrategyResult) -> RGBColor) -> PlotSpec {
    let rows = report
        .strategies
        .iter()
        .map(|s| {
            let w = &s.revocation_window_ms;
            let value = figures::REVOCATION_WINDOW_MS_MAX.value(s, "");
            let text = figures::revocation_window_text(s);
            BarRow {
                label: s.name.clone(),
                bars: vec![Bar { value, text, bounded: w.bounded, color: color(s), spread: Vec::new() }],
            }
        })
        .collect();
    bar_spec(
        "revocation-window",
        "Revocation window (max)",
        "How long a logged-out or revoked credential was still accepted, probed directly. Hatched bars are \
         upper bounds, not observations: the credential was still accepted when probing ended, and the bar is \
         its exp plus the target's leeway.",
        &figures::REVOCATION_WINDOW_MS_MAX.axis_label(),
        Vec::new(),
        rows,
    )
}

fn bar(value: Option<f64>, unit: &str, color: RGBColor) -> Bar {
    Bar {
        value: value.filter(|v| v.is_finite()),
        text: fmt::opt(value, unit),
        bounded: false,
        color,
        spread: Vec::new(),
    }
}

/// One registry figure of one strategy as a bar, labelled with its value and unit.
fn figure_bar(s: &StrategyResult, f: &Figure, color: RGBColor) -> Bar {
    let spread = if s.repeats.is_empty() { Vec::new() } else { crate::repeats::samples(s, f, "") };
    Bar { value: f.value(s, ""), text: f.format(s, ""), bounded: false, color, spread }
}

fn bar_spec(
    stem: &str,
    title: &str,
    caption: &str,
    x_label: &str,
    legend: Vec<(String, RGBColor)>,
    rows: Vec<BarRow>,
) -> PlotSpec {
    let caption = if rows.iter().any(|r| r.bars.iter().any(|b| !b.spread.is_empty())) {
        format!("{caption} Repeated run: each bar is the median, each dot one repetition.")
    } else {
        caption.to_owned()
    };
    let per_row = rows.iter().map(|r| r.bars.len()).max().unwrap_or(1) as u32;
    let height = 150 + (rows.len() as u32).max(1) * (18 + 20 * per_row);
    PlotSpec {
        stem: stem.into(),
        title: title.into(),
        caption,
        size: (1000, height.clamp(260, 1600)),
        chart: Chart::Bars(BarChart { x_label: x_label.into(), legend, rows }),
    }
}

fn spectrum(
    report: &Report,
    op: &str,
    curves: Curves<'_>,
    color: &dyn Fn(&StrategyResult) -> RGBColor,
) -> Option<PlotSpec> {
    let mut series = Vec::new();
    let mut from_files = 0usize;
    let mut from_summary = 0usize;
    for s in &report.strategies {
        let Some(l) = s.latency_us.get(op).filter(|l| l.count > 0) else { continue };
        let (points, dots) = match curves.get(&s.name, op) {
            Some(pts) => {
                from_files += 1;
                let mut out = Vec::with_capacity(pts.len());
                let mut last_x = 0.0f64;
                for p in pts {
                    let x = if p.percentile < 1.0 { -(1.0 - p.percentile).log10() } else { last_x };
                    last_x = last_x.max(x);
                    out.push((x, p.value_us.max(1.0)));
                }
                (out, false)
            }
            None => {
                from_summary += 1;
                let x_max = (l.count as f64).log10().max(3.3);
                let pts = vec![
                    (0.0, l.min as f64),
                    (-(0.5f64).log10(), l.p50 as f64),
                    (1.0, l.p90 as f64),
                    (2.0, l.p99 as f64),
                    (3.0, l.p999 as f64),
                    (x_max, l.max as f64),
                ];
                (pts.into_iter().map(|(x, y)| (x, y.max(1.0))).collect(), true)
            }
        };
        series.push(Series { label: s.name.clone(), color: color(s), points, secondary: false, dots });
    }
    if series.is_empty() {
        return None;
    }
    let source = match (from_files, from_summary) {
        (_, 0) => "Full curves from the run's HdrHistogram percentile files (hist/<strategy>/<op>.hgrm).".to_string(),
        (0, _) => "Points are the summary percentiles in report.json (min, p50, p90, p99, p99.9, max; max drawn at \
                   the 1/count percentile); no .hgrm files were found for the full curve."
            .to_string(),
        _ => "Full curves where hist/<strategy>/<op>.hgrm files exist; dotted points from report.json summary \
              percentiles otherwise."
            .to_string(),
    };
    let corrected = if report.traffic.mode == "open" {
        " Open loop: latency counts from the intended send time (coordinated omission corrected)."
    } else {
        " Closed loop: latency counts from the actual send time."
    };
    Some(PlotSpec {
        stem: format!("latency-{op}"),
        title: format!("Latency by percentile: {op}"),
        caption: format!("{source}{corrected}"),
        size: (1000, 540),
        chart: Chart::Lines(LineChart {
            x_label: "percentile".into(),
            y_label: "latency (µs)".into(),
            x_axis: XAxis::Nines,
            log_y: true,
            series,
            markers: Vec::new(),
        }),
    })
}

/// For matrix variants: each swept option against api p99, target CPU per request and credential
/// bytes, one series (or bar group) per strategy and fixed coordinates.
fn sweeps(report: &Report, color: &dyn Fn(&StrategyResult) -> RGBColor) -> Vec<PlotSpec> {
    let variants: Vec<&StrategyResult> = report.strategies.iter().filter(|s| !s.variant.is_empty()).collect();
    let keys: BTreeSet<&str> = variants.iter().flat_map(|s| s.variant.keys().map(String::as_str)).collect();
    let mut specs = Vec::new();
    for key in keys {
        let Some(sweep) = Sweep::of(&variants, key) else { continue };
        for (fig, figure, op) in SWEPT_FIGURES {
            specs.extend(sweep.plot(fig, figure, op, color));
        }
    }
    specs
}

/// What every swept option is plotted against: (stem suffix, figure, operation or "" for
/// per-request figures).
static SWEPT_FIGURES: [(&str, &Figure, &str); 3] = [
    ("p99", &figures::P99_US, "api"),
    ("cpu", &figures::TARGET_CPU_US_PER_REQUEST, ""),
    ("bytes", &figures::CREDENTIAL_BYTES, ""),
];

/// One matrix option swept over two or more values, and the strategies that carry it.
struct Sweep<'a> {
    key: &'a str,
    /// Strategy kind plus the other coordinates, each group's members ordered by the swept value;
    /// groups in natural order of their names. One line (or bar group) per group.
    groups: Vec<(String, Vec<&'a StrategyResult>)>,
    /// The swept values in natural order: a value's position picks its bar colour.
    ordered_values: Vec<&'a str>,
    /// Every value is a number (or a duration in ms): drawn as lines against it, else as bars.
    numeric: bool,
    /// Some value is written in ms: the x axis says so.
    in_ms: bool,
}

/// The words of one sweep plot.
struct SweepText {
    stem: String,
    title: String,
    caption: String,
    /// The figure's axis label (with its operation, when per operation).
    label: String,
}

impl<'a> Sweep<'a> {
    /// The sweep of `key` among `variants`; None unless it takes at least two values.
    fn of(variants: &[&'a StrategyResult], key: &'a str) -> Option<Sweep<'a>> {
        let members: Vec<&StrategyResult> = variants.iter().copied().filter(|s| s.variant.contains_key(key)).collect();
        let values: BTreeSet<&str> = members.iter().filter_map(|s| s.variant.get(key).map(String::as_str)).collect();
        if values.len() < 2 {
            return None;
        }
        let numeric = values.iter().all(|v| sweep_x(v).is_some());
        let in_ms = values.iter().any(|v| v.trim().ends_with("ms"));
        let mut ordered_values: Vec<&str> = values.iter().copied().collect();
        ordered_values.sort_by_key(|v| natural_key(v));
        Some(Sweep { key, groups: sweep_groups(&members, key), ordered_values, numeric, in_ms })
    }

    /// The colour of a strategy's bar: by the position of its swept value.
    fn value_color(&self, s: &StrategyResult) -> RGBColor {
        let v = s.variant.get(self.key).map_or("", String::as_str);
        let i = self.ordered_values.iter().position(|x| *x == v).unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    }

    /// The plot of one figure against the swept option; None when no line has a point.
    fn plot(
        &self,
        fig: &str,
        figure: &Figure,
        op: &str,
        color: &dyn Fn(&StrategyResult) -> RGBColor,
    ) -> Option<PlotSpec> {
        let key = self.key;
        let label = if op.is_empty() { figure.axis_label() } else { format!("{op} {}", figure.axis_label()) };
        let text = SweepText {
            stem: format!("sweep-{}-{fig}", fmt::slug(key)),
            title: format!("{label} vs {key}"),
            caption: format!(
                "Matrix sweep: {label} for each value of `{key}`, one {} per strategy and fixed options.",
                if self.numeric { "line" } else { "bar group" }
            ),
            label,
        };
        let get = |s: &StrategyResult| figure.value(s, op);
        if self.numeric { self.lines(text, &get, color) } else { Some(self.bars(text, &get, figure.unit.symbol())) }
    }

    /// One line per group against the numeric swept value.
    fn lines(
        &self,
        text: SweepText,
        get: &dyn Fn(&StrategyResult) -> Option<f64>,
        color: &dyn Fn(&StrategyResult) -> RGBColor,
    ) -> Option<PlotSpec> {
        let key = self.key;
        let series: Vec<Series> = self
            .groups
            .iter()
            .enumerate()
            .map(|(gi, (g, members))| {
                let mut points: Vec<(f64, f64)> = members
                    .iter()
                    .filter_map(|s| {
                        let x = sweep_x(s.variant.get(key)?)?;
                        Some((x, get(s)?))
                    })
                    .collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                let c = members.first().map(|s| color(s)).unwrap_or(PALETTE[gi % PALETTE.len()]);
                Series { label: g.clone(), color: c, points, secondary: false, dots: true }
            })
            .filter(|s| !s.points.is_empty())
            .collect();
        if series.is_empty() {
            return None;
        }
        Some(PlotSpec {
            stem: text.stem,
            title: text.title,
            caption: text.caption,
            size: (1000, 500),
            chart: Chart::Lines(LineChart {
                x_label: if self.in_ms { format!("{key} (ms)") } else { key.to_string() },
                y_label: text.label,
                x_axis: XAxis::Plain,
                log_y: false,
                series,
                markers: Vec::new(),
            }),
        })
    }

    /// One bar per strategy, grouped, coloured by the swept value.
    fn bars(&self, text: SweepText, get: &dyn Fn(&StrategyResult) -> Option<f64>, unit: &str) -> PlotSpec {
        let key = self.key;
        let rows: Vec<BarRow> = self
            .groups
            .iter()
            .flat_map(|(g, members)| {
                members.iter().map(move |s| BarRow {
                    label: format!("{g}: {key}={}", s.variant.get(key).map(String::as_str).unwrap_or("?")),
                    bars: vec![bar(get(s), unit, self.value_color(s))],
                })
            })
            .collect();
        bar_spec(&text.stem, &text.title, &text.caption, &text.label, Vec::new(), rows)
    }
}

/// The members of a sweep grouped by strategy kind plus their other coordinates, groups and each
/// group's members in natural order.
fn sweep_groups<'a>(members: &[&'a StrategyResult], key: &str) -> Vec<(String, Vec<&'a StrategyResult>)> {
    let group_of = |s: &StrategyResult| {
        let rest: Vec<String> =
            s.variant.iter().filter(|(k, _)| k.as_str() != key).map(|(k, v)| format!("{k}={v}")).collect();
        if rest.is_empty() { s.strategy.clone() } else { format!("{} {}", s.strategy, rest.join(" ")) }
    };
    let mut groups: Vec<(String, Vec<&StrategyResult>)> = Vec::new();
    for s in members {
        let g = group_of(s);
        match groups.iter_mut().find(|(name, _)| *name == g) {
            Some((_, list)) => list.push(s),
            None => groups.push((g, vec![s])),
        }
    }
    groups.sort_by_key(|g| natural_key(&g.0));
    for (_, list) in &mut groups {
        list.sort_by_key(|s| natural_key(s.variant.get(key).map_or("", String::as_str)));
    }
    groups
}

/// A swept value as a number: `1024`, or a duration in ms (`5ms`, `0.5ms`, as `store.delay` writes it).
fn sweep_x(v: &str) -> Option<f64> {
    let v = v.trim();
    v.parse::<f64>().ok().or_else(|| v.strip_suffix("ms")?.parse::<f64>().ok()).filter(|x| x.is_finite())
}

/// A sort key that orders digit runs by value: `pad_bytes=512` before `pad_bytes=2048`.
fn natural_key(s: &str) -> Vec<(u8, u64, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        let digit = c.is_ascii_digit();
        let mut run = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() != digit {
                break;
            }
            run.push(d);
            chars.next();
        }
        out.push(if digit { (0, run.parse().unwrap_or(u64::MAX), run) } else { (1, 0, run) });
    }
    out
}

/// The capacity curve: p99 against achieved rate for staged runs, the knee marked.
fn capacity(report: &Report, color: &dyn Fn(&StrategyResult) -> RGBColor) -> Option<PlotSpec> {
    let staged: Vec<&StrategyResult> = report.strategies.iter().filter(|s| !s.stages.is_empty()).collect();
    if staged.is_empty() {
        return None;
    }
    let mut series = Vec::new();
    let mut markers = Vec::new();
    for s in staged {
        let mut stages = s.stages.clone();
        stages.sort_by(|a, b| a.target_rate_per_sec.total_cmp(&b.target_rate_per_sec));
        series.push(Series {
            label: s.name.clone(),
            color: color(s),
            points: stages.iter().map(|st| (st.achieved_rps, (st.p99_us as f64).max(1.0))).collect(),
            secondary: false,
            dots: true,
        });
        if let Some(k) = knee_index(&stages) {
            let st = &stages[k];
            markers.push(Marker {
                x: st.achieved_rps,
                y: (st.p99_us as f64).max(1.0),
                text: format!("{} knee @ {} req/s", s.name, fmt::num(st.achieved_rps)),
            });
        }
    }
    objective_line(report, &mut series);
    Some(PlotSpec {
        stem: "capacity".into(),
        title: "Capacity: p99 latency vs achieved rate".into(),
        caption: "One point per rate stage. The knee (circled) is the first stage whose p99 exceeds twice the \
                  lowest-rate p99 or whose achieved rate falls below 95 % of the target. Requests count in the stage their answer arrived in; \
                  the last stage also holds the backlog that drained after the ladder."
            .into(),
        size: (1000, 540),
        chart: Chart::Lines(LineChart {
            x_label: "achieved rate (requests per second)".into(),
            y_label: "p99 latency (µs)".into(),
            x_axis: XAxis::Plain,
            log_y: true,
            series,
            markers,
        }),
    })
}

/// Measured throughput against connections per USL sweep (dots) with the fitted curve (thin).
fn usl_fits(report: &Report, color: &dyn Fn(&StrategyResult) -> RGBColor) -> Option<PlotSpec> {
    let mut series = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for s in &report.strategies {
        let Some(u) = s.usl.as_ref().filter(|u| !seen.contains(&u.sweep.as_str())) else { continue };
        seen.push(&u.sweep);
        let c = color(s);
        series.push(Series {
            label: format!("{} measured", u.sweep),
            color: c,
            points: u.points.iter().map(|p| (p.connections, p.throughput_rps)).collect(),
            secondary: false,
            dots: true,
        });
        if let (Some(l), Some(sg), Some(k)) = (u.lambda_rps, u.sigma, u.kappa) {
            let top = u.points.iter().map(|p| p.connections).fold(1.0f64, f64::max);
            let curve = (0..=60).map(|i| 1.0 + (top - 1.0) * f64::from(i) / 60.0);
            series.push(Series {
                label: format!("{} USL fit{}", u.sweep, if u.poor_fit { " (poor)" } else { "" }),
                color: c,
                points: curve.map(|n| (n, crate::usl::usl(l, sg, k, n))).collect(),
                secondary: true,
                dots: false,
            });
        }
    }
    if series.is_empty() {
        return None;
    }
    Some(PlotSpec {
        stem: "usl".into(),
        title: "Scalability: throughput vs connections, USL fit".into(),
        caption: "Closed loop, one point per matrix.connections value; the thin line is X(N) = λN / (1 + σ(N−1) + \
                  κN(N−1)) fitted by least squares. A poor fit (R² < 0.9 or fewer than 4 points) is marked."
            .into(),
        size: (1000, 540),
        chart: Chart::Lines(LineChart {
            x_label: "connections (N)".into(),
            y_label: "throughput (requests per second)".into(),
            x_axis: XAxis::Plain,
            log_y: false,
            series,
            markers: Vec::new(),
        }),
    })
}

/// The `[capacity]` p99 objective as a flat grey line across the measured rates (when the run had one).
fn objective_line(report: &Report, series: &mut Vec<Series>) {
    let Some(objective_us) =
        report.strategies.iter().find_map(|s| s.capacity.as_ref()).map(|c| c.objective_p99_ms * 1000.0)
    else {
        return;
    };
    let rates = report.strategies.iter().flat_map(|s| s.stages.iter().map(|st| st.achieved_rps));
    let (lo, hi) = rates.fold((f64::INFINITY, 0.0f64), |(lo, hi), r| (lo.min(r), hi.max(r)));
    if lo.is_finite() && hi > 0.0 {
        series.push(Series {
            label: format!("objective: p99 ≤ {}", fmt::ms(objective_us / 1000.0)),
            color: RGBColor(120, 120, 120),
            points: vec![(lo, objective_us), (hi, objective_us)],
            secondary: false,
            dots: false,
        });
    }
}

/// Matrix coordinates that set the revocation bound of a JWT: `exp` is `access_ttl` after issue and
/// the target accepts it `leeway` longer.
const TTL_KEY: &str = "access_ttl";
const LEEWAY_KEY: &str = "leeway";

/// A swept duration as seconds: `5s`, `500ms`, `1m`, or a bare number of seconds.
fn seconds(v: &str) -> Option<f64> {
    let v = v.trim();
    v.parse::<f64>()
        .ok()
        .or_else(|| crate::targets::config::parse_duration(v).ok().map(|d| d.as_secs_f64()))
        .filter(|x| x.is_finite())
}

/// A duration option a variant ran with, in seconds: its own coordinate, else the `[target]` table
/// of the scenario as run.
fn option_s(report: &Report, s: &StrategyResult, key: &str) -> Option<f64> {
    if let Some(v) = s.variant.get(key) {
        return seconds(v);
    }
    let doc: toml::Value = toml::from_str(&report.scenario.resolved_toml).ok()?;
    match doc.get("target")?.get(key)? {
        toml::Value::String(v) => seconds(v),
        toml::Value::Integer(n) => Some(*n as f64),
        toml::Value::Float(x) => Some(*x),
        _ => None,
    }
}

/// One observed point: (access TTL + leeway, observed window, access TTL, leeway), seconds.
type TtlPoint = (f64, f64, f64, f64);

fn ttl_point(report: &Report, s: &StrategyResult) -> Option<TtlPoint> {
    let ttl = option_s(report, s, TTL_KEY)?;
    let leeway = option_s(report, s, LEEWAY_KEY)?;
    let w = &s.revocation_window_ms;
    let observed = w.max.filter(|_| !w.bounded)? / 1000.0;
    Some((ttl + leeway, observed, ttl, leeway))
}

/// What the leeway added, measured: the mean window beyond the access TTL, per leeway value.
fn leeway_sentence(points: &[TtlPoint]) -> String {
    let mut by_leeway: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for &(_, observed, ttl, leeway) in points {
        let e = by_leeway.entry(format!("{leeway:>12.3}")).or_insert((0.0, 0));
        e.0 += observed - ttl;
        e.1 += 1;
    }
    let parts: Vec<String> = by_leeway
        .iter()
        .map(|(l, (sum, n))| {
            let l: f64 = l.trim().parse().unwrap_or(0.0);
            format!("leeway {} s: {} s beyond the access TTL", fmt::num(l), fmt::num(sum / *n as f64))
        })
        .collect();
    format!(
        "What the leeway added, measured (mean observed window minus access TTL): {}. A token is accepted until \
         exp + leeway, so the leeway adds up to its own length to the window.",
        parts.join("; ")
    )
}

/// Observed revocation window against access TTL + leeway, for variants sweeping either; `None`
/// without such a sweep or without an observed window.
fn revocation_vs_ttl(report: &Report, color: &dyn Fn(&StrategyResult) -> RGBColor) -> Option<PlotSpec> {
    let swept = |k: &str| report.strategies.iter().filter_map(|s| s.variant.get(k)).collect::<BTreeSet<_>>().len() > 1;
    if !swept(TTL_KEY) && !swept(LEEWAY_KEY) {
        return None;
    }
    let mut groups: BTreeMap<String, (RGBColor, Vec<TtlPoint>)> = BTreeMap::new();
    for s in &report.strategies {
        let Some(p) = ttl_point(report, s) else { continue };
        let rest: Vec<String> = s
            .variant
            .iter()
            .filter(|(k, _)| k.as_str() != TTL_KEY && k.as_str() != LEEWAY_KEY)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let g = if rest.is_empty() { s.strategy.clone() } else { format!("{} {}", s.strategy, rest.join(" ")) };
        groups.entry(g).or_insert_with(|| (color(s), Vec::new())).1.push(p);
    }
    let all: Vec<TtlPoint> = groups.values().flat_map(|(_, p)| p.iter().copied()).collect();
    let (x0, x1) = extent(all.iter().map(|p| p.0))?;
    let mut series: Vec<Series> = groups
        .into_iter()
        .map(|(label, (color, mut pts))| {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series { label, color, points: pts.iter().map(|p| (p.0, p.1)).collect(), secondary: false, dots: true }
        })
        .collect();
    series.push(Series {
        label: "access TTL + leeway (the bound)".into(),
        color: MUTED,
        points: vec![(x0.min(0.0), x0.min(0.0)), (x1, x1)],
        secondary: true,
        dots: false,
    });
    Some(PlotSpec {
        stem: "revocation-vs-ttl".into(),
        title: "Observed revocation window vs access TTL + leeway".into(),
        caption: format!(
            "One point per variant whose revoked credential was observed to stop working (bounded windows are \
             left out); the grey line is where the window equals access TTL + leeway. {}",
            leeway_sentence(&all)
        ),
        size: (1000, 520),
        chart: Chart::Lines(LineChart {
            x_label: "access TTL + leeway (s)".into(),
            y_label: format!("observed {} (s)", figures::REVOCATION_WINDOW_MS_MAX.label),
            x_axis: XAxis::Plain,
            log_y: false,
            series,
            markers: Vec::new(),
        }),
    })
}
