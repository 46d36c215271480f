//! `POST /v1/clusters/{name}/enroll`: a cluster's first intermediate, for a CSR and a
//! one-time enrollment token or a projected ServiceAccount token.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use meshtrust_ca::ClusterName;

use meshtrust_issuer::server::api::{ClusterState, EnrollRequest, ErrorResponse, IssuedResponse};

use crate::api::error::ApiError;
use crate::api::sign::{self, CheckedCsr, Grant};
use crate::api::{bearer, cluster_name, json_body, rate_limit, refuse};
use crate::sa_token::Refusal as SaRefusal;
use crate::state::Service;
use crate::store::{AuditEvent, Authority, Refusal};
use crate::tokens;

/// Enrolls a cluster.
#[utoipa::path(
    post,
    path = "/v1/clusters/{name}/enroll",
    tag = "clusters",
    params(("name" = String, Path, description = "The cluster's name (a DNS label)")),
    request_body = EnrollRequest,
    security(("enrollment_token" = []), ("service_account_token" = [])),
    responses(
        (status = 200, description = "Issued and recorded", body = IssuedResponse),
        (status = 400, description = "Malformed body or CSR, or a CSR the policy refuses", body = ErrorResponse),
        (status = 401, description = "Missing, unknown, used, expired or invalid credential", body = ErrorResponse),
        (status = 403, description = "A credential for another cluster", body = ErrorResponse),
        (status = 409, description = "Already enrolled with another key", body = ErrorResponse),
        (status = 413, description = "Body too large", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
        (status = 502, description = "The issuer failed", body = ErrorResponse),
        (status = 503, description = "The store is unavailable; nothing was issued", body = ErrorResponse),
    )
)]
pub async fn enroll(
    State(service): State<Arc<Service>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut principal = format!("cluster {name} (unauthenticated)");
    match enroll_cluster(&service, &name, &headers, body, &mut principal).await {
        Ok(issued) => Json(issued).into_response(),
        Err(error) => refuse(&service, &principal, "enroll", Some(&name), error).await,
    }
}

async fn enroll_cluster(
    service: &Service,
    name: &str,
    headers: &HeaderMap,
    body: Body,
    principal: &mut String,
) -> Result<IssuedResponse, ApiError> {
    let cluster = cluster_name(name)?;
    rate_limit(service, &format!("cluster {cluster}"))?;
    let credential = bearer(headers).ok_or_else(|| {
        ApiError::unauthorized(
            "credential_missing",
            "no credential: send `Authorization: Bearer <enrollment token or ServiceAccount token>`",
        )
    })?;
    let request: EnrollRequest = json_body(service, body).await?;
    let csr = sign::check_csr(service, &cluster, &request.csr)?;
    // The store decides every rule again, atomically, when it records the issuance. Checking
    // first only spares the signer: worth two store reads before a remote CA's signature
    // (recorded and billed there), not before a local one (discarded without a trace).
    let check_first = !service.issuer.signs_in_process();
    let authority = if tokens::is_enrollment_token(&credential) {
        let hash = tokens::hash(&credential);
        *principal = format!("enrollment token sha256:{}", &hash[..16]);
        if check_first && let Some(replayed) = replay(service, &cluster, &hash, &csr).await? {
            audit_retry(service, principal, &replayed).await;
            return Ok(replayed);
        }
        Authority::Token { hash }
    } else {
        let now = service.clock.now();
        let account = service
            .accounts
            .verify(cluster.as_str(), &credential, now)
            .await
            .map_err(|refusal| match refusal {
                SaRefusal::JwksUnavailable { .. } => ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    refusal.code(),
                    refusal.to_string(),
                ),
                _ => ApiError::unauthorized(refusal.code(), refusal.to_string()),
            })?;
        *principal = format!("{} of cluster {cluster}", account.subject);
        Authority::ServiceAccount {
            subject: account.subject,
        }
    };
    if check_first {
        refuse_hijack(service, &cluster, &csr).await?;
    }
    let grant = Grant {
        cluster,
        authority,
        principal: principal.clone(),
        kind: "enroll",
    };
    sign::issue(service, grant, csr).await
}

/// Checks a token before anything is signed (the store checks again when recording), and
/// answers a retry — the same token and the same key, whose first answer was lost — with
/// the certificate already issued instead of refusing it.
async fn replay(
    service: &Service,
    cluster: &ClusterName,
    hash: &str,
    csr: &CheckedCsr,
) -> Result<Option<IssuedResponse>, ApiError> {
    let token = service
        .store
        .token(hash)
        .await
        .map_err(|e| ApiError::store(&e))?
        .ok_or_else(|| ApiError::from_refusal(&Refusal::TokenUnknown, cluster.as_str()))?;
    if token.cluster != cluster.as_str() {
        let refusal = Refusal::TokenForOtherCluster {
            bound_to: token.cluster,
        };
        return Err(ApiError::from_refusal(&refusal, cluster.as_str()));
    }
    if token.used_at.is_none() {
        if token.expires_at <= service.clock.now() {
            return Err(ApiError::from_refusal(
                &Refusal::TokenExpired,
                cluster.as_str(),
            ));
        }
        return Ok(None);
    }
    let same_key = token.used_by_key.as_deref() == Some(csr.key_fingerprint.as_str());
    let current = service
        .store
        .cluster(cluster.as_str())
        .await
        .map_err(|e| ApiError::store(&e))?
        .filter(|c| same_key && c.state == ClusterState::Enrolled)
        .filter(|c| c.key_fingerprint == csr.key_fingerprint);
    match current {
        Some(current) => sign::reissued(service, cluster, &current.current_serial)
            .await
            .map(Some),
        None => Err(ApiError::from_refusal(
            &Refusal::TokenUsed,
            cluster.as_str(),
        )),
    }
}

/// Audits a retry answered with the certificate already issued: a successful use of a
/// spent token, though nothing new was signed.
async fn audit_retry(service: &Service, principal: &str, replayed: &IssuedResponse) {
    let event = AuditEvent {
        at: service.clock.now(),
        principal: principal.to_string(),
        action: "enroll".to_string(),
        cluster: Some(replayed.cluster.clone()),
        serial: Some(replayed.serial.clone()),
        result: AuditEvent::OK.to_string(),
        reason: AuditEvent::RETRY.to_string(),
    };
    service.record(event).await;
}

/// Refuses a second enrollment of a cluster with another key unless it was revoked.
async fn refuse_hijack(
    service: &Service,
    cluster: &ClusterName,
    csr: &CheckedCsr,
) -> Result<(), ApiError> {
    let existing = service
        .store
        .cluster(cluster.as_str())
        .await
        .map_err(|e| ApiError::store(&e))?;
    match existing {
        Some(c)
            if c.state == ClusterState::Enrolled && c.key_fingerprint != csr.key_fingerprint =>
        {
            let refusal = Refusal::AlreadyEnrolled {
                key_fingerprint: c.key_fingerprint,
            };
            Err(ApiError::from_refusal(&refusal, cluster.as_str()))
        }
        _ => Ok(()),
    }
}
