//! Syslog timestamps: RFC 3164 `Mmm dd hh:mm:ss` (no year, no zone) and RFC 3339.
//!
//! Hand-written digit parsing: these run once per line and must stay cheap.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

/// An RFC 3164 time: month, day and time of day, without year or zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthDayTime {
    /// 1..=12.
    pub month: i8,
    /// 1..=31.
    pub day: i8,
    /// The time of day.
    pub time: TimeOfDay,
}

/// A wall-clock time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOfDay {
    /// 0..=23.
    pub hour: i8,
    /// 0..=59.
    pub minute: i8,
    /// Seconds of the minute.
    pub second: i8,
    /// Fraction of the second, in nanoseconds.
    pub nanos: i32,
}

impl TimeOfDay {
    /// Whole seconds since midnight.
    pub fn seconds(self) -> i64 {
        i64::from(self.hour) * 3600 + i64::from(self.minute) * 60 + i64::from(self.second)
    }
}

/// An RFC 3339 timestamp: an instant when it carries an offset, a civil time otherwise
/// (rsyslog templates without `%z`, Beats' tz-offset sample).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rfc3339 {
    /// The timestamp had an offset (`Z`, `+01:00`, `+0100`).
    Instant(Timestamp),
    /// The timestamp had none: a wall-clock time in the configured zone.
    Civil(DateTime),
}

impl Rfc3339 {
    /// Resolves a civil time in `tz` (see [`resolve`]).
    pub fn in_zone(self, tz: &TimeZone) -> Option<Timestamp> {
        match self {
            Rfc3339::Instant(ts) => Some(ts),
            Rfc3339::Civil(dt) => resolve(dt, tz),
        }
    }
}

/// A civil time in `tz` as an instant. In a fold (the hour repeated when clocks go back)
/// this is the earlier instant; in a gap (the hour skipped when clocks go forward) the time
/// is read with the offset in force before the gap. This is jiff's "compatible" rule, the
/// one RFC 5545 and JavaScript's Temporal use.
pub fn resolve(dt: DateTime, tz: &TimeZone) -> Option<Timestamp> {
    tz.to_ambiguous_timestamp(dt).compatible().ok()
}

/// Parses `Mmm dd hh:mm:ss[.frac]` (day space-padded `Apr  4`, or `Apr 4`, or `Apr 04`).
/// Months are English abbreviations, or the few localized ones [`month`] knows.
/// Returns the time and what follows it; the time must end at a space, newline or the end.
pub fn rfc3164(input: &[u8]) -> Option<(MonthDayTime, &[u8])> {
    let (month, rest) = month(input)?;
    let rest = rest.strip_prefix(b" ")?;
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    let (day, rest) = match rest {
        [d1 @ b'0'..=b'9', d2 @ b'0'..=b'9', rest @ ..] => ((d1 - b'0') * 10 + (d2 - b'0'), rest),
        [d @ b'0'..=b'9', rest @ ..] => (d - b'0', rest),
        _ => return None,
    };
    let rest = rest.strip_prefix(b" ")?;
    let (time, rest) = time_of_day(rest)?;
    if !ends_token(rest) || day == 0 || day > 31 {
        return None;
    }
    let mdt = MonthDayTime {
        month,
        day: day as i8,
        time,
    };
    Some((mdt, rest))
}

/// Parses `YYYY-MM-DDThh:mm:ss[.frac][Z|±hh:mm|±hhmm|±hh]`. Without an offset the result is
/// civil. Returns the timestamp and what follows; it must end at a space, newline or the end.
pub fn rfc3339(input: &[u8]) -> Option<(Rfc3339, &[u8])> {
    let (year, rest) = digits::<4>(input)?;
    let rest = rest.strip_prefix(b"-")?;
    let (month, rest) = digits::<2>(rest)?;
    let rest = rest.strip_prefix(b"-")?;
    let (day, rest) = digits::<2>(rest)?;
    let rest = match rest {
        [b'T' | b't', rest @ ..] => rest,
        _ => return None,
    };
    let (time, rest) = time_of_day(rest)?;
    let (year, month, day) = (year as i16, month as i8, day as i8);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let (offset, rest) = match rest {
        [b'Z' | b'z', rest @ ..] => (Some(0), rest),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (hours, rest) = digits::<2>(rest)?;
            let (minutes, rest) = match rest {
                [b':', rest @ ..] => digits::<2>(rest)?,
                [b'0'..=b'9', ..] => digits::<2>(rest)?,
                _ => (0, rest),
            };
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = i64::from(hours * 3600 + minutes * 60);
            (Some(if *sign == b'-' { -seconds } else { seconds }), rest)
        }
        _ => (None, rest),
    };
    if !ends_token(rest) {
        return None;
    }
    let stamp = match offset {
        Some(offset) => {
            let local = days_from_civil(year, month, day) * 86_400 + time.seconds();
            Rfc3339::Instant(Timestamp::new(local - offset, time.nanos).ok()?)
        }
        None => Rfc3339::Civil(
            DateTime::new(
                year,
                month,
                day,
                time.hour,
                time.minute,
                time.second,
                time.nanos,
            )
            .ok()?,
        ),
    };
    Some((stamp, rest))
}

