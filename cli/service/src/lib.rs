//! # meshtrust-service
//!
//! `meshtrust serve`: the root of trust as a service. It signs each cluster's intermediate
//! CA from a certificate signing request (the intermediate key is born in the cluster and
//! never reaches the service), over a versioned JSON API under `/v1`, always over TLS.
//!
//! - **Enrollment** is authenticated by a one-time enrollment token ([`tokens`]) or a
//!   Kubernetes projected ServiceAccount token verified offline ([`sa_token`]).
//! - **Renewal** is authenticated by proof of possession of the cluster's current
//!   intermediate key.
//! - The **store** ([`store`]) is an embedded SQLite file or PostgreSQL (several replicas);
//!   it holds enrollments, issued certificates, token hashes and the audit log — never an
//!   intermediate key.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod api;
mod audit;
pub mod config;
mod error;
pub mod gate;
mod limits;
mod metrics;
mod request_log;
pub mod sa_token;
mod serve;
mod state;
pub mod store;
mod tls;
pub mod tokens;

pub use audit::AuditLog;
pub use config::ServeConfig;
pub use error::{Error, Result};
pub use request_log::RequestLog;
pub use serve::{Server, create_token};
pub use state::{Rotation, Service};
