//! The one error type of the agent.

/// What can stop a round of the agent. Each names the cluster's object or the service at
/// fault; the next round tries again (after a backoff) unless the error says a person must
/// act first.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The cluster's API server refused or failed a request.
    #[error(transparent)]
    Kube(#[from] meshtrust_kube::Error),
    /// The service (or the answer it gave) failed.
    #[error(transparent)]
    Issuer(#[from] meshtrust_issuer::Error),
    /// A key or certificate could not be made or read.
    #[error("{context}: {cause}")]
    Ca {
        /// What was being done.
        context: String,
        /// Why it failed.
        cause: meshtrust_ca::Error,
    },
    /// The agent is configured in a way that cannot work.
    #[error("{reason}")]
    Config {
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// `cacerts` holds a bundle meshtrust did not write, and the agent was told not to
    /// replace it (`--foreign-cacerts refuse`).
    #[error(
        "{namespace}/cacerts holds a bundle meshtrust did not write ({reason}); the agent leaves it alone: move it away, or run the agent with --foreign-cacerts backup to keep a copy and replace it"
    )]
    Foreign {
        /// The namespace.
        namespace: String,
        /// What was found.
        reason: String,
    },
    /// The cluster has no intermediate the service knows and no credential to enroll with.
    #[error(
        "cluster {cluster} must enroll, but there is no enrollment credential: give one with --token-file (a one-time token from `meshtrust serve token create --cluster {cluster}`) or --service-account-token-file (a projected token with audience meshtrust)"
    )]
    NoCredential {
        /// The cluster.
        cluster: String,
    },
    /// The health and metrics server cannot listen or failed.
    #[error("{reason}")]
    Serve {
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    /// A [`Error::Ca`] for `cause`, which happened while doing `context`.
    pub(crate) fn ca(context: impl Into<String>, cause: meshtrust_ca::Error) -> Error {
        Error::Ca {
            context: context.into(),
            cause,
        }
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
