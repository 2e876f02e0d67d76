//! ISO weeks, months of weeks, and the reporting time zone.
//!
//! Aggregates are bucketed by ISO week (Monday 00:00 to the next Monday
//! 00:00) in the reporting time zone. An `IsoWeek` is stored as a week
//! number counted from a fixed Monday, so ranges and arithmetic are plain
//! integer operations; it is shown as `YYYY-Www` by its ISO year.
//!
//! A [`Month`] is the set of ISO weeks whose Thursday falls in a calendar
//! month (the rule that gives a week its ISO year), so months tile the weeks
//! with no gap or overlap and each has 4 or 5 whole weeks.

use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::facts::Millis;

/// Monday 1970-01-05, the first Monday after the Unix epoch: week 0.
const EPOCH_MONDAY_DAYS_FROM_CE: i32 = 719_167;

/// An ISO week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IsoWeek(i32);

/// A week name that is not `YYYY-Www` or names a week that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("`{0}` is not an ISO week like \"2026-W05\"")]
pub struct WeekParseError(pub String);

impl IsoWeek {
    /// The week that contains a calendar date.
    pub fn of_date(date: NaiveDate) -> Self {
        let days = date.num_days_from_ce() - EPOCH_MONDAY_DAYS_FROM_CE;
        Self(days.div_euclid(7))
    }

    /// The week that contains an instant, in the given time zone.
    pub fn of_instant(at: Millis, tz: Tz) -> Self {
        Self::of_date(local_date(at, tz))
    }

    /// Parses `YYYY-Www` (`2026-W05`; `2026-w5` is accepted too).
    pub fn parse(text: &str) -> Result<Self, WeekParseError> {
        let err = || WeekParseError(text.to_owned());
        let (year, week) = text.trim().split_once(['-']).ok_or_else(err)?;
        let week = week.strip_prefix(['W', 'w']).ok_or_else(err)?;
        if year.len() != 4 || week.is_empty() || week.len() > 2 {
            return Err(err());
        }
        let year: i32 = year.parse().map_err(|_| err())?;
        let week: u32 = week.parse().map_err(|_| err())?;
        let monday = NaiveDate::from_isoywd_opt(year, week, Weekday::Mon).ok_or_else(err)?;
        Ok(Self::of_date(monday))
    }

    /// The Monday that starts the week.
    pub fn monday(self) -> NaiveDate {
        NaiveDate::from_num_days_from_ce_opt(EPOCH_MONDAY_DAYS_FROM_CE + self.0 * 7)
            .expect("IsoWeek is always within chrono's range")
    }

    /// The week `n` weeks later (earlier for negative `n`).
    pub fn plus(self, n: i32) -> Self {
        Self(self.0 + n)
    }

    /// Number of weeks from `self` to `other` (positive when `other` is
    /// later).
    pub fn weeks_until(self, other: Self) -> i32 {
        other.0 - self.0
    }

    /// The first instant of the week in the time zone.
    pub fn start(self, tz: Tz) -> DateTime<Utc> {
        local_midnight(self.monday(), tz)
    }
}

impl fmt::Display for IsoWeek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let iso = self.monday().iso_week();
        write!(f, "{:04}-W{:02}", iso.year(), iso.week())
    }
}

/// A calendar month as a run of whole ISO weeks: the weeks whose Thursday
/// falls in it. Stored as months counted from January of year 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month(i32);

/// A month name that is not `YYYY-MM`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("`{0}` is not a month like \"2026-03\"")]
pub struct MonthParseError(pub String);

impl Month {
    /// The calendar month `month` (1..=12) of `year`.
    pub fn new(year: i32, month: u32) -> Option<Self> {
        (1..=12).contains(&month).then(|| Self(year * 12 + month as i32 - 1))
    }

    /// The month a week belongs to: the one holding the week's Thursday.
    pub fn of_week(week: IsoWeek) -> Self {
        let thursday = week.monday() + Duration::days(3);
        Self::new(thursday.year(), thursday.month()).expect("chrono months are 1..=12")
    }

