//! Parsed certificates: the facts meshtrust reads from X.509.

use std::sync::{Arc, OnceLock};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::error::{Error, Result};
use crate::fingerprint::certificate_fingerprint;
use crate::key::KeyAlgorithm;

/// One parsed X.509 certificate, owning its DER.
///
/// The fields that checks read again and again are extracted once, when the certificate is
/// parsed (re-parsing the DER on every question cost a fifth of a 100-cluster run).
#[derive(Clone)]
pub struct Certificate {
    der: CertificateDer<'static>,
    facts: Arc<Facts>,
}

struct Facts {
    subject: String,
    subject_raw: Vec<u8>,
    issuer_raw: Vec<u8>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    is_ca: bool,
    path_len: Option<u32>,
    may_sign: bool,
    extended_key_usage: Option<Vec<String>>,
    key_algorithm: KeyAlgorithm,
    public_key_raw: Vec<u8>,
    signature_oid: String,
    self_signed: OnceLock<bool>,
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Certificate) -> bool {
        self.der == other.der
    }
}

impl Eq for Certificate {}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject())
            .field("sha256", &self.fingerprint())
            .finish()
    }
}

impl Certificate {
    /// Parses DER; `name` and `index` (1-based) locate it in error messages.
    pub fn from_der(name: &str, index: usize, der: Vec<u8>) -> Result<Certificate> {
        let (_, x) = X509Certificate::from_der(&der).map_err(|e| Error::Certificate {
            name: name.to_string(),
            index,
            reason: e.to_string(),
        })?;
        let facts = Facts::read(&x);
        Ok(Certificate {
            der: CertificateDer::from(der),
            facts: Arc::new(facts),
        })
    }

    /// Parses every `CERTIFICATE` block of a PEM file, in order. An empty file, a block that
    /// is not base64, or a block that is not X.509 is an error naming the file.
    pub fn all_from_pem(name: &str, pem: &[u8]) -> Result<Vec<Certificate>> {
        let mut out = Vec::new();
        for (i, item) in CertificateDer::pem_slice_iter(pem).enumerate() {
            let der = item.map_err(|e| Error::Pem {
                name: name.to_string(),
                expected: "certificate",
                reason: e.to_string(),
            })?;
            out.push(Certificate::from_der(name, i + 1, der.to_vec())?);
        }
        if out.is_empty() {
            return Err(Error::Pem {
                name: name.to_string(),
                expected: "certificate",
                reason: "no `-----BEGIN CERTIFICATE-----` block found".to_string(),
            });
        }
        Ok(out)
    }

