//! The trust controller: the `MeshTrust` resource, reconciliation, root rotation, leader
//! election and metrics.

pub mod clock;
pub mod crd;
pub mod issuers;
pub mod leader;
pub mod members;
pub mod metrics;
pub mod reconcile;
pub mod run;
