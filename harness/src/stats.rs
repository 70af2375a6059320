//! Statistics over repeated runs (`authbench run --repeat N`, `authbench compare` of two repeated
//! runs): the median of N repetitions of a figure, a bootstrap confidence interval for that median,
//! and a significance test for a change between two sets of repetitions, with the rule that turns
//! them into a verdict.
//!
//! Methods, stated once here and in the report's method section:
//! - **Median**: the middle value of the N repetitions (the mean of the two middle values for even N).
//! - **Confidence interval of the median**: percentile bootstrap, [`BOOTSTRAP_RESAMPLES`] resamples
//!   (with replacement, N values each) drawn by a SplitMix64 generator seeded with
//!   [`BOOTSTRAP_SEED`], so the same repetitions always give the same interval. The interval is
//!   the 2.5th to 97.5th percentile of the resampled medians ([`CONFIDENCE_LEVEL`] = 95 %). With
//!   few repetitions the median of a resample can only be one of the N values, so the interval is
//!   coarse: at N = 5 it is the smallest to the largest repetition, whose distribution-free coverage
//!   of the true median is 1 - 2/2^5 = 93.75 %.
//! - **Change**: `(median(new) - median(base)) / median(base)`, percent.
//! - **Significance**: two-sided Wilcoxon-Mann-Whitney rank-sum test, exact (every split of the
//!   pooled repetitions into the two group sizes is counted; ties get mid-ranks and the exact
//!   permutation distribution of the tied ranks is used) up to [`EXACT_MAX_POOLED`] pooled
//!   repetitions, normal approximation with tie and continuity correction beyond. It is chosen
//!   over a bootstrap of the ratio of medians because it is sound at N = 5 per side: it assumes
//!   no distribution, its p-value is exact rather than asymptotic, and its false-alarm rate never
//!   exceeds the stated level. The price of N = 5: the smallest two-sided p-value is
//!   2/C(10,5) = 0.0079, reached only when every new repetition is on the same side of every base
//!   repetition, so a level below that can never be met (and multiple-testing corrections such as
//!   Bonferroni over many figures are out of reach; the threshold guards against noise instead).
//! - **Verdict**: a figure regresses only when it got worse by more than the allowed percentage AND
//!   the change is significant at the stated level ([`DEFAULT_ALPHA`] = 0.05); otherwise it is
//!   "no significant change", or a significant change within the limit.

use std::cmp::Ordering;

/// Bootstrap resamples per interval.
pub const BOOTSTRAP_RESAMPLES: usize = 10_000;
/// Seed of the bootstrap generator: fixed, so an interval is reproducible from the repetitions.
pub const BOOTSTRAP_SEED: u64 = 0x5eed_a07b_e9c4_2026;
/// Two-sided coverage of the confidence intervals.
pub const CONFIDENCE_LEVEL: f64 = 0.95;
/// Significance level of the change test (per figure, two-sided).
pub const DEFAULT_ALPHA: f64 = 0.05;
/// Up to this many pooled repetitions the rank-sum test is exact; beyond, normal approximation.
pub const EXACT_MAX_POOLED: usize = 60;

/// The middle value of `xs` (the mean of the two middle ones for an even count); `None` when empty
/// or when a value is not finite.
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() || xs.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    Some(median_of_sorted(&v))
}

fn median_of_sorted(v: &[f64]) -> f64 {
    let mid = v.len() / 2;
    if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 }
}

/// A confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
    /// Two-sided coverage it was computed for (0.95).
    pub level: f64,
}

impl Interval {
    /// True when `x` lies inside (bounds included).
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

/// SplitMix64: a tiny generator whose sequence is fixed by its definition, so bootstrap intervals
/// do not change when a dependency's generator does.
struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform index below `n` (multiply-shift; the bias is below n / 2^64).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// Percentile-bootstrap interval for the median of `xs`: `resamples` resamples with replacement,
/// the `(1-level)/2` and `(1+level)/2` quantiles of their medians. `None` with fewer than two
/// values (one repetition says nothing about the spread) or a non-finite value.
pub fn bootstrap_median_ci(xs: &[f64], level: f64, resamples: usize, seed: u64) -> Option<Interval> {
    if xs.len() < 2 || resamples == 0 || xs.iter().any(|x| !x.is_finite()) || level <= 0.0 || level >= 1.0 {
        return None;
    }
    let mut rng = SplitMix64 { state: seed };
    let mut draw = vec![0.0; xs.len()];
    let mut medians = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for d in draw.iter_mut() {
            *d = xs[rng.below(xs.len())];
        }
        draw.sort_by(f64::total_cmp);
        medians.push(median_of_sorted(&draw));
    }
    medians.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    Some(Interval { low: quantile_of_sorted(&medians, tail), high: quantile_of_sorted(&medians, 1.0 - tail), level })
}

