//! Every refusal the API gives: an HTTP status, a stable code and a sentence for a person,
//! sent as [`ErrorResponse`] JSON. Never a stack, never Debug text.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use meshtrust_issuer::server::api::ErrorResponse;

use crate::store::Refusal;

/// One refused or failed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code (`token_used`, …), also the `reason` label of the refusal metric.
    pub code: &'static str,
    /// What was wrong and what to do.
    pub message: String,
    /// Whether the store already holds this refusal's audit row (it refused a conditional
    /// write and recorded why in the same transaction).
    pub recorded: bool,
}

impl ApiError {
    /// A refusal with `status`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            recorded: false,
        }
    }

    /// 400: the request itself is wrong.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401: no credential, or one that does not authenticate.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 403: authenticated, but not allowed this.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }

    /// 503: the store cannot be used; nothing was recorded.
    pub fn store(error: &crate::Error) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            format!(
                "the service's store is unavailable, nothing was issued or recorded; retry later ({error})"
            ),
        )
    }

    /// 502: the signing backend `issuer` failed; nothing was recorded.
    pub fn issuer(issuer: &str, error: &meshtrust_issuer::Error) -> ApiError {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "issuer_failed",
            format!("{issuer} failed, nothing was issued or recorded; retry later ({error})"),
        )
    }

    /// 500: a bug.
    pub fn internal(reason: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("internal error: {}", reason.into()),
        )
    }

    /// Whether the client was at fault (a refusal) rather than the service (an error).
    pub fn is_refusal(&self) -> bool {
        self.status.is_client_error()
    }

    /// The store's refusal of a conditional write, for cluster `cluster`.
    pub fn from_refusal(refusal: &Refusal, cluster: &str) -> ApiError {
        match refusal {
            Refusal::TokenUnknown => ApiError::unauthorized(
                "token_unknown",
                "the enrollment token is not known to this service: create one for this cluster",
            ),
            Refusal::TokenUsed => ApiError::unauthorized(
                "token_used",
                "the enrollment token was already used: tokens are single-use; create a new one",
            ),
            Refusal::TokenExpired => ApiError::unauthorized(
                "token_expired",
                "the enrollment token has expired: create a new one",
            ),
            Refusal::TokenForOtherCluster { bound_to } => ApiError::forbidden(
                "token_wrong_cluster",
                format!("the enrollment token is for cluster {bound_to}, not {cluster}"),
            ),
            Refusal::AlreadyEnrolled { key_fingerprint } => ApiError::new(
                StatusCode::CONFLICT,
                "already_enrolled",
                format!(
                    "cluster {cluster} is already enrolled with another intermediate key (public key sha256 {key_fingerprint}): renew with that key, or have an admin revoke the enrollment first"
                ),
            ),
            Refusal::NotCurrent { current_serial } => ApiError::forbidden(
                "not_current",
                format!(
                    "the certificate is not cluster {cluster}'s current intermediate (that is serial {current_serial}): renew with the current one"
                ),
            ),
            Refusal::Revoked => ApiError::forbidden(
                "revoked",
                format!(
                    "cluster {cluster}'s enrollment was revoked: it must enroll again with a new credential"
                ),
            ),
            Refusal::UnknownCluster => ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_cluster",
                format!("cluster {cluster} has never enrolled with this service"),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorResponse {
            error: self.code.to_string(),
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}
