//! Reconciling one `MeshTrust`: read every member cluster, let the pure policy (or, during a
//! root rotation, the pure rotation planner) decide, carry the decisions out through the same
//! delivery code as `bootstrap`, record status, and requeue at the earliest renewal time.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use anyhow::{Context as _, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Client, Resource, ResourceExt};
use meshtrust_ca::{
    Backoff, BundleFiles, ClusterName, DesiredIntermediate, RenewalPolicy, RotationPhase,
    VerifyOptions, reissue_reason, verify_bundle,
};
use meshtrust_issuer::Issuer;
use time::OffsetDateTime;

use super::clock::Clock;
use super::crd::{
    ClusterSpec, ClusterStatus, Condition, MeshTrust, MeshTrustStatus, RotationStatus,
    find_condition, parse_timestamp, set_condition, timestamp,
};
use super::issuers::signers;
use super::members::member_client;
use super::metrics::Metrics;
use crate::args::IntermediateOptions;
use crate::cluster::deliver::{Observed, apply, observe};
use crate::cluster::plan::Action;
use crate::cluster::secret::{MANAGED_BY, cacerts_secret};
use crate::cmd::issue::issue_bundles;
use crate::server::{Health, LastReconcile};

/// Member clusters worked on at once.
const CONCURRENCY: usize = 8;

/// What every reconcile shares.
pub struct Context {
    /// The management cluster.
    pub client: Client,
    /// The controller's namespace (kubeconfig Secrets, the Lease).
    pub namespace: String,
    /// Where "now" comes from.
    pub clock: Clock,
    /// Delay between failed issuance attempts.
    pub backoff: Backoff,
    /// Longest time between two reconciles of one resource.
    pub resync: StdDuration,
    /// Timeout of each request to a member cluster.
    pub member_timeout: StdDuration,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Health and readiness.
    pub health: Arc<Health>,
    /// Kubernetes Events.
    pub recorder: Recorder,
}

/// A reconcile that could not record its outcome (status could not be written).
#[derive(Debug)]
pub struct Error(anyhow::Error);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for Error {}

/// One member cluster as read this round.
pub(super) struct Member<'a> {
    pub(super) spec: &'a ClusterSpec,
    pub(super) name: ClusterName,
    pub(super) read: Result<(Client, Observed)>,
}

/// The outcome of one cluster this round.
pub(super) struct Outcome {
    pub(super) status: ClusterStatus,
    /// When this cluster next needs attention.
    pub(super) next: Option<OffsetDateTime>,
}

/// Reconciles one `MeshTrust`.
pub async fn reconcile(mt: Arc<MeshTrust>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let _timer = ctx.metrics.reconcile_started();
    let now = ctx.clock.now();
    let result = reconcile_at(&mt, &ctx, now).await;
    ctx.health.record_reconcile(LastReconcile {
        finished: ctx.clock.now(),
        error: result.as_ref().err().map(|e| format!("{e:#}")),
    });
    result.map_err(Error)
}

/// After a failed reconcile (status could not be written): try again after the backoff base.
pub fn error_policy(_mt: Arc<MeshTrust>, _error: &Error, ctx: Arc<Context>) -> Requeue {
    ctx.metrics.reconcile_failed("StatusNotWritten");
    Requeue::requeue(ctx.backoff.base.unsigned_abs())
}

