//! The listener: a bounded accept loop (over `max_connections`, a new connection is closed
//! at once), hyper HTTP/1 with a header timeout, and the `POST /events` handler.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::config::{Ack, TlsFiles};
use super::event::{self, Defaults, Framing};
use super::written::Waiters;
use super::{HttpSourceSpec, HttpStats, Sender};
use crate::pipeline::progress::Progress;
use crate::sink::CircuitState;

/// What every connection of one source shares.
#[derive(Debug)]
pub(crate) struct State {
    spec: HttpSourceSpec,
    /// `None` once the source stops: requests are then answered 503.
    tx: Mutex<Option<Sender>>,
    progress: Arc<Progress>,
    waiters: Arc<Waiters>,
    defaults: Defaults,
    connections: Arc<Semaphore>,
    pub(crate) stats: Arc<HttpStats>,
}

impl State {
    pub(crate) fn new(
        spec: HttpSourceSpec,
        tx: Sender,
        progress: Arc<Progress>,
        waiters: Arc<Waiters>,
        host: &str,
    ) -> State {
        State {
            defaults: Defaults {
                host: Arc::from(host),
                target: Arc::from(format!("http:{}", spec.name)),
            },
            connections: Arc::new(Semaphore::new(spec.max_connections)),
            spec,
            tx: Mutex::new(Some(tx)),
            progress,
            waiters,
            stats: Arc::default(),
        }
    }

    /// Refuses further requests and lets the drain loop see the queue's end.
    pub(crate) fn close(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// A rustls acceptor for the PEM files.
pub(crate) fn tls_acceptor(files: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("tls_cert {}: {e}", files.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("tls_key {}: {e}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls_cert/tls_key: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Accepts until aborted. Over `max_connections`, a new connection is closed at once (the
/// client sees a reset or EOF and retries): waiting ones would hold file descriptors.
pub(crate) async fn accept_loop(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(source = %state.spec.name, error = %e, "http source cannot accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&state.connections).try_acquire_owned() else {
            state
                .stats
                .refused_connections
                .fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let header_timeout = state.spec.header_timeout;
            let mut http = hyper::server::conn::http1::Builder::new();
            // The timer starts whenever a request head is awaited, so it also closes
            // idle keep-alive connections.
            http.timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(64 * 1024);
            let service = {
                let state = Arc::clone(&state);
                hyper::service::service_fn(move |req| handle(Arc::clone(&state), req))
            };
            let _ = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => http.serve_connection(TokioIo::new(s), service).await,
                        _ => return,
                    }
                }
                None => http.serve_connection(TokioIo::new(stream), service).await,
            };
        });
    }
}

type Answer = Response<Full<Bytes>>;

fn json(status: StatusCode, body: serde_json::Value) -> Answer {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn error(status: StatusCode, reason: impl Into<String>) -> Answer {
    json(status, serde_json::json!({ "error": reason.into() }))
}

fn retry_after(mut r: Answer, secs: u64) -> Answer {
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Answer, Infallible> {
    let answer = match (req.method(), req.uri().path()) {
        (&Method::POST, "/events") => events(&state, req).await,
        (_, "/events") => error(StatusCode::METHOD_NOT_ALLOWED, "use POST /events"),
        _ => error(
            StatusCode::NOT_FOUND,
            "this source answers POST /events (its counters are on the agent's /metrics)",
        ),
    };
    state.stats.answered(answer.status().as_u16());
    Ok(answer)
}

fn authorized(state: &State, req: &Request<Incoming>) -> bool {
    let Some(token) = &state.spec.token else {
        return true;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compared in full whatever the first difference, so timing tells nothing.
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn events(state: &State, req: Request<Incoming>) -> Answer {
    let stats = &state.stats;
    if !authorized(state, &req) {
        let mut r = error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    let max = state.spec.max_body_bytes;
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than max_body_bytes = {max}"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return too_large();
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(framing) = Framing::of(content_type.as_deref()) else {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send application/json (an object or an array) or application/x-ndjson",
        );
    };
    let body = Limited::new(req.into_body(), max);
    let bytes = match tokio::time::timeout(state.spec.body_timeout, body.collect()).await {
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body did not arrive within {:?}",
                    state.spec.body_timeout
                ),
            );
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
        Ok(Err(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("cannot read the body: {e}"),
            );
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let events = match event::parse(&bytes, framing, &state.defaults, jiff::Timestamp::now()) {
        Ok(events) => events,
        Err(invalid) => {
            stats
                .rejected
                .fetch_add(invalid.len() as u64, Ordering::Relaxed);
            return json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({
                    "error": "invalid events: none of this request's events were accepted",
                    "invalid": invalid,
                }),
            );
        }
    };
    let n = events.len() as u64;
    if state.progress.circuit() == CircuitState::Open {
        stats.rejected.fetch_add(n, Ordering::Relaxed);
        let reason = state
            .progress
            .last_error()
            .unwrap_or_else(|| "Cassandra is not taking writes".into());
        return retry_after(
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("storage is unavailable (circuit open): {reason}"),
            ),
            2,
        );
    }
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    let waiter = (state.spec.ack == Ack::Written).then(|| state.waiters.register(&ids));
    let queued = {
        let tx = state.tx.lock().unwrap_or_else(|p| p.into_inner());
        match tx.as_ref() {
            None => Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the agent is stopping",
            )),
            Some(tx) => {
                // Under the lock only this request adds to the queue and the drain loop
                // only takes from it: room checked here is room for every event.
                let s = tx.stats();
                if s.depth + events.len() > s.capacity {
                    Err(retry_after(
                        error(
                            StatusCode::TOO_MANY_REQUESTS,
                            format!(
                                "the source's queue is full ({} of {} events): retry later",
                                s.depth, s.capacity
                            ),
                        ),
                        1,
                    ))
                } else {
                    let all = events.into_iter().all(|e| tx.try_send(e));
                    if all {
                        Ok(())
                    } else {
                        Err(error(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "the queue is closed",
                        ))
                    }
                }
            }
        }
    };
    if let Err(answer) = queued {
        if let Some(w) = &waiter {
            state.waiters.cancel(&ids, w);
        }
        stats.rejected.fetch_add(n, Ordering::Relaxed);
        return answer;
    }
    stats.accepted.fetch_add(n, Ordering::Relaxed);
    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    let body = serde_json::json!({ "ids": ids });
    let Some(waiter) = waiter else {
        return json(StatusCode::ACCEPTED, body);
    };
    let timeout = state.spec.write_timeout;
    match tokio::time::timeout(timeout, waiter.wait()).await {
        Ok(()) => json(StatusCode::OK, body),
        Err(_) => {
            let status = if state.progress.circuit() == CircuitState::Open {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::GATEWAY_TIMEOUT
            };
            json(
                status,
                serde_json::json!({
                    "error": format!("not written within {timeout:?}: the events stay queued; retry with the same ids"),
                    "ids": ids,
                }),
            )
        }
    }
}
