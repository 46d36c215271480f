//! `meshtrust bootstrap`: every cluster's intermediate, issued and delivered as `cacerts`,
//! `istio-system` created and labelled with its network — planned per cluster first,
//! carried out in parallel, one failing cluster never stopping the others.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use futures::StreamExt;
use indicatif::ProgressBar;
use meshtrust_ca::{CaCerts, ClusterName, RootParams, VerifyOptions, verify_bundle};
use meshtrust_issuer::{Clock, Issuer, LocalIssuer};
use meshtrust_kube::{
    Access, Action, Applied, Desired, Observed, apply, cacerts_secret, observe, plan,
};
use time::OffsetDateTime;

use super::{issue, root};
use crate::advice;
use crate::args::{BootstrapArgs, Output};
use crate::output;
use outcome::{Outcome, failed, outcome, print_outcomes, progress_bar};
use targets::{Target, targets};

mod generate;
mod outcome;
mod peering;
mod targets;

/// A cluster read and planned (or why it could not be read).
type Planned = std::result::Result<(kube::Client, Observed, Action), String>;

/// The issuer: `--root`, AWS Private CA, or the root in `--root-out` (created when absent,
/// reused on reruns so that they converge).
async fn issuer(args: &BootstrapArgs, clock: &Clock) -> Result<Arc<dyn Issuer>> {
    if let Some(issuer) = issue::chosen_issuer(&args.issuer, args.root.as_deref(), clock).await? {
        return Ok(issuer);
    }
    let now = clock.now();
    if args.root_out.join("root-key.pem").exists() {
        eprintln!("using the root in {}", args.root_out.display());
        return Ok(Arc::new(LocalIssuer::from_dir(&args.root_out, now)?));
    }
    let mut params = RootParams::default();
    params.key_type = args.intermediate.key_type;
    params.organization = args.intermediate.org.clone();
    let local = LocalIssuer::new(params.self_signed(now)?);
    let summary = root::write_root(&args.root_out, local.root(), false, None)?;
    eprintln!(
        "created a root CA in {} ({}); root-key.pem is 0600 — keep it safe, every cluster trusts it",
        summary.dir,
        output::short(&summary.sha256_fingerprint, 23)
    );
    Ok(Arc::new(LocalIssuer::from_dir(&args.root_out, now)?))
}