/// The `q` quantile of sorted values by the nearest-rank rule: the smallest value with at least
/// `q` of the values at or below it.
fn quantile_of_sorted(v: &[f64], q: f64) -> f64 {
    let rank = (q * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// One figure over N repetitions: the median and its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub median: f64,
    /// `None` for a single repetition (no spread known).
    pub ci: Option<Interval>,
    /// Repetitions that measured the figure.
    pub n: usize,
}

/// The median of the repetitions with its bootstrap interval (the module's stated method).
pub fn estimate(xs: &[f64]) -> Option<Estimate> {
    let median = median(xs)?;
    let ci = bootstrap_median_ci(xs, CONFIDENCE_LEVEL, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED);
    Some(Estimate { median, ci, n: xs.len() })
}

/// A two-sided Wilcoxon-Mann-Whitney rank-sum test of `base` against `new`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankSumTest {
    /// Mann-Whitney U of `new`: pairs (base, new) with new > base, ties counting one half.
    pub u_new: f64,
    /// Two-sided p-value: the chance, with no difference between the two, of a rank sum at least
    /// this far from its expectation.
    pub p_value: f64,
    /// True when `p_value` is exact (permutation distribution), false for the normal approximation.
    pub exact: bool,
}

/// The rank-sum test; `None` when a side is empty or holds a non-finite value.
pub fn rank_sum_test(base: &[f64], new: &[f64]) -> Option<RankSumTest> {
    if base.is_empty() || new.is_empty() || base.iter().chain(new).any(|x| !x.is_finite()) {
        return None;
    }
    let doubled = doubled_midranks(base, new);
    let (n_base, n_new) = (base.len(), new.len());
    let pooled = n_base + n_new;
    // Work in doubled ranks: mid-ranks are halves, doubled they are integers.
    let observed: u64 = doubled[n_base..].iter().sum();
    let expected2 = (n_new * (pooled + 1)) as u64; // 2 * E[rank sum of new]
    let deviation = observed.abs_diff(expected2);
    let u_new = (observed as f64 / 2.0) - (n_new * (n_new + 1)) as f64 / 2.0;
    if pooled <= EXACT_MAX_POOLED {
        let p_value = exact_two_sided_p(&doubled, n_new, expected2, deviation);
        return Some(RankSumTest { u_new, p_value, exact: true });
    }
    Some(RankSumTest { u_new, p_value: normal_two_sided_p(&doubled, n_base, n_new, deviation), exact: false })
}

