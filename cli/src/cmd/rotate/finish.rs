//! `meshtrust rotate finish`: close a Complete rotation — the issuer's Secret becomes the new
//! root's and `spec.rootRotation` goes, in one patch (docs/rotation.md, step 5).

use std::process::ExitCode;

use anyhow::{Result, bail};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use meshtrust_controller::crd::{MeshTrust, SecretRef, SelectedIssuer};
use serde::Serialize;

use super::{in_progress, read_meshtrust};
use crate::args::{Output, RotationArgs};
use crate::output;

/// What `rotate finish` reports.
#[derive(Serialize)]
struct Finished {
    meshtrust: String,
    /// The Secret the MeshTrust now issues from.
    issuer_secret: String,
    /// The old root's Secret, now unused: kept, for a way back.
    old_root_secret: String,
}

pub async fn finish(args: RotationArgs) -> Result<ExitCode> {
    let m = &args.management;
    let client = m.kube.access().client(m.context.as_deref()).await?;
    let api: Api<MeshTrust> = Api::all(client);
    let mt = read_meshtrust(&api, &args.name).await?;
    let (old, new) = closable(&mt)?;
    // One merge patch, conditioned on what was read: the issuer moves to the new root and
    // the rotation goes together, never one without the other (docs/rotation.md, step 5).
    let patch = serde_json::json!({
        "metadata": {"resourceVersion": mt.resource_version()},
        "spec": {
            "issuer": {"local": {"secretRef": {"name": new.name, "namespace": new.namespace}}},
            "rootRotation": null,
        },
    });
    let name = mt.name_any();
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {}
        Err(e) if meshtrust_kube::is_conflict(&e) => bail!(
            "MeshTrust {name} changed while the rotation was being finished; nothing was changed: run `meshtrust rotate finish {name}` again"
        ),
        Err(e) => bail!(
            "cannot finish the rotation of MeshTrust {name}: {}; nothing was changed",
            meshtrust_kube::api_message(&e)
        ),
    }
    let finished = Finished {
        meshtrust: name,
        issuer_secret: new.to_string(),
        old_root_secret: old.to_string(),
    };
    if args.output == Output::Json {
        output::json(&finished)?;
    } else {
        println!(
            "MeshTrust {} now issues from Secret {}; spec.rootRotation is removed.",
            finished.meshtrust, finished.issuer_secret
        );
        println!(
            "Keep the old root's Secret {} until every workload certificate issued under the old root has expired (24h by default) and you no longer want a way back; then delete it.",
            finished.old_root_secret
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The (old, new) root Secrets of `mt`'s rotation, when it is Complete for the spec as it
/// stands; otherwise an error saying why it cannot be closed yet.
pub(super) fn closable(mt: &MeshTrust) -> Result<(SecretRef, SecretRef)> {
    let name = mt.name_any();
    let Ok(SelectedIssuer::Local(local)) = mt.spec.issuer.selected() else {
        bail!(
            "MeshTrust {name} does not sign with a local root: there is no rotation of its Secret to finish"
        );
    };
    let Some(rotation) = &mt.spec.root_rotation else {
        bail!("MeshTrust {name} has no root rotation (spec.rootRotation) to finish");
    };
    if rotation.new_root_secret_ref == local.secret_ref {
        bail!(
            "MeshTrust {name} already issues from {}; remove spec.rootRotation, which names the same Secret",
            local.secret_ref
        );
    }
    if let Some(phase) = in_progress(mt) {
        bail!(
            "the root rotation of MeshTrust {name} is in phase {phase}, not Complete; finish it once `meshtrust rotate status {name}` says Complete"
        );
    }
    let observed = mt.status.as_ref().and_then(|s| s.observed_generation);
    if observed != mt.metadata.generation {
        bail!(
            "the controller has not yet reported on the latest spec of MeshTrust {name} (generation {}, status of {}); wait for it, then finish",
            mt.metadata.generation.unwrap_or_default(),
            observed.map_or("none".to_string(), |g| g.to_string())
        );
    }
    Ok((
        local.secret_ref.clone(),
        rotation.new_root_secret_ref.clone(),
    ))
}
