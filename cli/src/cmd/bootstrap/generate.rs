//! `bootstrap --generate DIR`: the manifests instead of the writes, for GitOps.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use meshtrust_ca::{ClusterName, VerifyOptions, verify_bundle};
use meshtrust_issuer::{Clock, IssuedBundle, Issuer};
use meshtrust_kube::{NETWORK_LABEL, cacerts_secret, scrub};
use time::OffsetDateTime;
use zeroize::{Zeroize, Zeroizing};

use super::Target;
use crate::args::{BootstrapArgs, Output};
use crate::cmd::issue;
use crate::output;
use crate::write::{self, KEY_MODE};

/// `--generate DIR`: DIR/<cluster>.yaml with the Namespace and the Secret, for GitOps.
pub(super) async fn run(
    args: &BootstrapArgs,
    dir: &Path,
    targets: &[Target],
    issuer: Arc<dyn Issuer>,
    clock: &Clock,
) -> Result<ExitCode> {
    let clusters: Vec<ClusterName> = targets.iter().map(|t| t.cluster.clone()).collect();
    if !args.write.force {
        refuse_existing(dir, &clusters)?;
    }
    let issued = issue::issue_bundles(issuer, &clusters, &args.intermediate, clock).await?;
    let batch = &issued.batch;
    let now = clock.now();
    write::ensure_dir(dir)?;
    write::sweep_stale(dir)?;
    let mut written = Vec::new();
    for b in &batch.bundles {
        let t = targets
            .iter()
            .find(|t| t.cluster == b.cluster)
            .expect("a bundle is for one of the targets");
        let yaml = manifest(args, t, b, now)?;
        let path = dir.join(format!("{}.yaml", t.cluster));
        write::write_file(&path, yaml.as_bytes(), KEY_MODE, args.write.force)?;
        written.push(path.display().to_string());
    }
    for n in &batch.notices {
        eprintln!("warning: {n}");
    }
    eprintln!(
        "warning: the manifests in {} hold private keys (0600): keep them out of git unless encrypted",
        dir.display()
    );
    print_written(&written, args.output)?;
    issued.finish(&dir.display().to_string())?;
    Ok(ExitCode::SUCCESS)
}

/// Without `--force`, no cluster's manifest in `dir` may exist yet.
fn refuse_existing(dir: &Path, clusters: &[ClusterName]) -> Result<()> {
    for c in clusters {
        let path = dir.join(format!("{c}.yaml"));
        if path.exists() {
            bail!(
                "{} already exists; pass --force to replace it",
                path.display()
            );
        }
    }
    Ok(())
}

/// One cluster's file: a warning header, its Namespace and its `cacerts` Secret. Every
/// buffer holding the key on the way (the Secret, its JSON form, the YAML text) is zeroized
/// when dropped; the YAML serializer's own scratch space is not reachable from here.
fn manifest(
    args: &BootstrapArgs,
    target: &Target,
    issued: &IssuedBundle,
    now: OffsetDateTime,
) -> Result<Zeroizing<String>> {
    let files = issued.bundle.bundle_files(args.intermediate.format);
    let report = verify_bundle(&files, &VerifyOptions::at(now));
    let mut namespace = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": { "name": args.namespace },
    });
    if let Some(n) = &target.network {
        namespace["metadata"]["labels"] = serde_json::json!({ NETWORK_LABEL: n });
    }
    let mut typed = cacerts_secret(&args.namespace, &files, &report);
    let secret = serde_json::to_value(&typed);
    scrub(&mut typed);
    let mut secret = ScrubbedJson(secret?);
    secret.0["apiVersion"] = "v1".into();
    secret.0["kind"] = "Secret".into();
    let secret_yaml = Zeroizing::new(serde_yaml_ng::to_string(&secret.0)?);
    Ok(Zeroizing::new(format!(
        "# meshtrust bootstrap --generate: cluster {} — this file holds a PRIVATE KEY.\n# Keep it out of git unless encrypted (SOPS, sealed-secrets).\n---\n{}---\n{}",
        target.cluster,
        serde_yaml_ng::to_string(&namespace)?,
        secret_yaml.as_str()
    )))
}

/// A Secret as JSON, its `data` strings (base64 of a key) zeroized on drop.
struct ScrubbedJson(serde_json::Value);

impl Drop for ScrubbedJson {
    fn drop(&mut self) {
        if let Some(data) = self.0.get_mut("data").and_then(|d| d.as_object_mut()) {
            for value in data.values_mut() {
                if let serde_json::Value::String(s) = value {
                    s.zeroize();
                }
            }
        }
    }
}

/// The paths written: a JSON array, or one a line.
fn print_written(written: &[String], out: Output) -> Result<()> {
    if out == Output::Json {
        output::json(&written)?;
    } else {
        for w in written {
            println!("{w}");
        }
    }
    Ok(())
}