/// Doubled mid-ranks (1-based) of the pooled sample, base values first, then new values.
fn doubled_midranks(base: &[f64], new: &[f64]) -> Vec<u64> {
    let pooled: Vec<f64> = base.iter().chain(new).copied().collect();
    let mut order: Vec<usize> = (0..pooled.len()).collect();
    order.sort_by(|&a, &b| pooled[a].total_cmp(&pooled[b]));
    let mut ranks = vec![0u64; pooled.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && pooled[order[j + 1]].total_cmp(&pooled[order[i]]) == Ordering::Equal {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their mean; doubled: (i+1) + (j+1).
        let doubled = (i + 1 + j + 1) as u64;
        for &k in &order[i..=j] {
            ranks[k] = doubled;
        }
        i = j + 1;
    }
    ranks
}

/// Exact two-sided p-value: the share of the C(N, n_new) ways to pick `n_new` of the pooled
/// (doubled) ranks whose sum is at least `deviation` from `expected2`. Counted by dynamic
/// programming over (picked, sum), in f64 (exact below 2^53, which C(60, 30) is not far from;
/// the share is what matters).
fn exact_two_sided_p(doubled: &[u64], n_new: usize, expected2: u64, deviation: u64) -> f64 {
    let max_sum: usize = doubled.iter().map(|&r| r as usize).sum();
    // ways[k][s]: subsets of the ranks seen so far with k members summing to s.
    let mut ways = vec![vec![0.0f64; max_sum + 1]; n_new + 1];
    ways[0][0] = 1.0;
    for &r in doubled {
        let r = r as usize;
        for k in (1..=n_new).rev() {
            let (lower, upper) = ways.split_at_mut(k);
            let (prev, cur) = (&lower[k - 1], &mut upper[0]);
            for s in (r..=max_sum).rev() {
                cur[s] += prev[s - r];
            }
        }
    }
    let total: f64 = ways[n_new].iter().sum();
    let extreme: f64 = ways[n_new]
        .iter()
        .enumerate()
        .filter(|(s, _)| (*s as u64).abs_diff(expected2) >= deviation)
        .map(|(_, w)| w)
        .sum();
    (extreme / total).min(1.0)
}

/// Normal approximation of the rank-sum distribution, with the tie correction of its variance and
/// a continuity correction of half a rank.
fn normal_two_sided_p(doubled: &[u64], n_base: usize, n_new: usize, deviation: u64) -> f64 {
    let pooled = (n_base + n_new) as f64;
    let mean_rank2 = pooled + 1.0;
    // Variance of the rank sum = n_base * n_new / (N (N-1)) * sum (r - mean)^2 over the pooled ranks.
    let ss: f64 = doubled.iter().map(|&r| ((r as f64 - mean_rank2) / 2.0).powi(2)).sum();
    let variance = n_base as f64 * n_new as f64 / (pooled * (pooled - 1.0)) * ss;
    if variance <= 0.0 {
        return 1.0;
    }
    let z = ((deviation as f64 / 2.0) - 0.5).max(0.0) / variance.sqrt();
    (2.0 * normal_upper_tail(z)).min(1.0)
}

/// P(Z > z) for a standard normal Z (complementary error function, Numerical Recipes' erfc
/// Chebyshev fit, relative error below 1.2e-7).
fn normal_upper_tail(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let poly = -x * x - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    let erfc = if x >= 0.0 { erfc } else { 2.0 - erfc };
    erfc / 2.0
}

/// How a figure moved between two sets of repetitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Significance {
    /// Worse by more than the allowed percentage, and significant: fails the compare.
    Regressed,
    /// Significantly worse, but within the allowed percentage.
    WorseWithinLimit,
    /// Significantly better.
    Better,
    /// The test could not tell the two apart at the stated level.
    NoSignificantChange,
}

impl Significance {
    /// The word tables print.
    pub fn label(self) -> &'static str {
        match self {
            Significance::Regressed => "REGRESSED",
            Significance::WorseWithinLimit => "worse (significant, within limit)",
            Significance::Better => "better (significant)",
            Significance::NoSignificantChange => "no significant change",
        }
    }
}

/// The verdict rule: `worsening_pct` is the change of the medians in the figure's bad direction
/// (positive = worse), `p_value` the test's. Significant means `p_value < alpha`.
pub fn verdict(worsening_pct: f64, p_value: f64, max_regression_pct: f64, alpha: f64) -> Significance {
    if p_value.is_nan() || p_value >= alpha || worsening_pct == 0.0 {
        Significance::NoSignificantChange
    } else if worsening_pct > max_regression_pct {
        Significance::Regressed
    } else if worsening_pct > 0.0 {
        Significance::WorseWithinLimit
    } else {
        Significance::Better
    }
}

/// Both sides of a compare of one figure over repetitions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChangeTest {
    pub base: Estimate,
    pub new: Estimate,
    /// `(median(new) - median(base)) / |median(base)| * 100`; infinite when the base median is 0
    /// and the new one is not.
    pub change_pct: f64,
    pub test: RankSumTest,
}

