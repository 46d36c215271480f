//! The one path from an authenticated CSR to a durably recorded intermediate, shared by
//! enrollment and renewal: check the CSR against the policy, sign with the issuer, commit
//! the issuance (conditionally, in one transaction) and only then answer.

use meshtrust_ca::{Certificate, ClusterName, Csr, TrustBundle, sha256_hex};

use meshtrust_issuer::IssueRequest;
use meshtrust_issuer::server::api::IssuedResponse;
use meshtrust_issuer::server::wire;
use time::OffsetDateTime;

use crate::api::error::ApiError;
use crate::api::rotation;
use crate::state::Service;
use crate::store::{AuditEvent, Authority, Committed, Issuance};

/// A CSR that passed every check, with the fingerprint of the key it carries.
#[derive(Debug)]
pub struct CheckedCsr {
    /// The request.
    pub csr: Csr,
    /// SHA-256 of its raw public key (as `PrivateKey::fingerprint` computes it).
    pub key_fingerprint: String,
}

/// Parses a CSR (PEM) and checks it against the policy for `cluster`: well-formed, its
/// self-signature valid, an allowed key type, and the policy's subject and SANs.
pub fn check_csr(
    service: &Service,
    cluster: &ClusterName,
    pem_text: &str,
) -> Result<CheckedCsr, ApiError> {
    let der = pem::parse(pem_text)
        .ok()
        .filter(|p| p.tag() == "CERTIFICATE REQUEST" || p.tag() == "NEW CERTIFICATE REQUEST")
        .map(|p| p.into_contents())
        .ok_or_else(|| {
            ApiError::bad_request(
                "csr_malformed",
                "csr: not a PEM `CERTIFICATE REQUEST` (PKCS#10)",
            )
        })?;
    let csr = Csr::from_der(der);
    let info = csr
        .inspect()
        .map_err(|e| ApiError::bad_request("csr_invalid", format!("csr: {e}")))?;
    let params = service.policy.params(cluster.clone());
    let mismatches = meshtrust_ca::csr_matches(&info, &params, &service.policy.key_types);
    if !mismatches.is_empty() {
        return Err(ApiError::bad_request(
            "csr_policy",
            format!(
                "csr: does not match this service's policy for cluster {cluster}: {} (GET /v1/trust-bundle shows the policy)",
                mismatches.join("; ")
            ),
        ));
    }
    let raw = csr
        .public_key_raw()
        .map_err(|e| ApiError::bad_request("csr_malformed", format!("csr: {e}")))?;
    Ok(CheckedCsr {
        csr,
        key_fingerprint: sha256_hex(&raw),
    })
}

/// What is being issued, by whom.
#[derive(Debug)]
pub struct Grant {
    /// The cluster.
    pub cluster: ClusterName,
    /// The authority the store checks again, atomically, when recording.
    pub authority: Authority,
    /// Who asked, for the audit log.
    pub principal: String,
    /// `enroll` or `renew`.
    pub kind: &'static str,
}

/// Signs `csr` for `grant.cluster`, records it and answers.
pub async fn issue(
    service: &Service,
    grant: Grant,
    csr: CheckedCsr,
) -> Result<IssuedResponse, ApiError> {
    let now = service.clock.now();
    let params = service.policy.params(grant.cluster.clone());
    let request = IssueRequest::new(grant.cluster.clone(), csr.csr, params.profile(), now);
    let signing = rotation::signing(service, &grant.cluster).await?;
    let started = service.clock.instant();
    let signed = signing.issuer.issue_intermediate(&request).await;
    service.metrics.signed(service.clock.elapsed(started));
    let mut signed = signed.map_err(|e| ApiError::issuer(&signing.issuer.describe(), &e))?;
    let trust_pem = match signing.trust_pem {
        Some(pem) => {
            signed.trust_bundle =
                TrustBundle::from_pem("the rotation's trust bundle", pem.as_bytes())
                    .map_err(|e| ApiError::internal(e.to_string()))?;
            pem
        }
        None => signed.trust_bundle.to_pem(),
    };
    record(service, grant, csr.key_fingerprint, signed, trust_pem, now).await
}

