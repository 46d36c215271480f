//! The self-signed root of trust that meshtrust manages.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyUsagePurpose,
    PublicKeyData, SignatureAlgorithm, SigningKey,
};
use time::{Duration, OffsetDateTime};

use crate::bundle::CaCerts;
use crate::cert::Certificate;
use crate::error::{Error, Result, crypto};
use crate::key::{KeyType, PrivateKey};
use crate::serial::random_serial;
use crate::trust::TrustBundle;

/// How far `not_before` is backdated, to tolerate clock skew between machines.
pub(crate) const BACKDATE: Duration = Duration::minutes(5);

/// Parameters of a new root CA. Defaults follow Istio's `Makefile.selfsigned.mk`
/// (`O=Istio, CN=Root CA`, 10 years) with an ECDSA P-256 key.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RootParams {
    /// Subject O.
    pub organization: String,
    /// Subject CN.
    pub common_name: String,
    /// Key type of the root key.
    pub key_type: KeyType,
    /// Lifetime from `now`.
    pub validity: Duration,
    /// basicConstraints pathLenConstraint; `None` (the default) sets no limit.
    pub path_len: Option<u8>,
}

impl Default for RootParams {
    fn default() -> Self {
        RootParams {
            organization: "Istio".to_string(),
            common_name: "Root CA".to_string(),
            key_type: KeyType::EcdsaP256,
            validity: Duration::days(3650),
            path_len: None,
        }
    }
}

impl RootParams {
    /// Generates a key and a self-signed root certificate valid from `now`.
    pub fn self_signed(&self, now: OffsetDateTime) -> Result<RootCa> {
        if self.validity <= Duration::ZERO {
            return Err(Error::InvalidParameter {
                field: "validity",
                reason: "a root needs a positive validity (e.g. 10y)".to_string(),
            });
        }
        let key = PrivateKey::generate(self.key_type)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, self.organization.as_str());
        dn.push(DnType::CommonName, self.common_name.as_str());
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(match self.path_len {
            Some(n) => BasicConstraints::Constrained(n),
            None => BasicConstraints::Unconstrained,
        });
        params.key_usages = ca_key_usages();
        params.serial_number = Some(random_serial()?);
        params.not_before = now - BACKDATE;
        params.not_after = now + self.validity;
        let cert = params
            .self_signed(&key)
            .map_err(crypto("signing the root certificate"))?;
        let cert = Certificate::from_der("root-cert.pem", 1, cert.der().to_vec())?;
        RootCa::new(cert, key)
    }
}

/// keyUsage of every CA certificate meshtrust issues (critical, as rcgen writes it).
pub(crate) fn ca_key_usages() -> Vec<KeyUsagePurpose> {
    vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ]
}

/// A root CA: its certificate and private key.
#[derive(Debug)]
pub struct RootCa {
    cert: Certificate,
    key: Arc<PrivateKey>,
    /// The root as rcgen's issuer, read from the certificate once instead of once per
    /// signature (a parse of the certificate each time).
    issuer: Issuer<'static, SharedKey>,
}

/// The root key, shared by the root and its rcgen issuer.
struct SharedKey(Arc<PrivateKey>);

impl PublicKeyData for SharedKey {
    fn der_bytes(&self) -> &[u8] {
        PublicKeyData::der_bytes(&*self.0)
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        PublicKeyData::algorithm(&*self.0)
    }
}

impl SigningKey for SharedKey {
    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        SigningKey::sign(&*self.0, msg)
    }
}

impl RootCa {
    /// Loads a root from `root-cert.pem` and `root-key.pem` contents and checks that it can
    /// sign at `now`: one self-signed CA certificate allowed to sign certificates, currently
    /// valid, with a matching RSA or ECDSA key.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8], now: OffsetDateTime) -> Result<RootCa> {
        let certs = Certificate::all_from_pem("root-cert.pem", cert_pem)?;
        if certs.len() != 1 {
            return Err(Error::InvalidParameter {
                field: "root certificate",
                reason: format!(
                    "root-cert.pem holds {} certificates; a signing root directory needs exactly one (the root whose key is root-key.pem)",
                    certs.len()
                ),
            });
        }
        let cert = certs.into_iter().next().expect("one certificate");
        if !cert.is_ca() {
            return Err(Error::NotCa {
                name: "root-cert.pem".to_string(),
                reason: "basicConstraints CA:TRUE is missing".to_string(),
            });
        }
        if !cert.may_sign_certificates() {
            return Err(Error::NotCa {
                name: "root-cert.pem".to_string(),
                reason: "keyUsage lacks keyCertSign".to_string(),
            });
        }
        if !cert.is_self_signed() {
            return Err(Error::InvalidParameter {
                field: "root certificate",
                reason: format!(
                    "root-cert.pem ({}) is not self-signed; meshtrust's local issuer signs from a root. Use the AWS Private CA issuer for subordinate CAs",
                    cert.subject()
                ),
            });
        }
        check_validity(
            "root-cert.pem",
            &cert,
            now,
            "create a new root and rotate to it (docs/rotation.md)",
        )?;
        let key = PrivateKey::from_pem("root-key.pem", key_pem)?;
        if key.public_key_raw() != cert.public_key_raw() {
            return Err(Error::KeyMismatch {
                key: "root-key.pem".to_string(),
                cert: "root-cert.pem".to_string(),
            });
        }
        RootCa::new(cert, key)
    }

    fn new(cert: Certificate, key: PrivateKey) -> Result<RootCa> {
        let key = Arc::new(key);
        let issuer = Issuer::from_ca_cert_der(cert.der(), SharedKey(key.clone()))
            .map_err(crypto("reading the root certificate as issuer"))?;
        Ok(RootCa { cert, key, issuer })
    }

    /// The root as the issuer rcgen signs with.
    pub(crate) fn issuer(&self) -> &Issuer<'static, impl SigningKey> {
        &self.issuer
    }

    /// The root certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    /// The root key.
    pub fn key(&self) -> &PrivateKey {
        &self.key
    }

    /// The trust bundle of this root alone.
    pub fn trust_bundle(&self) -> TrustBundle {
        TrustBundle::of(self.cert.clone())
    }

    /// A cluster's bundle for an intermediate this root signed: the chain is the root, and
    /// so is the trust bundle.
    pub fn cacerts(&self, intermediate: Certificate, key: PrivateKey) -> CaCerts {
        CaCerts::new(
            intermediate,
            key,
            vec![self.cert.clone()],
            self.trust_bundle(),
        )
    }
}

/// Refuses a certificate that is not valid at `now`.
pub(crate) fn check_validity(
    name: &str,
    cert: &Certificate,
    now: OffsetDateTime,
    fix: &'static str,
) -> Result<()> {
    if now > cert.not_after() {
        return Err(Error::Validity {
            name: name.to_string(),
            state: format!("expired at {}", crate::fmt_time(cert.not_after())),
            fix,
        });
    }
    if now < cert.not_before() {
        return Err(Error::Validity {
            name: name.to_string(),
            state: format!("is not valid before {}", crate::fmt_time(cert.not_before())),
            fix: "check the clock of this machine, or wait until the certificate becomes valid",
        });
    }
    Ok(())
}
