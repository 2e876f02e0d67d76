//! One row per rule of the AI impact comparison (`docs/metrics.md`, AI
//! impact): each verdict with its exact sentence, the overall line, the
//! window arithmetic, and an end-to-end case on hand-built aggregates.

use chrono::NaiveDate;
use jira_dora::domain::aggregate::{ProjectAggregates, WeeklyAggregate};
use jira_dora::domain::impact::{AiImpact, Comparison, Window, ai_impact, windows};
use jira_dora::domain::period::Period;
use jira_dora::domain::stats::{StatTest, TestOutcome};
use jira_dora::domain::time::IsoWeek;
use jira_dora::domain::verdict::{
    self, CHANGE_FAILURE_RATE, COMPLETED_PER_WEEK, DEPLOYMENTS_PER_WEEK, Framing, LEAD_TIME_MEDIAN, Metric, Outcome,
    REOPEN_RATE, Side, TIME_TO_RESTORE_MEDIAN, Trend, Verdict, judge, overall, trend,
};

use Framing::{BeforeAfter, OtherVsAi};
use StatTest::{FisherExact, MannWhitneyU, TwoProportionZ};
use Verdict::{HeldSteady, Improved, NotEnoughData, Worsened};

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn week(name: &str) -> IsoWeek {
    IsoWeek::parse(name).unwrap()
}

fn period(from: &str, to: &str) -> Period {
    let first = week(from);
    Period::of_weeks(first, first.weeks_until(week(to)) as u32 + 1)
}

/// One verdict rule: (value, n) on each side, the test outcome if one was
/// run, and the expected verdict and sentence.
struct Row {
    metric: Metric,
    framing: Framing,
    before: (f64, u64),
    after: (f64, u64),
    test: Option<(StatTest, f64)>,
    verdict: Verdict,
    sentence: &'static str,
}

fn check(rows: &[Row]) {
    for row in rows {
        let side = |(value, n): (f64, u64)| Side { value: Some(value), n };
        let test = row.test.map(|(test, p_value)| TestOutcome { test, p_value });
        let got = judge(&row.metric, row.framing, side(row.before), side(row.after), test);
        assert_eq!((got.verdict, got.sentence.as_str()), (row.verdict, row.sentence));
        // Same inputs, same words.
        let again = judge(&row.metric, row.framing, side(row.before), side(row.after), test);
        assert_eq!(again.sentence, got.sentence);
    }
}

fn row(
    metric: Metric,
    framing: Framing,
    before: (f64, u64),
    after: (f64, u64),
    test: Option<(StatTest, f64)>,
    verdict: Verdict,
    sentence: &'static str,
) -> Row {
    Row { metric, framing, before, after, test, verdict, sentence }
}

#[test]
fn not_enough_data_says_what_is_missing() {
    check(&[
        row(
            LEAD_TIME_MEDIAN,
            BeforeAfter,
            (52.0, 40),
            (30.0, 7),
            None,
            NotEnoughData,
            "Not enough data to compare lead time (median): 7 values after the rollout, at least 10 are needed.",
        ),
        row(
            TIME_TO_RESTORE_MEDIAN,
            BeforeAfter,
            (3.0, 3),
            (2.0, 1),
            None,
            NotEnoughData,
            "Not enough data to compare time to restore (median): 3 values before the rollout and 1 value after the rollout, at least 10 are needed on each side.",
        ),
        row(
            CHANGE_FAILURE_RATE,
            BeforeAfter,
            (0.1, 9),
            (0.2, 30),
            None,
            NotEnoughData,
            "Not enough data to compare change failure rate: 9 deployments before the rollout, at least 10 are needed.",
        ),
        row(
            REOPEN_RATE,
            BeforeAfter,
            (0.1, 40),
            (0.0, 1),
            None,
            NotEnoughData,
            "Not enough data to compare re-open rate: 1 completed item after the rollout, at least 10 are needed.",
        ),
        row(
            DEPLOYMENTS_PER_WEEK,
            BeforeAfter,
            (2.0, 3),
            (3.0, 3),
            None,
            NotEnoughData,
            "Not enough data to compare deployments per week: 3 weeks on each side of the rollout, at least 4 are needed.",
        ),
        row(
            COMPLETED_PER_WEEK,
            BeforeAfter,
            (2.0, 1),
            (3.0, 1),
            None,
            NotEnoughData,
            "Not enough data to compare completed items per week: 1 week on each side of the rollout, at least 4 are needed.",
        ),
        row(
            LEAD_TIME_MEDIAN,
            OtherVsAi,
            (40.0, 25),
            (20.0, 6),
            None,
            NotEnoughData,
            "Not enough data to compare lead time (median) of AI-involved and other items: 6 AI-involved items, at least 10 are needed.",
        ),
        row(
            REOPEN_RATE,
            OtherVsAi,
            (0.1, 9),
            (0.2, 1),
            None,
            NotEnoughData,
            "Not enough data to compare re-open rate of AI-involved and other items: 1 AI-involved item and 9 other items, at least 10 are needed on each side.",
        ),
    ]);
}

