//! Failures as the API server reports them: a `Status` object with a reason and a code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::resources::Resource;

/// A failed request; rendered as a `v1` `Status` object.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details` (`name`, `group`, `kind`, `causes`), or `Null` for none.
    pub details: Value,
}

/// The `reason` the real server gives with an HTTP code.
pub(crate) fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

fn details(resource: &Resource, name: &str) -> Value {
    let mut d = json!({"name": name, "kind": resource.plural});
    if !resource.group.is_empty() {
        d["group"] = json!(resource.group);
    }
    d
}

impl ApiError {
    /// An error with the usual reason for `code`.
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: reason_for(code),
            message: message.into(),
            details: Value::Null,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    pub fn not_found(resource: &Resource, name: &str) -> Self {
        ApiError {
            details: details(resource, name),
            ..Self::new(
                404,
                format!("{} \"{name}\" not found", resource.qualified_plural()),
            )
        }
    }

    /// A namespaced write into a namespace that does not exist.
    pub fn namespace_not_found(namespace: &str) -> Self {
        ApiError {
            details: json!({"name": namespace, "kind": "namespaces"}),
            ..Self::new(404, format!("namespaces \"{namespace}\" not found"))
        }
    }

    /// A URL that names no resource.
    pub fn no_such_path() -> Self {
        ApiError {
            details: json!({}),
            ..Self::new(404, "the server could not find the requested resource")
        }
    }

    pub fn already_exists(resource: &Resource, name: &str) -> Self {
        ApiError {
            reason: "AlreadyExists",
            details: details(resource, name),
            ..Self::new(
                409,
                format!("{} \"{name}\" already exists", resource.qualified_plural()),
            )
        }
    }

    /// An optimistic-concurrency failure; `why` follows the resource and name.
    pub fn conflict(resource: &Resource, name: &str, why: &str) -> Self {
        ApiError {
            details: details(resource, name),
            ..Self::new(
                409,
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": {why}",
                    resource.qualified_plural()
                ),
            )
        }
    }

    /// The resourceVersion precondition of an update did not hold.
    pub fn stale(resource: &Resource, name: &str) -> Self {
        Self::conflict(
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// Validation failed (422); `field` is the offending field path.
    pub fn invalid(resource: &Resource, name: &str, field: &str, message: &str) -> Self {
        let mut d = details(resource, name);
        d["kind"] = json!(resource.kind);
        d["causes"] = json!([{"reason": "FieldValueInvalid", "message": message, "field": field}]);
        ApiError {
            details: d,
            ..Self::new(
                422,
                format!(
                    "{} \"{name}\" is invalid: {field}: {message}",
                    resource.kind
                ),
            )
        }
    }

    /// A watch from a resourceVersion the history no longer holds.
    pub fn expired(requested: u64, oldest: u64) -> Self {
        Self::new(
            410,
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if !self.details.is_null() {
            status["details"] = self.details.clone();
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (code, axum::Json(self.to_status())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::Registry;

    #[test]
    fn not_found_reads_like_the_real_server() {
        let registry = Registry::default();
        let secrets = registry.get(registry.by_kind("v1", "Secret").unwrap());
        assert_eq!(
            ApiError::not_found(secrets, "cacerts").to_status(),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "secrets \"cacerts\" not found", "reason": "NotFound",
                   "details": {"name": "cacerts", "kind": "secrets"}, "code": 404})
        );
    }

    #[test]
    fn a_grouped_resource_carries_its_group() {
        let registry = Registry::default();
        let leases = registry.get(registry.by_kind("coordination.k8s.io/v1", "Lease").unwrap());
        let e = ApiError::stale(leases, "leader");
        assert_eq!(e.code, 409);
        assert_eq!(e.reason, "Conflict");
        assert!(
            e.message.starts_with(
                "Operation cannot be fulfilled on leases.coordination.k8s.io \"leader\""
            )
        );
        assert_eq!(e.details["group"], "coordination.k8s.io");
    }
}
