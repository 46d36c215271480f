//! # meshtrust-ca
//!
//! The certificate domain of meshtrust, pure: no I/O, no async, no clock. Every function
//! that depends on time takes `now`.
//!
//! - [`KeyType`], [`PrivateKey`]: keys in zeroizing buffers that print a fingerprint only.
//! - [`RootParams`] → [`RootCa`]: a self-signed root.
//! - [`IntermediateParams`] → [`Csr`] → [`RootCa::sign_intermediate`]: a cluster's CA.
//! - [`CaCerts`]: Istio's `cacerts` files, in the istio or kubernetes.io/tls form.
//! - [`verify_bundle`]: would istiod accept this bundle, and would its workloads validate?
//! - [`reissue_reason`]: must a cluster's intermediate be reissued, and why ([`RenewalPolicy`],
//!   [`Backoff`] for retries).
//! - [`plan_rotation`]: the next step of a zero-downtime root rotation, from what the
//!   clusters hold.
//! - [`Csr::inspect`], [`csr_matches`]: what a request asks for, and whether a cluster may have it.
//! - [`possession_message`]: a cluster proves at renewal that it holds its current key.
//! - [`RootCa::sign_server_certificate`]: a TLS serving certificate for meshtrust's endpoints.
//!
//! ```
//! use meshtrust_ca::*;
//! use time::macros::datetime;
//!
//! let now = datetime!(2026-01-01 00:00 UTC);
//! let root = RootParams::default().self_signed(now)?;
//! let params = IntermediateParams::new(ClusterName::new("cluster1")?);
//! let key = PrivateKey::generate(params.key_type)?;
//! let signed = root.sign_intermediate(&params.csr(&key)?, &params.profile(), now)?;
//! let bundle = root.cacerts(signed.certificate, key);
//!
//! let files = bundle.bundle_files(BundleFormat::Istio);
//! assert!(verify_bundle(&files, &VerifyOptions::at(now)).accepted());
//! # Ok::<(), meshtrust_ca::Error>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod bundle;
mod cert;
mod cluster;
mod csr_check;
pub mod duration;
mod error;
mod fingerprint;
mod intermediate;
mod key;
mod possession;
mod renewal;
mod request;
mod root;
mod rotation;
mod serial;
mod server_cert;
mod trust;
mod verify;

pub use bundle::{BundleFile, BundleFiles, BundleFormat, CaCerts};
pub use cert::{CertInfo, Certificate};
pub use cluster::ClusterName;
pub use csr_check::{CsrInfo, csr_matches};
pub use error::{Error, Result};
pub use fingerprint::{certificate_fingerprint, sha256_hex, short_fingerprints};
pub use intermediate::{
    Csr, ISTIOD_DNS_NAME, IntermediateParams, IntermediateProfile, SignedIntermediate,
    validity_window,
};
pub use key::{KeyAlgorithm, KeyType, PrivateKey};
pub use possession::{possession_message, possession_message_over};
pub use renewal::{Backoff, Reissue, ReissueReason, RenewalPolicy, next_check, reissue_reason};
pub use root::{RootCa, RootParams};
pub use rotation::{
    BlockReason, ClusterStep, ClusterTrust, ClusterWrite, IntermediateAction, IstiodState,
    IstiodWait, MULTIROOT_MESH, MULTIROOT_MESH_HELM, RotationBlocked, RotationPhase, RotationPlan,
    RotationRoot, istiod_loaded, istiod_wait, multiroot_on, mutual_trust_ok, old_root_hold_until,
    phase_while_held, plan_rotation, plan_step, shared_root_pairs_ok,
};
pub use trust::{TrustBundle, is_byte_superset};
pub use verify::{BundleReport, Finding, Problem, Severity, VerifyOptions, verify_bundle};

/// The stamp that names what a forced write replaced and kept (`<name>.backup-<stamp>` for a
/// bundle directory or root key, `cacerts-backup-<stamp>` for a Secret): the UTC time to the
/// second, lowercase so that it is also valid in a Kubernetes object name
/// (`backup-20261201t231956z`).
pub fn backup_suffix(at: time::OffsetDateTime) -> String {
    let t = at.to_offset(time::UtcOffset::UTC);
    let stamp = t
        .format(time::macros::format_description!(
            "[year][month][day]t[hour][minute][second]z"
        ))
        .unwrap_or_else(|_| t.unix_timestamp().to_string());
    format!("backup-{stamp}")
}

/// Formats an instant for messages: `2026-11-26 09:30:00 UTC`.
pub fn fmt_time(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.format(time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
    ))
    .unwrap_or_else(|_| t.to_string())
}
