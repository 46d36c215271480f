//! `meshtrust bootstrap`: every cluster's intermediate, issued and delivered as `cacerts`,
//! `istio-system` created and labelled with its network — planned per cluster first,
//! carried out in parallel, one failing cluster never stopping the others.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use meshtrust_ca::{ClusterName, RootParams, VerifyOptions, fmt_time, verify_bundle};
use meshtrust_issuer::{Issuer, LocalIssuer};
use serde::Serialize;
use time::OffsetDateTime;

use super::{issue, root};
use crate::args::{BootstrapArgs, Output};
use crate::cluster::deliver::{Applied, Observed, apply, observe};
use crate::cluster::plan::{Action, Desired, plan};
use crate::cluster::secret::cacerts_secret;
use crate::output;

mod generate;
mod peering;

/// One cluster to bootstrap.
#[derive(Clone, Debug)]
struct Target {
    context: String,
    cluster: ClusterName,
    network: Option<String>,
}

/// The outcome for one cluster, as shown in the table and in JSON.
#[derive(Debug, Serialize)]
struct Outcome {
    cluster: String,
    context: String,
    action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    root_fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_after: Option<String>,
    ok: bool,
    result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    backup: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

fn targets(args: &BootstrapArgs) -> Result<Vec<Target>> {
    let contexts: Vec<String> = if args.contexts.is_empty() {
        args.cluster_names.iter().map(ToString::to_string).collect()
    } else {
        args.contexts.clone()
    };
    if contexts.is_empty() {
        bail!("name the clusters: --contexts c1,c2,… (or --cluster-names with --generate)");
    }
    if !args.cluster_names.is_empty() && args.cluster_names.len() != contexts.len() {
        bail!(
            "--cluster-names has {} names for {} contexts; give one name per context, in the same order",
            args.cluster_names.len(),
            contexts.len()
        );
    }
    if !args.networks.is_empty() && args.networks.len() != contexts.len() {
        bail!(
            "--networks has {} networks for {} clusters; give one per cluster",
            args.networks.len(),
            contexts.len()
        );
    }
    let mut out = Vec::new();
    for (i, context) in contexts.iter().enumerate() {
        let cluster = match args.cluster_names.get(i) {
            Some(c) => c.clone(),
            None => ClusterName::new(context).map_err(|_| {
                anyhow::anyhow!(
                    "context `{context}` is not a valid cluster name (a DNS-1123 label); pass --cluster-names with one name per context"
                )
            })?,
        };
        let network = if args.network_from_cluster_name {
            Some(cluster.to_string())
        } else {
            args.networks.get(i).cloned()
        };
        out.push(Target {
            context: context.clone(),
            cluster,
            network,
        });
    }
    let mut names: Vec<&str> = out.iter().map(|t| t.cluster.as_str()).collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        bail!(
            "cluster name `{}` appears twice; every cluster needs its own name",
            w[0]
        );
    }
    Ok(out)
}

/// The issuer: `--root`, AWS Private CA, or the root in `--root-out` (created when absent,
/// reused on reruns so that they converge).
async fn issuer(args: &BootstrapArgs, now: OffsetDateTime) -> Result<Arc<dyn Issuer>> {
    if let Some(issuer) = issue::chosen_issuer(&args.issuer, args.root.as_deref(), now).await? {
        return Ok(issuer);
    }
    if args.root_out.join("root-key.pem").exists() {
        eprintln!("using the root in {}", args.root_out.display());
        return Ok(Arc::new(LocalIssuer::from_dir(&args.root_out, now)?));
    }
    let mut params = RootParams::default();
    params.key_type = args.intermediate.key_type;
    params.organization = args.intermediate.org.clone();
    let local = LocalIssuer::new(params.self_signed(now)?);
    let summary = root::write_root(&args.root_out, local.root(), false, false)?;
    eprintln!(
        "created a root CA in {} ({}); root-key.pem is 0600 — keep it safe, every cluster trusts it",
        summary.dir,
        output::short(&summary.sha256_fingerprint, 23)
    );
    Ok(Arc::new(LocalIssuer::from_dir(&args.root_out, now)?))
}

