//! The peering flow after trust exists: Helm values (and, next, expose, link, check).

pub mod values;
