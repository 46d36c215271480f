//! The request log: every request a cluster's server received, in order.

use std::fmt;

use axum::http::Method;

/// One request as the server received it (logged before any fault is applied).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `POST`, …
    pub method: Method,
    /// `/api/v1/namespaces/istio-system/secrets/cacerts`.
    pub path: String,
    /// The raw query string (`labelSelector=app%3Distiod&limit=500`), if any.
    pub query: Option<String>,
    /// The `Content-Type` header, if any (`application/apply-patch+yaml`).
    pub content_type: Option<String>,
}

impl RequestRecord {
    /// POST, PUT, PATCH or DELETE: a request that asks to change something.
    pub fn is_write(&self) -> bool {
        [Method::POST, Method::PUT, Method::PATCH, Method::DELETE].contains(&self.method)
    }

    /// A watch (`watch=true` or `watch=1`).
    pub fn is_watch(&self) -> bool {
        self.query
            .as_deref()
            .unwrap_or("")
            .split('&')
            .any(|p| p == "watch=true" || p == "watch=1")
    }

    /// The path, then `?` and the query if there is one.
    pub fn target(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }
}

impl fmt::Display for RequestRecord {
    /// `PATCH /api/v1/namespaces/x/secrets/y?fieldManager=m (application/apply-patch+yaml)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.target())?;
        if let Some(ct) = &self.content_type {
            write!(f, " ({ct})")?;
        }
        Ok(())
    }
}
