//! Collecting findings: the file names of a bundle layout, and the checks shared by every
//! certificate of a bundle.

use super::{Finding, Problem, Severity, VerifyOptions};
use crate::bundle::{BundleFiles, BundleFormat};
use crate::cert::Certificate;
use crate::fmt_time;

pub(crate) struct Names {
    pub(crate) cert: &'static str,
    pub(crate) key: &'static str,
    pub(crate) chain: &'static str,
    pub(crate) roots: &'static str,
}

impl Names {
    /// The file names of a bundle in `format`.
    pub(crate) fn of(format: BundleFormat) -> Names {
        match format {
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
        }
    }
}

pub(crate) struct Checker {
    pub(crate) findings: Vec<Finding>,
    pub(crate) opts: VerifyOptions,
}

impl Checker {
    pub(crate) fn new(opts: VerifyOptions) -> Checker {
        Checker {
            findings: Vec::new(),
            opts,
        }
    }

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
                    format!("{e}; regenerate the bundle"),
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