    /// Parses `YYYY-MM` (`2026-03`).
    pub fn parse(text: &str) -> Result<Self, MonthParseError> {
        let err = || MonthParseError(text.to_owned());
        let (year, month) = text.trim().split_once('-').ok_or_else(err)?;
        if year.len() != 4 || month.len() != 2 || !(year.bytes().chain(month.bytes())).all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let (year, month): (i32, u32) = (year.parse().map_err(|_| err())?, month.parse().map_err(|_| err())?);
        Self::new(year, month).ok_or_else(err)
    }

    pub fn year(self) -> i32 {
        self.0.div_euclid(12)
    }

    /// 1..=12.
    pub fn month(self) -> u32 {
        self.0.rem_euclid(12) as u32 + 1
    }

    /// The month `n` months later (earlier for negative `n`).
    pub fn plus(self, n: i32) -> Self {
        Self(self.0 + n)
    }

    /// Number of months from `self` to `other` (positive when `other` is
    /// later).
    pub fn months_until(self, other: Self) -> i32 {
        other.0 - self.0
    }

    /// The first week of the month: the week that holds the month's first
    /// Thursday.
    pub fn first_week(self) -> IsoWeek {
        let first_day = NaiveDate::from_ymd_opt(self.year(), self.month(), 1).expect("a valid month");
        // Days from the 1st to the first Thursday: Thu → 0, Fri → 6, …, Wed → 1.
        let to_thursday = (3 + 7 - first_day.weekday().num_days_from_monday()) % 7;
        IsoWeek::of_date(first_day + Duration::days(i64::from(to_thursday)))
    }

    /// The number of weeks in the month (4 or 5).
    pub fn weeks(self) -> u32 {
        self.first_week().weeks_until(self.plus(1).first_week()) as u32
    }

    /// The last week of the month.
    pub fn last_week(self) -> IsoWeek {
        self.plus(1).first_week().plus(-1)
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.month())
    }
}

/// The calendar date of an instant in the time zone.
pub fn local_date(at: Millis, tz: Tz) -> NaiveDate {
    utc(at).with_timezone(&tz).date_naive()
}

/// Day of the week of a date, Monday = 0.
pub fn weekday_index(date: NaiveDate) -> u8 {
    date.weekday().num_days_from_monday() as u8
}

