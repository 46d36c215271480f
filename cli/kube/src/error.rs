//! The one error type of this crate.

/// What can go wrong between meshtrust and a cluster's API server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The API server refused or failed a request.
    #[error("{action}: {message}")]
    Api {
        /// What was being done (`cannot create istio-system/cacerts`).
        action: String,
        /// The HTTP status code, when the server answered.
        code: Option<u16>,
        /// What the server (or the connection) said.
        message: String,
    },
    /// A cluster cannot be reached with what is configured (no kubeconfig, unknown context,
    /// an unusable kubeconfig).
    #[error("{reason}")]
    Access {
        /// What is wrong.
        reason: String,
        /// Whether a kubeconfig file was looked for and not found (the caller may point at
        /// one).
        no_kubeconfig: bool,
    },
    /// Someone else wrote the object between meshtrust's read and its write; nothing was
    /// overwritten.
    #[error("{object} {what} while meshtrust was working; nothing was overwritten")]
    Raced {
        /// `namespace/name`.
        object: String,
        /// `was created by someone else`, or `changed since it was read`.
        what: &'static str,
    },
    /// A bug in meshtrust: an action carried out without what it needs.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl Error {
    /// An [`Error::Api`] for `e`, which happened while doing `action`.
    pub fn api(action: impl Into<String>, e: kube::Error) -> Error {
        Error::Api {
            action: action.into(),
            code: match &e {
                kube::Error::Api(s) => Some(s.code),
                _ => None,
            },
            message: api_message(&e),
        }
    }

    /// The HTTP status of an [`Error::Api`].
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::Api { code, .. } => *code,
            _ => None,
        }
    }
}

/// A kube error as a sentence: the API server's own message and reason for an API error
/// (never Rust's debug form of the response), the error chain otherwise.
pub fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => {
            let mut m = s.message.clone();
            if !s.reason.is_empty() {
                m.push_str(&format!(" ({}, HTTP {})", s.reason, s.code));
            } else {
                m.push_str(&format!(" (HTTP {})", s.code));
            }
            m
        }
        other => {
            let mut m = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                let text = s.to_string();
                if !m.contains(&text) {
                    m.push_str(": ");
                    m.push_str(&text);
                }
                source = s.source();
            }
            m
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The API server answered 404 Not Found.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// The API server answered 409 Conflict (or AlreadyExists).
pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}
