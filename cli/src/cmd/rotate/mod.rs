//! `meshtrust rotate start|status|finish`: a MeshTrust's root rotation (docs/rotation.md)
//! without `kubectl create secret` and `kubectl patch`. `start` checks the new root, creates
//! its Secret in the controller's namespace and sets `spec.rootRotation`; the controller
//! carries out the phases; `status` shows them; `finish` closes a Complete one.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use meshtrust_ca::RootCa;
use meshtrust_controller::crd::{MeshTrust, ROOT_CERT, ROOT_KEY, SecretRef, SelectedIssuer};
use meshtrust_issuer::Clock;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::args::{Output, RotateStartArgs};
use crate::output;

mod finish;
mod secret;
mod status;

pub use finish::finish;
pub use status::status;

/// The MeshTrust `name`, or an error naming it (and the CRD when it is not installed).
pub async fn read_meshtrust(api: &Api<MeshTrust>, name: &str) -> Result<MeshTrust> {
    api.get(name).await.map_err(|e| {
        if meshtrust_kube::is_not_found(&e) {
            anyhow::anyhow!(
                "MeshTrust {name} does not exist in the management cluster (`kubectl get mt` lists them; is this the right --context?)"
            )
        } else {
            anyhow::anyhow!(
                "cannot read MeshTrust {name}: {}",
                meshtrust_kube::api_message(&e)
            )
        }
    })
}

/// The phase of the root rotation `mt` is in the middle of (`None`: none, or it is
/// Complete). A `rootRotation` naming the issuer's own Secret is ignored by the controller,
/// and so here.
pub fn in_progress(mt: &MeshTrust) -> Option<String> {
    let rotation = mt.spec.root_rotation.as_ref()?;
    if rotation.target().is_ok_and(|t| t.is(&mt.spec.issuer)) {
        return None;
    }
    let phase = mt
        .status
        .as_ref()
        .and_then(|s| s.rotation.as_ref())
        .map(|r| r.phase.clone());
    match phase.as_deref() {
        Some("Complete") => None,
        Some(p) => Some(p.to_string()),
        None => Some("not started yet: the controller has not reported it".to_string()),
    }
}

/// What `rotate start` reports.
#[derive(Serialize)]
struct Started {
    meshtrust: String,
    new_root_secret: String,
    /// `created`, `unchanged` (it already held this root) or `replaced` (--force).
    secret: &'static str,
    new_root_subject: String,
    new_root_sha256_fingerprint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hold_before_removing_old_root: Option<String>,
}