async fn reconcile_at(mt: &MeshTrust, ctx: &Context, now: OffsetDateTime) -> Result<Requeue> {
    let generation = mt.metadata.generation;
    let previous = mt.status.clone().unwrap_or_default();
    let mut status = MeshTrustStatus {
        observed_generation: generation,
        conditions: previous.conditions.clone(),
        rotation: None,
        clusters: Vec::new(),
    };

    if let Err(invalid) = mt.spec.validate() {
        ctx.metrics.reconcile_failed("InvalidSpec");
        set_condition(
            &mut status.conditions,
            Condition::ready(false, "InvalidSpec", invalid.to_string(), now, generation),
        );
        status.clusters = previous.clusters.clone();
        write_status(ctx, mt, &status).await?;
        return Ok(Requeue::await_change());
    }

    let signers = match signers(&ctx.client, &mt.spec, now).await {
        Ok(s) => s,
        Err(e) => {
            ctx.metrics.reconcile_failed("IssuerUnavailable");
            let message = format!("{e:#}");
            publish(ctx, mt, EventType::Warning, "IssuerUnavailable", &message).await;
            set_condition(
                &mut status.conditions,
                Condition::ready(false, "IssuerUnavailable", message, now, generation),
            );
            status.clusters = previous.clusters.clone();
            write_status(ctx, mt, &status).await?;
            return Ok(Requeue::requeue(
                ctx.backoff.base.unsigned_abs().max(ctx.resync / 10),
            ));
        }
    };
    for n in &signers.notices {
        publish(ctx, mt, EventType::Normal, "RootGenerated", n).await;
    }

    let spec = Spec::from(mt)?;
    let members = read_members(ctx, mt).await?;

    let mut outcomes = None;
    // During a rotation: when to look again (`Some(None)`: at once, to read writes back).
    let mut rotation_next = None;
    if let Some(rotation) = &signers.rotation {
        match super::rotate::rotate(ctx, mt, &spec, &members, rotation, now).await {
            super::rotate::RotationRound::Finished => {}
            super::rotate::RotationRound::InProgress {
                phase,
                message,
                outcomes: o,
                next,
            } => {
                rotation_next = Some(next);
                status.rotation = Some(RotationStatus {
                    phase: phase.to_string(),
                    started_at: previous
                        .rotation
                        .as_ref()
                        .and_then(|r| r.started_at.clone())
                        .or_else(|| Some(timestamp(now))),
                    message: Some(message),
                });
                outcomes = Some(o);
            }
        }
    }
    let outcomes = match outcomes {
        Some(o) => o,
        None => {
            // Steady state (or a finished rotation): renew from the issuer, which after a
            // rotation is the new root.
            let (issuer, roots) = match &signers.rotation {
                Some(r) => (
                    Arc::clone(&r.new) as Arc<dyn Issuer>,
                    r.new.root().trust_bundle(),
                ),
                None => (Arc::clone(&signers.issuer), signers.roots.clone()),
            };
            if signers.rotation.is_some() {
                status.rotation = Some(RotationStatus {
                    phase: RotationPhase::Complete.as_str().to_string(),
                    started_at: previous.rotation.as_ref().and_then(|r| r.started_at.clone()),
                    message: Some(
                        "every cluster trusts and is issued by the new root only; point spec.issuer at the new root Secret and remove spec.rootRotation".into(),
                    ),
                });
            }
            // Futures built in a loop, not a closure: a closure borrowing `members` would not
            // be general enough over lifetimes for the controller's Send bound.
            let mut work = Vec::with_capacity(members.len());
            for m in &members {
                work.push(renew(
                    ctx,
                    mt,
                    &spec,
                    m,
                    Arc::clone(&issuer),
                    roots.clone(),
                    &previous,
                    now,
                ));
            }
            futures::stream::iter(work)
                .buffered(CONCURRENCY)
                .collect::<Vec<_>>()
                .await
        }
    };

    // Forget metrics of clusters no longer listed.
    for old in &previous.clusters {
        if !outcomes.iter().any(|o| o.status.name == old.name) {
            ctx.metrics.forget_cluster(&old.name);
        }
    }
    let mut next = now + time::Duration::seconds_f64(ctx.resync.as_secs_f64());
    for o in &outcomes {
        if let Some(n) = o.next {
            next = next.min(n);
        }
    }
    status.clusters = outcomes.into_iter().map(|o| o.status).collect();
    let not_ready: Vec<&str> = status
        .clusters
        .iter()
        .filter(|c| {
            find_condition(&c.conditions, Condition::READY).is_none_or(|r| r.status != true.into())
        })
        .map(|c| c.name.as_str())
        .collect();
    let overall = if not_ready.is_empty() {
        Condition::ready(
            true,
            "Ready",
            format!(
                "every cluster ({}) holds a valid cacerts",
                status.clusters.len()
            ),
            now,
            generation,
        )
    } else {
        Condition::ready(
            false,
            "ClustersNotReady",
            format!("not ready: {}", not_ready.join(", ")),
            now,
            generation,
        )
    };
    set_condition(&mut status.conditions, overall);
    write_status(ctx, mt, &status).await?;

    match rotation_next {
        // Verify what was written (by reading it back) before planning the next step.
        Some(None) => return Ok(Requeue::requeue(StdDuration::from_secs(1))),
        Some(Some(at)) => next = next.min(at),
        None => {}
    }
    let wait = (next - ctx.clock.now()).max(time::Duration::seconds(1));
    Ok(Requeue::requeue(wait.unsigned_abs()))
}

