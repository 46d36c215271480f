//! Would istiod accept this `cacerts` bundle, and would the workload certificates it signs
//! validate? Every problem found is reported, not just the first.

mod chain;
mod workload;

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::bundle::{BundleFiles, BundleFormat};
use crate::cert::{CertInfo, Certificate};
use crate::error::Error;
use crate::fmt_time;
use crate::key::PrivateKey;
use chain::check_chain;
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

pub(crate) struct Names {
    pub(crate) cert: &'static str,
    pub(crate) key: &'static str,
    pub(crate) chain: &'static str,
    pub(crate) roots: &'static str,
}

pub(crate) struct Checker {
    pub(crate) findings: Vec<Finding>,
    pub(crate) opts: VerifyOptions,
}

impl Checker {
    pub(crate) fn push(
        &mut self,
        severity: Severity,
        problem: Problem,
        file: &str,
        message: String,
    ) {
        self.findings.push(Finding {
            severity,
            problem,
            file: file.to_string(),
            message,
        });
    }

    pub(crate) fn error(&mut self, problem: Problem, file: &str, message: String) {
        self.push(Severity::Error, problem, file, message);
    }

    pub(crate) fn warn(&mut self, problem: Problem, file: &str, message: String) {
        self.push(Severity::Warning, problem, file, message);
    }

    pub(crate) fn has(&self, problem: Problem) -> bool {
        self.findings.iter().any(|f| f.problem == problem)
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    pub(crate) fn certs(&mut self, files: &BundleFiles, name: &str) -> Option<Vec<Certificate>> {
        let bytes = files.get(name)?;
        match Certificate::all_from_pem(name, bytes) {
            Ok(c) => Some(c),
            Err(e) => {
                self.error(
                    Problem::MalformedPem,
                    name,
                    format!("{e}; regenerate the bundle with `meshtrust cacerts`"),
                );
                None
            }
        }
    }

    /// Expiry, not-yet-valid and soon-to-expire checks for one certificate.
    pub(crate) fn validity(&mut self, file: &str, what: &str, cert: &Certificate, fix: &str) {
        let now = self.opts.now;
        if now > cert.not_after() {
            self.error(
                Problem::Expired,
                file,
                format!("{what} expired at {}: {fix}", fmt_time(cert.not_after())),
            );
        } else if now < cert.not_before() {
            self.error(
                Problem::NotYetValid,
                file,
                format!(
                    "{what} is not valid before {}: check this machine's clock, or wait",
                    fmt_time(cert.not_before())
                ),
            );
        } else if cert.not_after() - now < self.opts.warn_within {
            self.warn(
                Problem::ExpiresSoon,
                file,
                format!(
                    "{what} expires at {} (in {} days): {fix}",
                    fmt_time(cert.not_after()),
                    (cert.not_after() - now).whole_days()
                ),
            );
        }
    }

    pub(crate) fn eku(&mut self, file: &str, what: &str, cert: &Certificate) {
        if let Some(eku) = cert.eku_without_server_auth() {
            self.error(
                Problem::ExtendedKeyUsage,
                file,
                format!(
                    "{what} has extendedKeyUsage [{}] without serverAuth: istiod checks its CA with Go's x509.Verify, which then rejects it; reissue the CA without extendedKeyUsage",
                    eku.join(", ")
                ),
            );
        }
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
    let names = match format {
        BundleFormat::Istio => Names {
            cert: "ca-cert.pem",
            key: "ca-key.pem",
            chain: "cert-chain.pem",
            roots: "root-cert.pem",
        },
        BundleFormat::Tls => Names {
            cert: "tls.crt",
            key: "tls.key",
            chain: "tls.crt",
            roots: "ca.crt",
        },
    };
    let mut c = Checker {
        findings: Vec::new(),
        opts: *opts,
    };
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
            "no cacerts files found: expected ca-cert.pem, ca-key.pem, cert-chain.pem and root-cert.pem (or tls.crt, tls.key and ca.crt); create them with `meshtrust cacerts`".to_string(),
        );
        report.findings = c.findings;
        return report;
    }
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
    if let Some(roots) = &roots {
        report.root_fingerprints = roots.iter().map(Certificate::fingerprint).collect();
    }

    let reissue = "reissue it with `meshtrust cacerts --force`";
    if let Some(ca) = &ca {
        report.ca_cert = Some(ca.info());
        let alg = ca.key_algorithm();
        if !alg.accepted_by_istiod() && !c.has(Problem::UnsupportedKey) {
            c.error(
                Problem::UnsupportedKey,
                names.cert,
                format!("{} has an {alg} public key; istiod accepts RSA or ECDSA CA keys only: reissue with --key-type ecdsa-p256", names.cert),
            );
        }
        if !ca.is_ca() {
            c.error(
                Problem::NotCa,
                names.cert,
                format!("{} is not a CA certificate (basicConstraints CA:TRUE is missing): istiod cannot sign workload certificates with it; {reissue}", names.cert),
            );
        } else if !ca.may_sign_certificates() {
            c.error(
                Problem::NotCa,
                names.cert,
                format!("{} is not a CA allowed to sign certificates (keyUsage lacks keyCertSign); {reissue}", names.cert),
            );
        }
        c.validity(names.cert, names.cert, ca, reissue);
        if ca.signed_with_sha1() {
            c.error(
                Problem::WeakSignature,
                names.cert,
                format!("{} is signed with SHA-1 ({}), which Go's x509 (istiod) and rustls refuse; {reissue}", names.cert, ca.signature_algorithm()),
            );
        }
        c.eku(names.cert, names.cert, ca);
        if let Some(key) = &key
            && key.public_key_raw() != ca.public_key_raw().as_slice()
        {
            let e = Error::KeyMismatch {
                key: names.key.to_string(),
                cert: names.cert.to_string(),
            };
            c.error(Problem::KeyMismatch, names.key, e.to_string());
        }
    }

    if let (Some(ca), Some(chain), Some(roots)) = (&ca, &chain, &roots) {
        check_chain(&mut c, &names, format, ca, chain, roots, &mut report);
    }

    if !c.has_errors()
        && let (Some(ca), Some(key), Some(chain), Some(roots)) = (&ca, &key, &chain, &roots)
        && let Err(e) = validate_workload_path(ca, key, chain, roots, opts.now)
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

    c.findings.sort_by_key(|f| f.severity);
    report.findings = c.findings;
    report
}
