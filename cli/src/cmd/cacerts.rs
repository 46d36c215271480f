//! `meshtrust cacerts`: each cluster's intermediate CA as an Istio `cacerts` bundle.

use std::process::ExitCode;

use anyhow::{Context, Result};
use time::OffsetDateTime;

use super::issue;
use crate::args::CacertsArgs;

pub async fn run(args: CacertsArgs) -> Result<ExitCode> {
    let now = OffsetDateTime::now_utc();
    let clusters = issue::unique(args.cluster);
    issue::check_outputs(&args.out, &clusters, args.write.force)?;
    let issuer = issue::chosen_issuer(&args.issuer, args.root.as_deref(), now)
        .await?
        .context(
            "--issuer local needs --root DIR (create one with `meshtrust root create --out DIR`)",
        )?;
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
