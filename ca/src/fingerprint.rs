//! SHA-256 fingerprints, the identity meshtrust uses for roots and keys.

use ring::digest;

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, bytes))
}

/// SHA-256 of a certificate's DER, as colon-separated uppercase hex (openssl's
/// `x509 -fingerprint -sha256` form).
pub fn certificate_fingerprint(der: &[u8]) -> String {
    colon_separated(&hex::encode_upper(digest::digest(&digest::SHA256, der)))
}

/// The first 16 hex digits of each fingerprint, comma-separated, as the inventory shows
/// them.
pub fn short_fingerprints(fingerprints: &[String]) -> String {
    fingerprints
        .iter()
        .map(|r| &r[..r.len().min(16)])
        .collect::<Vec<_>>()
        .join(", ")
}

/// `abcdef` as `ab:cd:ef`: hex digits, two by two.
pub(crate) fn colon_separated(hex_digits: &str) -> String {
    let mut out = String::with_capacity(hex_digits.len() * 3 / 2);
    for (i, pair) in hex_digits.as_bytes().chunks(2).enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.extend(pair.iter().map(|&b| char::from(b)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // FIPS 180-2, appendix B.1: SHA-256("abc").
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn both_forms_spell_the_same_digest() {
        assert_eq!(sha256_hex(b"abc"), ABC);
        let colons = certificate_fingerprint(b"abc");
        assert_eq!(colons.len(), 32 * 3 - 1);
        assert_eq!(colons.replace(':', ""), ABC.to_ascii_uppercase());
        assert!(colons.starts_with("BA:78:16:BF:") && colons.ends_with(":00:15:AD"));
    }

    #[test]
    fn colon_separated_pairs_digits() {
        assert_eq!(colon_separated(""), "");
        assert_eq!(colon_separated("0a"), "0a");
        assert_eq!(colon_separated("0a1b2c"), "0a:1b:2c");
    }
}
