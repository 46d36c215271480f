//! One round of a root rotation: plan from what every member cluster holds (the pure
//! planner `meshtrust_ca::plan_rotation`), write the current phase's steps through the same
//! issuance and delivery code as renewal, and report. The next round reads every write back
//! before going on. Nothing is written unless every cluster could be read.

use std::sync::Arc;

use kube::runtime::events::EventType;
use meshtrust_ca::{
    BundleFiles, BundleFormat, ClusterStep, ClusterTrust, ClusterWrite, IntermediateAction,
    IntermediateParams, RotationPhase, RotationPlan, RotationRoot, old_root_hold_until,
    phase_while_held, plan_rotation,
};
use meshtrust_issuer::Issuer;
use time::OffsetDateTime;

use crate::context::Context;
use crate::crd::{ClusterStatus, MeshTrust, timestamp};
use crate::decide::Outcome;
use crate::deliver::{deliver, issue_files};
use crate::error::{Error, Result};
use crate::members::Member;
use crate::reason::Reason;
use crate::report::{notice, publish};
use crate::round::{RotationNext, Spec};
use outcome::{blocked, holding, waiting_for_istiod, written_outcome};

mod gate;
mod outcome;
use crate::signers::Rotation;
use gate::Held;

/// What a rotation round found.
pub enum RotationRound {
    /// Every cluster trusts and is issued by the new root only.
    Finished,
    /// A phase is under way (or blocked, or holding).
    InProgress {
        /// The phase, as status shows it.
        phase: &'static str,
        /// What it is doing or waiting for.
        message: String,
        /// Each cluster's outcome.
        outcomes: Vec<Outcome>,
        /// When to look again.
        next: RotationNext,
    },
}