/// The spec's intermediate parameters, typed.
pub(super) struct Spec {
    pub(super) options: IntermediateOptions,
    pub(super) policy: RenewalPolicy,
    pub(super) namespace: String,
    /// How long phase 3 of a root rotation waits after the last reissue.
    pub(super) hold: time::Duration,
}

impl Spec {
    fn from(mt: &MeshTrust) -> Result<Spec> {
        let i = &mt.spec.intermediate;
        Ok(Spec {
            options: IntermediateOptions {
                key_type: i.key_type()?,
                validity: i.duration()?,
                path_len: i.path_len,
                org: i.organization.clone(),
                format: mt.spec.format.into(),
            },
            policy: i.renewal_policy()?,
            namespace: mt.spec.namespace.clone(),
            hold: match &mt.spec.root_rotation {
                Some(r) => r.hold()?,
                None => time::Duration::ZERO,
            },
        })
    }

    fn desired(&self, cluster: &ClusterName) -> DesiredIntermediate {
        let mut d = DesiredIntermediate::new(cluster.clone());
        d.key_type = self.options.key_type;
        d.path_len = self.options.path_len;
        d.organization = self.options.org.clone();
        d.format = self.options.format;
        d
    }
}

/// Reads every member cluster (bounded in parallel). Names were checked by `validate`.
async fn read_members<'a>(ctx: &Context, mt: &'a MeshTrust) -> Result<Vec<Member<'a>>> {
    let mut work = Vec::with_capacity(mt.spec.clusters.len());
    for spec in &mt.spec.clusters {
        work.push(read_member(
            ctx,
            &mt.spec.namespace,
            spec,
            spec.cluster_name()?,
        ));
    }
    Ok(futures::stream::iter(work)
        .buffered(CONCURRENCY)
        .collect()
        .await)
}

async fn read_member<'a>(
    ctx: &Context,
    namespace: &str,
    spec: &'a ClusterSpec,
    name: ClusterName,
) -> Member<'a> {
    let read = async {
        let client = member_client(&ctx.client, &ctx.namespace, spec, ctx.member_timeout).await?;
        let observed = observe(&client, namespace).await?;
        Ok::<_, anyhow::Error>((client, observed))
    }
    .await
    .with_context(|| format!("cluster {}", spec.name));
    Member { spec, name, read }
}

fn previous_of<'a>(previous: &'a MeshTrustStatus, name: &str) -> Option<&'a ClusterStatus> {
    previous.clusters.iter().find(|c| c.name == name)
}

