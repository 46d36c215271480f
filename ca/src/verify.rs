//! Would istiod accept this `cacerts` bundle, and would the workload certificates it signs
//! validate? Every problem found is reported, not just the first.

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, SanType};
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::bundle::{BundleFiles, BundleFormat};
use crate::cert::{CertInfo, Certificate};
use crate::error::Error;
use crate::fmt_time;
use crate::key::PrivateKey;

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
        self.findings.iter().filter(|f| f.severity == Severity::Warning)
    }
}

struct Names {
    cert: &'static str,
    key: &'static str,
    chain: &'static str,
    roots: &'static str,
}

struct Checker {
    findings: Vec<Finding>,
    opts: VerifyOptions,
}

impl Checker {
    fn push(&mut self, severity: Severity, problem: Problem, file: &str, message: String) {
        self.findings.push(Finding {
            severity,
            problem,
            file: file.to_string(),
            message,
        });
    }

    fn error(&mut self, problem: Problem, file: &str, message: String) {
        self.push(Severity::Error, problem, file, message);
    }

    fn warn(&mut self, problem: Problem, file: &str, message: String) {
        self.push(Severity::Warning, problem, file, message);
    }

    fn has(&self, problem: Problem) -> bool {
        self.findings.iter().any(|f| f.problem == problem)
    }

    fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    fn certs(&mut self, files: &BundleFiles, name: &str) -> Option<Vec<Certificate>> {
        let bytes = files.get(name)?;
        match Certificate::all_from_pem(name, bytes) {
            Ok(c) => Some(c),
            Err(e) => {
                self.error(Problem::MalformedPem, name, format!("{e}; regenerate the bundle with `meshtrust cacerts`"));
                None
            }
        }
    }

