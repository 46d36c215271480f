//! Would istiod accept this `cacerts` bundle, and would the workload certificates it signs
//! validate? Every problem found is reported, not just the first.

mod ca_cert;
mod chain;
mod checker;
mod workload;

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::bundle::{BundleFiles, BundleFormat};
use crate::cert::{CertInfo, Certificate};
use crate::error::Error;
use crate::key::PrivateKey;
use ca_cert::{check_ca_cert, check_key_pair};
use chain::check_chain;
use checker::{Checker, Names};
use workload::validate_workload_path;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// istiod would refuse the bundle, or workloads would fail.
    Error,
    /// Works now, needs attention.
    Warning,
}

/// The kind of problem, as a stable PascalCase code for scripts and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum Problem {
    /// A file of the bundle is absent (a partial bundle is fatal to istiod).
    MissingFile,
    /// A file is not the PEM it should be.
    MalformedPem,
    /// A key type istiod refuses (only RSA and ECDSA are accepted).
    UnsupportedKey,
    /// The private key does not belong to the CA certificate.
    KeyMismatch,
    /// A certificate that must sign is not a CA, or may not sign certificates.
    NotCa,
    /// An extendedKeyUsage on a CA that Go's x509 verification rejects.
    ExtendedKeyUsage,
    /// A certificate has expired.
    Expired,
    /// A certificate is not valid yet.
    NotYetValid,
    /// A certificate expires within the warning threshold.
    ExpiresSoon,
    /// A certificate outlives its issuer.
    OutlivesIssuer,
    /// A SHA-1 signature.
    WeakSignature,
    /// `cert-chain.pem` is not intermediate-first, each certificate followed by its issuer.
    ChainOrder,
    /// The chain does not lead to a root of the trust bundle.
    UntrustedChain,
    /// A pathLenConstraint forbids the chain that workload certificates would need.
    PathLength,
    /// rustls-webpki rejected a workload certificate signed by the bundle.
    PathValidation,
}

/// One problem found in a bundle.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// Stable code.
    pub problem: Problem,
    /// The file at fault.
    pub file: String,
    /// What is wrong and what to do.
    pub message: String,
}

/// When to check, and how early to warn about expiry.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// The instant to validate at.
    pub now: OffsetDateTime,
    /// Warn when a certificate expires within this window.
    pub warn_within: Duration,
}

impl VerifyOptions {
    /// Validate at `now`, warning 30 days ahead.
    pub fn at(now: OffsetDateTime) -> VerifyOptions {
        VerifyOptions {
            now,
            warn_within: Duration::days(30),
        }
    }

    /// Sets the expiry warning window.
    pub fn warn_within(mut self, window: Duration) -> VerifyOptions {
        self.warn_within = window;
        self
    }
}

/// The result of checking one bundle.
#[derive(Clone, Debug, Serialize)]
pub struct BundleReport {
    /// Which layout was found.
    pub format: BundleFormat,
    /// Every problem, errors first.
    pub findings: Vec<Finding>,
    /// The CA certificate, when it could be read.
    pub ca_cert: Option<CertInfo>,
    /// SHA-256 fingerprints of the roots in the trust bundle.
    pub root_fingerprints: Vec<String>,
    /// Fingerprint of the root the chain leads to, when it does.
    pub anchor_fingerprint: Option<String>,
}

impl BundleReport {
    /// istiod would load it and the workload certificates it signs would validate.
    pub fn accepted(&self) -> bool {
        !self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    /// Only the warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
    }
}

