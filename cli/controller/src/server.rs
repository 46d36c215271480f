//! The controller's HTTP endpoints (axum): liveness, readiness and Prometheus metrics.
//!
//! - `GET /healthz`: 200 `ok` while the process serves requests.
//! - `GET /readyz`: 200 once the controller has synced (see [`Health::set_ready`]),
//!   503 with the reason otherwise; both name the last reconcile when there was one.
//! - `GET /metrics`: the [`Metrics`] in the OpenMetrics text format.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use time::format_description::well_known::Rfc3339;

use crate::error::{Error, Result};
use crate::health::Health;
use crate::metrics::Metrics;

/// The content type of the OpenMetrics text format, as Prometheus asks for it.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone)]
struct Endpoints {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// Serves `/healthz`, `/readyz` and `/metrics` on `listener` until `shutdown` completes,
/// then finishes the requests in flight and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let address = listener.local_addr().map_err(|e| Error::Serve {
        reason: format!("the health and metrics listener has no local address: {e}"),
    })?;
    tracing::info!(%address, "serving /healthz, /readyz and /metrics");
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Endpoints { metrics, health });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::Serve {
            reason: format!("the health and metrics server on {address} failed: {e}"),
        })
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(endpoints): State<Endpoints>) -> (StatusCode, String) {
    let health = &endpoints.health;
    let (status, mut body) = match health.readiness() {
        Ok(()) => (StatusCode::OK, "ok\n".to_string()),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        ),
    };
    if let Some(last) = health.last_reconcile() {
        let finished = last
            .finished
            .format(&Rfc3339)
            .unwrap_or_else(|_| last.finished.to_string());
        match last.error {
            None => body.push_str(&format!("last reconcile: succeeded at {finished}\n")),
            Some(e) => body.push_str(&format!("last reconcile: failed at {finished}: {e}\n")),
        }
    }
    (status, body)
}

async fn metrics_text(State(endpoints): State<Endpoints>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
        endpoints.metrics.encode(),
    )
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use time::macros::datetime;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    use super::*;
    use crate::health::{LastReconcile, NOT_SYNCED};

    /// A response as read off the wire.
    struct Response {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Response {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    /// A plain HTTP/1.1 GET that closes the connection, so the body runs to EOF.
    async fn get(address: SocketAddr, path: &str) -> Response {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send the request");
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .await
            .expect("read the response");
        let raw = String::from_utf8(raw).expect("a UTF-8 response");
        let (head, body) = raw.split_once("\r\n\r\n").expect("a header/body separator");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("a status line");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("a status code in {status_line:?}"));
        let headers = lines
            .map(|line| {
                let (name, value) = line.split_once(':').expect("name: value");
                (name.trim().to_string(), value.trim().to_string())
            })
            .collect::<Vec<_>>();
        let response = Response {
            status,
            headers,
            body: body.to_string(),
        };
        assert_ne!(
            response.header("transfer-encoding"),
            Some("chunked"),
            "this little client reads plain bodies only"
        );
        response
    }

    struct Running {
        address: SocketAddr,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        stop: oneshot::Sender<()>,
        task: JoinHandle<Result<()>>,
    }

    async fn start() -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("a local address");
        let metrics = Arc::new(Metrics::default());
        let health = Arc::new(Health::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            listener,
            Arc::clone(&metrics),
            Arc::clone(&health),
            async move {
                let _ = stopped.await;
            },
        ));
        Running {
            address,
            metrics,
            health,
            stop,
            task,
        }
    }

    #[tokio::test]
    async fn healthz_answers_ok_even_before_the_controller_is_ready() {
        let server = start().await;
        let r = get(server.address, "/healthz").await;
        assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    }

    #[tokio::test]
    async fn readyz_is_503_with_the_reason_until_ready_and_flips_back() {
        let server = start().await;
        let r = get(server.address, "/readyz").await;
        assert_eq!(r.status, 503);
        assert_eq!(r.body, format!("not ready: {NOT_SYNCED}\n"));

        server.health.set_ready();
        let r = get(server.address, "/readyz").await;
        assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));

        server.health.set_not_ready("lost the watch on MeshTrust");
        let r = get(server.address, "/readyz").await;
        assert_eq!(r.status, 503);
        assert_eq!(r.body, "not ready: lost the watch on MeshTrust\n");
    }

    #[tokio::test]
    async fn readyz_names_the_last_reconcile() {
        let server = start().await;
        server.health.set_ready();
        server.health.record_reconcile(LastReconcile {
            finished: datetime!(2026-11-02 10:00:00 UTC),
            error: Some("cluster east is unreachable".into()),
        });
        let r = get(server.address, "/readyz").await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body,
            "ok\nlast reconcile: failed at 2026-11-02T10:00:00Z: cluster east is unreachable\n"
        );
        server.health.record_reconcile(LastReconcile {
            finished: datetime!(2026-11-02 10:05:00 UTC),
            error: None,
        });
        let r = get(server.address, "/readyz").await;
        assert_eq!(
            r.body,
            "ok\nlast reconcile: succeeded at 2026-11-02T10:05:00Z\n"
        );
    }

    #[tokio::test]
    async fn metrics_are_openmetrics_text_with_the_current_values() {
        let server = start().await;
        server.metrics.set_leader(true);
        server.metrics.set_ready("east", "True");
        let r = get(server.address, "/metrics").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some(OPENMETRICS_CONTENT_TYPE));
        assert!(
            r.body.lines().any(|l| l == "meshtrust_is_leader 1"),
            "{}",
            r.body
        );
        assert!(
            r.body
                .lines()
                .any(|l| l
                    == r#"meshtrust_certificate_ready_status{cluster="east",condition="True"} 1"#),
            "{}",
            r.body
        );
        assert!(r.body.ends_with("# EOF\n"), "{}", r.body);

        server.metrics.set_leader(false);
        let r = get(server.address, "/metrics").await;
        assert!(r.body.lines().any(|l| l == "meshtrust_is_leader 0"));
    }

    #[tokio::test]
    async fn unknown_paths_are_404() {
        let server = start().await;
        assert_eq!(get(server.address, "/nope").await.status, 404);
    }

    #[tokio::test]
    async fn serve_returns_once_shutdown_completes() {
        let server = start().await;
        assert_eq!(get(server.address, "/healthz").await.status, 200);
        server
            .stop
            .send(())
            .expect("the server is listening for shutdown");
        server
            .task
            .await
            .expect("the server task does not panic")
            .expect("a clean shutdown");
    }
}
