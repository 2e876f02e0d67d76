//! The AI impact comparison: the weeks before a rollout date against the
//! weeks after it, and, after it, AI-involved work against the rest.
//!
//! Windows (`docs/metrics.md`, AI impact): *after* is the weeks of the
//! period whose Monday is later than the rollout date R; *before* is as many
//! whole weeks, immediately preceding the week that contains R (they may lie
//! before the period's start). R's own week belongs to neither. When no week
//! of the period starts after R, there is nothing to compare.
//!
//! Per-week figures are means over the window, tested on the weekly values
//! (one per week, summed across projects); medians come from merged
//! sketches and are tested on the whole distributions; rates are pooled
//! counts. The numbers are computed here, the tests in `stats`, the words in
//! `verdict`. Pure: aggregates and dates in, figures and sentences out.

use chrono::NaiveDate;

use super::aggregate::{ProjectAggregates, WeeklyAggregate};
use super::period::{Period, Totals};
use super::sketch::DurationSketch;
use super::stats::{StatTest, TestOutcome, mann_whitney_u, rate_test};
use super::time::IsoWeek;
use super::verdict::{self, Framing, Metric, Outcome, Overall, Side, Verdict};

/// A run of whole weeks, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub first: IsoWeek,
    pub last: IsoWeek,
    pub weeks: u32,
}

impl Window {
    /// The weeks in order.
    pub fn iter(&self) -> impl Iterator<Item = IsoWeek> + use<> {
        let first = self.first;
        (0..self.weeks as i32).map(move |i| first.plus(i))
    }
}

/// The before and after windows for a rollout date, or `None` when no week
/// of the period starts after it.
pub fn windows(period: &Period, rollout: NaiveDate) -> Option<(Window, Window)> {
    if period.weeks == 0 {
        return None;
    }
    let rollout_week = IsoWeek::of_date(rollout);
    let first_after = period.first.max(rollout_week.plus(1));
    let last = period.last();
    if first_after > last {
        return None;
    }
    let weeks = first_after.weeks_until(last) as u32 + 1;
    let after = Window { first: first_after, last, weeks };
    let before = Window { first: rollout_week.plus(-(weeks as i32)), last: rollout_week.plus(-1), weeks };
    Some((before, after))
}

/// One compared figure, with its verdict and sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Identifier, e.g. `lead_time_median_hours`.
    pub metric: &'static str,
    /// Lower-case label, e.g. `lead time (median)`.
    pub label: &'static str,
    /// The figure of the before side (other items for AI vs other), given
    /// whenever it is defined, even when the side is too small to compare.
    pub before: Option<f64>,
    /// The figure of the after side (AI-involved items for AI vs other).
    pub after: Option<f64>,
    /// (after − before) / before; `None` when before is 0 or a side lacks
    /// data.
    pub relative_change: Option<f64>,
    /// Sample sizes: weeks, durations or the rate's denominator.
    pub before_n: u64,
    pub after_n: u64,
    pub test: StatTest,
    pub p_value: Option<f64>,
    pub verdict: Verdict,
    pub sentence: String,
}

/// The whole comparison for a rollout date over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct AiImpact {
    pub rollout: NaiveDate,
    /// `None` (both) when no week of the period starts after the rollout.
    pub before: Option<Window>,
    pub after: Option<Window>,
    /// Before vs after: deployments per week, lead time median, change
    /// failure rate, time to restore median, re-open rate, completed per
    /// week, in that order.
    pub before_after: Vec<Comparison>,
    /// Inside the after window, other items (before role) vs AI-involved
    /// items (after role): lead time median, re-open rate.
    pub ai_vs_other: Vec<Comparison>,
    pub overall: Overall,
}

const BEFORE_AFTER: [Metric; 6] = [
    verdict::DEPLOYMENTS_PER_WEEK,
    verdict::LEAD_TIME_MEDIAN,
    verdict::CHANGE_FAILURE_RATE,
    verdict::TIME_TO_RESTORE_MEDIAN,
    verdict::REOPEN_RATE,
    verdict::COMPLETED_PER_WEEK,
];
const AI_VS_OTHER: [Metric; 2] = [verdict::LEAD_TIME_MEDIAN, verdict::REOPEN_RATE];

/// Compares the weeks before `rollout` with the weeks after it, over the
/// given projects combined.
pub fn ai_impact(projects: &[&ProjectAggregates], period: &Period, rollout: NaiveDate) -> AiImpact {
    let Some((before, after)) = windows(period, rollout) else {
        let none = |metric: &Metric, framing| {
            let j = verdict::no_after_window(metric, framing, rollout);
            comparison(metric, Side { value: None, n: 0 }, Side { value: None, n: 0 }, None, j)
        };
        let before_after: Vec<Comparison> = BEFORE_AFTER.iter().map(|m| none(m, Framing::BeforeAfter)).collect();
        let ai_vs_other = AI_VS_OTHER.iter().map(|m| none(m, Framing::OtherVsAi)).collect();
        let overall = overall_of(&before_after);
        return AiImpact { rollout, before: None, after: None, before_after, ai_vs_other, overall };
    };

    let sides = [WindowData::of(projects, &before), WindowData::of(projects, &after)];
    let [b, a] = &sides;
    let before_after = vec![
        per_week(&verdict::DEPLOYMENTS_PER_WEEK, &b.deployments, &a.deployments),
        durations(&verdict::LEAD_TIME_MEDIAN, Framing::BeforeAfter, &b.totals.sum.lead_time, &a.totals.sum.lead_time),
        rate(
            &verdict::CHANGE_FAILURE_RATE,
            Framing::BeforeAfter,
            (b.totals.sum.failed_deployments, b.totals.sum.deployments),
            (a.totals.sum.failed_deployments, a.totals.sum.deployments),
        ),
        durations(
            &verdict::TIME_TO_RESTORE_MEDIAN,
            Framing::BeforeAfter,
            &b.totals.sum.time_to_restore,
            &a.totals.sum.time_to_restore,
        ),
        rate(
            &verdict::REOPEN_RATE,
            Framing::BeforeAfter,
            (b.totals.sum.reopened, b.totals.sum.completed),
            (a.totals.sum.reopened, a.totals.sum.completed),
        ),
        per_week(&verdict::COMPLETED_PER_WEEK, &b.completed, &a.completed),
    ];

    let s = &a.totals.sum;
    let ai_vs_other = vec![
        durations(&verdict::LEAD_TIME_MEDIAN, Framing::OtherVsAi, &a.lead_time_other, &s.lead_time_ai),
        rate(
            &verdict::REOPEN_RATE,
            Framing::OtherVsAi,
            (s.reopened.saturating_sub(s.reopened_ai), s.completed.saturating_sub(s.ai_involved)),
            (s.reopened_ai, s.ai_involved),
        ),
    ];
    let overall = overall_of(&before_after);
    AiImpact { rollout, before: Some(before), after: Some(after), before_after, ai_vs_other, overall }
}