pub async fn run(args: BootstrapArgs) -> Result<ExitCode> {
    if args.peering && args.output == Output::Json {
        bail!(
            "--peering reports its steps as text; drop -o json, and run `meshtrust check -o json` afterwards for a machine-readable report"
        );
    }
    let now = OffsetDateTime::now_utc();
    let targets = targets(&args)?;
    let issuer = issuer(&args, now).await?;
    let roots = issuer.trust_bundle().await?.fingerprints();
    if let Some(dir) = &args.generate {
        return generate::run(&args, dir, &targets, issuer, now).await;
    }

    let access = args.kube.access();
    let concurrency = usize::from(args.concurrency);
    let progress = progress_bar(targets.len() as u64 * 2, args.output);

    // 1. Read every cluster (nothing is written) and decide.
    progress.set_message("reading clusters");
    let observed: Vec<Result<(kube::Client, Observed)>> = futures::stream::iter(targets.iter())
        .map(|t| {
            let access = &access;
            let namespace = &args.namespace;
            let progress = &progress;
            async move {
                let result = async {
                    let client = access.client(Some(&t.context)).await?;
                    let observed = observe(&client, namespace).await?;
                    Ok::<_, anyhow::Error>((client, observed))
                }
                .await
                .with_context(|| format!("context {}", t.context));
                progress.inc(1);
                result
            }
        })
        .buffered(concurrency)
        .collect()
        .await;
    let verify = VerifyOptions::at(now);
    let planned: Vec<Result<(kube::Client, Observed, Action)>> = observed
        .into_iter()
        .map(|o| {
            o.map(|(client, obs)| {
                let action = plan(
                    &obs.existing(),
                    &Desired::ChainsTo(&roots),
                    args.write.force,
                    args.write.backup,
                    &verify,
                );
                (client, obs, action)
            })
        })
        .collect();

    if args.dry_run {
        progress.finish_and_clear();
        let outcomes: Vec<Outcome> = targets
            .iter()
            .zip(&planned)
            .map(|(t, p)| match p {
                Ok((_, observed, action)) => {
                    let mut row = outcome(t, observed, action, None, Ok(Applied::default()));
                    if row.ok {
                        row.result = "planned".into();
                    }
                    row
                }
                Err(e) => failed(t, format!("{e:#}")),
            })
            .collect();
        print_outcomes(&outcomes, args.output)?;
        let blocked = outcomes.iter().any(|o| !o.ok);
        return Ok(if blocked {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }

    // 2. Issue intermediates only where something will be written.
    let writers: Vec<ClusterName> = targets
        .iter()
        .zip(&planned)
        .filter(|(_, p)| p.as_ref().is_ok_and(|(_, _, action)| action.writes()))
        .map(|(t, _)| t.cluster.clone())
        .collect();
    progress.set_message(format!("issuing {} intermediate(s)", writers.len()));
    let (bundles, notices) =
        issue::issue_bundles(issuer, &writers, &args.intermediate, now).await?;
    let mut bundle_of: std::collections::HashMap<ClusterName, _> = bundles
        .into_iter()
        .map(|b| (b.cluster.clone(), b.bundle))
        .collect();

    // 3. Carry the plans out, in parallel; each cluster on its own.
    progress.set_message("writing");
    let jobs: Vec<_> = targets
        .iter()
        .zip(planned)
        .map(|(t, p)| (t.clone(), p, bundle_of.remove(&t.cluster)))
        .collect();
    let outcomes: Vec<Outcome> = futures::stream::iter(jobs)
        .map(|(t, planned, bundle)| {
            let namespace = &args.namespace;
            let progress = &progress;
            let format = args.intermediate.format;
            async move {
                let outcome = match planned {
                    Err(e) => failed(&t, format!("{e:#}")),
                    Ok((client, observed, action)) => {
                        let files = bundle.as_ref().map(|b| b.bundle_files(format));
                        let report = files
                            .as_ref()
                            .map(|f| verify_bundle(f, &VerifyOptions::at(now)));
                        let secret = files
                            .as_ref()
                            .zip(report.as_ref())
                            .map(|(f, r)| cacerts_secret(namespace, f, r));
                        let result = apply(
                            &client,
                            &t.context,
                            namespace,
                            &observed,
                            &action,
                            secret,
                            t.network.as_deref(),
                        )
                        .await;
                        outcome(&t, &observed, &action, report.as_ref(), result)
                    }
                };
                progress.inc(1);
                outcome
            }
        })
        .buffered(concurrency)
        .collect()
        .await;
    progress.finish_and_clear();

    for n in &notices {
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

/// A cluster that could not be read: no plan was made.
fn failed(t: &Target, error: String) -> Outcome {
    Outcome {
        cluster: t.cluster.to_string(),
        context: t.context.clone(),
        action: "unknown".to_string(),
        reason: None,
        root_fingerprint: None,
        not_after: None,
        ok: false,
        result: error,
        backup: None,
        warnings: Vec::new(),
    }
}

fn outcome(
    t: &Target,
    observed: &Observed,
    action: &Action,
    written: Option<&meshtrust_ca::BundleReport>,
    result: Result<Applied>,
) -> Outcome {
    let reason = match action {
        Action::Replace { reason, .. } | Action::Conflict { reason } => Some(reason.clone()),
        _ => None,
    };
    // What the cluster holds afterwards: the new bundle, or the one it kept.
    let kept;
    let shown = match written {
        Some(r) => Some(r),
        None => {
            kept = observed.secret.as_ref().map(|s| {
                verify_bundle(
                    &crate::cluster::secret::bundle_files(s),
                    &VerifyOptions::at(OffsetDateTime::now_utc()),
                )
            });
            kept.as_ref()
        }
    };
    let (root_fingerprint, not_after) = match shown {
        Some(r) => (
            r.anchor_fingerprint.clone(),
            r.ca_cert.as_ref().map(|c| fmt_time(c.not_after)),
        ),
        None => (None, None),
    };
    let (ok, result, backup, warnings) = match (action, result) {
        (Action::Conflict { .. }, _) => (false, "refused".to_string(), None, Vec::new()),
        (_, Ok(a)) => (true, "ok".to_string(), a.backup, a.warnings),
        (_, Err(e)) => (false, format!("failed: {e:#}"), None, Vec::new()),
    };
    Outcome {
        cluster: t.cluster.to_string(),
        context: t.context.clone(),
        action: action.name().to_string(),
        reason,
        root_fingerprint,
        not_after,
        ok,
        result,
        backup,
        warnings,
    }
}

fn progress_bar(len: u64, output: Output) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if output == Output::Json || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn print_outcomes(outcomes: &[Outcome], output: Output) -> Result<()> {
    if output == Output::Json {
        return output::json(&outcomes);
    }
    let mut t = output::table([
        "CLUSTER",
        "CONTEXT",
        "ACTION",
        "ROOT SHA-256",
        "NOT AFTER",
        "RESULT",
    ]);
    for o in outcomes {
        t.add_row([
            o.cluster.clone(),
            o.context.clone(),
            o.action.clone(),
            o.root_fingerprint
                .as_deref()
                .map(|f| output::short(f, 17))
                .unwrap_or_else(|| "-".into()),
            o.not_after.clone().unwrap_or_else(|| "-".into()),
            o.result.clone(),
        ]);
    }
    println!("{t}");
    for o in outcomes {
        if let Some(r) = &o.reason {
            eprintln!("{}: {}: {r}", o.cluster, o.action);
        }
        if let Some(b) = &o.backup {
            println!("{}: previous cacerts kept as {b}", o.cluster);
        }
        for w in &o.warnings {
            eprintln!("warning: {}: {w}", o.cluster);
        }
    }
    Ok(())
}
