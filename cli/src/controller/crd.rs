//! The `MeshTrust` custom resource (`meshtrust.io/v1alpha1`, cluster-scoped): one shared
//! root, the clusters that get an intermediate CA from it, and what the controller observed.
//!
//! The spec keeps the user's strings (`"ecdsa-p256"`, `"2160h"`) so that what is stored is
//! what was written; [`MeshTrustSpec::validate`] checks all of it at once, naming each field
//! at fault, and the accessors ([`IntermediateSpec::key_type`], [`IssuerSpec::selected`],
//! [`ClusterSpec::access`], …) hand the reconciler typed values. The CRD manifest
//! (`deploy/crd.yaml`) is generated from these types by [`crd_yaml`] and checked for drift.

use std::collections::BTreeMap;
use std::fmt;

use kube::{CustomResource, CustomResourceExt};
use meshtrust_ca::{BundleFormat, ClusterName, KeyType, RenewalPolicy};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::duration;

/// Key of the root certificate in a root Secret (local issuer, new root of a rotation).
pub const ROOT_CERT: &str = "root-cert.pem";
/// Key of the root private key in a root Secret.
pub const ROOT_KEY: &str = "root-key.pem";
/// Most clusters one `MeshTrust` lists (bounds the API server's validation cost).
pub const MAX_CLUSTERS: usize = 256;
/// Highest intermediate path length (AWS Private CA has templates for 0 to 3).
pub const MAX_PATH_LEN: u8 = 3;

/// One shared root of trust for a multicluster Istio mesh: every listed cluster gets an
/// intermediate CA signed by the issuer, delivered as the `cacerts` Secret istiod reads.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "meshtrust.io",
    version = "v1alpha1",
    kind = "MeshTrust",
    status = "MeshTrustStatus",
    shortname = "mt",
    derive = "PartialEq",
    doc = "One shared root CA for a multicluster Istio mesh and an intermediate CA per member cluster, delivered as Istio's cacerts Secret.",
    // Raw JSON: the typed form repeats `type_ = "string"`, which clippy takes for a
    // duplicated attribute.
    printcolumn = r#"{"name": "Ready", "type": "string", "description": "Every cluster holds a valid, current cacerts", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Phase", "type": "string", "description": "Phase of a root rotation", "jsonPath": ".status.rotation.phase"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MeshTrustSpec {
    /// Who signs the intermediates: exactly one of `local` or `awsPca`.
    pub issuer: IssuerSpec,
    /// Parameters of every cluster's intermediate CA.
    #[serde(default)]
    pub intermediate: IntermediateSpec,
    /// Layout of the cacerts Secret: istio (ca-cert.pem, ca-key.pem, cert-chain.pem,
    /// root-cert.pem) or tls (tls.crt, tls.key, ca.crt).
    #[serde(default)]
    pub format: CacertsFormat,
    /// Namespace of istiod in the member clusters, where cacerts is written.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The member clusters, each with a unique name.
    #[schemars(length(min = 1, max = 256))]
    #[schemars(extend(
        "x-kubernetes-list-type" = "map",
        "x-kubernetes-list-map-keys" = ["name"],
        "x-kubernetes-validations" = [{
            "rule": "self.filter(c, has(c.local) && c.local).size() <= 1",
            "message": "at most one cluster can be local: true"
        }]
    ))]
    pub clusters: Vec<ClusterSpec>,
    /// Replace the shared root: the controller moves every cluster to the new root in phases
    /// (see docs/rotation.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_rotation: Option<RootRotationSpec>,
}

fn default_namespace() -> String {
    "istio-system".to_string()
}

/// Who signs the intermediates: exactly one of `local` or `awsPca`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.local) != has(self.awsPca)",
    "message": "set exactly one of local or awsPca"
}]))]
pub struct IssuerSpec {
    /// A root key and certificate kept in a Secret, generated when the Secret is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalIssuerSpec>,
    /// An AWS Private CA that signs; the intermediate keys never leave the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_pca: Option<AwsPcaIssuerSpec>,
}

/// The issuer a valid [`IssuerSpec`] selects.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SelectedIssuer<'a> {
    /// The root in a Secret.
    Local(&'a LocalIssuerSpec),
    /// AWS Private CA.
    AwsPca(&'a AwsPcaIssuerSpec),
}

impl IssuerSpec {
    /// The one issuer that is set, or an error when none or both are.
    pub fn selected(&self) -> Result<SelectedIssuer<'_>, FieldError> {
        match (&self.local, &self.aws_pca) {
            (Some(l), None) => Ok(SelectedIssuer::Local(l)),
            (None, Some(a)) => Ok(SelectedIssuer::AwsPca(a)),
            (Some(_), Some(_)) => Err(FieldError::new(
                "spec.issuer",
                "both local and awsPca are set: keep exactly one",
            )),
            (None, None) => Err(FieldError::new(
                "spec.issuer",
                "set exactly one of local or awsPca",
            )),
        }
    }
}

