//! The trust controller: the `MeshTrust` resource, reconciliation, root rotation, leader
//! election and metrics.

pub mod clock;
pub mod crd;
#[cfg(test)]
mod fixtures;
pub mod issuers;
pub mod leader;
pub mod members;
pub mod metrics;
pub mod reconcile;
#[cfg(test)]
mod reconcile_tests;
mod rotate;
pub mod run;
