//! `POST /v1/clusters/{name}/renew`: a new intermediate for a cluster that proves it holds
//! its current intermediate's key (a signature over the new CSR, the cluster and the time).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use meshtrust_ca::{Certificate, ClusterName, possession_message};
use meshtrust_issuer::server::api::{
    ClusterState, ErrorResponse, IssuedResponse, RENEW_PROOF_CONTEXT, RenewRequest,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::api::error::ApiError;
use crate::api::sign::{self, Grant};
use crate::api::{cluster_name, json_body, rate_limit, refuse};
use crate::state::Service;
use crate::store::{AuditEvent, Authority, Refusal};

/// How far `signed_at` may be from the service's clock.
const PROOF_SKEW: time::Duration = time::Duration::minutes(5);

/// Renews a cluster's intermediate.
#[utoipa::path(
    post,
    path = "/v1/clusters/{name}/renew",
    tag = "clusters",
    params(("name" = String, Path, description = "The cluster's name")),
    request_body = RenewRequest,
    responses(
        (status = 200, description = "Issued and recorded", body = IssuedResponse),
        (status = 400, description = "Malformed body, certificate or CSR", body = ErrorResponse),
        (status = 401, description = "The proof of possession does not verify or is stale", body = ErrorResponse),
        (status = 403, description = "Not the cluster's current certificate, or the cluster was revoked", body = ErrorResponse),
        (status = 404, description = "The cluster never enrolled", body = ErrorResponse),
        (status = 413, description = "Body too large", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
        (status = 502, description = "The issuer failed", body = ErrorResponse),
        (status = 503, description = "The store is unavailable; nothing was issued", body = ErrorResponse),
    )
)]
pub async fn renew(
    State(service): State<Arc<Service>>,
    Path(name): Path<String>,
    body: Body,
) -> Response {
    let mut principal = format!("cluster {name} (unauthenticated)");
    match renew_cluster(&service, &name, body, &mut principal).await {
        Ok(issued) => Json(issued).into_response(),
        Err(error) => refuse(&service, &principal, "renew", Some(&name), error).await,
    }
}

async fn renew_cluster(
    service: &Service,
    name: &str,
    body: Body,
    principal: &mut String,
) -> Result<IssuedResponse, ApiError> {
    let cluster = cluster_name(name)?;
    rate_limit(service, &format!("cluster {cluster}"))?;
    let request: RenewRequest = json_body(service, body).await?;
    let current = current_certificate(&request.certificate)?;
    let serial = meshtrust_issuer::server::wire::serial(&current);
    if let Err(error) = check_current(service, &cluster, &current, &serial).await {
        return retried(service, &cluster, &current, &request, error, principal).await;
    }
    let csr = sign::check_csr(service, &cluster, &request.csr)?;
    check_proof(service, &cluster, &current, &request, &csr.csr)?;
    *principal = format!("cluster {cluster} (intermediate serial {serial})");
    let grant = Grant {
        cluster,
        authority: Authority::Renewal {
            previous_serial: serial,
        },
        principal: principal.clone(),
        kind: "renew",
    };
    sign::issue(service, grant, csr).await
}

/// A renewal presenting a superseded certificate is the retry of the renewal that
/// superseded it when the new CSR is for the key the cluster now holds (the renewer's answer
/// was lost, or it was killed before writing it): it is answered with the current
/// certificate, as first issued. Anything else keeps `refusal`.
async fn retried(
    service: &Service,
    cluster: &ClusterName,
    current: &Certificate,
    request: &RenewRequest,
    refusal: ApiError,
    principal: &mut String,
) -> Result<IssuedResponse, ApiError> {
    if refusal.code != "not_current" {
        return Err(refusal);
    }
    let Ok(csr) = sign::check_csr(service, cluster, &request.csr) else {
        return Err(refusal);
    };
    let state = service
        .store
        .cluster(cluster.as_str())
        .await
        .map_err(|e| ApiError::store(&e))?;
    let Some(state) = state
        .filter(|s| s.state == ClusterState::Enrolled && s.key_fingerprint == csr.key_fingerprint)
    else {
        return Err(refusal);
    };
    check_proof(service, cluster, current, request, &csr.csr)?;
    let serial = meshtrust_issuer::server::wire::serial(current);
    *principal = format!("cluster {cluster} (intermediate serial {serial})");
    let event = AuditEvent {
        at: service.clock.now(),
        principal: principal.clone(),
        action: "renew".to_string(),
        cluster: Some(cluster.to_string()),
        serial: Some(state.current_serial.clone()),
        result: AuditEvent::OK.to_string(),
        reason: AuditEvent::RETRY.to_string(),
    };
    service
        .store
        .record(event.clone())
        .await
        .map_err(|e| ApiError::store(&e))?;
    service.audit.write(&event);
    sign::reissued(service, cluster, &state.current_serial).await
}

