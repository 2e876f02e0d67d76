//! Every word of the AI impact comparison: verdicts and their sentences.
//!
//! The rules (`docs/metrics.md`, AI impact):
//! - *not enough data* when a side has fewer than 10 values (durations), a
//!   denominator under 10 (rates) or fewer than 4 weeks (per-week figures);
//!   the sentence says what is missing;
//! - *held steady* when the relative change is under 10 % (0 → 0 included);
//! - otherwise *improved* or *worsened* by the metric's good direction, with
//!   both values, the change in percent and both sample sizes; from 0 to
//!   anything else there is no relative change and the direction decides;
//! - a caution when the difference could be chance (p ≥ 0.05), naming the
//!   test, on improved and worsened only.
//!
//! Numbers are printed with fixed decimals, so the same inputs always give
//! byte-identical sentences. Nothing here computes a statistic: values,
//! sample sizes and p-values come in, words come out.

use std::fmt::Write;

use chrono::NaiveDate;

use super::stats::{StatTest, TestOutcome};

/// What a comparison concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    NotEnoughData,
    HeldSteady,
    Improved,
    Worsened,
}

/// Which way is good for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    LowerIsBetter,
    HigherIsBetter,
}

/// How a metric is measured, which sets its unit, its minimum sample and
/// what its sample size counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A mean per week, tested on the weekly values; the sample is weeks.
    PerWeek,
    /// A median in hours, tested on the whole distribution; the sample is
    /// the number of durations.
    Duration,
    /// A fraction; the sample is the denominator, named here
    /// (singular, plural).
    Rate { denominator: (&'static str, &'static str) },
}

/// A compared metric: its identifier in the API, its words and its rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    pub id: &'static str,
    /// Lower-case label used inside sentences.
    pub label: &'static str,
    pub kind: Kind,
    pub direction: Direction,
}

pub const DEPLOYMENTS_PER_WEEK: Metric = Metric {
    id: "deployments_per_week",
    label: "deployments per week",
    kind: Kind::PerWeek,
    direction: Direction::HigherIsBetter,
};
pub const LEAD_TIME_MEDIAN: Metric = Metric {
    id: "lead_time_median_hours",
    label: "lead time (median)",
    kind: Kind::Duration,
    direction: Direction::LowerIsBetter,
};
pub const CHANGE_FAILURE_RATE: Metric = Metric {
    id: "change_failure_rate",
    label: "change failure rate",
    kind: Kind::Rate { denominator: ("deployment", "deployments") },
    direction: Direction::LowerIsBetter,
};
pub const TIME_TO_RESTORE_MEDIAN: Metric = Metric {
    id: "time_to_restore_median_hours",
    label: "time to restore (median)",
    kind: Kind::Duration,
    direction: Direction::LowerIsBetter,
};
pub const REOPEN_RATE: Metric = Metric {
    id: "reopen_rate",
    label: "re-open rate",
    kind: Kind::Rate { denominator: ("completed item", "completed items") },
    direction: Direction::LowerIsBetter,
};
pub const COMPLETED_PER_WEEK: Metric = Metric {
    id: "completed_per_week",
    label: "completed items per week",
    kind: Kind::PerWeek,
    direction: Direction::HigherIsBetter,
};

/// Fewest weeks on each side for a per-week figure.
pub const MIN_WEEKS: u64 = 4;
/// Fewest durations on each side for a median.
pub const MIN_DURATIONS: u64 = 10;
/// Smallest denominator on each side for a rate.
pub const MIN_DENOMINATOR: u64 = 10;
/// A relative change of at least this much is a move.
pub const MOVE_THRESHOLD: f64 = 0.10;
/// Below this p-value a difference is not called chance.
pub const SIGNIFICANCE: f64 = 0.05;