/// What one window contributes: totals, weekly values and the lead times of
/// items without AI involvement.
struct WindowData {
    totals: Totals,
    deployments: Vec<f64>,
    completed: Vec<f64>,
    lead_time_other: DurationSketch,
}

impl WindowData {
    fn of(projects: &[&ProjectAggregates], window: &Window) -> Self {
        let totals = Totals::over(projects, window.iter());
        let weekly = |count: fn(&WeeklyAggregate) -> u32| -> Vec<f64> {
            window
                .iter()
                .map(|w| projects.iter().filter_map(|p| p.get(&w)).map(|agg| f64::from(count(agg))).sum())
                .collect()
        };
        // Removed per project and week, where `lead_time_ai` is known to be
        // a part of `lead_time`, then merged.
        let mut lead_time_other = DurationSketch::new();
        for w in window.iter() {
            for agg in projects.iter().filter_map(|p| p.get(&w)) {
                lead_time_other.merge(&agg.lead_time.without(&agg.lead_time_ai));
            }
        }
        WindowData {
            totals,
            deployments: weekly(|a| a.deployments),
            completed: weekly(|a| a.completed),
            lead_time_other,
        }
    }
}

fn per_week(metric: &Metric, before: &[f64], after: &[f64]) -> Comparison {
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let b = Side { value: mean(before), n: before.len() as u64 };
    let a = Side { value: mean(after), n: after.len() as u64 };
    let test = (metric.enough(b.n) && metric.enough(a.n))
        .then(|| {
            let pairs = |v: &[f64]| v.iter().map(|&x| (x, 1)).collect::<Vec<_>>();
            mann_whitney_u(&pairs(before), &pairs(after))
        })
        .flatten()
        .map(|r| TestOutcome { test: StatTest::MannWhitneyU, p_value: r.p_value });
    let j = verdict::judge(metric, Framing::BeforeAfter, b, a, test);
    comparison(metric, b, a, test, j)
}

fn durations(metric: &Metric, framing: Framing, before: &DurationSketch, after: &DurationSketch) -> Comparison {
    let b = Side { value: before.quantile_hours(0.5), n: before.count() };
    let a = Side { value: after.quantile_hours(0.5), n: after.count() };
    let test = (metric.enough(b.n) && metric.enough(a.n))
        .then(|| mann_whitney_u(&before.weighted_values_hours(), &after.weighted_values_hours()))
        .flatten()
        .map(|r| TestOutcome { test: StatTest::MannWhitneyU, p_value: r.p_value });
    let j = verdict::judge(metric, framing, b, a, test);
    comparison(metric, b, a, test, j)
}

/// A rate from (part, whole) counts on each side.
fn rate(metric: &Metric, framing: Framing, before: (u32, u32), after: (u32, u32)) -> Comparison {
    let side = |(part, whole): (u32, u32)| Side {
        value: (whole > 0).then(|| f64::from(part) / f64::from(whole)),
        n: u64::from(whole),
    };
    let (b, a) = (side(before), side(after));
    let test = (metric.enough(b.n) && metric.enough(a.n))
        .then(|| rate_test(before.0.into(), before.1.into(), after.0.into(), after.1.into()))
        .flatten();
    let j = verdict::judge(metric, framing, b, a, test);
    comparison(metric, b, a, test, j)
}

fn comparison(metric: &Metric, b: Side, a: Side, test: Option<TestOutcome>, j: verdict::Judgement) -> Comparison {
    Comparison {
        metric: metric.id,
        label: metric.label,
        before: b.value,
        after: a.value,
        relative_change: j.relative_change,
        before_n: b.n,
        after_n: a.n,
        test: test.map_or(StatTest::None, |t| t.test),
        p_value: test.map(|t| t.p_value),
        verdict: j.verdict,
        sentence: j.sentence,
    }
}

/// Speed: deployments per week and lead time; stability: change failure
/// rate and time to restore.
fn overall_of(before_after: &[Comparison]) -> Overall {
    let find = |id: &str| {
        before_after.iter().find(|c| c.metric == id).map_or(
            Outcome { verdict: Verdict::NotEnoughData, p_value: None },
            |c| Outcome { verdict: c.verdict, p_value: c.p_value },
        )
    };
    verdict::overall(
        [find(verdict::DEPLOYMENTS_PER_WEEK.id), find(verdict::LEAD_TIME_MEDIAN.id)],
        [find(verdict::CHANGE_FAILURE_RATE.id), find(verdict::TIME_TO_RESTORE_MEDIAN.id)],
    )
}
