//! The one error type of this crate.

/// Everything that can go wrong while building, loading or signing certificates.
///
/// Messages name the input at fault by its conventional file name (`root-cert.pem`,
/// `ca-key.pem`, …) and say what to do; callers that know the real path prefix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input is not the PEM it should be.
    #[error("{name}: not a valid PEM {expected}: {reason}")]
    Pem {
        /// File name of the input (e.g. `ca-cert.pem`).
        name: String,
        /// What the file should contain (`certificate`, `private key`).
        expected: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// A certificate could not be parsed as X.509.
    #[error("{name}: certificate #{index} is not valid X.509: {reason}")]
    Certificate {
        /// File name of the input.
        name: String,
        /// Position of the certificate in the file (1-based).
        index: usize,
        /// Parser message.
        reason: String,
    },
    /// A key that meshtrust cannot use for a CA.
    #[error("{name}: {reason}")]
    UnsupportedKey {
        /// File name of the key.
        name: String,
        /// What is wrong and what to use instead.
        reason: String,
    },
    /// A private key does not belong to the certificate it is paired with.
    #[error(
        "{key} does not match {cert}: the key's public half differs from the certificate's; use the key that was generated with this certificate, or reissue both"
    )]
    KeyMismatch {
        /// File name of the key.
        key: String,
        /// File name of the certificate.
        cert: String,
    },
    /// A certificate that must sign others is not a CA.
    #[error(
        "{name} is not a CA certificate ({reason}); use a certificate with basicConstraints CA:TRUE and keyUsage keyCertSign"
    )]
    NotCa {
        /// File name of the certificate.
        name: String,
        /// The missing property.
        reason: String,
    },
    /// A certificate is outside its validity period.
    #[error("{name} {state}; {fix}")]
    Validity {
        /// File name of the certificate.
        name: String,
        /// "expired at …" or "is not valid before …".
        state: String,
        /// What to do.
        fix: &'static str,
    },
    /// The requested parameters cannot be honoured.
    #[error("invalid {field}: {reason}")]
    InvalidParameter {
        /// The parameter at fault (`cluster name`, `validity`, `path length`, …).
        field: &'static str,
        /// Why, and the accepted values.
        reason: String,
    },
    /// The underlying crypto library failed to generate a key or sign.
    #[error("{operation} failed: {reason}")]
    Crypto {
        /// What was being done.
        operation: &'static str,
        /// Library message.
        reason: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn crypto(operation: &'static str) -> impl FnOnce(rcgen::Error) -> Error {
    move |e| Error::Crypto {
        operation,
        reason: e.to_string(),
    }
}
