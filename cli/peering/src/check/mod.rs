//! The checks of `meshtrust check` — pure: a cluster's facts (and the whole mesh's) in, ✅/⚠️/❌
//! lines out. The same lines as `istioctl multicluster check`, plus what it never checks: the
//! `cacerts` bundle, the roots every cluster trusts, expiry and network consistency.
//!
//! The checks of one cluster are in `cluster`, those across clusters in `mesh`. A line's
//! message states what was found (and any advice that is not meshtrust's own, such as a
//! `kubectl` command or a document); what must happen about it is the line's [`Fix`], which
//! a caller with a command line turns into what to type.

mod cluster;
mod mesh;
#[cfg(test)]
mod tests;

pub use cluster::cluster_checks;
pub use mesh::mesh_checks;

use meshtrust_ca::BundleReport;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::observe::ClusterFacts;
use crate::trust::TrustView;

/// Warn when the intermediate expires sooner than this.
pub const EXPIRY_WARNING: Duration = Duration::days(30);

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// ✅
    Pass,
    /// ⚠️: works, needs attention.
    Warn,
    /// ❌: exit non-zero.
    Fail,
}

impl Status {
    /// The mark shown before the line.
    pub fn mark(self) -> &'static str {
        match self {
            Status::Pass => "✅",
            Status::Warn => "⚠️ ",
            Status::Fail => "❌",
        }
    }
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Line {
    /// What was checked, e.g. `Pod Check (istiod)`.
    pub check: String,
    /// Pass, warn or fail.
    pub status: Status,
    /// What was found (and advice that needs no meshtrust command, e.g. `kubectl`).
    pub message: String,
    /// What must happen about a failure or warning, for the caller to say how; `None` when
    /// the message says it all.
    #[serde(skip)]
    pub fix: Option<Fix>,
}

/// What must happen to clear a failed or warned [`Line`] — named for the action, not for a
/// command: the library states the fact, a caller with a command line says what to type.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fix {
    /// Install istiod, with the Helm values of a multicluster mesh.
    InstallIstiod,
    /// Reinstall istiod with peering discovery enabled (`ENABLE_PEERING_DISCOVERY=true`).
    EnablePeeringDiscovery,
    /// Create the east-west gateway.
    Expose,
    /// Label istiod's namespace with the cluster's network (and the east-west gateway too).
    LabelNetwork,
    /// Re-create the east-west gateway on this network, the one istiod's namespace is on.
    ExposeOnNetwork(String),
    /// Create the peer gateways that link the clusters.
    Link,
    /// Re-create the peer gateways, which point at old east-west gateway addresses.
    Relink,
    /// Deliver a `cacerts` Secret chaining to the mesh's root.
    DeliverCacerts,
    /// Renew the intermediate in `cacerts` before it expires.
    RenewIntermediate,
    /// Give both clusters one root; if a root rotation skipped a phase, docs/rotation.md
    /// says how to recover.
    DeliverOneRoot,
}

pub(crate) fn line(check: &str, status: Status, message: impl Into<String>) -> Line {
    Line {
        check: check.to_string(),
        status,
        message: message.into(),
        fix: None,
    }
}

impl Line {
    /// This line, with what must happen about it.
    pub(crate) fn with_fix(self, fix: Fix) -> Line {
        Line {
            fix: Some(fix),
            ..self
        }
    }
}

/// How the checks run.
#[derive(Clone, Copy, Debug)]
pub struct CheckOptions {
    /// Before linking: no peers yet is fine, and peers not connected yet only warn.
    pub precheck: bool,
    /// The time expiry is judged at.
    pub now: OffsetDateTime,
}

/// One cluster, as the checks see it.
pub struct ClusterView<'a> {
    /// Name shown in messages (the context).
    pub name: &'a str,
    /// What was read.
    pub facts: &'a ClusterFacts,
    /// `cacerts` verified at `now`, if present.
    pub report: Option<&'a BundleReport>,
    /// The roots it trusts.
    pub trust: &'a TrustView,
}

/// The status of condition `type_` of an object, with its reason and message.
pub(crate) fn condition(
    object: &serde_json::Value,
    type_: &str,
) -> Option<(String, String, String)> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or("Unknown").to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            )
        })
}

/// Why condition `type_` of an object is not `True`, as a phrase; `None` when it is.
pub(crate) fn condition_problem(object: &serde_json::Value, type_: &str) -> Option<String> {
    match condition(object, type_) {
        Some((status, _, _)) if status == "True" => None,
        Some((status, reason, message)) => Some(format!(
            "{type_}={status}{}{}",
            if reason.is_empty() {
                String::new()
            } else {
                format!(" ({reason})")
            },
            if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            }
        )),
        None => Some(format!("{type_} not reported yet")),
    }
}