/// A Unix-millisecond instant as a UTC date-time (out-of-range values clamp).
pub fn utc(at: Millis) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at).unwrap_or(if at < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// 00:00 of a date in a time zone; where a DST change skips midnight, the
/// first instant of that day.
fn local_midnight(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let mut local: NaiveDateTime = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    for _ in 0..4 {
        if let Some(t) = tz.from_local_datetime(&local).earliest() {
            return t.with_timezone(&Utc);
        }
        local += Duration::minutes(30);
    }
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight exists"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn ms(rfc3339: &str) -> Millis {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_millis()
    }

    #[test]
    fn iso_week_names_follow_the_iso_year_around_new_year() {
        let check = |date: NaiveDate, name: &str| assert_eq!(IsoWeek::of_date(date).to_string(), name, "{date}");
        check(d(2025, 12, 28), "2025-W52"); // Sunday
        check(d(2025, 12, 29), "2026-W01"); // Monday: 2026-W01 starts in December 2025
        check(d(2026, 1, 4), "2026-W01");
        check(d(2026, 1, 5), "2026-W02");
        check(d(2020, 12, 31), "2020-W53");
        check(d(2021, 1, 3), "2020-W53");
        check(d(2021, 1, 4), "2021-W01");
        check(d(1969, 12, 31), "1970-W01");
    }

    #[test]
    fn week_names_parse_back_and_bad_ones_are_refused() {
        for name in ["2026-W01", "2020-W53", "2025-W52", "1999-W10"] {
            assert_eq!(IsoWeek::parse(name).unwrap().to_string(), name);
        }
        assert_eq!(IsoWeek::parse("2026-w5").unwrap().to_string(), "2026-W05");
        for bad in ["", "2026", "2026-05", "2026-W00", "2026-W54", "2025-W53", "26-W05", "2026-W5x", "2026-W123"] {
            assert!(IsoWeek::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn an_instant_falls_in_the_week_of_the_reporting_zone() {
        // Sunday 23:30 UTC is already Monday in Berlin.
        let at = ms("2026-03-01T23:30:00Z");
        assert_eq!(IsoWeek::of_instant(at, chrono_tz::UTC).to_string(), "2026-W09");
        assert_eq!(IsoWeek::of_instant(at, chrono_tz::Europe::Berlin).to_string(), "2026-W10");
        // Monday 03:00 UTC is still Sunday in New York.
        let at = ms("2026-03-02T03:00:00Z");
        assert_eq!(IsoWeek::of_instant(at, chrono_tz::America::New_York).to_string(), "2026-W09");
    }

    #[test]
    fn a_month_is_the_weeks_whose_thursday_falls_in_it() {
        let check = |month: &str, first: &str, last: &str, weeks: u32| {
            let m = Month::parse(month).unwrap();
            assert_eq!(m.to_string(), month);
            assert_eq!(
                (m.first_week().to_string(), m.last_week().to_string(), m.weeks()),
                (first.into(), last.into(), weeks),
                "{month}"
            );
            assert_eq!(Month::of_week(m.first_week()), m);
            assert_eq!(Month::of_week(m.last_week()), m);
            assert_eq!(Month::of_week(m.first_week().plus(-1)), m.plus(-1));
            assert_eq!(Month::of_week(m.last_week().plus(1)), m.plus(1));
        };
        // Across year boundaries: 2026-W01 (Mon 2025-12-29, Thu 2026-01-01)
        // belongs to January 2026, so December 2025 ends with W52.
        check("2025-12", "2025-W49", "2025-W52", 4);
        check("2026-01", "2026-W01", "2026-W05", 5); // Thursdays 1, 8, 15, 22, 29
        // 2020-W53 (Thu 2020-12-31) is December's fifth week.
        check("2020-12", "2020-W49", "2020-W53", 5);
        check("2021-01", "2021-W01", "2021-W04", 4);
        // 5-week months: the month has five Thursdays.
        check("2026-04", "2026-W14", "2026-W18", 5); // Thursdays 2, 9, 16, 23, 30
        check("2026-07", "2026-W27", "2026-W31", 5);
        check("2026-02", "2026-W06", "2026-W09", 4);
        // A month starting on Thursday or on Friday.
        check("2026-10", "2026-W40", "2026-W44", 5); // Oct 1 is a Thursday
        check("2026-05", "2026-W19", "2026-W22", 4); // May 1 is a Friday
    }

    #[test]
    fn months_tile_the_weeks_without_gap_or_overlap() {
        let mut m = Month::parse("1999-01").unwrap();
        let mut expected_first = m.first_week();
        let mut total = 0;
        while m < Month::parse("2031-01").unwrap() {
            assert_eq!(m.first_week(), expected_first, "{m}");
            assert!((4..=5).contains(&m.weeks()), "{m}");
            total += m.weeks();
            expected_first = m.last_week().plus(1);
            m = m.plus(1);
        }
        // 32 years of weeks.
        assert_eq!(total as i32, Month::parse("1999-01").unwrap().first_week().weeks_until(m.first_week()));
    }

    #[test]
    fn month_names_parse_back_and_bad_ones_are_refused() {
        assert_eq!(Month::parse("2026-03").unwrap(), Month::new(2026, 3).unwrap());
        assert_eq!(Month::parse("2026-01").unwrap().plus(-1).to_string(), "2025-12");
        assert_eq!(Month::parse("2025-11").unwrap().months_until(Month::parse("2026-02").unwrap()), 3);
        for bad in [
            "",
            "2026",
            "2026-3",
            "2026-13",
            "2026-00",
            "26-03",
            "2026-W03",
            "2026/03",
            "2026-03-01",
            "+026-03",
            "2026--3",
        ] {
            assert!(Month::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn week_start_is_local_monday_midnight() {
        let w = IsoWeek::parse("2026-W10").unwrap();
        assert_eq!(w.start(chrono_tz::UTC).to_rfc3339(), "2026-03-02T00:00:00+00:00");
        assert_eq!(w.start(chrono_tz::Europe::Berlin).to_rfc3339(), "2026-03-01T23:00:00+00:00");
        assert_eq!(w.plus(1).start(chrono_tz::UTC).to_rfc3339(), "2026-03-09T00:00:00+00:00");
    }
}
