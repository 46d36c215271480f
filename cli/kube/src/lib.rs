//! # meshtrust-kube
//!
//! Everything meshtrust does with a cluster's Kubernetes API, shared by the CLI's
//! `bootstrap`/`push` and the controller: reaching clusters ([`Access`], a kubeconfig kept
//! in a Secret), the `cacerts` Secret ([`cacerts_secret`], [`bundle_files`]), the pure
//! per-cluster [`plan`], its delivery with preconditions ([`observe`], [`apply`]), what
//! istiod runs with and has loaded ([`read_istiod`]), and leader election over a Lease
//! ([`leader`]) for the controller and the agent.
//!
//! Nothing here parses arguments, prints, or assumes a command line: errors are [`Error`]
//! values that say what happened; the caller adds what to do about it.
//!
//! ```
//! use meshtrust_kube::{Action, Desired, Existing, plan};
//! use meshtrust_ca::VerifyOptions;
//! use time::macros::datetime;
//!
//! // A cluster without cacerts gets one.
//! let roots = vec!["AB:CD".to_string()];
//! let verify = VerifyOptions::at(datetime!(2026-01-01 00:00 UTC));
//! let action = plan(&Existing::Absent, &Desired::ChainsTo(&roots), false, false, &verify);
//! assert_eq!(action, Action::Create);
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod access;
mod budget;
mod deliver;
mod error;
mod istiod;
pub mod leader;
mod plan;
mod retry;
mod secret;

pub use access::{Access, client_from_kubeconfig};
pub use budget::{DEFAULT_CLUSTER_BUDGET, within};
pub use deliver::{Applied, NETWORK_LABEL, Observed, apply, observe, write};
pub use error::{Error, Result, api_message, is_conflict, is_not_found};
pub use istiod::{
    ISTIO_ROOT_CONFIGMAP, ISTIOD_DEPLOYMENT, Istiod, discovery_container, read_istiod, settings,
};
pub use plan::{Action, Desired, Existing, plan};
pub use retry::{RetryPolicy, RetrySettings};
pub use secret::{
    CACERTS, MANAGED_BY, NOT_AFTER, ObservedSecret, ROOT_FINGERPRINTS, ROOT_LABEL, SERIAL,
    bundle_files, cacerts_secret, is_managed, root_label, scrub,
};

/// Field manager of every server-side apply meshtrust does (gateways, status).
pub const FIELD_MANAGER: &str = "meshtrust";
