//! Two-sample tests for the AI impact comparison: could a difference be
//! chance?
//!
//! - Mann-Whitney U, two-sided, normal approximation with tie correction and
//!   continuity correction (what `scipy.stats.mannwhitneyu(...,
//!   method="asymptotic")` computes). It takes weighted `(value, count)`
//!   pairs, so the buckets of a `DurationSketch` are ranked directly: equal
//!   values, a whole bucket included, share their average rank.
//! - The pooled two-proportion z-test, two-sided (R's `prop.test` without
//!   continuity correction).
//! - Fisher's exact test, two-sided: the probability of every table at
//!   most as likely as the observed one, with R's relative tolerance of 1e-7
//!   (R's `fisher.test`).
//! - `rate_test` picks between the last two: z when every expected count of
//!   the 2×2 table is at least 5, else Fisher.
//!
//! Plain numerics with no dependency: the normal tail comes from a
//! complementary error function implemented here (series below 2.5, a
//! continued fraction above), accurate to about 1e-13 relative.

/// Which test produced a p-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatTest {
    /// No test was run (a side lacks data).
    None,
    MannWhitneyU,
    TwoProportionZ,
    FisherExact,
}

/// A test and its two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestOutcome {
    pub test: StatTest,
    pub p_value: f64,
}

/// The result of a Mann-Whitney U test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U of the first sample: how many (first, second) pairs have the first
    /// value larger, ties counting one half.
    pub u: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Mann-Whitney U of `first` against `second`, each a list of
/// `(value, count)` pairs in any order. `None` when either side is empty.
pub fn mann_whitney_u(first: &[(f64, u64)], second: &[(f64, u64)]) -> Option<MannWhitney> {
    let n1: u64 = first.iter().map(|&(_, c)| c).sum();
    let n2: u64 = second.iter().map(|&(_, c)| c).sum();
    if n1 == 0 || n2 == 0 {
        return None;
    }
    // (value, count in first, count in second), sorted by value.
    let mut all: Vec<(f64, u64, u64)> = first
        .iter()
        .map(|&(v, c)| (v, c, 0))
        .chain(second.iter().map(|&(v, c)| (v, 0, c)))
        .filter(|&(_, a, b)| a + b > 0)
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));

    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let n = n1f + n2f;
    let mut rank_sum_first = 0.0;
    let mut tie_term = 0.0;
    let mut below = 0.0; // values ranked before the current group
    let mut i = 0;
    while i < all.len() {
        let (value, mut in_first, mut in_second) = all[i];
        i += 1;
        while i < all.len() && all[i].0 == value {
            in_first += all[i].1;
            in_second += all[i].2;
            i += 1;
        }
        let t = (in_first + in_second) as f64;
        let average_rank = below + (t + 1.0) / 2.0;
        rank_sum_first += in_first as f64 * average_rank;
        tie_term += t * t * t - t;
        below += t;
    }

    let u1 = rank_sum_first - n1f * (n1f + 1.0) / 2.0;
    let u2 = n1f * n2f - u1;
    let mu = n1f * n2f / 2.0;
    let variance = n1f * n2f / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    let p_value = if variance > 0.0 {
        let z = (u1.max(u2) - mu - 0.5) / variance.sqrt();
        (2.0 * normal_sf(z)).clamp(0.0, 1.0)
    } else {
        // Every value is the same: nothing to tell the samples apart.
        1.0
    };
    Some(MannWhitney { u: u1, p_value })
}

