//! `meshtrust demo`: a root and every cluster's bundle in one command (what Istio's
//! `Makefile.selfsigned.mk root-ca <c>-cacerts…` does), and the lines to load them.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use meshtrust_ca::{BundleFormat, RootParams};
use meshtrust_issuer::{Issuer, LocalIssuer};
use serde::Serialize;
use time::OffsetDateTime;

use super::{issue, root};
use crate::args::{DemoArgs, IssuerKind, Output};
use crate::output;

#[derive(Serialize)]
struct DemoSummary {
    #[serde(skip_serializing_if = "Option::is_none")]
    root: Option<root::RootSummary>,
    clusters: Vec<issue::BundleSummary>,
    kubectl: Vec<String>,
}

pub async fn run(args: DemoArgs) -> Result<ExitCode> {
    let now = OffsetDateTime::now_utc();
    let clusters = issue::unique(args.clusters);
    let local = args.issuer.issuer == IssuerKind::Local;
    let key_path = args.out.join("root-key.pem");
    if local && key_path.exists() && !args.force {
        bail!(
            "{} already exists; refusing to replace a root key. Use `meshtrust cacerts --root {}` to add clusters to this root, or pass --force to start over",
            key_path.display(),
            args.out.display()
        );
    }
    issue::check_outputs(&args.out, &clusters, args.force)?;

    let (issuer, local_root): (Arc<dyn Issuer>, Option<Arc<LocalIssuer>>) = if local {
        let mut params = RootParams::default();
        params.key_type = args.intermediate.key_type;
        params.organization = args.intermediate.org.clone();
        let issuer = Arc::new(LocalIssuer::new(params.self_signed(now)?));
        (issuer.clone(), Some(issuer))
    } else {
        (issue::aws_issuer(&args.issuer).await?, None)
    };
    let (bundles, notices) =
        issue::issue_bundles(issuer, &clusters, &args.intermediate, now).await?;
    // The root is written only once every bundle has been issued and verified.
    let root_summary = match &local_root {
        Some(l) => Some(root::write_root(&args.out, l.root(), args.force, false)?),
        None => None,
    };
    let summaries = issue::write_bundles(
        &args.out,
        &bundles,
        args.intermediate.format,
        args.force,
        false,
    )?;
    for n in &notices {
        eprintln!("warning: {n}");
    }
    let kubectl = kubectl_lines(&summaries, args.intermediate.format);

    if args.output == Output::Json {
        output::json(&DemoSummary {
            root: root_summary,
            clusters: summaries,
            kubectl,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    match &root_summary {
        Some(r) => println!(
            "Root CA {} ({}) in {}",
            r.subject,
            output::short(&r.sha256_fingerprint, 23),
            r.dir
        ),
        None => println!(
            "Intermediates issued by AWS Private CA {}",
            args.issuer.ca_arn.as_deref().unwrap_or_default()
        ),
    }
    issue::print_bundles(&summaries, now, Output::Text)?;
    println!();
    println!(
        "Load each bundle into its cluster (replace the --context if yours is named differently):"
    );
    for line in &kubectl {
        println!("  {line}");
    }
    println!();
    println!(
        "Check any bundle as istiod would: meshtrust verify {}",
        summaries.first().map_or("DIR", |s| s.dir.as_str())
    );
    Ok(ExitCode::SUCCESS)
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