#[test]
fn held_steady_under_ten_percent_and_from_zero_to_zero() {
    check(&[
        // No caution on held steady, whatever p is.
        row(
            LEAD_TIME_MEDIAN,
            BeforeAfter,
            (50.0, 40),
            (46.0, 38),
            Some((MannWhitneyU, 0.6)),
            HeldSteady,
            "Lead time (median) held steady after the rollout: 50.0 h before, 46.0 h after (-8.0 %; 40 values before, 38 after).",
        ),
        row(
            TIME_TO_RESTORE_MEDIAN,
            BeforeAfter,
            (100.0, 12),
            (90.1, 12),
            Some((MannWhitneyU, 0.7)),
            HeldSteady,
            "Time to restore (median) held steady after the rollout: 100.0 h before, 90.1 h after (-9.9 %; 12 values before, 12 after).",
        ),
        row(
            CHANGE_FAILURE_RATE,
            BeforeAfter,
            (0.0, 20),
            (0.0, 25),
            Some((FisherExact, 1.0)),
            HeldSteady,
            "Change failure rate held steady after the rollout: 0.0 % before, 0.0 % after (no change; 20 deployments before, 25 after).",
        ),
        row(
            DEPLOYMENTS_PER_WEEK,
            BeforeAfter,
            (0.0, 6),
            (0.0, 6),
            Some((MannWhitneyU, 1.0)),
            HeldSteady,
            "Deployments per week held steady after the rollout: 0.00 before, 0.00 after (no change; 6 weeks before, 6 after).",
        ),
    ]);
}

#[test]
fn from_zero_has_no_relative_change_and_follows_the_direction() {
    check(&[
        row(
            CHANGE_FAILURE_RATE,
            BeforeAfter,
            (0.0, 20),
            (0.2, 25),
            Some((FisherExact, 0.03)),
            Worsened,
            "Change failure rate worsened after the rollout: 0.0 % before, 20.0 % after (up from zero; 20 deployments before, 25 after).",
        ),
        row(
            COMPLETED_PER_WEEK,
            BeforeAfter,
            (0.0, 4),
            (1.5, 4),
            Some((MannWhitneyU, 0.01)),
            Improved,
            "Completed items per week improved after the rollout: 0.00 before, 1.50 after (up from zero; 4 weeks before, 4 after).",
        ),
    ]);
    let j = judge(
        &CHANGE_FAILURE_RATE,
        BeforeAfter,
        Side { value: Some(0.0), n: 20 },
        Side { value: Some(0.2), n: 25 },
        None,
    );
    assert_eq!(j.relative_change, None);
}

