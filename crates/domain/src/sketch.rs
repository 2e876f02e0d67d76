//! Mergeable duration summaries.
//!
//! A `DurationSketch` keeps durations exactly (milliseconds) while it holds
//! few of them, and switches to logarithmic buckets (the DDSketch mapping,
//! 1 % relative accuracy) past `EXACT_CAPACITY` (a stored weekly sketch) or
//! `MERGED_EXACT_CAPACITY` (a period's sketch merged from exact weeks). So small teams get exact
//! quantiles, large ones a bounded size, and merging always works: merging
//! adds bucket counts, so a merged sketch equals one built from all values
//! and quantiles are never averaged.
//!
//! Quantiles interpolate linearly between the two closest ranks (the
//! "linear" method of numpy and spreadsheets' PERCENTILE.INC), so the median
//! of an even count is the mean of the two middle values. In bucket form
//! every value is replaced by its bucket's representative, which is within
//! 1 % of it, so the interpolated result is within 1 % too.
//!
//! A dedicated type rather than a sketch crate because the AI impact
//! comparison needs the buckets themselves (ranks for Mann-Whitney U) and
//! the exact mode, which the common crates do not expose.

use serde::{Deserialize, Serialize};

use super::facts::Millis;

/// Relative accuracy of the bucket form.
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// How many exact values a stored (weekly) sketch holds before it switches
/// to buckets.
pub const EXACT_CAPACITY: usize = 512;
/// How many exact values a merge keeps exact: a period's summary merged
/// from exact weekly sketches stays exact up to this many values (a
/// transient value, never stored).
pub const MERGED_EXACT_CAPACITY: usize = 1 << 16;

const MS_PER_HOUR: f64 = 3_600_000.0;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

fn bucket_of(ms: Millis) -> i32 {
    ((ms as f64).ln() / gamma().ln()).ceil() as i32
}

/// The representative value (ms) of a bucket: within 1 % of every value in it.
fn bucket_value(key: i32) -> f64 {
    let g = gamma();
    2.0 * g.powi(key) / (g + 1.0)
}

/// A summary of durations; see the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DurationSketch {
    /// Exact values in ms, unsorted; empty once `buckets` is in use.
    exact: Vec<Millis>,
    /// Bucket form: count of zero durations and sorted (key, count) pairs.
    binned: Option<Buckets>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Buckets {
    zeros: u64,
    bins: Vec<(i32, u64)>,
}

impl Buckets {
    fn add(&mut self, ms: Millis, n: u64) {
        if ms <= 0 {
            self.zeros += n;
            return;
        }
        let key = bucket_of(ms);
        match self.bins.binary_search_by_key(&key, |(k, _)| *k) {
            Ok(i) => self.bins[i].1 += n,
            Err(i) => self.bins.insert(i, (key, n)),
        }
    }

    fn merge(&mut self, other: &Buckets) {
        self.zeros += other.zeros;
        let mut merged = Vec::with_capacity(self.bins.len() + other.bins.len());
        let (a, b) = (&self.bins, &other.bins);
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            match a[i].0.cmp(&b[j].0) {
                std::cmp::Ordering::Equal => {
                    merged.push((a[i].0, a[i].1 + b[j].1));
                    i += 1;
                    j += 1;
                }
                std::cmp::Ordering::Less => {
                    merged.push(a[i]);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    merged.push(b[j]);
                    j += 1;
                }
            }
        }
        merged.extend_from_slice(&a[i..]);
        merged.extend_from_slice(&b[j..]);
        self.bins = merged;
    }

    fn count(&self) -> u64 {
        self.zeros + self.bins.iter().map(|(_, n)| n).sum::<u64>()
    }

    /// Value (ms) at a 0-based rank.
    fn at_rank(&self, rank: u64) -> f64 {
        if rank < self.zeros {
            return 0.0;
        }
        let mut seen = self.zeros;
        for &(key, n) in &self.bins {
            seen += n;
            if rank < seen {
                return bucket_value(key);
            }
        }
        self.bins.last().map_or(0.0, |(k, _)| bucket_value(*k))
    }
}

