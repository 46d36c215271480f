//! An issuer's public keys, read from a JWKS: only RSA and EC P-256/P-384 signing keys are
//! kept; symmetric (`oct`) keys and anything else are left out, so that no token can be
//! checked against a shared secret.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// The usable keys of one JWKS.
#[derive(Default)]
pub(super) struct KeySet {
    keys: Vec<VerificationKey>,
}

struct VerificationKey {
    kid: Option<String>,
    kind: KeyKind,
    /// The key's own `alg`, when it declares one.
    alg: Option<Algorithm>,
    key: DecodingKey,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
}

impl KeyKind {
    fn fits(self, alg: Algorithm) -> bool {
        matches!(
            (self, alg),
            (KeyKind::Rsa, Algorithm::RS256)
                | (KeyKind::EcP256, Algorithm::ES256)
                | (KeyKind::EcP384, Algorithm::ES384)
        )
    }
}

/// Why no key was found for a token.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Lookup {
    /// No key has the token's key id (or, without one, no key fits its algorithm).
    Unknown,
    /// Keys with the token's key id exist, but none is a key for its algorithm.
    Mismatch,
}

impl KeySet {
    /// Reads a JWKS: a JSON object with `keys`, or that JSON as a string (as YAML may give
    /// it). Fails when it has no usable key, saying why each key was left out.
    pub fn from_jwks(jwks: &serde_json::Value) -> Result<KeySet, String> {
        let parsed;
        let jwks = match jwks {
            serde_json::Value::String(text) => {
                parsed = serde_json::from_str::<serde_json::Value>(text)
                    .map_err(|e| format!("the JWKS is not JSON: {e}"))?;
                &parsed
            }
            other => other,
        };
        let Some(entries) = jwks.get("keys").and_then(|k| k.as_array()) else {
            return Err("the JWKS is not an object with a `keys` array".to_string());
        };
        let mut keys = Vec::new();
        let mut left_out = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            match verification_key(entry) {
                Ok(key) => keys.push(key),
                Err(reason) => left_out.push(format!("key {index} {reason}")),
            }
        }
        if keys.is_empty() {
            let why = match left_out.is_empty() {
                true => "it has no keys".to_string(),
                false => left_out.join("; "),
            };
            return Err(format!(
                "the JWKS has no RSA, EC P-256 or EC P-384 signing key: {why}"
            ));
        }
        Ok(KeySet { keys })
    }

    /// Whether a key with this id is held (without an id: whether any key is).
    pub fn knows(&self, kid: Option<&str>) -> bool {
        match kid {
            Some(kid) => self.keys.iter().any(|k| k.kid.as_deref() == Some(kid)),
            None => !self.keys.is_empty(),
        }
    }

    /// The keys a token with this key id and algorithm may be verified with: those with
    /// that id (any, without one) whose type fits the algorithm.
    pub fn candidates(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Vec<&DecodingKey>, Lookup> {
        let named: Vec<&VerificationKey> = self
            .keys
            .iter()
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .collect();
        if named.is_empty() {
            return Err(Lookup::Unknown);
        }
        let fitting: Vec<&DecodingKey> = named
            .iter()
            .filter(|k| k.kind.fits(alg) && k.alg.is_none_or(|a| a == alg))
            .map(|k| &k.key)
            .collect();
        match (fitting.is_empty(), kid) {
            (false, _) => Ok(fitting),
            (true, Some(_)) => Err(Lookup::Mismatch),
            (true, None) => Err(Lookup::Unknown),
        }
    }
}

fn verification_key(entry: &serde_json::Value) -> Result<VerificationKey, String> {
    let jwk: Jwk =
        serde_json::from_value(entry.clone()).map_err(|e| format!("is not a JSON Web Key: {e}"))?;
    let kid = jwk.common.key_id.clone();
    let name = kid
        .as_deref()
        .map(|k| format!("({k}) "))
        .unwrap_or_default();
    if let Some(use_) = &jwk.common.public_key_use
        && *use_ != PublicKeyUse::Signature
    {
        return Err(format!("{name}is not a signing key (use is not sig)"));
    }
    let kind = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => KeyKind::Rsa,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => KeyKind::EcP256,
            EllipticCurve::P384 => KeyKind::EcP384,
            _ => return Err(format!("{name}is on a curve other than P-256 and P-384")),
        },
        AlgorithmParameters::OctetKey(_) => {
            return Err(format!("{name}is a symmetric key, never used"));
        }
        _ => return Err(format!("{name}is neither an RSA nor an EC key")),
    };
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
        Some(KeyAlgorithm::ES256) => Some(Algorithm::ES256),
        Some(KeyAlgorithm::ES384) => Some(Algorithm::ES384),
        Some(_) => {
            return Err(format!(
                "{name}is for an algorithm other than RS256, ES256 and ES384"
            ));
        }
    };
    // jsonwebtoken's errors print as Rust Debug text: say it in a sentence instead.
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| {
        format!("{name}cannot be read as a public key (its n and e, or x and y, are not base64url)")
    })?;
    Ok(VerificationKey {
        kid,
        kind,
        alg,
        key,
    })
}

#[cfg(test)]
#[path = "jwks_tests.rs"]
mod tests;