#[test]
fn exactly_ten_percent_is_a_move() {
    check(&[
        // 10 of 100 failed, then 11 of 100: the rates as the comparison computes them.
        row(
            CHANGE_FAILURE_RATE,
            BeforeAfter,
            (10.0 / 100.0, 100),
            (11.0 / 100.0, 100),
            Some((TwoProportionZ, 0.001)),
            Worsened,
            "Change failure rate worsened after the rollout: 10.0 % before, 11.0 % after (+10.0 %; 100 deployments before, 100 after).",
        ),
        row(
            LEAD_TIME_MEDIAN,
            BeforeAfter,
            (10.0, 30),
            (9.0, 30),
            Some((MannWhitneyU, 0.01)),
            Improved,
            "Lead time (median) improved after the rollout: 10.0 h before, 9.0 h after (-10.0 %; 30 values before, 30 after).",
        ),
        // 10 deployments in 4 weeks, then 11.
        row(
            DEPLOYMENTS_PER_WEEK,
            BeforeAfter,
            (10.0 / 4.0, 4),
            (11.0 / 4.0, 4),
            Some((MannWhitneyU, 0.01)),
            Improved,
            "Deployments per week improved after the rollout: 2.50 before, 2.75 after (+10.0 %; 4 weeks before, 4 after).",
        ),
    ]);
}

#[test]
fn improved_and_worsened_follow_each_metrics_good_direction() {
    check(&[
        // Lower is better.
        row(
            LEAD_TIME_MEDIAN,
            BeforeAfter,
            (52.0, 120),
            (31.5, 134),
            Some((MannWhitneyU, 0.001)),
            Improved,
            "Lead time (median) improved after the rollout: 52.0 h before, 31.5 h after (-39.4 %; 120 values before, 134 after).",
        ),
        row(
            REOPEN_RATE,
            BeforeAfter,
            (0.05, 200),
            (0.12, 150),
            Some((TwoProportionZ, 0.02)),
            Worsened,
            "Re-open rate worsened after the rollout: 5.0 % before, 12.0 % after (+140.0 %; 200 completed items before, 150 after).",
        ),
        // Higher is better.
        row(
            DEPLOYMENTS_PER_WEEK,
            BeforeAfter,
            (2.5, 8),
            (4.0, 8),
            Some((MannWhitneyU, 0.004)),
            Improved,
            "Deployments per week improved after the rollout: 2.50 before, 4.00 after (+60.0 %; 8 weeks before, 8 after).",
        ),
        row(
            COMPLETED_PER_WEEK,
            BeforeAfter,
            (10.0, 6),
            (7.25, 6),
            Some((MannWhitneyU, 0.01)),
            Worsened,
            "Completed items per week worsened after the rollout: 10.00 before, 7.25 after (-27.5 %; 6 weeks before, 6 after).",
        ),
        // AI-involved against other items; other plays the before role.
        row(
            LEAD_TIME_MEDIAN,
            OtherVsAi,
            (40.0, 80),
            (28.0, 40),
            Some((MannWhitneyU, 0.003)),
            Improved,
            "Lead time (median) is better for AI-involved items: 28.0 h against 40.0 h for other items (-30.0 %; 40 AI-involved and 80 other items).",
        ),
        row(
            REOPEN_RATE,
            OtherVsAi,
            (0.1, 80),
            (0.2, 40),
            Some((TwoProportionZ, 0.01)),
            Worsened,
            "Re-open rate is worse for AI-involved items: 20.0 % against 10.0 % for other items (+100.0 %; 40 AI-involved and 80 other items).",
        ),
        row(
            REOPEN_RATE,
            OtherVsAi,
            (0.1, 80),
            (0.105, 40),
            Some((TwoProportionZ, 0.9)),
            HeldSteady,
            "Re-open rate is about the same for AI-involved items: 10.5 % against 10.0 % for other items (+5.0 %; 40 AI-involved and 80 other items).",
        ),
    ]);
}

