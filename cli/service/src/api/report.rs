//! `POST /v1/clusters/{name}/report`: a cluster's agent says what the cluster holds —
//! `cacerts`' serial and roots, the roots istiod publishes, istiod's rotation settings —
//! signed with the key of its current intermediate, and learns what it should hold.
//!
//! The proof is the renewal's (the certificate must be the cluster's current one, the
//! signature over the report's JSON text, the cluster and the time must verify, made
//! within five minutes). The report replaces the cluster's previous one in the store and
//! marks the cluster seen. Refusals are audited like every refusal; accepted reports are
//! not (an agent reports every minute), they are counted by `/metrics`' requests by route
//! and code.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use meshtrust_ca::{BundleFormat, Certificate, ClusterName, TrustBundle, possession_message_over};
use meshtrust_issuer::server::api::{
    ClusterReport, ErrorResponse, REPORT_PROOF_CONTEXT, ReportRequest, ReportResponse,
};
use meshtrust_issuer::server::wire;

use crate::api::error::ApiError;
use crate::api::renew::{check_current, check_signature, current_certificate};
use crate::api::rotation;
use crate::api::sign::renew_at;
use crate::api::{cluster_name, json_body, rate_limit, refuse};
use crate::state::Service;
use crate::store::Refusal;

/// Records a cluster's report.
#[utoipa::path(
    post,
    path = "/v1/clusters/{name}/report",
    tag = "clusters",
    params(("name" = String, Path, description = "The cluster's name")),
    request_body = ReportRequest,
    responses(
        (status = 200, description = "Recorded; what the cluster should hold", body = ReportResponse),
        (status = 400, description = "Malformed body, certificate, proof or report", body = ErrorResponse),
        (status = 401, description = "The proof of possession does not verify or is stale", body = ErrorResponse),
        (status = 403, description = "Not the cluster's current certificate, or the cluster was revoked", body = ErrorResponse),
        (status = 404, description = "The cluster never enrolled", body = ErrorResponse),
        (status = 413, description = "Body too large", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
        (status = 503, description = "The store is unavailable; nothing was recorded", body = ErrorResponse),
    )
)]
pub async fn report(
    State(service): State<Arc<Service>>,
    Path(name): Path<String>,
    body: Body,
) -> Response {
    let mut principal = format!("cluster {name} (unauthenticated)");
    match report_cluster(&service, &name, body, &mut principal).await {
        Ok(answer) => Json(answer).into_response(),
        Err(error) => refuse(&service, &principal, "report", Some(&name), error).await,
    }
}

async fn report_cluster(
    service: &Service,
    name: &str,
    body: Body,
    principal: &mut String,
) -> Result<ReportResponse, ApiError> {
    let cluster = cluster_name(name)?;
    rate_limit(service, &format!("cluster {cluster}"))?;
    let request: ReportRequest = json_body(service, body).await?;
    let current = current_certificate(&request.certificate)?;
    let serial = wire::serial(&current);
    check_current(service, &cluster, &current, &serial).await?;
    check_signature(
        service,
        &current,
        &request.signed_at,
        &request.signature,
        |signed_at| {
            possession_message_over(
                REPORT_PROOF_CONTEXT,
                &cluster,
                signed_at,
                request.report.as_bytes(),
            )
        },
    )?;
    *principal = format!("cluster {cluster} (intermediate serial {serial})");
    let report = parse(&request.report)?;
    consistent(&report, &current)?;
    record(service, &cluster, &request.report).await?;
    let (rotation_phase, desired) = rotation::desired(service, &cluster, &report).await?;
    let trust = TrustBundle::from_pem("trust", desired.trust_bundle_pem.as_bytes())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(ReportResponse {
        current_serial: serial,
        renew_at: wire::time(renew_at(service, current.not_before(), current.not_after())),
        root_fingerprints: wire::fingerprints(&trust),
        rotation_phase,
        desired,
    })
}

/// The report's `cacerts` files, when it carries them, hold the certificate it was signed
/// with: a rotation is planned from them.
fn consistent(report: &ClusterReport, current: &Certificate) -> Result<(), ApiError> {
    if report.cacerts_files.is_empty() {
        return Ok(());
    }
    let format = BundleFormat::detect(report.cacerts_files.keys().map(String::as_str));
    let file = format.cert_file();
    let held = report
        .cacerts_files
        .get(file)
        .and_then(|pem| Certificate::all_from_pem(file, pem.as_bytes()).ok())
        .and_then(|all| all.into_iter().next());
    if held.as_ref() != Some(current) {
        return Err(ApiError::bad_request(
            "report_inconsistent",
            format!(
                "report: cacerts_files.{file} is not the certificate the report is signed with"
            ),
        ));
    }
    if report.cacerts_files.contains_key(format.key_file()) {
        return Err(ApiError::bad_request(
            "report_key",
            format!(
                "report: cacerts_files carries {}: never send a private key",
                format.key_file()
            ),
        ));
    }
    Ok(())
}

/// The report, once its signature verified: it must be a [`ClusterReport`].
fn parse(text: &str) -> Result<ClusterReport, ApiError> {
    serde_json::from_str(text).map_err(|e| {
        ApiError::bad_request(
            "report_malformed",
            format!("report: not a cluster report as JSON text ({e})"),
        )
    })
}

async fn record(service: &Service, cluster: &ClusterName, text: &str) -> Result<(), ApiError> {
    let recorded = service
        .store
        .record_report(cluster.as_str(), service.clock.now(), text)
        .await
        .map_err(|e| ApiError::store(&e))?;
    if !recorded {
        return Err(ApiError::from_refusal(
            &Refusal::UnknownCluster,
            cluster.as_str(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_that_is_not_a_cluster_report_is_refused_naming_the_field() {
        let error = parse(r#"{"cacerts_serial": "01"}"#).unwrap_err();
        assert_eq!(error.code, "report_malformed");
        assert!(error.message.contains("cacerts_roots"), "{}", error.message);
        assert!(parse("not json").is_err());
    }
}