/// Steady state for one cluster: reissue when the policy says so (unless backing off).
#[allow(clippy::too_many_arguments)]
async fn renew(
    ctx: &Context,
    mt: &MeshTrust,
    spec: &Spec,
    m: &Member<'_>,
    issuer: Arc<dyn Issuer>,
    roots: meshtrust_ca::TrustBundle,
    previous: &MeshTrustStatus,
    now: OffsetDateTime,
) -> Outcome {
    let generation = mt.metadata.generation;
    let prev = previous_of(previous, &m.spec.name);
    let mut status = ClusterStatus {
        name: m.spec.name.clone(),
        failed_issuance_attempts: prev.map_or(0, |p| p.failed_issuance_attempts),
        last_failure_time: prev.and_then(|p| p.last_failure_time.clone()),
        last_error: prev.and_then(|p| p.last_error.clone()),
        conditions: prev.map(|p| p.conditions.clone()).unwrap_or_default(),
        ..ClusterStatus::default()
    };
    let (client, observed) = match &m.read {
        Ok(r) => r,
        Err(e) => {
            let message = format!("{e:#}");
            status.last_error = Some(message.clone());
            set_condition(
                &mut status.conditions,
                Condition::ready(false, "ClusterUnreachable", message, now, generation),
            );
            ctx.metrics.set_ready(&m.spec.name, "Unknown");
            ctx.metrics.reconcile_failed("ClusterUnreachable");
            return Outcome {
                status,
                next: Some(now + ctx.backoff.base),
            };
        }
    };
    let current = observed
        .secret
        .as_ref()
        .map(crate::cluster::secret::bundle_files);
    let decision = reissue_reason(
        current.as_ref(),
        &spec.desired(&m.name),
        &roots,
        &spec.policy,
        now,
    );
    let Some(reissue) = decision else {
        describe(&mut status, current.as_ref(), &spec.policy, now);
        status.failed_issuance_attempts = 0;
        status.last_error = None;
        // Keep the record of the last issuance ("Issued: Renewing …") while nothing changes.
        let last_issued = find_condition(&status.conditions, Condition::ISSUING)
            .is_some_and(|c| c.status == false.into());
        if !last_issued {
            set_condition(
                &mut status.conditions,
                Condition::issuing(
                    false,
                    "UpToDate",
                    "the intermediate is current",
                    now,
                    generation,
                ),
            );
        }
        return up_to_date(ctx, status, now, generation);
    };

    // Still serving while renewing: Ready stays True until the bundle is actually bad.
    let serving = matches!(reissue.reason, meshtrust_ca::ReissueReason::Renewing);
    let attempts = status.failed_issuance_attempts;
    if attempts > 0
        && let Some(last) = parse_timestamp(status.last_failure_time.as_deref())
    {
        let retry = ctx.backoff.retry_at(last, attempts);
        if now < retry {
            describe(&mut status, current.as_ref(), &spec.policy, now);
            set_condition(
                &mut status.conditions,
                Condition::issuing(
                    true,
                    reissue.reason.as_str(),
                    format!(
                        "{}; retrying after {} (attempt {})",
                        reissue.message,
                        timestamp(retry),
                        attempts + 1
                    ),
                    now,
                    generation,
                ),
            );
            set_ready_while_reissuing(&mut status, serving, &reissue, now, generation);
            record_metrics(ctx, &status, serving);
            return Outcome {
                status,
                next: Some(retry),
            };
        }
    }

    let result = issue_and_deliver(
        ctx,
        spec,
        m,
        client,
        observed,
        issuer,
        &format!("{}: {}", reissue.reason.as_str(), reissue.message),
        now,
    )
    .await;
    match result {
        Ok(files) => {
            let message = format!(
                "cluster {}: issued a new intermediate ({}: {})",
                m.spec.name,
                reissue.reason.as_str(),
                reissue.message
            );
            publish(ctx, mt, EventType::Normal, "Issued", &message).await;
            describe(&mut status, Some(&files), &spec.policy, now);
            status.failed_issuance_attempts = 0;
            status.last_error = None;
            set_condition(
                &mut status.conditions,
                Condition::issuing(false, "Issued", message, now, generation),
            );
            up_to_date(ctx, status, now, generation)
        }
        Err(e) => {
            let message = format!("{e:#}");
            ctx.metrics.reconcile_failed("IssuanceFailed");
            publish(
                ctx,
                mt,
                EventType::Warning,
                "IssuanceFailed",
                &format!("cluster {}: {message}", m.spec.name),
            )
            .await;
            describe(&mut status, current.as_ref(), &spec.policy, now);
            status.failed_issuance_attempts = attempts.saturating_add(1);
            status.last_failure_time = Some(timestamp(now));
            status.last_error = Some(message.clone());
            set_condition(
                &mut status.conditions,
                Condition::issuing(
                    true,
                    reissue.reason.as_str(),
                    message.clone(),
                    now,
                    generation,
                ),
            );
            set_ready_while_reissuing(&mut status, serving, &reissue, now, generation);
            record_metrics(ctx, &status, serving);
            Outcome {
                next: Some(ctx.backoff.retry_at(now, status.failed_issuance_attempts)),
                status,
            }
        }
    }
}

/// A cluster holding a valid, current bundle: Ready, and next looked at when it is due.
fn up_to_date(
    ctx: &Context,
    mut status: ClusterStatus,
    now: OffsetDateTime,
    generation: Option<i64>,
) -> Outcome {
    set_condition(
        &mut status.conditions,
        Condition::ready(
            true,
            "Ready",
            "cacerts is valid and current",
            now,
            generation,
        ),
    );
    record_metrics(ctx, &status, true);
    let next = parse_timestamp(status.renewal_time.as_deref());
    Outcome { status, next }
}

/// Ready while a reissue is pending: a bundle that is only due for renewal still serves
/// (Ready True, saying renewal is pending); anything else is not ready, for the reason.
fn set_ready_while_reissuing(
    status: &mut ClusterStatus,
    serving: bool,
    reissue: &meshtrust_ca::Reissue,
    now: OffsetDateTime,
    generation: Option<i64>,
) {
    let ready = if serving {
        Condition::ready(
            true,
            "Ready",
            format!(
                "cacerts is valid; its renewal is pending ({} failed attempt(s))",
                status.failed_issuance_attempts
            ),
            now,
            generation,
        )
    } else {
        Condition::ready(
            false,
            reissue.reason.as_str(),
            reissue.message.clone(),
            now,
            generation,
        )
    };
    set_condition(&mut status.conditions, ready);
}