/// A root CA kept in a Secret with the keys `root-cert.pem` and `root-key.pem`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalIssuerSpec {
    /// The Secret holding root-cert.pem and root-key.pem; created with a new root when absent.
    pub secret_ref: SecretRef,
    /// Key type of a root generated because the Secret is absent; ignored otherwise.
    #[serde(default = "default_key_type")]
    #[schemars(extend("enum" = ["ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096"]))]
    pub key_type: String,
}

impl LocalIssuerSpec {
    /// Key type of a root generated when the Secret is absent.
    pub fn key_type(&self) -> Result<KeyType, FieldError> {
        parse_key_type(&self.key_type, "spec.issuer.local.keyType")
    }
}

/// An AWS Private CA that signs the intermediates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsPcaIssuerSpec {
    /// ARN of the certificate authority
    /// (arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID).
    #[schemars(regex(
        pattern = r"^arn:[a-z-]+:acm-pca:[a-z0-9-]*:[0-9]*:certificate-authority/.+$"
    ))]
    pub arn: String,
    /// AWS region (default: the ARN's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Path length AWS writes into each intermediate (template SubordinateCACertificate_PathLenN).
    #[serde(default)]
    #[schemars(range(max = 3), extend("format" = "int32"))]
    pub path_len: u8,
    /// Endpoint override: a VPC endpoint, or a local emulator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
}

impl AwsPcaIssuerSpec {
    /// The region to call: `region`, or else the one in the ARN.
    pub fn resolved_region(&self) -> Option<&str> {
        self.region
            .as_deref()
            .or_else(|| self.arn.split(':').nth(3).filter(|r| !r.is_empty()))
    }
}

/// Parameters of every cluster's intermediate CA.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!(has(self.renewBefore) && has(self.renewBeforePercentage))",
    "message": "set renewBefore or renewBeforePercentage, not both"
}]))]
pub struct IntermediateSpec {
    /// Key type of each intermediate.
    #[serde(default = "default_key_type")]
    #[schemars(extend("enum" = ["ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096"]))]
    pub key_type: String,
    /// Lifetime of each intermediate: a whole number and a unit s, m, h, d, w or y (365 days).
    #[serde(default = "default_duration")]
    #[schemars(regex(pattern = r"^[0-9]+[smhdwy]$"))]
    pub duration: String,
    /// Renew this long before expiry (e.g. 720h). Default: when two thirds of the lifetime
    /// have passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+[smhdwy]$"))]
    pub renew_before: Option<String>,
    /// Renew when this percentage of the lifetime is left (1-99).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 99), extend("format" = "int32"))]
    pub renew_before_percentage: Option<u8>,
    /// basicConstraints pathLenConstraint (0: istiod signs workload certificates only).
    #[serde(default)]
    #[schemars(range(max = 3), extend("format" = "int32"))]
    pub path_len: u8,
    /// Subject organization (O).
    #[serde(default = "default_organization")]
    pub organization: String,
}

fn default_key_type() -> String {
    KeyType::default().as_str().to_string()
}

fn default_duration() -> String {
    "8760h".to_string()
}

fn default_organization() -> String {
    "Istio".to_string()
}

impl Default for IntermediateSpec {
    fn default() -> Self {
        IntermediateSpec {
            key_type: default_key_type(),
            duration: default_duration(),
            renew_before: None,
            renew_before_percentage: None,
            path_len: 0,
            organization: default_organization(),
        }
    }
}

impl IntermediateSpec {
    /// Key type of each intermediate.
    pub fn key_type(&self) -> Result<KeyType, FieldError> {
        parse_key_type(&self.key_type, "spec.intermediate.keyType")
    }

    /// Lifetime of each intermediate.
    pub fn duration(&self) -> Result<Duration, FieldError> {
        duration::parse(&self.duration)
            .map_err(|e| FieldError::new("spec.intermediate.duration", e))
    }

