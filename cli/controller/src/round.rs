//! A round over one `MeshTrust`, planned purely: which kind of round it is, the status it
//! leaves behind (the overall Ready condition from the clusters' outcomes, the rotation
//! phase) and when to look again. The reconciler reads, carries out, and writes what these
//! functions return.

use std::time::Duration;

use meshtrust_ca::{Backoff, IntermediateParams, RenewalPolicy, RotationPhase};
use time::OffsetDateTime;

use crate::crd::{
    ClusterStatus, Condition, ConditionStatus, FieldError, MeshTrust, MeshTrustStatus,
    RenewalRequest, RotationStatus, find_condition, set_condition, timestamp,
};
use crate::decide::Outcome;
use crate::reason::Reason;
use crate::requeue::{MIN_REQUEUE, Requeue};

/// What kind of round to run, from what could be established before any cluster is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoundKind {
    /// The spec is invalid: write why, touch no cluster, wait for a change.
    InvalidSpec(String),
    /// The issuer cannot be built: write why, touch no cluster, retry.
    IssuerUnavailable(String),
    /// A root rotation is configured: plan its next step.
    Rotation,
    /// Renew whatever needs renewing.
    Steady,
}

/// The kind of round: an invalid spec first (`invalid` says why), then an unavailable
/// issuer (`signers` says why it could not be built), then a rotation (`signers` is
/// `Ok(true)`: the spec's signers include a new root) or steady state.
pub fn kind(invalid: Option<String>, signers: Result<bool, String>) -> RoundKind {
    match (invalid, signers) {
        (Some(why), _) => RoundKind::InvalidSpec(why),
        (None, Err(why)) => RoundKind::IssuerUnavailable(why),
        (None, Ok(true)) => RoundKind::Rotation,
        (None, Ok(false)) => RoundKind::Steady,
    }
}

/// The status of a round that stopped before reading any cluster: `previous`'s clusters
/// kept, the resource not Ready for `reason`.
pub fn stopped(
    previous: &MeshTrustStatus,
    generation: Option<i64>,
    reason: Reason,
    message: String,
    now: OffsetDateTime,
) -> MeshTrustStatus {
    let mut status = MeshTrustStatus {
        observed_generation: generation,
        conditions: previous.conditions.clone(),
        rotation: None,
        clusters: previous.clusters.clone(),
    };
    set_condition(
        &mut status.conditions,
        Condition::ready(false, reason.as_str(), message, now, generation),
    );
    status
}

/// When to retry a round whose issuer was unavailable: the backoff base, but no more often
/// than a tenth of the resync.
pub fn issuer_retry(backoff: &Backoff, resync: Duration) -> Requeue {
    Requeue::After(backoff.base.unsigned_abs().max(resync / 10))
}

/// The rotation status once every cluster trusts and is issued by the new root only.
pub fn rotation_complete(previous: &MeshTrustStatus) -> RotationStatus {
    RotationStatus {
        phase: RotationPhase::Complete.as_str().to_string(),
        started_at: previous.rotation.as_ref().and_then(|r| r.started_at.clone()),
        message: Some(
            "every cluster trusts and is issued by the new root only; point spec.issuer at the new root Secret and remove spec.rootRotation".into(),
        ),
        ..RotationStatus::default()
    }
}

/// The rotation status of a phase under way (keeping when the rotation started).
pub fn rotation_in_progress(
    previous: &MeshTrustStatus,
    phase: &str,
    message: String,
    now: OffsetDateTime,
) -> RotationStatus {
    RotationStatus {
        phase: phase.to_string(),
        started_at: previous
            .rotation
            .as_ref()
            .and_then(|r| r.started_at.clone())
            .or_else(|| Some(timestamp(now))),
        message: Some(message),
        ..RotationStatus::default()
    }
}

