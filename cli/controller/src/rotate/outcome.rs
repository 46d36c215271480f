//! What a rotation round reports per cluster — pure: the status of every cluster when the
//! round is blocked or holding the old root, and after a cluster's step.

use meshtrust_ca::{BundleFiles, RotationPhase, RotationPlan};
use time::OffsetDateTime;

use super::RotationRound;
use super::gate::ISTIOD_POLL;
use crate::context::Context;
use crate::crd::{ClusterStatus, Condition, set_condition, timestamp};
use crate::decide::{Outcome, describe};
use crate::members::Member;
use crate::reason::Reason;
use crate::round::{RotationNext, Spec};

/// Blocked or paused: every cluster as it is, not Ready for `reason`; look again after the
/// longest backoff, not every second.
pub(super) fn blocked(
    ctx: &Context,
    spec: &Spec,
    members: &[Member<'_>],
    message: String,
    reason: Reason,
    now: OffsetDateTime,
) -> RotationRound {
    let outcomes = members
        .iter()
        .map(|m| Outcome {
            next: Some(now + ctx.backoff.base),
            ready: None,
            ..held_outcome(m, spec, (false, reason), &message, now)
        })
        .collect();
    RotationRound::InProgress {
        phase: "Blocked",
        message,
        outcomes,
        next: RotationNext::At(now + ctx.backoff.cap),
    }
}

/// Every intermediate is issued by the new root, but workload certificates signed under the
/// old one are still out there: keep trusting it until `until`.
pub(super) fn holding(
    spec: &Spec,
    members: &[Member<'_>],
    until: OffsetDateTime,
    now: OffsetDateTime,
) -> RotationRound {
    let message = format!(
        "every intermediate is issued by the new root; the old root stays trusted until {} (holdBeforeRemovingOldRoot), so that workload certificates signed under it expire first",
        timestamp(until)
    );
    let outcomes = members
        .iter()
        .map(|m| held_outcome(m, spec, (true, Reason::Ready), &message, now))
        .collect();
    RotationRound::InProgress {
        phase: "HoldingOldRoot",
        message,
        outcomes,
        next: RotationNext::At(until),
    }
}

/// `phase` held until istiod has loaded the previous one in the clusters `named`: those are
/// not Ready (istiod does not serve what `cacerts` holds), the others are; look again
/// after [`ISTIOD_POLL`].
pub(super) fn waiting_for_istiod(
    spec: &Spec,
    members: &[Member<'_>],
    phase: RotationPhase,
    named: &[&str],
    message: String,
    now: OffsetDateTime,
) -> RotationRound {
    let outcomes = members
        .iter()
        .map(|m| {
            let ready = match named.contains(&m.name.as_str()) {
                true => (false, Reason::IstiodNotLoaded),
                false => (true, Reason::Ready),
            };
            held_outcome(m, spec, ready, &message, now)
        })
        .collect();
    RotationRound::InProgress {
        phase: phase.as_str(),
        message,
        outcomes,
        next: RotationNext::At(now + ISTIOD_POLL),
    }
}

/// A cluster's outcome after its step of the phase (or none).
pub(super) fn written_outcome(
    mut status: ClusterStatus,
    written: Option<&BundleFiles>,
    failure: Option<Reason>,
    spec: &Spec,
    plan: &RotationPlan,
    now: OffsetDateTime,
) -> Outcome {
    describe(&mut status, written, &spec.policy, now);
    let ready = written.is_some() && status.last_error.is_none();
    let reason = if ready {
        Reason::Ready
    } else {
        Reason::RotationFailed
    };
    set_condition(
        &mut status.conditions,
        Condition::ready(
            ready,
            reason.as_str(),
            format!("root rotation phase {}", plan.phase.number()),
            now,
            spec.generation,
        ),
    );
    Outcome {
        status,
        next: None,
        ready: Some(ready.into()),
        failure,
        events: Vec::new(),
    }
}

/// The outcome of a cluster nothing is written to this round: its status as held, Ready
/// (`ready.0`) for `ready.1` with `message`.
fn held_outcome(
    m: &Member<'_>,
    spec: &Spec,
    ready: (bool, Reason),
    message: &str,
    now: OffsetDateTime,
) -> Outcome {
    let mut status = as_held(m, spec, now);
    set_condition(
        &mut status.conditions,
        Condition::ready(
            ready.0,
            ready.1.as_str(),
            message.to_string(),
            now,
            spec.generation,
        ),
    );
    Outcome {
        status,
        next: None,
        ready: Some(ready.0.into()),
        failure: None,
        events: Vec::new(),
    }
}

/// A cluster's status describing the bundle it holds now (nothing written this round).
fn as_held(m: &Member<'_>, spec: &Spec, now: OffsetDateTime) -> ClusterStatus {
    let mut status = ClusterStatus {
        name: m.spec.name.clone(),
        ..ClusterStatus::default()
    };
    describe(&mut status, m.held().as_ref(), &spec.policy, now);
    status
}
