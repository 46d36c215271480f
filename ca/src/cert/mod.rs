//! Parsed certificates: the facts meshtrust reads from X.509, extracted once when a
//! certificate is parsed. What `meshtrust inspect` shows, read on demand, is in `info.rs`.

use std::sync::{Arc, OnceLock};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use crate::error::{Error, Result};
use crate::fingerprint::certificate_fingerprint;
use crate::key::KeyAlgorithm;

mod info;

pub(crate) use info::general_name;

pub use info::CertInfo;

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
    serial: Vec<u8>,
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
            serial: x.raw_serial().to_vec(),
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

/// Whether `cert` leads to `root`: issued by it directly, or through issuers found in
/// `chain` (each link's signature checked), as a subordinate CA's chain does.
pub(crate) fn chains_to(cert: &Certificate, chain: &[Certificate], root: &Certificate) -> bool {
    let mut current = cert;
    for _ in 0..=chain.len() {
        if current == root || current.is_issued_by(root) {
            return true;
        }
        match chain
            .iter()
            .find(|c| *c != current && current.is_issued_by(c))
        {
            Some(issuer) => current = issuer,
            None => return false,
        }
    }
    false
}
