//! `meshtrust serve` seen from a client: its wire format ([`api`]), how the client trusts
//! the service's TLS certificate ([`ServerTrust`]), a typed client for every route
//! ([`ServiceClient`]) and the issuer backend that signs through it ([`ServerIssuer`]).
//!
//! Every client is built with its own rustls configuration on the ring provider: nothing
//! depends on a process-wide TLS provider, and only the trust given is used (never the
//! system's roots). Plain `http://` is refused unless asked for explicitly
//! ([`ServiceClient::new_plaintext`], for development).

use std::time::Duration;

pub mod api;
mod client;
mod failure;
mod issuer;
mod policy;
mod renewal;
mod trust;
pub mod wire;

pub use client::ServiceClient;
pub use issuer::ServerIssuer;
pub use trust::ServerTrust;

/// How long one call to the service may take (connecting and the TLS handshake included)
/// unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