#[test]
fn a_move_that_could_be_chance_carries_a_caution_naming_the_test() {
    check(&[
        row(
            LEAD_TIME_MEDIAN,
            BeforeAfter,
            (52.0, 12),
            (31.5, 11),
            Some((MannWhitneyU, 0.231)),
            Improved,
            "Lead time (median) improved after the rollout: 52.0 h before, 31.5 h after (-39.4 %; 12 values before, 11 after). The difference could be chance: the Mann-Whitney U test gives p = 0.231, not below 0.05.",
        ),
        row(
            CHANGE_FAILURE_RATE,
            BeforeAfter,
            (0.1, 10),
            (0.3, 10),
            Some((FisherExact, 0.5820)),
            Worsened,
            "Change failure rate worsened after the rollout: 10.0 % before, 30.0 % after (+200.0 %; 10 deployments before, 10 after). The difference could be chance: Fisher's exact test gives p = 0.582, not below 0.05.",
        ),
        // p = 0.05 exactly is not below 0.05.
        row(
            REOPEN_RATE,
            BeforeAfter,
            (0.2, 100),
            (0.1, 100),
            Some((TwoProportionZ, 0.05)),
            Improved,
            "Re-open rate improved after the rollout: 20.0 % before, 10.0 % after (-50.0 %; 100 completed items before, 100 after). The difference could be chance: the two-proportion z-test gives p = 0.050, not below 0.05.",
        ),
        // Just below: no caution.
        row(
            REOPEN_RATE,
            BeforeAfter,
            (0.2, 100),
            (0.1, 100),
            Some((TwoProportionZ, 0.0499)),
            Improved,
            "Re-open rate improved after the rollout: 20.0 % before, 10.0 % after (-50.0 %; 100 completed items before, 100 after).",
        ),
    ]);
}

#[test]
fn speed_and_stability_trends_from_each_pair_of_verdicts() {
    let all = [NotEnoughData, HeldSteady, Improved, Worsened];
    for a in all {
        for b in all {
            let want = match (a, b) {
                (Improved, Worsened) | (Worsened, Improved) => Trend::Mixed,
                (Improved, _) | (_, Improved) => Trend::Better,
                (Worsened, _) | (_, Worsened) => Trend::Worse,
                (HeldSteady, _) | (_, HeldSteady) => Trend::Unchanged,
                (NotEnoughData, NotEnoughData) => Trend::NotEnoughData,
            };
            assert_eq!(trend(a, b), want, "{a:?} + {b:?}");
        }
    }
}

#[test]
fn overall_line_for_each_trend() {
    let o = |verdict: Verdict, p: f64| Outcome { verdict, p_value: (verdict != NotEnoughData).then_some(p) };
    let nothing = o(NotEnoughData, 0.0);
    let cases = [
        (
            [o(Improved, 0.01), o(HeldSteady, 0.4)],
            [o(Worsened, 0.01), nothing],
            Trend::Better,
            Trend::Worse,
            "Overall: speed (deployments per week, lead time) got better; stability (change failure rate, time to restore) got worse.",
        ),
        (
            [o(Improved, 0.01), o(Worsened, 0.01)],
            [o(HeldSteady, 0.5), o(HeldSteady, 0.9)],
            Trend::Mixed,
            Trend::Unchanged,
            "Overall: speed (deployments per week, lead time) is mixed, one measure improved and one worsened; stability (change failure rate, time to restore) held steady.",
        ),
        (
            [nothing, o(HeldSteady, 0.3)],
            [nothing, nothing],
            Trend::Unchanged,
            Trend::NotEnoughData,
            "Overall: speed (deployments per week, lead time) held steady; stability (change failure rate, time to restore) has not enough data.",
        ),
        (
            [o(Worsened, 0.001), nothing],
            [o(Improved, 0.002), o(Improved, 0.003)],
            Trend::Worse,
            Trend::Better,
            "Overall: speed (deployments per week, lead time) got worse; stability (change failure rate, time to restore) got better.",
        ),
        (
            [nothing, nothing],
            [nothing, nothing],
            Trend::NotEnoughData,
            Trend::NotEnoughData,
            "Overall: not enough data to judge speed or stability.",
        ),
        // A move that could be chance is flagged.
        (
            [o(Improved, 0.2), o(HeldSteady, 0.01)],
            [o(HeldSteady, 0.6), nothing],
            Trend::Better,
            Trend::Unchanged,
            "Overall: speed (deployments per week, lead time) got better; stability (change failure rate, time to restore) held steady. Some of these moves could be chance.",
        ),
    ];
    for (speed, stability, want_speed, want_stability, sentence) in cases {
        let got = overall(speed, stability);
        assert_eq!((got.speed, got.stability, got.sentence.as_str()), (want_speed, want_stability, sentence));
    }
}

fn window(first: &str, last: &str, weeks: u32) -> Window {
    Window { first: week(first), last: week(last), weeks }
}