pub async fn run(args: BootstrapArgs, clock: &Clock) -> Result<ExitCode> {
    if args.peering && args.output == Output::Json {
        bail!(
            "--peering reports its steps as text; drop -o json, and run `meshtrust check -o json` afterwards for a machine-readable report"
        );
    }
    let targets = targets(&args)?;
    let issuer = issuer(&args, clock).await?;
    let roots = issuer.trust_bundle().await?.fingerprints();
    if let Some(dir) = &args.generate {
        return generate::run(&args, dir, &targets, issuer, clock).await;
    }
    let access = args.kube.access();
    let progress = progress_bar(targets.len() as u64 * 2, args.output);
    // 1. Read every cluster (nothing is written) and decide.
    let planned = read_and_plan(&args, &access, &targets, &roots, &progress, clock.now()).await;
    if args.dry_run {
        progress.finish_and_clear();
        return dry_run(&args, &targets, &planned, clock.now());
    }
    // 2. Issue intermediates only where something will be written.
    let writers: Vec<ClusterName> = targets
        .iter()
        .zip(&planned)
        .filter(|(_, p)| p.as_ref().is_ok_and(|(_, _, action)| action.writes()))
        .map(|(t, _)| t.cluster.clone())
        .collect();
    progress.set_message(format!("issuing {} intermediate(s)", writers.len()));
    let issued = issue::issue_bundles(issuer, &writers, &args.intermediate, clock).await?;
    let planned = without_failed(planned, &targets, &issued.failed);
    let batch = issued.batch;
    let bundles: HashMap<ClusterName, CaCerts> = batch
        .bundles
        .into_iter()
        .map(|b| (b.cluster, b.bundle))
        .collect();
    // 3. Carry the plans out, in parallel; each cluster on its own.
    let outcomes = carry_out(&args, &targets, planned, bundles, &progress, clock).await;
    progress.finish_and_clear();
    for n in &batch.notices {
        eprintln!("warning: {n}");
    }
    let failed = outcomes.iter().filter(|o| !o.ok).count();
    print_outcomes(&outcomes, args.output)?;
    if failed > 0 {
        eprintln!(
            "❌ {failed} of {} cluster(s) not done; fix what is reported and rerun — done clusters stay unchanged",
            outcomes.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    if args.peering {
        return peering::run(&args, &access, &targets).await;
    }
    Ok(ExitCode::SUCCESS)
}

/// The plans, with each cluster the issuer failed for (named by an
/// [`meshtrust_issuer::Error::Issuance`]) turned into that failure: the clusters issued
/// are still written, since their one-time credentials are spent.
fn without_failed(
    planned: Vec<Planned>,
    targets: &[Target],
    failed: &[meshtrust_issuer::Error],
) -> Vec<Planned> {
    let failure_of = |t: &Target| {
        failed.iter().find(|e| {
            matches!(e, meshtrust_issuer::Error::Issuance { cluster, .. } if cluster == t.cluster.as_str())
        })
    };
    planned
        .into_iter()
        .zip(targets)
        .map(|(p, t)| match failure_of(t) {
            Some(e) => Err(format!("{e}{}", crate::advice::issuer(e))),
            None => p,
        })
        .collect()
}

/// Reads every cluster (bounded in parallel; nothing is written) and plans each.
async fn read_and_plan(
    args: &BootstrapArgs,
    access: &Access,
    targets: &[Target],
    roots: &[String],
    progress: &ProgressBar,
    now: OffsetDateTime,
) -> Vec<Planned> {
    progress.set_message("reading clusters");
    let verify = VerifyOptions::at(now);
    futures::stream::iter(targets.iter())
        .map(|t| async move {
            let read =
                meshtrust_kube::within(args.kube.cluster_timeout, "reading the cluster", async {
                    let client = access.client(Some(&t.context)).await?;
                    let observed = observe(&client, &args.namespace).await?;
                    Ok((client, observed))
                })
                .await
                .map_err(|e| format!("context {}: {}", t.context, advice::render_kube(&e)));
            progress.inc(1);
            read.map(|(client, observed)| {
                let action = plan(
                    &observed.existing(),
                    &Desired::ChainsTo(roots),
                    args.write.force,
                    args.write.backup,
                    &verify,
                );
                (client, observed, action)
            })
        })
        .buffered(usize::from(args.concurrency))
        .collect()
        .await
}

/// `--dry-run`: the plan of every cluster; fails when any cluster is blocked.
fn dry_run(
    args: &BootstrapArgs,
    targets: &[Target],
    planned: &[Planned],
    now: OffsetDateTime,
) -> Result<ExitCode> {
    let outcomes: Vec<Outcome> = targets
        .iter()
        .zip(planned)
        .map(|(t, p)| match p {
            Ok((_, observed, action)) => {
                let mut row = outcome(t, observed, action, None, Ok(Applied::default()), now);
                if row.ok {
                    row.result = "planned".into();
                }
                row
            }
            Err(e) => failed(t, e.clone()),
        })
        .collect();
    print_outcomes(&outcomes, args.output)?;
    let blocked = outcomes.iter().any(|o| !o.ok);
    Ok(if blocked {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Carries every plan out with its new bundle (bounded in parallel), one row per cluster.
async fn carry_out(
    args: &BootstrapArgs,
    targets: &[Target],
    planned: Vec<Planned>,
    mut bundles: HashMap<ClusterName, CaCerts>,
    progress: &ProgressBar,
    clock: &Clock,
) -> Vec<Outcome> {
    progress.set_message("writing");
    let jobs: Vec<_> = targets
        .iter()
        .zip(planned)
        .map(|(t, p)| (t.clone(), p, bundles.remove(&t.cluster)))
        .collect();
    futures::stream::iter(jobs)
        .map(|(t, planned, bundle)| async move {
            let row = match planned {
                Err(e) => failed(&t, e),
                Ok((client, observed, action)) => {
                    write_one(args, &t, &client, &observed, &action, bundle, clock).await
                }
            };
            progress.inc(1);
            row
        })
        .buffered(usize::from(args.concurrency))
        .collect()
        .await
}

/// Carries out one cluster's plan.
async fn write_one(
    args: &BootstrapArgs,
    t: &Target,
    client: &kube::Client,
    observed: &Observed,
    action: &Action,
    bundle: Option<CaCerts>,
    clock: &Clock,
) -> Outcome {
    let now = clock.now();
    let files = bundle.map(|b| b.bundle_files(args.intermediate.format));
    let report = files
        .as_ref()
        .map(|f| verify_bundle(f, &VerifyOptions::at(now)));
    let secret = files
        .as_ref()
        .zip(report.as_ref())
        .map(|(f, r)| cacerts_secret(&args.namespace, f, r));
    let doing = format!("writing {}/cacerts", args.namespace);
    let result = meshtrust_kube::within(
        args.kube.cluster_timeout,
        &doing,
        apply(
            client,
            &t.context,
            &args.namespace,
            observed,
            action,
            secret,
            t.network.as_deref(),
            now,
        ),
    )
    .await;
    outcome(t, observed, action, report.as_ref(), result, now)
}
