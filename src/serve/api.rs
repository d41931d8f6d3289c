//! The handlers: parameters in, the read core's answer out as JSON or server-sent events.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, watch};

use super::config::DEFAULT_LIMIT;
use super::error::ApiError;
use super::filters::{self, FILTER_PARAMS};
use super::params::{self, ParamError, Params};
use super::{FOLLOW_INTERVAL, MAX_STREAMS, Server};
use crate::query::{Cursor, Follow, LogRow, Order};

/// The explorer: one self-contained page (inline CSS and JavaScript, no external assets).
const EXPLORER: &str = include_str!("explorer.html");

/// The explorer may load nothing from elsewhere and talk only to this server.
const EXPLORER_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
     form-action 'self'";

/// How long `/health` waits for Cassandra.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// The window `/counts` counts when the request names no `since`: counting reads every
/// row of the range, so the default stays small.
const COUNTS_DEFAULT_SINCE: &str = "1h ago";

fn accepted(extra: &[&'static str]) -> Vec<&'static str> {
    let mut names = FILTER_PARAMS.to_vec();
    names.extend_from_slice(extra);
    names
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_string(body) {
        Ok(text) => (status, [(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "error": format!("cannot encode the answer: {e}") }).to_string(),
        )
            .into_response(),
    }
}

pub(super) async fn explorer() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, EXPLORER_CSP),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        EXPLORER,
    )
        .into_response()
}

/// 200 when Cassandra answers a trivial read, 503 with the reason otherwise.
pub(super) async fn health(State(s): State<Server>) -> Response {
    let probe = s
        .reader
        .session()
        .query_unpaged("SELECT release_version FROM system.local", ());
    let reason = match tokio::time::timeout(HEALTH_TIMEOUT, probe).await {
        Ok(Ok(_)) => return json(StatusCode::OK, &serde_json::json!({ "status": "ok" })),
        Ok(Err(e)) => crate::sink::session::describe_execution_error(&e),
        Err(_) => format!(
            "Cassandra did not answer within {} s",
            HEALTH_TIMEOUT.as_secs()
        ),
    };
    json(
        StatusCode::SERVICE_UNAVAILABLE,
        &serde_json::json!({ "status": "unavailable", "reasons": [reason] }),
    )
}

#[derive(Serialize)]
struct EventsBody<'a> {
    events: &'a [LogRow],
    next: Option<String>,
}

/// `GET /events`: one page, newest first by default (`order=asc` for oldest first).
pub(super) async fn events(
    State(s): State<Server>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    s.authorize(&headers)?;
    let params = Params::parse(query.as_deref(), &accepted(&["limit", "cursor", "order"]))?;
    let filter = filters::filter(&params, Timestamp::now(), &TimeZone::system())?;
    let limit = params::limit(&params, DEFAULT_LIMIT, s.max_limit)?;
    let order = params
        .parsed("order", |v| match v {
            "desc" => Ok(Order::Descending),
            "asc" => Ok(Order::Ascending),
            other => Err(format!("{other:?} is not asc or desc")),
        })?
        .unwrap_or(Order::Descending);
    let cursor = params.one("cursor")?.map(Cursor::decode).transpose()?;
    if let Some(c) = cursor {
        if params.one("order")?.is_some() && c.order != order {
            return Err(ParamError::invalid(
                "order",
                "contradicts the cursor's order (a cursor continues its own page's order)",
            )
            .into());
        }
    }
    let page = s.reader.page(&filter, order, cursor, limit).await?;
    Ok(json(
        StatusCode::OK,
        &EventsBody {
            events: &page.rows,
            next: page.next.map(|c| c.encode()),
        },
    ))
}

/// What a live stream carries between polls.
struct Following {
    follow: Follow,
    pending: VecDeque<LogRow>,
    closing: watch::Receiver<bool>,
    polled: bool,
    /// Held for the stream's life: one of [`MAX_STREAMS`].
    _permit: OwnedSemaphorePermit,
}

/// `GET /events/stream`: server-sent events, one `message` per new event (its JSON, the
/// `id:` its cursor), oldest first, each once; an `error` event when a poll fails (the
/// stream goes on polling).
pub(super) async fn stream(
    State(s): State<Server>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    s.authorize(&headers)?;
    let params = Params::parse(query.as_deref(), FILTER_PARAMS)?;
    let filter = filters::filter(&params, Timestamp::now(), &TimeZone::system())?;
    let permit = std::sync::Arc::clone(&s.streams)
        .try_acquire_owned()
        .map_err(|_| ApiError::TooManyStreams(MAX_STREAMS))?;
    let state = Following {
        follow: s.reader.follow(&filter),
        pending: VecDeque::new(),
        closing: s.closing.clone(),
        polled: false,
        _permit: permit,
    };
    let events = futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(row) = st.pending.pop_front() {
                return Some((Ok(row_event(&row)), st));
            }
            if *st.closing.borrow() {
                return None;
            }
            if st.polled {
                tokio::select! {
                    () = tokio::time::sleep(FOLLOW_INTERVAL) => {}
                    _ = st.closing.changed() => return None,
                }
            }
            st.polled = true;
            match st.follow.poll().await {
                Ok(rows) => st.pending.extend(rows),
                Err(e) => {
                    let event = Event::default().event("error").data(e.to_string());
                    return Some((Ok(event), st));
                }
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

fn row_event(row: &LogRow) -> Event {
    let cursor = Cursor {
        order: Order::Ascending,
        after: row.position(),
    };
    match serde_json::to_string(row) {
        Ok(data) => Event::default().id(cursor.encode()).data(data),
        Err(e) => Event::default()
            .event("error")
            .data(format!("cannot encode event {}: {e}", row.id)),
    }
}

/// What narrows `/sources` (the catalog knows streams and times, not levels or messages).
const SOURCES_PARAMS: &[&str] = &["source", "host", "since", "until", "table"];

/// The window `/sources` lists when the request names no `since` (as `logship query
/// --list-sources`).
const SOURCES_DEFAULT_SINCE: &str = "24h ago";

/// `GET /sources`: the streams with partitions in the range (`since`, default the last
/// 24 hours; `until`; source, host and table narrow it).
pub(super) async fn sources(
    State(s): State<Server>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    s.authorize(&headers)?;
    let params = Params::parse(query.as_deref(), SOURCES_PARAMS)?;
    let now = Timestamp::now();
    let tz = TimeZone::system();
    let mut filter = filters::filter(&params, now, &tz)?;
    if filter.from.is_none() {
        filter.from = Some(crate::query::parse_time(SOURCES_DEFAULT_SINCE, now, &tz)?);
    }
    let streams = s.reader.streams(&filter).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "sources": streams }),
    ))
}

/// `GET /counts`: events per level per source per `interval` (default 1h) over the
/// range (default the last hour).
pub(super) async fn counts(
    State(s): State<Server>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    s.authorize(&headers)?;
    let params = Params::parse(query.as_deref(), &accepted(&["interval"]))?;
    let now = Timestamp::now();
    let tz = TimeZone::system();
    let mut filter = filters::filter(&params, now, &tz)?;
    if filter.from.is_none() {
        filter.from = Some(crate::query::parse_time(COUNTS_DEFAULT_SINCE, now, &tz)?);
    }
    let interval = filters::interval(&params, Duration::from_secs(3600))?;
    let counts = s.reader.counts(&filter, interval).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "interval_seconds": interval.as_secs(), "counts": counts }),
    ))
}
