//! What holds a rotation's next step: clusters that never reported, the preflight on
//! `ISTIO_MULTIROOT_MESH`, istiod not having loaded what `cacerts` holds, the hold.

use meshtrust_ca::{ClusterName, ClusterStep, ClusterTrust, RotationPhase as Phase, istiod_wait};
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
        .filter_map(|(m, report)| istiod_waits(phase, &m.name, report))
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

/// What holds `phase` on the cluster of `report` (the `ca` rules: the preflight, then
/// istiod having loaded what `cacerts` holds).
fn istiod_waits(phase: Phase, cluster: &ClusterName, report: &ClusterReport) -> Option<Waiting> {
    let wait = istiod_wait(
        phase,
        cluster,
        &report.istiod_state(),
        &report.cacerts_roots,
    )?;
    Some(Waiting {
        cluster: Some(cluster.to_string()),
        reason: wait.reason().to_string(),
        message: wait.to_string(),
    })
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
