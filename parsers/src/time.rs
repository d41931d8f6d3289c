//! Date and time pieces shared by the formats.

/// Month number (1..=12) from an English three-letter abbreviation, any case.
pub fn month_from_abbr(abbr: &[u8]) -> Option<i8> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    if abbr.len() != 3 {
        return None;
    }
    let lower = [
        abbr[0].to_ascii_lowercase(),
        abbr[1].to_ascii_lowercase(),
        abbr[2].to_ascii_lowercase(),
    ];
    MONTHS
        .iter()
        .position(|m| **m == lower)
        .map(|i| i as i8 + 1)
}