impl Metric {
    /// The smallest sample on each side that allows a comparison.
    pub fn minimum(&self) -> u64 {
        match self.kind {
            Kind::PerWeek => MIN_WEEKS,
            Kind::Duration => MIN_DURATIONS,
            Kind::Rate { .. } => MIN_DENOMINATOR,
        }
    }

    /// True when a side of `n` is enough to compare.
    pub fn enough(&self, n: u64) -> bool {
        n >= self.minimum()
    }
}

/// Which two groups are compared; the first plays the "before" role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Before the rollout against after it.
    BeforeAfter,
    /// Inside the after window: other completed items (the "before" role)
    /// against AI-involved ones.
    OtherVsAi,
}

/// One side of a comparison: its figure and its sample size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Side {
    pub value: Option<f64>,
    pub n: u64,
}

/// A verdict with its relative change and its sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub verdict: Verdict,
    /// (after − before) / before; `None` when before is 0 or a side lacks
    /// data.
    pub relative_change: Option<f64>,
    pub sentence: String,
}

/// Judges `after` against `before`. `test` is the outcome of the test run
/// on the two sides (`None` when none was run).
pub fn judge(metric: &Metric, framing: Framing, before: Side, after: Side, test: Option<TestOutcome>) -> Judgement {
    let (b, a) = match (before.value, after.value) {
        (Some(b), Some(a)) if metric.enough(before.n) && metric.enough(after.n) => (b, a),
        _ => {
            return Judgement {
                verdict: Verdict::NotEnoughData,
                relative_change: None,
                sentence: missing_sentence(metric, framing, before.n, after.n),
            };
        }
    };
    let relative_change = (b != 0.0).then(|| (a - b) / b);
    let verdict = match relative_change {
        None if a == b => Verdict::HeldSteady,
        None => by_direction(metric.direction, a > b),
        // Rounded to 1e-9 first, so that a change of exactly 10 % computed
        // from counts (11/10 − 1) is exactly 10 % and moves.
        Some(rc) if ((rc * 1e9).round() / 1e9).abs() < MOVE_THRESHOLD => Verdict::HeldSteady,
        Some(rc) => by_direction(metric.direction, rc > 0.0),
    };

    let mut sentence = String::new();
    let change = match relative_change {
        _ if a == b => "no change".to_owned(),
        Some(rc) => signed_percent(rc),
        None => "up from zero".to_owned(),
    };
    let (vb, va) = (figure(metric, b), figure(metric, a));
    match framing {
        Framing::BeforeAfter => {
            let word = match verdict {
                Verdict::Improved => "improved",
                Verdict::Worsened => "worsened",
                _ => "held steady",
            };
            let (one, many) = unit(metric);
            let _ = write!(
                sentence,
                "{} {word} after the rollout: {vb} before, {va} after ({change}; {} {} before, {} after).",
                capitalised(metric.label),
                before.n,
                if before.n == 1 { one } else { many },
                after.n,
            );
        }
        Framing::OtherVsAi => {
            let word = match verdict {
                Verdict::Improved => "is better",
                Verdict::Worsened => "is worse",
                _ => "is about the same",
            };
            let _ = write!(
                sentence,
                "{} {word} for AI-involved items: {va} against {vb} for other items ({change}; {} AI-involved and {} other {}).",
                capitalised(metric.label),
                after.n,
                before.n,
                if before.n == 1 { "item" } else { "items" },
            );
        }
    }
    if let Some(t) = test
        && matches!(verdict, Verdict::Improved | Verdict::Worsened)
        && t.p_value >= SIGNIFICANCE
    {
        let _ = write!(
            sentence,
            " The difference could be chance: {} gives p = {:.3}, not below 0.05.",
            test_subject(t.test),
            t.p_value
        );
    }
    Judgement { verdict, relative_change, sentence }
}