impl DurationSketch {
    /// An empty sketch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one duration; negative durations count as 0.
    pub fn add(&mut self, ms: Millis) {
        let ms = ms.max(0);
        match &mut self.binned {
            Some(b) => b.add(ms, 1),
            None => {
                self.exact.push(ms);
                if self.exact.len() > EXACT_CAPACITY {
                    self.switch_to_buckets();
                }
            }
        }
    }

    fn switch_to_buckets(&mut self) {
        let mut b = self.binned.take().unwrap_or_default();
        for ms in self.exact.drain(..) {
            b.add(ms, 1);
        }
        self.exact = Vec::new();
        self.binned = Some(b);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &DurationSketch) {
        match (&mut self.binned, &other.binned) {
            (None, None) if self.exact.len() + other.exact.len() <= MERGED_EXACT_CAPACITY => {
                self.exact.extend_from_slice(&other.exact);
            }
            _ => {
                self.switch_to_buckets();
                let b = self.binned.as_mut().expect("just switched to buckets");
                for &ms in &other.exact {
                    b.add(ms, 1);
                }
                if let Some(ob) = &other.binned {
                    b.merge(ob);
                }
            }
        }
    }

    /// Number of durations.
    pub fn count(&self) -> u64 {
        match &self.binned {
            Some(b) => b.count(),
            None => self.exact.len() as u64,
        }
    }

    /// True when the sketch holds exact values.
    pub fn is_exact(&self) -> bool {
        self.binned.is_none()
    }

    /// The q-quantile (0 ≤ q ≤ 1) in hours; `None` when empty.
    pub fn quantile_hours(&self, q: f64) -> Option<f64> {
        self.quantiles_hours(&[q]).map(|v| v[0])
    }

    /// Several quantiles at once, in hours; `None` when empty.
    pub fn quantiles_hours(&self, qs: &[f64]) -> Option<Vec<f64>> {
        self.clone().into_quantiles_hours(qs)
    }

