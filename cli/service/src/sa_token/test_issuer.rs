//! A stand-in for a member cluster's service-account issuer (tests only): keys generated
//! with meshtrust-ca, published as a JWKS built from the public key's own bytes (not by the
//! JWT library under test), and tokens shaped like the ones Kubernetes projects.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use meshtrust_ca::{KeyType, PrivateKey};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::ServiceAccountIssuer;

/// The issuer tokens say they come from.
pub const ISSUER: &str = "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC";
/// The ServiceAccount that enrolls.
pub const SUBJECT: &str = "system:serviceaccount:istio-system:meshtrust-agent";
/// When the tests happen.
pub const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

/// One signing key of an issuer.
pub struct TestKey {
    pub kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

impl TestKey {
    /// An RSA 2048 key signing RS256 (what Kubernetes uses).
    pub fn rsa(kid: &str) -> TestKey {
        let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
        let encoding = EncodingKey::from_rsa_pem(key.to_pem().as_bytes()).unwrap();
        let der = key.public_key_der();
        let (_, spki) = SubjectPublicKeyInfo::from_der(&der).unwrap();
        let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
            panic!("an RSA key has an RSA public key")
        };
        let jwk = json!({
            "use": "sig", "kty": "RSA", "kid": kid, "alg": "RS256",
            "n": b64(unsigned(rsa.modulus)), "e": b64(unsigned(rsa.exponent)),
        });
        TestKey::new(kid, Algorithm::RS256, encoding, jwk)
    }

    /// An EC P-256 key signing ES256.
    pub fn ec256(kid: &str) -> TestKey {
        TestKey::ec(kid, KeyType::EcdsaP256, Algorithm::ES256, "P-256")
    }

    /// An EC P-384 key signing ES384.
    pub fn ec384(kid: &str) -> TestKey {
        TestKey::ec(kid, KeyType::EcdsaP384, Algorithm::ES384, "P-384")
    }

    fn ec(kid: &str, key_type: KeyType, alg: Algorithm, crv: &str) -> TestKey {
        let key = PrivateKey::generate(key_type).unwrap();
        let encoding = EncodingKey::from_ec_pem(key.to_pem().as_bytes()).unwrap();
        let point = key.public_key_raw();
        assert_eq!(point[0], 0x04, "an uncompressed point");
        let (x, y) = point[1..].split_at((point.len() - 1) / 2);
        let jwk = json!({
            "use": "sig", "kty": "EC", "kid": kid, "crv": crv, "x": b64(x), "y": b64(y),
        });
        TestKey::new(kid, alg, encoding, jwk)
    }

    fn new(kid: &str, alg: Algorithm, encoding: EncodingKey, jwk: Value) -> TestKey {
        TestKey {
            kid: kid.to_string(),
            alg,
            encoding,
            jwk,
        }
    }

    /// The key as a JWK.
    pub fn jwk(&self) -> Value {
        self.jwk.clone()
    }

    /// A token with `claims`, signed by this key and naming it.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        self.sign_with(header, claims)
    }

    /// A token with `claims` and `header`, signed by this key.
    pub fn sign_with(&self, header: Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// A JWKS holding `keys`.
pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() })
}

/// The claims of a token Kubernetes projects for the enrolling ServiceAccount with
/// `audience: meshtrust`, issued at `now` for an hour.
pub fn claims(now: OffsetDateTime) -> Value {
    let t = now.unix_timestamp();
    json!({
        "aud": ["meshtrust"],
        "exp": t + 3600,
        "iat": t,
        "nbf": t,
        "iss": ISSUER,
        "jti": "6f0e3ac5-8d5b-4b5f-9a3c-1c8a3f0d4e21",
        "sub": SUBJECT,
        "kubernetes.io": {
            "namespace": "istio-system",
            "pod": { "name": "meshtrust-agent-7d9f8", "uid": "0b1c" },
            "serviceaccount": { "name": "meshtrust-agent", "uid": "5e6f" },
        },
    })
}

/// The configuration of cluster `east` with `jwks` inline.
pub fn inline_issuer(jwks: Value) -> ServiceAccountIssuer {
    let mut issuer = ServiceAccountIssuer::new(ISSUER, SUBJECT);
    issuer.jwks = Some(jwks);
    issuer
}

/// Bytes as base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A DER INTEGER's bytes without the leading zero that keeps it positive.
fn unsigned(bytes: &[u8]) -> &[u8] {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    &bytes[zeros..]
}
