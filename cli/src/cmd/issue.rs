//! Issuing and writing cluster bundles: the pipeline `cacerts` and `demo` share.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;

use anyhow::{Context, Result, bail};
use meshtrust_ca::{
    BundleFormat, CaCerts, ClusterName, IntermediateParams, PrivateKey, VerifyOptions, fmt_time,
    verify_bundle,
};
use meshtrust_issuer::aws_pca::{AwsOptions, RetryPolicy, SdkPca};
use meshtrust_issuer::{AwsPcaIssuer, IssueRequest, Issuer, LocalIssuer};
use rayon::prelude::*;
use serde::Serialize;
use time::OffsetDateTime;

use crate::args::{IntermediateOptions, IssuerKind, IssuerOptions, Output};
use crate::duration;
use crate::output;
use crate::write::{CERT_MODE, KEY_MODE, StagedDir, sync_dir, sync_filesystem};

/// One cluster's bundle, issued and verified, not yet written.
pub struct IssuedBundle {
    pub cluster: ClusterName,
    pub bundle: CaCerts,
}

/// What is reported per cluster once written.
#[derive(Serialize)]
pub struct BundleSummary {
    pub cluster: String,
    pub dir: String,
    pub format: BundleFormat,
    pub key: String,
    pub serial: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub root_fingerprints: Vec<String>,
    pub files: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
}

/// Refuses before any work when a cluster's output directory exists and `force` is off,
/// listing what is there so the user sees what would be lost.
pub fn check_outputs(out: &Path, clusters: &[ClusterName], force: bool) -> Result<()> {
    if force {
        return Ok(());
    }
    let mut taken = Vec::new();
    for c in clusters {
        let dir = out.join(c.as_str());
        if dir.exists() {
            let mut names: Vec<String> = std::fs::read_dir(&dir)
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            taken.push(format!("{} (holds {})", dir.display(), names.join(", ")));
        }
    }
    if !taken.is_empty() {
        bail!(
            "{} already exists; refusing to overwrite a cluster's cacerts. Pass --force to replace (add --backup to keep the old bundle)",
            taken.join("; ")
        );
    }
    Ok(())
}

/// Deduplicates cluster names, keeping the first occurrence order.
pub fn unique(clusters: Vec<ClusterName>) -> Vec<ClusterName> {
    let mut seen = std::collections::HashSet::new();
    clusters
        .into_iter()
        .filter(|c| seen.insert(c.clone()))
        .collect()
}

/// The issuer that `--issuer` and `--root` name: the local root in `root`, or AWS Private
/// CA. `None` when the local issuer is chosen without a root (each command decides what
/// that means: `cacerts` refuses, `bootstrap` uses its saved root).
pub async fn chosen_issuer(
    opts: &IssuerOptions,
    root: Option<&Path>,
    now: OffsetDateTime,
) -> Result<Option<Arc<dyn Issuer>>> {
    match (opts.issuer, root) {
        (IssuerKind::Local, Some(dir)) => Ok(Some(Arc::new(LocalIssuer::from_dir(dir, now)?))),
        (IssuerKind::Local, None) => Ok(None),
        (IssuerKind::AwsPca, Some(_)) => bail!(
            "--root is for --issuer local; with --issuer aws-pca the root lives in AWS Private CA"
        ),
        (IssuerKind::AwsPca, None) => Ok(Some(aws_issuer(opts).await?)),
    }
}

/// The AWS Private CA issuer for `opts`, or an error saying what is missing.
pub async fn aws_issuer(opts: &IssuerOptions) -> Result<Arc<dyn Issuer>> {
    let arn = opts
        .ca_arn
        .as_deref()
        .context("--issuer aws-pca needs --ca-arn ARN (the AWS Private CA that signs)")?;
    let api = SdkPca::connect(&AwsOptions::new(
        opts.region.clone(),
        opts.profile.clone(),
        opts.endpoint_url.clone(),
    ))
    .await?;
    Ok(Arc::new(AwsPcaIssuer::new(
        Arc::new(api),
        arn,
        RetryPolicy::default(),
    )))
}

/// How many signing requests are in flight at once: enough to hide a remote CA's latency,
/// few enough not to trip its rate limits.
const MAX_IN_FLIGHT: usize = 8;