#[test]
fn windows_split_the_period_at_the_rollout_week() {
    let p = period("2026-W06", "2026-W17");
    // Sunday 2026-03-08 is in 2026-W10: after starts on Monday 2026-03-09.
    assert_eq!(
        windows(&p, date("2026-03-08")),
        Some((window("2026-W03", "2026-W09", 7), window("2026-W11", "2026-W17", 7)))
    );
    // Monday 2026-03-09 starts 2026-W11; that Monday is not later than R,
    // so W11 is R's week and belongs to neither side.
    assert_eq!(
        windows(&p, date("2026-03-09")),
        Some((window("2026-W05", "2026-W10", 6), window("2026-W12", "2026-W17", 6)))
    );
    // Early in the period: before reaches back across the year boundary.
    assert_eq!(
        windows(&p, date("2026-02-11")),
        Some((window("2025-W49", "2026-W06", 10), window("2026-W08", "2026-W17", 10)))
    );
    // Before the period: after is the whole period, before precedes R's week.
    assert_eq!(
        windows(&p, date("2026-01-01")),
        Some((window("2025-W41", "2025-W52", 12), window("2026-W06", "2026-W17", 12)))
    );
    // Sunday of the second-to-last week: one week each side.
    assert_eq!(
        windows(&p, date("2026-04-19")),
        Some((window("2026-W15", "2026-W15", 1), window("2026-W17", "2026-W17", 1)))
    );
    // R in the last week, or after the period: R's week ends after it.
    assert_eq!(windows(&p, date("2026-04-20")), None);
    assert_eq!(windows(&p, date("2026-04-26")), None);
    assert_eq!(windows(&p, date("2026-06-01")), None);
}

#[test]
fn rollout_week_ending_after_the_period_is_not_enough_data() {
    let p = period("2026-W06", "2026-W17");
    let r = ai_impact(&[], &p, date("2026-04-22"));
    assert_eq!((r.before, r.after), (None, None));
    assert!(
        r.before_after.iter().chain(&r.ai_vs_other).all(|c| c.verdict == NotEnoughData && c.test == StatTest::None)
    );
    assert_eq!(
        r.before_after[0].sentence,
        "Not enough data to compare deployments per week: no week of the period starts after the rollout on 2026-04-22."
    );
    assert_eq!(
        r.ai_vs_other[1].sentence,
        "Not enough data to compare re-open rate of AI-involved and other items: no week of the period starts after the rollout on 2026-04-22."
    );
    assert_eq!(r.overall.sentence, "Overall: not enough data to judge speed or stability.");
}

const H: i64 = 3_600_000;

/// A week of one project: deployments (failed), lead times in hours with
/// the AI-involved ones marked, restore times, completed work with re-opens.
#[derive(Default)]
struct W<'a> {
    deployments: u32,
    failed: u32,
    lead: &'a [f64],
    lead_ai: &'a [f64],
    restore: &'a [f64],
    reopened: u32,
    reopened_ai: u32,
}

impl W<'_> {
    fn aggregate(&self) -> WeeklyAggregate {
        let mut agg = WeeklyAggregate {
            deployments: self.deployments,
            deployment_days: if self.deployments > 0 { 1 } else { 0 },
            failed_deployments: self.failed,
            completed: (self.lead.len() + self.lead_ai.len()) as u32,
            ai_involved: self.lead_ai.len() as u32,
            reopened: self.reopened,
            reopened_ai: self.reopened_ai,
            ..WeeklyAggregate::default()
        };
        for &h in self.lead.iter().chain(self.lead_ai) {
            agg.lead_time.add((h * H as f64) as i64);
        }
        for &h in self.lead_ai {
            agg.lead_time_ai.add((h * H as f64) as i64);
        }
        for &h in self.restore {
            agg.time_to_restore.add((h * H as f64) as i64);
        }
        agg
    }
}

fn project(weeks: impl IntoIterator<Item = (IsoWeek, WeeklyAggregate)>) -> ProjectAggregates {
    weeks.into_iter().collect()
}

fn find<'a>(list: &'a [Comparison], metric: &str) -> &'a Comparison {
    list.iter().find(|c| c.metric == metric).unwrap()
}

