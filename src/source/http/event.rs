//! A request body into [`AppEvent`]s: one JSON object, an array of them, or NDJSON.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use logship_parsers::Level;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::sink::AppEvent;

/// Namespace of the uuid v5 row ids derived from a client's `id` (with the service).
const ID_NAMESPACE: Uuid = Uuid::from_u128(0x6c6f_6773_6869_7073_8000_6874_7470_6964);

/// How the body is framed, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `application/json` (or none): one object or an array of objects.
    Json,
    /// `application/x-ndjson`, `application/jsonl`: one object per line.
    Ndjson,
}

impl Framing {
    /// The framing a `Content-Type` names; `None` for a type this source does not take.
    pub(crate) fn of(content_type: Option<&str>) -> Option<Framing> {
        let Some(ct) = content_type else {
            return Some(Framing::Json);
        };
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "application/json" | "" => Some(Framing::Json),
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/json-lines"
            | "application/jsonlines" => Some(Framing::Ndjson),
            _ => None,
        }
    }
}

/// One event the request got wrong.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Invalid {
    /// Position in the body (array index, or NDJSON line number counting from 0).
    pub index: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// What every event of one source shares.
#[derive(Debug, Clone)]
pub(crate) struct Defaults {
    /// The agent's host, for events that name none.
    pub host: Arc<str>,
    /// The `target` column: `http:<source name>`.
    pub target: Arc<str>,
}

/// The events of `body`, or the reason for every invalid one (a body that is not JSON at
/// all is one reason at index 0).
pub(crate) fn parse(
    body: &[u8],
    framing: Framing,
    defaults: &Defaults,
    now: jiff::Timestamp,
) -> Result<Vec<AppEvent>, Vec<Invalid>> {
    let values: Vec<(usize, Result<Value, String>)> = match framing {
        Framing::Json => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Array(items)) => items.into_iter().map(Ok).enumerate().collect(),
            Ok(v) => vec![(0, Ok(v))],
            Err(e) => vec![(0, Err(format!("the body is not JSON: {e}")))],
        },
        Framing::Ndjson => body
            .split(|&b| b == b'\n')
            .enumerate()
            .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
            .map(|(i, line)| {
                let v = serde_json::from_slice::<Value>(line)
                    .map_err(|e| format!("line {} is not JSON: {e}", i + 1));
                (i, v)
            })
            .collect(),
    };
    if values.is_empty() {
        return Err(vec![Invalid {
            index: 0,
            reason: "the body holds no events".into(),
        }]);
    }
    let mut events = Vec::with_capacity(values.len());
    let mut invalid = Vec::new();
    for (index, value) in values {
        match value.and_then(|v| event(v, defaults, now)) {
            Ok(e) => events.push(e),
            Err(reason) => invalid.push(Invalid { index, reason }),
        }
    }
    if invalid.is_empty() {
        Ok(events)
    } else {
        Err(invalid)
    }
}

fn take_string(map: &mut Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("`{key}` must be a string, not {}", kind(&other))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn event(value: Value, defaults: &Defaults, now: jiff::Timestamp) -> Result<AppEvent, String> {
    let Value::Object(mut map) = value else {
        return Err(format!(
            "an event must be a JSON object, not {}",
            kind(&value)
        ));
    };
    let service = take_string(&mut map, "service")?
        .filter(|s| !s.trim().is_empty())
        .ok_or("`service` is required")?;
    let message = take_string(&mut map, "message")?.ok_or("`message` is required")?;
    let level = match take_string(&mut map, "level")? {
        None => Level::Info,
        Some(name) => Level::from_name(&name).ok_or_else(|| format!("unknown level {name:?}"))?,
    };
    let timestamp = take_string(&mut map, "timestamp")?
        .map(|t| {
            t.parse::<jiff::Timestamp>()
                .map_err(|e| format!("`timestamp` {t:?} is not RFC 3339: {e}"))
        })
        .transpose()?;
    let id = match map.remove("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(client_id(&service, &s)),
        Some(Value::Number(n)) => Some(client_id(&service, &n.to_string())),
        Some(other) => return Err(format!("`id` must be a string, not {}", kind(&other))),
    };
    // The row's key holds its time: a retry lands on the same row only with the same one.
    if id.is_some() && timestamp.is_none() {
        return Err(
            "an event with `id` needs its `timestamp`, so a retry overwrites the same row".into(),
        );
    }
    let id = id.unwrap_or_else(AppEvent::new_id);
    let timestamp = timestamp.unwrap_or(now);
    let request_id = take_string(&mut map, "request_id")?;
    let trace_id = take_string(&mut map, "trace_id")?;
    let host = take_string(&mut map, "host")?.map_or_else(|| Arc::clone(&defaults.host), Arc::from);
    let fields: BTreeMap<String, String> = map
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, text)
        })
        .collect();
    Ok(AppEvent {
        id,
        timestamp,
        level,
        service: Arc::from(service),
        host,
        target: Cow::Owned(defaults.target.to_string()),
        module: None,
        file: None,
        line: None,
        message,
        fields,
        span_fields: BTreeMap::new(),
        request_id,
        trace_id,
    })
}

