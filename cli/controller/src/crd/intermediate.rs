//! The intermediate part of the spec, and its one conversion into the parameters every
//! issuance uses.

use meshtrust_ca::{
    BundleFormat, ClusterName, IntermediateParams, KeyType, RenewalPolicy, duration,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::Duration;

use super::validate::{FieldError, parse_key_type};

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

pub(super) fn default_key_type() -> String {
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

impl super::MeshTrustSpec {
    /// The parameters of `cluster`'s intermediate: the spec's one conversion into the
    /// [`IntermediateParams`] that issuance and the renewal checks use.
    pub fn intermediate_params(
        &self,
        cluster: ClusterName,
    ) -> Result<IntermediateParams, FieldError> {
        let i = &self.intermediate;
        let mut params = IntermediateParams::new(cluster);
        params.key_type = i.key_type()?;
        params.validity = i.duration()?;
        params.path_len = i.path_len;
        params.organization = i.organization.clone();
        params.format = self.format.into();
        Ok(params)
    }
}
