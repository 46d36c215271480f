//! Carrying a round's report out: Events, metrics, and the status — written by server-side
//! apply with one field manager, inside a timeout.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use meshtrust_kube::FIELD_MANAGER;

use crate::context::{Context, STATUS_TIMEOUT};
use crate::crd::{ClusterStatus, ConditionStatus, MeshTrust, MeshTrustStatus, parse_timestamp};
use crate::decide::{Notice, Outcome};
use crate::error::{Error, Result};
use crate::reason::Reason;

/// Publishes an Event about `mt` (a failure to publish is logged, never fatal).
pub async fn publish(ctx: &Context, mt: &MeshTrust, notice: &Notice) {
    let reference: ObjectReference = mt.object_ref(&());
    let event = Event {
        type_: notice.type_,
        reason: notice.reason.as_str().to_string(),
        note: Some(notice.note.chars().take(1000).collect()),
        action: notice.reason.as_str().to_string(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &reference).await {
        tracing::warn!(error = %e, reason = %notice.reason, "cannot publish an event");
    }
}

/// A Warning or Normal notice.
pub fn notice(type_: EventType, reason: Reason, note: impl Into<String>) -> Notice {
    Notice {
        type_,
        reason,
        note: note.into(),
    }
}

/// Publishes a cluster outcome's Events and records its metrics.
pub async fn carry_out(ctx: &Context, mt: &MeshTrust, outcome: &Outcome) {
    for n in &outcome.events {
        publish(ctx, mt, n).await;
    }
    if let Some(reason) = outcome.failure {
        ctx.metrics.reconcile_failed(reason);
    }
    if let Some(ready) = outcome.ready {
        record_metrics(ctx, &outcome.status, ready);
    }
}

/// The certificate times and Ready status of one cluster, as metrics.
pub fn record_metrics(ctx: &Context, status: &ClusterStatus, ready: ConditionStatus) {
    if let (Some(na), Some(rt)) = (
        parse_timestamp(status.not_after.as_deref()),
        parse_timestamp(status.renewal_time.as_deref()),
    ) {
        ctx.metrics.record_cluster(&status.name, na, rt);
    }
    ctx.metrics.set_ready(&status.name, ready.as_str());
}

/// Records the rotation phase in the metrics, then writes `status` as the whole status of
/// `mt`, by server-side apply (field manager `meshtrust`, forced: the controller owns the
/// status), within [`STATUS_TIMEOUT`]. A field the controller no longer sets (a finished
/// rotation) disappears with the apply.
pub async fn write_status(ctx: &Context, mt: &MeshTrust, status: &MeshTrustStatus) -> Result<()> {
    let name = mt.name_any();
    let phase = status.rotation.as_ref().map(|r| r.phase.as_str());
    ctx.metrics.record_rotation(&name, phase, ctx.clock.now());
    let failed = |reason: String| Error::Status {
        name: name.clone(),
        reason,
    };
    let api: Api<MeshTrust> = Api::all(ctx.client.clone());
    let body = serde_json::json!({
        "apiVersion": MeshTrust::api_version(&()),
        "kind": MeshTrust::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    match tokio::time::timeout(
        STATUS_TIMEOUT,
        api.patch_status(&name, &params, &Patch::Apply(&body)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(failed(meshtrust_kube::api_message(&e))),
        Err(_) => Err(failed(format!(
            "no answer within {}s",
            STATUS_TIMEOUT.as_secs()
        ))),
    }
}
