//! The checks of `meshtrust check` — pure: a cluster's facts (and the whole mesh's) in, ✅/⚠️/❌
//! lines out. The same lines as `istioctl multicluster check`, plus what it never checks: the
//! `cacerts` bundle, the roots every cluster trusts, expiry and network consistency.
//!
//! The checks of one cluster are in `cluster`, those across clusters in `mesh`; the lines'
//! texts are the report users of `meshtrust check` read, fixes included.

mod cluster;
mod mesh;

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
    /// What was found, and what to do about a failure.
    pub message: String,
}

pub(crate) fn line(check: &str, status: Status, message: impl Into<String>) -> Line {
    Line {
        check: check.to_string(),
        status,
        message: message.into(),
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
