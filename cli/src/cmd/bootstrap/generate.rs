//! `bootstrap --generate DIR`: the manifests instead of the writes, for GitOps.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use meshtrust_ca::{ClusterName, VerifyOptions, verify_bundle};
use meshtrust_issuer::Issuer;
use time::OffsetDateTime;

use super::Target;
use crate::args::{BootstrapArgs, Output};
use crate::cluster::deliver::NETWORK_LABEL;
use crate::cluster::secret::cacerts_secret;
use crate::cmd::issue;
use crate::output;
use crate::write::{self, KEY_MODE};

/// `--generate DIR`: DIR/<cluster>.yaml with the Namespace and the Secret, for GitOps.
pub(super) async fn run(
    args: &BootstrapArgs,
    dir: &Path,
    targets: &[Target],
    issuer: Arc<dyn Issuer>,
    now: OffsetDateTime,
) -> Result<ExitCode> {
    let clusters: Vec<ClusterName> = targets.iter().map(|t| t.cluster.clone()).collect();
    if !args.write.force {
        for c in &clusters {
            let path = dir.join(format!("{c}.yaml"));
            if path.exists() {
                bail!(
                    "{} already exists; pass --force to replace it",
                    path.display()
                );
            }
        }
    }
    let (bundles, notices) =
        issue::issue_bundles(issuer, &clusters, &args.intermediate, now).await?;
    write::ensure_dir(dir)?;
    let mut written = Vec::new();
    for (t, b) in targets.iter().zip(&bundles) {
        let files = b.bundle.bundle_files(args.intermediate.format);
        let report = verify_bundle(&files, &VerifyOptions::at(now));
        let mut namespace = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": { "name": args.namespace },
        });
        if let Some(n) = &t.network {
            namespace["metadata"]["labels"] = serde_json::json!({ NETWORK_LABEL: n });
        }
        let mut secret = serde_json::to_value(cacerts_secret(&args.namespace, &files, &report))?;
        secret["apiVersion"] = "v1".into();
        secret["kind"] = "Secret".into();
        let yaml = format!(
            "# meshtrust bootstrap --generate: cluster {} — this file holds a PRIVATE KEY.\n# Keep it out of git unless encrypted (SOPS, sealed-secrets).\n---\n{}---\n{}",
            t.cluster,
            serde_yaml_ng::to_string(&namespace)?,
            serde_yaml_ng::to_string(&secret)?
        );
        let path = dir.join(format!("{}.yaml", t.cluster));
        write::write_file(&path, yaml.as_bytes(), KEY_MODE, args.write.force)?;
        written.push(path.display().to_string());
    }
    for n in &notices {
        eprintln!("warning: {n}");
    }
    eprintln!(
        "warning: the manifests in {} hold private keys (0600): keep them out of git unless encrypted",
        dir.display()
    );
    if args.output == Output::Json {
        output::json(&written)?;
    } else {
        for w in &written {
            println!("{w}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