/// The row id of a client's event id: the uuid itself, or uuid v5 of service and id, so a
/// retry with the same id overwrites the row instead of adding one.
pub(crate) fn client_id(service: &str, id: &str) -> Uuid {
    Uuid::parse_str(id).unwrap_or_else(|_| {
        let mut name = Vec::with_capacity(service.len() + 1 + id.len());
        name.extend_from_slice(service.as_bytes());
        name.push(0);
        name.extend_from_slice(id.as_bytes());
        Uuid::new_v5(&ID_NAMESPACE, &name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Defaults {
        Defaults {
            host: Arc::from("h"),
            target: Arc::from("http:web"),
        }
    }

    #[test]
    fn an_object_an_array_and_ndjson_give_events() {
        let now = jiff::Timestamp::now();
        let one = br#"{"service":"a","message":"m","user":"u","n":3}"#;
        let e = parse(one, Framing::Json, &defaults(), now).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].fields["user"], "u");
        assert_eq!(e[0].fields["n"], "3");
        assert_eq!(e[0].timestamp, now);
        let arr =
            br#"[{"service":"a","message":"1"},{"service":"a","message":"2","level":"warn"}]"#;
        let e = parse(arr, Framing::Json, &defaults(), now).unwrap();
        assert_eq!(e[1].level, Level::Warn);
        let nd =
            b"{\"service\":\"a\",\"message\":\"1\"}\n\n{\"service\":\"a\",\"message\":\"2\"}\n";
        assert_eq!(
            parse(nd, Framing::Ndjson, &defaults(), now).unwrap().len(),
            2
        );
    }

    #[test]
    fn every_invalid_event_is_named_with_its_reason() {
        let now = jiff::Timestamp::now();
        let arr = br#"[{"service":"a","message":"ok"},{"message":"x"},{"service":"a","message":"m","timestamp":"yesterday"}]"#;
        let bad = parse(arr, Framing::Json, &defaults(), now).unwrap_err();
        assert_eq!(bad.len(), 2);
        assert_eq!(bad[0].index, 1);
        assert!(bad[0].reason.contains("service"), "{bad:?}");
        assert_eq!(bad[1].index, 2);
        assert!(bad[1].reason.contains("RFC 3339"), "{bad:?}");
        let bad = parse(b"{nope", Framing::Json, &defaults(), now).unwrap_err();
        assert!(bad[0].reason.starts_with("the body is not JSON"), "{bad:?}");
    }

    #[test]
    fn a_client_id_gives_the_same_row_id_every_time() {
        let now = jiff::Timestamp::now();
        let body =
            br#"{"service":"a","message":"m","id":"order-7","timestamp":"2026-01-02T03:04:05.123456Z"}"#;
        let a = parse(body, Framing::Json, &defaults(), now).unwrap();
        let b = parse(body, Framing::Json, &defaults(), now).unwrap();
        assert_eq!(a[0].id, b[0].id);
        assert_ne!(client_id("a", "order-7"), client_id("b", "order-7"));
        let no_time = br#"{"service":"a","message":"m","id":"order-7"}"#;
        let bad = parse(no_time, Framing::Json, &defaults(), now).unwrap_err();
        assert!(bad[0].reason.contains("needs its `timestamp`"), "{bad:?}");
        let u = "6f1c1a52-3f6e-4c1e-9a55-0d6f1e2b7c11";
        assert_eq!(client_id("a", u).to_string(), u);
    }
}
