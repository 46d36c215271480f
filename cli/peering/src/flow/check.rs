//! `check`: read every context, run each cluster's checks and the mesh-wide ones.

use kube::Client;
use meshtrust_ca::{BundleReport, VerifyOptions};
use meshtrust_kube::Access;
use serde::Serialize;
use time::OffsetDateTime;

use super::{CURRENT_CONTEXT, observe_all};
use crate::check::{CheckOptions, ClusterView, Line, Status, cluster_checks, mesh_checks};
use crate::error::{Error, Result};
use crate::observe::{ClusterFacts, Namespaces};
use crate::trust::{TrustView, agreement, cacerts_report};

/// The report of [`check`].
#[derive(Debug, Serialize)]
pub struct CheckReport {
    /// Per cluster, its lines.
    pub clusters: Vec<ClusterReport>,
    /// Lines about the whole mesh (with two or more clusters).
    pub mesh: Vec<Line>,
    /// No ❌ anywhere.
    pub ok: bool,
}

/// One cluster's part of the report.
#[derive(Debug, Serialize)]
pub struct ClusterReport {
    /// The context.
    pub context: String,
    /// Its checks.
    pub checks: Vec<Line>,
    /// Why the cluster could not be read, when it could not (its one line, `Cluster Access`,
    /// says the same); kept so a caller can add its own advice to that line.
    #[serde(skip)]
    pub unreadable: Option<Error>,
}

/// A cluster read for checking: what the checks' [`ClusterView`] borrows.
struct Checked {
    name: String,
    facts: ClusterFacts,
    report: Option<BundleReport>,
    trust: TrustView,
}

impl Checked {
    fn view(&self) -> ClusterView<'_> {
        ClusterView {
            name: &self.name,
            facts: &self.facts,
            report: self.report.as_ref(),
            trust: &self.trust,
        }
    }
}

/// Runs every check on every context (`None`: the current one), and the mesh-wide checks
/// across them. A cluster that cannot be read gets one failed `Cluster Access` line.
pub async fn check(
    access: &Access,
    contexts: &[Option<String>],
    namespaces: &Namespaces,
    opts: &CheckOptions,
) -> CheckReport {
    let observed = observe_all(access, contexts, namespaces).await;
    let (read, mut reports) = sort_out(contexts, observed, opts.now);
    let views: Vec<ClusterView<'_>> = read.iter().map(Checked::view).collect();
    reports.extend(views.iter().map(|v| ClusterReport {
        context: v.name.to_string(),
        checks: cluster_checks(v, opts),
        unreadable: None,
    }));
    let mesh = if contexts.len() > 1 {
        mesh_lines(&read, &views, contexts.len())
    } else {
        Vec::new()
    };
    in_given_order(&mut reports, contexts);
    let ok = reports
        .iter()
        .flat_map(|r| &r.checks)
        .chain(&mesh)
        .all(|l| l.status != Status::Fail);
    CheckReport {
        clusters: reports,
        mesh,
        ok,
    }
}

/// The clusters that were read, with `cacerts` verified at `now`, and the reports of those
/// that could not be.
fn sort_out(
    contexts: &[Option<String>],
    observed: Vec<Result<(Client, ClusterFacts)>>,
    now: OffsetDateTime,
) -> (Vec<Checked>, Vec<ClusterReport>) {
    let verify = VerifyOptions::at(now);
    let mut read = Vec::new();
    let mut unreadable = Vec::new();
    for (ctx, o) in contexts.iter().zip(observed) {
        let name = ctx.clone().unwrap_or_else(|| CURRENT_CONTEXT.into());
        match o {
            Ok((_, facts)) => {
                let report = cacerts_report(&facts, &verify);
                let trust = TrustView::new(&facts, report.as_ref());
                read.push(Checked {
                    name,
                    facts,
                    report,
                    trust,
                });
            }
            Err(e) => unreadable.push(unreadable_report(name, e)),
        }
    }
    (read, unreadable)
}

/// The report of a cluster that could not be read: one failed `Cluster Access` line.
fn unreadable_report(context: String, e: Error) -> ClusterReport {
    ClusterReport {
        context,
        checks: vec![Line {
            check: "Cluster Access".into(),
            status: Status::Fail,
            message: e.to_string(),
            fix: None,
        }],
        unreadable: Some(e),
    }
}

/// The mesh-wide lines over the clusters that were read, out of `wanted`; one failed line
/// more when some could not be read.
fn mesh_lines(read: &[Checked], views: &[ClusterView<'_>], wanted: usize) -> Vec<Line> {
    let trust: Vec<(String, TrustView)> = read
        .iter()
        .map(|c| (c.name.clone(), c.trust.clone()))
        .collect();
    let mut lines = mesh_checks(views, &agreement(&trust));
    if views.len() < wanted {
        lines.push(Line {
            check: "Mesh Check".into(),
            status: Status::Fail,
            message: "some clusters could not be read; the mesh-wide checks cover only the others"
                .into(),
            fix: None,
        });
    }
    lines
}

/// Puts the reports back in the order the contexts were given in.
fn in_given_order(reports: &mut [ClusterReport], contexts: &[Option<String>]) {
    reports.sort_by_key(|r| {
        contexts
            .iter()
            .position(|c| c.as_deref().unwrap_or(CURRENT_CONTEXT) == r.context)
    });
}
