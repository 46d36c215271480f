//! `meshtrust push`: one bundle into one cluster as its `cacerts` Secret.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use meshtrust_ca::{BundleFiles, BundleReport, Severity, VerifyOptions, verify_bundle};
use meshtrust_issuer::Clock;
use meshtrust_kube::{Action, Applied, Desired, Observed, apply, cacerts_secret, observe, plan};
use serde::Serialize;
use time::OffsetDateTime;

use super::verify::read_bundle_dir;
use crate::advice;
use crate::args::{Output, PushArgs};
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

pub async fn run(args: PushArgs, clock: &Clock) -> Result<ExitCode> {
    let now = clock.now();
    let files = read_bundle_dir(&args.bundle)?;
    let report = verify_bundle(&files, &VerifyOptions::at(now));
    refuse_rejected(&args.bundle, &report)?;
    let access = args.kube.access();
    let context = args.context.as_deref();
    let shown = context.unwrap_or("(current context)").to_string();
    let client = access.client(context).await?;
    let observed = observe(&client, &args.namespace).await?;
    let action = decide(&args, &observed, &files, now);
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
        clock.now(),
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
        print_text(&shown, &args.namespace, &action, &applied);
    }
    Ok(if refused {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A bundle istiod would reject is never pushed; the error lists why.
fn refuse_rejected(bundle: &Path, report: &BundleReport) -> Result<()> {
    if report.accepted() {
        return Ok(());
    }
    let errors: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.message.as_str())
        .collect();
    bail!(
        "{} is not a bundle istiod would accept, so it is not pushed: {}",
        bundle.display(),
        errors.join("; ")
    );
}

/// What to do with the cluster's `cacerts`; a conflict says how to force it.
fn decide(
    args: &PushArgs,
    observed: &Observed,
    files: &BundleFiles,
    now: OffsetDateTime,
) -> Action {
    match plan(
        &observed.existing(),
        &Desired::Exactly(files),
        args.write.force,
        args.write.backup,
        &VerifyOptions::at(now),
    ) {
        Action::Conflict { reason } => Action::Conflict {
            reason: format!("{reason}{}", advice::FORCE_REPLACE),
        },
        other => other,
    }
}

/// One line for what was done (a refusal on stderr), the backup, and the warnings.
fn print_text(shown: &str, namespace: &str, action: &Action, applied: &Applied) {
    match action {
        Action::Create => println!("{shown}: created {namespace}/cacerts"),
        Action::Unchanged => {
            println!("{shown}: {namespace}/cacerts already holds this bundle; nothing written")
        }
        Action::Replace { reason, .. } => {
            println!("{shown}: replaced {namespace}/cacerts ({reason})")
        }
        Action::Conflict { reason } => {
            eprintln!("❌ {shown}: refused to replace {namespace}/cacerts: {reason}")
        }
    }
    if let Some(b) = &applied.backup {
        println!("{shown}: the previous Secret is kept as {namespace}/{b}");
    }
    for w in &applied.warnings {
        eprintln!("warning: {shown}: {w}");
    }
}