/// Checks a bundle the way istiod loads it, and then the way workloads use it.
///
/// istiod's own acceptance (all files present; key matches; RSA or ECDSA; CA certificate;
/// Go `x509.Verify` of the CA against `root-cert.pem` via `cert-chain.pem`) is checked first,
/// then what breaks workloads although istiod starts: chain order, path length, SHA-1,
/// expiry. Finally a throwaway workload certificate is signed with the bundle's key and
/// path-validated by rustls-webpki as an independent check.
pub fn verify_bundle(files: &BundleFiles, opts: &VerifyOptions) -> BundleReport {
    let format = BundleFormat::detect(files.names());
    let names = Names::of(format);
    let mut c = Checker::new(*opts);
    let mut report = BundleReport {
        format,
        findings: Vec::new(),
        ca_cert: None,
        root_fingerprints: Vec::new(),
        anchor_fingerprint: None,
    };

    if files.is_empty() {
        c.error(
            Problem::MissingFile,
            "",
            "no cacerts files found: expected ca-cert.pem, ca-key.pem, cert-chain.pem and root-cert.pem (or tls.crt, tls.key and ca.crt)".to_string(),
        );
        report.findings = c.findings;
        return report;
    }
    check_files_present(&mut c, files, format);
    let parts = read_parts(&mut c, files, format, &names);
    if let Some(roots) = &parts.roots {
        report.root_fingerprints = roots.iter().map(Certificate::fingerprint).collect();
    }
    if let Some(ca) = &parts.ca {
        report.ca_cert = Some(ca.info());
        check_ca_cert(&mut c, &names, ca);
        check_key_pair(&mut c, &names, ca, parts.key.as_ref());
    }
    if let (Some(ca), Some(chain), Some(roots)) = (&parts.ca, &parts.chain, &parts.roots) {
        check_chain(&mut c, &names, format, ca, chain, roots, &mut report);
    }
    check_workload(&mut c, &names, &parts);

    c.findings.sort_by_key(|f| f.severity);
    report.findings = c.findings;
    report
}

/// What could be read from the files of a bundle.
struct Parts {
    /// The first certificate of the CA certificate file.
    ca: Option<Certificate>,
    /// The chain from the CA up (in the tls layout, the CA certificate file itself).
    chain: Option<Vec<Certificate>>,
    roots: Option<Vec<Certificate>>,
    key: Option<PrivateKey>,
}

/// Every file of the layout is there: istiod refuses a partial bundle.
fn check_files_present(c: &mut Checker, files: &BundleFiles, format: BundleFormat) {
    for name in format.file_names() {
        if files.get(name).is_none() {
            c.error(
                Problem::MissingFile,
                name,
                format!(
                    "{name} is missing: istiod refuses a partial cacerts bundle (\"incomplete signing CA bundle\") and will not start; provide all of {}",
                    format.file_names().join(", ")
                ),
            );
        }
    }
}

/// Parses the certificates and the key, reporting what cannot be read.
fn read_parts(c: &mut Checker, files: &BundleFiles, format: BundleFormat, names: &Names) -> Parts {
    let ca_file_certs = c.certs(files, names.cert);
    let ca = ca_file_certs.as_ref().and_then(|v| v.first().cloned());
    let roots = c.certs(files, names.roots);
    let chain = match format {
        BundleFormat::Istio => c.certs(files, names.chain),
        BundleFormat::Tls => ca_file_certs.clone(),
    };
    let key = files
        .get(names.key)
        .and_then(|bytes| match PrivateKey::from_pem(names.key, bytes) {
            Ok(k) => Some(k),
            Err(e @ Error::UnsupportedKey { .. }) => {
                c.error(Problem::UnsupportedKey, names.key, e.to_string());
                None
            }
            Err(e) => {
                c.error(Problem::MalformedPem, names.key, e.to_string());
                None
            }
        });
    Parts {
        ca,
        chain,
        roots,
        key,
    }
}

/// The independent check, once nothing else is wrong: a workload certificate signed with
/// the key validates through the chain to the roots.
fn check_workload(c: &mut Checker, names: &Names, parts: &Parts) {
    let Parts {
        ca,
        chain,
        roots,
        key,
    } = parts;
    if !c.has_errors()
        && let (Some(ca), Some(key), Some(chain), Some(roots)) = (ca, key, chain, roots)
        && let Err(e) = validate_workload_path(ca, key, chain, roots, c.opts.now)
    {
        c.error(
            Problem::PathValidation,
            names.cert,
            format!(
                "rustls-webpki rejects a workload certificate signed by {}: {e}",
                names.cert
            ),
        );
    }
}
