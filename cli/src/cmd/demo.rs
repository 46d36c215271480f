//! `meshtrust demo`: a root and every cluster's bundle in one command (what Istio's
//! `Makefile.selfsigned.mk root-ca <c>-cacerts…` does), and the lines to load them.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use meshtrust_ca::{BundleFormat, RootParams};
use meshtrust_issuer::{Clock, Issuer, LocalIssuer};
use serde::Serialize;
use time::OffsetDateTime;

use super::{issue, root};
use crate::args::{DemoArgs, IntermediateOptions, IssuerKind, IssuerOptions, Output};
use crate::output;

#[derive(Serialize)]
struct DemoSummary {
    #[serde(skip_serializing_if = "Option::is_none")]
    root: Option<root::RootSummary>,
    clusters: Vec<issue::BundleSummary>,
    kubectl: Vec<String>,
}

pub async fn run(args: DemoArgs, clock: &Clock) -> Result<ExitCode> {
    let now = clock.now();
    let clusters = issue::unique(args.clusters);
    let local = args.issuer.issuer == IssuerKind::Local;
    if local {
        refuse_replacing_root(&args.out, args.force)?;
    }
    issue::check_outputs(&args.out, &clusters, args.force)?;

    let (issuer, local_root) = demo_issuer(&args.issuer, &args.intermediate, now, clock).await?;
    let issuer_name = issuer.describe();
    let issued = issue::issue_bundles(issuer, &clusters, &args.intermediate, clock).await?;
    let batch = &issued.batch;
    // The root is written only once every bundle has been issued and verified.
    let root_summary = match &local_root {
        Some(l) => Some(root::write_root(&args.out, l.root(), args.force, None)?),
        None => None,
    };
    let summaries = issue::write_bundles(
        &args.out,
        &batch.bundles,
        args.intermediate.format,
        args.force,
        false,
        now,
    )?;
    for n in &batch.notices {
        eprintln!("warning: {n}");
    }
    let kubectl = kubectl_lines(&summaries, args.intermediate.format);

    if args.output == Output::Json {
        output::json(&DemoSummary {
            root: root_summary,
            clusters: summaries,
            kubectl,
        })?;
    } else {
        print_text(
            root_summary.as_ref(),
            &issuer_name,
            &summaries,
            &kubectl,
            now,
        )?;
    }
    issued.finish(&args.out.display().to_string())?;
    Ok(ExitCode::SUCCESS)
}

/// A local demo never replaces a root key in `out` without `--force`.
fn refuse_replacing_root(out: &Path, force: bool) -> Result<()> {
    let key_path = out.join("root-key.pem");
    if key_path.exists() && !force {
        bail!(
            "{} already exists; refusing to replace a root key. Use `meshtrust cacerts --root {}` to add clusters to this root, or pass --force to start over",
            key_path.display(),
            out.display()
        );
    }
    Ok(())
}

/// The issuer: a fresh local root valid from `now` (also returned, to be written once the
/// bundles are issued) or AWS Private CA.
async fn demo_issuer(
    opts: &IssuerOptions,
    intermediate: &IntermediateOptions,
    now: OffsetDateTime,
    clock: &Clock,
) -> Result<(Arc<dyn Issuer>, Option<Arc<LocalIssuer>>)> {
    if opts.issuer == IssuerKind::Local {
        let mut params = RootParams::default();
        params.key_type = intermediate.key_type;
        params.organization = intermediate.org.clone();
        let issuer = Arc::new(LocalIssuer::new(params.self_signed(now)?));
        Ok((issuer.clone(), Some(issuer)))
    } else {
        Ok((
            meshtrust_issuer::connect(opts.remote()?, clock).await?,
            None,
        ))
    }
}

/// The human summary: the root, the bundles table, and what to run next.
fn print_text(
    root: Option<&root::RootSummary>,
    issuer: &str,
    summaries: &[issue::BundleSummary],
    kubectl: &[String],
    now: OffsetDateTime,
) -> Result<()> {
    match root {
        Some(r) => println!(
            "Root CA {} ({}) in {}",
            r.subject,
            output::short(&r.sha256_fingerprint, 23),
            r.dir
        ),
        None => println!("Intermediates issued by {issuer}"),
    }
    issue::print_bundles(summaries, now, Output::Text)?;
    println!();
    println!(
        "Load each bundle into its cluster (replace the --context if yours is named differently):"
    );
    for line in kubectl {
        println!("  {line}");
    }
    println!();
    println!(
        "Check any bundle as istiod would: meshtrust verify {}",
        summaries.first().map_or("DIR", |s| s.dir.as_str())
    );
    Ok(())
}

/// The seed guide's `create_cacerts_secret`, per cluster, with the files just written.
fn kubectl_lines(summaries: &[issue::BundleSummary], format: BundleFormat) -> Vec<String> {
    let mut lines = Vec::new();
    for s in summaries {
        let ctx = &s.cluster;
        lines.push(format!("kubectl --context={ctx} create namespace istio-system --dry-run=client -o yaml | kubectl --context={ctx} apply -f -"));
        let from: Vec<String> = s
            .files
            .iter()
            .map(|f| format!("--from-file={f}={}/{f}", s.dir))
            .collect();
        let kind = match format {
            BundleFormat::Istio => "",
            BundleFormat::Tls => " --type=kubernetes.io/tls",
        };
        let secret = format!(
            "kubectl --context={ctx} create secret generic cacerts -n istio-system{kind} {}",
            from.join(" ")
        );
        lines.push(secret);
    }
    lines
}