/// Pooled two-proportion z-test, two-sided: `x1` of `n1` against `x2` of
/// `n2`. `None` when either sample is empty; 1 when the pooled proportion
/// is 0 or 1 (the samples cannot differ).
pub fn two_proportion_z(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<f64> {
    if n1 == 0 || n2 == 0 || x1 > n1 || x2 > n2 {
        return None;
    }
    let (x1, n1, x2, n2) = (x1 as f64, n1 as f64, x2 as f64, n2 as f64);
    let pooled = (x1 + x2) / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 {
        return Some(1.0);
    }
    let z = (x1 / n1 - x2 / n2) / se;
    Some((2.0 * normal_sf(z.abs())).clamp(0.0, 1.0))
}

/// R's relative tolerance when comparing table probabilities.
const FISHER_RELATIVE_TOLERANCE: f64 = 1e-7;

/// Fisher's exact test, two-sided, of the table `[[a, b], [c, d]]`: the
/// sum of the probabilities (given the margins) of all tables no more
/// likely than the observed one.
pub fn fisher_exact(a: u64, b: u64, c: u64, d: u64) -> f64 {
    // Hypergeometric: x = a white balls among k = a + c draws from an urn
    // with m = a + b white and n = c + d black.
    let (m, n, k) = (a + b, c + d, a + c);
    let lo = k.saturating_sub(n);
    let hi = k.min(m);
    if lo == hi {
        return 1.0;
    }
    // log P(x) up to a constant, by the recurrence
    // P(x+1)/P(x) = (m-x)(k-x) / ((x+1)(n-k+x+1)).
    let mut log_p = Vec::with_capacity((hi - lo + 1) as usize);
    let mut current = 0.0;
    log_p.push(current);
    for x in lo..hi {
        let up = (m - x) as f64 * (k - x) as f64;
        let down = (x + 1) as f64 * (n + x + 1 - k) as f64;
        current += up.ln() - down.ln();
        log_p.push(current);
    }
    let max = log_p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let p: Vec<f64> = log_p.iter().map(|l| (l - max).exp()).collect();
    let total: f64 = p.iter().sum();
    let observed = p[(a - lo) as usize] * (1.0 + FISHER_RELATIVE_TOLERANCE);
    let at_most: f64 = p.iter().filter(|&&q| q <= observed).sum();
    (at_most / total).min(1.0)
}

/// Tests `x1` events of `n1` against `x2` of `n2`: the two-proportion
/// z-test when every expected count of the 2×2 table is at least 5, else
/// Fisher's exact test. `None` when either sample is empty.
pub fn rate_test(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<TestOutcome> {
    if n1 == 0 || n2 == 0 || x1 > n1 || x2 > n2 {
        return None;
    }
    let total = n1 + n2;
    let events = x1 + x2;
    let non_events = total - events;
    // Expected count of a cell = row total × column total / grand total;
    // the smallest is min(row) × min(column) / total. Compared in integers.
    let smallest_product = u128::from(n1.min(n2)) * u128::from(events.min(non_events));
    if smallest_product >= 5 * u128::from(total) {
        let p_value = two_proportion_z(x1, n1, x2, n2)?;
        Some(TestOutcome { test: StatTest::TwoProportionZ, p_value })
    } else {
        let p_value = fisher_exact(x1, n1 - x1, x2, n2 - x2);
        Some(TestOutcome { test: StatTest::FisherExact, p_value })
    }
}

/// The upper tail of the standard normal distribution, P(Z > z).
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The complementary error function.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 2.5 { 1.0 - erf_series(x) } else { erfc_continued_fraction(x) }
}

const FRAC_1_SQRT_PI: f64 = 0.564_189_583_547_756_3;

/// erf(x) = 2/√π · e^(−x²) · Σ (2x²)ⁿ x / (1·3·…·(2n+1)): all terms
/// positive, so no cancellation, for 0 ≤ x < 2.5.
fn erf_series(x: f64) -> f64 {
    let two_x2 = 2.0 * x * x;
    let mut term = x;
    let mut sum = x;
    let mut n = 0.0;
    while term > sum * 1e-17 {
        n += 1.0;
        term *= two_x2 / (2.0 * n + 1.0);
        sum += term;
    }
    2.0 * FRAC_1_SQRT_PI * (-x * x).exp() * sum
}

/// erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + (2/2)/(x + (3/2)/(x + …)))),
/// evaluated with the modified Lentz method, for x ≥ 2.5.
fn erfc_continued_fraction(x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut f = x;
    let mut c = f;
    let mut d = 0.0;
    for i in 1..500 {
        let a = f64::from(i) / 2.0;
        d = x + a * d;
        if d.abs() < TINY {
            d = TINY;
        }
        d = 1.0 / d;
        c = x + a / c;
        if c.abs() < TINY {
            c = TINY;
        }
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    FRAC_1_SQRT_PI * (-x * x).exp() / f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64, rel: f64) {
        assert!(
            (got - want).abs() <= rel * want.abs().max(1e-300),
            "got {got:e}, want {want:e} (relative tolerance {rel:e})"
        );
    }

    fn ones(values: &[f64]) -> Vec<(f64, u64)> {
        values.iter().map(|&v| (v, 1)).collect()
    }

    #[test]
    fn erfc_matches_scipy() {
        // scipy.special.erfc(x), scipy 1.17.1
        for (x, want) in [
            (0.0, 1.0),
            (0.3, 0.6713732405408726),
            (1.0, 0.15729920705028516),
            (2.0, 0.004677734981047266),
            (2.4999, 0.0004071699003334512),
            (2.5, 0.00040695201744495886),
            (3.5, 7.430983723414129e-07),
            (6.0, 2.1519736712498913e-17),
            (12.0, 1.3562611692059047e-64),
            (-1.0, 1.8427007929497148),
        ] {
            close(erfc(x), want, 1e-12);
        }
    }

    #[test]
    fn mann_whitney_without_ties_matches_scipy() {
        // scipy.stats.mannwhitneyu([19,22,16,29,24], [20,11,17,12],
        //     use_continuity=True, alternative="two-sided", method="asymptotic")
        // → statistic=17.0, pvalue=0.11134688653314041 (scipy 1.17.1)
        let r = mann_whitney_u(&ones(&[19.0, 22.0, 16.0, 29.0, 24.0]), &ones(&[20.0, 11.0, 17.0, 12.0])).unwrap();
        assert_eq!(r.u, 17.0);
        close(r.p_value, 0.11134688653314041, 1e-10);
    }

    #[test]
    fn mann_whitney_with_ties_matches_scipy() {
        // scipy.stats.mannwhitneyu([1,2,2,3,3,3,4,8], [2,3,5,5,6,7,7,9,10],
        //     method="asymptotic")  (defaults: use_continuity=True, two-sided)
        let r = mann_whitney_u(
            &ones(&[1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0, 8.0]),
            &ones(&[2.0, 3.0, 5.0, 5.0, 6.0, 7.0, 7.0, 9.0, 10.0]),
        )
        .unwrap();
        assert_eq!(r.u, 14.5);
        close(r.p_value, 0.04126741302260858, 1e-10);
    }

    #[test]
    fn mann_whitney_on_weighted_buckets_equals_the_expanded_values() {
        // The same samples as counts: [(1,1),(2,2),(3,3),(4,1),(8,1)] etc.
        let r = mann_whitney_u(
            &[(3.0, 3), (1.0, 1), (2.0, 2), (4.0, 1), (8.0, 1)],
            &[(2.0, 1), (3.0, 1), (5.0, 2), (6.0, 1), (7.0, 2), (9.0, 1), (10.0, 1)],
        )
        .unwrap();
        assert_eq!(r.u, 14.5);
        close(r.p_value, 0.04126741302260858, 1e-10);
    }

    #[test]
    fn mann_whitney_large_weighted_samples_match_scipy() {
        // x = np.repeat([0.5, 1.5, 4.0, 12.0], [40, 80, 60, 20])
        // y = np.repeat([0.5, 1.5, 4.0, 12.0, 30.0], [10, 40, 70, 50, 30])
        // scipy.stats.mannwhitneyu(x, y, method="asymptotic")
        let r = mann_whitney_u(
            &[(0.5, 40), (1.5, 80), (4.0, 60), (12.0, 20)],
            &[(0.5, 10), (1.5, 40), (4.0, 70), (12.0, 50), (30.0, 30)],
        )
        .unwrap();
        assert_eq!(r.u, 10600.0);
        close(r.p_value, 3.5708287568830023e-17, 1e-8);
    }

    #[test]
    fn mann_whitney_all_equal_is_p_one() {
        // scipy.stats.mannwhitneyu([0,0,0,0], [0,0,0,0], method="asymptotic")
        // → statistic=8.0, pvalue=1.0
        let r = mann_whitney_u(&[(0.0, 4)], &[(0.0, 4)]).unwrap();
        assert_eq!((r.u, r.p_value), (8.0, 1.0));
        assert_eq!(mann_whitney_u(&[], &[(1.0, 3)]), None);
    }

    #[test]
    fn two_proportion_z_matches_r_prop_test() {
        // R: prop.test(c(15, 25), c(50, 50), correct = FALSE)$p.value is the
        // uncorrected chi-square test of the table, the same as
        // scipy.stats.chi2_contingency([[15, 35], [25, 25]], correction=False)
        //   .pvalue = 0.041226833337163815 (scipy 1.17.1)
        close(two_proportion_z(15, 50, 25, 50).unwrap(), 0.041226833337163676, 1e-10);
        // R: prop.test(c(30, 45), c(120, 110), correct = FALSE)$p.value;
        // scipy.stats.chi2_contingency([[30, 90], [45, 65]], correction=False)
        close(two_proportion_z(30, 120, 45, 110).unwrap(), 0.010140933172395639, 1e-10);
        assert_eq!(two_proportion_z(0, 10, 0, 12), Some(1.0));
    }

    #[test]
    fn fisher_exact_matches_scipy_and_r() {
        // scipy.stats.fisher_exact([[a, b], [c, d]]).pvalue, scipy 1.17.1
        // (R: fisher.test(matrix(c(a, c, b, d), 2))$p.value; the two agree
        // except where table probabilities tie within R's 1e-7)
        for ((a, b, c, d), want) in [
            ((8, 2, 1, 5), 0.034965034965034975),
            ((3, 1, 1, 3), 0.48571428571428565),
            ((1, 9, 11, 3), 0.0027594561852200836),
            ((0, 10, 0, 12), 1.0),
            ((2, 7, 8, 2), 0.02301413756522116),
            ((0, 12, 5, 7), 0.03726708074534161),
        ] {
            close(fisher_exact(a, b, c, d), want, 1e-10);
        }
    }

    #[test]
    fn rate_test_uses_z_only_when_every_expected_count_is_five() {
        // Expected counts 20, 30, 20, 30: z.
        let t = rate_test(15, 50, 25, 50).unwrap();
        assert_eq!(t.test, StatTest::TwoProportionZ);
        // Expected event counts 4.5 and 4.5: Fisher.
        let t = rate_test(2, 10, 7, 10).unwrap();
        assert_eq!(t.test, StatTest::FisherExact);
        // Exactly 5 expected (10 events in 40, 20 per side): z.
        assert_eq!(rate_test(3, 20, 7, 20).unwrap().test, StatTest::TwoProportionZ);
        assert_eq!(rate_test(1, 0, 1, 10), None);
    }
}
