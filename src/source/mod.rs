//! Network sources: events that arrive over a socket rather than from a file.
//!
//! - [`http`]: `POST /events` (JSON, arrays, NDJSON) into `application_logs`.

pub mod http;