pub async fn start(args: RotateStartArgs, clock: &Clock) -> Result<ExitCode> {
    let (root, files) = read_new_root(&args.new_root, clock)?;
    let fingerprint = root.certificate().fingerprint();
    let m = &args.management;
    let client = m.kube.access().client(m.context.as_deref()).await?;
    let api: Api<MeshTrust> = Api::all(client.clone());
    let mt = read_meshtrust(&api, &args.name).await?;
    let issuer_secret = refuse_unless_rotatable(&mt)?;
    refuse_current_root(&client, &mt, &issuer_secret, &root, &args.new_root).await?;
    let target = SecretRef {
        name: args
            .secret
            .clone()
            .unwrap_or_else(|| default_secret_name(&args.name, &fingerprint)),
        namespace: args.namespace.clone(),
    };
    if target == issuer_secret {
        bail!(
            "Secret {target} is the current root's (spec.issuer.local.secretRef of MeshTrust {}): the new root needs a Secret of its own; pick another name with --secret",
            args.name
        );
    }
    let written = secret::ensure(&client, &target, &files, args.force).await?;
    set_rotation(&api, &mt, &target, args.hold.as_deref()).await?;
    let started = Started {
        meshtrust: args.name.clone(),
        new_root_secret: target.to_string(),
        secret: written,
        new_root_subject: root.certificate().subject(),
        new_root_sha256_fingerprint: fingerprint,
        hold_before_removing_old_root: args.hold.clone(),
    };
    if args.output == Output::Json {
        output::json(&started)?;
    } else {
        println!(
            "Secret {} {} with the new root ({}, sha256 {})",
            started.new_root_secret,
            started.secret,
            started.new_root_subject,
            output::short(&started.new_root_sha256_fingerprint, 23)
        );
        println!(
            "Set spec.rootRotation of MeshTrust {}: the controller now rotates every cluster to the new root in three phases.",
            started.meshtrust
        );
        println!(
            "Follow it with `meshtrust rotate status {}`.",
            started.meshtrust
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The new root in `dir` (`root-cert.pem`, `root-key.pem`), checked as the controller will:
/// one self-signed CA certificate, valid now, and its key; and the files as read.
fn read_new_root(dir: &Path, clock: &Clock) -> Result<(RootCa, secret::RootFiles)> {
    let read = |f: &str| -> Result<Zeroizing<Vec<u8>>> {
        let path = dir.join(f);
        std::fs::read(&path).map(Zeroizing::new).map_err(|e| {
            anyhow::anyhow!(
                "cannot read {} ({e}): the new root directory needs root-cert.pem and root-key.pem, as `meshtrust root create --out {}` writes them",
                path.display(),
                dir.display()
            )
        })
    };
    let (cert, key) = (read(ROOT_CERT)?, read(ROOT_KEY)?);
    let root = RootCa::from_pem(&cert, &key, clock.now()).map_err(|e| {
        anyhow::anyhow!(
            "the new root in {} cannot be used: {e}. A new root is one self-signed CA certificate and its key: create one with `meshtrust root create --out DIR --common-name \"Root CA 2\"`",
            dir.display()
        )
    })?;
    let files = secret::RootFiles {
        cert: cert.to_vec(),
        key,
    };
    Ok((root, files))
}

/// The issuer's root Secret, when `mt` can start a rotation: a local issuer and no
/// rotation under way (or finished but not yet closed).
fn refuse_unless_rotatable(mt: &MeshTrust) -> Result<SecretRef> {
    let name = mt.name_any();
    let local = match mt.spec.issuer.selected() {
        Ok(SelectedIssuer::Local(l)) => l,
        Ok(SelectedIssuer::AwsPca(_)) => bail!(
            "MeshTrust {name} signs with AWS Private CA, and `rotate start` hands over a local root: to rotate to another AWS Private CA, set spec.rootRotation.awsPca.arn (docs/rotation.md, \"AWS Private CA\")"
        ),
        Err(e) => bail!("MeshTrust {name} has an invalid issuer ({e}); fix the spec first"),
    };
    if let Some(phase) = in_progress(mt) {
        bail!(
            "MeshTrust {name} is already rotating its root (phase {phase}); one rotation at a time: follow it with `meshtrust rotate status {name}`"
        );
    }
    if let Some(r) = &mt.spec.root_rotation
        && let Ok(target) = r.target()
        && !target.is(&mt.spec.issuer)
    {
        bail!(
            "the last rotation of MeshTrust {name} is Complete but not closed (it rotated to {target}): run `meshtrust rotate finish {name}`, then start the next one"
        );
    }
    Ok(local.secret_ref.clone())
}

/// Refuses a new root that the MeshTrust already issues from: the one in its issuer's
/// Secret (or, when that cannot be read, the one status says its intermediates chain to).
async fn refuse_current_root(
    client: &Client,
    mt: &MeshTrust,
    issuer_secret: &SecretRef,
    root: &RootCa,
    dir: &Path,
) -> Result<()> {
    let new = root.certificate().fingerprint();
    let current = match secret::root_fingerprint(client, issuer_secret).await? {
        Some(fp) => vec![fp],
        None => mt
            .status
            .iter()
            .flat_map(|s| &s.clusters)
            .filter_map(|c| c.issuing_root.clone())
            .collect(),
    };
    if current.contains(&new) {
        bail!(
            "{} is the root MeshTrust {} already uses (Secret {issuer_secret}); a rotation needs a new one: `meshtrust root create --out NEW_DIR --common-name \"Root CA 2\"`, then pass --new-root NEW_DIR",
            dir.join(ROOT_CERT).display(),
            mt.name_any()
        );
    }
    Ok(())
}

/// `MESHTRUST-root-` and the first 8 hex digits of the new root's fingerprint.
fn default_secret_name(meshtrust: &str, fingerprint: &str) -> String {
    let hex: String = fingerprint
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(8)
        .collect::<String>()
        .to_lowercase();
    format!("{meshtrust}-root-{hex}")
}

/// Sets `spec.rootRotation`, on the condition that the MeshTrust is still the one read.
async fn set_rotation(
    api: &Api<MeshTrust>,
    mt: &MeshTrust,
    target: &SecretRef,
    hold: Option<&str>,
) -> Result<()> {
    let mut rotation = serde_json::json!({
        "newRootSecretRef": {"name": target.name, "namespace": target.namespace}
    });
    if let Some(h) = hold {
        rotation["holdBeforeRemovingOldRoot"] = serde_json::json!(h);
    }
    let patch = serde_json::json!({
        "metadata": {"resourceVersion": mt.resource_version()},
        "spec": {"rootRotation": rotation},
    });
    let name = mt.name_any();
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if meshtrust_kube::is_conflict(&e) => bail!(
            "MeshTrust {name} changed while the rotation was being started; spec.rootRotation was not set (the new root's Secret {target} is kept): run the same `meshtrust rotate start` again"
        ),
        Err(e) => bail!(
            "cannot set spec.rootRotation of MeshTrust {name}: {} (the new root's Secret {target} is kept)",
            meshtrust_kube::api_message(&e)
        ),
    }
}

#[cfg(test)]
mod tests;
