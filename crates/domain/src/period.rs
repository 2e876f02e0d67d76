//! From weekly aggregates to the figures of a period, for one project or
//! several combined, with DORA levels.
//!
//! Combining is merging: counts are summed, duration sketches merged, and
//! deployment days are the union of the days on which any project deployed.
//! Nothing is ever averaged.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use thiserror::Error;

use super::aggregate::{ProjectAggregates, WeeklyAggregate};
use super::facts::Millis;
use super::sketch::DurationSketch;
use super::time::{IsoWeek, Month};

/// The default period length: the last 13 complete weeks.
pub const DEFAULT_WEEKS: u32 = 13;
/// The longest period a request may ask for (ten years).
pub const MAX_WEEKS: u32 = 520;
/// The longest period in months a request may ask for (ten years).
pub const MAX_MONTHS: u32 = 120;

/// Where the level cut-offs come from (see `docs/metrics.md`).
pub const LEVELS_SOURCE: &str = "DORA 2023/2024 clusters, monotonic cut-offs";

/// A run of whole ISO weeks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub first: IsoWeek,
    pub weeks: u32,
    /// The period reaches into the current, unfinished week (or later).
    pub partial: bool,
    /// Set when the period was given in months: exactly these months' weeks.
    pub months: Option<MonthSpan>,
}

/// A run of whole months.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthSpan {
    pub first: Month,
    pub count: u32,
}

impl MonthSpan {
    /// The span as a period of weeks: the union of the months' weeks.
    fn period(self, partial: bool) -> Period {
        let first = self.first.first_week();
        let weeks = first.weeks_until(self.first.plus(self.count as i32).first_week()) as u32;
        Period { first, weeks, partial, months: Some(self) }
    }
}

/// One point of a monthly series: a month and the weeks of it that lie in
/// the period (all of them when the period was given in months).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthSlice {
    pub month: Month,
    pub first: IsoWeek,
    pub weeks: u32,
}

impl MonthSlice {
    pub fn iter(&self) -> impl Iterator<Item = IsoWeek> + use<> {
        let first = self.first;
        (0..self.weeks as i32).map(move |i| first.plus(i))
    }

    /// The weeks of this point's rolling window, [`ROLLING_POINTS`] months
    /// ending with its own: the 3 whole months before (which may lie before
    /// the period's start), then its month up to the slice's last week (a
    /// month cut by the period's end is not read past that end).
    pub fn rolling_window(&self) -> impl Iterator<Item = IsoWeek> + use<> {
        let first = self.month.plus(-(ROLLING_POINTS as i32 - 1)).first_week();
        let weeks = first.weeks_until(self.first) + self.weeks as i32;
        (0..weeks).map(move |i| first.plus(i))
    }
}

impl Period {
    /// A period of whole weeks.
    pub fn of_weeks(first: IsoWeek, weeks: u32) -> Self {
        Period { first, weeks, partial: false, months: None }
    }

    /// The last week, inclusive.
    pub fn last(&self) -> IsoWeek {
        self.first.plus(self.weeks as i32 - 1)
    }

    /// The weeks in order.
    pub fn iter(&self) -> impl Iterator<Item = IsoWeek> + use<> {
        let first = self.first;
        (0..self.weeks as i32).map(move |i| first.plus(i))
    }

    /// The period of equal length just before this one: as many weeks, or,
    /// for a period given in months, as many months.
    pub fn previous(&self) -> Period {
        match self.months {
            Some(span) => MonthSpan { first: span.first.plus(-(span.count as i32)), count: span.count }.period(false),
            None => Period::of_weeks(self.first.plus(-(self.weeks as i32)), self.weeks),
        }
    }

    /// The months the period's weeks belong to, in order, each with the
    /// period's weeks of it.
    pub fn months(&self) -> Vec<MonthSlice> {
        let mut slices: Vec<MonthSlice> = Vec::new();
        for week in self.iter() {
            let month = Month::of_week(week);
            match slices.last_mut() {
                Some(slice) if slice.month == month => slice.weeks += 1,
                _ => slices.push(MonthSlice { month, first: week, weeks: 1 }),
            }
        }
        slices
    }
}

