//! Issuing and writing cluster bundles: the pipeline `cacerts` and `demo` share.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Result, bail};
use meshtrust_ca::{BundleFormat, ClusterName, duration, fmt_time};
use meshtrust_issuer::{Batch, Clock, IssuedBundle, Issuer, issue_batch};
use rayon::prelude::*;
use serde::Serialize;
use time::OffsetDateTime;

use crate::args::{IntermediateOptions, IssuerOptions, Output};
use crate::output;
use crate::write::{CERT_MODE, KEY_MODE, StagedDir, sync_dir, sync_filesystem};

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

/// The issuer that `--issuer` and `--root` name, built by the one issuer factory; `None`
/// when the local issuer is chosen without a root (each command decides what that means:
/// `cacerts` refuses, `bootstrap` uses its saved root).
pub async fn chosen_issuer(
    opts: &IssuerOptions,
    root: Option<&Path>,
    clock: &Clock,
) -> Result<Option<Arc<dyn Issuer>>> {
    match opts.config(root)? {
        Some(config) => Ok(Some(meshtrust_issuer::connect(config, clock).await?)),
        None => Ok(None),
    }
}

/// What a batch gave: every cluster's bundle, or — through an issuer whose issuance is
/// final (`meshtrust serve`: the one-time tokens are spent) — the bundles of the clusters
/// issued, to be written all the same, and the errors naming the others.
pub struct Issued {
    pub batch: Batch,
    pub failed: Vec<meshtrust_issuer::Error>,
}

impl Issued {
    /// Fails, after the issued bundles were written to `written` (a directory, or the
    /// clusters), naming each cluster that failed and what to rerun.
    pub fn finish(&self, written: &str) -> Result<()> {
        if self.failed.is_empty() {
            return Ok(());
        }
        let done: Vec<String> = self
            .batch
            .bundles
            .iter()
            .map(|b| b.cluster.to_string())
            .collect();
        let failures: Vec<String> = self
            .failed
            .iter()
            .map(|e| format!("{e}{}", crate::advice::issuer(e)))
            .collect();
        bail!(
            "{} of {} clusters could not be issued: {}. The bundles of {} were issued and written to {written} (their credentials are spent: do not issue them again); rerun for the others only (with a new token where the service refused theirs)",
            failures.len(),
            failures.len() + done.len(),
            failures.join("; "),
            done.join(", ")
        )
    }
}

/// Issues one intermediate per cluster with the flags' parameters (batch issuance: keys in
/// parallel, bounded signing concurrency, every bundle checked before it is returned).
pub async fn issue_bundles(
    issuer: Arc<dyn Issuer>,
    clusters: &[ClusterName],
    opts: &IntermediateOptions,
    clock: &Clock,
) -> Result<Issued> {
    match issue_batch(issuer, &opts.template(), clusters, clock).await {
        Ok(batch) => Ok(Issued {
            batch,
            failed: Vec::new(),
        }),
        Err(meshtrust_issuer::Error::PartialBatch {
            issued, failures, ..
        }) => Ok(Issued {
            batch: *issued,
            failed: failures,
        }),
        Err(e) => Err(e.into()),
    }
}

/// Writes each bundle to OUT/NAME atomically: all are staged (in parallel), flushed in one
/// filesystem sync, then renamed into place one by one. A replaced bundle kept with
/// `backup` is named after `now`.
pub fn write_bundles(
    out: &Path,
    bundles: &[IssuedBundle],
    format: BundleFormat,
    force: bool,
    backup: bool,
    now: OffsetDateTime,
) -> Result<Vec<BundleSummary>> {
    crate::write::ensure_dir(out)?;
    crate::write::sweep_stale(out)?;
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
        let backup_dir = staged.commit(force, backup.then_some(now))?;
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
