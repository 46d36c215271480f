//! `meshtrust check`: is every cluster ready for (or healthy in) the multicluster mesh, and
//! do they all trust the same root?

use std::process::ExitCode;

use anyhow::Result;
use time::OffsetDateTime;

use super::expose::namespaces;
use crate::args::{CheckArgs, Output};
use crate::output;
use crate::peering::check::Options;
use crate::peering::flow::{check, print_report};

pub async fn run(args: CheckArgs) -> Result<ExitCode> {
    let access = args.kube.access();
    let contexts: Vec<Option<String>> = if args.contexts.is_empty() {
        vec![None]
    } else {
        args.contexts.iter().cloned().map(Some).collect()
    };
    let opts = Options {
        precheck: args.precheck,
        now: OffsetDateTime::now_utc(),
    };
    let report = check(&access, &contexts, &namespaces(&args.namespaces), &opts).await;
    match args.output {
        Output::Json => output::json(&report)?,
        Output::Text => print_report(&report),
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
