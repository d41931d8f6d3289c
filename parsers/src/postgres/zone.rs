//! Time zone abbreviations as PostgreSQL prints them (`%Z` of `log_timezone`), resolved to
//! UTC offsets.
//!
//! The table is PostgreSQL's own `timezonesets/Default` (src/timezone/tznames/Default), which
//! is what the server itself accepts on input, plus a few abbreviations current tzdata prints
//! that the Default set lacks (WEST, CAT, WIB, ...). Where Default names an IANA zone instead
//! of a fixed offset (MSK → Europe/Moscow), the zone's offset at that moment is used when the
//! tz database is available, with today's offset as fallback.
//!
//! Ambiguous abbreviations follow Default: IST is Israel (+02), CST is US Central, EST US
//! Eastern, BST British Summer Time.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};

/// What an abbreviation means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meaning {
    /// A fixed offset in seconds east of UTC.
    Fixed(i32),
    /// An IANA zone whose offset varied over the years, and its current offset.
    Dynamic(&'static str, i32),
}

use Meaning::{Dynamic, Fixed};

/// Sorted by abbreviation (binary search).
const ABBREVIATIONS: &[(&str, Meaning)] = &[
    ("ACDT", Fixed(37800)),
    ("ACSST", Fixed(37800)),
    ("ACST", Fixed(34200)),
    ("ACT", Fixed(-18000)),
    ("ACWST", Fixed(31500)),
    ("ADT", Fixed(-10800)),
    ("AEDT", Fixed(39600)),
    ("AESST", Fixed(39600)),
    ("AEST", Fixed(36000)),
    ("AFT", Fixed(16200)),
    ("AKDT", Fixed(-28800)),
    ("AKST", Fixed(-32400)),
    ("ALMST", Fixed(25200)),
    ("ALMT", Fixed(21600)),
    ("AMST", Dynamic("Asia/Yerevan", 14400)),
    ("AMT", Fixed(-14400)),
    ("ANAST", Dynamic("Asia/Anadyr", 43200)),
    ("ANAT", Dynamic("Asia/Anadyr", 43200)),
    ("ARST", Dynamic("America/Argentina/Buenos_Aires", -10800)),
    ("ART", Dynamic("America/Argentina/Buenos_Aires", -10800)),
    ("AST", Fixed(-14400)),
    ("AWSST", Fixed(32400)),
    ("AWST", Fixed(28800)),
    ("AZOST", Fixed(0)),
    ("AZOT", Fixed(-3600)),
    ("AZST", Dynamic("Asia/Baku", 14400)),
    ("AZT", Dynamic("Asia/Baku", 14400)),
    ("BDST", Fixed(7200)),
    ("BDT", Fixed(21600)),
    ("BNT", Fixed(28800)),
    ("BORT", Fixed(28800)),
    ("BOT", Fixed(-14400)),
    ("BRA", Fixed(-10800)),
    ("BRST", Fixed(-7200)),
    ("BRT", Fixed(-10800)),
    ("BST", Fixed(3600)),
    ("BTT", Fixed(21600)),
    ("CADT", Fixed(37800)),
    ("CAST", Fixed(34200)),
    // Not in Default; tzdata's Central Africa Time.
    ("CAT", Fixed(7200)),
    ("CCT", Fixed(28800)),
    ("CDT", Fixed(-18000)),
    ("CEST", Fixed(7200)),
    ("CET", Fixed(3600)),
    ("CETDST", Fixed(7200)),
    ("CHADT", Fixed(49500)),
    ("CHAST", Fixed(45900)),
    // Not in Default; tzdata's Chamorro Standard Time (Guam).
    ("CHST", Fixed(36000)),
    ("CHUT", Fixed(36000)),
    ("CKT", Dynamic("Pacific/Rarotonga", -36000)),
    ("CLST", Fixed(-10800)),
    ("CLT", Dynamic("America/Santiago", -14400)),
    ("COT", Fixed(-18000)),
    ("CST", Fixed(-21600)),
    ("CXT", Fixed(25200)),
    ("DAVT", Dynamic("Antarctica/Davis", 25200)),
    ("DDUT", Fixed(36000)),
    ("EASST", Dynamic("Pacific/Easter", -21600)),
    ("EAST", Dynamic("Pacific/Easter", -21600)),
    ("EAT", Fixed(10800)),
    ("EDT", Fixed(-14400)),
    ("EEST", Fixed(10800)),
    ("EET", Fixed(7200)),
    ("EETDST", Fixed(10800)),
    ("EGST", Fixed(0)),
    ("EGT", Fixed(-3600)),
    ("EST", Fixed(-18000)),
    ("FET", Fixed(10800)),
    ("FJST", Fixed(46800)),
    ("FJT", Fixed(43200)),
    ("FKST", Dynamic("Atlantic/Stanley", -10800)),
    ("FKT", Dynamic("Atlantic/Stanley", -10800)),
    ("FNST", Fixed(-3600)),
    ("FNT", Fixed(-7200)),
    ("GALT", Fixed(-21600)),
    ("GAMT", Fixed(-32400)),
    ("GEST", Dynamic("Asia/Tbilisi", 14400)),
    ("GET", Dynamic("Asia/Tbilisi", 14400)),
    ("GFT", Fixed(-10800)),
    ("GILT", Fixed(43200)),
    ("GMT", Fixed(0)),
    ("GYT", Dynamic("America/Guyana", -14400)),
    // Not in Default; tzdata's Hawaii-Aleutian Daylight Time.
    ("HDT", Fixed(-32400)),
    ("HKT", Fixed(28800)),
    ("HST", Fixed(-36000)),
    ("ICT", Fixed(25200)),
    ("IDT", Fixed(10800)),
    ("IOT", Dynamic("Indian/Chagos", 21600)),
    ("IRKST", Dynamic("Asia/Irkutsk", 28800)),
    ("IRKT", Dynamic("Asia/Irkutsk", 28800)),
    ("IRT", Fixed(12600)),
    ("IST", Fixed(7200)),
    ("JAYT", Fixed(32400)),
    ("JST", Fixed(32400)),
    ("KDT", Fixed(36000)),
    ("KGST", Fixed(21600)),
    ("KGT", Dynamic("Asia/Bishkek", 21600)),
    ("KOST", Dynamic("Pacific/Kosrae", 39600)),
    ("KRAST", Dynamic("Asia/Krasnoyarsk", 25200)),
    ("KRAT", Dynamic("Asia/Krasnoyarsk", 25200)),
    ("KST", Fixed(32400)),
    ("LHDT", Dynamic("Australia/Lord_Howe", 37800)),
    ("LHST", Fixed(37800)),
    ("LIGT", Fixed(36000)),
    ("LINT", Dynamic("Pacific/Kiritimati", 50400)),
    ("LKT", Dynamic("Asia/Colombo", 19800)),
    ("MAGST", Dynamic("Asia/Magadan", 39600)),
    ("MAGT", Dynamic("Asia/Magadan", 39600)),
    ("MART", Fixed(-34200)),
    ("MAWT", Dynamic("Antarctica/Mawson", 18000)),
    ("MDT", Fixed(-21600)),
    ("MEST", Fixed(7200)),
    ("MESZ", Fixed(7200)),
    ("MET", Fixed(3600)),
    ("METDST", Fixed(7200)),
    ("MEZ", Fixed(3600)),
    ("MHT", Fixed(43200)),
    ("MMT", Fixed(23400)),
    ("MPT", Fixed(36000)),
    ("MSD", Fixed(14400)),
    ("MSK", Dynamic("Europe/Moscow", 10800)),
    ("MST", Fixed(-25200)),
    ("MUST", Fixed(18000)),
    ("MUT", Fixed(14400)),
    ("MVT", Fixed(18000)),
    ("MYT", Fixed(28800)),
    ("NDT", Fixed(-9000)),
    ("NFT", Fixed(-12600)),
    ("NOVST", Dynamic("Asia/Novosibirsk", 25200)),
    ("NOVT", Dynamic("Asia/Novosibirsk", 25200)),
    ("NPT", Fixed(20700)),
    ("NST", Fixed(-12600)),
    ("NUT", Dynamic("Pacific/Niue", -39600)),
    ("NZDT", Fixed(46800)),
    ("NZST", Fixed(43200)),
    ("NZT", Fixed(43200)),
    ("OMSST", Dynamic("Asia/Omsk", 21600)),
    ("OMST", Dynamic("Asia/Omsk", 21600)),
    ("PDT", Fixed(-25200)),
    ("PET", Fixed(-18000)),
    ("PETST", Dynamic("Asia/Kamchatka", 43200)),
    ("PETT", Dynamic("Asia/Kamchatka", 43200)),
    ("PGT", Fixed(36000)),
    ("PHT", Fixed(28800)),
    ("PKST", Fixed(21600)),
    ("PKT", Fixed(18000)),
    ("PMDT", Fixed(-7200)),
    ("PMST", Fixed(-10800)),
    ("PONT", Fixed(39600)),
    ("PST", Fixed(-28800)),
    ("PWT", Fixed(32400)),
    ("PYST", Fixed(-10800)),
    ("PYT", Dynamic("America/Asuncion", -10800)),
    ("RET", Fixed(14400)),
    ("SADT", Fixed(37800)),
    ("SAST", Fixed(7200)),
    ("SCT", Fixed(14400)),
    ("SGT", Dynamic("Asia/Singapore", 28800)),
    // Not in Default; tzdata's Samoa Standard Time (Pago Pago).
    ("SST", Fixed(-39600)),
    ("TAHT", Fixed(-36000)),
    ("TFT", Fixed(18000)),
    ("TJT", Fixed(18000)),
    ("TKT", Dynamic("Pacific/Fakaofo", 46800)),
    ("TMT", Dynamic("Asia/Ashgabat", 18000)),
    ("TOT", Fixed(46800)),
    ("TRUT", Fixed(36000)),
    ("TVT", Fixed(43200)),
    ("UCT", Fixed(0)),
    ("ULAST", Fixed(32400)),
    ("ULAT", Dynamic("Asia/Ulaanbaatar", 28800)),
    ("UT", Fixed(0)),
    ("UTC", Fixed(0)),
    ("UYST", Fixed(-7200)),
    ("UYT", Fixed(-10800)),
    ("UZST", Fixed(21600)),
    ("UZT", Fixed(18000)),
    ("VET", Dynamic("America/Caracas", -14400)),
    ("VLAST", Dynamic("Asia/Vladivostok", 36000)),
    ("VLAT", Dynamic("Asia/Vladivostok", 36000)),
    ("VOLT", Dynamic("Europe/Volgograd", 10800)),
    ("VUT", Fixed(39600)),
    ("WADT", Fixed(28800)),
    ("WAKT", Fixed(43200)),
    ("WAST", Fixed(25200)),
    ("WAT", Fixed(3600)),
    ("WDT", Fixed(32400)),
    // Not in Default; tzdata's Western European Summer Time (Lisbon, Canary).
    ("WEST", Fixed(3600)),
    ("WET", Fixed(0)),
    ("WETDST", Fixed(3600)),
    ("WFT", Fixed(43200)),
    ("WGST", Fixed(-7200)),
    ("WGT", Fixed(-10800)),
    // Not in Default; tzdata's Indonesian zones.
    ("WIB", Fixed(25200)),
    ("WIT", Fixed(32400)),
    ("WITA", Fixed(28800)),
    ("XJT", Fixed(21600)),
    ("YAKST", Dynamic("Asia/Yakutsk", 32400)),
    ("YAKT", Dynamic("Asia/Yakutsk", 32400)),
    ("YAPT", Fixed(36000)),
    ("YEKST", Fixed(21600)),
    ("YEKT", Dynamic("Asia/Yekaterinburg", 18000)),
    ("Z", Fixed(0)),
    ("ZULU", Fixed(0)),
];

