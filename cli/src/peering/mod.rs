//! The peering flow after trust exists: Helm values, the east-west gateway, peer links, and
//! the mesh-wide check.

pub mod apply;
pub mod check;
pub mod flow;
pub mod gateway;
pub mod observe;
pub mod plan;
pub mod trust;
pub mod values;
