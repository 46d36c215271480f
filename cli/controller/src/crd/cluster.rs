//! Member clusters, how the controller reaches them, and the Secrets the spec refers to.

use std::fmt;

use meshtrust_ca::{ClusterName, duration};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::Duration;

use super::issuer::{AwsPcaIssuerSpec, IssuerSpec, SelectedIssuer};
use super::validate::FieldError;

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

    pub(super) fn check_name(&self, at: &str) -> Result<ClusterName, FieldError> {
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

    pub(super) fn check_access(&self, at: &str) -> Result<ClusterAccess<'_>, FieldError> {
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

/// A root rotation the controller carries out: to a new root in a Secret, or to a new AWS
/// Private CA, from the spec's issuer (either kind).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.newRootSecretRef) != has(self.awsPca)",
    "message": "set exactly one of newRootSecretRef or awsPca"
}]))]
pub struct RootRotationSpec {
    /// The Secret holding the new root (root-cert.pem, root-key.pem), laid out as the local
    /// issuer's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_root_secret_ref: Option<SecretRef>,
    /// The new AWS Private CA: intermediates are reissued by it, and its root replaces the
    /// old one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_pca: Option<AwsPcaIssuerSpec>,
    /// How long to keep trusting the old root after the last intermediate was reissued from
    /// the new one, so that workload certificates signed under the old root expire first
    /// (Istio's default workload certificate lifetime is 24h).
    #[serde(default = "default_hold")]
    #[schemars(regex(pattern = r"^[0-9]+(ms|[smhdwy])$"))]
    pub hold_before_removing_old_root: String,
    /// The name of istiod's Deployment in `spec.namespace` of each member (`istiod`, or
    /// `istiod-<revision>` for a revisioned install): each phase waits until istiod has
    /// loaded the previous one, and the rotation starts only when it runs with
    /// `ISTIO_MULTIROOT_MESH=true`.
    #[serde(default = "default_istiod")]
    pub istiod_deployment: String,
}

/// The issuer a valid [`RootRotationSpec`] rotates to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RotationTarget<'a> {
    /// A root in a Secret.
    Secret(&'a SecretRef),
    /// An AWS Private CA.
    AwsPca(&'a AwsPcaIssuerSpec),
}

impl fmt::Display for RotationTarget<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RotationTarget::Secret(r) => write!(f, "the root in Secret {r}"),
            RotationTarget::AwsPca(a) => write!(f, "AWS Private CA {}", a.arn),
        }
    }
}

impl RotationTarget<'_> {
    /// Whether this is the issuer `issuer` already is (a rotation to it is ignored).
    pub fn is(&self, issuer: &IssuerSpec) -> bool {
        match (self, issuer.selected()) {
            (RotationTarget::Secret(r), Ok(SelectedIssuer::Local(l))) => **r == l.secret_ref,
            (RotationTarget::AwsPca(a), Ok(SelectedIssuer::AwsPca(b))) => a.arn == b.arn,
            _ => false,
        }
    }
}

fn default_hold() -> String {
    "24h".to_string()
}

fn default_istiod() -> String {
    meshtrust_kube::ISTIOD_DEPLOYMENT.to_string()
}

impl RootRotationSpec {
    /// The one target that is set, or an error when none or both are.
    pub fn target(&self) -> Result<RotationTarget<'_>, FieldError> {
        match (&self.new_root_secret_ref, &self.aws_pca) {
            (Some(r), None) => Ok(RotationTarget::Secret(r)),
            (None, Some(a)) => Ok(RotationTarget::AwsPca(a)),
            (Some(_), Some(_)) => Err(FieldError::new(
                "spec.rootRotation",
                "both newRootSecretRef and awsPca are set: keep exactly one",
            )),
            (None, None) => Err(FieldError::new(
                "spec.rootRotation",
                "set exactly one of newRootSecretRef (a new root in a Secret) or awsPca (a new AWS Private CA)",
            )),
        }
    }

    /// [`RootRotationSpec::hold_before_removing_old_root`], typed.
    pub fn hold(&self) -> Result<Duration, FieldError> {
        duration::parse(&self.hold_before_removing_old_root)
            .map_err(|e| FieldError::new("spec.rootRotation.holdBeforeRemovingOldRoot", e))
    }
}