/// Why a zone did not resolve. The message is a record's `parse_error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ZoneError {
    #[error("unknown time zone abbreviation {0}")]
    UnknownAbbreviation(String),
    #[error("bad time zone offset {0}")]
    BadOffset(String),
    #[error("date or time out of range")]
    OutOfRange,
}

/// The instant of `civil` in the zone PostgreSQL printed as `zone` (an abbreviation such as
/// `CEST`, or a numeric offset such as `+03`, `-0330`, `+05:30`).
pub(crate) fn resolve(civil: DateTime, zone: &[u8]) -> Result<Timestamp, ZoneError> {
    match zone.first() {
        Some(b'+' | b'-') => {
            let seconds = numeric_offset(zone).ok_or_else(|| bad_offset(zone))?;
            at_offset(civil, seconds)
        }
        _ => match lookup(zone) {
            Some(Fixed(seconds)) => at_offset(civil, seconds),
            Some(Dynamic(name, fallback)) => match TimeZone::get(name) {
                Ok(tz) => tz.to_timestamp(civil).map_err(|_| ZoneError::OutOfRange),
                Err(_) => at_offset(civil, fallback),
            },
            None => Err(ZoneError::UnknownAbbreviation(
                String::from_utf8_lossy(zone).into_owned(),
            )),
        },
    }
}

