//! Zero-downtime root rotation, old → old+new → signed by new → new, decided from what the
//! clusters hold and nothing else, so a restarted controller resumes where it stopped.
//!
//! Every cluster is at one of four stages: trusts the old root only; trusts both and is
//! issued by the old root; trusts both and is issued by the new root; trusts the new root
//! only. Any two *adjacent* stages trust each other's workloads, any two others do not, so
//! the plan only ever moves clusters one stage forward, and only once no cluster lags behind.

use time::{Duration, OffsetDateTime};

use crate::cert::Certificate;
use crate::root::BACKDATE;

mod cluster_trust;
mod istiod;
mod plan;
mod stage;

pub use cluster_trust::{ClusterTrust, mutual_trust_ok, shared_root_pairs_ok};
pub use istiod::{
    IstiodState, IstiodWait, MULTIROOT_MESH, MULTIROOT_MESH_HELM, istiod_loaded, istiod_wait,
    multiroot_on, phase_while_held,
};
pub use plan::{
    BlockReason, ClusterStep, ClusterWrite, IntermediateAction, RotationBlocked, RotationPhase,
    RotationPlan, RotationRoot,
};
use stage::{Stage, describe, out_of_order, stage_of};

/// When phase 3 may drop the old root: `hold` after the newest intermediate was issued (its
/// notBefore is backdated by the issuers, so the backdating is added back). Workloads keep
/// certificates from their cluster's previous intermediate until they renew them; holding the
/// old root that long keeps those certificates trusted. `None` without any bundle.
pub fn old_root_hold_until(
    clusters: &[Option<ClusterTrust>],
    hold: Duration,
) -> Option<OffsetDateTime> {
    clusters
        .iter()
        .flatten()
        .map(|t| t.ca_cert().not_before())
        .max()
        .map(|issued| issued + BACKDATE + hold)
}

/// The phase of the rotation from `old` to `new` and what to write in each cluster.
///
/// The phase is set by the cluster furthest behind: phase 2 starts only once every cluster
/// trusts both roots, phase 3 only once every intermediate is issued by the new root. A
/// cluster without a bundle (`None`) gets one for the current phase. In phases 1 and 2 the
/// trust file written byte-contains the one held (the new root is appended to the held
/// bytes); in phase 3 it is the new root's PEM block as the cluster holds it, which the held
/// file byte-contains. With no bundle anywhere there is nothing to rotate from: the plan is
/// `Complete`, with a new-root bundle for each cluster.
pub fn plan_rotation(
    old: &Certificate,
    new: &Certificate,
    clusters: &[Option<ClusterTrust>],
) -> std::result::Result<RotationPlan, RotationBlocked> {
    if old == new {
        return Err(RotationBlocked {
            cluster: None,
            reason: BlockReason::SameRoot,
            message: format!(
                "the new root is the old root ({}): create a new root and rotate to it",
                describe(old)
            ),
        });
    }
    let stages = clusters
        .iter()
        .enumerate()
        .map(|(i, c)| c.as_ref().map(|c| stage_of(i, c, old, new)).transpose())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let phase = phase(clusters, &stages)?;
    let steps = clusters
        .iter()
        .zip(&stages)
        .map(|(cluster, stage)| step(phase, cluster.as_ref(), *stage, old, new))
        .collect();
    Ok(RotationPlan { phase, steps })
}

/// What to write in one cluster in `phase` (a phase [`plan_rotation`] gave for the whole
/// fleet): the same step the whole plan would give it. For planners that decide the phase
/// once for many clusters and each cluster's step as it asks (the service, per report).
pub fn plan_step(
    phase: RotationPhase,
    cluster: Option<&ClusterTrust>,
    old: &Certificate,
    new: &Certificate,
) -> std::result::Result<ClusterStep, RotationBlocked> {
    let stage = cluster.map(|c| stage_of(0, c, old, new)).transpose()?;
    Ok(step(phase, cluster, stage, old, new))
}

