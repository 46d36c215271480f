//! What the agent tells the service on every contact: what `cacerts` holds, the roots
//! istiod has loaded (its `istio-ca-root-cert` ConfigMap) and istiod's rotation settings,
//! signed with the current intermediate key. The answer says what the cluster should hold.

use meshtrust_issuer::server::ServerIssuer;
use meshtrust_issuer::server::api::{ClusterReport, ReportRequest};
use meshtrust_issuer::server::wire;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::AgentConfig;
use crate::decide::Expected;
use crate::error::{Error, Result};
use crate::held::Bundle;
use crate::observe::ClusterView;

/// The agent's version, as reported.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The report of what `view` found, `held` being `cacerts`' bundle.
pub fn cluster_report(view: &ClusterView, held: &Bundle, now: OffsetDateTime) -> ClusterReport {
    ClusterReport {
        cacerts_serial: held.serial(),
        cacerts_roots: held.roots.clone(),
        istiod_roots: view.istiod.published_roots(),
        istiod: view.istiod.settings.clone(),
        cacerts_files: held.public_files(),
        agent_version: AGENT_VERSION.to_string(),
        observed_at: wire::time(now),
    }
}

/// Sends `report`, signed with `held`'s key, and returns what the service expects.
pub async fn send(
    issuer: &ServerIssuer,
    config: &AgentConfig,
    held: &Bundle,
    report: &ClusterReport,
    now: OffsetDateTime,
) -> Result<Expected> {
    let cluster = &config.cluster;
    let request = ReportRequest::signed(cluster, report, &held.certificate, &held.key, now)?;
    let answer = issuer.client().report(cluster, &request).await?;
    let renew_at = OffsetDateTime::parse(&answer.renew_at, &Rfc3339).map_err(|_| {
        Error::from(meshtrust_issuer::Error::BadAnswer {
            service: issuer.client().describe(),
            action: format!("reporting cluster {cluster}"),
            reason: format!("renew_at '{}' is not an RFC 3339 time", answer.renew_at),
        })
    })?;
    Ok(Expected {
        serial: answer.current_serial,
        renew_at,
        roots: answer.root_fingerprints,
        desired: answer.desired,
    })
}
