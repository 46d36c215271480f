//! How values are written on the wire of `meshtrust serve`'s API, by the service and by its
//! clients alike: RFC 3339 times in UTC to the second, serials and
//! fingerprints as lowercase hex without separators (what `openssl x509 -serial` and
//! `sha256sum` print, lowercased).

use meshtrust_ca::{Certificate, TrustBundle, sha256_hex};
use time::{OffsetDateTime, UtcOffset};

/// `2026-12-01T10:00:00Z`.
pub fn time(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// The certificate's serial number, lowercase hex.
pub fn serial(certificate: &Certificate) -> String {
    certificate.serial_digits()
}

/// SHA-256 of the certificate's DER, lowercase hex.
pub fn fingerprint(certificate: &Certificate) -> String {
    sha256_hex(certificate.der())
}

/// The fingerprints of every root of `trust`.
pub fn fingerprints(trust: &TrustBundle) -> Vec<String> {
    trust.roots().iter().map(fingerprint).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn times_are_rfc3339_utc_to_the_second() {
        assert_eq!(
            time(datetime!(2026-12-01 10:00:00.5 +01:00)),
            "2026-12-01T09:00:00Z"
        );
    }
}
