//! `meshtrust rotate status`: the phase of a MeshTrust's root rotation, what it waits for,
//! and per cluster which root signs its intermediate, which roots its bundle holds, and
//! whether it has reached what the phase asks — all from the MeshTrust's status.

use std::process::ExitCode;

use anyhow::Result;
use kube::{Api, ResourceExt};
use meshtrust_controller::crd::{ClusterStatus, Condition, MeshTrust, find_condition};
use serde::Serialize;

use super::read_meshtrust;
use crate::args::{Output, RotationArgs};
use crate::output;

/// A cluster's place in a rotation, as docs/rotation.md names the stages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Stage {
    OldOnly,
    BothIssuedByOld,
    BothIssuedByNew,
    NewOnly,
}

impl Stage {
    fn text(self) -> &'static str {
        match self {
            Stage::OldOnly => "old root only",
            Stage::BothIssuedByOld => "both roots, issued by old",
            Stage::BothIssuedByNew => "both roots, issued by new",
            Stage::NewOnly => "new root only",
        }
    }
}

/// Where one cluster stands.
#[derive(Serialize)]
struct ClusterRow {
    name: String,
    /// `old`, `new`, `other` or `unknown`.
    issued_by: String,
    issuing_root: Option<String>,
    /// Each root of its trust file as `old`, `new` or `other`.
    trusts: Vec<String>,
    trusted_roots: Vec<String>,
    stage: Option<Stage>,
    /// Whether it is where the phase wants it (`None`: the phase sets no target).
    reached: Option<bool>,
    ready: String,
    last_error: Option<String>,
}

/// The rotation of one MeshTrust.
#[derive(Serialize)]
struct Report {
    meshtrust: String,
    /// `None` when no rotation is configured (or the controller has not reported one).
    phase: Option<String>,
    started_at: Option<String>,
    waiting_for: Option<String>,
    new_root_secret: Option<String>,
    /// The AWS Private CA rotated to, when it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    new_ca_arn: Option<String>,
    old_root: Option<String>,
    new_root: Option<String>,
    clusters: Vec<ClusterRow>,
}

