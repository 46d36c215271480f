//! Proof of possession: at renewal a cluster proves that it holds the key of its current
//! intermediate by signing a canonical message that binds the new request to it
//! ([`possession_message`], [`PrivateKey::sign_message`]); the signing service checks the
//! signature against the current certificate ([`Certificate::verify_message`]).

use rcgen::{PublicKeyData, SigningKey};
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use time::{OffsetDateTime, UtcOffset};

use crate::cert::Certificate;
use crate::cluster::ClusterName;
use crate::error::{Error, Result};
use crate::fingerprint::sha256_hex;
use crate::intermediate::Csr;
use crate::key::{KeyAlgorithm, PrivateKey};

/// The canonical bytes a cluster signs to prove possession of its current key:
///
/// ```text
/// {context}\n{cluster}\n{signed_at, RFC 3339 UTC to the second}\n{sha256 hex of the CSR DER}\n
/// ```
///
/// `context` names the protocol and its version (e.g. `meshtrust-renewal-v1`) so that a
/// signature made for one purpose is never accepted for another; it must not contain a
/// line break. The verifier rebuilds the message from what it received and checks that
/// `signed_at` is recent: the signature alone does not stop a replay.
///
/// ```
/// use meshtrust_ca::{ClusterName, Csr, possession_message};
/// use time::macros::datetime;
///
/// let msg = possession_message(
///     "meshtrust-renewal-v1",
///     &ClusterName::new("cluster1")?,
///     datetime!(2026-03-04 05:06:07.5 +02:00),
///     &Csr::from_der(b"hello".to_vec()),
/// );
/// assert!(msg.starts_with(b"meshtrust-renewal-v1\ncluster1\n2026-03-04T03:06:07Z\n2cf24dba"));
/// # Ok::<(), meshtrust_ca::Error>(())
/// ```
pub fn possession_message(
    context: &str,
    cluster: &ClusterName,
    signed_at: OffsetDateTime,
    csr: &Csr,
) -> Vec<u8> {
    possession_message_over(context, cluster, signed_at, csr.der())
}

/// [`possession_message`] over any `payload` instead of a CSR: the last line is the SHA-256
/// of `payload`, as sent. A report a cluster signs with its current key (its `cacerts`
/// state, sent as JSON text) is bound to the cluster and the time this way.
///
/// ```
/// use meshtrust_ca::{ClusterName, Csr, possession_message, possession_message_over};
/// use time::macros::datetime;
///
/// let cluster = ClusterName::new("cluster1")?;
/// let at = datetime!(2026-03-04 05:06:07 UTC);
/// assert_eq!(
///     possession_message_over("ctx", &cluster, at, b"hello"),
///     possession_message("ctx", &cluster, at, &Csr::from_der(b"hello".to_vec())),
/// );
/// # Ok::<(), meshtrust_ca::Error>(())
/// ```
pub fn possession_message_over(
    context: &str,
    cluster: &ClusterName,
    signed_at: OffsetDateTime,
    payload: &[u8],
) -> Vec<u8> {
    let t = signed_at.to_offset(UtcOffset::UTC);
    let stamp = t
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_else(|_| t.unix_timestamp().to_string());
    format!("{context}\n{cluster}\n{stamp}\n{}\n", sha256_hex(payload)).into_bytes()
}

impl PrivateKey {
    /// Signs `msg` with this key: ECDSA P-256 with SHA-256 and P-384 with SHA-384 (ASN.1 DER
    /// signatures), RSA with PKCS#1 v1.5 SHA-256: what [`Certificate::verify_message`]
    /// checks.
    pub fn sign_message(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let alg = PublicKeyData::algorithm(self);
        let supported = [
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &rcgen::PKCS_ECDSA_P384_SHA384,
            &rcgen::PKCS_RSA_SHA256,
        ];
        if !supported.contains(&alg) {
            return Err(Error::UnsupportedKey {
                name: format!("{self}"),
                reason: "cannot sign a proof of possession: use an ECDSA P-256/P-384 or RSA key"
                    .to_string(),
            });
        }
        self.sign(msg).map_err(|e| Error::Crypto {
            operation: "signing the proof of possession",
            reason: e.to_string(),
        })
    }
}

impl Certificate {
    /// Checks that `signature` over `msg` was made by the key of this certificate, as
    /// [`PrivateKey::sign_message`] makes it. It checks the signature only: whether the
    /// certificate itself is valid, current and issued by the right CA is the caller's to
    /// check.
    pub fn verify_message(&self, msg: &[u8], signature: &[u8]) -> Result<()> {
        let key = self.key_algorithm();
        let alg = verification_algorithm(&key).ok_or_else(|| Error::UnsupportedKey {
            name: format!("the certificate {}", self.subject()),
            reason: format!(
                "has a {key} key, which cannot verify a proof of possession; expected ECDSA P-256/P-384 or RSA 2048-8192"
            ),
        })?;
        let raw = self.public_key_raw();
        UnparsedPublicKey::new(alg, &raw)
            .verify(msg, signature)
            .map_err(|_| Error::InvalidParameter {
                field: "signature",
                reason: format!(
                    "the signature does not verify with the public key of {}: the message was changed, or it was signed with another key",
                    self.subject()
                ),
            })
    }
}

fn verification_algorithm(key: &KeyAlgorithm) -> Option<&'static dyn VerificationAlgorithm> {
    match key {
        KeyAlgorithm::Ecdsa { curve } if curve == "P-256" => {
            Some(&signature::ECDSA_P256_SHA256_ASN1)
        }
        KeyAlgorithm::Ecdsa { curve } if curve == "P-384" => {
            Some(&signature::ECDSA_P384_SHA384_ASN1)
        }
        KeyAlgorithm::Rsa { bits } if (2048..=8192).contains(bits) => {
            Some(&signature::RSA_PKCS1_2048_8192_SHA256)
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "possession_tests.rs"]
mod tests;
