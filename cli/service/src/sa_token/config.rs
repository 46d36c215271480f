//! The configuration of one cluster's ServiceAccount token issuer.

use std::path::PathBuf;

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::fetch::fetch_url;
use crate::{Error, Result};

/// The path OIDC discovery appends to an issuer (OpenID Connect Discovery 1.0 §4).
const WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// How the service recognises one member cluster's projected ServiceAccount tokens: who
/// issues them, which ServiceAccount enrolls, and where the issuer's public keys are.
///
/// At most one of `jwks_file`, `jwks` and `discovery_url` is set; with none of them the keys
/// are discovered from `issuer` itself (`{issuer}/.well-known/openid-configuration`, which
/// EKS and GKE publish). Discovery must use https — plain http only to a loopback address —
/// and https needs `ca_file`: the service trusts no certificate authority it is not given,
/// not even the operating system's (for EKS and GKE, the system bundle will do, e.g.
/// `/etc/ssl/certs/ca-certificates.crt`).
///
/// ```yaml
/// issuer: https://oidc.eks.eu-west-1.amazonaws.com/id/ABC
/// subject: system:serviceaccount:istio-system:meshtrust-agent
/// ca_file: /etc/ssl/certs/ca-certificates.crt
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServiceAccountIssuer {
    /// The `iss` the cluster's tokens carry: its API server's `--service-account-issuer`,
    /// e.g. `https://oidc.eks.eu-west-1.amazonaws.com/id/ABC` or
    /// `https://kubernetes.default.svc.cluster.local`
    /// (`kubectl get --raw /.well-known/openid-configuration` shows it).
    pub issuer: String,
    /// The `sub` the cluster's tokens must carry: the ServiceAccount that enrolls, as
    /// `system:serviceaccount:<namespace>:<name>`, e.g.
    /// `system:serviceaccount:istio-system:meshtrust-agent`.
    pub subject: String,
    /// A file holding the issuer's JWKS (`kubectl get --raw /openid/v1/jwks`), read at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
    /// The issuer's JWKS inline: a mapping with `keys`, or that JSON as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// Where the OIDC discovery document is, when not at `issuer`: the base URL, to which
    /// `/.well-known/openid-configuration` is appended (a URL already ending in it is used
    /// as it is). The document's `jwks_uri` gives the keys; its `issuer` must be `issuer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_url: Option<String>,
    /// PEM bundle of the certificate authorities that discovery over https trusts; required
    /// for https discovery, and only used by discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// Where one cluster's keys come from, once the configuration is checked.
#[derive(Clone, Debug)]
pub(super) enum KeySource {
    File(PathBuf),
    Inline(serde_json::Value),
    Discovery {
        /// The discovery document's URL.
        document: Url,
        ca_file: Option<PathBuf>,
    },
}

impl ServiceAccountIssuer {
    /// An issuer whose keys are discovered from `issuer` itself; set the other fields to
    /// choose another key source.
    pub fn new(issuer: impl Into<String>, subject: impl Into<String>) -> ServiceAccountIssuer {
        ServiceAccountIssuer {
            issuer: issuer.into(),
            subject: subject.into(),
            ..ServiceAccountIssuer::default()
        }
    }

    /// Checks the configuration of cluster `cluster` without reading files or the network.
    /// A [`Error::Config`] names the cluster and the field at fault.
    pub fn validate(&self, cluster: &str) -> Result<()> {
        self.key_source(cluster).map(drop)
    }

    pub(super) fn key_source(&self, cluster: &str) -> Result<KeySource> {
        if self.issuer.trim().is_empty() {
            return Err(invalid(
                cluster,
                "issuer",
                "is empty: set the `iss` of the cluster's tokens (`kubectl get --raw \
                 /.well-known/openid-configuration` shows it)"
                    .into(),
            ));
        }
        check_subject(&self.subject).map_err(|reason| invalid(cluster, "subject", reason))?;
        let sources: Vec<&str> = [
            ("jwks_file", self.jwks_file.is_some()),
            ("jwks", self.jwks.is_some()),
            ("discovery_url", self.discovery_url.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        if let [first, second, ..] = sources[..] {
            return Err(invalid(
                cluster,
                second,
                format!("{first} is set too: give the issuer's keys in one way only"),
            ));
        }
        let given = match (&self.jwks_file, &self.jwks) {
            (Some(path), _) => KeySource::File(path.clone()),
            (None, Some(jwks)) => KeySource::Inline(jwks.clone()),
            (None, None) => return self.discovery_source(cluster),
        };
        match self.ca_file {
            Some(_) => Err(invalid(
                cluster,
                "ca_file",
                "is used only for discovery, and the keys are given here: remove it".into(),
            )),
            None => Ok(given),
        }
    }

    /// Discovery from `discovery_url`, or else from `issuer`.
    fn discovery_source(&self, cluster: &str) -> Result<KeySource> {
        let (field, base) = match &self.discovery_url {
            Some(url) => ("discovery_url", url.as_str()),
            None => ("issuer", self.issuer.as_str()),
        };
        let document = fetch_url(&discovery_document(base)).map_err(|reason| {
            let reason = format!("{reason} (or give the keys with jwks or jwks_file)");
            invalid(cluster, field, reason)
        })?;
        if document.scheme() == "https" && self.ca_file.is_none() {
            let reason = format!(
                "is needed to fetch {document} over https: set it to a PEM bundle of the \
                 authorities to trust (the system bundle, e.g. \
                 /etc/ssl/certs/ca-certificates.crt, for EKS and GKE)"
            );
            return Err(invalid(cluster, "ca_file", reason));
        }
        Ok(KeySource::Discovery {
            document,
            ca_file: self.ca_file.clone(),
        })
    }
}

/// A configuration error naming the cluster and field.
fn invalid(cluster: &str, field: &str, reason: String) -> Error {
    Error::Config {
        location: format!("cluster {cluster}, field {field}"),
        reason,
    }
}

fn check_subject(subject: &str) -> Result<(), String> {
    match subject.split(':').collect::<Vec<_>>()[..] {
        ["system", "serviceaccount", namespace, name]
            if !namespace.is_empty() && !name.is_empty() =>
        {
            Ok(())
        }
        _ => Err(format!(
            "`{subject}` is not a ServiceAccount subject: write it as \
             system:serviceaccount:<namespace>:<name>"
        )),
    }
}

/// The discovery document's URL for a base URL (an issuer or `discovery_url`).
fn discovery_document(base: &str) -> String {
    let base = base.trim().trim_end_matches('/');
    if base.ends_with(WELL_KNOWN) {
        base.to_string()
    } else {
        format!("{base}{WELL_KNOWN}")
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