pub async fn status(args: RotationArgs) -> Result<ExitCode> {
    let m = &args.management;
    let client = m.kube.access().client(m.context.as_deref()).await?;
    let api: Api<MeshTrust> = Api::all(client);
    let mt = read_meshtrust(&api, &args.name).await?;
    let report = report(&mt);
    if args.output == Output::Json {
        output::json(&report)?;
    } else {
        print_text(&report);
    }
    Ok(if report.phase.as_deref() == Some("Blocked") {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn report(mt: &MeshTrust) -> Report {
    let status = mt.status.clone().unwrap_or_default();
    let rotation = status.rotation.clone();
    let (old, new) = rotation
        .as_ref()
        .map_or((None, None), |r| (r.old_root.clone(), r.new_root.clone()));
    let phase = rotation.as_ref().map(|r| r.phase.clone());
    let target = phase.as_deref().and_then(target_stage);
    let clusters = status
        .clusters
        .iter()
        .map(|c| row(c, old.as_deref(), new.as_deref(), target))
        .collect();
    Report {
        meshtrust: mt.name_any(),
        phase,
        started_at: rotation.as_ref().and_then(|r| r.started_at.clone()),
        waiting_for: rotation.as_ref().and_then(|r| r.message.clone()),
        new_root_secret: mt
            .spec
            .root_rotation
            .as_ref()
            .and_then(|r| r.new_root_secret_ref.as_ref())
            .map(ToString::to_string),
        new_ca_arn: mt
            .spec
            .root_rotation
            .as_ref()
            .and_then(|r| r.aws_pca.as_ref())
            .map(|a| a.arn.clone()),
        old_root: old,
        new_root: new,
        clusters,
    }
}

/// The stage every cluster must reach before the phase is over.
fn target_stage(phase: &str) -> Option<Stage> {
    match phase {
        "AddNewRoot" => Some(Stage::BothIssuedByOld),
        "ReissueIntermediates" | "HoldingOldRoot" => Some(Stage::BothIssuedByNew),
        "RemoveOldRoot" | "Complete" => Some(Stage::NewOnly),
        _ => None,
    }
}

/// `old`, `new` or `other` for a fingerprint.
fn which(fp: &str, old: Option<&str>, new: Option<&str>) -> &'static str {
    if Some(fp) == old {
        "old"
    } else if Some(fp) == new {
        "new"
    } else {
        "other"
    }
}

fn row(
    c: &ClusterStatus,
    old: Option<&str>,
    new: Option<&str>,
    target: Option<Stage>,
) -> ClusterRow {
    let trusts: Vec<String> = c
        .trusted_roots
        .iter()
        .map(|fp| which(fp, old, new).to_string())
        .collect();
    let issued_by = c
        .issuing_root
        .as_deref()
        .map_or("unknown", |fp| which(fp, old, new));
    let (has_old, has_new) = (
        trusts.iter().any(|t| t == "old"),
        trusts.iter().any(|t| t == "new"),
    );
    let stage = match (has_old, has_new, issued_by) {
        (true, false, "old") => Some(Stage::OldOnly),
        (true, true, "old") => Some(Stage::BothIssuedByOld),
        (true, true, "new") => Some(Stage::BothIssuedByNew),
        (false, true, "new") => Some(Stage::NewOnly),
        _ => None,
    };
    let ready = find_condition(&c.conditions, Condition::READY);
    ClusterRow {
        name: c.name.clone(),
        issued_by: issued_by.to_string(),
        issuing_root: c.issuing_root.clone(),
        trusts,
        trusted_roots: c.trusted_roots.clone(),
        stage,
        reached: target.map(|t| stage.is_some_and(|s| s >= t)),
        ready: ready.map_or("Unknown".into(), |r| match r.reason.as_str() {
            "Ready" => r.status.to_string(),
            reason => format!("{} ({reason})", r.status),
        }),
        last_error: c.last_error.clone(),
    }
}

fn print_text(r: &Report) {
    let Some(phase) = &r.phase else {
        println!(
            "MeshTrust {}: no root rotation (spec.rootRotation is not set, or the controller has not reported it yet)",
            r.meshtrust
        );
        return;
    };
    println!("MeshTrust {}: root rotation phase {phase}", r.meshtrust);
    let short = |fp: &Option<String>| fp.as_deref().map_or("-".into(), |f| output::short(f, 23));
    println!("  old root     {}", short(&r.old_root));
    println!(
        "  new root     {}{}",
        short(&r.new_root),
        match (&r.new_root_secret, &r.new_ca_arn) {
            (Some(s), _) => format!("  (Secret {s})"),
            (None, Some(arn)) => format!("  (AWS Private CA {arn})"),
            (None, None) => String::new(),
        }
    );
    if let Some(t) = &r.started_at {
        println!("  started      {t}");
    }
    if let Some(w) = &r.waiting_for {
        println!("  waiting for  {w}");
    }
    let mut t = output::table([
        "CLUSTER",
        "ISSUED BY",
        "TRUSTS",
        "STAGE",
        "REACHED",
        "READY",
        "LAST ERROR",
    ]);
    for c in &r.clusters {
        t.add_row([
            c.name.clone(),
            c.issued_by.clone(),
            if c.trusts.is_empty() {
                "-".into()
            } else {
                c.trusts.join("+")
            },
            c.stage.map_or("-".into(), |s| s.text().to_string()),
            c.reached
                .map_or("-".into(), |b| if b { "yes".into() } else { "no".into() }),
            c.ready.clone(),
            c.last_error
                .as_deref()
                .map_or("-".into(), |e| e.chars().take(60).collect()),
        ]);
    }
    println!("{t}");
}

#[cfg(test)]
mod tests {
    use meshtrust_controller::crd::ClusterStatus;

    use super::*;

    fn cluster(trusts: &[&str], issued_by: &str) -> ClusterStatus {
        ClusterStatus {
            name: "east".into(),
            trusted_roots: trusts.iter().map(|s| s.to_string()).collect(),
            issuing_root: Some(issued_by.to_string()),
            ..ClusterStatus::default()
        }
    }

    #[test]
    fn where_a_cluster_stands_against_the_phase() {
        let (old, new) = (Some("OLD"), Some("NEW"));
        let cases = [
            (
                "a cluster on the old root has not reached phase 1's target",
                cluster(&["OLD"], "OLD"),
                "AddNewRoot",
                Some(Stage::OldOnly),
                Some(false),
            ),
            (
                "a cluster trusting both, issued by old, has reached phase 1's",
                cluster(&["OLD", "NEW"], "OLD"),
                "AddNewRoot",
                Some(Stage::BothIssuedByOld),
                Some(true),
            ),
            (
                "a cluster ahead of the phase has reached it",
                cluster(&["OLD", "NEW"], "NEW"),
                "AddNewRoot",
                Some(Stage::BothIssuedByNew),
                Some(true),
            ),
            (
                "phase 2 waits for an intermediate from the new root",
                cluster(&["OLD", "NEW"], "OLD"),
                "ReissueIntermediates",
                Some(Stage::BothIssuedByOld),
                Some(false),
            ),
            (
                "the hold needs nothing more than phase 2",
                cluster(&["OLD", "NEW"], "NEW"),
                "HoldingOldRoot",
                Some(Stage::BothIssuedByNew),
                Some(true),
            ),
            (
                "phase 3 waits for the old root to go",
                cluster(&["OLD", "NEW"], "NEW"),
                "RemoveOldRoot",
                Some(Stage::BothIssuedByNew),
                Some(false),
            ),
            (
                "a cluster of another mesh fits no stage and has not reached",
                cluster(&["X"], "X"),
                "AddNewRoot",
                None,
                Some(false),
            ),
            (
                "a blocked rotation sets no target",
                cluster(&["OLD"], "OLD"),
                "Blocked",
                Some(Stage::OldOnly),
                None,
            ),
        ];
        for (case, c, phase, stage, reached) in cases {
            let r = row(&c, old, new, target_stage(phase));
            assert_eq!((r.stage, r.reached), (stage, reached), "{case}");
        }
        let r = row(&cluster(&["OLD", "NEW"], "NEW"), old, new, None);
        assert_eq!(
            (r.issued_by.as_str(), r.trusts),
            ("new", vec!["old".to_string(), "new".to_string()])
        );
    }
}
