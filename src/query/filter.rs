//! What a query asks for: tables, streams, hosts, level, time range, ids, fields, regex.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan as _, Zoned};
use logship_parsers::Level;
use regex::Regex;

use super::error::QueryError;
use super::row::{LogRow, LogTable};

/// Which tables a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Tables {
    /// `infrastructure_logs` only (file sources).
    Infrastructure,
    /// `application_logs` only (services shipping through the tracing Layer).
    Application,
    /// Both, merged in time order.
    #[default]
    All,
}

impl Tables {
    /// `infrastructure`, `application` or `all` (also the table names themselves).
    pub fn parse(text: &str) -> Result<Tables, QueryError> {
        match text {
            "infrastructure" | "infra" | "infrastructure_logs" => Ok(Tables::Infrastructure),
            "application" | "app" | "application_logs" => Ok(Tables::Application),
            "all" => Ok(Tables::All),
            other => Err(QueryError::BadFilter {
                what: "table",
                reason: format!("{other:?} is not infrastructure, application or all"),
            }),
        }
    }

    /// The tables in this selection.
    pub fn list(self) -> &'static [LogTable] {
        match self {
            Tables::Infrastructure => &[LogTable::Infrastructure],
            Tables::Application => &[LogTable::Application],
            Tables::All => &[LogTable::Infrastructure, LogTable::Application],
        }
    }
}

/// The order rows come out in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Oldest first (`logship query` prints this; `-f` continues it).
    #[default]
    Ascending,
    /// Newest first (`--reverse`; the storage order, cheapest to read).
    Descending,
}

/// A query's filters. Every filter present must match (AND); lists match any of their
/// values (OR). `from` is inclusive and `until` exclusive.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// The tables read (default: both).
    pub tables: Tables,
    /// Sources (infrastructure_logs) or services (application_logs); empty: all.
    pub names: Vec<String>,
    /// Hosts; empty: all.
    pub hosts: Vec<String>,
    /// Only rows at this level or more severe.
    pub min_level: Option<Level>,
    /// Earliest row time (inclusive). `None`: as far back as rows can live.
    pub from: Option<Timestamp>,
    /// Latest row time (exclusive). `None`: now (or open-ended when following).
    pub until: Option<Timestamp>,
    /// Rows whose `request_id` equals this (found through the SAI index).
    pub request_id: Option<String>,
    /// Rows whose `trace_id` equals this (found through the SAI index).
    pub trace_id: Option<String>,
    /// `fields[key] == value` for every pair.
    pub fields: Vec<(String, String)>,
    /// A regular expression the message must match.
    pub message: Option<Regex>,
}

impl Filter {
    /// True when `row` passes every filter, the time range included.
    pub fn matches(&self, row: &LogRow) -> bool {
        self.matches_except_time(row) && self.in_range(row.ts_ms)
    }

    /// True when a row time (ms) lies in `[from, until)`.
    pub fn in_range(&self, ts_ms: i64) -> bool {
        self.from.is_none_or(|f| ts_ms >= f.as_millisecond())
            && self.until.is_none_or(|u| ts_ms < u.as_millisecond())
    }

    pub(crate) fn matches_except_time(&self, row: &LogRow) -> bool {
        self.tables.list().contains(&row.table)
            && (self.names.is_empty() || self.names.contains(&row.name))
            && (self.hosts.is_empty() || self.hosts.contains(&row.host))
            && self
                .min_level
                .is_none_or(|min| stored_level(&row.level).is_some_and(|l| l >= min))
            && self
                .request_id
                .as_ref()
                .is_none_or(|id| row.request_id.as_ref() == Some(id))
            && self
                .trace_id
                .as_ref()
                .is_none_or(|id| row.trace_id.as_ref() == Some(id))
            && self
                .fields
                .iter()
                .all(|(k, v)| row.fields.get(k).is_some_and(|have| have == v))
            && self
                .message
                .as_ref()
                .is_none_or(|re| re.is_match(&row.message))
    }

    /// A stream (table, name, host) can hold matching rows.
    pub(crate) fn wants_stream(&self, table: LogTable, name: &str, host: &str) -> bool {
        self.tables.list().contains(&table)
            && (self.names.is_empty() || self.names.iter().any(|n| n == name))
            && (self.hosts.is_empty() || self.hosts.iter().any(|h| h == host))
    }
}

/// The level of a stored row: the names the sink writes, matched without allocating.
fn stored_level(name: &str) -> Option<Level> {
    Level::ALL
        .into_iter()
        .find(|l| l.as_str() == name)
        .or_else(|| Level::from_name(name))
}

/// Parses a level name (`err`, `warning`, `ERROR`, ...) or a syslog priority number 0-7.
pub fn parse_level(text: &str) -> Result<Level, QueryError> {
    if let Ok(n) = text.parse::<u8>() {
        if n <= 7 {
            return Ok(Level::from_syslog_severity(n));
        }
    }
    Level::from_name(text).ok_or_else(|| QueryError::BadFilter {
        what: "level",
        reason: format!(
            "{text:?} is not a level (debug, info, notice, warning, err, crit, alert, emerg, or 0-7)"
        ),
    })
}

/// Parses `key=value` for a field filter.
pub fn parse_field(text: &str) -> Result<(String, String), QueryError> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(QueryError::BadFilter {
            what: "field filter",
            reason: format!("{text:?} is not KEY=VALUE"),
        }),
    }
}

