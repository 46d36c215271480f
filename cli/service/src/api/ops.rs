//! `/healthz` (the process answers), `/readyz` (the store answers) and `/metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::api::error::ApiError;
use crate::state::Service;

/// Liveness: the process serves requests.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the store answers a query.
pub async fn readyz(State(service): State<Arc<Service>>) -> Response {
    match service.store.ping().await {
        Ok(()) => "ready\n".into_response(),
        Err(e) => ApiError::store(&e).into_response(),
    }
}

/// Prometheus metrics, OpenMetrics text.
pub async fn metrics(State(service): State<Arc<Service>>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        service.metrics.encode(),
    )
        .into_response()
}