    /// The DER bytes.
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.der
    }

    /// PEM text of this certificate.
    pub fn to_pem(&self) -> String {
        crate::key::encode_pem("CERTIFICATE", &self.der)
    }

    /// The parsed view (cheap: zero-copy over the owned DER).
    pub fn x509(&self) -> X509Certificate<'_> {
        X509Certificate::from_der(&self.der)
            .expect("checked when constructed")
            .1
    }

    /// SHA-256 fingerprint of the DER, `AB:CD:…` as openssl prints it.
    pub fn fingerprint(&self) -> String {
        certificate_fingerprint(&self.der)
    }

    /// Subject as an RFC 4514-like string.
    pub fn subject(&self) -> String {
        self.facts.subject.clone()
    }

    /// Start of validity.
    pub fn not_before(&self) -> OffsetDateTime {
        self.facts.not_before
    }

    /// End of validity.
    pub fn not_after(&self) -> OffsetDateTime {
        self.facts.not_after
    }

    /// basicConstraints CA:TRUE.
    pub fn is_ca(&self) -> bool {
        self.facts.is_ca
    }

    /// basicConstraints pathLenConstraint, if any.
    pub fn path_len(&self) -> Option<u32> {
        self.facts.path_len
    }

    /// Whether keyUsage allows signing certificates (absent keyUsage allows everything).
    pub fn may_sign_certificates(&self) -> bool {
        self.facts.may_sign
    }

    /// The extendedKeyUsage purposes, by name; `None` when the extension is absent.
    pub fn extended_key_usage(&self) -> Option<Vec<String>> {
        self.facts.extended_key_usage.clone()
    }

    /// The extendedKeyUsage purposes when they exclude serverAuth (and anyExtendedKeyUsage):
    /// istiod verifies its CA with Go's `x509.Verify` and empty KeyUsages, which then means
    /// serverAuth, so such a CA is refused. `None` when the EKU is absent or allows it.
    pub fn eku_without_server_auth(&self) -> Option<Vec<String>> {
        self.extended_key_usage().filter(|eku| {
            !eku.iter()
                .any(|p| p == "serverAuth" || p == "anyExtendedKeyUsage")
        })
    }

    /// Key algorithm and size of the subject public key.
    pub fn key_algorithm(&self) -> KeyAlgorithm {
        self.facts.key_algorithm.clone()
    }

    /// The raw subject public key (BIT STRING contents).
    pub fn public_key_raw(&self) -> Vec<u8> {
        self.facts.public_key_raw.clone()
    }

    /// Whether the signature uses SHA-1 (refused by every modern verifier).
    pub fn signed_with_sha1(&self) -> bool {
        matches!(
            self.facts.signature_oid.as_str(),
            "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" | "1.2.840.10045.4.1" | "1.2.840.10040.4.3"
        )
    }

    /// Signature algorithm name (`ecdsa-with-SHA256`, …) or its OID.
    pub fn signature_algorithm(&self) -> String {
        let x = self.x509();
        let oid = &x.signature_algorithm.algorithm;
        x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
            .map(str::to_string)
            .unwrap_or_else(|_| oid.to_id_string())
    }

    /// Whether `issuer` issued this certificate: names match and the signature verifies.
    pub fn is_issued_by(&self, issuer: &Certificate) -> bool {
        if self.facts.issuer_raw != issuer.facts.subject_raw {
            return false;
        }
        let (child, parent) = (self.x509(), issuer.x509());
        child.verify_signature(Some(parent.public_key())).is_ok()
    }

    /// Self-issued and self-signed.
    pub fn is_self_signed(&self) -> bool {
        *self
            .facts
            .self_signed
            .get_or_init(|| self.is_issued_by(self))
    }

    /// Subject alternative names, as `DNS:…`, `URI:…`, `IP:…`, `email:…`.
    pub fn subject_alt_names(&self) -> Vec<String> {
        let x = self.x509();
        let Ok(Some(san)) = x.subject_alternative_name() else {
            return Vec::new();
        };
        san.value
            .general_names
            .iter()
            .map(|n| match n {
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
            })
            .collect()
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

    /// Serial number as colon-separated hex.
    pub fn serial_hex(&self) -> String {
        self.x509()
            .raw_serial()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
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

impl Facts {
    fn read(x: &X509Certificate<'_>) -> Facts {
        let bc = match x.basic_constraints() {
            Ok(Some(bc)) => Some(bc.value.clone()),
            _ => None,
        };
        let is_ca = bc.as_ref().is_some_and(|b| b.ca);
        let extended_key_usage = x.extended_key_usage().ok().flatten().map(|eku| {
            let e = eku.value;
            let mut out: Vec<String> = [
                (e.any, "anyExtendedKeyUsage"),
                (e.server_auth, "serverAuth"),
                (e.client_auth, "clientAuth"),
                (e.code_signing, "codeSigning"),
                (e.email_protection, "emailProtection"),
                (e.time_stamping, "timeStamping"),
                (e.ocsp_signing, "OCSPSigning"),
            ]
            .into_iter()
            .filter(|(set, _)| *set)
            .map(|(_, n)| n.to_string())
            .collect();
            out.extend(e.other.iter().map(|o| o.to_id_string()));
            out
        });
        Facts {
            subject: x.subject().to_string(),
            subject_raw: x.subject().as_raw().to_vec(),
            issuer_raw: x.issuer().as_raw().to_vec(),
            not_before: x.validity().not_before.to_datetime(),
            not_after: x.validity().not_after.to_datetime(),
            is_ca,
            path_len: bc.filter(|b| b.ca).and_then(|b| b.path_len_constraint),
            may_sign: match x.key_usage() {
                Ok(Some(ku)) => ku.value.key_cert_sign(),
                Ok(None) => true,
                Err(_) => false,
            },
            extended_key_usage,
            key_algorithm: KeyAlgorithm::from_spki(x.public_key()),
            public_key_raw: x.public_key().subject_public_key.data.to_vec(),
            signature_oid: x.signature_algorithm.algorithm.to_id_string(),
            self_signed: OnceLock::new(),
        }
    }
}

fn hex_colon(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
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
