//! Checking a spec as a whole, naming every field at fault.

use std::collections::BTreeMap;
use std::fmt;

use meshtrust_ca::KeyType;

use super::*;

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
                for e in check_aws_pca(a, "spec.issuer.awsPca") {
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
            for e in check_rotation(rotation) {
                check(Err(e));
            }
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

pub(super) fn parse_key_type(text: &str, path: &str) -> Result<KeyType, FieldError> {
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

/// The fields of `spec.rootRotation`.
fn check_rotation(rotation: &RootRotationSpec) -> Vec<FieldError> {
    let mut errors = match rotation.target() {
        Ok(RotationTarget::Secret(r)) => check_secret_ref(r, "spec.rootRotation.newRootSecretRef")
            .err()
            .into_iter()
            .collect(),
        Ok(RotationTarget::AwsPca(a)) => check_aws_pca(a, "spec.rootRotation.awsPca"),
        Err(e) => vec![e],
    };
    errors.extend(rotation.hold().err());
    errors.extend(
        check_dns_label(
            &rotation.istiod_deployment,
            "spec.rootRotation.istiodDeployment",
        )
        .err(),
    );
    errors
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

/// The fields of an AWS Private CA at `at` (`spec.issuer.awsPca`, `spec.rootRotation.awsPca`).
fn check_aws_pca(a: &AwsPcaIssuerSpec, at: &str) -> Vec<FieldError> {
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
            format!("{at}.arn"),
            format!(
                "{:?} is not a certificate authority ARN (arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID)",
                a.arn
            ),
        ));
    }
    if well_formed && a.resolved_region().is_none() {
        errors.push(FieldError::new(
            format!("{at}.region"),
            "the ARN names no region: set region",
        ));
    }
    errors.extend(check_path_len(a.path_len, &format!("{at}.pathLen")).err());
    if let Some(url) = &a.endpoint_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        errors.push(FieldError::new(
            format!("{at}.endpointUrl"),
            format!("{url:?} is not an http:// or https:// URL"),
        ));
    }
    errors
}

fn check_secret_ref(r: &SecretRef, path: &str) -> Result<(), FieldError> {
    check_dns_subdomain(&r.name, &format!("{path}.name"))?;
    check_dns_label(&r.namespace, &format!("{path}.namespace"))
}

use meshtrust_ca::ClusterName;

fn is_dns_label(s: &str) -> bool {
    ClusterName::is_dns_label(s)
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
