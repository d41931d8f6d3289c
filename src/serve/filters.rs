//! The query parameters every read endpoint shares, turned into a [`Filter`] with the
//! read core's own parsers, so `logship query` and the HTTP API read filters alike.

use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::error::ApiError;
use super::params::{ParamError, Params};
use crate::query::{Filter, Tables, parse_field, parse_level, parse_regex, parse_time};

/// The filter parameters: `source` (a source or a service), `host` and `field` (KEY=VALUE)
/// repeat; `level` is "at or above"; `since`/`until` take `1h ago`, `today`,
/// `2025-06-01 13:00` (the server's time zone) or RFC 3339; `grep` is a regular
/// expression on the message; `table` is `infrastructure`, `application` or `all`.
pub const FILTER_PARAMS: &[&str] = &[
    "source",
    "host",
    "level",
    "since",
    "until",
    "grep",
    "request_id",
    "trace_id",
    "field",
    "table",
];

/// `params`' filters; times are read relative to `now` in `tz`.
pub fn filter(params: &Params, now: Timestamp, tz: &TimeZone) -> Result<Filter, ApiError> {
    let time = |name: &'static str| -> Result<Option<Timestamp>, ApiError> {
        params
            .one(name)?
            .map(|v| parse_time(v, now, tz).map_err(ApiError::from))
            .transpose()
    };
    let mut filter = Filter {
        names: params.all("source"),
        hosts: params.all("host"),
        from: time("since")?,
        until: time("until")?,
        request_id: params.one("request_id")?.map(str::to_owned),
        trace_id: params.one("trace_id")?.map(str::to_owned),
        ..Filter::default()
    };
    if let Some(t) = params.one("table")? {
        filter.tables = Tables::parse(t)?;
    }
    if let Some(l) = params.one("level")? {
        filter.min_level = Some(parse_level(l)?);
    }
    if let Some(re) = params.one("grep")? {
        filter.message = Some(parse_regex(re)?);
    }
    for f in params.all("field") {
        filter.fields.push(parse_field(&f)?);
    }
    if let (Some(from), Some(until)) = (filter.from, filter.until) {
        if from >= until {
            return Err(ParamError::invalid(
                "until",
                format!("{until} is not after since ({from})"),
            )
            .into());
        }
    }
    Ok(filter)
}

/// `interval` of `/counts`: a duration such as `5m` or `1h`, at least a second.
pub fn interval(params: &Params, default: Duration) -> Result<Duration, ParamError> {
    let d = params
        .parsed("interval", crate::duration::parse)?
        .unwrap_or(default);
    if d < Duration::from_secs(1) {
        return Err(ParamError::invalid("interval", "must be at least 1s"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use logship_parsers::Level;

    fn parse(q: &str) -> Result<Filter, ApiError> {
        let mut accepted = FILTER_PARAMS.to_vec();
        accepted.push("interval");
        let params = Params::parse(Some(q), &accepted).map_err(ApiError::Param)?;
        let now: Timestamp = "2025-06-01T13:30:00Z".parse().unwrap();
        filter(&params, now, &TimeZone::UTC)
    }

    #[test]
    fn every_filter_parameter_reaches_the_filter() {
        let f = parse(
            "source=nginx&source=api&host=web-1&level=warning&since=1h+ago&until=now\
             &grep=time(out)%3F&request_id=r1&trace_id=t1&field=status%3D500&table=infrastructure",
        )
        .unwrap();
        assert_eq!(f.names, ["nginx", "api"]);
        assert_eq!(f.hosts, ["web-1"]);
        assert_eq!(f.min_level, Some(Level::Warn));
        assert_eq!(f.from.unwrap().to_string(), "2025-06-01T12:30:00Z");
        assert_eq!(f.until.unwrap().to_string(), "2025-06-01T13:30:00Z");
        assert!(f.message.as_ref().unwrap().is_match("timeout"));
        assert_eq!(f.request_id.as_deref(), Some("r1"));
        assert_eq!(f.trace_id.as_deref(), Some("t1"));
        assert_eq!(f.fields, [("status".to_owned(), "500".to_owned())]);
        assert_eq!(f.tables, Tables::Infrastructure);
    }

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        for q in [
            "level=loud",
            "since=soon",
            "grep=(",
            "field=novalue",
            "table=both",
            "since=1h+ago&until=2h+ago",
        ] {
            let e = parse(q).unwrap_err();
            assert!(!e.to_string().is_empty(), "{q}");
        }
    }
}
