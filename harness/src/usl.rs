//! The Universal Scalability Law fit: X(N) = λN / (1 + σ(N−1) + κN(N−1)) fitted by least squares
//! to measured (concurrency, throughput) points, with the predicted peak and the fit's quality.
//!
//! Method (no numerical library): for a fixed λ the model is linear in σ and κ once rearranged
//! (λN/X − 1 = σ(N−1) + κN(N−1)), so σ and κ come from a small non-negative linear least-squares
//! solve; λ itself is searched on a grid and then refined by golden-section search, each candidate
//! scored by the squared error of the predicted throughput (in req/s, not in the rearranged form).
//! R² is 1 − SSE/SST over the throughputs. A fit on fewer than [`MIN_GOOD_POINTS`] points or with
//! R² below [`MIN_GOOD_R_SQUARED`] is reported as a poor fit.

/// Fewer points than this: the fit is said to be poor (three coefficients need more than three).
pub const MIN_GOOD_POINTS: usize = 4;
/// R² below this: the fit is said to be poor.
pub const MIN_GOOD_R_SQUARED: f64 = 0.9;

/// Grid steps over λ before the golden-section refinement.
const LAMBDA_GRID_STEPS: usize = 400;
/// Golden-section iterations (the bracket shrinks by 0.618 each).
const GOLDEN_ITERATIONS: usize = 80;

/// Points that cannot be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UslError {
    #[error("a USL fit needs at least 3 (concurrency, throughput) points with distinct concurrency, got {0}")]
    TooFewPoints(usize),
    #[error("concurrency and throughput must be finite and > 0, got N = {concurrency}, X = {throughput_rps}")]
    BadPoint { concurrency: f64, throughput_rps: f64 },
}

/// The fitted coefficients and what they predict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UslFit {
    /// Contention (serialisation) coefficient σ, ≥ 0.
    pub sigma: f64,
    /// Coherency (crosstalk) coefficient κ, ≥ 0.
    pub kappa: f64,
    /// Throughput of one unit of concurrency without contention, req/s.
    pub lambda_rps: f64,
    /// N* = sqrt((1 − σ) / κ): the concurrency of peak throughput; `None` when κ = 0 or σ ≥ 1
    /// (throughput then never turns down within the model).
    pub peak_concurrency: Option<f64>,
    /// X(N*), req/s; `None` without a peak.
    pub peak_throughput_rps: Option<f64>,
    /// 1 − SSE/SST of the throughputs; `None` when every throughput is the same (SST = 0).
    pub r_squared: Option<f64>,
    /// Points fitted.
    pub points: usize,
    /// Fewer than [`MIN_GOOD_POINTS`] points, or R² below [`MIN_GOOD_R_SQUARED`] (or unknown).
    pub poor: bool,
}

impl UslFit {
    /// Throughput the fit predicts at concurrency `n`, req/s.
    pub fn predict(&self, n: f64) -> f64 {
        usl(self.lambda_rps, self.sigma, self.kappa, n)
    }

    /// One line: the coefficients, the peak and whether the fit is good.
    pub fn describe(&self) -> String {
        let peak = match (self.peak_concurrency, self.peak_throughput_rps) {
            (Some(n), Some(x)) => format!("peak {x:.0} req/s at N* = {n:.1}"),
            _ => "no peak within the model (κ = 0)".to_string(),
        };
        let r2 = self.r_squared.map_or_else(|| "R² not defined".to_string(), |r| format!("R² = {r:.3}"));
        let quality = if self.poor { "poor fit" } else { "good fit" };
        format!(
            "σ = {:.4}, κ = {:.6}, λ = {:.0} req/s; {peak}; {r2} over {} points ({quality})",
            self.sigma, self.kappa, self.lambda_rps, self.points
        )
    }
}

/// X(N) = λN / (1 + σ(N−1) + κN(N−1)).
pub fn usl(lambda_rps: f64, sigma: f64, kappa: f64, n: f64) -> f64 {
    lambda_rps * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))
}