/// `hh:mm:ss[.frac]`. A leap second (`:60`) is kept as `:59`: jiff has no leap seconds.
/// Fractions beyond nanoseconds are read and dropped.
fn time_of_day(input: &[u8]) -> Option<(TimeOfDay, &[u8])> {
    let (hour, rest) = digits::<2>(input)?;
    let rest = rest.strip_prefix(b":")?;
    let (minute, rest) = digits::<2>(rest)?;
    let rest = rest.strip_prefix(b":")?;
    let (second, mut rest) = digits::<2>(rest)?;
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut nanos = 0i32;
    if let [b'.' | b',', frac @ ..] = rest {
        let len = frac.iter().take_while(|b| b.is_ascii_digit()).count();
        if len == 0 {
            return None;
        }
        for i in 0..9 {
            let digit = frac.get(i).filter(|_| i < len).map_or(0, |b| b - b'0');
            nanos = nanos * 10 + i32::from(digit);
        }
        rest = &frac[len..];
    }
    let time = TimeOfDay {
        hour: hour as i8,
        minute: minute as i8,
        second: second.min(59) as i8,
        nanos,
    };
    Some((time, rest))
}

/// Exactly `N` ASCII digits.
fn digits<const N: usize>(input: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = input.split_first_chunk::<N>()?;
    let mut value = 0u32;
    for b in head {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(b - b'0');
    }
    Some((value, rest))
}

fn ends_token(rest: &[u8]) -> bool {
    matches!(rest.first(), None | Some(b' ' | b'\n'))
}

/// Month names localized the way glibc's `%b` writes them (journalctl, `date`, some syslog
/// daemons): French, German and Spanish, compared after ASCII lower-casing. English goes
/// through the fast path in [`month`].
const LOCALIZED_MONTHS: [(&str, i8); 29] = [
    // fr_FR
    ("janv.", 1),
    ("févr.", 2),
    ("mars", 3),
    ("avr.", 4),
    ("avril", 4),
    ("mai", 5),
    ("juin", 6),
    ("juil.", 7),
    ("août", 8),
    ("sept.", 9),
    ("oct.", 10),
    ("nov.", 11),
    ("déc.", 12),
    // de_DE (`Mai` is French too; the rest coincide with English)
    ("mär", 3),
    ("mrz", 3),
    ("okt", 10),
    ("dez", 12),
    // es_ES (the rest coincide with English)
    ("ene", 1),
    ("abr", 4),
    ("ago", 8),
    ("dic", 12),
    // French and Spanish without the abbreviation dot, as some locales write them
    ("janv", 1),
    ("févr", 2),
    ("avr", 4),
    ("juil", 7),
    ("sept", 9),
    ("déc", 12),
    ("fevr", 2),
    ("aout", 8),
];

