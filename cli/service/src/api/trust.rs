//! `GET /v1/trust-bundle`: the roots every cluster must trust now, and the policy.

use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use meshtrust_issuer::server::api::{ErrorResponse, PolicyInfo, RootInfo, TrustBundleResponse};
use meshtrust_issuer::server::wire;
use std::net::SocketAddr;

use crate::api::error::ApiError;
use crate::api::{client, rate_limit, refuse};
use crate::state::Service;

/// The trust bundle. No authentication.
#[utoipa::path(
    get, path = "/v1/trust-bundle", tag = "trust",
    responses(
        (status = 200, description = "The roots and the policy", body = TrustBundleResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
        (status = 502, description = "The issuer cannot say which roots it signs under", body = ErrorResponse),
    )
)]
pub async fn trust_bundle(
    State(service): State<Arc<Service>>,
    connect: ConnectInfo<SocketAddr>,
) -> Response {
    let principal = client(connect);
    match bundle(&service, &principal).await {
        Ok(body) => Json(body).into_response(),
        Err(error) => refuse(&service, &principal, "trust-bundle", None, error).await,
    }
}

async fn bundle(service: &Service, principal: &str) -> Result<TrustBundleResponse, ApiError> {
    rate_limit(service, principal)?;
    let (rotation_phase, roots) = crate::api::rotation::roots_now(service).await?;
    let template = &service.policy.template;
    Ok(TrustBundleResponse {
        trust_bundle_pem: roots.iter().map(|r| r.to_pem()).collect(),
        roots: roots
            .iter()
            .map(|root| RootInfo {
                fingerprint_sha256: wire::fingerprint(root),
                subject: root.subject(),
                not_after: wire::time(root.not_after()),
            })
            .collect(),
        rotation_phase,
        policy: PolicyInfo {
            organization: template.organization.clone(),
            common_name: template.common_name.clone(),
            dns_names: template.dns_names.clone(),
            key_types: service
                .policy
                .key_types
                .iter()
                .map(|k| k.as_str().to_string())
                .collect(),
            path_len: template.path_len,
            validity_seconds: template.validity.whole_seconds(),
        },
    })
}