    /// [`Self::quantiles_hours`], reusing the sketch's own values.
    pub fn into_quantiles_hours(mut self, qs: &[f64]) -> Option<Vec<f64>> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let interpolate = |at_rank: &dyn Fn(u64) -> f64, q: f64| {
            let h = (n - 1) as f64 * q.clamp(0.0, 1.0);
            let (lo, hi) = (h.floor() as u64, h.ceil() as u64);
            let (vlo, vhi) = (at_rank(lo), at_rank(hi));
            (vlo + (h - lo as f64) * (vhi - vlo)) / MS_PER_HOUR
        };
        Some(match &self.binned {
            Some(b) => qs.iter().map(|&q| interpolate(&|r| b.at_rank(r), q)).collect(),
            None => {
                // Only the ranks the quantiles need, by selection (O(n) per
                // rank on a shrinking slice) rather than a full sort.
                let mut ranks: Vec<usize> = qs
                    .iter()
                    .flat_map(|&q| {
                        let h = (n - 1) as f64 * q.clamp(0.0, 1.0);
                        [h.floor() as usize, h.ceil() as usize]
                    })
                    .collect();
                ranks.sort_unstable();
                ranks.dedup();
                let found = order_statistics(&mut self.exact, &ranks);
                let at = |r: u64| found[ranks.binary_search(&(r as usize)).expect("rank was selected")] as f64;
                qs.iter().map(|&q| interpolate(&at, q)).collect()
            }
        })
    }

    /// The values of `self` that are not in `part`, where `part` holds a
    /// subset of the values added to `self` (the AI-involved part of a
    /// week's lead times, say). Exact values are removed one for one; in
    /// bucket form, bucket counts are subtracted, never below zero.
    pub fn without(&self, part: &DurationSketch) -> DurationSketch {
        if self.binned.is_none() && part.binned.is_none() {
            let mut rest = self.exact.clone();
            rest.sort_unstable();
            let mut remove = part.exact.clone();
            remove.sort_unstable();
            let mut kept = Vec::with_capacity(rest.len().saturating_sub(remove.len()));
            let mut j = 0;
            for ms in rest {
                while j < remove.len() && remove[j] < ms {
                    j += 1;
                }
                if j < remove.len() && remove[j] == ms {
                    j += 1;
                } else {
                    kept.push(ms);
                }
            }
            return DurationSketch { exact: kept, binned: None };
        }
        let mut whole = self.clone();
        whole.switch_to_buckets();
        let mut removed = part.clone();
        removed.switch_to_buckets();
        let (mut b, r) = (whole.binned.expect("just switched"), removed.binned.expect("just switched"));
        b.zeros = b.zeros.saturating_sub(r.zeros);
        for (key, n) in r.bins {
            if let Ok(i) = b.bins.binary_search_by_key(&key, |(k, _)| *k) {
                b.bins[i].1 = b.bins[i].1.saturating_sub(n);
            }
        }
        b.bins.retain(|&(_, n)| n > 0);
        DurationSketch { exact: Vec::new(), binned: Some(b) }
    }

    /// The values as (hours, count) pairs in ascending order: exact values,
    /// or bucket representatives. Used for rank tests.
    pub fn weighted_values_hours(&self) -> Vec<(f64, u64)> {
        match &self.binned {
            None => {
                let mut sorted = self.exact.clone();
                sorted.sort_unstable();
                let mut out: Vec<(f64, u64)> = Vec::new();
                for ms in sorted {
                    let h = ms as f64 / MS_PER_HOUR;
                    match out.last_mut() {
                        Some((v, n)) if *v == h => *n += 1,
                        _ => out.push((h, 1)),
                    }
                }
                out
            }
            Some(b) => {
                let mut out = Vec::with_capacity(b.bins.len() + 1);
                if b.zeros > 0 {
                    out.push((0.0, b.zeros));
                }
                out.extend(b.bins.iter().map(|&(k, n)| (bucket_value(k) / MS_PER_HOUR, n)));
                out
            }
        }
    }
}

