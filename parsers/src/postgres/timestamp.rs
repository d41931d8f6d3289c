//! PostgreSQL's log timestamps: `2024-01-05 10:00:00[.123] ZONE` (`%m`, `%t`, `%s`, csvlog,
//! jsonlog) and `1704448800.123` (`%n`).

use jiff::Timestamp;
use jiff::civil::DateTime;

use super::zone::{self, ZoneError};

/// A timestamp as scanned, before its zone is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LocalTime<'a> {
    pub civil: DateTime,
    pub zone: &'a [u8],
}

impl LocalTime<'_> {
    pub(crate) fn resolve(&self) -> Result<Timestamp, ZoneError> {
        zone::resolve(self.civil, self.zone)
    }
}

/// Scans `YYYY-MM-DD HH:MM:SS[.fraction] ZONE` at the start of `input`; returns it and the
/// number of bytes it spans. The zone is letters (`CEST`) or a signed number (`+03`, `-03:30`).
pub(crate) fn scan(input: &[u8]) -> Option<(LocalTime<'_>, usize)> {
    let head = input.get(..19)?;
    let year = num(head.get(0..4)?)?;
    let month = num(head.get(5..7)?)?;
    let day = num(head.get(8..10)?)?;
    let hour = num(head.get(11..13)?)?;
    let minute = num(head.get(14..16)?)?;
    let second = num(head.get(17..19)?)?;
    if head.get(4) != Some(&b'-')
        || head.get(7) != Some(&b'-')
        || head.get(10) != Some(&b' ')
        || head.get(13) != Some(&b':')
        || head.get(16) != Some(&b':')
    {
        return None;
    }
    let mut pos = 19;
    let mut nanos = 0i32;
    if input.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        let mut scale = 100_000_000;
        while let Some(&b) = input.get(pos).filter(|b| b.is_ascii_digit()) {
            nanos += i32::from(b - b'0') * scale;
            scale /= 10;
            pos += 1;
        }
        if pos == start {
            return None;
        }
    }
    if input.get(pos) != Some(&b' ') {
        return None;
    }
    pos += 1;
    let zone_len = scan_zone(input.get(pos..)?)?;
    let civil = DateTime::new(
        year as i16,
        month as i8,
        day as i8,
        hour as i8,
        minute as i8,
        second as i8,
        nanos,
    )
    .ok()?;
    let zone = input.get(pos..pos + zone_len)?;
    Some((LocalTime { civil, zone }, pos + zone_len))
}

/// Parses a whole timestamp field (csvlog, jsonlog): nothing may follow the zone.
pub(crate) fn parse_exact(input: &[u8]) -> Option<LocalTime<'_>> {
    match scan(input) {
        Some((time, len)) if len == input.len() => Some(time),
        _ => None,
    }
}

fn scan_zone(input: &[u8]) -> Option<usize> {
    let len = match input.first()? {
        b'+' | b'-' => {
            1 + input
                .get(1..)?
                .iter()
                .take_while(|b| b.is_ascii_digit() || **b == b':')
                .count()
        }
        _ => input.iter().take_while(|b| b.is_ascii_alphabetic()).count(),
    };
    (len > 0).then_some(len)
}

/// Scans `%n`: Unix seconds, a dot, milliseconds.
pub(crate) fn scan_epoch(input: &[u8]) -> Option<(Timestamp, usize)> {
    let secs_len = input.iter().take_while(|b| b.is_ascii_digit()).count();
    if secs_len == 0 || secs_len > 12 || input.get(secs_len) != Some(&b'.') {
        return None;
    }
    let frac = input.get(secs_len + 1..)?;
    let frac_len = frac.iter().take_while(|b| b.is_ascii_digit()).count();
    if frac_len == 0 || frac_len > 9 {
        return None;
    }
    let secs = input
        .get(..secs_len)?
        .iter()
        .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0'));
    let mut nanos = 0i32;
    let mut scale = 100_000_000;
    for &b in frac.get(..frac_len)? {
        nanos += i32::from(b - b'0') * scale;
        scale /= 10;
    }
    let ts = Timestamp::new(secs, nanos).ok()?;
    Some((ts, secs_len + 1 + frac_len))
}

fn num(bytes: &[u8]) -> Option<i32> {
    bytes.iter().try_fold(0i32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + i32::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_millis_and_zone() {
        let (t, len) = scan(b"2017-07-31 13:36:42.585 CEST [4974]").unwrap();
        assert_eq!(len, 28);
        assert_eq!(t.zone, b"CEST");
        assert_eq!(
            t.resolve().unwrap(),
            "2017-07-31T11:36:42.585Z".parse::<Timestamp>().unwrap()
        );
    }

    #[test]
    fn scans_seconds_and_numeric_zone() {
        let (t, len) = scan(b"2024-01-05 10:00:00 +03|x").unwrap();
        assert_eq!(len, 23);
        assert_eq!(
            t.resolve().unwrap(),
            "2024-01-05T07:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert!(parse_exact(b"2021-01-04 00:21:42 UTC").is_some());
        assert!(parse_exact(b"2021-01-04 00:21:42 UTC ").is_none());
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            &b"2017-07-31 13:36:42.585"[..],
            b"2017-07-31T13:36:42 UTC",
            b"2017-13-31 13:36:42 UTC",
            b"2017-07-31 13:36:42. UTC",
            b"2017-07-31 13:36:42 [",
            b"20x7-07-31 13:36:42 UTC",
            b"",
        ] {
            assert!(scan(bad).is_none(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn epoch_with_millis() {
        let (ts, len) = scan_epoch(b"1704448800.123 [1]").unwrap();
        assert_eq!(len, 14);
        assert_eq!(ts, "2024-01-05T10:00:00.123Z".parse::<Timestamp>().unwrap());
        assert!(scan_epoch(b"1704448800").is_none());
        assert!(scan_epoch(b".5").is_none());
        assert!(scan_epoch(b"99999999999999999.1").is_none());
    }
}
