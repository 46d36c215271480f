//! What the store holds and what it is asked to decide: plain values, no I/O.

use std::fmt;

pub use meshtrust_issuer::server::api::ClusterState;
use time::OffsetDateTime;

/// An enrollment token to remember (only its hash is ever stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewToken {
    /// SHA-256 of the token, lowercase hex.
    pub hash: String,
    /// The only cluster the token may enroll.
    pub cluster: String,
    /// After this instant the token is refused.
    pub expires_at: OffsetDateTime,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// The admin principal that made it.
    pub created_by: String,
}

/// A stored enrollment token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    /// SHA-256 of the token, lowercase hex.
    pub hash: String,
    /// The only cluster the token may enroll.
    pub cluster: String,
    /// After this instant the token is refused.
    pub expires_at: OffsetDateTime,
    /// When it enrolled its cluster; `None` while unused.
    pub used_at: Option<OffsetDateTime>,
    /// Fingerprint of the intermediate key it enrolled; `None` while unused.
    pub used_by_key: Option<String>,
}

/// A cluster that enrolled at least once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterRecord {
    /// The cluster's name.
    pub name: String,
    /// Whether its enrollment stands.
    pub state: ClusterState,
    /// SHA-256 of its current intermediate's public key.
    pub key_fingerprint: String,
    /// Serial of its current intermediate.
    pub current_serial: String,
    /// notAfter of its current intermediate.
    pub not_after: OffsetDateTime,
    /// When it (last) enrolled.
    pub enrolled_at: OffsetDateTime,
    /// When it last enrolled or renewed.
    pub last_seen: OffsetDateTime,
    /// Fingerprints of the roots it was given with its current intermediate.
    pub roots: Vec<String>,
}

/// An intermediate certificate the service issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateRecord {
    /// Its serial number, as the service prints it.
    pub serial: String,
    /// The cluster it was issued to.
    pub cluster: String,
    /// SHA-256 of its public key.
    pub key_fingerprint: String,
    /// Its notAfter.
    pub not_after: OffsetDateTime,
    /// When it was issued.
    pub issued_at: OffsetDateTime,
    /// Whether its cluster was revoked since.
    pub revoked: bool,
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// The chain above it up to the root, PEM.
    pub chain_pem: String,
}

/// One line of the audit log. Times are kept to the second.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    /// When it happened.
    pub at: OffsetDateTime,
    /// Who asked: an admin, a token (by hash prefix), a ServiceAccount, a certificate serial.
    pub principal: String,
    /// What was asked (`enroll`, `renew`, `token.create`, `cluster.revoke`, …).
    pub action: String,
    /// The cluster concerned, if any.
    pub cluster: Option<String>,
    /// The certificate concerned, if any.
    pub serial: Option<String>,
    /// [`AuditEvent::OK`], [`AuditEvent::REFUSED`] or [`AuditEvent::ERROR`].
    pub result: String,
    /// Why, in a sentence (empty when there is nothing to add).
    pub reason: String,
}

impl AuditEvent {
    /// The request was carried out.
    pub const OK: &'static str = "ok";
    /// The request was refused (bad credential, policy).
    pub const REFUSED: &'static str = "refused";
    /// The request failed (store or signer trouble).
    pub const ERROR: &'static str = "error";
    /// The reason of an `ok` line for a retried enrollment.
    pub const RETRY: &'static str =
        "a retry with the same token and key: the certificate issued then was returned again";

    /// Whether `result` is one of the three the audit log accepts.
    pub(super) fn has_known_result(&self) -> bool {
        [Self::OK, Self::REFUSED, Self::ERROR].contains(&self.result.as_str())
    }
}

/// What entitles a cluster to the certificate being committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authority {
    /// A one-time enrollment token; it is consumed by the commit.
    Token {
        /// SHA-256 of the token, lowercase hex.
        hash: String,
    },
    /// A verified Kubernetes ServiceAccount token of the cluster.
    ServiceAccount {
        /// Its subject (`system:serviceaccount:NS:NAME`).
        subject: String,
    },
    /// Proof of possession of the cluster's current intermediate key.
    Renewal {
        /// Serial of the certificate the proof was made with.
        previous_serial: String,
    },
}