/// Two projects over 2026-W02..W16, rollout on Sunday 2026-03-01 (W09):
/// before is W02..W08, after W10..W16, seven weeks each. After the rollout
/// project A deploys twice as often with fewer failures and shorter lead
/// times, most of them AI-involved; restore times stay put; project B does
/// not change. R's own week holds noise that must not count.
fn shifted() -> AiImpact {
    let p = period("2026-W01", "2026-W16");
    let before_a = W {
        deployments: 2,
        failed: 1,
        lead: &[40.0, 45.0, 50.0, 55.0, 60.0],
        restore: &[10.0, 12.0],
        reopened: 1,
        ..W::default()
    };
    let after_a = W {
        deployments: 4,
        failed: 0,
        lead: &[26.0, 28.0],
        lead_ai: &[20.0, 22.0, 24.0],
        restore: &[10.0, 12.5],
        reopened: 1,
        reopened_ai: 0,
    };
    let noise = W { deployments: 50, failed: 50, lead: &[900.0; 20], ..W::default() };
    let b_week = W { deployments: 1, lead: &[30.0, 70.0], ..W::default() };
    let a = project((1..=16).map(|n| week(&format!("2026-W{n:02}"))).map(|w| {
        let agg = if w < week("2026-W09") {
            before_a.aggregate()
        } else if w == week("2026-W09") {
            noise.aggregate()
        } else {
            after_a.aggregate()
        };
        (w, agg)
    }));
    let b = project((1..=16).map(|n| (week(&format!("2026-W{n:02}")), b_week.aggregate())));
    ai_impact(&[&a, &b], &p, date("2026-03-01"))
}

