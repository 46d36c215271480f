//! Admin routes, authenticated with the admin token (distinct from every cluster
//! credential): the inventory, revocation, enrollment tokens.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use meshtrust_issuer::server::api::{
    ClusterEntry, ClusterList, ErrorResponse, Reported, RotationStatus, TokenRequest, TokenResponse,
};
use meshtrust_issuer::server::wire;

use crate::api::error::ApiError;
use crate::api::{bearer, cluster_name, json_body, rate_limit, refuse};
use crate::state::Service;
use crate::store::{AuditEvent, ClusterRecord, NewToken, Refusal};
use crate::tokens;

const ADMIN: &str = "admin";

fn authorize(service: &Service, headers: &HeaderMap) -> Result<(), ApiError> {
    let admin = service.admin.as_ref().ok_or_else(|| {
        ApiError::forbidden(
            "admin_disabled",
            "this service has no admin token configured (admin_token_file)",
        )
    })?;
    match bearer(headers) {
        Some(token) if admin.matches(&token) => rate_limit(service, ADMIN),
        Some(_) => Err(ApiError::unauthorized(
            "admin_unauthorized",
            "the bearer token is not this service's admin token",
        )),
        None => Err(ApiError::unauthorized(
            "credential_missing",
            "no credential: send `Authorization: Bearer <admin token>`",
        )),
    }
}

/// Every cluster with its last report (also the status page's rows).
pub(crate) async fn inventory(service: &Service) -> Result<ClusterList, ApiError> {
    let store_error = |e: crate::Error| ApiError::store(&e);
    let records = service.store.clusters().await.map_err(store_error)?;
    let mut reports = service.store.reports().await.map_err(store_error)?;
    let clusters = records
        .into_iter()
        .map(|record| {
            let reported = reports.remove(&record.name).and_then(|(at, text)| {
                // A report is stored only once it parsed; one that no longer does (a
                // newer agent's, read by an older service) is left out.
                let report = serde_json::from_str(&text).ok()?;
                Some(Reported {
                    at: wire::time(at),
                    report,
                })
            });
            ClusterEntry {
                reported,
                ..entry(record)
            }
        })
        .collect();
    Ok(ClusterList { clusters })
}

/// The inventory entry of a cluster's record, without its report.
fn entry(record: ClusterRecord) -> ClusterEntry {
    ClusterEntry {
        name: record.name,
        state: record.state,
        serial: record.current_serial,
        not_after: wire::time(record.not_after),
        last_seen: wire::time(record.last_seen),
        roots: record.roots,
        key_fingerprint: record.key_fingerprint,
        reported: None,
    }
}

/// Lists every cluster that ever enrolled.
#[utoipa::path(
    get, path = "/v1/admin/clusters", tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The inventory", body = ClusterList),
        (status = 401, description = "Not the admin token", body = ErrorResponse),
        (status = 503, description = "The store is unavailable", body = ErrorResponse),
    )
)]
pub async fn clusters(State(service): State<Arc<Service>>, headers: HeaderMap) -> Response {
    let listed = async {
        authorize(&service, &headers)?;
        inventory(&service).await
    };
    match listed.await {
        Ok(list) => Json(list).into_response(),
        Err(error) => refuse(&service, ADMIN, "list-clusters", None, error).await,
    }
}

/// The root rotation in flight: its phase, and what holds it (`null` without one).
#[utoipa::path(
    get, path = "/v1/admin/rotation", tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The rotation, or null", body = Option<RotationStatus>),
        (status = 401, description = "Not the admin token", body = ErrorResponse),
        (status = 502, description = "An issuer cannot say which root it signs under", body = ErrorResponse),
        (status = 503, description = "The store is unavailable", body = ErrorResponse),
    )
)]
pub async fn rotation(State(service): State<Arc<Service>>, headers: HeaderMap) -> Response {
    let read = async {
        authorize(&service, &headers)?;
        crate::api::rotation::status(&service).await
    };
    match read.await {
        Ok(status) => Json(status).into_response(),
        Err(error) => refuse(&service, ADMIN, "rotation", None, error).await,
    }
}