/// Commits a signed intermediate (conditionally: the store checks the grant's authority
/// again in the same transaction) and, once it is durable, builds the answer.
async fn record(
    service: &Service,
    grant: Grant,
    key_fingerprint: String,
    signed: meshtrust_issuer::IssueResponse,
    trust_pem: String,
    now: OffsetDateTime,
) -> Result<IssuedResponse, ApiError> {
    let cluster = grant.cluster.clone();
    let kind = grant.kind;
    let issuance = issuance(grant, key_fingerprint, &signed, now);
    let audit = issuance.audit.clone();
    let answer = IssuedResponse {
        cluster: cluster.to_string(),
        serial: issuance.serial.clone(),
        certificate: issuance.certificate_pem.clone(),
        chain: issuance.chain_pem.clone(),
        trust_bundle: trust_pem,
        root_fingerprints: issuance.roots.clone(),
        not_after: wire::time(issuance.not_after),
        renew_at: wire::time(renew_at(
            service,
            signed.certificate.not_before(),
            issuance.not_after,
        )),
        notices: signed.notices,
    };
    match service.store.commit(issuance).await {
        Ok(Committed::Recorded) => {
            service.audit.write(&audit);
            let not_after = signed.certificate.not_after();
            service.metrics.issued(kind, cluster.as_str(), not_after);
            Ok(answer)
        }
        Ok(Committed::Refused(refusal)) => {
            let mut error = ApiError::from_refusal(&refusal, cluster.as_str());
            error.recorded = true;
            Err(error)
        }
        Ok(Committed::Retried { serial }) => {
            service.audit.write(&AuditEvent {
                serial: Some(serial.clone()),
                reason: AuditEvent::RETRY.to_string(),
                ..audit
            });
            reissued(service, &cluster, &serial).await
        }
        Err(e) => Err(ApiError::store(&e)),
    }
}

/// What the store records of a signed intermediate, with its audit line.
fn issuance(
    grant: Grant,
    key_fingerprint: String,
    signed: &meshtrust_issuer::IssueResponse,
    now: OffsetDateTime,
) -> Issuance {
    let serial = wire::serial(&signed.certificate);
    let audit = AuditEvent {
        at: now,
        principal: grant.principal,
        action: grant.kind.to_string(),
        cluster: Some(grant.cluster.to_string()),
        serial: Some(serial.clone()),
        result: AuditEvent::OK.to_string(),
        reason: String::new(),
    };
    Issuance {
        cluster: grant.cluster.to_string(),
        authority: grant.authority,
        key_fingerprint,
        serial,
        not_after: signed.certificate.not_after(),
        certificate_pem: signed.certificate.to_pem(),
        chain_pem: signed.chain.iter().map(|c| c.to_pem()).collect(),
        roots: wire::fingerprints(&signed.trust_bundle),
        at: now,
        audit,
    }
}

/// When a certificate valid from `not_before` to `not_after` is due for renewal.
pub fn renew_at(
    service: &Service,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> OffsetDateTime {
    service.renewal.renewal_time(not_before, not_after)
}

/// The answer first given for the certificate `serial`, from the store: a retry of the
/// enrollment that issued it.
pub async fn reissued(
    service: &Service,
    cluster: &ClusterName,
    serial: &str,
) -> Result<IssuedResponse, ApiError> {
    let record = service
        .store
        .certificate(serial)
        .await
        .map_err(|e| ApiError::store(&e))?
        .ok_or_else(|| ApiError::internal("the cluster's current certificate is not stored"))?;
    let certificate =
        Certificate::all_from_pem("stored certificate", record.certificate_pem.as_bytes())
            .ok()
            .and_then(|mut all| all.pop())
            .ok_or_else(|| ApiError::internal("the stored certificate does not parse"))?;
    let signing = rotation::signing(service, cluster).await?;
    let trust_pem = match signing.trust_pem {
        Some(pem) => pem,
        None => signing
            .issuer
            .trust_bundle()
            .await
            .map_err(|e| ApiError::issuer(&signing.issuer.describe(), &e))?
            .to_pem(),
    };
    let trust = TrustBundle::from_pem("trust bundle", trust_pem.as_bytes())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(IssuedResponse {
        cluster: cluster.to_string(),
        serial: record.serial,
        certificate: record.certificate_pem,
        chain: record.chain_pem,
        trust_bundle: trust_pem,
        root_fingerprints: wire::fingerprints(&trust),
        not_after: wire::time(record.not_after),
        renew_at: wire::time(renew_at(
            service,
            certificate.not_before(),
            record.not_after,
        )),
        notices: vec![
            "this token was already used by this key: the certificate issued then is returned again"
                .to_string(),
        ],
    })
}