fn bad_offset(zone: &[u8]) -> ZoneError {
    ZoneError::BadOffset(String::from_utf8_lossy(zone).into_owned())
}

fn at_offset(civil: DateTime, seconds: i32) -> Result<Timestamp, ZoneError> {
    let offset = Offset::from_seconds(seconds).map_err(|_| ZoneError::OutOfRange)?;
    offset
        .to_timestamp(civil)
        .map_err(|_| ZoneError::OutOfRange)
}

fn lookup(abbr: &[u8]) -> Option<Meaning> {
    // Abbreviations are at most 6 letters; upper-case into a stack buffer, no allocation.
    let mut buf = [0u8; 8];
    let upper = buf.get_mut(..abbr.len())?;
    for (dst, src) in upper.iter_mut().zip(abbr) {
        *dst = src.to_ascii_uppercase();
    }
    let upper: &[u8] = upper;
    ABBREVIATIONS
        .binary_search_by(|(name, _)| name.as_bytes().cmp(upper))
        .ok()
        .and_then(|i| ABBREVIATIONS.get(i))
        .map(|(_, meaning)| *meaning)
}

/// `+03`, `-3`, `+0330`, `+03:30`, `-03:30:00` → seconds east of UTC.
fn numeric_offset(zone: &[u8]) -> Option<i32> {
    let (sign, rest) = match zone.split_first()? {
        (b'+', rest) => (1, rest),
        (b'-', rest) => (-1, rest),
        _ => return None,
    };
    let mut parts = [0i32; 3];
    let mut count = 0;
    if !rest.contains(&b':') && rest.len() > 2 {
        // Packed form: HHMM or HHMMSS.
        if rest.len() % 2 != 0 || rest.len() > 6 {
            return None;
        }
        for chunk in rest.chunks(2) {
            *parts.get_mut(count)? = digits(chunk)?;
            count += 1;
        }
    } else {
        for part in rest.split(|&b| b == b':') {
            if part.is_empty() || part.len() > 2 {
                return None;
            }
            *parts.get_mut(count)? = digits(part)?;
            count += 1;
        }
    }
    let [h, m, s] = parts;
    if h > 25 || m > 59 || s > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60 + s))
}

