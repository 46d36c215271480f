//! What `bootstrap` reports per cluster: the plan, the result, the table.

use std::io::IsTerminal;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use meshtrust_ca::{VerifyOptions, fmt_time, verify_bundle};
use meshtrust_kube::{Action, Applied, Observed};
use serde::Serialize;
use time::OffsetDateTime;

use super::targets::Target;
use crate::advice;
use crate::args::Output;
use crate::output;

/// The outcome for one cluster, as shown in the table and in JSON.
#[derive(Debug, Serialize)]
pub(super) struct Outcome {
    pub(super) cluster: String,
    pub(super) context: String,
    pub(super) action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) reason: Option<String>,
    pub(super) root_fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) not_after: Option<String>,
    pub(super) ok: bool,
    pub(super) result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) backup: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) warnings: Vec<String>,
}

/// The row of a cluster that could not be read: no plan was made.
pub(super) fn failed(t: &Target, error: String) -> Outcome {
    Outcome {
        cluster: t.cluster.to_string(),
        context: t.context.clone(),
        action: "unknown".to_string(),
        reason: None,
        root_fingerprint: None,
        not_after: None,
        ok: false,
        result: format!("failed: {error}"),
        backup: None,
        warnings: Vec::new(),
    }
}

/// The row of a cluster whose plan was carried out (`result`), or only made (a dry run
/// passes `Ok(Applied::default())`), judged at `now`.
pub(super) fn outcome(
    t: &Target,
    observed: &Observed,
    action: &Action,
    written: Option<&meshtrust_ca::BundleReport>,
    result: meshtrust_kube::Result<Applied>,
    now: OffsetDateTime,
) -> Outcome {
    let reason = match action {
        Action::Replace { reason, .. } => Some(reason.clone()),
        Action::Conflict { reason } => Some(format!("{reason}{}", advice::FORCE_REPLACE)),
        _ => None,
    };
    // What the cluster holds afterwards: the new bundle, or the one it kept.
    let kept;
    let shown = match written {
        Some(r) => Some(r),
        None => {
            kept = observed
                .secret
                .as_ref()
                .map(|s| verify_bundle(&s.files(), &VerifyOptions::at(now)));
            kept.as_ref()
        }
    };
    let (root_fingerprint, not_after) = match shown {
        Some(r) => (
            r.anchor_fingerprint.clone(),
            r.ca_cert.as_ref().map(|c| fmt_time(c.not_after)),
        ),
        None => (None, None),
    };
    let (ok, result, backup, warnings) = match (action, result) {
        (Action::Conflict { .. }, _) => (false, "refused".to_string(), None, Vec::new()),
        (_, Ok(a)) => (true, "ok".to_string(), a.backup, a.warnings),
        (_, Err(e)) => (
            false,
            format!("failed: {}", advice::render_kube(&e)),
            None,
            Vec::new(),
        ),
    };
    Outcome {
        cluster: t.cluster.to_string(),
        context: t.context.clone(),
        action: action.name().to_string(),
        reason,
        root_fingerprint,
        not_after,
        ok,
        result,
        backup,
        warnings,
    }
}

pub(super) fn progress_bar(len: u64, output: Output) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if output == Output::Json || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

pub(super) fn print_outcomes(outcomes: &[Outcome], output: Output) -> Result<()> {
    if output == Output::Json {
        return output::json(&outcomes);
    }
    let mut t = output::table([
        "CLUSTER",
        "CONTEXT",
        "ACTION",
        "ROOT SHA-256",
        "NOT AFTER",
        "RESULT",
    ]);
    for o in outcomes {
        t.add_row([
            o.cluster.clone(),
            o.context.clone(),
            o.action.clone(),
            o.root_fingerprint
                .as_deref()
                .map(|f| output::short(f, 17))
                .unwrap_or_else(|| "-".into()),
            o.not_after.clone().unwrap_or_else(|| "-".into()),
            table_result(&o.result),
        ]);
    }
    println!("{t}");
    for o in outcomes {
        if table_result(&o.result) != o.result {
            eprintln!("{}: {}", o.cluster, o.result);
        }
        if let Some(r) = &o.reason {
            eprintln!("{}: {}: {r}", o.cluster, o.action);
        }
        if let Some(b) = &o.backup {
            println!("{}: previous cacerts kept as {b}", o.cluster);
        }
        for w in &o.warnings {
            eprintln!("warning: {}: {w}", o.cluster);
        }
    }
    Ok(())
}

/// The longest result shown in the table; a longer one (an error) is shown below it, so
/// that the table keeps one short line per cluster.
const TABLE_RESULT_WIDTH: usize = 24;

/// A result as its table cell: itself when short, else its first word and a pointer.
fn table_result(result: &str) -> String {
    if result.chars().count() <= TABLE_RESULT_WIDTH && !result.contains('\n') {
        return result.to_string();
    }
    let first = result.split([':', ' ']).next().unwrap_or_default();
    format!("{first} (see below)")
}
