//! `meshtrust cacerts`: each cluster's intermediate CA as an Istio `cacerts` bundle.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use meshtrust_issuer::LocalIssuer;
use time::OffsetDateTime;

use super::issue;
use crate::args::CacertsArgs;

pub async fn run(args: CacertsArgs) -> Result<ExitCode> {
    let now = OffsetDateTime::now_utc();
    let clusters = issue::unique(args.cluster);
    issue::check_outputs(&args.out, &clusters, args.write.force)?;
    let issuer = Arc::new(LocalIssuer::from_dir(&args.root, now)?);
    let (bundles, notices) =
        issue::issue_bundles(issuer.clone(), &clusters, &args.intermediate, now).await?;
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