/// A signed certificate to record, with the authority it was issued on.
///
/// The store decides, inside one transaction, whether the authority still holds (token
/// unused, cluster not enrolled with another key, renewal from the current certificate)
/// and only then records it; see [`Store::commit`](super::Store::commit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issuance {
    /// The cluster it is for.
    pub cluster: String,
    /// What entitles the cluster to it.
    pub authority: Authority,
    /// SHA-256 of the certificate's public key.
    pub key_fingerprint: String,
    /// The certificate's serial.
    pub serial: String,
    /// The certificate's notAfter.
    pub not_after: OffsetDateTime,
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// The chain above it up to the root, PEM.
    pub chain_pem: String,
    /// Fingerprints of the roots handed out with it.
    pub roots: Vec<String>,
    /// The instant of the request (tokens expire relative to it).
    pub at: OffsetDateTime,
    /// The audit line to write with it. The store sets its `result` (and, on a refusal,
    /// its `reason`); the other fields are written as given.
    pub audit: AuditEvent,
}

impl Issuance {
    /// `enroll` or `renew`, as the `certificates.kind` column has it.
    pub(super) fn kind(&self) -> &'static str {
        match self.authority {
            Authority::Renewal { .. } => "renew",
            Authority::Token { .. } | Authority::ServiceAccount { .. } => "enroll",
        }
    }
}

/// How a [`Store::commit`](super::Store::commit) ended (when the store itself did not fail).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Committed {
    /// The certificate is durably recorded: hand it out.
    Recorded,
    /// The authority did not hold; nothing but the audit line was written.
    Refused(Refusal),
    /// A retry of the enrollment that spent this token, with the same key (its answer
    /// was lost): nothing but the audit line was written; answer with the certificate
    /// `serial` issued then, and discard the one just signed.
    Retried {
        /// The cluster's current certificate.
        serial: String,
    },
}

/// Why a commit was refused. [`Refusal::reason`] names it for metrics and events; its
/// `Display` is the sentence for the client and the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// No token has this hash.
    TokenUnknown,
    /// The token already enrolled a cluster.
    TokenUsed,
    /// The token expired.
    TokenExpired,
    /// The token was made for another cluster.
    TokenForOtherCluster {
        /// The cluster it may enroll.
        bound_to: String,
    },
    /// The cluster is enrolled (not revoked) with a different key.
    AlreadyEnrolled {
        /// Fingerprint of the key it is enrolled with.
        key_fingerprint: String,
    },
    /// A renewal proved with a certificate that is not the cluster's current one.
    NotCurrent {
        /// Serial of the cluster's current certificate.
        current_serial: String,
    },
    /// The cluster was revoked: it may not renew.
    Revoked,
    /// No such cluster ever enrolled.
    UnknownCluster,
}

impl Refusal {
    /// The refusal's name in PascalCase, for metric labels and event reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::TokenUnknown => "TokenUnknown",
            Refusal::TokenUsed => "TokenUsed",
            Refusal::TokenExpired => "TokenExpired",
            Refusal::TokenForOtherCluster { .. } => "TokenForOtherCluster",
            Refusal::AlreadyEnrolled { .. } => "AlreadyEnrolled",
            Refusal::NotCurrent { .. } => "NotCurrent",
            Refusal::Revoked => "Revoked",
            Refusal::UnknownCluster => "UnknownCluster",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::TokenUnknown => f.write_str("the enrollment token is unknown"),
            Refusal::TokenUsed => f.write_str("the enrollment token was already used"),
            Refusal::TokenExpired => f.write_str("the enrollment token has expired"),
            Refusal::TokenForOtherCluster { bound_to } => {
                write!(f, "the enrollment token was made for cluster {bound_to}")
            }
            Refusal::AlreadyEnrolled { key_fingerprint } => write!(
                f,
                "the cluster is already enrolled with another key ({key_fingerprint}); \
                 revoke it to enroll a new key"
            ),
            Refusal::NotCurrent { current_serial } => write!(
                f,
                "renewal must be proved with the cluster's current certificate \
                 (serial {current_serial})"
            ),
            Refusal::Revoked => f.write_str("the cluster is revoked; enroll it again"),
            Refusal::UnknownCluster => f.write_str("the cluster is not enrolled"),
        }
    }
}
