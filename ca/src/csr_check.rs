//! What a signing service reads from a certificate signing request before it signs: the
//! request's facts, its self-signature checked ([`Csr::inspect`]), and a pure comparison
//! with the parameters the cluster is entitled to ([`csr_matches`]).

use std::collections::BTreeSet;

use serde::Serialize;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::error::X509Error;
use x509_parser::extensions::{GeneralName, ParsedExtension, X509Extension};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

use crate::error::{Error, Result};
use crate::intermediate::{Csr, IntermediateParams};
use crate::key::{KeyAlgorithm, KeyType};

/// What a certificate signing request asks for, read after its self-signature verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CsrInfo {
    /// Algorithm and size of the public key to be certified.
    pub key: KeyAlgorithm,
    /// Subject O (the first one, if there are several).
    pub organization: Option<String>,
    /// Subject CN (the first one, if there are several).
    pub common_name: Option<String>,
    /// Subject L (the first one, if there are several).
    pub locality: Option<String>,
    /// Every other subject attribute (`OU=…`, `C=…`, a second `O=…`), as `TYPE=value`.
    pub other_subject_attributes: Vec<String>,
    /// The whole subject, formatted as [`crate::Certificate::subject`] formats it.
    pub subject: String,
    /// Requested DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// Every other requested subject alternative name (`URI:…`, `IP:…`, `email:…`).
    pub other_sans: Vec<String>,
    /// Requested extensions other than subjectAltName, by name (`keyUsage`,
    /// `basicConstraints`, …) or OID. A CA decides these itself
    /// ([`crate::RootCa::sign_intermediate`] overrides them), so they are informational.
    pub requested_extensions: Vec<String>,
}

impl Csr {
    /// Parses the request and verifies its self-signature: a request whose signature does
    /// not verify with the public key it carries was altered, or was not made by the holder
    /// of that key, and is refused.
    pub fn inspect(&self) -> Result<CsrInfo> {
        let csr = self.parsed()?;
        self.verify_once(&csr)?;
        let info = &csr.certification_request_info;
        let mut out = CsrInfo {
            key: KeyAlgorithm::from_spki(&info.subject_pki),
            organization: None,
            common_name: None,
            locality: None,
            other_subject_attributes: Vec::new(),
            subject: info.subject.to_string(),
            dns_names: Vec::new(),
            other_sans: Vec::new(),
            requested_extensions: Vec::new(),
        };
        read_subject(&info.subject, &mut out);
        for ext in requested_extensions(&csr) {
            match ext.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        match name {
                            GeneralName::DNSName(d) => out.dns_names.push(d.to_string()),
                            other => out.other_sans.push(crate::cert::general_name(other)),
                        }
                    }
                }
                _ => out.requested_extensions.push(oid_name(&ext.oid)),
            }
        }
        Ok(out)
    }
}

pub(crate) fn signature_error(csr: &X509CertificationRequest<'_>, e: X509Error) -> Error {
    let reason = match e {
        X509Error::SignatureUnsupportedAlgorithm => format!(
            "the CSR is signed with {}, which meshtrust cannot verify; sign it with ECDSA (SHA-256/384) or RSA PKCS#1 v1.5",
            oid_name(&csr.signature_algorithm.algorithm)
        ),
        _ => "the CSR's signature does not verify with its own public key: it was altered or signed with another key".to_string(),
    };
    Error::InvalidParameter {
        field: "certificate signing request",
        reason,
    }
}

/// The extensions of the request's extensionRequest attribute, with their OIDs.
fn requested_extensions<'a>(
    csr: &'a X509CertificationRequest<'a>,
) -> impl Iterator<Item = &'a X509Extension<'a>> {
    csr.certification_request_info
        .iter_attributes()
        .filter_map(|attr| match attr.parsed_attribute() {
            ParsedCriAttribute::ExtensionRequest(r) => Some(r.extensions.iter()),
            _ => None,
        })
        .flatten()
}

fn read_subject(subject: &X509Name<'_>, out: &mut CsrInfo) {
    for attr in subject.iter_attributes() {
        let value = attr.as_str().ok().map(str::to_string);
        let slot = match attr.attr_type().to_id_string().as_str() {
            "2.5.4.10" => &mut out.organization,
            "2.5.4.3" => &mut out.common_name,
            "2.5.4.7" => &mut out.locality,
            _ => {
                out.other_subject_attributes.push(render_attribute(attr));
                continue;
            }
        };
        if slot.is_none() && value.is_some() {
            *slot = value;
        } else {
            out.other_subject_attributes.push(render_attribute(attr));
        }
    }
}

