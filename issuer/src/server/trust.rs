//! How a client trusts the TLS certificate of `meshtrust serve`: certificates it anchors
//! the service's chain to, or the fingerprint of one certificate the service presents.
//!
//! A fingerprint is what a newcomer can be given out of band (the way `step ca bootstrap`
//! takes one): the service must present, in its chain, a certificate with that SHA-256, and
//! its leaf must path-validate to that certificate (the only trust anchor) and be valid for
//! the host of the URL. A fingerprint alone proves nothing: it is the path validation that
//! ties the TLS key to it.

use std::fmt;
use std::sync::Arc;

use meshtrust_ca::{Certificate, sha256_hex};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore,
    SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::error::{Error, Result};

/// How a client decides that it talks to the real `meshtrust serve`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerTrust {
    /// The certificates (usually one root) the service's chain must lead to, as a CA bundle
    /// file holds them. Only these are trusted: the system's roots are not.
    CaBundle(Vec<CertificateDer<'static>>),
    /// SHA-256 of the DER of a certificate (normally the service's root) that the service
    /// presents in its chain: 64 hex digits, any case, colons allowed.
    Fingerprint(String),
}

impl ServerTrust {
    /// Trusts the certificates of a PEM file; `name` (its path) names it in messages.
    pub fn ca_bundle_from_pem(name: &str, pem: &[u8]) -> Result<ServerTrust> {
        let certs = Certificate::all_from_pem(name, pem).map_err(|cause| Error::Ca {
            context: format!("the CA bundle for the service's TLS certificate ({name})"),
            cause,
        })?;
        Ok(ServerTrust::CaBundle(
            certs.iter().map(|c| c.der().clone()).collect(),
        ))
    }

    /// Pins the certificate whose SHA-256 fingerprint is `fingerprint` (hex, any case,
    /// with or without colons, optionally after a `…=` label as openssl prints it).
    pub fn fingerprint(fingerprint: &str) -> Result<ServerTrust> {
        normalize_fingerprint(fingerprint).map(ServerTrust::Fingerprint)
    }

    /// The rustls configuration for a service at `url`: one crypto provider (ring), this
    /// trust and nothing else, HTTP/2 or HTTP/1.1.
    pub(crate) fn client_config(&self, url: &str) -> Result<ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Internal {
                reason: format!("the ring TLS provider offers no protocol version: {e}"),
            })?;
        let mut config = match self {
            ServerTrust::CaBundle(certs) => builder
                .with_root_certificates(root_store(url, certs)?)
                .with_no_client_auth(),
            ServerTrust::Fingerprint(fingerprint) => {
                let verifier = PinnedCertificate {
                    url: url.to_string(),
                    fingerprint: normalize_fingerprint(fingerprint)?,
                    provider,
                };
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verifier))
                    .with_no_client_auth()
            }
        };
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl fmt::Debug for ServerTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerTrust::CaBundle(certs) => f
                .debug_tuple("CaBundle")
                .field(&certs.iter().map(|c| sha256_hex(c)).collect::<Vec<_>>())
                .finish(),
            ServerTrust::Fingerprint(fp) => f.debug_tuple("Fingerprint").field(fp).finish(),
        }
    }
}

/// A trust store holding exactly `certs`.
fn root_store(url: &str, certs: &[CertificateDer<'static>]) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for (i, cert) in certs.iter().enumerate() {
        roots.add(cert.clone()).map_err(|e| Error::Config {
            location: format!("the CA bundle for {url}"),
            reason: format!(
                "certificate #{} cannot anchor a TLS chain ({}); give the PEM of the CA that issued the service's certificate",
                i + 1,
                crate::server::failure::describe_tls(&e)
            ),
        })?;
    }
    if roots.is_empty() {
        return Err(Error::Config {
            location: format!("the CA bundle for {url}"),
            reason:
                "holds no certificate; give the PEM of the CA that issued the service's certificate"
                    .to_string(),
        });
    }
    Ok(roots)
}

/// Lowercase hex without colons, or a message saying what a fingerprint looks like.
pub(crate) fn normalize_fingerprint(text: &str) -> Result<String> {
    let value = text.rsplit('=').next().unwrap_or(text);
    let hex: String = value
        .trim()
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(hex);
    }
    Err(Error::Config {
        location: "the service's certificate fingerprint".to_string(),
        reason: format!(
            "`{}` is not a SHA-256 fingerprint: give the 64 hex digits (colons optional) of the SHA-256 of the service's root certificate, as its trust bundle lists it",
            text.trim()
        ),
    })
}

/// The certificates a service presented, for messages: `O=…, CN=… (sha256 ab12…)`.
fn describe_presented(presented: &[&CertificateDer<'_>]) -> Vec<String> {
    presented
        .iter()
        .enumerate()
        .map(|(i, der)| {
            let fingerprint = sha256_hex(der);
            match Certificate::from_der("presented certificate", i + 1, der.to_vec()) {
                Ok(cert) => format!("{} (sha256 {fingerprint})", cert.subject()),
                Err(_) => format!("an unparsable certificate (sha256 {fingerprint})"),
            }
        })
        .collect()
}

/// Why a pinned handshake failed before any path validation: the pinned certificate is not
/// among the presented ones. Carried through rustls, hyper and reqwest as the source of
/// their errors, and turned back into [`Error::UntrustedService`] by the client.
#[derive(Debug)]
pub(crate) struct PinMismatch {
    pub(crate) url: String,
    pub(crate) fingerprint: String,
    pub(crate) presented: Vec<String>,
}

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the service at {} presented no certificate with fingerprint {}",
            self.url, self.fingerprint
        )
    }
}

impl std::error::Error for PinMismatch {}

/// Verifies a server whose chain must contain the certificate with `fingerprint`, then
/// path-validates the leaf to that certificate alone and checks the server name.
#[derive(Debug)]
struct PinnedCertificate {
    url: String,
    fingerprint: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let presented: Vec<&CertificateDer<'_>> =
            std::iter::once(end_entity).chain(intermediates).collect();
        let Some(pinned) = presented.iter().find(|c| sha256_hex(c) == self.fingerprint) else {
            let mismatch = PinMismatch {
                url: self.url.clone(),
                fingerprint: self.fingerprint.clone(),
                presented: describe_presented(&presented),
            };
            return Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(mismatch)),
            )));
        };
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from(pinned.to_vec()))?;
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&self.provider))
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
#[path = "trust_tests.rs"]
mod tests;
