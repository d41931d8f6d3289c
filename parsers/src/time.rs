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

/// The current Unix second from the coarse clock (`CLOCK_REALTIME_COARSE`: updated every
/// few milliseconds, read without the cost of the precise clock). Enough for what needs
/// "now" to the second per line, such as syslog's year inference.
pub fn coarse_unix_second() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec, the only memory the call touches.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } == 0;
    if ok {
        #[allow(clippy::useless_conversion)] // `time_t` is 32 bits on some targets
        i64::from(ts.tv_sec)
    } else {
        jiff::Timestamp::now().as_second()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarse_clock_is_the_clock_to_the_second() {
        let before = jiff::Timestamp::now().as_second();
        let coarse = coarse_unix_second();
        let after = jiff::Timestamp::now().as_second();
        // The coarse clock lags by at most a tick (a few ms): allow one second either side.
        assert!(
            (before - 1..=after + 1).contains(&coarse),
            "{before} {coarse} {after}"
        );
    }
}