/// Generates every cluster's key and CSR (in parallel on every core), has `issuer` sign the
/// requests (up to [`MAX_IN_FLIGHT`] at once), and verifies every bundle as istiod would
/// before returning it. Keys never leave this function's memory; only CSRs go to the issuer.
pub async fn issue_bundles(
    issuer: Arc<dyn Issuer>,
    clusters: &[ClusterName],
    opts: &IntermediateOptions,
    now: OffsetDateTime,
) -> Result<(Vec<IssuedBundle>, Vec<String>)> {
    let (keys, requests): (Vec<PrivateKey>, Vec<IssueRequest>) = clusters
        .par_iter()
        .map(|cluster| {
            let mut params = IntermediateParams::new(cluster.clone());
            params.key_type = opts.key_type;
            params.validity = opts.validity;
            params.path_len = opts.path_len;
            params.organization = opts.org.clone();
            let key = PrivateKey::generate(params.key_type)?;
            let csr = params.csr(&key)?;
            Ok((
                key,
                IssueRequest::new(cluster.clone(), csr, params.profile(), now),
            ))
        })
        .collect::<Result<Vec<_>, meshtrust_ca::Error>>()?
        .into_iter()
        .unzip();

    let responses: Vec<_> = futures::stream::iter(requests)
        .map(|request| {
            let issuer = Arc::clone(&issuer);
            tokio::spawn(async move {
                let issued = issuer.issue_intermediate(&request).await;
                (request.cluster, issued)
            })
        })
        .buffered(MAX_IN_FLIGHT)
        .collect()
        .await;

    let mut bundles = Vec::with_capacity(keys.len());
    let mut notices = Vec::new();
    for (key, joined) in keys.into_iter().zip(responses) {
        let (cluster, issued) = joined.context("a signing task panicked")?;
        let issued = issued.with_context(|| {
            format!(
                "cluster {cluster}: {} could not issue its intermediate",
                issuer.describe()
            )
        })?;
        notices.extend(issued.notices);
        bundles.push(IssuedBundle {
            cluster,
            bundle: CaCerts::new(issued.certificate, key, issued.chain, issued.trust_bundle),
        });
    }
    // Verify every bundle as istiod would before anything is written (in parallel: each
    // check signs and path-validates a test workload certificate).
    // Checked at the time of checking, not of the request: a remote CA stamps notBefore
    // with its own clock.
    let checked_at = OffsetDateTime::now_utc().max(now);
    bundles.par_iter().try_for_each(|b| {
        let report = verify_bundle(
            &b.bundle.bundle_files(opts.format),
            &VerifyOptions::at(checked_at),
        );
        if report.accepted() {
            return Ok(());
        }
        let why: Vec<_> = report.findings.iter().map(|f| f.message.as_str()).collect();
        bail!(
            "cluster {}: the bundle issued by {} fails verification, nothing was written: {}",
            b.cluster,
            issuer.describe(),
            why.join("; ")
        )
    })?;
    Ok((bundles, notices))
}

/// Writes each bundle to OUT/NAME atomically: all are staged (in parallel), flushed in one
/// filesystem sync, then renamed into place one by one.
pub fn write_bundles(
    out: &Path,
    bundles: &[IssuedBundle],
    format: BundleFormat,
    force: bool,
    backup: bool,
) -> Result<Vec<BundleSummary>> {
    crate::write::ensure_dir(out)?;
    let staged = bundles
        .par_iter()
        .map(|b| {
            let staged = StagedDir::new(&out.join(b.cluster.as_str()))?;
            for f in b.bundle.files(format) {
                staged.write(
                    f.name,
                    &f.contents,
                    if f.secret { KEY_MODE } else { CERT_MODE },
                )?;
            }
            Ok(staged)
        })
        .collect::<Result<Vec<_>>>()?;
    sync_filesystem(out)?;
    let mut summaries = Vec::with_capacity(bundles.len());
    for (b, staged) in bundles.iter().zip(staged) {
        let target: PathBuf = out.join(b.cluster.as_str());
        let backup_dir = staged.commit(force, backup)?;
        let cert = b.bundle.certificate();
        summaries.push(BundleSummary {
            cluster: b.cluster.to_string(),
            dir: target.display().to_string(),
            format,
            key: cert.key_algorithm().to_string(),
            serial: cert.serial_hex(),
            not_after: cert.not_after(),
            root_fingerprints: b.bundle.trust().fingerprints(),
            files: format.file_names().to_vec(),
            backup: backup_dir.map(|p| p.display().to_string()),
        });
    }
    sync_dir(out)?;
    Ok(summaries)
}

/// The per-cluster table (text) or the JSON array.
pub fn print_bundles(
    summaries: &[BundleSummary],
    now: OffsetDateTime,
    output: Output,
) -> Result<()> {
    if output == Output::Json {
        return output::json(&summaries);
    }
    let mut t = output::table([
        "CLUSTER",
        "KEY",
        "NOT AFTER",
        "TIME LEFT",
        "ROOT SHA-256",
        "BUNDLE",
    ]);
    for s in summaries {
        t.add_row([
            s.cluster.clone(),
            s.key.clone(),
            fmt_time(s.not_after),
            duration::human(s.not_after - now),
            s.root_fingerprints
                .iter()
                .map(|f| output::short(f, 17))
                .collect::<Vec<_>>()
                .join(","),
            s.dir.clone(),
        ]);
    }
    println!("{t}");
    for s in summaries {
        if let Some(b) = &s.backup {
            println!("cluster {}: previous bundle kept in {b}", s.cluster);
        }
    }
    Ok(())
}
