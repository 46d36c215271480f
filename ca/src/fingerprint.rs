//! SHA-256 fingerprints, the identity meshtrust uses for roots and keys.

use ring::digest;

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = digest::digest(&digest::SHA256, bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a certificate's DER, as colon-separated uppercase hex (openssl's
/// `x509 -fingerprint -sha256` form).
pub fn certificate_fingerprint(der: &[u8]) -> String {
    let d = digest::digest(&digest::SHA256, der);
    d.as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}