    /// When to renew. Checks that at most one of renewBefore and renewBeforePercentage is
    /// set, that a window is shorter than the lifetime and that a percentage is 1-99.
    pub fn renewal_policy(&self) -> Result<RenewalPolicy, FieldError> {
        match (&self.renew_before, self.renew_before_percentage) {
            (Some(_), Some(_)) => Err(FieldError::new(
                "spec.intermediate",
                "renewBefore and renewBeforePercentage are both set: keep one",
            )),
            (None, None) => Ok(RenewalPolicy::Default),
            (None, Some(p)) => RenewalPolicy::before_percentage(p).map_err(|_| {
                FieldError::new(
                    "spec.intermediate.renewBeforePercentage",
                    format!("{p} is not between 1 and 99 (e.g. 33)"),
                )
            }),
            (Some(text), None) => {
                let path = "spec.intermediate.renewBefore";
                let before = duration::parse(text).map_err(|e| FieldError::new(path, e))?;
                match self.duration() {
                    Ok(lifetime) if before >= lifetime => Err(FieldError::new(
                        path,
                        format!(
                            "{text:?} is not shorter than the duration {:?}: every intermediate would be due for renewal when issued",
                            self.duration
                        ),
                    )),
                    _ => Ok(RenewalPolicy::Before(before)),
                }
            }
        }
    }
}

/// Layout of the cacerts Secret.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CacertsFormat {
    /// ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem (type Opaque).
    #[default]
    Istio,
    /// tls.crt, tls.key, ca.crt (type kubernetes.io/tls).
    Tls,
}

impl From<CacertsFormat> for BundleFormat {
    fn from(f: CacertsFormat) -> BundleFormat {
        match f {
            CacertsFormat::Istio => BundleFormat::Istio,
            CacertsFormat::Tls => BundleFormat::Tls,
        }
    }
}

/// One member cluster of the mesh.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.kubeconfigSecretRef) != (has(self.local) && self.local)",
    "message": "set exactly one of kubeconfigSecretRef or local: true"
}]))]
pub struct ClusterSpec {
    /// Cluster name (a DNS-1123 label), as in Istio's clusterName.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Network of the cluster, for the topology.istio.io/network label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Trust domain of the cluster's workloads (Istio's meshConfig.trustDomain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_domain: Option<String>,
    /// A Secret holding a kubeconfig that reaches this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig_secret_ref: Option<KubeconfigSecretRef>,
    /// This is the cluster the controller runs in (reached with its service account).
    #[serde(default, skip_serializing_if = "is_false")]
    pub local: bool,
}

fn is_false(b: &bool) -> bool {
    !b
}

/// How the controller reaches a member cluster.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ClusterAccess<'a> {
    /// The cluster the controller runs in.
    Local,
    /// Through a kubeconfig kept in a Secret.
    Kubeconfig(&'a KubeconfigSecretRef),
}

impl ClusterSpec {
    /// The cluster name, checked.
    pub fn cluster_name(&self) -> Result<ClusterName, FieldError> {
        self.check_name(&self.path())
    }

    /// How to reach the cluster, or an error when both or neither way is set.
    pub fn access(&self) -> Result<ClusterAccess<'_>, FieldError> {
        self.check_access(&self.path())
    }

    fn path(&self) -> String {
        format!("spec.clusters[name={:?}]", self.name)
    }

    fn check_name(&self, at: &str) -> Result<ClusterName, FieldError> {
        ClusterName::new(&self.name).map_err(|_| {
            FieldError::new(
                format!("{at}.name"),
                format!(
                    "{:?} is not a DNS-1123 label: use 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. cluster-1)",
                    self.name
                ),
            )
        })
    }

    fn check_access(&self, at: &str) -> Result<ClusterAccess<'_>, FieldError> {
        match (&self.kubeconfig_secret_ref, self.local) {
            (Some(r), false) => Ok(ClusterAccess::Kubeconfig(r)),
            (None, true) => Ok(ClusterAccess::Local),
            (Some(_), true) => Err(FieldError::new(
                at,
                "both kubeconfigSecretRef and local: true are set: keep exactly one",
            )),
            (None, false) => Err(FieldError::new(
                at,
                "set exactly one of kubeconfigSecretRef or local: true",
            )),
        }
    }
}

/// A Secret holding a kubeconfig for a member cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeconfigSecretRef {
    /// Secret name.
    pub name: String,
    /// Secret namespace (default: the controller's namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Key of the kubeconfig in the Secret.
    #[serde(default = "default_kubeconfig_key")]
    pub key: String,
    /// Context to use (default: the kubeconfig's current context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

fn default_kubeconfig_key() -> String {
    "kubeconfig".to_string()
}

impl KubeconfigSecretRef {
    /// The Secret's namespace: its own, or else the controller's.
    pub fn namespace_or<'a>(&'a self, controller_namespace: &'a str) -> &'a str {
        self.namespace.as_deref().unwrap_or(controller_namespace)
    }
}

/// A Secret by name and namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretRef {
    /// Secret name.
    pub name: String,
    /// Secret namespace.
    pub namespace: String,
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A root rotation the controller carries out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RootRotationSpec {
    /// The Secret holding the new root (root-cert.pem, root-key.pem), laid out as the local
    /// issuer's.
    pub new_root_secret_ref: SecretRef,
}

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

