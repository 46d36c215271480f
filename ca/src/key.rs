//! Key types and private keys that never show their bytes.

use std::fmt;
use std::str::FromStr;

use rcgen::{KeyPair, PublicKeyData, SignatureAlgorithm};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;
use zeroize::Zeroizing;

use crate::error::{Error, Result, crypto};
use crate::fingerprint::sha256_hex;

/// The key types meshtrust generates. istiod accepts RSA and ECDSA CA keys only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    /// ECDSA on NIST P-256 with SHA-256 signatures (the default: fast and small).
    #[default]
    EcdsaP256,
    /// ECDSA on NIST P-384 with SHA-384 signatures.
    EcdsaP384,
    /// RSA 2048-bit, PKCS#1 v1.5 SHA-256 signatures.
    Rsa2048,
    /// RSA 3072-bit, PKCS#1 v1.5 SHA-256 signatures.
    Rsa3072,
    /// RSA 4096-bit, PKCS#1 v1.5 SHA-256 signatures (what Istio's Makefile uses).
    Rsa4096,
}

impl KeyType {
    /// Every key type, in the order they are documented.
    pub const ALL: [KeyType; 5] = [
        KeyType::EcdsaP256,
        KeyType::EcdsaP384,
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
    ];

    /// The name used on the command line and in JSON (`ecdsa-p256`, `rsa-4096`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::EcdsaP384 => "ecdsa-p384",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
        }
    }

    /// Whether this is an RSA key type (slow to generate).
    pub fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }

    pub(crate) fn signature_algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            KeyType::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyType::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        KeyType::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::InvalidParameter {
                field: "key type",
                reason: format!(
                    "`{s}` is not one of {}",
                    KeyType::ALL.map(KeyType::as_str).join(", ")
                ),
            })
    }
}

/// The algorithm and size of any public key met in the wild, for inspection and verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum KeyAlgorithm {
    /// ECDSA on a named curve (`P-256`, `P-384`, `P-521`, or the curve OID).
    Ecdsa {
        /// Curve name.
        curve: String,
    },
    /// RSA with its modulus size in bits.
    Rsa {
        /// Modulus size.
        bits: usize,
    },
    /// Ed25519 (istiod refuses it as a CA key).
    Ed25519,
    /// Anything else, by OID.
    Other {
        /// Algorithm OID.
        oid: String,
    },
}

impl KeyAlgorithm {
    /// Reads the algorithm from a certificate's or CSR's subjectPublicKeyInfo.
    pub fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> KeyAlgorithm {
        match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => KeyAlgorithm::Rsa {
                bits: rsa.key_size(),
            },
            Ok(PublicKey::EC(_)) => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|oid| match oid.to_id_string().as_str() {
                        "1.2.840.10045.3.1.7" => "P-256".to_string(),
                        "1.3.132.0.34" => "P-384".to_string(),
                        "1.3.132.0.35" => "P-521".to_string(),
                        other => other.to_string(),
                    })
                    .unwrap_or_else(|| "unknown curve".to_string());
                KeyAlgorithm::Ecdsa { curve }
            }
            _ if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => KeyAlgorithm::Ed25519,
            _ => KeyAlgorithm::Other {
                oid: spki.algorithm.algorithm.to_id_string(),
            },
        }
    }

    /// Whether istiod accepts a CA key of this algorithm (RSA or ECDSA only).
    pub fn accepted_by_istiod(&self) -> bool {
        matches!(self, KeyAlgorithm::Rsa { .. } | KeyAlgorithm::Ecdsa { .. })
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyAlgorithm::Ecdsa { curve } => write!(f, "ECDSA {curve}"),
            KeyAlgorithm::Rsa { bits } => write!(f, "RSA {bits}"),
            KeyAlgorithm::Ed25519 => f.write_str("Ed25519"),
            KeyAlgorithm::Other { oid } => write!(f, "unknown key algorithm {oid}"),
        }
    }
}

