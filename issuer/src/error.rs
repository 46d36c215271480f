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
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
