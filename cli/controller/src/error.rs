//! The one error type of this crate, and how errors map onto [`Reason`]s.

use crate::reason::Reason;

/// What can go wrong in the controller.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Kubernetes request failed (member clusters, the management cluster).
    #[error(transparent)]
    Kube(#[from] meshtrust_kube::Error),
    /// Issuing failed (or the issuer could not be built).
    #[error(transparent)]
    Issuer(#[from] meshtrust_issuer::Error),
    /// A field of the spec is wrong.
    #[error(transparent)]
    Spec(#[from] crate::crd::FieldError),
    /// A root Secret is missing or unusable; the reason says which and how to fix it.
    #[error("{reason}")]
    Root {
        /// What is wrong, naming the Secret.
        reason: String,
    },
    /// A member cluster's kubeconfig Secret is missing or unusable.
    #[error("{reason}")]
    Member {
        /// What is wrong, naming the Secret and the cluster.
        reason: String,
    },
    /// Work on one cluster failed; `cause` says why.
    #[error("cluster {cluster}: {cause}")]
    Cluster {
        /// The cluster (as in the spec).
        cluster: String,
        /// What failed.
        cause: Box<Error>,
    },
    /// A freshly issued or rewritten bundle would be refused by istiod; nothing was written.
    #[error("the new bundle for {cluster} fails verification, nothing was written: {}", findings.join("; "))]
    Unverified {
        /// The cluster.
        cluster: String,
        /// What the verification found.
        findings: Vec<String>,
    },
    /// The status of a MeshTrust could not be written (or timed out).
    #[error("cannot write the status of MeshTrust {name}: {reason}")]
    Status {
        /// The MeshTrust.
        name: String,
        /// Why.
        reason: String,
    },
    /// The health and metrics server cannot listen or failed.
    #[error("{reason}")]
    Serve {
        /// What failed, naming the address.
        reason: String,
    },
    /// A bug in meshtrust.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl Error {
    /// The reason this error is reported under (condition reason, Event reason, metric
    /// label) when it stops the work it happened in.
    pub fn reason(&self) -> Reason {
        match self {
            Error::Cluster { cause, .. } => cause.reason(),
            Error::Root { .. } | Error::Issuer(_) => Reason::IssuerUnavailable,
            Error::Member { .. } => Reason::ClusterUnreachable,
            Error::Spec(_) => Reason::InvalidSpec,
            Error::Status { .. } => Reason::StatusNotWritten,
            Error::Kube(_)
            | Error::Unverified { .. }
            | Error::Serve { .. }
            | Error::Internal(_) => Reason::IssuanceFailed,
        }
    }

    /// `cause`, as the failure of work on `cluster`.
    pub fn in_cluster(cluster: impl Into<String>, cause: impl Into<Error>) -> Error {
        Error::Cluster {
            cluster: cluster.into(),
            cause: Box::new(cause.into()),
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
