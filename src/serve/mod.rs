//! `logship serve`: the fleet's logs, read-only over HTTP (issue 12).
//!
//! A JSON API over the read core ([`crate::query`]) and one page, the log explorer:
//! - `GET /events`: a page of events (`{"events": [...], "next": CURSOR|null}`), newest
//!   first unless `order=asc`; `cursor` continues after the last event of a page;
//! - `GET /events/stream`: new events as server-sent events, each once (follow);
//! - `GET /sources`: the streams (source or service, host) seen in a time range;
//! - `GET /counts`: events per level per source per interval;
//! - `GET /health`: whether Cassandra answers; `GET /`: the explorer.
//!
//! Every read endpoint takes the same filter parameters ([`filters::FILTER_PARAMS`]);
//! an unknown parameter or a bad value is a 400 naming it. Pages are bounded
//! (`[serve] max_limit`) and so are live streams ([`MAX_STREAMS`]). With `[serve]
//! token_file` set, every endpoint but `/` and `/health` wants `Authorization: Bearer`.

mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod filters;
pub mod params;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tokio::sync::{Semaphore, watch};

pub use auth::{Token, TokenError};
pub use config::ServeConfig;
pub use error::ApiError;

use crate::query::Reader;

/// Live streams (`/events/stream`) open at once; each polls Cassandra every
/// [`FOLLOW_INTERVAL`], so this bounds the load followers put on the cluster.
pub const MAX_STREAMS: usize = 64;

/// How often a live stream asks Cassandra for new events.
pub const FOLLOW_INTERVAL: Duration = Duration::from_millis(500);

/// What the handlers share.
#[derive(Clone)]
pub struct Server {
    reader: Reader,
    token: Option<Token>,
    max_limit: usize,
    streams: Arc<Semaphore>,
    /// Flips to true at shutdown: live streams end, so the graceful shutdown can finish.
    closing: watch::Receiver<bool>,
    close: Arc<watch::Sender<bool>>,
}

impl Server {
    /// A server reading through `reader`; `token`, when set, is asked of every request
    /// but the page and `/health`.
    pub fn new(reader: Reader, token: Option<Token>, max_limit: usize) -> Server {
        let (close, closing) = watch::channel(false);
        Server {
            reader,
            token,
            max_limit: max_limit.max(1),
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
            closing,
            close: Arc::new(close),
        }
    }

    /// The routes.
    pub fn router(self) -> Router {
        Router::new()
            .route("/", get(api::explorer))
            .route("/health", get(api::health))
            .route("/events", get(api::events))
            .route("/events/stream", get(api::stream))
            .route("/sources", get(api::sources))
            .route("/counts", get(api::counts))
            .with_state(self)
    }

    fn authorize(&self, headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
        match &self.token {
            None => Ok(()),
            Some(token) => {
                let given = headers
                    .get(axum::http::header::AUTHORIZATION)
                    .map(|v| v.as_bytes());
                if token.admits(given) {
                    Ok(())
                } else {
                    Err(ApiError::Unauthorized)
                }
            }
        }
    }
}

/// Serves `server` on `listener` until `shutdown` resolves; then stops accepting, ends
/// the live streams and lets the requests in progress finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    server: Server,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let close = Arc::clone(&server.close);
    axum::serve(listener, server.router())
        .with_graceful_shutdown(async move {
            shutdown.await;
            close.send_replace(true);
        })
        .await
}
