//! `meshtrust cacerts`: each cluster's intermediate CA as an Istio `cacerts` bundle.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use meshtrust_issuer::{Issuer, LocalIssuer};
use time::OffsetDateTime;

use super::issue;
use crate::args::{CacertsArgs, IssuerKind};

pub async fn run(args: CacertsArgs) -> Result<ExitCode> {
    let now = OffsetDateTime::now_utc();
    let clusters = issue::unique(args.cluster);
    issue::check_outputs(&args.out, &clusters, args.write.force)?;
    let issuer: Arc<dyn Issuer> = match (args.issuer.issuer, &args.root) {
        (IssuerKind::Local, Some(root)) => Arc::new(LocalIssuer::from_dir(root, now)?),
        (IssuerKind::Local, None) => bail!(
            "--issuer local needs --root DIR (create one with `meshtrust root create --out DIR`)"
        ),
        (IssuerKind::AwsPca, Some(_)) => bail!(
            "--root is for --issuer local; with --issuer aws-pca the root lives in AWS Private CA"
        ),
        (IssuerKind::AwsPca, None) => issue::aws_issuer(&args.issuer).await?,
    };
    let (bundles, notices) =
        issue::issue_bundles(issuer, &clusters, &args.intermediate, now).await?;
    let summaries = issue::write_bundles(
        &args.out,
        &bundles,
        args.intermediate.format,
        args.write.force,
        args.write.backup,
    )?;
    for n in &notices {
        eprintln!("warning: {n}");
    }
    issue::print_bundles(&summaries, now, args.output)?;
    Ok(ExitCode::SUCCESS)
}
