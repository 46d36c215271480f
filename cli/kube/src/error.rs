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
    /// A cluster took longer than its time budget, every request and retry together.
    #[error(
        "{doing} took longer than the cluster's {}s budget (its API server is slow or does not answer); rerun when it is healthy",
        budget.as_secs()
    )]
    OutOfTime {
        /// What was being done (`reading the cluster`, `writing istio-system/cacerts`).
        doing: String,
        /// The budget that ran out.
        budget: std::time::Duration,
    },
    /// Leader election is misconfigured or its Lease cannot be used.
    #[error("{reason}")]
    Lease {
        /// What is wrong.
        reason: String,
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
            let mut m = format!("API server answered {}", s.code);
            if !s.reason.is_empty() {
                m.push_str(&format!(" {}", s.reason));
            }
            m.push_str(&format!(": {}", s.message));
            if crate::retry::is_retried_status(s.code) {
                m.push_str(&format!(
                    " (still so after up to {} retries with backoff, within the request timeout; rerun when the API server is healthy)",
                    crate::retry::MAX_RETRIES
                ));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, reason: &str, message: &str) -> kube::Error {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": code, "reason": reason, "message": message,
            "metadata": {}
        }))
        .unwrap();
        kube::Error::Api(Box::new(status))
    }

    #[test]
    fn an_api_error_reads_as_a_sentence_without_debug_text() {
        let m = api_message(&api(500, "InternalError", "etcdserver: request timed out"));
        assert_eq!(
            m,
            "API server answered 500 InternalError: etcdserver: request timed out (still so \
             after up to 4 retries with backoff, within the request timeout; rerun when the \
             API server is healthy)"
        );
        let m = api_message(&api(403, "Forbidden", "secrets is forbidden"));
        assert_eq!(m, "API server answered 403 Forbidden: secrets is forbidden");
        for m in [m, api_message(&api(503, "", "down"))] {
            for debug in ["Some(", "Status {", "ListMeta", "None"] {
                assert!(!m.contains(debug), "{m}");
            }
        }
    }
}
