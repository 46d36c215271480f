//! What `meshtrust serve` is told: a YAML file (every field below, snake_case, unknown
//! fields refused), which the command line may override field by field.
//!
//! ```yaml
//! listen: 0.0.0.0:8443
//! tls:
//!   cert_file: /etc/meshtrust/tls/tls.crt     # e.g. from cert-manager; or:
//!   key_file: /etc/meshtrust/tls/tls.key
//!   # self_issued: [meshtrust.meshtrust.svc, 127.0.0.1]   (local root only)
//! issuer:
//!   root_dir: /etc/meshtrust/root             # or aws_pca_arn: arn:aws:acm-pca:…
//! store: sqlite:///var/lib/meshtrust/meshtrust.db   # or postgres://user@host/db
//! admin_token_file: /etc/meshtrust/admin/token
//! policy: { validity: 730d, path_len: 0, key_types: [ecdsa-p256] }
//! limits: { max_body_bytes: 65536, requests_per_minute: 120, request_timeout: 30s }
//! # rotation:                                 # a root rotation in flight (docs/agent.md)
//! #   to: { aws_pca_arn: arn:aws:acm-pca:… }  # or root_dir: /etc/meshtrust/root-2
//! #   hold: 24h
//! clusters:
//!   east:
//!     service_account:
//!       issuer: https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE
//!       subject: system:serviceaccount:istio-system:meshtrust-agent
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use meshtrust_ca::{ClusterName, IntermediateParams, KeyType, duration};
use serde::Deserialize;
use time::Duration;

use crate::error::{Error, Result};
use crate::sa_token::ServiceAccountIssuer;

/// The whole configuration of one service replica.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServeConfig {
    /// Address of the TLS listener (default `0.0.0.0:8443`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Where the serving certificate comes from.
    #[serde(default)]
    pub tls: TlsSource,
    /// The signing backend.
    #[serde(default)]
    pub issuer: IssuerSource,
    /// The store URL: `sqlite://PATH` (embedded, one replica) or `postgres://…` (several).
    #[serde(default = "default_store")]
    pub store: String,
    /// A file holding the admin bearer token (at least 32 characters).
    #[serde(default)]
    pub admin_token_file: Option<PathBuf>,
    /// What every intermediate gets.
    #[serde(default)]
    pub policy: Policy,
    /// Request limits.
    #[serde(default)]
    pub limits: Limits,
    /// A root rotation to carry out: the issuer to rotate to, and the hold.
    #[serde(default)]
    pub rotation: Option<RotationSource>,
    /// Member clusters that may enroll with a ServiceAccount token, by name.
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterAuth>,
    /// Serve plain HTTP. For a laptop demo only: tokens and keys' proofs cross in clear.
    #[serde(default)]
    pub insecure_plaintext_for_development_only: bool,
}

/// The serving certificate: files, or issued by the service's own (local) root.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsSource {
    /// PEM certificate chain, leaf first (reloaded when it changes).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the leaf.
    pub key_file: Option<PathBuf>,
    /// DNS names and IP addresses to issue a serving certificate for, from the local root.
    #[serde(default)]
    pub self_issued: Vec<String>,
}

/// Which backend signs.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct IssuerSource {
    /// A directory with `root-cert.pem` and `root-key.pem`.
    pub root_dir: Option<PathBuf>,
    /// An AWS Private CA (the service holds the AWS credentials).
    pub aws_pca_arn: Option<String>,
    /// AWS region (else the default chain's).
    pub aws_region: Option<String>,
    /// AWS profile.
    pub aws_profile: Option<String>,
    /// An endpoint override (an emulator, a VPC endpoint).
    pub aws_endpoint_url: Option<String>,
}

impl IssuerSource {
    /// A local root in `dir`.
    pub fn local(dir: PathBuf) -> IssuerSource {
        IssuerSource {
            root_dir: Some(dir),
            ..IssuerSource::default()
        }
    }

    /// The AWS Private CA `arn`, reached as `like` reaches its own (region, profile,
    /// endpoint).
    pub fn aws_like(arn: String, like: &IssuerSource) -> IssuerSource {
        IssuerSource {
            aws_pca_arn: Some(arn),
            aws_region: like.aws_region.clone(),
            aws_profile: like.aws_profile.clone(),
            aws_endpoint_url: like.aws_endpoint_url.clone(),
            root_dir: None,
        }
    }
}

/// A root rotation from `issuer` to `to`, driven by what the clusters' agents report.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RotationSource {
    /// The issuer of the new root (the same fields as `issuer`).
    pub to: IssuerSource,
    /// How long the old root stays trusted after the newest intermediate is issued by the
    /// new one (`24h`, or `0s`; at least the longest workload certificate lifetime).
    #[serde(default = "default_hold")]
    pub hold: String,
}

fn default_hold() -> String {
    "24h".to_string()
}

impl RotationSource {
    /// A rotation to `to` with the default hold.
    pub fn new(to: IssuerSource) -> RotationSource {
        RotationSource {
            to,
            hold: default_hold(),
        }
    }

    /// The hold, checked.
    pub fn checked_hold(&self) -> Result<Duration> {
        if matches!(self.hold.trim(), "0" | "0s") {
            return Ok(Duration::ZERO);
        }
        let hold = duration::parse(&self.hold).map_err(|e| Error::Config {
            location: "rotation.hold".to_string(),
            reason: e,
        })?;
        Ok(hold)
    }
}