fn digits(bytes: &[u8]) -> Option<i32> {
    bytes.iter().try_fold(0i32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + i32::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> DateTime {
        s.parse().unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn table_is_sorted_and_unique() {
        for pair in ABBREVIATIONS.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} !< {}", pair[0].0, pair[1].0);
        }
    }

    #[test]
    fn fixed_abbreviations() {
        let civil = dt("2017-07-31T13:36:42.585");
        assert_eq!(
            resolve(civil, b"CEST").unwrap(),
            ts("2017-07-31T11:36:42.585Z")
        );
        assert_eq!(
            resolve(civil, b"EST").unwrap(),
            ts("2017-07-31T18:36:42.585Z")
        );
        assert_eq!(
            resolve(civil, b"PDT").unwrap(),
            ts("2017-07-31T20:36:42.585Z")
        );
        assert_eq!(
            resolve(civil, b"UTC").unwrap(),
            ts("2017-07-31T13:36:42.585Z")
        );
        assert_eq!(
            resolve(civil, b"cet").unwrap(),
            ts("2017-07-31T12:36:42.585Z")
        );
    }

    #[test]
    fn moscow_follows_its_history() {
        // MSK was +04 from 2011 to 2014, +03 before and after.
        assert_eq!(
            resolve(dt("2013-01-01T12:00"), b"MSK").unwrap(),
            ts("2013-01-01T08:00Z")
        );
        assert_eq!(
            resolve(dt("2020-01-01T12:00"), b"MSK").unwrap(),
            ts("2020-01-01T09:00Z")
        );
    }

    #[test]
    fn numeric_offsets() {
        let civil = dt("2024-01-05T10:00");
        assert_eq!(resolve(civil, b"+03").unwrap(), ts("2024-01-05T07:00Z"));
        assert_eq!(resolve(civil, b"-0330").unwrap(), ts("2024-01-05T13:30Z"));
        assert_eq!(resolve(civil, b"+05:30").unwrap(), ts("2024-01-05T04:30Z"));
        assert_eq!(resolve(civil, b"-3").unwrap(), ts("2024-01-05T13:00Z"));
        for bad in [
            &b"+"[..],
            b"+033",
            b"+99",
            b"+0a",
            b"+01:2:3:4",
            b"+1234567",
        ] {
            assert!(matches!(resolve(civil, bad), Err(ZoneError::BadOffset(_))));
        }
    }

    #[test]
    fn unknown_abbreviation_is_named() {
        let err = resolve(dt("2024-01-05T10:00"), b"XYZT").unwrap_err();
        assert_eq!(err.to_string(), "unknown time zone abbreviation XYZT");
        assert!(resolve(dt("2024-01-05T10:00"), b"TOOLONGZONE").is_err());
    }
}