/// A field at fault: its path in the resource and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path, e.g. `spec.clusters[2].name`.
    pub path: String,
    /// What is wrong and what is accepted.
    pub message: String,
}

impl FieldError {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for FieldError {}

/// Every problem [`MeshTrustSpec::validate`] found, in the order of the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidSpec {
    /// The fields at fault.
    pub errors: Vec<FieldError>,
}

impl fmt::Display for InvalidSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InvalidSpec {}

impl MeshTrustSpec {
    /// Checks the whole spec and reports every field at fault. After `Ok`, the accessors
    /// ([`IssuerSpec::selected`], [`IntermediateSpec::key_type`], [`ClusterSpec::access`],
    /// …) do not fail.
    pub fn validate(&self) -> Result<(), InvalidSpec> {
        let mut errors = Vec::new();
        let mut check = |r: Result<(), FieldError>| {
            if let Err(e) = r {
                errors.push(e);
            }
        };
        match self.issuer.selected() {
            Ok(SelectedIssuer::Local(l)) => {
                check(check_secret_ref(
                    &l.secret_ref,
                    "spec.issuer.local.secretRef",
                ));
                check(l.key_type().map(drop));
            }
            Ok(SelectedIssuer::AwsPca(a)) => {
                for e in check_aws_pca(a) {
                    check(Err(e));
                }
            }
            Err(e) => check(Err(e)),
        }
        let i = &self.intermediate;
        check(i.key_type().map(drop));
        check(i.duration().map(drop));
        check(i.renewal_policy().map(drop));
        check(check_path_len(i.path_len, "spec.intermediate.pathLen"));
        if i.organization.trim().is_empty() {
            check(Err(FieldError::new(
                "spec.intermediate.organization",
                "must not be empty",
            )));
        }
        check(check_dns_label(&self.namespace, "spec.namespace"));
        for e in self.check_clusters() {
            check(Err(e));
        }
        if let Some(rotation) = &self.root_rotation {
            if self.issuer.aws_pca.is_some() {
                check(Err(FieldError::new(
                    "spec.rootRotation",
                    "needs a local issuer: with AWS Private CA, rotate by creating the new CA and pointing spec.issuer.awsPca.arn at it once every cluster trusts both roots (docs/rotation.md)",
                )));
            }
            check(check_secret_ref(
                &rotation.new_root_secret_ref,
                "spec.rootRotation.newRootSecretRef",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(InvalidSpec { errors })
        }
    }

    fn check_clusters(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.clusters.is_empty() {
            errors.push(FieldError::new(
                "spec.clusters",
                "list at least one cluster",
            ));
        }
        if self.clusters.len() > MAX_CLUSTERS {
            errors.push(FieldError::new(
                "spec.clusters",
                format!(
                    "{} clusters listed; at most {MAX_CLUSTERS} are supported",
                    self.clusters.len()
                ),
            ));
        }
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let mut local: Option<usize> = None;
        for (n, c) in self.clusters.iter().enumerate() {
            let at = format!("spec.clusters[{n}]");
            if let Err(e) = c.check_name(&at) {
                errors.push(e);
            }
            if let Some(first) = seen.insert(&c.name, n) {
                seen.insert(&c.name, first);
                errors.push(FieldError::new(
                    format!("{at}.name"),
                    format!("{:?} is already the name of spec.clusters[{first}]: cluster names must be unique", c.name),
                ));
            }
            match c.check_access(&at) {
                Ok(ClusterAccess::Local) => match local {
                    Some(first) => errors.push(FieldError::new(
                        format!("{at}.local"),
                        format!("spec.clusters[{first}] is already local: only the cluster the controller runs in can be"),
                    )),
                    None => local = Some(n),
                },
                Ok(ClusterAccess::Kubeconfig(r)) => {
                    let at = format!("{at}.kubeconfigSecretRef");
                    errors.extend(check_dns_subdomain(&r.name, &format!("{at}.name")).err());
                    if let Some(ns) = &r.namespace {
                        errors.extend(check_dns_label(ns, &format!("{at}.namespace")).err());
                    }
                    if r.key.is_empty() {
                        errors.push(FieldError::new(format!("{at}.key"), "must not be empty"));
                    }
                }
                Err(e) => errors.push(e),
            }
            if let Some(network) = &c.network {
                errors.extend(check_label_value(network, &format!("{at}.network")).err());
            }
            if let Some(td) = &c.trust_domain {
                errors.extend(check_trust_domain(td, &format!("{at}.trustDomain")).err());
            }
        }
        errors
    }
}

fn parse_key_type(text: &str, path: &str) -> Result<KeyType, FieldError> {
    text.parse().map_err(|_| {
        FieldError::new(
            path,
            format!(
                "{text:?} is not one of {}",
                KeyType::ALL.map(KeyType::as_str).join(", ")
            ),
        )
    })
}

fn check_path_len(path_len: u8, path: &str) -> Result<(), FieldError> {
    if path_len > MAX_PATH_LEN {
        return Err(FieldError::new(
            path,
            format!("{path_len} is more than {MAX_PATH_LEN}; 0 is what istiod needs"),
        ));
    }
    Ok(())
}

fn check_aws_pca(a: &AwsPcaIssuerSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = a.arn.splitn(6, ':').collect();
    let well_formed = parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "acm-pca"
        && parts[5]
            .strip_prefix("certificate-authority/")
            .is_some_and(|id| !id.is_empty());
    if !well_formed {
        errors.push(FieldError::new(
            "spec.issuer.awsPca.arn",
            format!(
                "{:?} is not a certificate authority ARN (arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID)",
                a.arn
            ),
        ));
    }
    if well_formed && a.resolved_region().is_none() {
        errors.push(FieldError::new(
            "spec.issuer.awsPca.region",
            "the ARN names no region: set region",
        ));
    }
    errors.extend(check_path_len(a.path_len, "spec.issuer.awsPca.pathLen").err());
    if let Some(url) = &a.endpoint_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        errors.push(FieldError::new(
            "spec.issuer.awsPca.endpointUrl",
            format!("{url:?} is not an http:// or https:// URL"),
        ));
    }
    errors
}

fn check_secret_ref(r: &SecretRef, path: &str) -> Result<(), FieldError> {
    check_dns_subdomain(&r.name, &format!("{path}.name"))?;
    check_dns_label(&r.namespace, &format!("{path}.namespace"))
}

fn is_dns_label(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn check_dns_label(s: &str, path: &str) -> Result<(), FieldError> {
    if is_dns_label(s) {
        Ok(())
    } else {
        Err(FieldError::new(
            path,
            format!(
                "{s:?} is not a DNS-1123 label (1-63 lowercase letters, digits and '-', starting and ending with a letter or digit)"
            ),
        ))
    }
}

fn check_dns_subdomain(s: &str, path: &str) -> Result<(), FieldError> {
    if s.len() <= 253 && s.split('.').all(is_dns_label) {
        Ok(())
    } else {
        Err(FieldError::new(
            path,
            format!(
                "{s:?} is not a valid object name (a DNS-1123 subdomain: lowercase letters, digits, '-' and '.')"
            ),
        ))
    }
}

fn check_label_value(s: &str, path: &str) -> Result<(), FieldError> {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let valid = s.len() <= 63
        && edge_ok(s.chars().next())
        && edge_ok(s.chars().last())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(FieldError::new(
            path,
            format!(
                "{s:?} is not a valid label value (1-63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit)"
            ),
        ))
    }
}

fn check_trust_domain(s: &str, path: &str) -> Result<(), FieldError> {
    let valid = !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'));
    if valid {
        Ok(())
    } else {
        Err(FieldError::new(
            path,
            format!(
                "{s:?} is not a SPIFFE trust domain (lowercase letters, digits, '.', '-' and '_', e.g. cluster1.local)"
            ),
        ))
    }
}

/// The CRD manifest (`deploy/crd.yaml`), generated from these types.
pub fn crd_yaml() -> String {
    let body = serde_yaml_ng::to_string(&MeshTrust::crd()).expect("a CRD serializes to YAML");
    format!(
        "# Generated by `meshtrust crd` from cli/src/controller/crd.rs; do not edit by hand.\n\
         # Regenerate: cargo run -- crd > deploy/crd.yaml\n{body}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const CRD_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/crd.yaml");
    const EXAMPLE_FILE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/examples/meshtrust.yaml"
    );

