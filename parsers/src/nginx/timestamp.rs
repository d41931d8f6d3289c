//! nginx's time variables, read by hand: they are fixed-width, and going through a
//! general-purpose parser for every line would cost more than the rest of the line.

use jiff::Timestamp;

use crate::time::month_from_abbr;

/// `$time_local`: `10/Oct/2000:13:55:36 -0700`.
pub(crate) fn time_local(s: &[u8]) -> Option<Timestamp> {
    let [
        d1,
        d2,
        b'/',
        m1,
        m2,
        m3,
        b'/',
        y1,
        y2,
        y3,
        y4,
        b':',
        h1,
        h2,
        b':',
        n1,
        n2,
        b':',
        s1,
        s2,
        b' ',
        sign,
        oh1,
        oh2,
        om1,
        om2,
    ] = *s
    else {
        return None;
    };
    let month = month_from_abbr(&[m1, m2, m3])?;
    let civil = Civil {
        year: digits(&[y1, y2, y3, y4])?,
        month: month as u32,
        day: digits(&[d1, d2])?,
        hour: digits(&[h1, h2])?,
        minute: digits(&[n1, n2])?,
        second: digits(&[s1, s2])?,
    };
    let offset = offset_seconds(sign, digits(&[oh1, oh2])?, digits(&[om1, om2])?)?;
    civil.to_timestamp(offset, 0)
}

/// `$time_iso8601`: `2000-10-10T13:55:36-07:00` (also `Z`, which nginx does not write but
/// people converting logs do).
pub(crate) fn time_iso8601(s: &[u8]) -> Option<Timestamp> {
    let (date_time, zone) = s.split_at_checked(19)?;
    let [
        y1,
        y2,
        y3,
        y4,
        b'-',
        m1,
        m2,
        b'-',
        d1,
        d2,
        b'T',
        h1,
        h2,
        b':',
        n1,
        n2,
        b':',
        s1,
        s2,
    ] = *date_time
    else {
        return None;
    };
    let offset = match *zone {
        [b'Z'] => 0,
        [sign, oh1, oh2, b':', om1, om2] => {
            offset_seconds(sign, digits(&[oh1, oh2])?, digits(&[om1, om2])?)?
        }
        _ => return None,
    };
    let civil = Civil {
        year: digits(&[y1, y2, y3, y4])?,
        month: digits(&[m1, m2])?,
        day: digits(&[d1, d2])?,
        hour: digits(&[h1, h2])?,
        minute: digits(&[n1, n2])?,
        second: digits(&[s1, s2])?,
    };
    civil.to_timestamp(offset, 0)
}

/// `$msec`: `971211336.123`.
pub(crate) fn msec(s: &[u8]) -> Option<Timestamp> {
    let dot = memchr::memchr(b'.', s)?;
    let (secs, frac) = (s.get(..dot)?, s.get(dot + 1..)?);
    if secs.is_empty() || secs.len() > 12 || frac.len() != 3 {
        return None;
    }
    let seconds = i64::from(digits(secs)?);
    let millis = i64::from(digits(frac)?);
    Timestamp::from_millisecond(seconds * 1000 + millis).ok()
}

/// A wall-clock date and time, validated.
pub(crate) struct Civil {
    pub(crate) year: u32,
    pub(crate) month: u32,
    pub(crate) day: u32,
    pub(crate) hour: u32,
    pub(crate) minute: u32,
    pub(crate) second: u32,
}

impl Civil {
    /// The instant this wall-clock time names at `offset` seconds east of UTC.
    /// A leap second (`:60`) lands on the next minute's first second.
    pub(crate) fn to_timestamp(&self, offset: i64, nanos: i32) -> Option<Timestamp> {
        if !(1..=12).contains(&self.month)
            || self.day == 0
            || self.day > days_in_month(self.year, self.month)
            || self.hour > 23
            || self.minute > 59
            || self.second > 60
        {
            return None;
        }
        let days = days_from_civil(i64::from(self.year), self.month, self.day);
        let seconds = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - offset;
        Timestamp::new(seconds, nanos).ok()
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn offset_seconds(sign: u8, hours: u32, minutes: u32) -> Option<i64> {
    if hours > 23 || minutes > 59 {
        return None;
    }
    let magnitude = i64::from(hours * 3600 + minutes * 60);
    match sign {
        b'+' => Some(magnitude),
        b'-' => Some(-magnitude),
        _ => None,
    }
}

/// Decimal digits to a number; `None` if any byte is not a digit or there are more than 9.
pub(crate) fn digits(bytes: &[u8]) -> Option<u32> {
    if bytes.is_empty() || bytes.len() > 9 {
        return None;
    }
    bytes.iter().try_fold(0u32, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn time_local_with_offsets() {
        assert_eq!(
            time_local(b"10/Oct/2000:13:55:36 -0700"),
            Some(ts("2000-10-10T20:55:36Z"))
        );
        assert_eq!(
            time_local(b"07/Dec/2016:11:05:07 +0100"),
            Some(ts("2016-12-07T10:05:07Z"))
        );
        assert_eq!(
            time_local(b"29/Feb/2024:00:00:00 +0530"),
            Some(ts("2024-02-28T18:30:00Z"))
        );
    }

    #[test]
    fn time_local_rejects_impossible_dates_and_bad_shapes() {
        for bad in [
            &b"29/Feb/2023:00:00:00 +0000"[..],
            b"31/Apr/2023:00:00:00 +0000",
            b"10/Foo/2000:13:55:36 -0700",
            b"10/Oct/2000:24:55:36 -0700",
            b"10/Oct/2000:13:55:36 *0700",
            b"10/Oct/2000:13:55:36 -07000",
            b"1/Oct/2000:13:55:36 -0700",
            b"",
        ] {
            assert_eq!(time_local(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn iso8601_with_offset_and_z() {
        assert_eq!(
            time_iso8601(b"2000-10-10T13:55:36-07:00"),
            Some(ts("2000-10-10T20:55:36Z"))
        );
        assert_eq!(
            time_iso8601(b"2000-10-10T13:55:36Z"),
            Some(ts("2000-10-10T13:55:36Z"))
        );
        assert_eq!(time_iso8601(b"2000-10-10 13:55:36-07:00"), None);
        assert_eq!(time_iso8601(b"2000-10-10T13:55:36-0700"), None);
    }

    #[test]
    fn msec_keeps_milliseconds() {
        assert_eq!(msec(b"971211336.123"), Some(ts("2000-10-10T20:55:36.123Z")));
        assert_eq!(msec(b"971211336"), None);
        assert_eq!(msec(b"97121x336.123"), None);
    }

    #[test]
    fn civil_arithmetic_agrees_with_jiff_over_many_days() {
        let mut date = jiff::civil::date(1969, 12, 25);
        for _ in 0..(366 * 60) {
            let civil = Civil {
                year: date.year() as u32,
                month: date.month() as u32,
                day: date.day() as u32,
                hour: 23,
                minute: 59,
                second: 58,
            };
            let expected = date
                .at(23, 59, 58, 0)
                .to_zoned(jiff::tz::TimeZone::UTC)
                .unwrap()
                .timestamp();
            assert_eq!(civil.to_timestamp(0, 0), Some(expected), "{date}");
            date = date.tomorrow().unwrap();
        }
    }
}
