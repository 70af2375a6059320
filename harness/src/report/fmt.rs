//! Number formatting shared by the tables and plots: units always shown, nulls as "not measured".

/// What a null figure is shown as.
pub const NOT_MEASURED: &str = "not measured";

/// A plain number with a precision that suits its size (`12 345`, `123`, `12.3`, `1.23`, `0.012`).
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".to_string();
    }
    let a = v.abs();
    if a >= 1000.0 {
        group(v.round() as i64)
    } else if a >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.2}")
    } else if a >= 0.001 {
        format!("{v:.3}")
    } else if v > 0.0 {
        "< 0.001".to_string()
    } else {
        "> -0.001".to_string()
    }
}

/// An integer with thin-space thousands grouping.
pub fn group(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    if v < 0 { format!("-{out}") } else { out }
}

/// A number with a unit, or "not measured".
pub fn opt(v: Option<f64>, unit: &str) -> String {
    match v {
        Some(v) if v.is_finite() => with_unit(v, unit),
        _ => NOT_MEASURED.to_string(),
    }
}

/// A number with a unit (`12.3 µs`); a bare number when `unit` is empty.
pub fn with_unit(v: f64, unit: &str) -> String {
    if unit.is_empty() { num(v) } else { format!("{} {unit}", num(v)) }
}

/// A signed difference with a unit (`+12.3 µs`, `-4 B`).
pub fn delta(v: f64, unit: &str) -> String {
    let sign = if v >= 0.0 { "+" } else { "-" };
    with_unit_signed(sign, v.abs(), unit)
}

fn with_unit_signed(sign: &str, v: f64, unit: &str) -> String {
    format!("{sign}{}", with_unit(v, unit))
}

/// A duration in milliseconds, in the largest unit that keeps it readable (`0 ms`, `850 ms`,
/// `12.5 s`, `5.0 min`, `2.0 h`).
pub fn ms(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".to_string();
    }
    if v < 1000.0 {
        format!("{} ms", num(v))
    } else if v < 120_000.0 {
        format!("{:.1} s", v / 1000.0)
    } else if v < 7_200_000.0 {
        format!("{:.1} min", v / 60_000.0)
    } else {
        format!("{:.1} h", v / 3_600_000.0)
    }
}

/// A latency in microseconds, scaled to ms or s when large (`850 µs`, `12.3 ms`).
pub fn us(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".to_string();
    }
    if v < 10_000.0 {
        format!("{} µs", num(v))
    } else if v < 10_000_000.0 {
        format!("{} ms", num(v / 1000.0))
    } else {
        format!("{} s", num(v / 1_000_000.0))
    }
}

/// Escapes text for HTML and XML.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for a Markdown table cell.
pub fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// A file-name-safe version of a label: the very rule the results writer names `hist/<slug>/` with,
/// so the reader always finds what the writer wrote.
pub use crate::output::slug;
