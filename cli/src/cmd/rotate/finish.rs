//! `meshtrust rotate finish`: close a Complete rotation — the issuer's Secret becomes the new
//! root's and `spec.rootRotation` goes, in one patch (docs/rotation.md, step 5).

use std::process::ExitCode;

use anyhow::{Result, bail};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use meshtrust_controller::crd::{
    AwsPcaIssuerSpec, MeshTrust, RotationTarget, SecretRef, SelectedIssuer,
};
use serde::Serialize;

use super::{in_progress, read_meshtrust};
use crate::args::{Output, RotationArgs};
use crate::output;

/// What `rotate finish` reports.
#[derive(Serialize)]
struct Finished {
    meshtrust: String,
    /// The Secret the MeshTrust now issues from, when it is a local root.
    #[serde(skip_serializing_if = "Option::is_none")]
    issuer_secret: Option<String>,
    /// The AWS Private CA it now issues from, when it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    issuer_ca_arn: Option<String>,
    /// The old issuer, now unused: kept, for a way back.
    old_issuer: String,
}

pub async fn finish(args: RotationArgs) -> Result<ExitCode> {
    let m = &args.management;
    let client = m.kube.access().client(m.context.as_deref()).await?;
    let api: Api<MeshTrust> = Api::all(client);
    let mt = read_meshtrust(&api, &args.name).await?;
    let closing = closable(&mt)?;
    // One merge patch, conditioned on what was read: the issuer moves to the new root and
    // the rotation goes together, never one without the other (docs/rotation.md, step 5).
    let patch = serde_json::json!({
        "metadata": {"resourceVersion": mt.resource_version()},
        "spec": {
            "issuer": closing.issuer_patch()?,
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
        issuer_secret: closing.new_secret.map(|r| r.to_string()),
        issuer_ca_arn: closing.new_ca.map(|a| a.arn),
        old_issuer: closing.old,
    };
    if args.output == Output::Json {
        output::json(&finished)?;
    } else {
        let new = match (&finished.issuer_secret, &finished.issuer_ca_arn) {
            (Some(s), _) => format!("Secret {s}"),
            (None, Some(arn)) => format!("AWS Private CA {arn}"),
            (None, None) => "the new issuer".to_string(),
        };
        println!(
            "MeshTrust {} now issues from {new}; spec.rootRotation is removed.",
            finished.meshtrust
        );
        println!(
            "Keep the old issuer ({}) until every workload certificate issued under the old root has expired (24h by default) and you no longer want a way back; then retire it.",
            finished.old_issuer
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A Complete rotation, as `rotate finish` closes it.
pub(super) struct Closing {
    /// The old issuer, described.
    pub old: String,
    /// The new issuer, when it is a root in a Secret.
    pub new_secret: Option<SecretRef>,
    /// The new issuer, when it is an AWS Private CA.
    pub new_ca: Option<AwsPcaIssuerSpec>,
    /// The local issuer's key type, kept when the new issuer is a Secret too.
    key_type: Option<String>,
}

impl Closing {
    /// `spec.issuer` as a merge patch: the new issuer, the other kind removed.
    fn issuer_patch(&self) -> Result<serde_json::Value> {
        Ok(match (&self.new_secret, &self.new_ca) {
            (Some(r), _) => {
                let mut local =
                    serde_json::json!({"secretRef": {"name": r.name, "namespace": r.namespace}});
                if let Some(k) = &self.key_type {
                    local["keyType"] = k.clone().into();
                }
                serde_json::json!({"local": local, "awsPca": null})
            }
            (None, Some(a)) => {
                serde_json::json!({"local": null, "awsPca": serde_json::to_value(a)?})
            }
            (None, None) => bail!("the rotation names no new issuer"),
        })
    }
}

/// The old issuer and the new one of `mt`'s rotation, when it is Complete for the spec as
/// it stands; otherwise an error saying why it cannot be closed yet.
pub(super) fn closable(mt: &MeshTrust) -> Result<Closing> {
    let name = mt.name_any();
    let Some(rotation) = &mt.spec.root_rotation else {
        bail!("MeshTrust {name} has no root rotation (spec.rootRotation) to finish");
    };
    let target = match rotation.target() {
        Ok(t) => t,
        Err(e) => {
            bail!("MeshTrust {name} has an invalid spec.rootRotation ({e}); fix the spec first")
        }
    };
    let (old, key_type) = match mt.spec.issuer.selected() {
        Ok(SelectedIssuer::Local(l)) => (
            format!("the root in Secret {}", l.secret_ref),
            Some(l.key_type.clone()),
        ),
        Ok(SelectedIssuer::AwsPca(a)) => (format!("AWS Private CA {}", a.arn), None),
        Err(e) => bail!("MeshTrust {name} has an invalid issuer ({e}); fix the spec first"),
    };
    if target.is(&mt.spec.issuer) {
        bail!(
            "MeshTrust {name} already issues from {target}; remove spec.rootRotation, which names the same issuer"
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
    Ok(match target {
        RotationTarget::Secret(r) => Closing {
            old,
            new_secret: Some(r.clone()),
            new_ca: None,
            key_type,
        },
        RotationTarget::AwsPca(a) => Closing {
            old,
            new_secret: None,
            new_ca: Some(a.clone()),
            key_type: None,
        },
    })
}
