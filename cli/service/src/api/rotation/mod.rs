//! Root rotation driven by the service: the configuration names the issuer to rotate to
//! (`rotation.to`, any backend: local → local, local → AWS Private CA, one CA ARN to
//! another); every answer to a cluster's report says what that cluster should hold, from
//! [`plan`] over what every cluster reported; every intermediate is signed by the root the
//! phase issues from. The state lives in what the clusters report, so any replica, and a
//! restarted one, plans the same.

use std::collections::BTreeSet;
use std::sync::Arc;

use meshtrust_ca::{Certificate, ClusterName, RotationRoot};
use meshtrust_issuer::Issuer;
use meshtrust_issuer::server::api::{
    ClusterReport, ClusterState, DesiredCacerts, RotationPhase, RotationStatus,
};
use meshtrust_issuer::server::wire;

use crate::api::error::ApiError;
use crate::state::Service;

use crate::gate::{self as plan, Decided, Member, Roots, Route};

/// Who signs a cluster's next intermediate, and the trust file its answer carries
/// (`None`: the issuer's own trust bundle).
pub struct Signing {
    /// The issuer.
    pub issuer: Arc<dyn Issuer>,
    /// The trust file to answer with, byte for byte.
    pub trust_pem: Option<String>,
}

/// The one root an issuer signs under.
async fn root_of(issuer: &dyn Issuer, what: &str) -> Result<Certificate, ApiError> {
    let trust = issuer
        .trust_bundle()
        .await
        .map_err(|e| ApiError::issuer(&issuer.describe(), &e))?;
    match trust.roots() {
        [root] => Ok(root.clone()),
        roots => Err(ApiError::new(
            axum::http::StatusCode::BAD_GATEWAY,
            "rotation_roots",
            format!(
                "the {what} issuer ({}) signs under {} roots; a rotation goes from one root to one other",
                issuer.describe(),
                roots.len()
            ),
        )),
    }
}

/// The gate now (decided at most [`GATE_TTL`] ago), `None` without a rotation.
pub async fn decided(service: &Service) -> Result<Option<Arc<Decided>>, ApiError> {
    let Some(rotation) = &service.rotation else {
        return Ok(None);
    };
    let cache = &service.rotation_gate;
    if let Some(decided) = cache.fresh(&service.clock) {
        return Ok(Some(decided));
    }
    let _deciding = cache.deciding().await;
    if let Some(decided) = cache.fresh(&service.clock) {
        return Ok(Some(decided));
    }
    let started = service.clock.instant();
    let roots = Roots {
        old: root_of(service.issuer.as_ref(), "current").await?,
        new: root_of(rotation.to.as_ref(), "new").await?,
    };
    let members = members(service).await?;
    let gate = plan::gate(&roots, rotation.hold, &members, service.clock.now());
    let decided = Arc::new(Decided { roots, gate });
    cache.keep(started, Arc::clone(&decided));
    Ok(Some(decided))
}

/// Every enrolled cluster with its last report.
async fn members(service: &Service) -> Result<Vec<Member>, ApiError> {
    let store_error = |e: crate::Error| ApiError::store(&e);
    let clusters = service.store.clusters().await.map_err(store_error)?;
    let mut reports = service.store.reports().await.map_err(store_error)?;
    Ok(clusters
        .into_iter()
        .filter(|c| c.state == ClusterState::Enrolled)
        .filter_map(|c| {
            let (reported_at, report) = match reports.remove(&c.name) {
                Some((at, text)) => (Some(at), serde_json::from_str::<ClusterReport>(&text).ok()),
                None => (None, None),
            };
            Some(Member {
                name: ClusterName::new(&c.name).ok()?,
                report,
                reported_at,
            })
        })
        .collect())
}

/// The rotation's status, `None` without one.
pub async fn status(service: &Service) -> Result<Option<RotationStatus>, ApiError> {
    Ok(decided(service).await?.map(|d| d.gate.status.clone()))
}

/// The route of `cluster`, which last reported `report` (`None`: never; it is routed as a
/// cluster without a bundle).
fn route_of(decided: &Decided, cluster: &ClusterName, report: Option<&ClusterReport>) -> Route {
    let trust = report.and_then(|r| plan::trust_in(cluster, r));
    plan::route(&decided.gate, &decided.roots, trust.as_ref())
}

/// Who signs `cluster`'s next intermediate: routed from its last report in the store.
pub async fn signing(service: &Service, cluster: &ClusterName) -> Result<Signing, ApiError> {
    let (Some(rotation), Some(decided)) = (&service.rotation, decided(service).await?) else {
        return Ok(Signing {
            issuer: Arc::clone(&service.issuer),
            trust_pem: None,
        });
    };
    let report = service
        .store
        .report(cluster.as_str())
        .await
        .map_err(|e| ApiError::store(&e))?
        .and_then(|(_, text)| serde_json::from_str::<ClusterReport>(&text).ok());
    let route = route_of(&decided, cluster, report.as_ref());
    Ok(Signing {
        issuer: match route.issue_from {
            RotationRoot::Old => Arc::clone(&service.issuer),
            RotationRoot::New => Arc::clone(&rotation.to),
        },
        trust_pem: Some(route.desired.trust_bundle_pem),
    })
}

/// What `cluster`, which just sent `report`, should hold, and the phase.
pub async fn desired(
    service: &Service,
    cluster: &ClusterName,
    report: &ClusterReport,
) -> Result<(RotationPhase, DesiredCacerts), ApiError> {
    if let Some(decided) = decided(service).await? {
        let route = route_of(&decided, cluster, Some(report));
        return Ok((decided.gate.status.phase, route.desired));
    }
    let trust = service
        .issuer
        .trust_bundle()
        .await
        .map_err(|e| ApiError::issuer(&service.issuer.describe(), &e))?;
    let set = |roots: &[String]| roots.iter().cloned().collect::<BTreeSet<_>>();
    let held = plan::trust_in(cluster, report)
        .map(|t| String::from_utf8_lossy(t.trust_pem()).into_owned());
    let desired = match held {
        Some(pem) if set(&report.cacerts_roots) == set(&wire::fingerprints(&trust)) => {
            DesiredCacerts {
                trust_bundle_pem: pem,
                reissue: false,
            }
        }
        _ => DesiredCacerts {
            trust_bundle_pem: trust.to_pem(),
            reissue: set(&report.cacerts_roots) != set(&wire::fingerprints(&trust)),
        },
    };
    Ok((RotationPhase::Steady, desired))
}

/// The roots every cluster must trust now: the issuer's, or during a rotation both roots
/// until it completes.
pub async fn roots_now(service: &Service) -> Result<(RotationPhase, Vec<Certificate>), ApiError> {
    match decided(service).await? {
        Some(decided) => {
            let (phase, roots) = (decided.gate.status.phase, &decided.roots);
            if phase == RotationPhase::Complete {
                return Ok((phase, vec![roots.new.clone()]));
            }
            Ok((phase, vec![roots.old.clone(), roots.new.clone()]))
        }
        None => {
            let trust = service
                .issuer
                .trust_bundle()
                .await
                .map_err(|e| ApiError::issuer(&service.issuer.describe(), &e))?;
            Ok((RotationPhase::Steady, trust.roots().to_vec()))
        }
    }
}
