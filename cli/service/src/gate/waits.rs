//! What holds a rotation's next step: clusters that never reported, the preflight on
//! `ISTIO_MULTIROOT_MESH`, istiod not having loaded what `cacerts` holds, the hold.

use meshtrust_ca::{ClusterName, ClusterStep, ClusterTrust, RotationPhase as Phase};
use meshtrust_issuer::server::api::{ClusterReport, Waiting};
use meshtrust_issuer::server::wire;
use time::OffsetDateTime;

use super::Member;

/// Clusters the service cannot plan from: never reported, or reported no usable bundle. (A
/// cluster issued an intermediate since it last reported is planned from its report: it
/// can only be behind what it holds, which never lets a phase start early.)
pub(super) fn unreported(members: &[Member], trusts: &[Option<ClusterTrust>]) -> Vec<Waiting> {
    let wait = |m: &Member, message: String| Waiting {
        cluster: Some(m.name.to_string()),
        reason: "not_reported".to_string(),
        message,
    };
    members
        .iter()
        .zip(trusts)
        .filter_map(|(m, t)| match (&m.report, t) {
            (None, _) => Some(wait(
                m,
                format!("cluster {}: its agent has never reported what the cluster holds; is `meshtrust agent` running there?", m.name),
            )),
            (Some(_), None) => Some(wait(
                m,
                format!("cluster {}: its last report carries no usable cacerts (an agent older than this service, or a bundle being replaced); waiting for the next report", m.name),
            )),
            _ => None,
        })
        .collect()
}

/// What keeps `phase`'s writes from being handed out (or, for Complete, from being
/// declared): the preflight; for the later phases, every istiod having loaded exactly the
/// roots its `cacerts` holds (so the previous phase's roots everywhere); the hold.
pub(super) fn gate_waits(
    phase: Phase,
    members: &[Member],
    hold_until: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Vec<Waiting> {
    let mut waiting: Vec<Waiting> = members
        .iter()
        .filter_map(|m| Some((m, m.report.as_ref()?)))
        .filter_map(|(m, report)| match phase {
            Phase::AddNewRoot => preflight(&m.name, report),
            _ => not_loaded(&m.name, report),
        })
        .collect();
    if let Some(until) = hold_until.filter(|until| now < *until) {
        waiting.push(Waiting {
            cluster: None,
            reason: "hold".to_string(),
            message: format!(
                "every intermediate is issued by the new root; the old root stays trusted until {} (rotation.hold after the newest intermediate), so workload certificates signed under it expire first",
                wire::time(until)
            ),
        });
    }
    waiting
}

fn preflight(cluster: &ClusterName, report: &ClusterReport) -> Option<Waiting> {
    let setting = report
        .istiod
        .as_ref()
        .and_then(|s| s.multiroot_mesh.as_deref());
    if setting.is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    let found = match (&report.istiod, setting) {
        (None, _) => "its agent found no istiod Deployment".to_string(),
        (Some(_), None) => "istiod does not set ISTIO_MULTIROOT_MESH".to_string(),
        (Some(_), Some(v)) => format!("istiod sets ISTIO_MULTIROOT_MESH={v}"),
    };
    Some(Waiting {
        cluster: Some(cluster.to_string()),
        reason: "multiroot_mesh_off".to_string(),
        message: format!(
            "cluster {cluster}: {found}; without ISTIO_MULTIROOT_MESH=true istiod cannot trust the old and the new root at once, so the rotation does not start. Set the Helm value pilot.env.ISTIO_MULTIROOT_MESH=true (chart istiod: env.ISTIO_MULTIROOT_MESH=true) and let istiod restart"
        ),
    })
}

/// Whether istiod publishes exactly the roots `cacerts` holds.
fn not_loaded(cluster: &ClusterName, report: &ClusterReport) -> Option<Waiting> {
    if report.istiod_loaded() == Some(true) {
        return None;
    }
    let list = |roots: &[String]| {
        roots
            .iter()
            .map(|r| short(r))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let shown = match &report.istiod_roots {
        None => "publishes no istio-ca-root-cert".to_string(),
        Some(roots) => format!("publishes [{}] in istio-ca-root-cert", list(roots)),
    };
    Some(Waiting {
        cluster: Some(cluster.to_string()),
        reason: "istiod_not_loaded".to_string(),
        message: format!(
            "cluster {cluster}: istiod {shown}, not yet the roots its cacerts holds ([{}]); the next step waits until istiod has loaded them (cacerts being written is not enough). If this lasts, check istiod's log, or restart it",
            list(&report.cacerts_roots)
        ),
    })
}

/// The first 16 hex digits of a fingerprint, as the inventory shows them.
fn short(fingerprint: &str) -> &str {
    &fingerprint[..fingerprint.len().min(16)]
}

/// The clusters that have yet to carry out the open phase's write, each with how long ago it
/// last reported: a cluster whose agent went silent is seen holding the phase, by name.
pub(super) fn yet_to_write(
    members: &[Member],
    steps: &[ClusterStep],
    trusts: &[Option<ClusterTrust>],
    phase: Phase,
    now: OffsetDateTime,
) -> Vec<Waiting> {
    members
        .iter()
        .zip(steps.iter().zip(trusts))
        .filter(|(_, (step, trust))| matches!(step, ClusterStep::Write(_)) && trust.is_some())
        .map(|(m, _)| {
            let last = m.reported_at.map_or_else(
                || "unknown".to_string(),
                |at| format!("{} ago", meshtrust_ca::duration::human(now - at)),
            );
            Waiting {
                cluster: Some(m.name.to_string()),
                reason: "to_write".to_string(),
                message: format!(
                    "cluster {}: has yet to carry out {phase}'s write (its last report: {last}); the phase ends when it has. If this lasts, is its agent running and reaching the service?",
                    m.name
                ),
            }
        })
        .collect()
}
