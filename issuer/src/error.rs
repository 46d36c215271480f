//! The one error type of this crate.

/// What can go wrong while signing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The issuer's own material cannot be used (missing files, bad root, …).
    #[error("{location}: {reason}")]
    Config {
        /// File or resource at fault.
        location: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A certificate operation failed.
    #[error("{context}: {cause}")]
    Ca {
        /// What was being done, with the file or cluster concerned.
        context: String,
        /// The underlying error (its message is part of this one's).
        cause: meshtrust_ca::Error,
    },
    /// A root directory does not exist (or is not a directory).
    #[error("{dir}: does not exist or is not a directory")]
    NoRootDir {
        /// The directory.
        dir: String,
    },
    /// A file of a root directory does not exist.
    #[error("{path}: does not exist; a root directory holds root-cert.pem and root-key.pem")]
    NoRootFile {
        /// The missing file.
        path: String,
        /// Its directory.
        dir: String,
    },
    /// No AWS region is configured anywhere.
    #[error(
        "AWS region: no region is configured (set AWS_REGION, or a region in your AWS profile)"
    )]
    NoRegion,
    /// The AWS Private CA does not exist where it was looked for.
    #[error(
        "certificate authority {arn} was not found ({message}); check the ARN, the region and the account of your credentials"
    )]
    CaNotFound {
        /// The ARN.
        arn: String,
        /// What AWS said.
        message: String,
    },
    /// A call to a remote CA failed; the reason names the permission, ARN or quota at fault.
    #[error("{reason}")]
    Aws {
        /// The API action (`IssueCertificate`, …).
        action: String,
        /// What failed and what to do.
        reason: String,
    },
    /// The CA returned a certificate that does not match what was asked.
    #[error("{issuer} returned an unusable certificate for cluster {cluster}: {reason}")]
    Rejected {
        /// The issuer (with its ARN or path).
        issuer: String,
        /// The cluster the certificate was for.
        cluster: String,
        /// Every mismatch found.
        reason: String,
    },
    /// Signing one cluster's intermediate failed (in a batch).
    #[error("cluster {cluster}: {issuer} could not issue its intermediate: {cause}")]
    Issuance {
        /// The cluster.
        cluster: String,
        /// The issuer.
        issuer: String,
        /// Why.
        cause: Box<Error>,
    },
    /// A freshly issued bundle would be refused by istiod; nothing was written.
    #[error(
        "cluster {cluster}: the bundle issued by {issuer} fails verification, nothing was written: {}",
        findings.join("; ")
    )]
    Unverified {
        /// The cluster.
        cluster: String,
        /// The issuer.
        issuer: String,
        /// What the verification found.
        findings: Vec<String>,
    },
    /// A bug in meshtrust (a task panicked, an invariant broke).
    #[error("internal error: {reason}")]
    Internal {
        /// What went wrong.
        reason: String,
    },
    /// The backend does not support this operation.
    #[error("{issuer} does not support {operation}")]
    NotImplemented {
        /// The issuer.
        issuer: String,
        /// The operation.
        operation: &'static str,
    },
    /// `meshtrust serve` answered a call with an error status.
    #[error("{service}: refused {action} ({}): {message}", status_and_code(*status, code))]
    ServiceRefused {
        /// The service (`meshtrust serve at https://…`).
        service: String,
        /// The call (`enrolling cluster east`).
        action: String,
        /// The HTTP status.
        status: u16,
        /// The service's machine-readable code (`token_used`, …); empty when the answer
        /// was not one of the service's errors.
        code: String,
        /// What the service said, for a person.
        message: String,
    },
    /// A call to `meshtrust serve` got no usable answer: no connection, a failed TLS
    /// handshake, no answer in time.
    #[error("{service}: {action} failed: {reason}")]
    ServiceUnreachable {
        /// The service (`meshtrust serve at https://…`).
        service: String,
        /// The call (`enrolling cluster east`).
        action: String,
        /// What failed, in words, and what to check.
        reason: String,
    },
    /// The service's TLS chain does not hold the certificate the client pins.
    #[error(
        "the service at {url} presented no certificate with fingerprint {fingerprint}; it presented {}; check that the fingerprint is the SHA-256 of the service's root certificate and that the URL names that service",
        presented.join(", ")
    )]
    UntrustedService {
        /// The service's URL.
        url: String,
        /// The pinned SHA-256, lowercase hex.
        fingerprint: String,
        /// Each presented certificate: subject and SHA-256.
        presented: Vec<String>,
    },
    /// `meshtrust serve` answered with a body that is not what its API defines.
    #[error("{service}: unusable answer when {action}: {reason}")]
    BadAnswer {
        /// The service (`meshtrust serve at https://…`).
        service: String,
        /// The call (`fetching the trust bundle`).
        action: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Some clusters of a batch failed through an issuer whose issuance is final
    /// ([`Issuer::issuance_is_final`](crate::Issuer::issuance_is_final)): the others were
    /// issued and are handed back in `issued`, to be written, not thrown away.
    #[error(
        "{} of {} clusters could not be issued by {issuer}: {}; the others ({}) were issued",
        failures.len(),
        failures.len() + issued.bundles.len(),
        failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        issued.bundles.iter().map(|b| b.cluster.to_string()).collect::<Vec<_>>().join(", ")
    )]
    PartialBatch {
        /// The issuer.
        issuer: String,
        /// The clusters that were issued and checked.
        issued: Box<crate::issued::Batch>,
        /// Why each other cluster failed ([`Error::Issuance`], naming it).
        failures: Vec<Error>,
    },
    /// Clusters to enroll with `meshtrust serve` that have no credential.
    #[error(
        "{service}: no enrollment credential for cluster {}; give a token for each, or a default token that any cluster may use",
        clusters.join(", ")
    )]
    NoCredential {
        /// The service (`meshtrust serve at https://…`).
        service: String,
        /// The clusters without one.
        clusters: Vec<String>,
    },
}

/// `403 token_used`, or `502` for an answer without a code.
fn status_and_code(status: u16, code: &str) -> String {
    if code.is_empty() {
        status.to_string()
    } else {
        format!("{status} {code}")
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
