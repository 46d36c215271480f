//! Building a renewal: a new CSR, and proof that the cluster holds the key of its current
//! intermediate (a signature over [`possession_message`] with [`RENEW_PROOF_CONTEXT`]); and
//! a report, signed the same way over its JSON text ([`REPORT_PROOF_CONTEXT`]).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use meshtrust_ca::{
    Certificate, ClusterName, Csr, PrivateKey, possession_message, possession_message_over,
};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::server::api::{
    ClusterReport, RENEW_PROOF_CONTEXT, REPORT_PROOF_CONTEXT, RenewRequest, ReportRequest,
};

impl RenewRequest {
    /// The renewal of `cluster` with `csr` (for its new key), proved by signing with
    /// `current_key`, the key of `current` (its intermediate now), at `signed_at`.
    pub fn signed(
        cluster: &ClusterName,
        csr: &Csr,
        current: &Certificate,
        current_key: &PrivateKey,
        signed_at: OffsetDateTime,
    ) -> Result<RenewRequest> {
        let message = possession_message(RENEW_PROOF_CONTEXT, cluster, signed_at, csr);
        let signature = current_key
            .sign_message(&message)
            .map_err(|cause| Error::Ca {
                context: format!("proving possession of cluster {cluster}'s current key"),
                cause,
            })?;
        Ok(RenewRequest::with_signature(
            csr, current, signed_at, &signature,
        ))
    }

    /// The renewal with a `signature` already made over
    /// `possession_message(RENEW_PROOF_CONTEXT, cluster, signed_at, csr)` (by a key held
    /// elsewhere, e.g. in a KMS).
    pub fn with_signature(
        csr: &Csr,
        current: &Certificate,
        signed_at: OffsetDateTime,
        signature: &[u8],
    ) -> RenewRequest {
        RenewRequest {
            csr: csr.to_pem(),
            certificate: current.to_pem(),
            signed_at: crate::server::wire::time(signed_at),
            signature: URL_SAFE_NO_PAD.encode(signature),
        }
    }
}

impl ClusterReport {
    /// Whether istiod has loaded what `cacerts` holds: the roots it publishes in
    /// `istio-ca-root-cert` are exactly `cacerts`' roots. `None` when it publishes none.
    pub fn istiod_loaded(&self) -> Option<bool> {
        meshtrust_ca::istiod_loaded(self.istiod_roots.as_deref(), &self.cacerts_roots)
    }

    /// What the report says of istiod, as the rotation's gate reads it.
    pub fn istiod_state(&self) -> meshtrust_ca::IstiodState {
        meshtrust_ca::IstiodState {
            multiroot_mesh: self.istiod.as_ref().map(|s| s.multiroot_mesh.clone()),
            published_roots: self.istiod_roots.clone(),
        }
    }
}

impl ReportRequest {
    /// The report of `cluster`, signed with `current_key`, the key of `current` (its
    /// intermediate now), at `signed_at`.
    pub fn signed(
        cluster: &ClusterName,
        report: &ClusterReport,
        current: &Certificate,
        current_key: &PrivateKey,
        signed_at: OffsetDateTime,
    ) -> Result<ReportRequest> {
        let text = serde_json::to_string(report).map_err(|e| Error::Internal {
            reason: format!("encoding the report of cluster {cluster}: {e}"),
        })?;
        let message =
            possession_message_over(REPORT_PROOF_CONTEXT, cluster, signed_at, text.as_bytes());
        let signature = current_key
            .sign_message(&message)
            .map_err(|cause| Error::Ca {
                context: format!("signing cluster {cluster}'s report"),
                cause,
            })?;
        Ok(ReportRequest {
            certificate: current.to_pem(),
            report: text,
            signed_at: crate::server::wire::time(signed_at),
            signature: URL_SAFE_NO_PAD.encode(signature),
        })
    }
}

#[cfg(test)]
#[path = "renewal_tests.rs"]
mod tests;
