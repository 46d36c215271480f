//! One round of a root rotation: plan from what every member cluster holds (the pure
//! planner in `meshtrust_ca::plan_rotation`), write the current phase's steps through the same
//! delivery code as renewal, and report. The next round reads every write back before going on.

use std::sync::Arc;

use anyhow::Context as _;
use kube::runtime::events::EventType;
use meshtrust_ca::{
    BundleFiles, BundleFormat, ClusterStep, ClusterTrust, IntermediateAction, RotationPhase,
    RotationRoot, old_root_hold_until, plan_rotation,
};
use meshtrust_issuer::Issuer;
use time::OffsetDateTime;

use super::crd::{ClusterStatus, Condition, MeshTrust, set_condition, timestamp};
use super::issuers::Rotation;
use super::reconcile::{
    Context, Member, Outcome, Spec, deliver, describe, publish, record_metrics,
};
use crate::cluster::secret::bundle_files;
use crate::cmd::issue::issue_bundles;

/// What a rotation round found.
pub(super) enum RotationRound {
    /// Every cluster trusts and is issued by the new root only.
    Finished,
    /// A phase is under way (or blocked).
    InProgress {
        phase: &'static str,
        message: String,
        outcomes: Vec<Outcome>,
        /// When to look again; `None`: at once, to read back what was written.
        next: Option<OffsetDateTime>,
    },
}

