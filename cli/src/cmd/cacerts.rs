//! `meshtrust cacerts`: each cluster's intermediate CA as an Istio `cacerts` bundle.

use std::process::ExitCode;

use anyhow::{Context, Result};
use meshtrust_issuer::Clock;

use super::issue;
use crate::args::CacertsArgs;

pub async fn run(args: CacertsArgs, clock: &Clock) -> Result<ExitCode> {
    let now = clock.now();
    let clusters = issue::unique(args.cluster);
    issue::check_outputs(&args.out, &clusters, args.write.force)?;
    let issuer = issue::chosen_issuer(&args.issuer, args.root.as_deref(), clock)
        .await?
        .context(
            "--issuer local needs --root DIR (create one with `meshtrust root create --out DIR`)",
        )?;
    let issued = issue::issue_bundles(issuer, &clusters, &args.intermediate, clock).await?;
    let batch = &issued.batch;
    let summaries = issue::write_bundles(
        &args.out,
        &batch.bundles,
        args.intermediate.format,
        args.write.force,
        args.write.backup,
        clock.now(),
    )?;
    for n in &batch.notices {
        eprintln!("warning: {n}");
    }
    issue::print_bundles(&summaries, now, args.output)?;
    issued.finish(&args.out.display().to_string())?;
    Ok(ExitCode::SUCCESS)
}
