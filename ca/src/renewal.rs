//! Does a cluster's intermediate need reissuing, and when should the controller look again?
//!
//! Modelled on cert-manager's certificate policies: a chain of small pure checks over
//! (bundle, spec, issuing roots, clock), the first violation wins and its PascalCase reason is
//! reused as condition reason, event reason and metric label.

use std::fmt;

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::bundle::{BundleFiles, BundleFormat};
use crate::cert::Certificate;
use crate::cluster::ClusterName;
use crate::error::{Error, Result};
use crate::fmt_time;
use crate::intermediate::IntermediateParams;
use crate::key::{KeyAlgorithm, KeyType, PrivateKey};
use crate::trust::TrustBundle;

/// When an intermediate is renewed, relative to its validity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RenewalPolicy {
    /// Renew this long before notAfter. A duration that is not shorter than the lifetime (or
    /// not positive) would renew at once and forever, so it falls back to [`Self::Default`],
    /// as cert-manager does with a renewBefore longer than the certificate's duration.
    Before(Duration),
    /// Renew this percentage of the lifetime before notAfter (cert-manager's
    /// `renewBeforePercentage`). Values outside 1..=99 fall back to [`Self::Default`]; build
    /// it with [`RenewalPolicy::before_percentage`] to have them refused instead.
    BeforePercentage(u8),
    /// Renew at two thirds of the lifetime (notAfter − lifetime/3), cert-manager's default.
    #[default]
    Default,
}

impl RenewalPolicy {
    /// `BeforePercentage(percent)`, refusing values outside 1..=99.
    pub fn before_percentage(percent: u8) -> Result<RenewalPolicy> {
        if (1..=99).contains(&percent) {
            Ok(RenewalPolicy::BeforePercentage(percent))
        } else {
            Err(Error::InvalidParameter {
                field: "renew before percentage",
                reason: format!("{percent} is not between 1 and 99 (e.g. 33)"),
            })
        }
    }

    /// The instant a certificate valid from `not_before` to `not_after` is due for renewal,
    /// truncated to the second (Kubernetes timestamps have no fraction). A certificate with
    /// no positive lifetime is due at its notAfter.
    pub fn renewal_time(
        &self,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> OffsetDateTime {
        let lifetime = not_after - not_before;
        if lifetime <= Duration::ZERO {
            return not_after;
        }
        let before = match *self {
            RenewalPolicy::Before(d) if d > Duration::ZERO && d < lifetime => d,
            RenewalPolicy::BeforePercentage(p) if (1..=99).contains(&p) => {
                lifetime * i32::from(p) / 100
            }
            _ => lifetime / 3,
        };
        let due = not_after - before;
        due.replace_nanosecond(0).unwrap_or(due)
    }
}

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

/// What the spec asks a cluster's intermediate to be. The subject compared is the one
/// [`IntermediateParams`] builds: O = `organization`, L = `cluster` (CN is fixed).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DesiredIntermediate {
    /// The cluster (subject L).
    pub cluster: ClusterName,
    /// Key type of the intermediate key.
    pub key_type: KeyType,
    /// basicConstraints pathLenConstraint.
    pub path_len: u8,
    /// Subject O.
    pub organization: String,
    /// The form of the `cacerts` Secret.
    pub format: BundleFormat,
}

impl DesiredIntermediate {
    /// The defaults of [`IntermediateParams::new`], in the istio form.
    pub fn new(cluster: ClusterName) -> DesiredIntermediate {
        DesiredIntermediate::from_params(&IntermediateParams::new(cluster), BundleFormat::Istio)
    }

    /// What `params` would issue, delivered in `format`.
    pub fn from_params(params: &IntermediateParams, format: BundleFormat) -> DesiredIntermediate {
        DesiredIntermediate {
            cluster: params.cluster.clone(),
            key_type: params.key_type,
            path_len: params.path_len,
            organization: params.organization.clone(),
            format,
        }
    }
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
    desired: &DesiredIntermediate,
    issuing_roots: &TrustBundle,
    policy: &RenewalPolicy,
    now: OffsetDateTime,
) -> Option<Reissue> {
    check(current, desired, issuing_roots, policy, now).err()
}

