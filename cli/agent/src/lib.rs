//! # meshtrust-agent
//!
//! The in-cluster agent: it keeps its cluster's `cacerts` current with an intermediate
//! whose key is born in the cluster and never leaves it, issued by `meshtrust serve`.
//!
//! A round reads the cluster ([`observe`]), decides ([`decide`], pure: enroll, renew,
//! resume an interrupted issuance, or wait), carries the step out ([`issue`]: the new key
//! first kept in the pending Secret, then the service signs its CSR, then `cacerts` is
//! written by the same delivery code as `bootstrap`), and reports what the cluster and its
//! istiod hold ([`report`]). [`run`] repeats rounds while this replica leads.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod config;
pub mod decide;
mod error;
pub mod held;
pub mod issue;
mod metrics;
pub mod observe;
pub mod report;
mod run;
mod server;

pub use config::{AgentConfig, DEFAULT_LEASE_NAME, ForeignCacerts};
pub use error::{Error, Result};
pub use metrics::Metrics;
pub use run::{Agent, Memory, Settings, run};
