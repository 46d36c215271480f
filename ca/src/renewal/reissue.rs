//! Must a cluster's intermediate be (re)issued, and why?
//!
//! Modelled on cert-manager's certificate policies: a chain of small pure checks over
//! (bundle, spec, issuing roots, clock), the first violation wins and its PascalCase reason is
//! reused as condition reason, event reason and metric label.

use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;

use super::RenewalPolicy;
use crate::bundle::{BundleFiles, BundleFormat};
use crate::cert::{Certificate, chains_to};
use crate::cluster::ClusterName;
use crate::error::Error;
use crate::fmt_time;
use crate::intermediate::IntermediateParams;
use crate::key::{KeyAlgorithm, KeyType, PrivateKey};
use crate::trust::TrustBundle;

/// Why an intermediate must be (re)issued. The variants are listed in the order they are
/// checked; the first that applies is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum ReissueReason {
    /// The cluster has no `cacerts` bundle.
    DoesNotExist,
    /// A file the bundle needs is absent, empty or holds no readable certificate.
    MissingData,
    /// The CA certificate or its key cannot be read, or the key does not match.
    InvalidKeyPair,
    /// The CA certificate does not chain to any of the roots the mesh issues from.
    IncorrectIssuer,
    /// Key type, path length, subject or bundle form differ from the spec.
    SpecChanged,
    /// The CA certificate has expired.
    Expired,
    /// The CA certificate has reached its renewal time.
    Renewing,
}

impl ReissueReason {
    /// Every reason, in check order (for registering metric labels).
    pub const ALL: [ReissueReason; 7] = [
        ReissueReason::DoesNotExist,
        ReissueReason::MissingData,
        ReissueReason::InvalidKeyPair,
        ReissueReason::IncorrectIssuer,
        ReissueReason::SpecChanged,
        ReissueReason::Expired,
        ReissueReason::Renewing,
    ];

    /// The PascalCase name, used as condition reason, event reason and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ReissueReason::DoesNotExist => "DoesNotExist",
            ReissueReason::MissingData => "MissingData",
            ReissueReason::InvalidKeyPair => "InvalidKeyPair",
            ReissueReason::IncorrectIssuer => "IncorrectIssuer",
            ReissueReason::SpecChanged => "SpecChanged",
            ReissueReason::Expired => "Expired",
            ReissueReason::Renewing => "Renewing",
        }
    }
}

impl fmt::Display for ReissueReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decision to reissue: the reason and a sentence naming the cluster and file at fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reissue {
    /// Why.
    pub reason: ReissueReason,
    /// What is wrong, e.g. `cluster1/ca-cert.pem has key type rsa-2048, the spec asks for
    /// ecdsa-p256`.
    pub message: String,
}

/// The first reason to reissue `current` (a cluster's `cacerts` files, `None` when it has
/// none), or `None` when it is fine at `now`. Checked in this order: DoesNotExist,
/// MissingData, InvalidKeyPair, IncorrectIssuer (the CA certificate, through the bundle's
/// chain, leads to no root of `issuing_roots`), SpecChanged, Expired, Renewing.
///
/// A complete bundle in the other form than `desired.format` is SpecChanged, not
/// MissingData. The trust file is only checked for being readable: which roots it holds is
/// the business of [`crate::plan_rotation`], and [`crate::verify_bundle`] checks the rest.
pub fn reissue_reason(
    current: Option<&BundleFiles>,
    desired: &IntermediateParams,
    issuing_roots: &TrustBundle,
    policy: &RenewalPolicy,
    now: OffsetDateTime,
) -> Option<Reissue> {
    check(current, desired, issuing_roots, policy, now).err()
}