/// The intermediate profile. Every extension is the service's; a CSR brings its key only.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Policy {
    /// Subject O.
    pub organization: String,
    /// Subject CN.
    pub common_name: String,
    /// DNS SANs.
    pub dns_names: Vec<String>,
    /// Key types a CSR may carry.
    pub key_types: Vec<String>,
    /// Lifetime (`730d`, `8760h`, `2y`), cut to the issuer's expiry.
    pub validity: String,
    /// basicConstraints pathLenConstraint.
    pub path_len: u8,
}

impl Default for Policy {
    fn default() -> Policy {
        let params = IntermediateParams::new(ClusterName::new("x").expect("valid name"));
        Policy {
            organization: params.organization,
            common_name: params.common_name,
            dns_names: params.dns_names,
            key_types: vec![
                KeyType::EcdsaP256.as_str().to_string(),
                KeyType::EcdsaP384.as_str().to_string(),
                KeyType::Rsa2048.as_str().to_string(),
                KeyType::Rsa3072.as_str().to_string(),
                KeyType::Rsa4096.as_str().to_string(),
            ],
            validity: "730d".to_string(),
            path_len: 0,
        }
    }
}

/// Request limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Limits {
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Requests per minute per principal (cluster, admin, or client address).
    pub requests_per_minute: u32,
    /// Longest a request may take (`30s`).
    pub request_timeout: String,
    /// How long in-flight requests may finish after SIGTERM (`30s`).
    pub shutdown_grace: String,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body_bytes: 64 * 1024,
            requests_per_minute: 120,
            request_timeout: "30s".to_string(),
            shutdown_grace: "30s".to_string(),
        }
    }
}

/// How one member cluster authenticates its first enrollment besides one-time tokens.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ClusterAuth {
    /// Its ServiceAccount token issuer.
    pub service_account: Option<ServiceAccountIssuer>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8443))
}

fn default_store() -> String {
    "sqlite:///var/lib/meshtrust/meshtrust.db".to_string()
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        serde_yaml_ng::from_str("{}").expect("the empty configuration is valid")
    }
}

/// The policy, checked and typed.
#[derive(Clone, Debug)]
pub struct CheckedPolicy {
    /// The template every cluster's parameters are made from.
    pub template: IntermediateParams,
    /// Key types a CSR may carry.
    pub key_types: Vec<KeyType>,
}

impl CheckedPolicy {
    /// The parameters for `cluster`.
    pub fn params(&self, cluster: ClusterName) -> IntermediateParams {
        self.template.for_cluster(cluster)
    }
}

/// Limits, checked and typed.
#[derive(Clone, Copy, Debug)]
pub struct CheckedLimits {
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Requests per minute per principal.
    pub requests_per_minute: u32,
    /// Longest a request may take.
    pub request_timeout: std::time::Duration,
    /// Grace for in-flight requests at shutdown.
    pub shutdown_grace: std::time::Duration,
}

impl ServeConfig {
    /// Reads and parses `path`.
    pub fn from_file(path: &Path) -> Result<ServeConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            location: path.display().to_string(),
            reason: format!("cannot be read: {e}"),
        })?;
        serde_yaml_ng::from_str(&text).map_err(|e| Error::Config {
            location: path.display().to_string(),
            reason: format!("is not a valid serve configuration: {e}"),
        })
    }

    /// The policy, with every field checked.
    pub fn checked_policy(&self) -> Result<CheckedPolicy> {
        let p = &self.policy;
        let field = |name: &str, reason: String| Error::Config {
            location: format!("policy.{name}"),
            reason,
        };
        let validity = duration::parse(&p.validity).map_err(|e| field("validity", e))?;
        if validity <= Duration::ZERO {
            return Err(field("validity", "must be positive (e.g. 730d)".into()));
        }
        let key_types = p
            .key_types
            .iter()
            .map(|k| {
                k.parse::<KeyType>()
                    .map_err(|e| field("key_types", e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        if key_types.is_empty() {
            return Err(field(
                "key_types",
                "lists no key type (e.g. [ecdsa-p256])".into(),
            ));
        }
        let mut template = IntermediateParams::new(ClusterName::new("x").expect("valid name"));
        template.organization = p.organization.clone();
        template.common_name = p.common_name.clone();
        template.dns_names = p.dns_names.clone();
        template.validity = validity;
        template.path_len = p.path_len;
        Ok(CheckedPolicy {
            template,
            key_types,
        })
    }

    /// The limits, with every field checked.
    pub fn checked_limits(&self) -> Result<CheckedLimits> {
        let l = &self.limits;
        let std_duration = |name: &str, text: &str| {
            duration::parse_std(text).map_err(|e| Error::Config {
                location: format!("limits.{name}"),
                reason: e,
            })
        };
        if l.max_body_bytes < 1024 || l.requests_per_minute == 0 {
            return Err(Error::Config {
                location: "limits".to_string(),
                reason: "max_body_bytes must be at least 1024 and requests_per_minute at least 1"
                    .to_string(),
            });
        }
        Ok(CheckedLimits {
            max_body_bytes: l.max_body_bytes,
            requests_per_minute: l.requests_per_minute,
            request_timeout: std_duration("request_timeout", &l.request_timeout)?,
            shutdown_grace: std_duration("shutdown_grace", &l.shutdown_grace)?,
        })
    }
}
