//! Why a ServiceAccount token was refused: a stable code and a message a person can act on.

use std::fmt;

use meshtrust_issuer::server::api::SERVICE_ACCOUNT_AUDIENCE;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Why [`Verifier::verify`](super::Verifier::verify) refused a token. Each variant has a
/// stable [`code`](Refusal::code); the `Display` text says what was wrong and what to do.
/// Values taken from the token (issuer, subject, audience, key id) are shown as read, cut
/// to a printable length; the token itself is never part of a refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The token is not a compact JWS with JSON header and claims, or lacks `exp`.
    Malformed {
        /// What is wrong with its shape.
        reason: String,
    },
    /// The signature does not verify with the issuer's key.
    Signature {
        /// The cluster the token was presented for.
        cluster: String,
        /// The key id the token names, if any.
        kid: Option<String>,
    },
    /// The token's `iss` is not the cluster's issuer.
    Issuer {
        /// The cluster the token was presented for.
        cluster: String,
        /// The token's `iss` (empty if it has none).
        found: String,
        /// The issuer configured for the cluster.
        expected: String,
    },
    /// The token's `aud` does not contain `meshtrust`.
    Audience {
        /// The token's audiences (empty if it has none).
        found: Vec<String>,
    },
    /// The token's `exp` is past.
    Expired {
        /// When it expired.
        expired_at: OffsetDateTime,
        /// The time it was checked against.
        now: OffsetDateTime,
    },
    /// The token's `nbf` or `iat` lies ahead.
    NotYetValid {
        /// The cluster the token was presented for.
        cluster: String,
        /// `nbf` or `iat`.
        claim: &'static str,
        /// The time the claim names.
        valid_from: OffsetDateTime,
        /// The time it was checked against.
        now: OffsetDateTime,
    },
    /// The token's `sub` is not the ServiceAccount the cluster enrolls as.
    Subject {
        /// The cluster the token was presented for.
        cluster: String,
        /// The token's `sub` (empty if it has none).
        found: String,
        /// The subject configured for the cluster.
        expected: String,
    },
    /// No key of the cluster's issuer has the token's key id.
    UnknownKey {
        /// The cluster the token was presented for.
        cluster: String,
        /// The key id the token names, if any.
        kid: Option<String>,
        /// Whether the keys come from OIDC discovery (and are re-fetched), not a file.
        discovered: bool,
    },
    /// The token's algorithm is not accepted, or does not fit the key it names.
    Algorithm {
        /// The token's `alg`.
        alg: String,
        /// The key id, when the key exists but is of another type.
        mismatched_kid: Option<String>,
    },
    /// The cluster has no ServiceAccount issuer configured.
    ClusterNotConfigured {
        /// The cluster the token was presented for.
        cluster: String,
    },
    /// The cluster's issuer keys could not be fetched.
    JwksUnavailable {
        /// The cluster the token was presented for.
        cluster: String,
        /// Why the last fetch failed.
        reason: String,
    },
}

impl Refusal {
    /// The stable, machine-readable code: `sa_token_malformed`, `sa_token_signature`,
    /// `sa_token_issuer`, `sa_token_audience`, `sa_token_expired`, `sa_token_not_yet_valid`,
    /// `sa_token_subject`, `sa_token_unknown_key`, `sa_token_algorithm`,
    /// `sa_cluster_not_configured` or `sa_jwks_unavailable`.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Malformed { .. } => "sa_token_malformed",
            Refusal::Signature { .. } => "sa_token_signature",
            Refusal::Issuer { .. } => "sa_token_issuer",
            Refusal::Audience { .. } => "sa_token_audience",
            Refusal::Expired { .. } => "sa_token_expired",
            Refusal::NotYetValid { .. } => "sa_token_not_yet_valid",
            Refusal::Subject { .. } => "sa_token_subject",
            Refusal::UnknownKey { .. } => "sa_token_unknown_key",
            Refusal::Algorithm { .. } => "sa_token_algorithm",
            Refusal::ClusterNotConfigured { .. } => "sa_cluster_not_configured",
            Refusal::JwksUnavailable { .. } => "sa_jwks_unavailable",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Malformed { reason } => write!(
                f,
                "the ServiceAccount token is malformed: {reason}; send the contents of the \
                 projected token file as they are"
            ),
            Refusal::Signature { cluster, kid } => write!(
                f,
                "the token's signature does not verify with {} of cluster {cluster}'s \
                 service-account issuer: it was not signed by that cluster (or was altered)",
                key_name(kid.as_deref())
            ),
            Refusal::Issuer { .. }
            | Refusal::Audience { .. }
            | Refusal::Expired { .. }
            | Refusal::NotYetValid { .. }
            | Refusal::Subject { .. } => self.fmt_claim(f),
            Refusal::UnknownKey {
                cluster,
                kid,
                discovered,
            } => unknown_key(f, cluster, kid.as_deref(), *discovered),
            Refusal::Algorithm {
                alg,
                mismatched_kid: None,
            } => write!(
                f,
                "the token is signed with {}: meshtrust accepts ServiceAccount tokens signed \
                 with RS256, ES256 or ES384, never unsigned (none) or HMAC ones",
                shown(alg)
            ),
            Refusal::Algorithm {
                alg,
                mismatched_kid: Some(kid),
            } => write!(
                f,
                "the token is signed with {} but names key {}, which is not a {} key: the \
                 token's header does not match the issuer's keys",
                shown(alg),
                shown(kid),
                shown(alg)
            ),
            Refusal::ClusterNotConfigured { cluster } => not_configured(f, &shown(cluster)),
            Refusal::JwksUnavailable { cluster, reason } => write!(
                f,
                "the keys of cluster {cluster}'s service-account issuer are not available: \
                 {reason}; check that this service reaches the cluster's discovery_url (or \
                 its issuer) and that ca_file holds the CA of its certificate, then retry: \
                 the keys are fetched again at most once a minute"
            ),
        }
    }
}