/// Fits the law to `(concurrency, throughput_rps)` points.
pub fn fit(points: &[(f64, f64)]) -> Result<UslFit, UslError> {
    if let Some(&(n, x)) = points.iter().find(|(n, x)| !(n.is_finite() && x.is_finite() && *n > 0.0 && *x > 0.0)) {
        return Err(UslError::BadPoint { concurrency: n, throughput_rps: x });
    }
    let mut distinct: Vec<f64> = points.iter().map(|p| p.0).collect();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    if distinct.len() < 3 {
        return Err(UslError::TooFewPoints(distinct.len()));
    }
    let floor = points.iter().map(|(n, x)| x / n).fold(0.0, f64::max);
    let (lambda_rps, (sigma, kappa), sse) = search_lambda(points, floor);
    let mean = points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64;
    let sst: f64 = points.iter().map(|p| (p.1 - mean).powi(2)).sum();
    let r_squared = (sst > 0.0).then(|| 1.0 - sse / sst);
    let peak_concurrency = (kappa > 0.0 && sigma < 1.0).then(|| ((1.0 - sigma) / kappa).sqrt());
    let peak_throughput_rps = peak_concurrency.map(|n| usl(lambda_rps, sigma, kappa, n));
    let poor = points.len() < MIN_GOOD_POINTS || r_squared.is_none_or(|r| r < MIN_GOOD_R_SQUARED);
    Ok(UslFit {
        sigma,
        kappa,
        lambda_rps,
        peak_concurrency,
        peak_throughput_rps,
        r_squared,
        points: points.len(),
        poor,
    })
}

/// λ by grid then golden section over `[floor, 4·floor]` (λ ≥ X/N for every point when σ, κ ≥ 0);
/// returns λ, (σ, κ) and the squared error.
fn search_lambda(points: &[(f64, f64)], floor: f64) -> (f64, (f64, f64), f64) {
    let score = |lambda: f64| {
        let (s, k) = sigma_kappa(points, lambda);
        (sse(points, lambda, s, k), (s, k))
    };
    let (lo, hi) = (floor, 4.0 * floor);
    let step = (hi - lo) / LAMBDA_GRID_STEPS as f64;
    let best = (0..=LAMBDA_GRID_STEPS)
        .map(|i| lo + step * i as f64)
        .min_by(|a, b| score(*a).0.total_cmp(&score(*b).0))
        .unwrap_or(lo);
    let (mut a, mut b) = ((best - step).max(lo), (best + step).min(hi));
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..GOLDEN_ITERATIONS {
        let c = b - ratio * (b - a);
        let d = a + ratio * (b - a);
        if score(c).0 <= score(d).0 {
            b = d;
        } else {
            a = c;
        }
    }
    let lambda = [(a + b) / 2.0, best].into_iter().min_by(|x, y| score(*x).0.total_cmp(&score(*y).0)).unwrap_or(best);
    let (err, sk) = score(lambda);
    (lambda, sk, err)
}

/// Squared error of the predicted throughputs.
fn sse(points: &[(f64, f64)], lambda: f64, sigma: f64, kappa: f64) -> f64 {
    points.iter().map(|(n, x)| (x - usl(lambda, sigma, kappa, *n)).powi(2)).sum()
}