/// A private key for a CA. The bytes live in zeroizing buffers; `Debug` and `Display`
/// show the algorithm and the SHA-256 fingerprint of the public key, never key material.
///
/// It signs certificates and CSRs directly (it implements rcgen's `SigningKey`).
pub struct PrivateKey {
    signer: Signer,
    /// The key as it was read or generated (PKCS#8 for generated keys).
    der: Zeroizing<Vec<u8>>,
    pem_label: &'static str,
    algorithm: KeyAlgorithm,
}

/// ECDSA keys sign with ring, whose random numbers come straight from the OS; aws-lc seeds
/// its generator with a jitter-entropy collector that costs more than a hundred ECDSA
/// certificates (docs/BENCHMARKS.md). RSA keys, and key encodings ring does not read (SEC1,
/// PKCS#1), go through rcgen's aws-lc-rs key pair.
enum Signer {
    Ring {
        pair: ring::signature::EcdsaKeyPair,
        alg: &'static SignatureAlgorithm,
    },
    AwsLc(KeyPair),
}

const RING_ECDSA: [(&ring::signature::EcdsaSigningAlgorithm, &SignatureAlgorithm); 2] = [
    (
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &rcgen::PKCS_ECDSA_P256_SHA256,
    ),
    (
        &ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        &rcgen::PKCS_ECDSA_P384_SHA384,
    ),
];

fn ring_ecdsa(pkcs8: &[u8]) -> Option<Signer> {
    let rng = ring::rand::SystemRandom::new();
    RING_ECDSA.iter().find_map(|(ring_alg, alg)| {
        ring::signature::EcdsaKeyPair::from_pkcs8(ring_alg, pkcs8, &rng)
            .ok()
            .map(|pair| Signer::Ring { pair, alg })
    })
}

impl PrivateKey {
    /// Generates a new key of the given type (ECDSA with ring, RSA with aws-lc-rs).
    pub fn generate(key_type: KeyType) -> Result<PrivateKey> {
        let alg = key_type.signature_algorithm();
        let (signer, der) = if key_type.is_rsa() {
            let size = match key_type {
                KeyType::Rsa2048 => rcgen::RsaKeySize::_2048,
                KeyType::Rsa3072 => rcgen::RsaKeySize::_3072,
                _ => rcgen::RsaKeySize::_4096,
            };
            let pair = KeyPair::generate_rsa_for(alg, size).map_err(crypto("key generation"))?;
            let der = Zeroizing::new(pair.serialize_der());
            (Signer::AwsLc(pair), der)
        } else {
            let ring_alg = RING_ECDSA
                .iter()
                .find(|(_, a)| *a == alg)
                .map(|(r, _)| *r)
                .expect("every ECDSA key type has a ring algorithm");
            let rng = ring::rand::SystemRandom::new();
            let doc =
                ring::signature::EcdsaKeyPair::generate_pkcs8(ring_alg, &rng).map_err(|_| {
                    Error::Crypto {
                        operation: "key generation",
                        reason: "ring could not generate an ECDSA key".to_string(),
                    }
                })?;
            let der = Zeroizing::new(doc.as_ref().to_vec());
            let signer = ring_ecdsa(&der).ok_or_else(|| Error::Crypto {
                operation: "key generation",
                reason: "ring could not load the ECDSA key it generated".to_string(),
            })?;
            (signer, der)
        };
        Ok(PrivateKey {
            algorithm: algorithm_of(&signer),
            signer,
            der,
            pem_label: "PRIVATE KEY",
        })
    }