/// The values at the given ascending 0-based ranks, as if `values` were
/// sorted (it is partly reordered).
fn order_statistics(values: &mut [Millis], ranks: &[usize]) -> Vec<Millis> {
    let mut out = Vec::with_capacity(ranks.len());
    let (mut rest, mut base) = (values, 0);
    for &rank in ranks {
        let (value, right) = if rank == base {
            // The next rank right after the last one: the smallest of the
            // rest, found by a scan rather than a partition.
            let smallest = (0..rest.len()).min_by_key(|&i| rest[i]).expect("rank within the values");
            rest.swap(0, smallest);
            let (first, right) = rest.split_first_mut().expect("rank within the values");
            (*first, right)
        } else {
            let (_, value, right) = rest.select_nth_unstable(rank - base);
            (*value, right)
        };
        out.push(value);
        base = rank + 1;
        rest = right;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Millis = 3_600_000;

    fn sketch(values_h: &[f64]) -> DurationSketch {
        let mut s = DurationSketch::new();
        for v in values_h {
            s.add((v * H as f64) as Millis);
        }
        s
    }

    /// numpy.percentile(values, q*100) with the default linear method.
    fn linear(values: &[f64], q: f64) -> f64 {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let h = (v.len() - 1) as f64 * q;
        let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
        v[lo] + (h - lo as f64) * (v[hi] - v[lo])
    }

    #[test]
    fn small_sketches_are_exact_with_linear_interpolation() {
        let s = sketch(&[10.0, 100.0]);
        assert_eq!(s.quantile_hours(0.5), Some(55.0));
        let s = sketch(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(s.quantiles_hours(&[0.5, 0.75, 0.9]), Some(vec![3.0, 4.0, 4.6]));
        assert_eq!(sketch(&[]).quantile_hours(0.5), None);
        assert_eq!(sketch(&[24.0]).quantile_hours(0.9), Some(24.0));
    }

    #[test]
    fn bucket_form_stays_within_one_percent() {
        let values: Vec<f64> = (0..5000).map(|i| 0.01 + (i as f64 * 7.3) % 2000.0).collect();
        let s = sketch(&values);
        assert!(!s.is_exact());
        assert_eq!(s.count(), 5000);
        for q in [0.1, 0.5, 0.75, 0.9, 0.99] {
            let want = linear(&values, q);
            let got = s.quantile_hours(q).unwrap();
            assert!((got - want).abs() <= want * RELATIVE_ACCURACY + 1e-9, "q={q}: {got} vs {want}");
        }
    }

    #[test]
    fn merging_equals_building_from_all_values() {
        // A bucketed sketch merged with an exact one.
        let a: Vec<f64> = (0..600).map(|i| i as f64 * 0.5).collect();
        let b: Vec<f64> = (0..300).map(|i| 3.0 + i as f64 * 1.7).collect();
        let mut merged = sketch(&a);
        assert!(!merged.is_exact());
        merged.merge(&sketch(&b));
        let all: Vec<f64> = a.iter().chain(&b).copied().collect();
        let whole = sketch(&all);
        assert_eq!(merged.count(), 900);
        assert_eq!(merged.quantiles_hours(&[0.5, 0.9]), whole.quantiles_hours(&[0.5, 0.9]));
        // Exact sketches merge exactly, past a single sketch's capacity too.
        let (c, d): (Vec<f64>, Vec<f64>) = ((0..400).map(f64::from).collect(), (400..800).map(f64::from).collect());
        let mut exact = sketch(&c);
        exact.merge(&sketch(&d));
        assert!(exact.is_exact());
        let all: Vec<f64> = c.iter().chain(&d).copied().collect();
        assert_eq!(exact.quantile_hours(0.9), Some(linear(&all, 0.9)));
        let mut small = sketch(&[1.0]);
        small.merge(&sketch(&[3.0]));
        assert_eq!(small.quantile_hours(0.5), Some(2.0));
    }

    #[test]
    fn without_removes_a_part_in_either_form() {
        let all = sketch(&[1.0, 2.0, 2.0, 5.0, 8.0]);
        let part = sketch(&[2.0, 8.0]);
        assert_eq!(all.without(&part).weighted_values_hours(), vec![(1.0, 1), (2.0, 1), (5.0, 1)]);
        // Bucket form: what remains equals a sketch of the remaining values.
        let a: Vec<f64> = (0..600).map(|i| 0.5 + i as f64).collect();
        let (ai, other): (Vec<f64>, Vec<f64>) = a.iter().partition(|v| (**v as i64) % 3 == 0);
        let rest = sketch(&a).without(&sketch(&ai));
        let mut want = sketch(&other);
        want.switch_to_buckets();
        assert_eq!(rest.count(), other.len() as u64);
        assert_eq!(rest.weighted_values_hours(), want.weighted_values_hours());
    }

    #[test]
    fn order_statistics_match_a_sort_for_adjacent_and_spread_ranks() {
        let mut rng = fastrand::Rng::with_seed(7);
        for n in [1usize, 2, 3, 10, 101, 1000] {
            let values: Vec<Millis> = (0..n).map(|_| rng.i64(0..50)).collect();
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let mut ranks: Vec<usize> =
                [0, n / 2, n / 2 + 1, 3 * n / 4, 3 * n / 4 + 1, n - 1].into_iter().filter(|&r| r < n).collect();
            ranks.sort_unstable();
            ranks.dedup();
            let found = order_statistics(&mut values.clone(), &ranks);
            let want: Vec<Millis> = ranks.iter().map(|&r| sorted[r]).collect();
            assert_eq!(found, want, "n = {n}, ranks {ranks:?}");
        }
    }

    #[test]
    fn negative_and_zero_durations_count_as_zero() {
        let mut s = DurationSketch::new();
        s.add(-5);
        s.add(0);
        s.add(2 * H);
        assert_eq!(s.quantile_hours(0.5), Some(0.0));
        assert_eq!(s.count(), 3);
    }
}
