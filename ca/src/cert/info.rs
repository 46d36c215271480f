//! What `meshtrust inspect` shows about a certificate: the readers that parse the DER on
//! demand (names, usages, serial, signature algorithm) and [`CertInfo`], which gathers them.

use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::extensions::{GeneralName, ParsedExtension};

use super::Certificate;
use crate::key::KeyAlgorithm;

impl Certificate {
    /// Signature algorithm name (`ecdsa-with-SHA256`, …) or its OID.
    pub fn signature_algorithm(&self) -> String {
        let x = self.x509();
        let oid = &x.signature_algorithm.algorithm;
        x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
            .map(str::to_string)
            .unwrap_or_else(|_| oid.to_id_string())
    }

    /// Subject alternative names, as `DNS:…`, `URI:…`, `IP:…`, `email:…`.
    pub fn subject_alt_names(&self) -> Vec<String> {
        let x = self.x509();
        let Ok(Some(san)) = x.subject_alternative_name() else {
            return Vec::new();
        };
        san.value.general_names.iter().map(general_name).collect()
    }

    /// keyUsage bits by name; empty when the extension is absent.
    pub fn key_usage(&self) -> Vec<String> {
        let x = self.x509();
        let Ok(Some(ku)) = x.key_usage() else {
            return Vec::new();
        };
        let k = ku.value;
        [
            (k.digital_signature(), "digitalSignature"),
            (k.non_repudiation(), "contentCommitment"),
            (k.key_encipherment(), "keyEncipherment"),
            (k.data_encipherment(), "dataEncipherment"),
            (k.key_agreement(), "keyAgreement"),
            (k.key_cert_sign(), "keyCertSign"),
            (k.crl_sign(), "cRLSign"),
            (k.encipher_only(), "encipherOnly"),
            (k.decipher_only(), "decipherOnly"),
        ]
        .into_iter()
        .filter(|(set, _)| *set)
        .map(|(_, n)| n.to_string())
        .collect()
    }

    /// Serial number as lowercase hex digits without separators (the service's name for a
    /// certificate).
    pub fn serial_digits(&self) -> String {
        hex::encode(&self.facts.serial)
    }

    /// Serial number as colon-separated hex.
    pub fn serial_hex(&self) -> String {
        hex_colon(&self.facts.serial)
    }

    /// Everything `meshtrust inspect` shows about this certificate.
    pub fn info(&self) -> CertInfo {
        let x = self.x509();
        let key_id = |ext: &ParsedExtension<'_>| match ext {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(hex_colon(k.0)),
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| hex_colon(k.0))
            }
            _ => None,
        };
        let mut ski = None;
        let mut aki = None;
        for ext in x.extensions() {
            match ext.parsed_extension() {
                e @ ParsedExtension::SubjectKeyIdentifier(_) => ski = key_id(e),
                e @ ParsedExtension::AuthorityKeyIdentifier(_) => aki = key_id(e),
                _ => {}
            }
        }
        CertInfo {
            subject: x.subject().to_string(),
            issuer: x.issuer().to_string(),
            serial: self.serial_hex(),
            not_before: self.not_before(),
            not_after: self.not_after(),
            key: self.key_algorithm(),
            signature_algorithm: self.signature_algorithm(),
            is_ca: self.is_ca(),
            path_len: self.path_len(),
            key_usage: self.key_usage(),
            extended_key_usage: self.extended_key_usage().unwrap_or_default(),
            subject_alt_names: self.subject_alt_names(),
            subject_key_id: ski,
            authority_key_id: aki,
            self_signed: self.is_self_signed(),
            sha256_fingerprint: self.fingerprint(),
        }
    }
}

fn hex_colon(bytes: &[u8]) -> String {
    crate::fingerprint::colon_separated(&hex::encode(bytes))
}

/// What `inspect` reports for one certificate.
#[derive(Clone, Debug, Serialize)]
pub struct CertInfo {
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Serial number, colon-separated hex.
    pub serial: String,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Public key algorithm and size.
    pub key: KeyAlgorithm,
    /// Signature algorithm.
    pub signature_algorithm: String,
    /// basicConstraints CA.
    pub is_ca: bool,
    /// basicConstraints pathLenConstraint.
    pub path_len: Option<u32>,
    /// keyUsage bits.
    pub key_usage: Vec<String>,
    /// extendedKeyUsage purposes.
    pub extended_key_usage: Vec<String>,
    /// Subject alternative names.
    pub subject_alt_names: Vec<String>,
    /// Subject key identifier.
    pub subject_key_id: Option<String>,
    /// Authority key identifier.
    pub authority_key_id: Option<String>,
    /// Self-signed (a root).
    pub self_signed: bool,
    /// SHA-256 of the DER.
    pub sha256_fingerprint: String,
}

/// A subjectAltName entry as openssl prints it: `DNS:…`, `URI:…`, `IP:…`, `email:…`.
pub(crate) fn general_name(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(d) => format!("DNS:{d}"),
        GeneralName::URI(u) => format!("URI:{u}"),
        GeneralName::RFC822Name(e) => format!("email:{e}"),
        GeneralName::IPAddress(ip) => match ip.len() {
            4 => format!(
                "IP:{}",
                std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*ip).expect("len 4"))
            ),
            16 => format!(
                "IP:{}",
                std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*ip).expect("len 16"))
            ),
            _ => "IP:<invalid>".to_string(),
        },
        other => format!("{other}"),
    }
}
