//! A member cluster's service-account issuer, standing in for the tests: its keys are made
//! here, its tokens are shaped as the kubelet projects them and signed with ring (not the JWT
//! library the service verifies with), and its public keys reach the service as a JWKS file,
//! printed the way `kubectl get --raw /openid/v1/jwks` prints it. Shared by the service's
//! token suite and the agent's.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use meshtrust_ca::{KeyType, PrivateKey};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::harness::{Setup, path_str};

/// The ServiceAccount every member cluster enrolls as.
pub const SUBJECT: &str = "system:serviceaccount:istio-system:meshtrust-agent";

/// One signing key of a service-account issuer, and its public half as a JWK.
pub struct SigningKey {
    pub kid: String,
    pub jwk: Value,
    signer: Signer,
}

enum Signer {
    Rs256(RsaKeyPair),
    Es256(EcdsaKeyPair),
}

impl SigningKey {
    /// RSA 2048 signing RS256: what kube-apiserver signs with unless told otherwise.
    pub fn rsa() -> SigningKey {
        let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
        let pair = RsaKeyPair::from_pkcs8(&pkcs8(&key)).unwrap();
        let public = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
        let kid = key_id(&key);
        let jwk = json!({
            "use": "sig", "kty": "RSA", "kid": kid, "alg": "RS256",
            "n": b64(&public.n), "e": b64(&public.e),
        });
        SigningKey {
            kid,
            jwk,
            signer: Signer::Rs256(pair),
        }
    }

    /// EC P-256 signing ES256 (an API server given an EC service-account key).
    pub fn ec256() -> SigningKey {
        let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pair = EcdsaKeyPair::from_pkcs8(alg, &pkcs8(&key), &SystemRandom::new()).unwrap();
        let point = pair.public_key().as_ref();
        assert_eq!((point.len(), point[0]), (65, 0x04), "an uncompressed point");
        let (x, y) = point[1..].split_at(32);
        let kid = key_id(&key);
        let jwk = json!({
            "use": "sig", "kty": "EC", "kid": kid, "crv": "P-256", "alg": "ES256",
            "x": b64(x), "y": b64(y),
        });
        SigningKey {
            kid,
            jwk,
            signer: Signer::Es256(pair),
        }
    }

    pub fn alg(&self) -> &'static str {
        match self.signer {
            Signer::Rs256(_) => "RS256",
            Signer::Es256(_) => "ES256",
        }
    }

    /// A compact JWS of `claims`, its header as the API server writes it (`alg`, `kid`).
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_naming(&self.kid, claims)
    }

    /// The same, naming key `kid` in the header (a forgery when it is not this key's).
    pub fn sign_naming(&self, kid: &str, claims: &Value) -> String {
        let input = signing_input(&json!({ "alg": self.alg(), "kid": kid }), claims);
        let rng = SystemRandom::new();
        let signature = match &self.signer {
            Signer::Rs256(pair) => {
                let mut signature = vec![0; pair.public().modulus_len()];
                let padding = &signature::RSA_PKCS1_SHA256;
                pair.sign(padding, &rng, input.as_bytes(), &mut signature)
                    .unwrap();
                signature
            }
            Signer::Es256(pair) => pair.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
        };
        format!("{input}.{}", b64(&signature))
    }
}

/// `kubectl get --raw /openid/v1/jwks` of an issuer holding `keys`.
pub fn jwks(keys: &[&SigningKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
}

/// The claims of the token the kubelet projects for `subject` with `audience: meshtrust`,
/// issued by `issuer` at `iat` for an hour.
pub fn projected(issuer: &str, subject: &str, iat: OffsetDateTime) -> Value {
    let t = iat.unix_timestamp();
    let parts: Vec<&str> = subject.split(':').collect();
    json!({
        "aud": ["meshtrust"],
        "exp": t + 3600,
        "iat": t,
        "iss": issuer,
        "jti": "3f1c2a9e-5b7d-4e80-9a61-0c2d4b6f8e13",
        "kubernetes.io": {
            "namespace": parts[2],
            "node": { "name": "ip-10-0-1-23.eu-west-1.compute.internal", "uid": "8d2f6a1c" },
            "pod": { "name": "meshtrust-agent-6c9d8f7b5-x2k4q", "uid": "b71e0c94" },
            "serviceaccount": { "name": parts[3], "uid": "4a5e9d02" },
        },
        "nbf": t,
        "sub": subject,
    })
}

/// The service's clock: the wall clock plus the harness's clock offset.
pub fn service_now(setup: &Setup) -> OffsetDateTime {
    let offset = std::fs::read_to_string(setup.path("clock-offset")).unwrap();
    OffsetDateTime::now_utc() + time::Duration::seconds(offset.trim().parse().unwrap())
}

/// A member cluster whose tokens the service checks against a JWKS file.
pub struct Member {
    pub name: &'static str,
    pub issuer: &'static str,
    pub key: SigningKey,
}

impl Member {
    /// What its kubelet projects now, by the service's clock.
    pub fn claims(&self, setup: &Setup) -> Value {
        projected(self.issuer, SUBJECT, service_now(setup))
    }

    /// A valid token of its enrolling ServiceAccount.
    pub fn token(&self, setup: &Setup) -> String {
        self.key.sign(&self.claims(setup))
    }

    /// Its entry under `clusters:`, its JWKS written to `dir`.
    pub fn config(&self, dir: &Path) -> String {
        let file = dir.join(format!("{}-jwks.json", self.name));
        std::fs::write(
            &file,
            serde_json::to_string_pretty(&jwks(&[&self.key])).unwrap(),
        )
        .unwrap();
        format!(
            "  {}:\n    service_account:\n      issuer: {}\n      subject: {SUBJECT}\n      jwks_file: {}\n",
            self.name,
            self.issuer,
            quoted(&path_str(&file))
        )
    }
}

/// `header.claims`, each base64url JSON: what a JWS signature covers.
pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// The key id Kubernetes gives a service-account key: the SHA-256 of its
/// subjectPublicKeyInfo, base64url.
pub fn key_id(key: &PrivateKey) -> String {
    b64(ring::digest::digest(&ring::digest::SHA256, &key.public_key_der()).as_ref())
}

pub fn pkcs8(key: &PrivateKey) -> Vec<u8> {
    pem::parse(key.to_pem().as_bytes()).unwrap().into_contents()
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `text` as a YAML (JSON-style) quoted string.
pub fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}