/// The judgement when no week of the period starts after the rollout.
pub fn no_after_window(metric: &Metric, framing: Framing, rollout: NaiveDate) -> Judgement {
    Judgement {
        verdict: Verdict::NotEnoughData,
        relative_change: None,
        sentence: format!(
            "Not enough data to compare {}: no week of the period starts after the rollout on {}.",
            subject(metric, framing),
            rollout.format("%Y-%m-%d")
        ),
    }
}

fn by_direction(direction: Direction, went_up: bool) -> Verdict {
    match (direction, went_up) {
        (Direction::HigherIsBetter, true) | (Direction::LowerIsBetter, false) => Verdict::Improved,
        _ => Verdict::Worsened,
    }
}

fn subject(metric: &Metric, framing: Framing) -> String {
    match framing {
        Framing::BeforeAfter => metric.label.to_owned(),
        Framing::OtherVsAi => format!("{} of AI-involved and other items", metric.label),
    }
}

/// What a sample counts, (singular, plural).
fn unit(metric: &Metric) -> (&'static str, &'static str) {
    match metric.kind {
        Kind::PerWeek => ("week", "weeks"),
        Kind::Duration => ("value", "values"),
        Kind::Rate { denominator } => denominator,
    }
}

fn missing_sentence(metric: &Metric, framing: Framing, before_n: u64, after_n: u64) -> String {
    let min = metric.minimum();
    let (one, many) = unit(metric);
    let count = |n: u64| format!("{n} {}", if n == 1 { one } else { many });
    let lacking_before = !metric.enough(before_n);
    let lacking_after = !metric.enough(after_n);
    let what = match framing {
        Framing::BeforeAfter if metric.kind == Kind::PerWeek && before_n == after_n => {
            format!("{} on each side of the rollout", count(after_n))
        }
        Framing::BeforeAfter => {
            let mut parts = Vec::new();
            if lacking_before {
                parts.push(format!("{} before the rollout", count(before_n)));
            }
            if lacking_after {
                parts.push(format!("{} after the rollout", count(after_n)));
            }
            parts.join(" and ")
        }
        Framing::OtherVsAi => {
            let items = |n: u64| if n == 1 { "item" } else { "items" };
            let mut parts = Vec::new();
            if lacking_after {
                parts.push(format!("{after_n} AI-involved {}", items(after_n)));
            }
            if lacking_before {
                parts.push(format!("{before_n} other {}", items(before_n)));
            }
            parts.join(" and ")
        }
    };
    let each = if lacking_before && lacking_after && !(metric.kind == Kind::PerWeek && before_n == after_n) {
        " on each side"
    } else {
        ""
    };
    format!("Not enough data to compare {}: {what}, at least {min} are needed{each}.", subject(metric, framing))
}

/// A metric's value with its unit and fixed decimals.
fn figure(metric: &Metric, value: f64) -> String {
    match metric.kind {
        Kind::PerWeek => fixed(value, 2),
        Kind::Duration => format!("{} h", fixed(value, 1)),
        Kind::Rate { .. } => format!("{} %", fixed(value * 100.0, 1)),
    }
}

/// Fixed decimals, never "-0.0".
fn fixed(value: f64, decimals: usize) -> String {
    let s = format!("{value:.decimals$}");
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') { s[1..].to_owned() } else { s }
}

/// A relative change in percent with its sign: "+12.5 %", "-40.0 %";
/// "0.0 %" when it rounds to nothing.
fn signed_percent(fraction: f64) -> String {
    let magnitude = fixed(fraction.abs() * 100.0, 1);
    let sign = match () {
        _ if magnitude == "0.0" => "",
        _ if fraction < 0.0 => "-",
        _ => "+",
    };
    format!("{sign}{magnitude} %")
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The name of a test as it appears in a sentence.
pub fn test_name(test: StatTest) -> &'static str {
    match test {
        StatTest::None => "no test",
        StatTest::MannWhitneyU => "Mann-Whitney U test",
        StatTest::TwoProportionZ => "two-proportion z-test",
        StatTest::FisherExact => "Fisher's exact test",
    }
}

