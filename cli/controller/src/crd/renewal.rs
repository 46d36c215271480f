//! Renewal on request (`meshtrust renew`): the request, kept in an annotation of the
//! `MeshTrust`, and the record of the request a cluster's status says was carried out.
//!
//! A request names, per cluster, the intermediate it wants replaced by its serial (as
//! `status.clusters[].serial` reports it). The controller reissues a named cluster while the
//! cluster still holds that intermediate; once it holds another, the request is done for it.
//! So a request is carried out exactly once, across rounds and controller restarts, without
//! comparing clocks — and an intermediate replaced meanwhile for any other reason counts.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::MeshTrust;

/// The annotation of a `MeshTrust` that holds its renewal request, as JSON.
pub const RENEWAL_REQUEST_ANNOTATION: &str = "meshtrust.io/renewal-request";

/// A request to reissue some clusters' intermediates now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenewalRequest {
    /// Names the request in status and Events.
    pub id: String,
    /// When it was made (RFC 3339, the requester's clock; for people only).
    pub requested_at: String,
    /// Cluster name → serial (hex) of the intermediate to replace.
    pub clusters: BTreeMap<String, String>,
}

impl RenewalRequest {
    /// The request `mt` carries: `None` without the annotation, `Some(Err)` (saying what is
    /// wrong) when it does not parse.
    pub fn of(mt: &MeshTrust) -> Option<Result<RenewalRequest, String>> {
        let text = mt
            .metadata
            .annotations
            .as_ref()?
            .get(RENEWAL_REQUEST_ANNOTATION)?;
        Some(RenewalRequest::parse(text))
    }

    /// Parses the annotation's value.
    pub fn parse(text: &str) -> Result<RenewalRequest, String> {
        let request: RenewalRequest = serde_json::from_str(text).map_err(|e| {
            format!(
                "annotation {RENEWAL_REQUEST_ANNOTATION} is not a renewal request ({e}); expected {{\"id\": …, \"requestedAt\": …, \"clusters\": {{NAME: SERIAL}}}}"
            )
        })?;
        if request.id.trim().is_empty() {
            return Err(format!(
                "annotation {RENEWAL_REQUEST_ANNOTATION} has an empty id"
            ));
        }
        Ok(request)
    }

    /// The annotation's value.
    pub fn to_annotation(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The serial this request wants replaced in `cluster`, if it covers it.
    pub fn serial_for(&self, cluster: &str) -> Option<&str> {
        self.clusters.get(cluster).map(String::as_str)
    }
}

/// The last renewal request carried out for one cluster, as its status records it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RenewalRecord {
    /// The request's id.
    pub id: String,
    /// When it was requested (RFC 3339, the requester's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<String>,
    /// Serial of the intermediate the request asked to replace.
    pub replaced_serial: String,
    /// Serial of the intermediate that replaced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// When the controller saw the request done (RFC 3339).
    pub completed_at: String,
    /// Whether the controller issued the replacement for this request (false: the
    /// intermediate had already been replaced, e.g. by a renewal or another writer).
    #[serde(default)]
    pub reissued: bool,
}
