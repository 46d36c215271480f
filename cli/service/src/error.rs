//! The one error type of this crate.

/// What can go wrong while starting or running the service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable; names the file or field at fault.
    #[error("{location}: {reason}")]
    Config {
        /// File, field or flag at fault.
        location: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The store cannot be reached or refused an operation.
    #[error("store {store}: {reason}")]
    Store {
        /// The store, without credentials (`sqlite:/var/lib/meshtrust/meshtrust.db`).
        store: String,
        /// What failed.
        reason: String,
    },
    /// A ServiceAccount token issuer's keys could not be obtained.
    #[error("cluster {cluster}: {reason}")]
    Jwks {
        /// The cluster whose issuer keys are at fault.
        cluster: String,
        /// What failed.
        reason: String,
    },
    /// The signing backend failed.
    #[error(transparent)]
    Issuer(#[from] meshtrust_issuer::Error),
    /// A certificate operation failed.
    #[error("{context}: {cause}")]
    Ca {
        /// What was being done.
        context: String,
        /// The underlying error.
        cause: meshtrust_ca::Error,
    },
    /// Listening or serving failed.
    #[error("{address}: {reason}")]
    Serve {
        /// The listen address.
        address: String,
        /// What failed.
        reason: String,
    },
    /// A bug in meshtrust.
    #[error("internal error: {reason}")]
    Internal {
        /// What went wrong.
        reason: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
