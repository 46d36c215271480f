//! Everything that touches Kubernetes: access, the `cacerts` Secret, planning, delivery.

pub mod client;
pub mod deliver;
pub mod plan;
pub mod secret;