/// A period request that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PeriodError {
    #[error("from_week and to_week must be given together")]
    HalfRange,
    #[error("from_month and to_month must be given together")]
    HalfMonthRange,
    #[error("a period is given in weeks or in months, not both: the request has {weeks} and {months}")]
    WeeksAndMonths { weeks: &'static str, months: &'static str },
    #[error(transparent)]
    BadWeek(#[from] super::time::WeekParseError),
    #[error(transparent)]
    BadMonth(#[from] super::time::MonthParseError),
    #[error("the period is reversed: from_week {from} is after to_week {to}")]
    Reversed { from: String, to: String },
    #[error("the period is reversed: from_month {from} is after to_month {to}")]
    ReversedMonths { from: String, to: String },
    #[error("the period has {weeks} weeks; at most {MAX_WEEKS} are allowed")]
    TooLong { weeks: i64 },
    #[error("the period has {months} months; at most {MAX_MONTHS} are allowed")]
    TooManyMonths { months: i64 },
}

/// The period fields of a request. Weeks (`from_week`/`to_week` or `weeks`)
/// and months (`from_month`/`to_month` or `months`) exclude each other;
/// with neither, the last [`DEFAULT_WEEKS`] complete weeks.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeriodRequest<'a> {
    pub from_week: Option<&'a str>,
    pub to_week: Option<&'a str>,
    /// The last N complete weeks (0: not given).
    pub weeks: u32,
    pub from_month: Option<&'a str>,
    pub to_month: Option<&'a str>,
    /// The last N complete months (0: not given).
    pub months: u32,
}

impl PeriodRequest<'_> {
    /// Resolves the request against `now` in the reporting zone: an
    /// explicit inclusive range of weeks or months, or the last N complete
    /// weeks or months before the current week (a month is complete when
    /// its last week is).
    pub fn resolve(&self, now: DateTime<Utc>, tz: Tz) -> Result<Period, PeriodError> {
        let current = IsoWeek::of_instant(now.timestamp_millis(), tz);
        let week_field =
            [(self.from_week.is_some(), "from_week"), (self.to_week.is_some(), "to_week"), (self.weeks > 0, "weeks")]
                .into_iter()
                .find_map(|(given, name)| given.then_some(name));
        let month_field = [
            (self.from_month.is_some(), "from_month"),
            (self.to_month.is_some(), "to_month"),
            (self.months > 0, "months"),
        ]
        .into_iter()
        .find_map(|(given, name)| given.then_some(name));
        match (week_field, month_field) {
            (Some(weeks), Some(months)) => Err(PeriodError::WeeksAndMonths { weeks, months }),
            (None, Some(_)) => self.resolve_months(current),
            _ => self.resolve_weeks(current),
        }
    }

    fn resolve_weeks(&self, current: IsoWeek) -> Result<Period, PeriodError> {
        match (self.from_week, self.to_week) {
            (Some(from), Some(to)) => {
                let (first, last) = (IsoWeek::parse(from)?, IsoWeek::parse(to)?);
                if last < first {
                    return Err(PeriodError::Reversed { from: first.to_string(), to: last.to_string() });
                }
                let n = i64::from(first.weeks_until(last)) + 1;
                if n > i64::from(MAX_WEEKS) {
                    return Err(PeriodError::TooLong { weeks: n });
                }
                Ok(Period { first, weeks: n as u32, partial: last >= current, months: None })
            }
            (None, None) => {
                let n = if self.weeks == 0 { DEFAULT_WEEKS } else { self.weeks };
                if n > MAX_WEEKS {
                    return Err(PeriodError::TooLong { weeks: i64::from(n) });
                }
                Ok(Period::of_weeks(current.plus(-(n as i32)), n))
            }
            _ => Err(PeriodError::HalfRange),
        }
    }

    fn resolve_months(&self, current: IsoWeek) -> Result<Period, PeriodError> {
        match (self.from_month, self.to_month) {
            (Some(from), Some(to)) => {
                let (first, last) = (Month::parse(from)?, Month::parse(to)?);
                if last < first {
                    return Err(PeriodError::ReversedMonths { from: first.to_string(), to: last.to_string() });
                }
                let n = i64::from(first.months_until(last)) + 1;
                if n > i64::from(MAX_MONTHS) {
                    return Err(PeriodError::TooManyMonths { months: n });
                }
                Ok(MonthSpan { first, count: n as u32 }.period(last.last_week() >= current))
            }
            (None, None) => {
                if self.months > MAX_MONTHS {
                    return Err(PeriodError::TooManyMonths { months: i64::from(self.months) });
                }
                // The current week's month is not complete yet.
                let first = Month::of_week(current).plus(-(self.months as i32));
                Ok(MonthSpan { first, count: self.months }.period(false))
            }
            _ => Err(PeriodError::HalfMonthRange),
        }
    }
}

/// Resolves a period given in weeks: an explicit inclusive range of ISO
/// weeks, or the last `weeks` complete weeks before the week that contains
/// `now` (0 means the default of 13).
pub fn resolve_period(
    from_week: Option<&str>,
    to_week: Option<&str>,
    weeks: u32,
    now: DateTime<Utc>,
    tz: Tz,
) -> Result<Period, PeriodError> {
    PeriodRequest { from_week, to_week, weeks, ..PeriodRequest::default() }.resolve(now, tz)
}

