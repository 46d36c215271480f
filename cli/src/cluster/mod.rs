//! Everything that touches Kubernetes: access, the `cacerts` Secret, planning, delivery.

pub mod client;
pub mod deliver;
pub mod plan;
pub mod secret;

/// The API server answered 404 Not Found.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// The API server answered 409 Conflict (or AlreadyExists).
pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}
