//! The `/v1` HTTP API: routes, the OpenAPI document generated from the handlers, and what
//! every handler shares (JSON bodies within the size limit, bearer credentials, cluster
//! names from the path, refusals that are audited and counted).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use meshtrust_ca::ClusterName;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::state::Service;
use crate::store::AuditEvent;

mod admin;
mod body;
mod enroll;
pub mod error;
mod openapi;
mod ops;
pub mod page;
mod renew;
mod report;
pub mod rotation;
pub mod sign;
mod trust;

pub use error::ApiError;
pub use openapi::ApiDoc;

/// The router of one replica: `/v1/…`, `/healthz`, `/readyz`, `/metrics`.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/v1/trust-bundle", get(trust::trust_bundle))
        .route("/v1/clusters/{name}/enroll", post(enroll::enroll))
        .route("/v1/clusters/{name}/renew", post(renew::renew))
        .route("/v1/clusters/{name}/report", post(report::report))
        .route("/v1/admin/clusters", get(admin::clusters))
        .route("/v1/admin/clusters/{name}/revoke", post(admin::revoke))
        .route("/v1/admin/tokens", post(admin::create_token))
        .route("/v1/admin/rotation", get(admin::rotation))
        .route("/v1/openapi.json", get(openapi::document))
        .route("/status", get(page::status))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(service.clone(), observe))
        .with_state(service)
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route; the API is described at /v1/openapi.json",
    )
}

/// Bounds every request by the request timeout, reads its body before any handler sees
/// it ([`body::read_whole`]), counts it by route and status, and writes it to the request
/// log if there is one.
async fn observe(State(service): State<Arc<Service>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let limit = service.limits.max_body_bytes;
    let (method, path) = (
        request.method().to_string(),
        request.uri().path().to_string(),
    );
    let (request, kept) = body::read_whole_kept(request, limit).await;
    let handled = next.run(request);
    let response = match tokio::time::timeout(service.limits.request_timeout, handled).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the request took longer than {} s and was abandoned; retry",
                service.limits.request_timeout.as_secs()
            ),
        )
        .into_response(),
    };
    service.metrics.request(&route, response.status().as_u16());
    if let Some(log) = &service.requests {
        let body = kept
            .as_deref()
            .unwrap_or(b"(over the size limit, not kept)");
        let status = response.status().as_u16();
        log.write(service.clock.now(), &method, &path, status, body);
    }
    response
}

/// Reads a JSON body of at most the configured size.
pub(crate) async fn json_body<T: DeserializeOwned>(
    service: &Service,
    body: Body,
) -> Result<T, ApiError> {
    let limit = service.limits.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        if body::is_too_large(e) {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the request body is larger than {limit} bytes"),
            )
        } else {
            ApiError::bad_request(
                "body_unreadable",
                "the request body could not be read to its end; send it again",
            )
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(
            "body_malformed",
            format!("the request body is not the expected JSON: {e}"),
        )
    })
}

/// The bearer credential of a request, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<Zeroizing<String>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| Zeroizing::new(token.trim().to_string()))
        .filter(|t| !t.is_empty())
}

/// A cluster name from the path.
pub(crate) fn cluster_name(name: &str) -> Result<ClusterName, ApiError> {
    ClusterName::new(name).map_err(|e| ApiError::bad_request("cluster_name", e.to_string()))
}

/// Takes one request from `principal`'s rate-limit bucket.
pub(crate) fn rate_limit(service: &Service, principal: &str) -> Result<(), ApiError> {
    service.rate.check(principal).map_err(|wait| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "{principal} sent more than {} requests a minute; retry in {} s",
                service.limits.requests_per_minute,
                wait.as_secs().max(1)
            ),
        )
    })
}

/// The client's address, the principal of an unauthenticated request.
pub(crate) fn client(ConnectInfo(address): ConnectInfo<SocketAddr>) -> String {
    format!("client {}", address.ip())
}

/// Audits and counts a refusal, then answers with it.
pub(crate) async fn refuse(
    service: &Service,
    principal: &str,
    action: &str,
    cluster: Option<&str>,
    error: ApiError,
) -> Response {
    service.metrics.refused(error.code);
    let result = if error.is_refusal() {
        "refused"
    } else {
        "error"
    };
    let event = AuditEvent {
        at: service.clock.now(),
        principal: principal.to_string(),
        action: action.to_string(),
        cluster: cluster.map(str::to_string),
        serial: None,
        result: result.to_string(),
        reason: format!("{}: {}", error.code, error.message),
    };
    if error.recorded {
        service.audit.write(&event);
    } else {
        service.record(event).await;
    }
    error.into_response()
}
