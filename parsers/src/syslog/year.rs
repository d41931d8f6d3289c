//! The year of an RFC 3164 timestamp, which has none.
//!
//! Rule: the latest year that puts the line no more than [`FUTURE_TOLERANCE_SECS`] after the
//! reference time (by default: now, when the line is parsed). Logs are read after they are
//! written, so a line is taken to be from the past, the most recent past that fits: a
//! `Dec 31 23:59:59` line read on Jan 1 is from the year before; a `Jan  1 00:00:01` line
//! read on Dec 31 (the writer's clock a little ahead, or the file read a few seconds before
//! midnight by a reader in another zone) is from the year after. Compared in the configured
//! zone's wall-clock time, so the rule does not depend on DST.

use crate::syslog::timestamp::{MonthDayTime, days_from_civil, days_in_month};

/// How far after the reference time a line may be and still count as this year's: clock
/// skew and zone mistakes are hours, not days.
pub const FUTURE_TOLERANCE_SECS: i64 = 2 * 86_400;

/// Years searched below the reference year: a Feb 29 line needs the last leap year, which
/// is at most 8 years back (1896 -> 1904, 2096 -> 2104).
const YEARS_BACK: i16 = 8;

/// Where "now" is, as wall-clock time in the configured zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference {
    /// The current year there.
    pub year: i16,
    /// Wall-clock seconds since 1970-01-01T00:00:00 (as if the zone were UTC).
    pub civil_seconds: i64,
}

impl Reference {
    /// The reference at wall-clock time `dt`.
    pub fn from_datetime(dt: jiff::civil::DateTime) -> Self {
        Reference {
            year: dt.year(),
            civil_seconds: days_from_civil(dt.year(), dt.month(), dt.day()) * 86_400
                + i64::from(dt.hour()) * 3600
                + i64::from(dt.minute()) * 60
                + i64::from(dt.second()),
        }
    }
}

/// The year of `mdt` seen from `reference`; `None` when no searched year has that date
/// (Feb 30, or Feb 29 with no leap year in range).
pub fn infer(mdt: &MonthDayTime, reference: Reference) -> Option<i16> {
    let limit = reference
        .civil_seconds
        .saturating_add(FUTURE_TOLERANCE_SECS);
    let first = reference.year.checked_add(1)?;
    let last = reference.year.saturating_sub(YEARS_BACK);
    (last..=first).rev().find(|&year| {
        mdt.day <= days_in_month(year, mdt.month)
            && days_from_civil(year, mdt.month, mdt.day) * 86_400 + mdt.time.seconds() <= limit
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syslog::timestamp::TimeOfDay;
    use jiff::civil::{DateTime, date};
    use proptest::prelude::*;

    fn mdt(month: i8, day: i8, hour: i8, minute: i8, second: i8) -> MonthDayTime {
        MonthDayTime {
            month,
            day,
            time: TimeOfDay {
                hour,
                minute,
                second,
                nanos: 0,
            },
        }
    }

    fn at(dt: DateTime) -> Reference {
        Reference::from_datetime(dt)
    }

    #[test]
    fn last_second_of_the_year_read_on_new_years_day_is_last_year() {
        let now = at(date(2025, 1, 1).at(0, 0, 5, 0));
        assert_eq!(infer(&mdt(12, 31, 23, 59, 59), now), Some(2024));
    }

    #[test]
    fn first_second_of_the_year_read_on_new_years_eve_is_next_year() {
        let now = at(date(2024, 12, 31).at(23, 59, 50, 0));
        assert_eq!(infer(&mdt(1, 1, 0, 0, 1), now), Some(2025));
        // Skew up to the tolerance: a whole day ahead still counts as next year's.
        let now = at(date(2024, 12, 31).at(0, 0, 0, 0));
        assert_eq!(infer(&mdt(1, 1, 23, 59, 59), now), Some(2025));
    }

    #[test]
    fn a_line_far_ahead_of_now_is_last_years() {
        let now = at(date(2024, 3, 1).at(12, 0, 0, 0));
        assert_eq!(infer(&mdt(3, 10, 0, 0, 0), now), Some(2023));
        assert_eq!(infer(&mdt(12, 31, 0, 0, 0), now), Some(2023));
        // Just inside the tolerance: this year.
        assert_eq!(infer(&mdt(3, 3, 11, 59, 59), now), Some(2024));
        assert_eq!(infer(&mdt(3, 3, 12, 0, 1), now), Some(2023));
    }

    #[test]
    fn feb_29_goes_back_to_the_last_leap_year() {
        let now = at(date(2027, 6, 1).at(0, 0, 0, 0));
        assert_eq!(infer(&mdt(2, 29, 1, 0, 0), now), Some(2024));
        assert_eq!(infer(&mdt(2, 30, 1, 0, 0), now), None);
    }

    #[test]
    fn year_limits_do_not_overflow() {
        let now = Reference {
            year: i16::MAX,
            civil_seconds: i64::MAX,
        };
        assert_eq!(infer(&mdt(1, 1, 0, 0, 0), now), None);
        let now = Reference {
            year: i16::MIN,
            civil_seconds: i64::MIN,
        };
        assert_eq!(infer(&mdt(1, 1, 0, 0, 0), now), None);
    }

    proptest! {
        /// Any line written up to a year before the reference, or up to the tolerance after
        /// it, gets its true year back, across New Year and leap days.
        #[test]
        fn recent_lines_get_their_true_year(
            ref_secs in 946_684_800i64..4_102_444_800,
            back in -(FUTURE_TOLERANCE_SECS - 1)..360 * 86_400i64,
        ) {
            let civil = |secs: i64| {
                jiff::Timestamp::from_second(secs).unwrap().to_zoned(jiff::tz::TimeZone::UTC).datetime()
            };
            let reference = civil(ref_secs);
            let line = civil(ref_secs - back);
            let md = mdt(line.month(), line.day(), line.hour(), line.minute(), line.second());
            prop_assert_eq!(infer(&md, at(reference)), Some(line.year()));
        }
    }
}
