//! TLS serving certificates signed directly by a root, for meshtrust's own endpoints (the
//! signing service): a leaf for serverAuth, never a CA.

use std::net::IpAddr;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose,
    SanType,
};
use rustls_pki_types::DnsName;
use time::{Duration, OffsetDateTime};

use crate::cert::Certificate;
use crate::error::{Error, Result, crypto};
use crate::intermediate::validity_window;
use crate::key::{KeyAlgorithm, PrivateKey};
use crate::root::{RootCa, check_validity};
use crate::serial::random_serial;

/// Subject O of every serving certificate.
const SERVER_ORGANIZATION: &str = "meshtrust";

/// The longest subject CN X.520 allows (`ub-common-name`).
const MAX_COMMON_NAME: usize = 64;

impl RootCa {
    /// Signs a TLS serving certificate for `key` at `now`, valid for the `names` given:
    /// each is a DNS name or, if it parses as one, an IP address (wildcards are refused).
    ///
    /// The certificate is a leaf: basicConstraints CA:FALSE (critical), keyUsage
    /// digitalSignature (and keyEncipherment for an RSA key), extendedKeyUsage serverAuth,
    /// the names as SANs, subject `O=meshtrust, CN=<first name>` (no CN when the first name
    /// is longer than the 64 characters a CN may hold), SKI/AKI and a random serial. The
    /// validity runs from `now` (backdated a little) and is cut to the root's.
    pub fn sign_server_certificate(
        &self,
        key: &PrivateKey,
        names: &[String],
        validity: Duration,
        now: OffsetDateTime,
    ) -> Result<Certificate> {
        let root = self.certificate();
        check_validity(
            "root-cert.pem",
            root,
            now,
            "create a new root and rotate to it (docs/rotation.md)",
        )?;
        if validity <= Duration::ZERO {
            return Err(Error::InvalidParameter {
                field: "validity",
                reason: "a serving certificate needs a positive validity (e.g. 90d)".to_string(),
            });
        }
        let mut params = CertificateParams::default();
        params.subject_alt_names = server_names(names)?;
        params.distinguished_name = server_subject(&names[0]);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if matches!(key.algorithm(), KeyAlgorithm::Rsa { .. }) {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial()?);
        let (not_before, not_after, _) =
            validity_window(now, validity, root.not_before(), root.not_after());
        params.not_before = not_before;
        params.not_after = not_after;
        let issuer = self.issuer();
        let cert = params
            .signed_by(key, issuer)
            .map_err(crypto("signing the serving certificate"))?;
        Certificate::from_der("server-cert.pem", 1, cert.der().to_vec())
    }
}

/// The SANs for `names`: IP addresses where they parse as one, checked DNS names otherwise.
fn server_names(names: &[String]) -> Result<Vec<SanType>> {
    if names.is_empty() {
        return Err(Error::InvalidParameter {
            field: "server names",
            reason: "a serving certificate needs at least one DNS name or IP address (e.g. `signer.meshtrust.svc`)".to_string(),
        });
    }
    names.iter().map(|name| server_name(name)).collect()
}

fn server_name(name: &str) -> Result<SanType> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let invalid = || Error::InvalidParameter {
        field: "server name",
        reason: format!(
            "`{name}` is neither an IP address nor a valid DNS name: use letters, digits, '-' and '.', labels of 1-63 characters, no wildcard or trailing dot (e.g. `signer.meshtrust.svc`)"
        ),
    };
    if name.ends_with('.') || DnsName::try_from(name).is_err() {
        return Err(invalid());
    }
    let ia5 = name.to_string().try_into().map_err(|_| invalid())?;
    Ok(SanType::DnsName(ia5))
}

fn server_subject(first_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, SERVER_ORGANIZATION);
    if first_name.len() <= MAX_COMMON_NAME {
        dn.push(DnType::CommonName, first_name);
    }
    dn
}

#[cfg(test)]
#[path = "server_cert_tests.rs"]
mod tests;