/// A test as the subject of a sentence, with its article.
fn test_subject(test: StatTest) -> &'static str {
    match test {
        StatTest::FisherExact => "Fisher's exact test",
        StatTest::None => "no test",
        StatTest::MannWhitneyU => "the Mann-Whitney U test",
        StatTest::TwoProportionZ => "the two-proportion z-test",
    }
}

/// Where speed or stability went, from its two comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trend {
    /// At least one improved, none worsened.
    Better,
    /// At least one worsened, none improved.
    Worse,
    /// One improved, one worsened.
    Mixed,
    /// Neither moved, at least one held steady.
    Unchanged,
    /// Both lack data.
    NotEnoughData,
}

/// The overall line: speed (deployments per week, lead time) and stability
/// (change failure rate, time to restore).
#[derive(Debug, Clone, PartialEq)]
pub struct Overall {
    pub speed: Trend,
    pub stability: Trend,
    pub sentence: String,
}

/// The trend of a pair of verdicts.
pub fn trend(a: Verdict, b: Verdict) -> Trend {
    let pair = [a, b];
    let improved = pair.contains(&Verdict::Improved);
    let worsened = pair.contains(&Verdict::Worsened);
    match (improved, worsened) {
        (true, true) => Trend::Mixed,
        (true, false) => Trend::Better,
        (false, true) => Trend::Worse,
        (false, false) if pair.contains(&Verdict::HeldSteady) => Trend::Unchanged,
        (false, false) => Trend::NotEnoughData,
    }
}

/// One comparison as the overall line sees it: its verdict and p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    pub verdict: Verdict,
    pub p_value: Option<f64>,
}

/// The overall line from speed's two comparisons (deployments per week,
/// lead time) and stability's two (change failure rate, time to restore).
/// When a move it rests on could be chance, the sentence says so.
pub fn overall(speed: [Outcome; 2], stability: [Outcome; 2]) -> Overall {
    let speed_trend = trend(speed[0].verdict, speed[1].verdict);
    let stability_trend = trend(stability[0].verdict, stability[1].verdict);
    let mut sentence = if speed_trend == Trend::NotEnoughData && stability_trend == Trend::NotEnoughData {
        "Overall: not enough data to judge speed or stability.".to_owned()
    } else {
        format!(
            "Overall: speed (deployments per week, lead time) {}; stability (change failure rate, time to restore) {}.",
            trend_words(speed_trend),
            trend_words(stability_trend)
        )
    };
    let chance = speed.iter().chain(&stability).any(|o| {
        matches!(o.verdict, Verdict::Improved | Verdict::Worsened) && o.p_value.is_some_and(|p| p >= SIGNIFICANCE)
    });
    if chance {
        sentence.push_str(" Some of these moves could be chance.");
    }
    Overall { speed: speed_trend, stability: stability_trend, sentence }
}

fn trend_words(trend: Trend) -> &'static str {
    match trend {
        Trend::Better => "got better",
        Trend::Worse => "got worse",
        Trend::Mixed => "is mixed, one measure improved and one worsened",
        Trend::Unchanged => "held steady",
        Trend::NotEnoughData => "has not enough data",
    }
}

impl Trend {
    /// The trend's name: `better`, `worse`, `mixed`, `unchanged` or
    /// `not enough data`.
    pub fn as_str(self) -> &'static str {
        match self {
            Trend::Better => "better",
            Trend::Worse => "worse",
            Trend::Mixed => "mixed",
            Trend::Unchanged => "unchanged",
            Trend::NotEnoughData => "not enough data",
        }
    }
}

impl Verdict {
    /// The verdict's name: `not enough data`, `held steady`, `improved` or
    /// `worsened`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::NotEnoughData => "not enough data",
            Verdict::HeldSteady => "held steady",
            Verdict::Improved => "improved",
            Verdict::Worsened => "worsened",
        }
    }
}
