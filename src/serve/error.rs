//! How the HTTP API says no: a status and `{"error": REASON}`.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::params::ParamError;
use crate::query::QueryError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The request's parameters (400).
    #[error(transparent)]
    Param(#[from] ParamError),
    /// A bad filter or cursor (400), or Cassandra failing the read (502).
    #[error(transparent)]
    Query(#[from] QueryError),
    /// No or a wrong bearer token (401).
    #[error("this server needs `Authorization: Bearer TOKEN` (the token of [serve] token_file)")]
    Unauthorized,
    /// Too many live streams open at once (503).
    #[error("too many live streams are open ({0}); close one or try again later")]
    TooManyStreams(usize),
}

impl ApiError {
    /// The HTTP status to answer with: 400 for the caller's input, 401 for a missing or
    /// wrong token, 502 when Cassandra failed, 503 when too many streams are open.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Param(_) => StatusCode::BAD_REQUEST,
            ApiError::Query(e) if e.is_bad_input() => StatusCode::BAD_REQUEST,
            ApiError::Query(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::TooManyStreams(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::json!({ "error": self.to_string() }).to_string();
        let mut response =
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"logship\""),
            );
        }
        response
    }
}