#[test]
fn end_to_end_a_visible_shift() {
    let r = shifted();
    assert_eq!(r.rollout, date("2026-03-01"));
    assert_eq!(r.before, Some(window("2026-W02", "2026-W08", 7)));
    assert_eq!(r.after, Some(window("2026-W10", "2026-W16", 7)));

    let ids: Vec<&str> = r.before_after.iter().map(|c| c.metric).collect();
    assert_eq!(
        ids,
        [
            "deployments_per_week",
            "lead_time_median_hours",
            "change_failure_rate",
            "time_to_restore_median_hours",
            "reopen_rate",
            "completed_per_week"
        ]
    );

    // Weekly deployments 3 → 5 in every week: all ties within each side.
    // scipy.stats.mannwhitneyu([3]*7, [5]*7, method="asymptotic").pvalue
    let d = find(&r.before_after, "deployments_per_week");
    assert_eq!((d.before, d.after, d.before_n, d.after_n), (Some(3.0), Some(5.0), 7, 7));
    assert_eq!((d.verdict, d.test), (Improved, MannWhitneyU));
    assert!((d.p_value.unwrap() - 0.0004124783363855208).abs() < 1e-12, "{:?}", d.p_value);
    assert_eq!(
        d.sentence,
        "Deployments per week improved after the rollout: 3.00 before, 5.00 after (+66.7 %; 7 weeks before, 7 after)."
    );

    // Lead times: before 7 × {30, 40, 45, 50, 55, 60, 70} (median 50),
    // after 7 × {20, 22, 24, 26, 28, 30, 70} (median 26).
    // scipy.stats.mannwhitneyu([30,40,45,50,55,60,70]*7,
    //     [20,22,24,26,28,30,70]*7, method="asymptotic").pvalue
    let l = find(&r.before_after, "lead_time_median_hours");
    assert_eq!((l.before, l.after, l.before_n, l.after_n), (Some(50.0), Some(26.0), 49, 49));
    assert!((l.p_value.unwrap() - 9.481561352464885e-10).abs() < 1e-18, "{:?}", l.p_value);
    assert_eq!(
        l.sentence,
        "Lead time (median) improved after the rollout: 50.0 h before, 26.0 h after (-48.0 %; 49 values before, 49 after)."
    );

    // 7 of 21 deployments failed, then 0 of 35: expected failures after are
    // 35 × 7/56 = 4.4 < 5, so Fisher's exact test.
    let f = find(&r.before_after, "change_failure_rate");
    assert_eq!((f.before_n, f.after_n, f.test), (21, 35, FisherExact));
    assert_eq!(
        f.sentence,
        "Change failure rate improved after the rollout: 33.3 % before, 0.0 % after (-100.0 %; 21 deployments before, 35 after)."
    );

    // Restore medians 11 h → 11.25 h: held steady (and no caution, though
    // scipy.stats.mannwhitneyu([10,12]*7, [10,12.5]*7,
    //     method="asymptotic").pvalue = 0.230...).
    let t = find(&r.before_after, "time_to_restore_median_hours");
    assert_eq!((t.verdict, t.before_n, t.after_n), (HeldSteady, 14, 14));
    assert!((t.p_value.unwrap() - 0.23023641769516934).abs() < 1e-12);
    assert_eq!(
        t.sentence,
        "Time to restore (median) held steady after the rollout: 11.0 h before, 11.2 h after (+2.3 %; 14 values before, 14 after)."
    );

    // Re-opens 7 of 49 on both sides.
    let o = find(&r.before_after, "reopen_rate");
    assert_eq!((o.verdict, o.test, o.relative_change), (HeldSteady, TwoProportionZ, Some(0.0)));
    assert_eq!(
        o.sentence,
        "Re-open rate held steady after the rollout: 14.3 % before, 14.3 % after (no change; 49 completed items before, 49 after)."
    );

    // Completed 7 per week on both sides.
    let c = find(&r.before_after, "completed_per_week");
    assert_eq!((c.before, c.after, c.verdict), (Some(7.0), Some(7.0), HeldSteady));

    // After the rollout: AI-involved lead times 7 × {20, 22, 24} against
    // other 7 × {26, 28, 30, 70}.
    let ai = find(&r.ai_vs_other, "lead_time_median_hours");
    assert_eq!((ai.before, ai.after, ai.before_n, ai.after_n), (Some(29.0), Some(22.0), 28, 21));
    assert_eq!(ai.verdict, Improved);
    assert_eq!(
        ai.sentence,
        "Lead time (median) is better for AI-involved items: 22.0 h against 29.0 h for other items (-24.1 %; 21 AI-involved and 28 other items)."
    );
    // 0 of 21 AI-involved items re-opened, 7 of 28 others.
    // Expected re-opens among AI-involved items 21 × 7/49 = 3 < 5: Fisher.
    // scipy.stats.fisher_exact([[7, 21], [0, 21]]).pvalue = 0.0151374989...
    let ro = find(&r.ai_vs_other, "reopen_rate");
    assert_eq!((ro.before_n, ro.after_n, ro.after, ro.test), (28, 21, Some(0.0), FisherExact));
    assert!((ro.p_value.unwrap() - 0.015137498948784798).abs() < 1e-12);
    assert_eq!(
        ro.sentence,
        "Re-open rate is better for AI-involved items: 0.0 % against 25.0 % for other items (-100.0 %; 21 AI-involved and 28 other items)."
    );

    assert_eq!((r.overall.speed, r.overall.stability), (Trend::Better, Trend::Better));
    assert_eq!(
        r.overall.sentence,
        "Overall: speed (deployments per week, lead time) got better; stability (change failure rate, time to restore) got better."
    );
}

#[test]
fn same_inputs_give_byte_identical_words() {
    assert_eq!(shifted(), shifted());
}

#[test]
fn metric_labels_are_the_api_identifiers() {
    let ids: Vec<&str> = [
        DEPLOYMENTS_PER_WEEK,
        LEAD_TIME_MEDIAN,
        CHANGE_FAILURE_RATE,
        TIME_TO_RESTORE_MEDIAN,
        REOPEN_RATE,
        COMPLETED_PER_WEEK,
    ]
    .iter()
    .map(|m| m.id)
    .collect();
    assert_eq!(
        ids,
        [
            "deployments_per_week",
            "lead_time_median_hours",
            "change_failure_rate",
            "time_to_restore_median_hours",
            "reopen_rate",
            "completed_per_week"
        ]
    );
    assert_eq!(verdict::test_name(StatTest::FisherExact), "Fisher's exact test");
}
