//! `/metrics` (Prometheus text) and `/health` on a local address.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// Renders the Prometheus exposition text.
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;
/// `Ok` when the pipeline flows and the sink writes; otherwise the reason, as JSON.
pub type CheckHealth = Arc<dyn Fn() -> Result<serde_json::Value, serde_json::Value> + Send + Sync>;

#[derive(Clone)]
struct Endpoints {
    metrics: RenderMetrics,
    health: CheckHealth,
}

/// Binds first, so a taken port fails start-up with a clear error instead of later.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// Serves until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: RenderMetrics,
    health: CheckHealth,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/health", get(check_health))
        .with_state(Endpoints { metrics, health });
    axum::serve(listener, app).await
}

async fn render_metrics(State(e): State<Endpoints>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        (e.metrics)(),
    )
}

async fn check_health(State(e): State<Endpoints>) -> impl IntoResponse {
    let (code, body) = match (e.health)() {
        Ok(body) => (StatusCode::OK, body),
        Err(body) => (StatusCode::SERVICE_UNAVAILABLE, body),
    };
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}