fn check(
    current: Option<&BundleFiles>,
    desired: &DesiredIntermediate,
    issuing_roots: &TrustBundle,
    policy: &RenewalPolicy,
    now: OffsetDateTime,
) -> Result<(), Reissue> {
    let c = &desired.cluster;
    let files = match current {
        Some(files) if !files.is_empty() => files,
        _ => {
            return Err(reissue(
                ReissueReason::DoesNotExist,
                format!("{c} has no cacerts bundle yet"),
            ));
        }
    };
    let (format, chain) = complete_bundle(files, desired)?;
    let (ca, tls_chain) = key_pair(files, format, c)?;
    let chain = chain.unwrap_or(tls_chain);
    let cert_file = format.cert_file();
    if !issuing_roots
        .roots()
        .iter()
        .any(|root| chains_to(&ca, &chain, root))
    {
        let roots: Vec<String> = issuing_roots
            .roots()
            .iter()
            .map(|r| format!("{} (sha256 {}…)", r.subject(), &r.fingerprint()[..23]))
            .collect();
        return Err(reissue(
            ReissueReason::IncorrectIssuer,
            format!(
                "{c}/{cert_file} ({}, issued by {}) does not chain to the mesh's issuing root {}",
                ca.subject(),
                ca.x509().issuer(),
                roots.join(" or ")
            ),
        ));
    }
    let changes = spec_changes(&ca, format, desired);
    if !changes.is_empty() {
        return Err(reissue(
            ReissueReason::SpecChanged,
            format!("{c}/{cert_file} {}", changes.join("; ")),
        ));
    }
    if now >= ca.not_after() {
        return Err(reissue(
            ReissueReason::Expired,
            format!("{c}/{cert_file} expired at {}", fmt_time(ca.not_after())),
        ));
    }
    let due = policy.renewal_time(ca.not_before(), ca.not_after());
    if now >= due {
        return Err(reissue(
            ReissueReason::Renewing,
            format!(
                "{c}/{cert_file} expires at {} and was due for renewal at {}",
                fmt_time(ca.not_after()),
                fmt_time(due)
            ),
        ));
    }
    Ok(())
}

fn reissue(reason: ReissueReason, message: String) -> Reissue {
    Reissue { reason, message }
}

/// MissingData: the form istiod will read (see [`BundleFormat::detect`]) must be complete,
/// and its chain and trust files readable. Returns the form and, in the istio form, the
/// certificates of `cert-chain.pem`.
fn complete_bundle(
    files: &BundleFiles,
    desired: &DesiredIntermediate,
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

/// SpecChanged: every difference between the CA certificate (and bundle form) and the spec.
fn spec_changes(
    ca: &Certificate,
    format: BundleFormat,
    desired: &DesiredIntermediate,
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

/// Whether `cert` leads to `root`: issued by it directly, or through issuers found in
/// `chain` (each link's signature checked), as a subordinate CA's chain does.
pub(crate) fn chains_to(cert: &Certificate, chain: &[Certificate], root: &Certificate) -> bool {
    let mut current = cert;
    for _ in 0..=chain.len() {
        if current == root || current.is_issued_by(root) {
            return true;
        }
        match chain
            .iter()
            .find(|c| *c != current && current.is_issued_by(c))
        {
            Some(issuer) => current = issuer,
            None => return false,
        }
    }
    false
}

/// When the controller should look at a cluster again: the renewal time of the CA
/// certificate in `current` (either form), or `None` when it cannot be read — then
/// [`reissue_reason`] has a reason already.
pub fn next_check(current: &BundleFiles, policy: &RenewalPolicy) -> Option<OffsetDateTime> {
    let format = BundleFormat::detect(current.names());
    let certs =
        Certificate::all_from_pem(format.cert_file(), current.get(format.cert_file())?).ok()?;
    let ca = certs.first()?;
    Some(policy.renewal_time(ca.not_before(), ca.not_after()))
}

/// How long to wait after failed attempts: `base · 2^(attempts − 1)`, at most `cap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after the first failure.
    pub base: Duration,
    /// The longest delay.
    pub cap: Duration,
}

impl Default for Backoff {
    /// 5 seconds, doubling up to 5 minutes.
    fn default() -> Self {
        Backoff {
            base: Duration::seconds(5),
            cap: Duration::minutes(5),
        }
    }
}

impl Backoff {
    /// The delay after `failed_attempts` consecutive failures: zero after none, then
    /// `base`, `2·base`, `4·base`, … up to `cap`, for any count without overflowing. A
    /// non-positive `base` or `cap` gives zero.
    pub fn delay(&self, failed_attempts: u32) -> Duration {
        let cap = self.cap.max(Duration::ZERO);
        if failed_attempts == 0 || self.base <= Duration::ZERO {
            return Duration::ZERO;
        }
        // 2^100 ns exceeds Duration::MAX, so a larger shift would be capped anyway.
        let shift = (failed_attempts - 1).min(100);
        match self.base.whole_nanoseconds().checked_mul(1i128 << shift) {
            Some(ns) if ns < cap.whole_nanoseconds() => {
                // Below `cap`, so both parts fit.
                Duration::new((ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as i32)
            }
            _ => cap,
        }
    }

    /// When to try again after the `failed_attempts`-th failure, which happened at
    /// `last_failure`.
    pub fn retry_at(&self, last_failure: OffsetDateTime, failed_attempts: u32) -> OffsetDateTime {
        last_failure.saturating_add(self.delay(failed_attempts))
    }
}