/// Medians, intervals, change of the medians and the rank-sum test; `None` when a side has no
/// usable value.
pub fn change_test(base: &[f64], new: &[f64]) -> Option<ChangeTest> {
    let (b, n) = (estimate(base)?, estimate(new)?);
    let change_pct = if b.median == n.median {
        0.0
    } else if b.median == 0.0 {
        f64::INFINITY.copysign(n.median)
    } else {
        (n.median - b.median) / b.median.abs() * 100.0
    };
    Some(ChangeTest { base: b, new: n, change_pct, test: rank_sum_test(base, new)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Synthetic repetitions: `center` times (1 + noise), noise uniform in ±`spread` (a fraction).
    fn noisy(rng: &mut SplitMix64, n: usize, center: f64, spread: f64) -> Vec<f64> {
        (0..n).map(|_| center * (1.0 + spread * (2.0 * (rng.next_u64() as f64 / u64::MAX as f64) - 1.0))).collect()
    }

    fn judge(base: &[f64], new: &[f64], max_pct: f64) -> Significance {
        let c = change_test(base, new).unwrap();
        verdict(c.change_pct, c.test.p_value, max_pct, DEFAULT_ALPHA)
    }

    #[test]
    fn median_of_odd_even_and_bad_input() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn bootstrap_interval_is_reproducible_and_brackets_the_median() {
        let xs = [101.0, 97.0, 110.0, 95.0, 104.0, 99.0, 102.0];
        let a = bootstrap_median_ci(&xs, 0.95, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED).unwrap();
        let b = bootstrap_median_ci(&xs, 0.95, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED).unwrap();
        assert_eq!(a, b, "same seed, same interval");
        let m = median(&xs).unwrap();
        assert!(a.contains(m), "{a:?} should hold the median {m}");
        assert!(a.low >= 95.0 && a.high <= 110.0 && a.low < a.high);
        // A narrower level gives an interval inside the wider one.
        let narrow = bootstrap_median_ci(&xs, 0.5, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED).unwrap();
        assert!(narrow.low >= a.low && narrow.high <= a.high);
    }

    #[test]
    fn bootstrap_of_five_spans_the_smallest_to_the_largest() {
        // P(resampled median = min) = P(3+ of 5 draws are the min) = 5.8 % > 2.5 %.
        let ci =
            bootstrap_median_ci(&[10.0, 11.0, 12.0, 13.0, 14.0], 0.95, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED).unwrap();
        assert_eq!((ci.low, ci.high), (10.0, 14.0));
    }

    #[test]
    fn no_interval_from_one_repetition() {
        assert_eq!(bootstrap_median_ci(&[5.0], 0.95, 100, 1), None);
        let e = estimate(&[5.0]).unwrap();
        assert_eq!((e.median, e.ci, e.n), (5.0, None, 1));
    }

    #[test]
    fn complete_separation_of_five_against_five_gives_the_smallest_exact_p() {
        let t = rank_sum_test(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]).unwrap();
        assert!(t.exact);
        assert_eq!(t.u_new, 25.0);
        assert!((t.p_value - 2.0 / 252.0).abs() < 1e-12, "p = {}", t.p_value);
        // Symmetric the other way round.
        let t = rank_sum_test(&[6.0, 7.0, 8.0, 9.0, 10.0], &[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(t.u_new, 0.0);
        assert!((t.p_value - 2.0 / 252.0).abs() < 1e-12);
    }

    #[test]
    fn exact_p_matches_the_tabulated_mann_whitney_distribution() {
        // n = m = 5, U = 2: P(U <= 2) = (1 + 1 + 2) / 252, two-sided 8/252.
        let t = rank_sum_test(&[1.0, 2.0, 3.0, 4.0, 7.0], &[5.0, 6.0, 8.0, 9.0, 10.0]).unwrap();
        assert_eq!(t.u_new, 23.0);
        assert!((t.p_value - 8.0 / 252.0).abs() < 1e-12, "p = {}", t.p_value);
    }

    #[test]
    fn all_ties_are_never_significant() {
        let t = rank_sum_test(&[3.0; 5], &[3.0; 5]).unwrap();
        assert_eq!(t.p_value, 1.0);
        assert_eq!(judge(&[3.0; 5], &[3.0; 5], 10.0), Significance::NoSignificantChange);
    }

    #[test]
    fn ties_across_groups_use_mid_ranks() {
        // Two groups differ by one tied value: nowhere near significant.
        let t = rank_sum_test(&[1.0, 2.0, 2.0, 3.0], &[2.0, 2.0, 3.0, 4.0]).unwrap();
        assert!(t.exact && t.p_value > 0.2, "p = {}", t.p_value);
        assert_eq!(t.u_new, 11.5);
    }

    #[test]
    fn normal_approximation_agrees_with_exact_on_a_large_sample() {
        let mut rng = SplitMix64 { state: 7 };
        let base = noisy(&mut rng, 25, 100.0, 0.1);
        let new = noisy(&mut rng, 25, 103.0, 0.1);
        let exact = rank_sum_test(&base, &new).unwrap();
        assert!(exact.exact);
        let doubled = doubled_midranks(&base, &new);
        let observed: u64 = doubled[25..].iter().sum();
        let approx = normal_two_sided_p(&doubled, 25, 25, observed.abs_diff(25 * 51));
        assert!((exact.p_value - approx).abs() < 0.01, "exact {} vs normal {approx}", exact.p_value);
        // Beyond the exact limit the approximation is used.
        let big = rank_sum_test(&noisy(&mut rng, 40, 100.0, 0.1), &noisy(&mut rng, 40, 200.0, 0.1)).unwrap();
        assert!(!big.exact && big.p_value < 1e-6);
    }

    #[test]
    fn identical_distributions_are_not_significant() {
        // Interleaved values: nothing to tell apart.
        let base = [100.0, 104.0, 98.0, 102.0, 96.0];
        let new = [101.0, 97.0, 103.0, 99.0, 105.0];
        assert_eq!(judge(&base, &new, 10.0), Significance::NoSignificantChange);
        // Many synthetic A/A comparisons (same distribution, ±20 % noise): the share flagged
        // significant stays at or below the level (the exact test at 5 v 5 is conservative:
        // its true size at 0.05 is 8/252 = 3.2 %), and none regresses beyond a 10 % limit
        // more often than that.
        let mut rng = SplitMix64 { state: 42 };
        let (mut significant, mut regressed) = (0, 0);
        let trials = 2000;
        for _ in 0..trials {
            let (b, n) = (noisy(&mut rng, 5, 100.0, 0.2), noisy(&mut rng, 5, 100.0, 0.2));
            // The verdict rule on the test alone (the bootstrap intervals do not enter it).
            let change_pct = (median(&n).unwrap() / median(&b).unwrap() - 1.0) * 100.0;
            let v = verdict(change_pct, rank_sum_test(&b, &n).unwrap().p_value, 10.0, DEFAULT_ALPHA);
            significant += usize::from(v != Significance::NoSignificantChange);
            regressed += usize::from(v == Significance::Regressed);
        }
        let rate = significant as f64 / trials as f64;
        assert!(rate <= 0.05, "A/A significant in {significant} of {trials}");
        assert!(regressed <= significant / 2 + 1, "A/A regressed {regressed}, significant {significant}");
    }

    #[test]
    fn a_clear_two_fold_slowdown_is_a_regression() {
        let mut rng = SplitMix64 { state: 3 };
        let base = noisy(&mut rng, 5, 10.0, 0.15);
        let new = noisy(&mut rng, 5, 20.0, 0.15);
        let c = change_test(&base, &new).unwrap();
        assert!(c.test.p_value < DEFAULT_ALPHA, "p = {}", c.test.p_value);
        assert!(c.change_pct > 50.0);
        assert_eq!(verdict(c.change_pct, c.test.p_value, 10.0, DEFAULT_ALPHA), Significance::Regressed);
        // The same shift in a figure where higher is better (throughput) is an improvement.
        assert_eq!(verdict(-c.change_pct, c.test.p_value, 10.0, DEFAULT_ALPHA), Significance::Better);
    }

    #[test]
    fn a_significant_shift_smaller_than_the_limit_is_not_a_regression() {
        // 3 % slower, very steady: significant, but within a 10 % limit.
        let base = [100.0, 100.2, 99.9, 100.1, 99.8];
        let new = [103.0, 103.1, 102.9, 103.2, 102.8];
        let c = change_test(&base, &new).unwrap();
        assert!(c.test.p_value < DEFAULT_ALPHA);
        assert!((c.change_pct - 3.0).abs() < 0.5);
        assert_eq!(judge(&base, &new, 10.0), Significance::WorseWithinLimit);
        assert_eq!(judge(&base, &new, 2.0), Significance::Regressed);
    }

    #[test]
    fn a_large_but_noisy_change_is_not_significant() {
        // Medians 20 % apart, but the runs overlap: no verdict beyond the noise.
        let base = [100.0, 60.0, 140.0, 90.0, 130.0];
        let new = [120.0, 70.0, 150.0, 100.0, 125.0];
        let c = change_test(&base, &new).unwrap();
        assert!(c.change_pct > 10.0);
        assert_eq!(verdict(c.change_pct, c.test.p_value, 10.0, DEFAULT_ALPHA), Significance::NoSignificantChange);
    }

    #[test]
    fn zero_base_median_gives_an_infinite_change() {
        let c = change_test(&[0.0, 0.0, 0.0], &[1.0, 1.0, 2.0]).unwrap();
        assert_eq!(c.change_pct, f64::INFINITY);
        assert_eq!(change_test(&[], &[1.0]), None);
    }
}
