//! The `<PRI>` prefix: facility and severity packed as `facility * 8 + severity`.

use nom::IResult;
use nom::Parser as _;
use nom::bytes::complete::take_while_m_n;
use nom::character::complete::char;
use nom::sequence::delimited;

/// Facility names, by number (RFC 5424 table 1; names as rsyslog and syslog(3) spell them).
const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// Severity names, by number (0 = most severe).
const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// A valid PRI value (0..=191).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pri(u8);

impl Pri {
    /// The PRI `value`, if valid (at most 191).
    pub fn new(value: u8) -> Option<Pri> {
        (usize::from(value) < FACILITIES.len() * 8).then_some(Pri(value))
    }

    /// The number as written between `<` and `>`.
    pub fn value(self) -> u8 {
        self.0
    }

    /// The severity, 0 (emergency) to 7 (debug).
    pub fn severity(self) -> u8 {
        self.0 % 8
    }

    /// The facility's name (`kern`, `auth`, `local3`, ...).
    pub fn facility_name(self) -> &'static str {
        FACILITIES[usize::from(self.0 / 8) % FACILITIES.len()]
    }

    /// The severity's name (`emerg`, `crit`, `warning`, ...).
    pub fn severity_name(self) -> &'static str {
        SEVERITIES[usize::from(self.severity())]
    }
}

/// `<N>` with 1 to 3 digits and N <= 191.
pub fn pri(input: &[u8]) -> IResult<&[u8], Pri> {
    let (rest, digits) = delimited(
        char('<'),
        take_while_m_n(1, 3, |b: u8| b.is_ascii_digit()),
        char('>'),
    )
    .parse(input)?;
    let value = digits
        .iter()
        .fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'));
    u8::try_from(value)
        .ok()
        .and_then(Pri::new)
        .map(|p| (rest, p))
        .ok_or_else(|| {
            nom::Err::Error(nom::error::Error::new(input, nom::error::ErrorKind::Verify))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_facility_and_severity() {
        let (rest, p) = pri(b"<34>Oct").unwrap();
        assert_eq!(rest, b"Oct");
        assert_eq!((p.facility_name(), p.severity_name()), ("auth", "crit"));
        let (_, p) = pri(b"<0>").unwrap();
        assert_eq!((p.facility_name(), p.severity_name()), ("kern", "emerg"));
        let (_, p) = pri(b"<191>").unwrap();
        assert_eq!((p.facility_name(), p.severity_name()), ("local7", "debug"));
        let (_, p) = pri(b"<86>").unwrap();
        assert_eq!((p.facility_name(), p.severity_name()), ("authpriv", "info"));
        let (_, p) = pri(b"<120>").unwrap();
        assert_eq!(p.facility_name(), "solaris-cron");
    }

    #[test]
    fn rejects_out_of_range_and_malformed() {
        for bad in ["<192>", "<999>", "<1000>", "<>", "<1a>", "34>", "<34", ""] {
            assert!(pri(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_value_has_names() {
        for v in 0..=191u8 {
            let p = Pri::new(v).unwrap();
            assert_eq!(p.value(), v);
            assert!(!p.facility_name().is_empty());
            assert!(!p.severity_name().is_empty());
        }
        assert!(Pri::new(192).is_none());
    }
}