/// σ, κ ≥ 0 minimising Σ w(y − σa − κb)² with y = λN/X − 1, a = N − 1, b = N(N − 1), weighted by
/// w = (X²/N)² so each term is on the scale of a throughput error (the residual ≈ λN·ΔX/X²). Negative solutions are clamped by
/// solving with that coefficient at 0.
fn sigma_kappa(points: &[(f64, f64)], lambda: f64) -> (f64, f64) {
    let (mut saa, mut sab, mut sbb, mut say, mut sby) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (n, x) in points {
        let w = (x * x / n).powi(2);
        let (a, b, y) = (n - 1.0, n * (n - 1.0), lambda * n / x - 1.0);
        saa += w * a * a;
        sab += w * a * b;
        sbb += w * b * b;
        say += w * a * y;
        sby += w * b * y;
    }
    let only_sigma = if saa > 0.0 { (say / saa).max(0.0) } else { 0.0 };
    let only_kappa = if sbb > 0.0 { (sby / sbb).max(0.0) } else { 0.0 };
    let det = saa * sbb - sab * sab;
    if det.abs() > f64::EPSILON * saa * sbb {
        let s = (say * sbb - sby * sab) / det;
        let k = (sby * saa - say * sab) / det;
        if s >= 0.0 && k >= 0.0 {
            return (s, k);
        }
    }
    // The unconstrained optimum is outside the quadrant: the best of the two edges.
    let cost = |s: f64, k: f64| -> f64 {
        points
            .iter()
            .map(|(n, x)| (x * x / n).powi(2) * (lambda * n / x - 1.0 - s * (n - 1.0) - k * n * (n - 1.0)).powi(2))
            .sum()
    };
    if cost(only_sigma, 0.0) <= cost(0.0, only_kappa) { (only_sigma, 0.0) } else { (0.0, only_kappa) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synthetic(lambda: f64, sigma: f64, kappa: f64, ns: &[f64]) -> Vec<(f64, f64)> {
        ns.iter().map(|&n| (n, usl(lambda, sigma, kappa, n))).collect()
    }

    #[test]
    fn recovers_known_coefficients() {
        let pts = synthetic(1200.0, 0.05, 0.002, &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]);
        let f = fit(&pts).expect("fit");
        assert!((f.lambda_rps - 1200.0).abs() / 1200.0 < 0.01, "{f:?}");
        assert!((f.sigma - 0.05).abs() < 0.005, "{f:?}");
        assert!((f.kappa - 0.002).abs() < 0.0002, "{f:?}");
        let n_star = ((1.0 - 0.05) / 0.002f64).sqrt();
        assert!((f.peak_concurrency.expect("peak") - n_star).abs() / n_star < 0.03, "{f:?}");
        assert!(f.r_squared.expect("r2") > 0.999);
        assert!(!f.poor);
    }

    #[test]
    fn no_coherency_has_no_peak() {
        let pts = synthetic(500.0, 0.1, 0.0, &[1.0, 2.0, 4.0, 8.0, 16.0]);
        let f = fit(&pts).expect("fit");
        assert!(f.kappa < 1e-6, "{f:?}");
        assert!((f.sigma - 0.1).abs() < 0.01, "{f:?}");
        assert!(f.peak_concurrency.is_none() || f.peak_concurrency.is_some_and(|n| n > 1000.0));
    }

    #[test]
    fn zigzag_data_is_a_poor_fit() {
        let pts = vec![(1.0, 1000.0), (2.0, 300.0), (4.0, 3000.0), (8.0, 500.0), (16.0, 2800.0), (32.0, 400.0)];
        let f = fit(&pts).expect("fit");
        assert!(f.poor, "{f:?}");
        assert!(f.r_squared.is_some_and(|r| r < MIN_GOOD_R_SQUARED), "{f:?}");
        assert!(f.describe().contains("poor fit"));
    }

    #[test]
    fn three_points_fit_but_are_poor() {
        let pts = synthetic(1000.0, 0.1, 0.01, &[1.0, 4.0, 16.0]);
        let f = fit(&pts).expect("fit");
        assert!(f.poor, "three points cannot be a good fit of three coefficients");
    }

    #[test]
    fn too_few_or_bad_points_are_errors() {
        assert_eq!(fit(&[(1.0, 10.0), (2.0, 19.0)]), Err(UslError::TooFewPoints(2)));
        assert!(matches!(fit(&[(1.0, 10.0), (0.0, 1.0), (2.0, 3.0)]), Err(UslError::BadPoint { .. })));
    }
}