/// The certificate must be exactly the one this service issued as the cluster's current
/// intermediate, unrevoked and unexpired.
/// The `certificate` field of a renewal or a report: the cluster's current intermediate.
pub(super) fn current_certificate(pem: &str) -> Result<Certificate, ApiError> {
    Certificate::all_from_pem("certificate", pem.as_bytes())
        .ok()
        .and_then(|all| all.into_iter().next())
        .ok_or_else(|| {
            ApiError::bad_request(
                "certificate_malformed",
                "certificate: not a PEM certificate (send the cluster's current ca-cert.pem)",
            )
        })
}

pub(super) async fn check_current(
    service: &Service,
    cluster: &ClusterName,
    current: &Certificate,
    serial: &str,
) -> Result<(), ApiError> {
    let store_error = |e: crate::Error| ApiError::store(&e);
    let foreign = || {
        ApiError::forbidden(
            "certificate_unknown",
            format!(
                "the certificate (serial {serial}) was not issued by this service to cluster {cluster}"
            ),
        )
    };
    let record = service
        .store
        .certificate(serial)
        .await
        .map_err(store_error)?;
    let record = record.ok_or_else(foreign)?;
    let stored = Certificate::all_from_pem("stored", record.certificate_pem.as_bytes())
        .ok()
        .and_then(|all| all.into_iter().next());
    if record.cluster != cluster.as_str() || stored.as_ref().map(|c| c.der()) != Some(current.der())
    {
        return Err(foreign());
    }
    let state = service
        .store
        .cluster(cluster.as_str())
        .await
        .map_err(store_error)?;
    let state =
        state.ok_or_else(|| ApiError::from_refusal(&Refusal::UnknownCluster, cluster.as_str()))?;
    if state.state == ClusterState::Revoked || record.revoked {
        return Err(ApiError::from_refusal(&Refusal::Revoked, cluster.as_str()));
    }
    if state.current_serial != serial {
        let refusal = Refusal::NotCurrent {
            current_serial: state.current_serial,
        };
        return Err(ApiError::from_refusal(&refusal, cluster.as_str()));
    }
    if current.not_after() <= service.clock.now() {
        return Err(ApiError::forbidden(
            "certificate_expired",
            format!(
                "the certificate (serial {serial}) has expired: cluster {cluster} must enroll again"
            ),
        ));
    }
    Ok(())
}

/// The signature by the current intermediate's key over the new CSR, the cluster and
/// `signed_at`, made within five minutes of now.
fn check_proof(
    service: &Service,
    cluster: &ClusterName,
    current: &Certificate,
    request: &RenewRequest,
    csr: &meshtrust_ca::Csr,
) -> Result<(), ApiError> {
    check_signature(
        service,
        current,
        &request.signed_at,
        &request.signature,
        |signed_at| possession_message(RENEW_PROOF_CONTEXT, cluster, signed_at, csr),
    )
}

/// A proof of possession of `current`'s key: `signature` (base64url) over the message
/// `message` builds for `signed_at` (RFC 3339), made within five minutes of now.
pub(super) fn check_signature(
    service: &Service,
    current: &Certificate,
    signed_at: &str,
    signature: &str,
    message: impl FnOnce(OffsetDateTime) -> Vec<u8>,
) -> Result<(), ApiError> {
    let signed_at = OffsetDateTime::parse(signed_at, &Rfc3339).map_err(|_| {
        ApiError::bad_request(
            "proof_malformed",
            "signed_at: not an RFC 3339 time (e.g. 2026-12-01T10:00:00Z)",
        )
    })?;
    let now = service.clock.now();
    if (now - signed_at).abs() > PROOF_SKEW {
        return Err(ApiError::unauthorized(
            "proof_stale",
            format!(
                "signed_at is {} from the service's clock (at most 5 minutes allowed): sign the proof again now, and check the cluster's clock",
                meshtrust_ca::duration::human((now - signed_at).abs())
            ),
        ));
    }
    let signature = URL_SAFE_NO_PAD.decode(signature.trim()).map_err(|_| {
        ApiError::bad_request(
            "proof_malformed",
            "signature: not base64url without padding",
        )
    })?;
    current
        .verify_message(&message(signed_at), &signature)
        .map_err(|_| {
            ApiError::unauthorized(
                "proof_invalid",
                "the signature does not verify with the current intermediate's public key: sign with the key of the certificate sent",
            )
        })
}
