//! Kubernetes projected ServiceAccount tokens, verified offline.
//!
//! A member cluster may enroll for the first time with a projected ServiceAccount token
//! instead of a one-time enrollment token: its agent mounts a token projected with
//! `audience: meshtrust` and sends it. The service checks it *offline*, against the public
//! keys of that cluster's service-account issuer — it never calls the member cluster's
//! TokenReview API — and only then treats the caller as that cluster.
//!
//! Each cluster that may enroll this way has a [`ServiceAccountIssuer`] in the service's
//! configuration: the `iss` and `sub` its tokens must carry, and where its keys come from —
//! a JWKS file, an inline JWKS, or OIDC discovery (as EKS and GKE publish it, and as any
//! API server serves it under `/.well-known/openid-configuration`).
//!
//! A [`Verifier`] holds the keys of every configured cluster. [`Verifier::verify`] either
//! returns the [`VerifiedServiceAccount`] or a [`Refusal`] whose [`code`](Refusal::code) is
//! stable (for the API and metrics) and whose message tells the person what to fix. Neither
//! ever contains the token.
//!
//! What is checked, first failure wins: the token is a compact JWS no larger than 16 KiB
//! (`sa_token_malformed`); it is signed with RS256, ES256 or ES384 — never `none` or HMAC
//! (`sa_token_algorithm`); its `iss` is the cluster's issuer (`sa_token_issuer`); its `kid`
//! names a key the issuer publishes (`sa_token_unknown_key`, `sa_jwks_unavailable`); the
//! signature verifies (`sa_token_signature`); `aud` contains `meshtrust`
//! (`sa_token_audience`); `exp` is present and not past (`sa_token_expired`); `nbf` and
//! `iat`, if present, are not ahead (`sa_token_not_yet_valid`); `sub` is the cluster's
//! enrolling ServiceAccount (`sa_token_subject`). Times are compared with
//! [`CLOCK_SKEW_LEEWAY`] of slack against the `now` the caller passes.
//!
//! Discovered keys are fetched when the verifier starts, again when a token names a key id
//! the verifier does not know, and when they are older than [`KEY_TTL`] — at most once per
//! [`KEY_REFRESH_INTERVAL`] per cluster, by the verifier's [`Clock`](meshtrust_issuer::Clock)
//! (its wall time or its monotonic time, whichever has moved further).
//! A failed fetch keeps the keys already held. A cluster whose keys cannot be fetched at
//! start does not stop the service: its tokens are refused with `sa_jwks_unavailable` until
//! a fetch succeeds.
//!
//! ```
//! use meshtrust_service::sa_token::ServiceAccountIssuer;
//!
//! // One entry of the service configuration: an EKS cluster, keys by discovery.
//! let east: ServiceAccountIssuer = serde_yaml_ng::from_str(
//!     "issuer: https://oidc.eks.eu-west-1.amazonaws.com/id/ABC\n\
//!      subject: system:serviceaccount:istio-system:meshtrust-agent\n\
//!      ca_file: /etc/ssl/certs/ca-certificates.crt\n",
//! )?;
//! east.validate("east")?;
//! // Then, at start: `let verifier = Verifier::new([("east".into(), east)], clock).await?;`
//! // and per request: `verifier.verify("east", token, clock.now()).await`.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod claims;
mod config;
mod fetch;
mod jwks;
mod refusal;
mod verifier;

#[cfg(test)]
mod test_issuer;

pub use config::ServiceAccountIssuer;
pub use refusal::Refusal;
pub use verifier::{VerifiedServiceAccount, Verifier};

/// Slack allowed between the member cluster's clock and the service's when checking `exp`,
/// `nbf` and `iat`.
pub const CLOCK_SKEW_LEEWAY: time::Duration = time::Duration::seconds(30);

/// The shortest time between two fetches of one cluster's discovered keys, however many
/// tokens name an unknown key.
pub const KEY_REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// How long discovered keys are used before they are fetched again.
pub const KEY_TTL: std::time::Duration = std::time::Duration::from_secs(3600);
