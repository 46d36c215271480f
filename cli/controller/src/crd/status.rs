//! What the controller reports: per-cluster state, conditions, the rotation phase.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What the controller observed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeshTrustStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions of the whole resource (Ready).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Progress of a root rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationStatus>,
    /// Each member cluster's intermediate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub clusters: Vec<ClusterStatus>,
}

/// Progress of a root rotation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotationStatus {
    /// Current phase (see docs/rotation.md).
    pub phase: String,
    /// When the rotation started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// What the phase is waiting for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// SHA-256 fingerprint of the root being retired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_root: Option<String>,
    /// SHA-256 fingerprint of the root being introduced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_root: Option<String>,
}

/// One member cluster's intermediate, as last observed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// Cluster name (as in spec.clusters).
    pub name: String,
    /// Start of the intermediate's validity (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// End of the intermediate's validity (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// When the intermediate is due for renewal (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_time: Option<String>,
    /// Serial number of the intermediate (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// SHA-256 fingerprints of the roots in the cluster's root-cert.pem.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_roots: Vec<String>,
    /// SHA-256 fingerprint of the root the intermediate chains to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuing_root: Option<String>,
    /// Ready and Issuing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// When issuing or delivering last failed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_time: Option<String>,
    /// Failures since the last success (drives the back-off).
    #[serde(default)]
    #[schemars(extend("format" = "int64"))]
    pub failed_issuance_attempts: u32,
    /// The last failure's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The last renewal request (`meshtrust renew`) carried out for this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_request: Option<super::RenewalRecord>,
}

/// A condition, as in Kubernetes' metav1.Condition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Ready or Issuing.
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: ConditionStatus,
    /// Why, in PascalCase (DoesNotExist, Renewing, …).
    pub reason: String,
    /// What happened and what to do, for people.
    #[serde(default)]
    pub message: String,
    /// When status last changed (RFC 3339).
    pub last_transition_time: String,
    /// The metadata.generation the condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Status of a [`Condition`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// It does not.
    False,
    /// Not known (yet).
    Unknown,
}

impl ConditionStatus {
    /// `True`, `False` or `Unknown`, as Kubernetes writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

impl fmt::Display for ConditionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<bool> for ConditionStatus {
    fn from(b: bool) -> ConditionStatus {
        if b {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    }
}

impl Condition {
    /// The resource, or a cluster's intermediate, is valid and delivered.
    pub const READY: &'static str = "Ready";
    /// A cluster's intermediate is being (re)issued.
    pub const ISSUING: &'static str = "Issuing";

    /// A condition that changed at `now`. `reason` must be PascalCase.
    pub fn new(
        type_: &str,
        status: impl Into<ConditionStatus>,
        reason: &str,
        message: impl Into<String>,
        now: OffsetDateTime,
        observed_generation: Option<i64>,
    ) -> Condition {
        debug_assert!(
            reason.starts_with(|c: char| c.is_ascii_uppercase())
                && reason.chars().all(|c| c.is_ascii_alphanumeric()),
            "condition reasons are PascalCase: {reason}"
        );
        Condition {
            type_: type_.to_string(),
            status: status.into(),
            reason: reason.to_string(),
            message: message.into(),
            last_transition_time: timestamp(now),
            observed_generation,
        }
    }

    /// A `Ready` condition.
    pub fn ready(
        ready: bool,
        reason: &str,
        message: impl Into<String>,
        now: OffsetDateTime,
        observed_generation: Option<i64>,
    ) -> Condition {
        Condition::new(
            Condition::READY,
            ready,
            reason,
            message,
            now,
            observed_generation,
        )
    }

    /// An `Issuing` condition.
    pub fn issuing(
        issuing: bool,
        reason: &str,
        message: impl Into<String>,
        now: OffsetDateTime,
        observed_generation: Option<i64>,
    ) -> Condition {
        Condition::new(
            Condition::ISSUING,
            issuing,
            reason,
            message,
            now,
            observed_generation,
        )
    }
}

/// Puts `new` into `conditions`, replacing the one of its type; keeps the old
/// lastTransitionTime when the status did not change (as Kubernetes' SetStatusCondition).
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(old) => {
            if old.status == new.status {
                new.last_transition_time = std::mem::take(&mut old.last_transition_time);
            }
            *old = new;
        }
        None => conditions.push(new),
    }
}

/// The condition of type `type_`, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// An instant as status fields write it: RFC 3339 in UTC, whole seconds.
pub fn timestamp(t: OffsetDateTime) -> String {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// A status timestamp read back ([`timestamp`]'s inverse); `None` when absent or malformed.
pub fn parse_timestamp(s: Option<&str>) -> Option<OffsetDateTime> {
    s.and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
}