    /// Expiry, not-yet-valid and soon-to-expire checks for one certificate.
    fn validity(&mut self, file: &str, what: &str, cert: &Certificate, fix: &str) {
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

    fn eku(&mut self, file: &str, what: &str, cert: &Certificate) {
        if let Some(eku) = cert.extended_key_usage()
            && !eku.iter().any(|p| p == "serverAuth" || p == "anyExtendedKeyUsage")
        {
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

fn describe(file: &str, index: usize, cert: &Certificate) -> String {
    format!("{file} certificate #{index} ({})", cert.subject())
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
    let key = files.get(names.key).and_then(|bytes| match PrivateKey::from_pem(names.key, bytes) {
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
            format!("rustls-webpki rejects a workload certificate signed by {}: {e}", names.cert),
        );
    }

    c.findings.sort_by_key(|f| f.severity);
    report.findings = c.findings;
    report
}

fn check_chain(
    c: &mut Checker,
    names: &Names,
    format: BundleFormat,
    ca: &Certificate,
    chain: &[Certificate],
    roots: &[Certificate],
    report: &mut BundleReport,
) {
    if format == BundleFormat::Istio && chain.first() != Some(ca) {
        let first = chain.first().map(Certificate::subject).unwrap_or_default();
        c.error(
            Problem::ChainOrder,
            names.chain,
            format!(
                "{} is out of order: it must start with {} (the intermediate), but starts with {first}; workloads receive this chain verbatim — write the intermediate first, then each issuer up to the root",
                names.chain, names.cert
            ),
        );
        return;
    }
    for (i, pair) in chain.windows(2).enumerate() {
        if !pair[0].is_issued_by(&pair[1]) {
            c.error(
                Problem::ChainOrder,
                names.chain,
                format!(
                    "{} is out of order or broken: {} is not issued by {}; list each certificate right before its issuer",
                    names.chain,
                    describe(names.chain, i + 1, &pair[0]),
                    describe(names.chain, i + 2, &pair[1])
                ),
            );
            return;
        }
    }
    // The path a workload certificate takes: its issuer (the CA) first, up to the anchor.
    let mut path: Vec<&Certificate> = chain.iter().collect();
    let last = *path.last().expect("chain starts with the CA");
    let anchor = if roots.contains(last) {
        last.clone()
    } else if let Some(root) = roots.iter().find(|r| last.is_issued_by(r)) {
        path.push(root);
        root.clone()
    } else {
        let held: Vec<String> = roots.iter().map(Certificate::subject).collect();
        c.error(
            Problem::UntrustedChain,
            names.roots,
            format!(
                "{} does not chain to any root in {}: the chain ends at {} (issued by {}), while {} holds [{}]; put the root that issued the chain into {}, or reissue the intermediate from your root",
                names.cert,
                names.roots,
                last.subject(),
                last.x509().issuer(),
                names.roots,
                held.join("; "),
                names.roots
            ),
        );
        return;
    };
    report.anchor_fingerprint = Some(anchor.fingerprint());

    for (k, cert) in path.iter().enumerate().skip(1) {
        if !cert.is_ca() {
            c.error(
                Problem::NotCa,
                names.chain,
                format!("{} is not a CA certificate but issues {}; the chain is unusable", cert.subject(), path[k - 1].subject()),
            );
        }
        if let Some(limit) = cert.path_len()
            && k as u32 > limit
        {
            c.error(
                Problem::PathLength,
                names.chain,
                format!(
                    "path length constraint violated: {} has pathlen:{limit} but sits {k} CA level(s) above the workload certificates {} signs; istiod starts, yet every workload certificate fails validation — reissue the chain so that each pathlen allows the CAs below it",
                    cert.subject(),
                    names.cert
                ),
            );
        }
        if k + 1 < path.len() || !cert.is_self_signed() {
            if cert.signed_with_sha1() {
                c.error(
                    Problem::WeakSignature,
                    names.chain,
                    format!("{} is signed with SHA-1, which Go's x509 (istiod) and rustls refuse; reissue it", cert.subject()),
                );
            }
        }
        c.eku(names.chain, &cert.subject(), cert);
    }
    for pair in path.windows(2) {
        let (child, issuer) = (pair[0], pair[1]);
        if child.not_after() > issuer.not_after() {
            let file = if child == ca { names.cert } else { names.chain };
            c.warn(
                Problem::OutlivesIssuer,
                file,
                format!(
                    "{} (expires {}) outlives its issuer {} (expires {}): it stops validating when the issuer expires; reissue it within the issuer's lifetime",
                    if child == ca { names.cert.to_string() } else { child.subject() },
                    fmt_time(child.not_after()),
                    issuer.subject(),
                    fmt_time(issuer.not_after())
                ),
            );
        }
    }
    for (i, root) in roots.iter().enumerate() {
        let what = format!("{} root #{} ({})", names.roots, i + 1, root.subject());
        if *root == anchor {
            c.validity(
                names.roots,
                &what,
                root,
                "create a new root and rotate to it (docs/rotation.md)",
            );
        } else if c.opts.now > root.not_after() {
            c.warn(
                Problem::Expired,
                names.roots,
                format!("{what} expired at {}; remove it from the trust bundle", fmt_time(root.not_after())),
            );
        }
    }
}

/// Signs a throwaway workload certificate with the bundle's key and validates it with
/// rustls-webpki through the chain to the roots: the check that the bundle works for the
/// certificates istiod will actually issue.
fn validate_workload_path(
    ca: &Certificate,
    key: &PrivateKey,
    chain: &[Certificate],
    roots: &[Certificate],
    now: OffsetDateTime,
) -> Result<(), String> {
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "meshtrust verify");
    params.subject_alt_names = vec![SanType::URI(
        "spiffe://cluster.local/ns/meshtrust/sa/verify"
            .try_into()
            .map_err(|e: rcgen::Error| e.to_string())?,
    )];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.not_before = (now - Duration::minutes(1)).max(ca.not_before());
    params.not_after = (now + Duration::hours(1)).min(ca.not_after());
    params.use_authority_key_identifier_extension = true;
    let issuer = Issuer::from_ca_cert_der(ca.der(), key.key_pair()).map_err(|e| e.to_string())?;
    let leaf = params
        .signed_by(&leaf_key, &issuer)
        .map_err(|e| format!("could not sign a test certificate: {e}"))?;

    let anchors = roots
        .iter()
        .filter_map(|r| webpki::anchor_from_trusted_cert(r.der()).ok())
        .map(|a| a.to_owned())
        .collect::<Vec<_>>();
    let intermediates: Vec<CertificateDer<'_>> = chain.iter().map(|c| c.der().clone()).collect();
    let leaf_der = leaf.der().clone();
    let end_entity = webpki::EndEntityCert::try_from(&leaf_der).map_err(|e| format!("{e:?}"))?;
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(now.unix_timestamp()).unwrap_or(0),
    ));
    end_entity
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            time,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}
