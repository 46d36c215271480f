//! Reconciling one `MeshTrust`: read every member cluster, let the pure decisions
//! ([`crate::decide`], [`crate::round`], and during a root rotation
//! `meshtrust_ca::plan_rotation`) say what to do, carry them out through the same issuance
//! and delivery code as `bootstrap`, write the status, and requeue at the earliest time any
//! cluster needs attention.

use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use meshtrust_ca::{IntermediateParams, TrustBundle};
use meshtrust_issuer::Issuer;
use time::OffsetDateTime;

use crate::context::{CONCURRENCY, Context};
use crate::crd::{MeshTrust, MeshTrustStatus, RenewalRequest, RotationStatus};
use crate::decide::{Decision, Inputs, Outcome, decide, failed, issued};
use crate::deliver::issue_and_deliver;
use crate::error::{Error, Result};
use crate::health::LastReconcile;
use crate::members::{Member, read_members};
use crate::reason::Reason;
use crate::report::{carry_out, notice, publish, write_status};
use crate::requeue::Requeue;
use crate::rotate::{RotationRound, rotate};
use crate::round::{self, RotationNext, RoundKind, Spec};
use crate::signers::{Rotation, Signers};

/// Reconciles one `MeshTrust` (kube-runtime's entry point).
pub async fn reconcile(mt: Arc<MeshTrust>, ctx: Arc<Context>) -> Result<Action> {
    reconcile_round(&mt, &ctx).await.map(Action::from)
}

/// One round over `mt`; the answer says when to look again. An error means the status
/// could not be written.
pub async fn reconcile_round(mt: &MeshTrust, ctx: &Context) -> Result<Requeue> {
    let _timer = ctx.metrics.reconcile_started(&ctx.clock);
    let now = ctx.clock.now();
    let result = round_at(mt, ctx, now).await;
    ctx.health.record_reconcile(LastReconcile {
        finished: ctx.clock.now(),
        error: result.as_ref().err().map(ToString::to_string),
    });
    result
}

/// After a failed reconcile (status could not be written): try again after the backoff base.
pub fn error_policy(_mt: Arc<MeshTrust>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_failed(error.reason());
    Action::requeue(ctx.backoff.base.unsigned_abs())
}

async fn round_at(mt: &MeshTrust, ctx: &Context, now: OffsetDateTime) -> Result<Requeue> {
    let generation = mt.metadata.generation;
    let previous = mt.status.clone().unwrap_or_default();
    let invalid = mt.spec.validate().err().map(|e| e.to_string());
    let signers = match invalid {
        Some(_) => None,
        None => Some(ctx.signers.get(&ctx.client, mt, &ctx.clock).await),
    };
    let kind = round::kind(
        invalid,
        match &signers {
            None => Ok(false),
            Some(Ok((s, _))) => Ok(s.rotation.is_some()),
            Some(Err(e)) => Err(e.to_string()),
        },
    );
    let (reason, message) = match &kind {
        RoundKind::InvalidSpec(m) => (Reason::InvalidSpec, m.clone()),
        RoundKind::IssuerUnavailable(m) => (Reason::IssuerUnavailable, m.clone()),
        RoundKind::Rotation | RoundKind::Steady => {
            let Some(Ok((signers, fresh))) = signers else {
                return Err(Error::Internal("a round without signers"));
            };
            return work(mt, ctx, &previous, &signers, fresh, now).await;
        }
    };
    ctx.metrics.reconcile_failed(reason);
    if reason == Reason::IssuerUnavailable {
        publish(ctx, mt, &notice(EventType::Warning, reason, &message)).await;
    }
    write_status(
        ctx,
        mt,
        &round::stopped(&previous, generation, reason, message, now),
    )
    .await?;
    Ok(match reason {
        Reason::InvalidSpec => Requeue::AwaitChange,
        _ => round::issuer_retry(&ctx.backoff, ctx.resync),
    })
}

/// A round with its signers: rotation or renewal, then the status and the requeue.
async fn work(
    mt: &MeshTrust,
    ctx: &Context,
    previous: &MeshTrustStatus,
    signers: &Signers,
    fresh: bool,
    now: OffsetDateTime,
) -> Result<Requeue> {
    if fresh {
        for n in &signers.notices {
            publish(
                ctx,
                mt,
                &notice(EventType::Normal, Reason::RootGenerated, n),
            )
            .await;
        }
    }
    let spec = Spec::from(mt)?;
    if let Some(Err(e)) = RenewalRequest::of(mt) {
        let note = format!("{e}: ignored, nothing is renewed on request until it is replaced");
        tracing::warn!(meshtrust = %mt.metadata.name.as_deref().unwrap_or_default(), "{note}");
        publish(
            ctx,
            mt,
            &notice(EventType::Warning, Reason::RenewalRequested, note),
        )
        .await;
    }
    let members = read_members(ctx, mt).await?;
    let (rotation, outcomes, rotation_next) =
        rotate_or_renew(ctx, mt, &spec, &members, signers, previous, now).await;
    for old in &previous.clusters {
        if !outcomes.iter().any(|o| o.status.name == old.name) {
            ctx.metrics.forget_cluster(&old.name);
        }
    }
    for o in &outcomes {
        carry_out(ctx, mt, o).await;
    }
    let generation = mt.metadata.generation;
    let status = round::finish(previous, generation, rotation, &outcomes, now);
    write_status(ctx, mt, &status).await?;
    Ok(round::requeue(
        &outcomes,
        rotation_next,
        ctx.resync,
        now,
        ctx.clock.now(),
    ))
}

