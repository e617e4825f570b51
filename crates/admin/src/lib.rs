//! The admin HTTP endpoint of an evermail node.
//!
//! - `GET /healthz`: 200 while the process runs (liveness: restart me if this fails).
//! - `GET /readyz`: 200 while the node accepts mail and sessions, 503 before it is
//!   ready and once it is draining for shutdown (readiness: route clients elsewhere).
//! - `GET /metrics`: Prometheus text format.
//!
//! The crate knows nothing about mail: the binary passes a [`Readiness`] flag and a
//! function that renders the metrics. It must not reach into storage or sessions.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_util::sync::CancellationToken;

/// Options of the admin endpoint; `[admin]` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminOptions {
    /// Where the admin HTTP endpoint listens. Keep it on loopback or a management
    /// network: it is unauthenticated.
    pub listen: SocketAddr,
}

impl Default for AdminOptions {
    fn default() -> Self {
        AdminOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

/// Whether the node is ready to serve; shared between the binary and this endpoint.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Renders the current metrics in Prometheus text format.
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;

#[derive(Clone)]
struct AppState {
    readiness: Readiness,
    render: RenderMetrics,
}

/// The routes, for embedding or testing.
pub fn router(readiness: Readiness, render: RenderMetrics) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(AppState { readiness, render })
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        (state.render)(),
    )
}

/// Serves the endpoint on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    readiness: Readiness,
    render: RenderMetrics,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(readiness, render))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn answers_health_readiness_and_metrics() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let readiness = Readiness::default();
        let shutdown = CancellationToken::new();
        let render: RenderMetrics = Arc::new(|| "evermail_up 1\n".to_string());
        let server = tokio::spawn(serve(listener, readiness.clone(), render, shutdown.clone()));

        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.0 200"));
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.0 503"));
        readiness.set(true);
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.0 200"));
        let metrics = get(addr, "/metrics").await;
        assert!(metrics.contains("evermail_up 1"), "{metrics}");
        assert!(get(addr, "/nope").await.starts_with("HTTP/1.0 404"));

        shutdown.cancel();
        server.await.unwrap().unwrap();
    }
}
