//! Who signs: the issuer part of the spec.

use meshtrust_ca::KeyType;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SecretRef;
use super::intermediate::default_key_type;
use super::validate::{FieldError, parse_key_type};

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