fn check(
    current: Option<&BundleFiles>,
    desired: &IntermediateParams,
    issuing_roots: &TrustBundle,
    policy: &RenewalPolicy,
    now: OffsetDateTime,
) -> Result<(), Reissue> {
    let c = &desired.cluster;
    let files = existing(current, c)?;
    let (format, chain) = complete_bundle(files, desired)?;
    let (ca, tls_chain) = key_pair(files, format, c)?;
    let chain = chain.unwrap_or(tls_chain);
    let at = format!("{c}/{}", format.cert_file());
    correct_issuer(&ca, &chain, issuing_roots, &at)?;
    let changes = spec_changes(&ca, format, desired);
    if !changes.is_empty() {
        return Err(reissue(
            ReissueReason::SpecChanged,
            format!("{at} {}", changes.join("; ")),
        ));
    }
    not_due(&ca, policy, now, &at)
}

fn reissue(reason: ReissueReason, message: String) -> Reissue {
    Reissue { reason, message }
}

/// DoesNotExist: the cluster has a bundle with at least one file.
fn existing<'a>(
    current: Option<&'a BundleFiles>,
    c: &ClusterName,
) -> Result<&'a BundleFiles, Reissue> {
    match current {
        Some(files) if !files.is_empty() => Ok(files),
        _ => Err(reissue(
            ReissueReason::DoesNotExist,
            format!("{c} has no cacerts bundle yet"),
        )),
    }
}

/// MissingData: the form istiod will read (see [`BundleFormat::detect`]) must be complete,
/// and its chain and trust files readable. Returns the form and, in the istio form, the
/// certificates of `cert-chain.pem`.
fn complete_bundle(
    files: &BundleFiles,
    desired: &IntermediateParams,
) -> Result<(BundleFormat, Option<Vec<Certificate>>), Reissue> {
    let c = &desired.cluster;
    let format = BundleFormat::detect(files.names());
    let missing: Vec<&str> = format
        .file_names()
        .iter()
        .copied()
        .filter(|name| {
            files
                .get(name)
                .is_none_or(|b| b.iter().all(u8::is_ascii_whitespace))
        })
        .collect();
    if !missing.is_empty() {
        let message = if format == desired.format {
            format!(
                "{c}: cacerts lacks {} (absent or empty); istiod refuses a partial bundle",
                missing.join(", ")
            )
        } else {
            format!(
                "{c}: cacerts holds an incomplete {format} bundle (lacks {}), and the spec asks for the {} form ({})",
                missing.join(", "),
                desired.format,
                desired.format.file_names().join(", ")
            )
        };
        return Err(reissue(ReissueReason::MissingData, message));
    }
    let read = |name: &str| {
        Certificate::all_from_pem(name, files.get(name).unwrap_or_default())
            .map_err(|e| reissue(ReissueReason::MissingData, format!("{c}/{e}")))
    };
    read(format.trust_file())?;
    let chain = match format {
        BundleFormat::Istio => Some(read(format.chain_file())?),
        BundleFormat::Tls => None,
    };
    Ok((format, chain))
}

/// InvalidKeyPair: the CA certificate and key are readable and belong together. Returns
/// the CA certificate and every certificate of its file.
fn key_pair(
    files: &BundleFiles,
    format: BundleFormat,
    c: &ClusterName,
) -> Result<(Certificate, Vec<Certificate>), Reissue> {
    let invalid = |e: Error| reissue(ReissueReason::InvalidKeyPair, format!("{c}/{e}"));
    let (cert_file, key_file) = (format.cert_file(), format.key_file());
    let certs = Certificate::all_from_pem(cert_file, files.get(cert_file).unwrap_or_default())
        .map_err(invalid)?;
    let key =
        PrivateKey::from_pem(key_file, files.get(key_file).unwrap_or_default()).map_err(invalid)?;
    let ca = certs[0].clone();
    if key.public_key_raw() != ca.public_key_raw().as_slice() {
        return Err(invalid(Error::KeyMismatch {
            key: key_file.to_string(),
            cert: cert_file.to_string(),
        }));
    }
    Ok((ca, certs))
}