/// Issues a new intermediate for one cluster and writes it, exactly as `bootstrap` does.
#[allow(clippy::too_many_arguments)]
async fn issue_and_deliver(
    ctx: &Context,
    spec: &Spec,
    m: &Member<'_>,
    client: &Client,
    observed: &Observed,
    issuer: Arc<dyn Issuer>,
    reason: &str,
    now: OffsetDateTime,
) -> Result<BundleFiles> {
    let (mut bundles, _notices) =
        issue_bundles(issuer, std::slice::from_ref(&m.name), &spec.options, now).await?;
    let bundle = bundles.pop().context("internal: nothing issued")?;
    let files = bundle.bundle.bundle_files(spec.options.format);
    deliver(ctx, spec, m, client, observed, &files, reason, now).await?;
    Ok(files)
}

/// Writes `files` as the cluster's `cacerts` (create, or replace with the observed
/// resourceVersion; a Secret meshtrust did not write is backed up first).
#[allow(clippy::too_many_arguments)]
pub(super) async fn deliver(
    _ctx: &Context,
    spec: &Spec,
    m: &Member<'_>,
    client: &Client,
    observed: &Observed,
    files: &BundleFiles,
    reason: &str,
    now: OffsetDateTime,
) -> Result<()> {
    let report = verify_bundle(files, &VerifyOptions::at(now));
    if !report.accepted() {
        let why: Vec<_> = report.findings.iter().map(|f| f.message.as_str()).collect();
        anyhow::bail!(
            "the new bundle for {} fails verification, nothing was written: {}",
            m.spec.name,
            why.join("; ")
        );
    }
    let secret = cacerts_secret(&spec.namespace, files, &report);
    let action = match &observed.secret {
        None => Action::Create,
        Some(s) => Action::Replace {
            reason: reason.to_string(),
            backup: s.labels().get(MANAGED_BY.0).map(String::as_str) != Some(MANAGED_BY.1),
        },
    };
    apply(
        client,
        &m.spec.name,
        &spec.namespace,
        observed,
        &action,
        Some(secret),
        m.spec.network.as_deref(),
    )
    .await?;
    Ok(())
}

/// Fills the certificate fields of a cluster's status from its bundle.
pub(super) fn describe(
    status: &mut ClusterStatus,
    files: Option<&BundleFiles>,
    policy: &RenewalPolicy,
    now: OffsetDateTime,
) {
    let Some(files) = files else { return };
    let report = verify_bundle(files, &VerifyOptions::at(now));
    status.trusted_roots = report.root_fingerprints.clone();
    if let Some(c) = &report.ca_cert {
        status.not_before = Some(timestamp(c.not_before));
        status.not_after = Some(timestamp(c.not_after));
        status.renewal_time = Some(timestamp(policy.renewal_time(c.not_before, c.not_after)));
        status.serial = Some(c.serial.clone());
    }
}

pub(super) fn record_metrics(ctx: &Context, status: &ClusterStatus, ready: bool) {
    if let (Some(na), Some(rt)) = (
        parse_timestamp(status.not_after.as_deref()),
        parse_timestamp(status.renewal_time.as_deref()),
    ) {
        ctx.metrics.record_cluster(&status.name, na, rt);
    }
    ctx.metrics
        .set_ready(&status.name, if ready { "True" } else { "False" });
}

pub(super) async fn publish(
    ctx: &Context,
    mt: &MeshTrust,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    let reference: ObjectReference = mt.object_ref(&());
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note.chars().take(1000).collect()),
        action: reason.to_string(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &reference).await {
        tracing::warn!(error = %e, reason, "cannot publish an event");
    }
}

async fn write_status(ctx: &Context, mt: &MeshTrust, status: &MeshTrustStatus) -> Result<()> {
    let api: Api<MeshTrust> = Api::all(ctx.client.clone());
    let mut status = serde_json::to_value(status)?;
    // A merge patch leaves out fields alone: clear a finished rotation explicitly.
    if status.get("rotation").is_none() {
        status["rotation"] = serde_json::Value::Null;
    }
    let patch = serde_json::json!({ "status": status });
    api.patch_status(
        &mt.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .with_context(|| format!("cannot write the status of MeshTrust {}", mt.name_any()))?;
    Ok(())
}
