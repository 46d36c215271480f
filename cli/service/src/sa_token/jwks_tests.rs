//! Reading a JWKS: only RSA and EC P-256/P-384 signing keys are kept.

use jsonwebtoken::Algorithm;
use serde_json::json;

use super::*;
use crate::sa_token::test_issuer::TestKey;

#[test]
fn symmetric_encryption_and_unsupported_keys_are_left_out_saying_why() {
    let jwks = json!({"keys": [
        {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
        {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
        {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": "AQAB", "e": "AQAB"},
        {"kty": "EC", "kid": "p521", "crv": "P-521", "x": "AQAB", "y": "AQAB"},
        {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "AQAB"},
    ]});
    let error = KeySet::from_jwks(&jwks).err().unwrap();
    for expected in [
        "key 0 (secret) is a symmetric key, never used",
        "key 1 (enc) is not a signing key",
        "key 2 (ps) is for an algorithm other than RS256, ES256 and ES384",
        "key 3 (p521) is on a curve other than P-256 and P-384",
        "key 4 (ed) is neither an RSA nor an EC key",
    ] {
        assert!(error.contains(expected), "{expected}: {error}");
    }
}

#[test]
fn usable_keys_are_kept_beside_unusable_ones_and_found_by_kid_and_algorithm() {
    let (rsa, ec) = (TestKey::rsa("rsa"), TestKey::ec256("ec"));
    let jwks =
        json!({"keys": [{"kty": "oct", "kid": "secret", "k": "c2VjcmV0"}, rsa.jwk(), ec.jwk()]});
    let keys = KeySet::from_jwks(&jwks).unwrap();
    assert!(keys.knows(Some("rsa")) && keys.knows(Some("ec")) && keys.knows(None));
    assert!(!keys.knows(Some("secret")), "the symmetric key is not held");
    assert_eq!(
        keys.candidates(Some("rsa"), Algorithm::RS256)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(keys.candidates(None, Algorithm::ES256).unwrap().len(), 1);
    assert_eq!(
        keys.candidates(Some("rsa"), Algorithm::ES256).err(),
        Some(Lookup::Mismatch)
    );
    assert_eq!(
        keys.candidates(Some("gone"), Algorithm::RS256).err(),
        Some(Lookup::Unknown)
    );
    assert_eq!(
        keys.candidates(None, Algorithm::ES384).err(),
        Some(Lookup::Unknown)
    );
}

#[test]
fn a_jwks_that_is_no_key_set_is_refused() {
    for (jwks, expected) in [
        (json!([]), "not an object with a `keys` array"),
        (json!("{not json"), "the JWKS is not JSON"),
        (
            json!({"keys": [{"kty": "RSA", "kid": "bad", "n": "!!", "e": "AQAB"}]}),
            "key 0 (bad) cannot be read as a public key",
        ),
    ] {
        let error = KeySet::from_jwks(&jwks).err().unwrap();
        assert!(error.contains(expected), "{expected}: {error}");
    }
}