/// A rotation round when a rotation is configured (renewing from the new root once it is
/// finished), else a steady round: the rotation status, every cluster's outcome, and when
/// the rotation wants to look again.
async fn rotate_or_renew(
    ctx: &Context,
    mt: &MeshTrust,
    spec: &Spec,
    members: &[Member<'_>],
    signers: &Signers,
    previous: &MeshTrustStatus,
    now: OffsetDateTime,
) -> (Option<RotationStatus>, Vec<Outcome>, Option<RotationNext>) {
    let Some(r) = &signers.rotation else {
        let (issuer, roots) = (Arc::clone(&signers.issuer), signers.roots.clone());
        let outcomes = renew_all(ctx, spec, members, issuer, roots, previous, now).await;
        return (None, outcomes, None);
    };
    match rotate(ctx, mt, spec, members, r, now).await {
        RotationRound::InProgress {
            phase,
            message,
            outcomes,
            next,
        } => {
            let status = round::rotation_in_progress(previous, phase, message, now);
            (Some(with_roots(status, r)), outcomes, Some(next))
        }
        // Every cluster is on the new root: renew from it from now on.
        RotationRound::Finished => {
            let issuer = Arc::clone(&r.new);
            let roots = TrustBundle::of(r.new_root.clone());
            let outcomes = renew_all(ctx, spec, members, issuer, roots, previous, now).await;
            let status = round::rotation_complete(previous);
            (Some(with_roots(status, r)), outcomes, None)
        }
    }
}

/// `status` naming the two roots of rotation `r` by fingerprint.
fn with_roots(mut status: RotationStatus, r: &Rotation) -> RotationStatus {
    status.old_root = Some(r.old_root.fingerprint());
    status.new_root = Some(r.new_root.fingerprint());
    status
}

/// Steady state for every member (bounded in parallel).
async fn renew_all(
    ctx: &Context,
    spec: &Spec,
    members: &[Member<'_>],
    issuer: Arc<dyn Issuer>,
    roots: TrustBundle,
    previous: &MeshTrustStatus,
    now: OffsetDateTime,
) -> Vec<Outcome> {
    // Futures built in a loop, not a closure: a closure borrowing `members` would not be
    // general enough over lifetimes for the controller's Send bound.
    let mut work = Vec::with_capacity(members.len());
    for (m, params) in members.iter().zip(&spec.params) {
        work.push(renew(
            ctx,
            spec,
            m,
            params,
            Arc::clone(&issuer),
            &roots,
            previous,
            now,
        ));
    }
    futures::stream::iter(work)
        .buffered(CONCURRENCY)
        .collect()
        .await
}

/// Steady state for one cluster: carries out what [`decide`] says.
#[allow(clippy::too_many_arguments)]
async fn renew(
    ctx: &Context,
    spec: &Spec,
    m: &Member<'_>,
    params: &IntermediateParams,
    issuer: Arc<dyn Issuer>,
    roots: &TrustBundle,
    previous: &MeshTrustStatus,
    now: OffsetDateTime,
) -> Outcome {
    let held = m.held();
    let inputs = Inputs {
        name: &m.spec.name,
        held: match &m.read {
            Ok(_) => Ok(held.as_ref()),
            Err(e) => Err(e.to_string()),
        },
        params,
        roots,
        policy: &spec.policy,
        previous: previous.clusters.iter().find(|c| c.name == m.spec.name),
        backoff: &ctx.backoff,
        now,
        generation: spec.generation,
        request: spec.request.as_ref(),
    };
    let (cause, status) = match decide(&inputs) {
        Decision::Done(outcome) => return outcome,
        Decision::Issue { cause, status } => (cause, status),
    };
    let reason = format!("{}: {}", cause.reason.as_str(), cause.message);
    match issue_and_deliver(
        &ctx.clock,
        ctx.member_budget,
        params,
        &spec.namespace,
        m,
        issuer,
        &reason,
    )
    .await
    {
        Ok(files) => {
            ctx.metrics.intermediate_issued(cause.reason);
            issued(status, &cause, &files, &inputs)
        }
        Err(e) => failed(status, &cause, e.to_string(), &inputs),
    }
}