/// A month name at the start of `input`, and what follows it.
fn month(input: &[u8]) -> Option<(i8, &[u8])> {
    if let Some((abbr, rest)) = input.split_first_chunk::<3>() {
        if rest.first() == Some(&b' ') {
            if let Some(m) = crate::time::month_from_abbr(abbr) {
                return Some((m, rest));
            }
        }
    }
    let end = memchr::memchr(b' ', &input[..input.len().min(8)])?;
    let (name, rest) = input.split_at(end);
    let mut lower = [0u8; 8];
    let lower = &mut lower[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    LOCALIZED_MONTHS
        .iter()
        .find(|(n, _)| n.as_bytes() == lower)
        .map(|&(_, m)| (m, rest))
}

/// Whether `year` has a February 29 (proleptic Gregorian).
pub fn is_leap(year: i16) -> bool {
    let y = i32::from(year);
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// Days in `month` (1..=12) of `year`.
pub fn days_in_month(year: i16, month: i8) -> i8 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i16, month: i8, day: i8) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn rfc3164_day_padding_variants() {
        for line in ["Apr  4 03:39:57 x", "Apr 4 03:39:57 x", "Apr 04 03:39:57 x"] {
            let (mdt, rest) = rfc3164(line.as_bytes()).unwrap();
            assert_eq!((mdt.month, mdt.day), (4, 4), "{line}");
            assert_eq!(mdt.time.seconds(), 3 * 3600 + 39 * 60 + 57);
            assert_eq!(rest, b" x");
        }
    }

    #[test]
    fn rfc3164_fraction_and_rejects() {
        let (mdt, _) = rfc3164(b"Dec 31 23:59:59.250").unwrap();
        assert_eq!(mdt.time.nanos, 250_000_000);
        for bad in [
            "Foo  4 03:39:57",
            "Apr 32 03:39:57",
            "Apr  0 03:39:57",
            "Apr  4 24:00:00",
            "Apr  4 03:60:00",
            "Apr  4 03:39",
            "Apr  4 03:39:57x",
            "Apr   4 03:39:57",
            "Apr",
            "",
        ] {
            assert!(rfc3164(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn localized_months() {
        for (line, month) in [
            ("août 19 11:08:37", 8),
            ("Août 19 11:08:37", 8),
            ("janv. 19 11:08:37", 1),
            ("déc. 19 11:08:37", 12),
            ("Mär 19 11:08:37", 3),
            ("Okt 19 11:08:37", 10),
            ("ene 19 11:08:37", 1),
            ("DEC 19 11:08:37", 12),
        ] {
            assert_eq!(rfc3164(line.as_bytes()).unwrap().0.month, month, "{line}");
        }
        assert!(rfc3164("aoû 19 11:08:37".as_bytes()).is_none());
    }

    #[test]
    fn rfc3339_offsets() {
        let cases = [
            (
                "2024-01-05T10:00:00.123456+01:00",
                "2024-01-05T09:00:00.123456Z",
            ),
            ("2024-01-05T10:00:00Z", "2024-01-05T10:00:00Z"),
            ("2024-01-05t10:00:00z", "2024-01-05T10:00:00Z"),
            ("1986-04-26T01:23:45.101+0400", "1986-04-25T21:23:45.101Z"),
            ("2019-06-14T13:01:15.412+01:30", "2019-06-14T11:31:15.412Z"),
            ("2019-06-14T13:01:15-05", "2019-06-14T18:01:15Z"),
            ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59Z"),
            (
                "2024-01-05T10:00:00.1234567891Z",
                "2024-01-05T10:00:00.123456789Z",
            ),
        ];
        for (input, want) in cases {
            let (stamp, rest) = rfc3339(input.as_bytes()).unwrap();
            assert_eq!(stamp, Rfc3339::Instant(ts(want)), "{input}");
            assert!(rest.is_empty());
        }
    }

    #[test]
    fn rfc3339_without_offset_is_civil() {
        let (stamp, rest) = rfc3339(b"2019-06-14T10:40:20.912134 localhost").unwrap();
        assert_eq!(
            stamp,
            Rfc3339::Civil(date(2019, 6, 14).at(10, 40, 20, 912_134_000))
        );
        assert_eq!(rest, b" localhost");
        let paris = TimeZone::get("Europe/Paris").unwrap();
        assert_eq!(
            stamp.in_zone(&paris),
            Some(ts("2019-06-14T08:40:20.912134Z"))
        );
    }

    #[test]
    fn rfc3339_rejects() {
        for bad in [
            "2024-13-05T10:00:00Z",
            "2023-02-29T10:00:00Z",
            "2024-01-05 10:00:00Z",
            "2024-01-05T10:00:00+2",
            "2024-01-05T10:00:00+24:00",
            "2024-01-05T10:00:00.Z",
            "2024-01-05T10:00:00Zx",
            "2024-1-05T10:00:00Z",
        ] {
            assert!(rfc3339(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn ambiguous_times_take_the_earlier_instant() {
        let ny = TimeZone::get("America/New_York").unwrap();
        // 01:30 happens twice on 2024-11-03: EDT (-4) first.
        let fold = date(2024, 11, 3).at(1, 30, 0, 0);
        assert_eq!(resolve(fold, &ny), Some(ts("2024-11-03T05:30:00Z")));
        // 02:30 does not exist on 2024-03-10: read with EST (-5), the offset before the gap.
        let gap = date(2024, 3, 10).at(2, 30, 0, 0);
        assert_eq!(resolve(gap, &ny), Some(ts("2024-03-10T07:30:00Z")));
    }

    #[test]
    fn days_from_civil_matches_jiff() {
        for (y, m, d) in [
            (1970, 1, 1),
            (2000, 2, 29),
            (1969, 12, 31),
            (2024, 3, 1),
            (1, 1, 1),
        ] {
            let want = date(y, m, d)
                .to_zoned(TimeZone::UTC)
                .unwrap()
                .timestamp()
                .as_second()
                / 86_400;
            assert_eq!(days_from_civil(y, m, d), want, "{y}-{m}-{d}");
        }
    }
}