/// Compiles a message regex.
pub fn parse_regex(text: &str) -> Result<Regex, QueryError> {
    Regex::new(text).map_err(|e| QueryError::BadFilter {
        what: "regular expression",
        reason: e.to_string(),
    })
}

/// Parses a time as journalctl does: `now`, `today`, `yesterday`, `tomorrow` (midnight in
/// `tz`), relative `1h ago` / `-30m` / `2 days ago`, an RFC 3339 instant
/// (`2025-06-01T13:00:00Z`), or a civil time in `tz` (`2025-06-01 13:00`,
/// `2025-06-01 13:00:00`, `2025-06-01`).
pub fn parse_time(text: &str, now: Timestamp, tz: &TimeZone) -> Result<Timestamp, QueryError> {
    let bad = |reason: String| QueryError::BadFilter {
        what: "time",
        reason,
    };
    let t = text.trim();
    let midnight = |days: i64| -> Result<Timestamp, QueryError> {
        let today = now.to_zoned(tz.clone()).date();
        let day = today
            .checked_add(days.days())
            .map_err(|e| bad(e.to_string()))?;
        day.to_zoned(tz.clone())
            .map(|z| z.timestamp())
            .map_err(|e| bad(e.to_string()))
    };
    match t {
        "now" => return Ok(now),
        "today" => return midnight(0),
        "yesterday" => return midnight(-1),
        "tomorrow" => return midnight(1),
        _ => {}
    }
    if let Some(rel) = t.strip_suffix(" ago").or_else(|| t.strip_prefix('-')) {
        let d = parse_span(rel.trim()).ok_or_else(|| {
            bad(format!(
                "{text:?}: expected a span such as `1h ago`, `30m ago`, `2 days ago`"
            ))
        })?;
        return now.checked_sub(d).map_err(|e| bad(e.to_string()));
    }
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts);
    }
    let civil = t.replace('T', " ");
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(dt) = jiff::civil::DateTime::strptime(fmt, &civil) {
            return dt
                .to_zoned(tz.clone())
                .map(|z: Zoned| z.timestamp())
                .map_err(|e| bad(e.to_string()));
        }
    }
    if let Ok(d) = jiff::civil::Date::strptime("%Y-%m-%d", &civil) {
        return d
            .to_zoned(tz.clone())
            .map(|z| z.timestamp())
            .map_err(|e| bad(e.to_string()));
    }
    Err(bad(format!(
        "{text:?}: expected `today`, `yesterday`, `1h ago`, `2025-06-01 13:00` or RFC 3339"
    )))
}

/// `90s`, `30m`, `1h`, `2d`, `1w`, `2 days`, `1 hour`, `1h30m`.
fn parse_span(text: &str) -> Option<SignedDuration> {
    let mut total = 0_i64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        let secs = match unit {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 7 * 86_400,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(secs)?)?;
    }
    Some(SignedDuration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2025-06-01T13:30:00Z".parse().unwrap()
    }

    #[test]
    fn times_parse_like_journalctl() {
        let utc = TimeZone::UTC;
        let t = |s: &str| parse_time(s, now(), &utc).unwrap().to_string();
        assert_eq!(t("1h ago"), "2025-06-01T12:30:00Z");
        assert_eq!(t("-30m"), "2025-06-01T13:00:00Z");
        assert_eq!(t("2 days ago"), "2025-05-30T13:30:00Z");
        assert_eq!(t("1h30m ago"), "2025-06-01T12:00:00Z");
        assert_eq!(t("today"), "2025-06-01T00:00:00Z");
        assert_eq!(t("yesterday"), "2025-05-31T00:00:00Z");
        assert_eq!(t("2025-06-01 13:00"), "2025-06-01T13:00:00Z");
        assert_eq!(t("2025-06-01 13:00:05"), "2025-06-01T13:00:05Z");
        assert_eq!(t("2025-06-01"), "2025-06-01T00:00:00Z");
        assert_eq!(t("2025-06-01T13:00:00+02:00"), "2025-06-01T11:00:00Z");
        let paris = TimeZone::get("Europe/Paris").unwrap();
        assert_eq!(
            parse_time("today", now(), &paris).unwrap().to_string(),
            "2025-05-31T22:00:00Z"
        );
        for bad in ["soon", "1 fortnight ago", "2025-13-01", ""] {
            let e = parse_time(bad, now(), &utc).unwrap_err();
            assert!(e.is_bad_input(), "{bad}");
        }
    }

    #[test]
    fn levels_and_fields_parse() {
        assert_eq!(parse_level("err").unwrap(), Level::Error);
        assert_eq!(parse_level("warning").unwrap(), Level::Warn);
        assert_eq!(parse_level("3").unwrap(), Level::Error);
        assert!(parse_level("9").is_err());
        assert!(parse_level("loud").is_err());
        assert_eq!(
            parse_field("status=500").unwrap(),
            ("status".to_owned(), "500".to_owned())
        );
        assert_eq!(parse_field("k=").unwrap(), ("k".to_owned(), String::new()));
        assert!(parse_field("=x").is_err());
        assert!(parse_field("novalue").is_err());
        assert!(parse_regex("(").is_err());
    }
}