    #[test]
    fn the_crd_manifest_matches_the_rust_types() {
        let got = crd_yaml();
        if std::env::var_os("MESHTRUST_UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(CRD_FILE, &got).unwrap();
        }
        let want = std::fs::read_to_string(CRD_FILE).unwrap_or_default();
        assert!(
            got == want,
            "deploy/crd.yaml differs from the types in cli/src/controller/crd.rs: regenerate it with \
             `cargo run -- crd > deploy/crd.yaml` (or MESHTRUST_UPDATE_SNAPSHOTS=1 cargo test -p meshtrust-cli controller::crd)"
        );
    }

    #[test]
    fn the_crd_is_cluster_scoped_structural_and_validated_by_the_api_server() {
        let yaml = crd_yaml();
        let crd = MeshTrust::crd();
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("meshtrusts.meshtrust.io")
        );
        assert_eq!(crd.spec.scope, "Cluster");
        assert_eq!(crd.spec.names.short_names, Some(vec!["mt".to_string()]));
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some()
        );
        let columns: Vec<_> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(columns, ["Ready", "Phase", "Age"]);
        let cases = [
            ("no unresolved references", !yaml.contains("$ref")),
            (
                "no anyOf/oneOf left",
                !yaml.contains("anyOf") && !yaml.contains("oneOf"),
            ),
            (
                "no formats Kubernetes warns about",
                !yaml.contains("format: uint"),
            ),
            (
                "exactly one issuer",
                yaml.contains("has(self.local) != has(self.awsPca)"),
            ),
            (
                "one way to reach a cluster",
                yaml.contains("has(self.kubeconfigSecretRef)"),
            ),
            (
                "unique cluster names",
                yaml.contains("x-kubernetes-list-map-keys"),
            ),
            (
                "defaults",
                yaml.contains("default: 8760h") && yaml.contains("default: istio-system"),
            ),
            (
                "the generated-by comment",
                yaml.starts_with("# Generated by `meshtrust crd`"),
            ),
        ];
        for (case, ok) in cases {
            assert!(ok, "{case}");
        }
    }

    #[test]
    fn the_example_parses_and_validates_and_so_does_its_aws_variant() {
        let text = std::fs::read_to_string(EXAMPLE_FILE).unwrap();
        let mt: MeshTrust = serde_yaml_ng::from_str(&text).unwrap();
        mt.spec.validate().unwrap();
        let access: Vec<_> = mt
            .spec
            .clusters
            .iter()
            .map(|c| c.access().unwrap())
            .collect();
        assert_eq!(
            access
                .iter()
                .filter(|a| **a == ClusterAccess::Local)
                .count(),
            1
        );
        assert_eq!(access.len(), 3);
        assert!(matches!(
            mt.spec.issuer.selected(),
            Ok(SelectedIssuer::Local(_))
        ));

        // The commented AWS variant: lines "#   …" hold an `issuer:` block.
        let aws: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("#   "))
            .map(|l| format!("{l}\n"))
            .collect();
        #[derive(Deserialize)]
        struct Variant {
            issuer: IssuerSpec,
        }
        let variant: Variant = serde_yaml_ng::from_str(&aws).unwrap();
        let spec = MeshTrustSpec {
            issuer: variant.issuer,
            ..mt.spec
        };
        spec.validate().unwrap();
        assert!(matches!(
            spec.issuer.selected(),
            Ok(SelectedIssuer::AwsPca(_))
        ));
    }

    fn valid() -> MeshTrustSpec {
        serde_yaml_ng::from_str(
            r#"
issuer:
  local:
    secretRef: {name: meshtrust-root, namespace: meshtrust-system}
clusters:
  - {name: cluster1, local: true}
  - {name: cluster2, kubeconfigSecretRef: {name: cluster2-kubeconfig}}
  - {name: cluster3, network: net3, trustDomain: cluster3.local, kubeconfigSecretRef: {name: c3, namespace: other, key: config, context: ctx3}}
"#,
        )
        .unwrap()
    }

    fn aws() -> AwsPcaIssuerSpec {
        AwsPcaIssuerSpec {
            arn: "arn:aws:acm-pca:eu-west-1:111122223333:certificate-authority/abc".into(),
            region: None,
            path_len: 0,
            endpoint_url: None,
        }
    }

    #[test]
    fn a_minimal_spec_is_valid_and_gets_the_documented_defaults() {
        let s = valid();
        s.validate().unwrap();
        assert_eq!(s.intermediate.key_type().unwrap(), KeyType::EcdsaP256);
        assert_eq!(s.intermediate.duration().unwrap(), Duration::days(365));
        assert_eq!(
            s.intermediate.renewal_policy().unwrap(),
            RenewalPolicy::Default
        );
        assert_eq!(s.intermediate.path_len, 0);
        assert_eq!(s.intermediate.organization, "Istio");
        assert_eq!(BundleFormat::from(s.format), BundleFormat::Istio);
        assert_eq!(s.namespace, "istio-system");
        let Ok(SelectedIssuer::Local(l)) = s.issuer.selected() else {
            panic!("the local issuer")
        };
        assert_eq!(l.key_type().unwrap(), KeyType::EcdsaP256);
        let ClusterAccess::Kubeconfig(r) = s.clusters[1].access().unwrap() else {
            panic!("a kubeconfig")
        };
        assert_eq!(
            (r.key.as_str(), r.namespace_or("meshtrust-system")),
            ("kubeconfig", "meshtrust-system")
        );
        assert_eq!(s.clusters[2].cluster_name().unwrap().as_str(), "cluster3");
    }

    #[test]
    fn invalid_specs_are_refused_naming_the_field_and_the_fix() {
        type Edit = fn(&mut MeshTrustSpec);
        let cases: &[(&str, Edit, &str)] = &[
            (
                "a cluster name that is not a DNS-1123 label is refused",
                |s| s.clusters[2].name = "Cluster_3".into(),
                r#"spec.clusters[2].name: "Cluster_3" is not a DNS-1123 label"#,
            ),
            (
                "a repeated cluster name is refused",
                |s| s.clusters[2].name = "cluster1".into(),
                r#"spec.clusters[2].name: "cluster1" is already the name of spec.clusters[0]"#,
            ),
            (
                "a cluster with both a kubeconfig and local is refused",
                |s| s.clusters[1].local = true,
                "spec.clusters[1]: both kubeconfigSecretRef and local: true are set",
            ),
            (
                "a cluster with no way to reach it is refused",
                |s| s.clusters[0].local = false,
                "spec.clusters[0]: set exactly one of kubeconfigSecretRef or local: true",
            ),
            (
                "a second local cluster is refused",
                |s| {
                    s.clusters[2].kubeconfig_secret_ref = None;
                    s.clusters[2].local = true;
                },
                "spec.clusters[2].local: spec.clusters[0] is already local",
            ),
            (
                "an empty cluster list is refused",
                |s| s.clusters.clear(),
                "spec.clusters: list at least one cluster",
            ),
            (
                "a bad kubeconfig Secret name is refused",
                |s| s.clusters[1].kubeconfig_secret_ref.as_mut().unwrap().name = "Bad Name".into(),
                "spec.clusters[1].kubeconfigSecretRef.name: \"Bad Name\" is not a valid object name",
            ),
            (
                "a network that is no label value is refused",
                |s| s.clusters[2].network = Some("net 3".into()),
                "spec.clusters[2].network: \"net 3\" is not a valid label value",
            ),
            (
                "a trust domain in upper case is refused",
                |s| s.clusters[2].trust_domain = Some("Cluster3.local".into()),
                "spec.clusters[2].trustDomain: \"Cluster3.local\" is not a SPIFFE trust domain",
            ),
            (
                "renewBefore and renewBeforePercentage together are refused",
                |s| {
                    s.intermediate.renew_before = Some("720h".into());
                    s.intermediate.renew_before_percentage = Some(30);
                },
                "spec.intermediate: renewBefore and renewBeforePercentage are both set",
            ),
            (
                "a renewal window as long as the lifetime is refused",
                |s| s.intermediate.renew_before = Some("365d".into()),
                "spec.intermediate.renewBefore: \"365d\" is not shorter than the duration \"8760h\"",
            ),
            (
                "a percentage of 100 is refused",
                |s| s.intermediate.renew_before_percentage = Some(100),
                "spec.intermediate.renewBeforePercentage: 100 is not between 1 and 99",
            ),
            (
                "a duration without a unit is refused",
                |s| s.intermediate.duration = "90".into(),
                "spec.intermediate.duration: invalid duration `90`",
            ),
            (
                "a bad renewBefore is refused",
                |s| s.intermediate.renew_before = Some("1 month".into()),
                "spec.intermediate.renewBefore: invalid duration `1 month`",
            ),
            (
                "an unknown intermediate key type is refused",
                |s| s.intermediate.key_type = "ed25519".into(),
                "spec.intermediate.keyType: \"ed25519\" is not one of ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096",
            ),
            (
                "an unknown root key type is refused",
                |s| s.issuer.local.as_mut().unwrap().key_type = "dsa".into(),
                "spec.issuer.local.keyType: \"dsa\" is not one of",
            ),
            (
                "a path length above 3 is refused",
                |s| s.intermediate.path_len = 4,
                "spec.intermediate.pathLen: 4 is more than 3",
            ),
            (
                "an empty organization is refused",
                |s| s.intermediate.organization = " ".into(),
                "spec.intermediate.organization: must not be empty",
            ),
            (
                "an istiod namespace that is no DNS label is refused",
                |s| s.namespace = "Istio_System".into(),
                "spec.namespace: \"Istio_System\" is not a DNS-1123 label",
            ),
            (
                "no issuer is refused",
                |s| s.issuer.local = None,
                "spec.issuer: set exactly one of local or awsPca",
            ),
            (
                "two issuers are refused",
                |s| s.issuer.aws_pca = Some(aws()),
                "spec.issuer: both local and awsPca are set",
            ),
            (
                "a root Secret without a namespace is refused",
                |s| s.issuer.local.as_mut().unwrap().secret_ref.namespace = String::new(),
                "spec.issuer.local.secretRef.namespace: \"\" is not a DNS-1123 label",
            ),
            (
                "an ARN that is not a certificate authority's is refused",
                |s| {
                    s.issuer.local = None;
                    s.issuer.aws_pca = Some(AwsPcaIssuerSpec {
                        arn: "arn:aws:s3:::bucket".into(),
                        ..aws()
                    });
                },
                "spec.issuer.awsPca.arn: \"arn:aws:s3:::bucket\" is not a certificate authority ARN",
            ),
            (
                "an AWS path length above 3 is refused",
                |s| {
                    s.issuer.local = None;
                    s.issuer.aws_pca = Some(AwsPcaIssuerSpec {
                        path_len: 5,
                        ..aws()
                    });
                },
                "spec.issuer.awsPca.pathLen: 5 is more than 3",
            ),
            (
                "an endpoint that is no URL is refused",
                |s| {
                    s.issuer.local = None;
                    s.issuer.aws_pca = Some(AwsPcaIssuerSpec {
                        endpoint_url: Some("localhost:5000".into()),
                        ..aws()
                    });
                },
                "spec.issuer.awsPca.endpointUrl: \"localhost:5000\" is not an http:// or https:// URL",
            ),
            (
                "a rotation with AWS Private CA as the issuer is refused",
                |s| {
                    s.issuer.local = None;
                    s.issuer.aws_pca = Some(aws());
                    s.root_rotation = Some(RootRotationSpec {
                        new_root_secret_ref: SecretRef {
                            name: "new-root".into(),
                            namespace: "meshtrust-system".into(),
                        },
                    });
                },
                "spec.rootRotation: needs a local issuer",
            ),
        ];
        for (case, edit, want) in cases {
            let mut spec = valid();
            edit(&mut spec);
            let errors = spec.validate().expect_err(case);
            assert!(
                errors.errors.len() == 1 && errors.to_string().starts_with(want),
                "{case}:\n  want {want}\n  got  {errors}"
            );
        }
    }

    #[test]
    fn every_problem_is_reported_at_once_in_spec_order() {
        let mut s = valid();
        s.intermediate.key_type = "ed25519".into();
        s.clusters[0].name = "A".into();
        s.clusters[1].kubeconfig_secret_ref = None;
        let paths: Vec<_> = s
            .validate()
            .unwrap_err()
            .errors
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(
            paths,
            [
                "spec.intermediate.keyType",
                "spec.clusters[0].name",
                "spec.clusters[1]"
            ]
        );
    }

    #[test]
    fn accessors_of_a_single_cluster_name_it() {
        let mut c = valid().clusters.remove(0);
        c.name = "Bad".into();
        c.local = false;
        assert!(
            c.cluster_name()
                .unwrap_err()
                .to_string()
                .starts_with(r#"spec.clusters[name="Bad"].name: "Bad" is not"#)
        );
        assert!(
            c.access()
                .unwrap_err()
                .to_string()
                .starts_with(r#"spec.clusters[name="Bad"]: set exactly one"#)
        );
    }

    #[test]
    fn the_region_comes_from_the_arn_unless_set() {
        assert_eq!(aws().resolved_region(), Some("eu-west-1"));
        let set = AwsPcaIssuerSpec {
            region: Some("us-east-1".into()),
            ..aws()
        };
        assert_eq!(set.resolved_region(), Some("us-east-1"));
        let none = AwsPcaIssuerSpec {
            arn: "arn:aws:acm-pca::1:certificate-authority/x".into(),
            ..aws()
        };
        assert_eq!(none.resolved_region(), None);
    }

    #[test]
    fn a_condition_keeps_its_transition_time_while_its_status_holds() {
        let t0 = datetime!(2026-01-01 00:00:00.5 UTC);
        let t1 = t0 + Duration::hours(1);
        let mut conditions = vec![Condition::ready(
            false,
            "DoesNotExist",
            "no cacerts",
            t0,
            Some(1),
        )];
        assert_eq!(conditions[0].last_transition_time, "2026-01-01T00:00:00Z");
        set_condition(
            &mut conditions,
            Condition::ready(false, "MissingData", "ca-key.pem missing", t1, Some(2)),
        );
        let c = find_condition(&conditions, Condition::READY).unwrap();
        assert_eq!(
            (c.reason.as_str(), c.last_transition_time.as_str()),
            ("MissingData", "2026-01-01T00:00:00Z")
        );
        set_condition(
            &mut conditions,
            Condition::ready(true, "Issued", "", t1, Some(2)),
        );
        set_condition(
            &mut conditions,
            Condition::issuing(false, "Issued", "", t1, Some(2)),
        );
        assert_eq!(conditions.len(), 2);
        assert_eq!(conditions[0].status, ConditionStatus::True);
        assert_eq!(conditions[0].last_transition_time, "2026-01-01T01:00:00Z");
        let json = serde_json::to_value(&conditions[1]).unwrap();
        assert_eq!(
            (json["type"].as_str(), json["status"].as_str()),
            (Some("Issuing"), Some("False"))
        );
    }
}
