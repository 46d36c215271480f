//! The rotation's gate, as the service has it: each phase starts only once every member's
//! istiod has *loaded* what the previous one wrote (its `istio-ca-root-cert` publishes
//! exactly the roots `cacerts` holds), and phase 1 only once every istiod runs with
//! `ISTIO_MULTIROOT_MESH=true` (the preflight). The rules are `meshtrust_ca`'s; this reads
//! each member's istiod and says what the round does about what holds it.
//!
//! A member without `cacerts` is not gated: it gets the current phase's bundle from the
//! planner (istiod is installed after `cacerts` exists, so waiting for it would wait
//! forever).

use futures::StreamExt;
use meshtrust_ca::{ClusterTrust, IstiodWait, RotationPhase, istiod_wait};
use meshtrust_issuer::server::wire;
use meshtrust_kube::{Istiod, read_istiod};

use crate::context::{CONCURRENCY, Context};
use crate::error::Error;
use crate::members::Member;
use crate::round::Spec;

/// How often a rotation waiting for istiod looks again: istiod loads a new `cacerts`
/// within seconds of it being written.
pub const ISTIOD_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// What holds the rotation's next step.
pub enum Held {
    /// Some istiod could not be read: the round pauses, naming it.
    Unreadable(Vec<String>),
    /// The preflight failed (before phase 1, or while it is written).
    Preflight(Vec<IstiodWait>),
    /// Some istiod has not loaded what its `cacerts` holds.
    NotLoaded(Vec<IstiodWait>),
}

/// What holds `phase` on the members (`trusts` being what each holds), or `None` when
/// every gated istiod is ready for it. Reads each gated member's istiod (in parallel, each
/// within the member's budget).
pub async fn held(
    ctx: &Context,
    spec: &Spec,
    members: &[Member<'_>],
    trusts: &[Option<ClusterTrust>],
    phase: RotationPhase,
) -> Option<Held> {
    let mut reads = Vec::new();
    for (m, trust) in members.iter().zip(trusts) {
        if let (Some(trust), Ok((client, _))) = (trust, &m.read) {
            reads.push(read_one(ctx, spec, m, trust, client));
        }
    }
    let found: Vec<_> = futures::stream::iter(reads)
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let mut unreadable = Vec::new();
    let mut waits = Vec::new();
    for (m, trust, read) in found {
        match read {
            Err(e) => unreadable.push(format!(
                "{e}; the controller needs get on configmap {ns}/{map} and deployment {ns}/{deploy} in each member during a rotation (the member Role of docs/controller.md)",
                ns = spec.namespace,
                map = meshtrust_kube::ISTIO_ROOT_CONFIGMAP,
                deploy = spec.istiod,
            )),
            Ok(istiod) => waits.extend(wait_of(phase, m, trust, &istiod)),
        }
    }
    if !unreadable.is_empty() {
        return Some(Held::Unreadable(unreadable));
    }
    if waits.is_empty() {
        return None;
    }
    Some(match phase {
        RotationPhase::AddNewRoot => Held::Preflight(waits),
        _ => Held::NotLoaded(waits),
    })
}

/// One member's istiod, read within the member's budget.
async fn read_one<'m, 'a>(
    ctx: &Context,
    spec: &Spec,
    m: &'m Member<'a>,
    trust: &'m ClusterTrust,
    client: &kube::Client,
) -> (&'m Member<'a>, &'m ClusterTrust, Result<Istiod, Error>) {
    let read = meshtrust_kube::within(
        ctx.member_budget,
        "reading istiod",
        read_istiod(client, &spec.namespace, &spec.istiod),
    )
    .await
    .map_err(|e| Error::in_cluster(&m.spec.name, e));
    (m, trust, read)
}

fn wait_of(
    phase: RotationPhase,
    m: &Member<'_>,
    trust: &ClusterTrust,
    istiod: &Istiod,
) -> Option<IstiodWait> {
    let held = wire::fingerprints(trust.trust());
    istiod_wait(phase, &m.name, &istiod.state(), &held)
}

/// The one-line message of `waits`.
pub fn message(waits: &[IstiodWait]) -> String {
    waits
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
