//! The limits on a route's TTL and time-bucket width: one definition, checked by the
//! agent's config validation and by the tracing Layer's builder, so neither accepts what
//! the other refuses.

use std::time::Duration;

/// Cassandra refuses a `USING TTL` above 20 years (630,720,000 s).
pub const MAX_TTL: Duration = Duration::from_secs(630_720_000);
/// Narrower buckets make a query over an hour touch more than 60 partitions per host.
pub const MIN_BUCKET: Duration = Duration::from_secs(60);
/// A bucket is counted from the day's UTC midnight: it cannot outgrow the day.
pub const MAX_BUCKET: Duration = Duration::from_secs(86_400);

/// A TTL or bucket width outside its limits; the message says what is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{expected}")]
pub struct OutOfRange {
    /// What the setting accepts, for the operator (`expected ...`).
    pub expected: &'static str,
}

/// What [`check_ttl`] accepts.
pub const TTL_EXPECTED: &str = "expected whole seconds from 1 s to 20 years (Cassandra's limit)";
/// What [`check_bucket`] accepts.
pub const BUCKET_EXPECTED: &str = "expected whole seconds from 1 minute to 1 day";

/// A row TTL: whole seconds (CQL's unit), at least 1 s, at most [`MAX_TTL`].
pub fn check_ttl(ttl: Duration) -> Result<(), OutOfRange> {
    if ttl < Duration::from_secs(1) || ttl > MAX_TTL || ttl.subsec_nanos() != 0 {
        return Err(OutOfRange {
            expected: TTL_EXPECTED,
        });
    }
    Ok(())
}

/// A partition's time-bucket width: whole seconds from [`MIN_BUCKET`] to [`MAX_BUCKET`].
pub fn check_bucket(width: Duration) -> Result<(), OutOfRange> {
    if width < MIN_BUCKET || width > MAX_BUCKET || width.subsec_nanos() != 0 {
        return Err(OutOfRange {
            expected: BUCKET_EXPECTED,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_limits_are_cassandras() {
        assert!(check_ttl(Duration::from_secs(1)).is_ok());
        assert!(check_ttl(Duration::from_secs(630_720_000)).is_ok());
        assert!(check_ttl(Duration::from_secs(630_720_001)).is_err());
        assert!(check_ttl(Duration::ZERO).is_err());
        assert!(check_ttl(Duration::from_millis(1500)).is_err());
    }

    #[test]
    fn bucket_is_a_minute_to_a_day() {
        assert!(check_bucket(Duration::from_secs(60)).is_ok());
        assert!(check_bucket(Duration::from_secs(86_400)).is_ok());
        assert!(check_bucket(Duration::from_secs(86_401)).is_err());
        assert!(check_bucket(Duration::from_secs(59)).is_err());
        assert!(check_bucket(Duration::from_millis(90_500)).is_err());
    }
}