/// One round of a root rotation: plan from what every cluster holds, write the current
/// phase's steps, report. Nothing is written unless every cluster could be read.
pub(super) async fn rotate(
    ctx: &Context,
    mt: &MeshTrust,
    spec: &Spec,
    members: &[Member<'_>],
    rotation: &Rotation,
    now: OffsetDateTime,
) -> RotationRound {
    let generation = mt.metadata.generation;
    let old = rotation.old.root().certificate();
    let new = rotation.new.root().certificate();
    let mut trusts = Vec::new();
    let mut unreadable = Vec::new();
    for m in members {
        match &m.read {
            Err(e) => unreadable.push(format!("{e:#}")),
            Ok((_, o)) => match &o.secret {
                None => trusts.push(None),
                Some(s) => match ClusterTrust::from_bundle(m.name.clone(), &bundle_files(s)) {
                    Ok(t) => trusts.push(Some(t)),
                    Err(e) => unreadable.push(format!("cluster {}: {e}", m.spec.name)),
                },
            },
        }
    }
    let blocked = |message: String, reason: &str| {
        let outcomes = members
            .iter()
            .map(|m| {
                let mut status = as_held(m, spec, now);
                set_condition(
                    &mut status.conditions,
                    Condition::ready(false, reason, message.clone(), now, generation),
                );
                Outcome {
                    status,
                    next: Some(now + ctx.backoff.base),
                }
            })
            .collect();
        RotationRound::InProgress {
            phase: "Blocked",
            message,
            outcomes,
            // Blocked or paused: look again after the longest backoff, not every second.
            next: Some(now + ctx.backoff.cap),
        }
    };
    if !unreadable.is_empty() {
        return blocked(
            format!(
                "rotation paused: every cluster must be read before a step ({})",
                unreadable.join("; ")
            ),
            "ClusterUnreachable",
        );
    }
    let plan = match plan_rotation(old, new, &trusts) {
        Ok(p) => p,
        Err(b) => {
            publish(
                ctx,
                mt,
                EventType::Warning,
                "RotationBlocked",
                &b.to_string(),
            )
            .await;
            return blocked(b.to_string(), b.reason.as_str());
        }
    };
    if plan.is_finished() {
        return RotationRound::Finished;
    }
    if plan.phase == RotationPhase::RemoveOldRoot
        && let Some(until) = old_root_hold_until(&trusts, spec.hold)
        && now < until
    {
        // Workload certificates signed under the old root are still out there: keep
        // trusting it until they have expired.
        let message = format!(
            "every intermediate is issued by the new root; the old root stays trusted until {} (holdBeforeRemovingOldRoot), so that workload certificates signed under it expire first",
            timestamp(until)
        );
        let outcomes = members
            .iter()
            .map(|m| {
                let mut status = as_held(m, spec, now);
                set_condition(
                    &mut status.conditions,
                    Condition::ready(true, "Ready", message.clone(), now, generation),
                );
                record_metrics(ctx, &status, true);
                Outcome { status, next: None }
            })
            .collect();
        return RotationRound::InProgress {
            phase: "HoldingOldRoot",
            message,
            outcomes,
            next: Some(until),
        };
    }
    let mut failures = Vec::new();
    let mut outcomes = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let (client, observed) = m.read.as_ref().expect("every member was read");
        let current = observed.secret.as_ref().map(bundle_files);
        let mut status = ClusterStatus {
            name: m.spec.name.clone(),
            ..ClusterStatus::default()
        };
        let mut written = current.clone();
        if let ClusterStep::Write(w) = &plan.steps[i] {
            let result = async {
                let files = match (w.intermediate, &current) {
                    (IntermediateAction::Keep, Some(files)) => {
                        let format = trusts[i]
                            .as_ref()
                            .map_or(spec.options.format, |t| t.format());
                        with_trust(files, format, &w.trust_pem)
                    }
                    (IntermediateAction::Keep, None) => {
                        anyhow::bail!("internal: keep the intermediate of a cluster without one")
                    }
                    (IntermediateAction::Issue(root), _) => {
                        let issuer: Arc<dyn Issuer> = match root {
                            RotationRoot::Old => Arc::clone(&rotation.old) as Arc<dyn Issuer>,
                            RotationRoot::New => Arc::clone(&rotation.new) as Arc<dyn Issuer>,
                        };
                        let (mut bundles, _) = issue_bundles(
                            issuer,
                            std::slice::from_ref(&m.name),
                            &spec.options,
                            now,
                        )
                        .await?;
                        let b = bundles.pop().context("internal: nothing issued")?;
                        let files = b.bundle.bundle_files(spec.options.format);
                        with_trust(&files, spec.options.format, &w.trust_pem)
                    }
                };
                let reason = format!(
                    "root rotation phase {} ({})",
                    plan.phase.number(),
                    plan.phase.as_str()
                );
                deliver(ctx, spec, m, client, observed, &files, &reason, now).await?;
                Ok::<_, anyhow::Error>(files)
            }
            .await;
            match result {
                Ok(files) => {
                    publish(
                        ctx,
                        mt,
                        EventType::Normal,
                        "RootRotation",
                        &format!(
                            "cluster {}: phase {} ({}) written",
                            m.spec.name,
                            plan.phase.number(),
                            plan.phase.as_str()
                        ),
                    )
                    .await;
                    written = Some(files);
                }
                Err(e) => {
                    let message = format!("cluster {}: {e:#}", m.spec.name);
                    publish(ctx, mt, EventType::Warning, "RotationFailed", &message).await;
                    ctx.metrics.reconcile_failed("RotationFailed");
                    status.last_error = Some(message.clone());
                    status.last_failure_time = Some(timestamp(now));
                    failures.push(message);
                }
            }
        }
        describe(&mut status, written.as_ref(), &spec.policy, now);
        let ready = written.is_some() && status.last_error.is_none();
        set_condition(
            &mut status.conditions,
            Condition::ready(
                ready,
                if ready { "Ready" } else { "RotationFailed" },
                format!("root rotation phase {}", plan.phase.number()),
                now,
                generation,
            ),
        );
        record_metrics(ctx, &status, ready);
        outcomes.push(Outcome { status, next: None });
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
        next: None,
    }
}

/// A cluster's status describing the bundle it holds now (nothing written this round).
fn as_held(m: &Member<'_>, spec: &Spec, now: OffsetDateTime) -> ClusterStatus {
    let mut status = ClusterStatus {
        name: m.spec.name.clone(),
        ..ClusterStatus::default()
    };
    let files = m
        .read
        .as_ref()
        .ok()
        .and_then(|(_, o)| o.secret.as_ref().map(bundle_files));
    describe(&mut status, files.as_ref(), &spec.policy, now);
    status
}

/// `files` with the trust file replaced byte for byte.
fn with_trust(files: &BundleFiles, format: BundleFormat, trust_pem: &[u8]) -> BundleFiles {
    let mut out = files.clone();
    out.insert(format.trust_file(), trust_pem.to_vec());
    out
}