/// A DORA performance level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Unknown,
    Low,
    Medium,
    High,
    Elite,
}

/// The level of each of the four keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Levels {
    pub deployment_frequency: Level,
    pub lead_time: Level,
    pub change_failure_rate: Level,
    pub time_to_restore: Level,
}

/// Count and quantiles (hours) of a set of durations.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DurationSummary {
    pub count: u64,
    pub median_hours: Option<f64>,
    pub p75_hours: Option<f64>,
    pub p90_hours: Option<f64>,
}

impl DurationSummary {
    pub fn of(sketch: DurationSketch) -> Self {
        let count = sketch.count();
        match sketch.into_quantiles_hours(&[0.5, 0.75, 0.9]) {
            None => Self::default(),
            Some(q) => Self { count, median_hours: Some(q[0]), p75_hours: Some(q[1]), p90_hours: Some(q[2]) },
        }
    }
}

/// A part of a whole: `rate` is `part / whole`, absent when `whole` is 0.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Ratio {
    pub part: u64,
    pub whole: u64,
}

impl Ratio {
    pub fn rate(&self) -> Option<f64> {
        (self.whole > 0).then(|| self.part as f64 / self.whole as f64)
    }
}

/// Failed deployments by the way they failed; a deployment that failed in
/// several ways counts in each, so these may add up to more than `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FailedBy {
    /// A failure names it among its affected versions.
    pub version: u64,
    /// A failure was attributed to it by time.
    pub time: u64,
    /// A failure transition followed the deployment transition.
    pub transition: u64,
}

/// The figures of a period.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodFigures {
    pub weeks: u32,
    pub deployments: u64,
    pub deployments_per_week: f64,
    pub deployment_days: u64,
    pub lead_time: DurationSummary,
    pub change_failure: Ratio,
    /// How the failed deployments failed.
    pub failed_by: FailedBy,
    pub rework: Ratio,
    pub time_to_restore: DurationSummary,
    pub incidents: u64,
    pub open_incidents: u64,
    pub completed: u64,
    pub excluded: u64,
    pub reopened: u64,
    pub reopen_rate: Option<f64>,
    pub ai_involved: u64,
    pub ai_share: Option<f64>,
    pub levels: Levels,
}

/// Sums of weekly aggregates over some weeks and projects.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub weeks: u32,
    /// Sum of counts and merged sketches (its day mask is unused).
    pub sum: WeeklyAggregate,
    /// Distinct deployment days (a union across projects, per week).
    pub deployment_days: u64,
}

impl Totals {
    /// Totals of the given projects over the given weeks.
    pub fn over(projects: &[&ProjectAggregates], weeks: impl Iterator<Item = IsoWeek>) -> Self {
        Self::walk(projects, weeks, true).1
    }

    /// Totals of each project and of all of them together over the same
    /// weeks, in one pass. For figures only: the AI split of lead times is
    /// left out.
    pub fn each_and_combined(
        projects: &[&ProjectAggregates],
        weeks: impl Iterator<Item = IsoWeek>,
    ) -> (Vec<Totals>, Totals) {
        Self::walk(projects, weeks, false)
    }

    /// One pass over weeks × projects: each project's sums, then the
    /// combined sums merged from them; only the day masks are united week by
    /// week (a day counts once, whichever projects deployed on it).
    fn walk(
        projects: &[&ProjectAggregates],
        weeks: impl Iterator<Item = IsoWeek>,
        ai_split: bool,
    ) -> (Vec<Totals>, Totals) {
        let mut each = vec![Totals::default(); projects.len()];
        let mut combined = Totals::default();
        for week in weeks {
            combined.weeks += 1;
            let mut day_mask = 0u8;
            for (project, totals) in projects.iter().zip(&mut each) {
                if let Some(agg) = project.get(&week) {
                    day_mask |= agg.deployment_days;
                    totals.sum.merge_parts(agg, ai_split);
                    totals.deployment_days += u64::from(agg.deployment_days.count_ones());
                }
            }
            combined.deployment_days += u64::from(day_mask.count_ones());
        }
        for totals in &mut each {
            totals.weeks = combined.weeks;
            combined.sum.merge_parts(&totals.sum, ai_split);
        }
        (each, combined)
    }

    /// The figures these totals stand for.
    pub fn figures(&self) -> PeriodFigures {
        self.clone().into_figures()
    }

