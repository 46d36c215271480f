//! `meshtrust push`: one bundle into one cluster as its `cacerts` Secret.

use std::process::ExitCode;

use anyhow::{Result, bail};
use meshtrust_ca::{Severity, VerifyOptions, verify_bundle};
use serde::Serialize;
use time::OffsetDateTime;

use super::verify::read_bundle_dir;
use crate::args::{Output, PushArgs};
use crate::cluster::deliver::{apply, observe};
use crate::cluster::plan::{Action, Desired, plan};
use crate::cluster::secret::cacerts_secret;
use crate::output;

#[derive(Serialize)]
struct Pushed {
    context: String,
    namespace: String,
    #[serde(flatten)]
    action: Action,
    backup: Option<String>,
    warnings: Vec<String>,
}

pub async fn run(args: PushArgs) -> Result<ExitCode> {
    let now = OffsetDateTime::now_utc();
    let files = read_bundle_dir(&args.bundle)?;
    let report = verify_bundle(&files, &VerifyOptions::at(now));
    if !report.accepted() {
        let errors: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| f.message.as_str())
            .collect();
        bail!(
            "{} is not a bundle istiod would accept, so it is not pushed: {}",
            args.bundle.display(),
            errors.join("; ")
        );
    }
    let access = args.kube.access();
    let context = args.context.as_deref();
    let shown = context.unwrap_or("(current context)").to_string();
    let client = access.client(context).await?;
    let observed = observe(&client, &args.namespace).await?;
    let action = plan(
        &observed.existing(),
        &Desired::Exactly(&files),
        args.write.force,
        args.write.backup,
        &VerifyOptions::at(now),
    );
    let secret = action
        .writes()
        .then(|| cacerts_secret(&args.namespace, &files, &report));
    let applied = apply(
        &client,
        &shown,
        &args.namespace,
        &observed,
        &action,
        secret,
        args.network.as_deref(),
    )
    .await?;
    let refused = matches!(action, Action::Conflict { .. });
    if args.output == Output::Json {
        output::json(&Pushed {
            context: shown,
            namespace: args.namespace,
            action,
            backup: applied.backup,
            warnings: applied.warnings,
        })?;
    } else {
        match &action {
            Action::Create => println!("{shown}: created {}/cacerts", args.namespace),
            Action::Unchanged => println!(
                "{shown}: {}/cacerts already holds this bundle; nothing written",
                args.namespace
            ),
            Action::Replace { reason, .. } => {
                println!("{shown}: replaced {}/cacerts ({reason})", args.namespace)
            }
            Action::Conflict { reason } => eprintln!(
                "❌ {shown}: refused to replace {}/cacerts: {reason}",
                args.namespace
            ),
        }
        if let Some(b) = &applied.backup {
            println!(
                "{shown}: the previous Secret is kept as {}/{b}",
                args.namespace
            );
        }
        for w in &applied.warnings {
            eprintln!("warning: {shown}: {w}");
        }
    }
    Ok(if refused {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