/// One round of a root rotation: plan from what every cluster holds, write the current
/// phase's steps, report.
pub async fn rotate(
    ctx: &Context,
    mt: &MeshTrust,
    spec: &Spec,
    members: &[Member<'_>],
    rotation: &Rotation,
    now: OffsetDateTime,
) -> RotationRound {
    let (trusts, unreadable) = trusts_of(members);
    if !unreadable.is_empty() {
        let message = format!(
            "rotation paused: every cluster must be read before a step ({})",
            unreadable.join("; ")
        );
        return blocked(ctx, spec, members, message, Reason::ClusterUnreachable, now);
    }
    let plan = match plan_rotation(&rotation.old_root, &rotation.new_root, &trusts) {
        Ok(p) => p,
        Err(b) => {
            let message = b.to_string();
            publish(
                ctx,
                mt,
                &notice(EventType::Warning, Reason::RotationBlocked, &message),
            )
            .await;
            return blocked(ctx, spec, members, message, b.reason.into(), now);
        }
    };
    if let Some(held) = gate::held(ctx, spec, members, &trusts, plan.phase).await {
        return gated(ctx, mt, spec, members, &plan, held, now).await;
    }
    if plan.is_finished() {
        return RotationRound::Finished;
    }
    if plan.phase == RotationPhase::RemoveOldRoot
        && let Some(until) = old_root_hold_until(&trusts, spec.hold)
        && now < until
    {
        return holding(spec, members, until, now);
    }
    write_phase(ctx, mt, spec, members, rotation, &plan, &trusts, now).await
}

/// What each cluster trusts (`None`: no `cacerts` yet), and what could not be read.
fn trusts_of(members: &[Member<'_>]) -> (Vec<Option<ClusterTrust>>, Vec<String>) {
    let mut trusts = Vec::new();
    let mut unreadable = Vec::new();
    for m in members {
        if let Err(e) = &m.read {
            unreadable.push(e.to_string());
            continue;
        }
        match m.held() {
            None => trusts.push(None),
            Some(files) => match ClusterTrust::from_bundle(m.name.clone(), &files) {
                Ok(t) => trusts.push(Some(t)),
                Err(e) => unreadable.push(format!("cluster {}: {e}", m.spec.name)),
            },
        }
    }
    (trusts, unreadable)
}

/// What a round held by istiod reports: a member that could not be read pauses it, a
/// failed preflight blocks it until istiod is set up (a Warning Event names the clusters),
/// an istiod that has not loaded its `cacerts` yet is looked at again shortly.
async fn gated(
    ctx: &Context,
    mt: &MeshTrust,
    spec: &Spec,
    members: &[Member<'_>],
    plan: &RotationPlan,
    held: Held,
    now: OffsetDateTime,
) -> RotationRound {
    match held {
        Held::Unreadable(why) => {
            let message = format!(
                "rotation paused: istiod must be read in every cluster before a step ({})",
                why.join("; ")
            );
            blocked(ctx, spec, members, message, Reason::ClusterUnreachable, now)
        }
        Held::Preflight(waits) => {
            let message = format!("the rotation does not start: {}", gate::message(&waits));
            publish(
                ctx,
                mt,
                &notice(EventType::Warning, Reason::MultirootMeshOff, &message),
            )
            .await;
            blocked(ctx, spec, members, message, Reason::MultirootMeshOff, now)
        }
        Held::NotLoaded(waits) => {
            let phase = phase_while_held(plan.phase);
            let message = format!(
                "phase {} of 3 ({}) waits for istiod: {}",
                phase.number(),
                phase.as_str(),
                gate::message(&waits)
            );
            let named: Vec<&str> = waits.iter().map(|w| w.cluster().as_str()).collect();
            waiting_for_istiod(spec, members, phase, &named, message, now)
        }
    }
}

/// Writes the steps of the current phase, one cluster at a time, and reports each.
#[allow(clippy::too_many_arguments)]
async fn write_phase(
    ctx: &Context,
    mt: &MeshTrust,
    spec: &Spec,
    members: &[Member<'_>],
    rotation: &Rotation,
    plan: &RotationPlan,
    trusts: &[Option<ClusterTrust>],
    now: OffsetDateTime,
) -> RotationRound {
    let mut failures = Vec::new();
    let mut outcomes = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let step = Step {
            plan,
            params: &spec.params[i],
            held_format: trusts[i].as_ref().map(ClusterTrust::format),
            write: match &plan.steps[i] {
                ClusterStep::Write(w) => Some(w),
                _ => None,
            },
        };
        let (outcome, failure) = write_member(ctx, mt, spec, m, rotation, &step, now).await;
        failures.extend(failure);
        outcomes.push(outcome);
    }
    let message = if failures.is_empty() {
        format!(
            "phase {} of 3 ({}): {} cluster(s) written; verifying before the next step",
            plan.phase.number(),
            plan.phase.as_str(),
            plan.writes().count()
        )
    } else {
        format!("phase {}: {}", plan.phase.number(), failures.join("; "))
    };
    RotationRound::InProgress {
        phase: plan.phase.as_str(),
        message,
        outcomes,
        next: RotationNext::ReadBack,
    }
}

/// One cluster's part of a phase.
struct Step<'a> {
    plan: &'a RotationPlan,
    params: &'a IntermediateParams,
    held_format: Option<BundleFormat>,
    /// What to write, when the plan writes to this cluster.
    write: Option<&'a ClusterWrite>,
}

/// Carries out one cluster's step (if any) and reports it; returns its outcome and, when
/// the write failed, why.
async fn write_member(
    ctx: &Context,
    mt: &MeshTrust,
    spec: &Spec,
    m: &Member<'_>,
    rotation: &Rotation,
    step: &Step<'_>,
    now: OffsetDateTime,
) -> (Outcome, Option<String>) {
    let plan = step.plan;
    let mut status = ClusterStatus {
        name: m.spec.name.clone(),
        ..ClusterStatus::default()
    };
    let mut written = m.held();
    let mut failure = None;
    if let Some(w) = step.write {
        let phase = format!(
            "root rotation phase {} ({})",
            plan.phase.number(),
            plan.phase.as_str()
        );
        match write_step(ctx, spec, m, step, w, rotation, &phase).await {
            Ok(files) => {
                let note = format!(
                    "cluster {}: phase {} ({}) written",
                    m.spec.name,
                    plan.phase.number(),
                    plan.phase.as_str()
                );
                publish(
                    ctx,
                    mt,
                    &notice(EventType::Normal, Reason::RootRotation, note),
                )
                .await;
                written = Some(files);
            }
            Err(e) => {
                let message = format!("cluster {}: {e}", m.spec.name);
                publish(
                    ctx,
                    mt,
                    &notice(EventType::Warning, Reason::RotationFailed, &message),
                )
                .await;
                status.last_error = Some(message.clone());
                status.last_failure_time = Some(timestamp(now));
                failure = Some(message);
            }
        }
    }
    let reason = failure.is_some().then_some(Reason::RotationFailed);
    let outcome = written_outcome(status, written.as_ref(), reason, spec, plan, now);
    (outcome, failure)
}

/// One cluster's step: keep its intermediate or issue one from the root the plan names,
/// with the trust file the plan gives (`w`), then deliver.
async fn write_step(
    ctx: &Context,
    spec: &Spec,
    m: &Member<'_>,
    step: &Step<'_>,
    w: &ClusterWrite,
    rotation: &Rotation,
    reason: &str,
) -> Result<BundleFiles> {
    let (params, held_format) = (step.params, step.held_format);
    let files = match (w.intermediate, m.held()) {
        (IntermediateAction::Keep, Some(files)) => {
            with_trust(&files, held_format.unwrap_or(params.format), &w.trust_pem)
        }
        (IntermediateAction::Keep, None) => {
            return Err(Error::Internal(
                "keep the intermediate of a cluster without one",
            ));
        }
        (IntermediateAction::Issue(root), _) => {
            let issuer: Arc<dyn Issuer> = match root {
                RotationRoot::Old => Arc::clone(&rotation.old),
                RotationRoot::New => Arc::clone(&rotation.new),
            };
            let files = issue_files(&ctx.clock, params, m, issuer).await?;
            with_trust(&files, params.format, &w.trust_pem)
        }
    };
    deliver(
        &ctx.clock,
        ctx.member_budget,
        &spec.namespace,
        m,
        &files,
        reason,
    )
    .await?;
    Ok(files)
}

/// `files` with the trust file replaced byte for byte.
fn with_trust(files: &BundleFiles, format: BundleFormat, trust_pem: &[u8]) -> BundleFiles {
    let mut out = files.clone();
    out.insert(format.trust_file(), trust_pem.to_vec());
    out
}