fn render_attribute(attr: &AttributeTypeAndValue<'_>) -> String {
    let oid = attr.attr_type();
    let name = match oid.to_id_string().as_str() {
        "2.5.4.3" => "CN".to_string(),
        "2.5.4.10" => "O".to_string(),
        "2.5.4.11" => "OU".to_string(),
        "2.5.4.7" => "L".to_string(),
        "2.5.4.8" => "ST".to_string(),
        "2.5.4.6" => "C".to_string(),
        _ => oid_name(oid),
    };
    match attr.as_str() {
        Ok(v) => format!("{name}={v}"),
        Err(_) => format!("{name}=<not a string>"),
    }
}

fn oid_name(oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
        .map(str::to_string)
        .unwrap_or_else(|_| oid.to_id_string())
}

impl KeyAlgorithm {
    /// The meshtrust key type of this algorithm, if it is one meshtrust generates
    /// (ECDSA P-256/P-384, RSA 2048/3072/4096).
    pub fn key_type(&self) -> Option<KeyType> {
        match self {
            KeyAlgorithm::Ecdsa { curve } => match curve.as_str() {
                "P-256" => Some(KeyType::EcdsaP256),
                "P-384" => Some(KeyType::EcdsaP384),
                _ => None,
            },
            KeyAlgorithm::Rsa { bits: 2048 } => Some(KeyType::Rsa2048),
            KeyAlgorithm::Rsa { bits: 3072 } => Some(KeyType::Rsa3072),
            KeyAlgorithm::Rsa { bits: 4096 } => Some(KeyType::Rsa4096),
            _ => None,
        }
    }
}

/// Every way a request differs from what `params` entitle the cluster to, one sentence each;
/// empty when the request may be signed. Checked: the key type is one of `allowed`; subject
/// O, CN and L equal `params.organization`, `params.common_name` and `params.cluster`, with
/// no other subject attributes; the DNS names equal `params.dns_names` as a set (ignoring
/// case); no other kind of subject alternative name.
pub fn csr_matches(
    info: &CsrInfo,
    params: &IntermediateParams,
    allowed: &[KeyType],
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(m) = key_mismatch(&info.key, allowed) {
        out.push(m);
    }
    let expected = [
        ("O", &info.organization, params.organization.as_str()),
        ("CN", &info.common_name, params.common_name.as_str()),
        ("L", &info.locality, params.cluster.as_str()),
    ];
    for (attr, got, want) in expected {
        match got {
            Some(got) if got == want => {}
            Some(got) => out.push(format!(
                "the CSR's subject {attr} is `{got}`, but the parameters require `{want}`"
            )),
            None => out.push(format!(
                "the CSR's subject has no {attr}, but the parameters require `{want}`"
            )),
        }
    }
    for attr in &info.other_subject_attributes {
        out.push(format!(
            "the CSR's subject carries `{attr}`, which the parameters do not set"
        ));
    }
    out.extend(dns_mismatches(&info.dns_names, &params.dns_names));
    for san in &info.other_sans {
        out.push(format!(
            "the CSR asks for the SAN `{san}`; an intermediate carries DNS names only"
        ));
    }
    out
}

fn key_mismatch(key: &KeyAlgorithm, allowed: &[KeyType]) -> Option<String> {
    if key.key_type().is_some_and(|k| allowed.contains(&k)) {
        return None;
    }
    let names: Vec<&str> = allowed.iter().map(|k| k.as_str()).collect();
    Some(if names.is_empty() {
        format!("the CSR's key is {key}, but no key types are allowed")
    } else {
        format!(
            "the CSR's key is {key}, but only {} keys are allowed",
            names.join(", ")
        )
    })
}

fn dns_mismatches(got: &[String], want: &[String]) -> Vec<String> {
    let lower = |names: &[String]| -> BTreeSet<String> {
        names.iter().map(|n| n.to_ascii_lowercase()).collect()
    };
    let (got, want) = (lower(got), lower(want));
    let extra = got
        .difference(&want)
        .map(|d| format!("the CSR asks for the DNS name `{d}`, which the parameters do not list"));
    let missing = want
        .difference(&got)
        .map(|d| format!("the CSR lacks the DNS name `{d}`, which the parameters require"));
    extra.chain(missing).collect()
}

#[cfg(test)]
#[path = "csr_check_tests.rs"]
mod tests;
