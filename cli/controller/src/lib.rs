//! # meshtrust-controller
//!
//! The trust controller behind `meshtrust controller`: the `MeshTrust` resource ([`crd`]),
//! and a reconciler that keeps every member cluster's intermediate valid, renews it before
//! expiry and rotates the root with zero downtime.
//!
//! The house rule is *decide purely, then carry out*: [`decide`] says what to do with one
//! cluster from `(spec, what it holds, trusted roots, policy, backoff state, renewal
//! request, now)`, [`round`]
//! plans a whole round (its kind, the status it leaves, when to look again), and
//! `meshtrust_ca::plan_rotation` plans rotation steps; [`reconcile`] only reads, carries the
//! decisions out through `meshtrust_kube`, and writes the status (server-side apply, one
//! field manager, a timeout). Every condition reason, Event reason and metric label is a
//! [`Reason`]. Time comes from the context's [`meshtrust_issuer::Clock`]; only the leader
//! (see [`leader`]) reconciles.
//!
//! ```
//! use meshtrust_controller::{Reason, Requeue};
//! assert_eq!(Reason::IssuanceFailed.as_str(), "IssuanceFailed");
//! assert_eq!(Requeue::AwaitChange.after(), None);
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod cause;
mod context;
pub mod crd;
pub mod decide;
mod deliver;
mod error;
mod health;
mod members;
mod metrics;
mod reason;
pub mod reconcile;
mod report;
mod request;
mod requeue;
mod rotate;
pub mod round;
mod run;
mod server;
mod signers;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod reconcile_tests;

pub use context::{CONCURRENCY, Context, STATUS_TIMEOUT};
pub use error::{Error, Result};
pub use health::{Health, LastReconcile};
/// Leader election, shared with the agent (it lives in `meshtrust-kube`).
pub use meshtrust_kube::leader;
pub use metrics::{CONDITION_STATUSES, Metrics, ReconcileTimer};
pub use reason::Reason;
pub use requeue::{MIN_REQUEUE, Requeue};
pub use run::{Settings, recorder, run, shutdown_signal};
pub use server::{OPENMETRICS_CONTENT_TYPE, serve};
pub use signers::{Rotation, SignerCache, Signers, root_secret};