/// The status a round leaves behind: every cluster's outcome, the rotation phase, and the
/// overall Ready condition (True when every cluster is Ready, else naming those that are
/// not).
pub fn finish(
    previous: &MeshTrustStatus,
    generation: Option<i64>,
    rotation: Option<RotationStatus>,
    outcomes: &[Outcome],
    now: OffsetDateTime,
) -> MeshTrustStatus {
    // A rotation round reports clusters afresh: the record of the last renewal request
    // carried out is kept from the previous status.
    let clusters: Vec<ClusterStatus> = outcomes
        .iter()
        .map(|o| {
            let mut c = o.status.clone();
            if c.renewal_request.is_none() {
                c.renewal_request = previous
                    .clusters
                    .iter()
                    .find(|p| p.name == c.name)
                    .and_then(|p| p.renewal_request.clone());
            }
            c
        })
        .collect();
    let mut status = MeshTrustStatus {
        observed_generation: generation,
        conditions: previous.conditions.clone(),
        rotation,
        clusters,
    };
    let overall = overall(&status.clusters, now, generation);
    set_condition(&mut status.conditions, overall);
    status
}

/// The resource's Ready condition from its clusters'.
pub fn overall(
    clusters: &[ClusterStatus],
    now: OffsetDateTime,
    generation: Option<i64>,
) -> Condition {
    let not_ready: Vec<&str> = clusters
        .iter()
        .filter(|c| {
            find_condition(&c.conditions, Condition::READY)
                .is_none_or(|r| r.status != ConditionStatus::True)
        })
        .map(|c| c.name.as_str())
        .collect();
    if not_ready.is_empty() {
        Condition::ready(
            true,
            Reason::Ready.as_str(),
            format!("every cluster ({}) holds a valid cacerts", clusters.len()),
            now,
            generation,
        )
    } else {
        Condition::ready(
            false,
            Reason::ClustersNotReady.as_str(),
            format!("not ready: {}", not_ready.join(", ")),
            now,
            generation,
        )
    }
}

/// When a rotation round wants to look again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotationNext {
    /// At once (a second later): read back what was written before the next step.
    ReadBack,
    /// At this time (the end of a hold, or after a blocked round's backoff).
    At(OffsetDateTime),
}

/// When to look again, as seen at `written` (the time the status was written): the
/// earliest time any cluster needs attention, no later than the resync after the round
/// started at `now`; a rotation that wrote something reads it back at once.
pub fn requeue(
    outcomes: &[Outcome],
    rotation: Option<RotationNext>,
    resync: Duration,
    now: OffsetDateTime,
    written: OffsetDateTime,
) -> Requeue {
    let mut next = now + time::Duration::seconds_f64(resync.as_secs_f64());
    for n in outcomes.iter().filter_map(|o| o.next) {
        next = next.min(n);
    }
    match rotation {
        Some(RotationNext::ReadBack) => return Requeue::After(MIN_REQUEUE),
        Some(RotationNext::At(at)) => next = next.min(at),
        None => {}
    }
    let wait = (next - written).max(time::Duration::seconds(1));
    Requeue::After(wait.unsigned_abs())
}

/// The spec's parameters, typed once per round.
pub struct Spec {
    /// Per cluster, in the order of the spec (and of the members read), the parameters of
    /// its intermediate.
    pub params: Vec<IntermediateParams>,
    /// When to renew.
    pub policy: RenewalPolicy,
    /// Where `cacerts` is written.
    pub namespace: String,
    /// How long phase 3 of a root rotation waits after the last reissue.
    pub hold: time::Duration,
    /// The name of istiod's Deployment, read during a root rotation.
    pub istiod: String,
    /// The MeshTrust's generation.
    pub generation: Option<i64>,
    /// Its renewal request (`None` also when the annotation does not parse).
    pub request: Option<RenewalRequest>,
}

impl Spec {
    /// The spec of `mt`, typed (fails only on a spec that `validate` refuses).
    pub fn from(mt: &MeshTrust) -> Result<Spec, FieldError> {
        let params = mt
            .spec
            .clusters
            .iter()
            .map(|c| mt.spec.intermediate_params(c.cluster_name()?))
            .collect::<Result<_, _>>()?;
        Ok(Spec {
            params,
            policy: mt.spec.intermediate.renewal_policy()?,
            namespace: mt.spec.namespace.clone(),
            hold: match &mt.spec.root_rotation {
                Some(r) => r.hold()?,
                None => time::Duration::ZERO,
            },
            istiod: mt.spec.root_rotation.as_ref().map_or_else(
                || meshtrust_kube::ISTIOD_DEPLOYMENT.to_string(),
                |r| r.istiod_deployment.clone(),
            ),
            generation: mt.metadata.generation,
            request: RenewalRequest::of(mt).and_then(Result::ok),
        })
    }
}

#[cfg(test)]
#[path = "round_tests.rs"]
mod tests;