/// IncorrectIssuer: the CA certificate (`at` names its file), through `chain`, leads to one
/// of the issuing roots.
fn correct_issuer(
    ca: &Certificate,
    chain: &[Certificate],
    issuing_roots: &TrustBundle,
    at: &str,
) -> Result<(), Reissue> {
    if issuing_roots
        .roots()
        .iter()
        .any(|root| chains_to(ca, chain, root))
    {
        return Ok(());
    }
    let roots: Vec<String> = issuing_roots
        .roots()
        .iter()
        .map(|r| format!("{} (sha256 {}…)", r.subject(), &r.fingerprint()[..23]))
        .collect();
    Err(reissue(
        ReissueReason::IncorrectIssuer,
        format!(
            "{at} ({}, issued by {}) does not chain to the mesh's issuing root {}",
            ca.subject(),
            ca.x509().issuer(),
            roots.join(" or ")
        ),
    ))
}

/// SpecChanged: every difference between the CA certificate (and bundle form) and the spec.
fn spec_changes(
    ca: &Certificate,
    format: BundleFormat,
    desired: &IntermediateParams,
) -> Vec<String> {
    let mut changes = Vec::new();
    let key = ca.key_algorithm();
    if key != key_algorithm(desired.key_type) {
        let held = KeyType::ALL
            .into_iter()
            .find(|k| key_algorithm(*k) == key)
            .map_or_else(|| key.to_string(), |k| k.as_str().to_string());
        changes.push(format!(
            "has key type {held}, the spec asks for {}",
            desired.key_type
        ));
    }
    if ca.path_len() != Some(u32::from(desired.path_len)) {
        let held = ca.path_len().map_or("none".to_string(), |n| n.to_string());
        changes.push(format!(
            "has pathLen {held}, the spec asks for {}",
            desired.path_len
        ));
    }
    let x = ca.x509();
    let organizations: Vec<&str> = x
        .subject()
        .iter_organization()
        .filter_map(|a| a.as_str().ok())
        .collect();
    if organizations != [desired.organization.as_str()] {
        changes.push(format!(
            "has organization (O) [{}], the spec asks for {}",
            organizations.join(", "),
            desired.organization
        ));
    }
    let localities: Vec<&str> = x
        .subject()
        .iter_locality()
        .filter_map(|a| a.as_str().ok())
        .collect();
    if localities != [desired.cluster.as_str()] {
        changes.push(format!(
            "names cluster (L) [{}], the spec asks for {}",
            localities.join(", "),
            desired.cluster
        ));
    }
    if format != desired.format {
        changes.push(format!(
            "is delivered in the {format} form, the spec asks for the {} form",
            desired.format
        ));
    }
    changes
}

fn key_algorithm(key_type: KeyType) -> KeyAlgorithm {
    match key_type {
        KeyType::EcdsaP256 => KeyAlgorithm::Ecdsa {
            curve: "P-256".to_string(),
        },
        KeyType::EcdsaP384 => KeyAlgorithm::Ecdsa {
            curve: "P-384".to_string(),
        },
        KeyType::Rsa2048 => KeyAlgorithm::Rsa { bits: 2048 },
        KeyType::Rsa3072 => KeyAlgorithm::Rsa { bits: 3072 },
        KeyType::Rsa4096 => KeyAlgorithm::Rsa { bits: 4096 },
    }
}

/// Expired, then Renewing: the CA certificate (`at` names its file) is neither expired nor
/// due for renewal at `now`.
fn not_due(
    ca: &Certificate,
    policy: &RenewalPolicy,
    now: OffsetDateTime,
    at: &str,
) -> Result<(), Reissue> {
    if now >= ca.not_after() {
        return Err(reissue(
            ReissueReason::Expired,
            format!("{at} expired at {}", fmt_time(ca.not_after())),
        ));
    }
    let due = policy.renewal_time(ca.not_before(), ca.not_after());
    if now >= due {
        return Err(reissue(
            ReissueReason::Renewing,
            format!(
                "{at} expires at {} and was due for renewal at {}",
                fmt_time(ca.not_after()),
                fmt_time(due)
            ),
        ));
    }
    Ok(())
}