/// The phase, set by the cluster furthest behind; blocked when one cluster lags two or more
/// stages behind another.
fn phase(
    clusters: &[Option<ClusterTrust>],
    stages: &[Option<Stage>],
) -> std::result::Result<RotationPhase, RotationBlocked> {
    let present = || {
        stages
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.map(|s| (i, s)))
    };
    let behind = present().min_by_key(|(_, s)| *s);
    let ahead = present().max_by_key(|(_, s)| *s);
    if let (Some((a, lag)), Some((b, lead))) = (behind, ahead)
        && lead as u8 > lag as u8 + 1
    {
        return Err(out_of_order(clusters, a, b, lead));
    }
    Ok(match behind.map(|(_, s)| s) {
        Some(Stage::OldOnly) => RotationPhase::AddNewRoot,
        Some(Stage::BothIssuedByOld) => RotationPhase::ReissueIntermediates,
        Some(Stage::BothIssuedByNew) => RotationPhase::RemoveOldRoot,
        Some(Stage::NewOnly) | None => RotationPhase::Complete,
    })
}

/// What to write in one cluster (`None` without a bundle) at `stage` in `phase`.
fn step(
    phase: RotationPhase,
    cluster: Option<&ClusterTrust>,
    stage: Option<Stage>,
    old: &Certificate,
    new: &Certificate,
) -> ClusterStep {
    let both = || [old.to_pem(), new.to_pem()].concat().into_bytes();
    let write = |trust_pem, intermediate| {
        ClusterStep::Write(ClusterWrite {
            trust_pem,
            intermediate,
        })
    };
    match (phase, cluster, stage) {
        (RotationPhase::AddNewRoot, Some(c), Some(Stage::OldOnly)) => {
            write(append_root(c.trust_pem(), new), IntermediateAction::Keep)
        }
        (RotationPhase::ReissueIntermediates, Some(c), Some(Stage::BothIssuedByOld)) => write(
            c.trust_pem().to_vec(),
            IntermediateAction::Issue(RotationRoot::New),
        ),
        (RotationPhase::RemoveOldRoot, Some(c), Some(Stage::BothIssuedByNew)) => {
            let block = pem_block_of(c.trust_pem(), new)
                .map_or_else(|| new.to_pem().into_bytes(), <[u8]>::to_vec);
            write(block, IntermediateAction::Keep)
        }
        (RotationPhase::AddNewRoot, None, _) => {
            write(both(), IntermediateAction::Issue(RotationRoot::Old))
        }
        (RotationPhase::ReissueIntermediates, None, _) => {
            write(both(), IntermediateAction::Issue(RotationRoot::New))
        }
        (_, None, _) => write(
            new.to_pem().into_bytes(),
            IntermediateAction::Issue(RotationRoot::New),
        ),
        _ => ClusterStep::Unchanged,
    }
}

/// `pem` with `root` appended, so that the result byte-contains `pem`.
fn append_root(pem: &[u8], root: &Certificate) -> Vec<u8> {
    let mut out = pem.to_vec();
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.extend_from_slice(root.to_pem().as_bytes());
    out
}

/// The bytes of `cert`'s PEM block in `pem`, with its line ending.
fn pem_block_of<'a>(pem: &'a [u8], cert: &Certificate) -> Option<&'a [u8]> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let find = |from: usize, needle: &[u8]| {
        pem[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|i| from + i)
    };
    let mut from = 0;
    while let Some(start) = find(from, BEGIN) {
        let mut end = find(start, END)? + END.len();
        if pem[end..].starts_with(b"\r\n") {
            end += 2;
        } else if pem[end..].starts_with(b"\n") {
            end += 1;
        }
        let block = &pem[start..end];
        if Certificate::all_from_pem("", block).is_ok_and(|c| c.as_slice() == [cert.clone()]) {
            return Some(block);
        }
        from = end;
    }
    None
}
