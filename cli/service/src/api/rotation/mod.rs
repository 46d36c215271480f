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

mod plan;

pub use plan::{Member, Roots, Route, View, plan};

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

/// The rotation as a whole, `None` without one.
pub async fn view(service: &Service) -> Result<Option<View>, ApiError> {
    let Some(rotation) = &service.rotation else {
        return Ok(None);
    };
    let roots = Roots {
        old: root_of(service.issuer.as_ref(), "current").await?,
        new: root_of(rotation.to.as_ref(), "new").await?,
    };
    let store_error = |e: crate::Error| ApiError::store(&e);
    let clusters = service.store.clusters().await.map_err(store_error)?;
    let mut reports = service.store.reports().await.map_err(store_error)?;
    let members: Vec<Member> = clusters
        .into_iter()
        .filter(|c| c.state == ClusterState::Enrolled)
        .filter_map(|c| {
            let report = reports
                .remove(&c.name)
                .and_then(|(_, text)| serde_json::from_str::<ClusterReport>(&text).ok());
            Some(Member {
                name: ClusterName::new(&c.name).ok()?,
                current_serial: c.current_serial,
                report,
            })
        })
        .collect();
    Ok(Some(plan(
        &roots,
        rotation.hold,
        &members,
        service.clock.now(),
    )))
}

/// The rotation's status, `None` without one.
pub async fn status(service: &Service) -> Result<Option<RotationStatus>, ApiError> {
    Ok(view(service).await?.map(|v| v.status))
}

/// The route of `cluster` in `view` (a cluster without a reported bundle is a newcomer).
fn route_of<'v>(view: &'v View, cluster: &ClusterName) -> &'v Route {
    view.routes.get(cluster.as_str()).unwrap_or(&view.newcomer)
}

/// Who signs `cluster`'s next intermediate.
pub async fn signing(service: &Service, cluster: &ClusterName) -> Result<Signing, ApiError> {
    let (Some(rotation), Some(view)) = (&service.rotation, view(service).await?) else {
        return Ok(Signing {
            issuer: Arc::clone(&service.issuer),
            trust_pem: None,
        });
    };
    let route = route_of(&view, cluster);
    Ok(Signing {
        issuer: match route.issue_from {
            RotationRoot::Old => Arc::clone(&service.issuer),
            RotationRoot::New => Arc::clone(&rotation.to),
        },
        trust_pem: Some(route.desired.trust_bundle_pem.clone()),
    })
}

/// What `cluster`, which just sent `report`, should hold, and the phase.
pub async fn desired(
    service: &Service,
    cluster: &ClusterName,
    report: &ClusterReport,
) -> Result<(RotationPhase, DesiredCacerts), ApiError> {
    if let Some(view) = view(service).await? {
        return Ok((view.status.phase, route_of(&view, cluster).desired.clone()));
    }
    let trust = service
        .issuer
        .trust_bundle()
        .await
        .map_err(|e| ApiError::issuer(&service.issuer.describe(), &e))?;
    let set = |roots: &[String]| roots.iter().cloned().collect::<BTreeSet<_>>();
    let held = plan::held_trust_pem(report);
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
    match (&service.rotation, view(service).await?) {
        (Some(rotation), Some(view)) => {
            let new = root_of(rotation.to.as_ref(), "new").await?;
            if view.status.phase == RotationPhase::Complete {
                return Ok((view.status.phase, vec![new]));
            }
            let old = root_of(service.issuer.as_ref(), "current").await?;
            Ok((view.status.phase, vec![old, new]))
        }
        _ => {
            let trust = service
                .issuer
                .trust_bundle()
                .await
                .map_err(|e| ApiError::issuer(&service.issuer.describe(), &e))?;
            Ok((RotationPhase::Steady, trust.roots().to_vec()))
        }
    }
}
