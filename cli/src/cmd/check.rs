//! `meshtrust check`: is every cluster ready for (or healthy in) the multicluster mesh, and
//! do they all trust the same root?

use std::process::ExitCode;

use anyhow::Result;
use meshtrust_issuer::Clock;
use meshtrust_peering::{CheckOptions, check};

use super::expose::namespaces;
use super::report;
use crate::args::{CheckArgs, Output};
use crate::output;

pub async fn run(args: CheckArgs) -> Result<ExitCode> {
    let access = args.kube.access();
    let contexts: Vec<Option<String>> = if args.contexts.is_empty() {
        vec![None]
    } else {
        args.contexts.iter().cloned().map(Some).collect()
    };
    let opts = CheckOptions {
        precheck: args.precheck,
        now: Clock::system().now(),
    };
    let mut found = check(&access, &contexts, &namespaces(&args.namespaces), &opts).await;
    report::add_advice(&mut found);
    match args.output {
        Output::Json => output::json(&found)?,
        Output::Text => report::print(&found),
    }
    Ok(if found.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
