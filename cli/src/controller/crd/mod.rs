//! The `MeshTrust` custom resource (`meshtrust.io/v1alpha1`, cluster-scoped): one shared
//! root, the clusters that get an intermediate CA from it, and what the controller observed.
//!
//! The spec keeps the user's strings (`"ecdsa-p256"`, `"2160h"`) so that what is stored is
//! what was written; [`MeshTrustSpec::validate`] checks all of it at once, naming each field
//! at fault, and the accessors ([`IntermediateSpec::key_type`], [`IssuerSpec::selected`],
//! [`ClusterSpec::access`], …) hand the reconciler typed values. The CRD manifest
//! (`deploy/crd.yaml`) is generated from these types by [`crd_yaml`] and checked for drift.

use std::fmt;

use kube::{CustomResource, CustomResourceExt};
use meshtrust_ca::{BundleFormat, ClusterName, KeyType, RenewalPolicy};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::Duration;

use crate::duration;

mod status;
mod validate;

pub use status::*;
pub use validate::FieldError;
use validate::parse_key_type;

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
    /// How long to keep trusting the old root after the last intermediate was reissued from
    /// the new one, so that workload certificates signed under the old root expire first
    /// (Istio's default workload certificate lifetime is 24h).
    #[serde(default = "default_hold")]
    #[schemars(regex(pattern = r"^[0-9]+(ms|[smhdwy])$"))]
    pub hold_before_removing_old_root: String,
}

fn default_hold() -> String {
    "24h".to_string()
}

impl RootRotationSpec {
    /// [`RootRotationSpec::hold_before_removing_old_root`], typed.
    pub fn hold(&self) -> Result<Duration, FieldError> {
        duration::parse(&self.hold_before_removing_old_root)
            .map_err(|e| FieldError::new("spec.rootRotation.holdBeforeRemovingOldRoot", e))
    }
}

/// The CRD manifest (`deploy/crd.yaml`), generated from these types.
pub fn crd_yaml() -> String {
    let body = serde_yaml_ng::to_string(&MeshTrust::crd()).expect("a CRD serializes to YAML");
    format!(
        "# Generated by `meshtrust crd` from cli/src/controller/crd/; do not edit by hand.\n\
         # Regenerate: cargo run -- crd > deploy/crd.yaml\n{body}"
    )
}

#[cfg(test)]
mod tests;