impl Refusal {
    /// The messages of the refusals of a claim; `fmt` writes the others.
    fn fmt_claim(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Issuer {
                cluster,
                found,
                expected,
            } => write!(
                f,
                "the token was issued by {} (iss), but cluster {cluster}'s issuer is \
                 {expected}: send a token from cluster {cluster}, or correct its issuer in \
                 the service configuration",
                shown(found)
            ),
            Refusal::Audience { found } => write!(
                f,
                "the ServiceAccount token's audience is {}, not \"{SERVICE_ACCOUNT_AUDIENCE}\": \
                 project the token with `audience: {SERVICE_ACCOUNT_AUDIENCE}`",
                audience_list(found)
            ),
            Refusal::Expired { expired_at, now } => write!(
                f,
                "the token expired at {} (exp) and it is now {}: read the projected token \
                 file again (the kubelet renews it), not a stored copy",
                rfc3339(*expired_at),
                rfc3339(*now)
            ),
            Refusal::NotYetValid {
                cluster,
                claim,
                valid_from,
                now,
            } => write!(
                f,
                "the token is valid only from {} ({claim}) and it is now {}: check the clocks \
                 of cluster {cluster} and of this service",
                rfc3339(*valid_from),
                rfc3339(*now)
            ),
            Refusal::Subject {
                cluster,
                found,
                expected,
            } => write!(
                f,
                "the token is for {}, but cluster {cluster} enrolls as {expected}: mount the \
                 token of that ServiceAccount, or correct the subject in the service \
                 configuration",
                shown(found)
            ),
            _ => Ok(()),
        }
    }
}

fn not_configured(f: &mut fmt::Formatter<'_>, cluster: &str) -> fmt::Result {
    write!(
        f,
        "cluster {cluster} has no service-account issuer configured: to enroll it with a \
         ServiceAccount token, set `service_account` (its issuer, subject and keys) under \
         `clusters: {cluster}:` in the service configuration; or enroll it with a one-time \
         enrollment token (`meshtrust serve token create --cluster {cluster}`)"
    )
}

fn unknown_key(
    f: &mut fmt::Formatter<'_>,
    cluster: &str,
    kid: Option<&str>,
    discovered: bool,
) -> fmt::Result {
    let found = match kid {
        Some(kid) => format!("the token names key {}", shown(kid)),
        None => "the token names no key (kid)".to_string(),
    };
    if discovered {
        write!(
            f,
            "{found}, which cluster {cluster}'s service-account issuer does not publish: the \
             token comes from another issuer, or its keys changed less than a minute ago \
             (they are fetched again at most once a minute)"
        )
    } else {
        write!(
            f,
            "{found}, which is not in cluster {cluster}'s configured JWKS: update jwks or \
             jwks_file with the cluster's current keys (`kubectl get --raw /openid/v1/jwks`)"
        )
    }
}

fn key_name(kid: Option<&str>) -> String {
    match kid {
        Some(kid) => format!("key {}", shown(kid)),
        None => "any key".to_string(),
    }
}

fn audience_list(found: &[String]) -> String {
    let shown: Vec<String> = found.iter().map(|a| shown(a)).collect();
    serde_json::to_string(&shown).unwrap_or_else(|_| "[]".to_string())
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Longest value taken from a token that a message repeats.
const SHOWN_CHARS: usize = 200;

/// A value read from an untrusted token, made safe to print: control characters replaced,
/// cut at [`SHOWN_CHARS`], and "(none)" when empty.
pub(super) fn shown(value: &str) -> String {
    if value.is_empty() {
        return "(none)".to_string();
    }
    let mut out: String = value
        .chars()
        .take(SHOWN_CHARS)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if value.chars().count() > SHOWN_CHARS {
        out.push('…');
    }
    out
}

#[cfg(test)]
#[path = "refusal_tests.rs"]
mod tests;