    /// Reads a PEM private key: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1
    /// (`EC PRIVATE KEY`). `name` is the file name used in error messages.
    ///
    /// Only RSA and ECDSA keys are accepted, as istiod accepts no others.
    pub fn from_pem(name: &str, pem: &[u8]) -> Result<PrivateKey> {
        // A copy of the key: zeroized on drop (pki-types does not do that by itself).
        let key = Zeroizing::new(PrivateKeyDer::from_pem_slice(pem).map_err(|e| Error::Pem {
            name: name.to_string(),
            expected: "private key",
            reason: e.to_string(),
        })?);
        let (pem_label, der) = match &*key {
            PrivateKeyDer::Pkcs1(_) => ("RSA PRIVATE KEY", key.secret_der()),
            PrivateKeyDer::Sec1(_) => ("EC PRIVATE KEY", key.secret_der()),
            _ => ("PRIVATE KEY", key.secret_der()), // PKCS#8
        };
        let der = Zeroizing::new(der.to_vec());
        let signer = match &*key {
            PrivateKeyDer::Pkcs8(_) => ring_ecdsa(&der),
            _ => None,
        };
        let signer = match signer {
            Some(s) => s,
            None => {
                let pair = KeyPair::try_from(&*key).map_err(|e| Error::UnsupportedKey {
                    name: name.to_string(),
                    reason: format!("cannot read the private key ({e})"),
                })?;
                if pair.algorithm() == &rcgen::PKCS_ED25519 {
                    return Err(Error::UnsupportedKey {
                        name: name.to_string(),
                        reason: "is an Ed25519 key; istiod accepts RSA or ECDSA CA keys only: use an ECDSA P-256 key".to_string(),
                    });
                }
                Signer::AwsLc(pair)
            }
        };
        Ok(PrivateKey {
            algorithm: algorithm_of(&signer),
            signer,
            der,
            pem_label,
        })
    }

    /// The key as PEM, in the form it was read (generated keys are PKCS#8, `PRIVATE KEY`).
    pub fn to_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(encode_pem(self.pem_label, &self.der))
    }

    /// The DER-encoded subjectPublicKeyInfo of the key.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.subject_public_key_info()
    }

    /// The raw public key (the BIT STRING of subjectPublicKeyInfo).
    pub fn public_key_raw(&self) -> &[u8] {
        self.der_bytes()
    }

    /// Algorithm and size of the key.
    pub fn algorithm(&self) -> &KeyAlgorithm {
        &self.algorithm
    }

    /// SHA-256 of the raw public key, lowercase hex. Safe to print and log.
    pub fn fingerprint(&self) -> String {
        sha256_hex(self.public_key_raw())
    }
}

fn algorithm_of(signer: &Signer) -> KeyAlgorithm {
    use x509_parser::prelude::FromDer;
    let spki_der = signer.subject_public_key_info();
    match SubjectPublicKeyInfo::from_der(&spki_der) {
        Ok((_, spki)) => KeyAlgorithm::from_spki(&spki),
        Err(_) => KeyAlgorithm::Other {
            oid: "unparsable".to_string(),
        },
    }
}

impl PublicKeyData for Signer {
    fn der_bytes(&self) -> &[u8] {
        match self {
            Signer::Ring { pair, .. } => {
                use ring::signature::KeyPair as _;
                pair.public_key().as_ref()
            }
            Signer::AwsLc(pair) => pair.der_bytes(),
        }
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        match self {
            Signer::Ring { alg, .. } => alg,
            Signer::AwsLc(pair) => pair.algorithm(),
        }
    }
}

impl PublicKeyData for PrivateKey {
    fn der_bytes(&self) -> &[u8] {
        self.signer.der_bytes()
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.signer.algorithm()
    }
}

impl rcgen::SigningKey for PrivateKey {
    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        match &self.signer {
            Signer::Ring { pair, .. } => pair
                .sign(&ring::rand::SystemRandom::new(), msg)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| rcgen::Error::RingUnspecified),
            Signer::AwsLc(pair) => pair.sign(msg),
        }
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm.to_string())
            .field("public_key_sha256", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} private key (public key sha256 {})",
            self.algorithm,
            &self.fingerprint()[..16]
        )
    }
}

/// PEM-encodes DER with the given label, LF line endings, 64 columns (as openssl writes).
pub(crate) fn encode_pem(label: &str, der: &[u8]) -> String {
    let block = pem::Pem::new(label, der);
    let text = pem::encode_config(
        &block,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    );
    // The block holds a copy of `der`, which may be key material.
    zeroize::Zeroize::zeroize(&mut block.into_contents());
    text
}