/// Revokes a cluster's enrollment: it may no longer renew, and may enroll again with a new
/// credential and a new key.
#[utoipa::path(
    post, path = "/v1/admin/clusters/{name}/revoke", tag = "admin",
    params(("name" = String, Path, description = "The cluster's name")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Revoked", body = ClusterEntry),
        (status = 401, description = "Not the admin token", body = ErrorResponse),
        (status = 404, description = "The cluster never enrolled", body = ErrorResponse),
        (status = 503, description = "The store is unavailable", body = ErrorResponse),
    )
)]
pub async fn revoke(
    State(service): State<Arc<Service>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let revoked = async {
        authorize(&service, &headers)?;
        let cluster = cluster_name(&name)?;
        let now = service.clock.now();
        let record = service
            .store
            .revoke(cluster.as_str(), now, ADMIN)
            .await
            .map_err(|e| ApiError::store(&e))?
            .ok_or_else(|| ApiError::from_refusal(&Refusal::UnknownCluster, cluster.as_str()))?;
        Ok::<_, ApiError>(record)
    };
    match revoked.await {
        Ok(record) => {
            service.metrics.forget(&record.name);
            service
                .record(admin_event(
                    &service,
                    "revoke",
                    &record.name,
                    "ok",
                    "revoked by the admin",
                ))
                .await;
            Json(entry(record)).into_response()
        }
        Err(error) => refuse(&service, ADMIN, "revoke", Some(&name), error).await,
    }
}

/// Creates a one-time enrollment token for one cluster.
#[utoipa::path(
    post, path = "/v1/admin/tokens", tag = "admin",
    request_body = TokenRequest,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The token; shown only this once", body = TokenResponse),
        (status = 400, description = "Bad cluster name or TTL", body = ErrorResponse),
        (status = 401, description = "Not the admin token", body = ErrorResponse),
        (status = 503, description = "The store is unavailable", body = ErrorResponse),
    )
)]
pub async fn create_token(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let created = async {
        authorize(&service, &headers)?;
        let request: TokenRequest = json_body(&service, body).await?;
        let cluster = cluster_name(&request.cluster)?;
        let ttl = time::Duration::seconds(request.ttl_seconds);
        if ttl <= time::Duration::ZERO || ttl > tokens::MAX_TOKEN_TTL {
            return Err(ApiError::bad_request(
                "token_ttl",
                format!(
                    "ttl_seconds: {} is not between 1 and 604800 (7 days)",
                    request.ttl_seconds
                ),
            ));
        }
        create(&service, cluster.as_str(), ttl, ADMIN).await
    };
    match created.await {
        Ok(token) => Json(token).into_response(),
        Err(error) => refuse(&service, ADMIN, "create-token", None, error).await,
    }
}

/// Creates and stores a token for `cluster`, valid for `ttl`, audited as made by `by`.
pub async fn create(
    service: &Service,
    cluster: &str,
    ttl: time::Duration,
    by: &str,
) -> Result<TokenResponse, ApiError> {
    let (token, hash) = tokens::generate().map_err(|e| ApiError::internal(e.to_string()))?;
    let now = service.clock.now();
    let new = NewToken {
        hash,
        cluster: cluster.to_string(),
        expires_at: now + ttl,
        created_at: now,
        created_by: by.to_string(),
    };
    service
        .store
        .create_token(&new)
        .await
        .map_err(|e| ApiError::store(&e))?;
    let reason = format!("enrollment token expiring {}", wire::time(new.expires_at));
    service
        .record(admin_event(service, "create-token", cluster, "ok", &reason))
        .await;
    Ok(TokenResponse {
        token: token.to_string(),
        cluster: cluster.to_string(),
        expires_at: wire::time(new.expires_at),
    })
}

fn admin_event(
    service: &Service,
    action: &str,
    cluster: &str,
    result: &str,
    reason: &str,
) -> AuditEvent {
    AuditEvent {
        at: service.clock.now(),
        principal: ADMIN.to_string(),
        action: action.to_string(),
        cluster: Some(cluster.to_string()),
        serial: None,
        result: result.to_string(),
        reason: reason.to_string(),
    }
}