    /// [`Self::figures`], reusing the totals' own duration lists.
    pub fn into_figures(self) -> PeriodFigures {
        let s = self.sum;
        let deployments = u64::from(s.deployments);
        let completed = u64::from(s.completed);
        let lead_time = DurationSummary::of(s.lead_time);
        let time_to_restore = DurationSummary::of(s.time_to_restore);
        let change_failure = Ratio { part: u64::from(s.failed_deployments), whole: deployments };
        let share = |part: u32| (completed > 0).then(|| f64::from(part) / completed as f64);
        PeriodFigures {
            weeks: self.weeks,
            deployments,
            deployments_per_week: if self.weeks == 0 { 0.0 } else { deployments as f64 / f64::from(self.weeks) },
            deployment_days: self.deployment_days,
            levels: Levels {
                deployment_frequency: deployment_frequency_level(deployments, self.deployment_days, self.weeks),
                lead_time: lead_time_level(lead_time.median_hours),
                change_failure_rate: change_failure_level(change_failure),
                time_to_restore: restore_level(time_to_restore.median_hours),
            },
            lead_time,
            change_failure,
            failed_by: FailedBy {
                version: u64::from(s.failed_by_version),
                time: u64::from(s.failed_by_time),
                transition: u64::from(s.failed_by_transition),
            },
            rework: Ratio { part: u64::from(s.rework_deployments), whole: deployments },
            time_to_restore,
            incidents: u64::from(s.incidents),
            open_incidents: u64::from(s.open_incidents),
            completed,
            excluded: u64::from(s.excluded),
            reopened: u64::from(s.reopened),
            reopen_rate: share(s.reopened),
            ai_involved: u64::from(s.ai_involved),
            ai_share: share(s.ai_involved),
        }
    }
}

/// How many series points a rolling median spans: the point's own and the
/// three before it.
pub const ROLLING_POINTS: usize = 4;

/// Lead time and time to restore over a window of weeks, from the weeks'
/// duration sketches merged into one: the median of the window's
/// durations, never a median of weekly medians.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RollingDurations {
    pub lead_time: DurationSummary,
    pub time_to_restore: DurationSummary,
}

impl RollingDurations {
    /// The durations of the given projects over the given weeks, merged.
    pub fn over(projects: &[&ProjectAggregates], weeks: impl Iterator<Item = IsoWeek>) -> Self {
        let mut lead_time = DurationSketch::default();
        let mut time_to_restore = DurationSketch::default();
        for week in weeks {
            for agg in projects.iter().filter_map(|p| p.get(&week)) {
                lead_time.merge(&agg.lead_time);
                time_to_restore.merge(&agg.time_to_restore);
            }
        }
        Self { lead_time: DurationSummary::of(lead_time), time_to_restore: DurationSummary::of(time_to_restore) }
    }
}

/// Deployment frequency from deployment days per week: elite ≥ 5, high ≥ 1,
/// medium ≥ 12/52, low > 0; unknown without deployments. Compared in
/// integers, so the cut-offs are exact.
pub fn deployment_frequency_level(deployments: u64, days: u64, weeks: u32) -> Level {
    let weeks = u64::from(weeks);
    if deployments == 0 || weeks == 0 {
        Level::Unknown
    } else if days >= 5 * weeks {
        Level::Elite
    } else if days >= weeks {
        Level::High
    } else if days * 52 >= 12 * weeks {
        Level::Medium
    } else {
        Level::Low
    }
}

/// Lead time from its median: elite < 24 h, high < 168 h, medium < 720 h.
pub fn lead_time_level(median_hours: Option<f64>) -> Level {
    match median_hours {
        None => Level::Unknown,
        Some(h) if h < 24.0 => Level::Elite,
        Some(h) if h < 168.0 => Level::High,
        Some(h) if h < 720.0 => Level::Medium,
        Some(_) => Level::Low,
    }
}

/// Change failure rate: elite ≤ 5 %, high ≤ 10 %, medium ≤ 15 %.
pub fn change_failure_level(r: Ratio) -> Level {
    if r.whole == 0 {
        Level::Unknown
    } else if r.part * 100 <= 5 * r.whole {
        Level::Elite
    } else if r.part * 100 <= 10 * r.whole {
        Level::High
    } else if r.part * 100 <= 15 * r.whole {
        Level::Medium
    } else {
        Level::Low
    }
}

/// Time to restore from its median: elite < 1 h, high < 24 h, medium < 168 h.
pub fn restore_level(median_hours: Option<f64>) -> Level {
    match median_hours {
        None => Level::Unknown,
        Some(h) if h < 1.0 => Level::Elite,
        Some(h) if h < 24.0 => Level::High,
        Some(h) if h < 168.0 => Level::Medium,
        Some(_) => Level::Low,
    }
}

/// Milliseconds to hours.
pub fn hours(ms: Millis) -> f64 {
    ms as f64 / 3_600_000.0
}
