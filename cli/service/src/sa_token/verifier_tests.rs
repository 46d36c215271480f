//! Verifying tokens against keys given inline: what is accepted, and one test per refusal.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use meshtrust_issuer::ManualClock;
use serde_json::{Value, json};
use time::Duration;

use super::*;
use crate::sa_token::test_issuer::{
    ISSUER, NOW, SUBJECT, TestKey, b64, claims, inline_issuer, jwks,
};

async fn verifier(keys: &[&TestKey]) -> Verifier {
    let (clock, _) = ManualClock::at(NOW);
    Verifier::new([("east".to_string(), inline_issuer(jwks(keys)))], clock)
        .await
        .unwrap()
}

/// Asserts that `token` is refused with `code` and a message that does not repeat the
/// token; returns the message.
async fn refused(verifier: &Verifier, token: &str, code: &str) -> String {
    let refusal = verifier.verify("east", token, NOW).await.unwrap_err();
    let message = refusal.to_string();
    assert_eq!(refusal.code(), code, "{message}");
    if token.len() > 8 {
        assert!(
            !message.contains(token),
            "the message repeats the token: {message}"
        );
    }
    message
}

fn with(claims: Value, changes: Value) -> Value {
    let mut claims = claims;
    for (name, value) in changes.as_object().unwrap() {
        match value {
            Value::Null => claims.as_object_mut().unwrap().remove(name),
            _ => claims
                .as_object_mut()
                .unwrap()
                .insert(name.clone(), value.clone()),
        };
    }
    claims
}

#[tokio::test]
async fn a_projected_rs256_token_is_accepted_as_the_cluster_it_was_configured_for() {
    let key = TestKey::rsa("k1");
    let verifier = verifier(&[&key]).await;
    let verified = verifier
        .verify("east", &key.sign(&claims(NOW)), NOW)
        .await
        .unwrap();
    assert_eq!(verified.cluster, "east");
    assert_eq!(verified.subject, SUBJECT);
    assert_eq!(verified.issuer, ISSUER);
    assert_eq!(verified.expires_at, NOW + Duration::hours(1));
    assert_eq!(verifier.clusters().collect::<Vec<_>>(), ["east"]);
}

#[tokio::test]
async fn es256_and_es384_tokens_are_accepted() {
    let p256 = TestKey::ec256("p256");
    let p384 = TestKey::ec384("p384");
    let verifier = verifier(&[&p256, &p384]).await;
    for key in [&p256, &p384] {
        let verified = verifier.verify("east", &key.sign(&claims(NOW)), NOW).await;
        assert!(verified.is_ok(), "{}: {}", key.kid, verified.unwrap_err());
    }
}

#[tokio::test]
async fn a_token_without_a_kid_is_checked_against_every_fitting_key() {
    let (other, key) = (TestKey::ec256("other"), TestKey::ec256("k1"));
    let verifier = verifier(&[&other, &key]).await;
    let token = key.sign_with(Header::new(Algorithm::ES256), &claims(NOW));
    assert!(verifier.verify("east", &token, NOW).await.is_ok());
}

#[tokio::test]
async fn a_single_string_audience_and_an_expiry_within_the_leeway_are_accepted() {
    let key = TestKey::ec256("k1");
    let verifier = verifier(&[&key]).await;
    let exp = (NOW - Duration::seconds(20)).unix_timestamp();
    let token = key.sign(&with(claims(NOW), json!({"aud": "meshtrust", "exp": exp})));
    let verified = verifier.verify("east", &token, NOW).await;
    assert!(verified.is_ok(), "{}", verified.unwrap_err());
}

#[tokio::test]
async fn a_token_from_another_issuer_is_refused_naming_both_issuers() {
    let key = TestKey::ec256("k1");
    let verifier = verifier(&[&key]).await;
    let other = "https://kubernetes.default.svc.cluster.local";
    let token = key.sign(&with(claims(NOW), json!({ "iss": other })));
    let message = refused(&verifier, &token, "sa_token_issuer").await;
    assert!(message.starts_with(&format!(
        "the token was issued by {other} (iss), but cluster east's issuer is {ISSUER}"
    )));
}

#[tokio::test]
async fn a_token_for_the_kubernetes_api_audience_is_refused_with_the_fix() {
    let key = TestKey::ec256("k1");
    let verifier = verifier(&[&key]).await;
    let token = key.sign(&with(
        claims(NOW),
        json!({"aud": ["https://kubernetes.default.svc"]}),
    ));
    let message = refused(&verifier, &token, "sa_token_audience").await;
    assert_eq!(
        message,
        "the ServiceAccount token's audience is [\"https://kubernetes.default.svc\"], not \
         \"meshtrust\": project the token with `audience: meshtrust`"
    );
    let token = key.sign(&with(claims(NOW), json!({ "aud": null })));
    let message = refused(&verifier, &token, "sa_token_audience").await;
    assert!(message.contains("audience is [], not"), "{message}");
}

#[tokio::test]
async fn an_expired_token_is_refused_with_its_expiry() {
    let key = TestKey::ec256("k1");
    let verifier = verifier(&[&key]).await;
    let exp = (NOW - Duration::minutes(5)).unix_timestamp();
    let token = key.sign(&with(claims(NOW), json!({ "exp": exp })));
    let message = refused(&verifier, &token, "sa_token_expired").await;
    assert!(
        message.starts_with(
            "the token expired at 2026-06-01T11:55:00Z (exp) and it is now 2026-06-01T12:00:00Z"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn a_token_valid_only_later_is_refused_naming_the_claim() {
    let key = TestKey::ec256("k1");
    let verifier = verifier(&[&key]).await;
    let later = (NOW + Duration::minutes(10)).unix_timestamp();
    for claim in ["nbf", "iat"] {
        let token = key.sign(&with(claims(NOW), json!({ claim: later })));
        let message = refused(&verifier, &token, "sa_token_not_yet_valid").await;
        assert!(
            message.starts_with(&format!(
                "the token is valid only from 2026-06-01T12:10:00Z ({claim})"
            )),
            "{message}"
        );
        assert!(message.contains("clocks of cluster east"), "{message}");
    }
}

#[tokio::test]
async fn a_token_of_another_service_account_is_refused_naming_both() {
    let key = TestKey::ec256("k1");
    let verifier = verifier(&[&key]).await;
    let sub = "system:serviceaccount:default:x";
    let token = key.sign(&with(claims(NOW), json!({ "sub": sub })));
    let message = refused(&verifier, &token, "sa_token_subject").await;
    assert!(message.starts_with(&format!(
        "the token is for {sub}, but cluster east enrolls as {SUBJECT}"
    )));
}

#[tokio::test]
async fn a_token_signed_by_another_key_or_altered_is_refused() {
    let key = TestKey::rsa("k1");
    let impostor = TestKey::rsa("k1");
    let verifier = verifier(&[&key]).await;
    let message = refused(
        &verifier,
        &impostor.sign(&claims(NOW)),
        "sa_token_signature",
    )
    .await;
    assert!(message.contains("key k1 of cluster east's"), "{message}");

    let token = key.sign(&claims(NOW));
    let parts: Vec<&str> = token.split('.').collect();
    let altered = with(
        claims(NOW),
        json!({"sub": "system:serviceaccount:default:x"}),
    );
    let altered = format!(
        "{}.{}.{}",
        parts[0],
        b64(altered.to_string().as_bytes()),
        parts[2]
    );
    refused(&verifier, &altered, "sa_token_signature").await;
}

#[tokio::test]
async fn a_token_naming_a_key_not_in_the_jwks_is_refused_with_where_to_get_keys() {
    let key = TestKey::ec256("k1");
    let verifier = verifier(&[&key]).await;
    let rotated = TestKey::ec256("rotated");
    let message = refused(
        &verifier,
        &rotated.sign(&claims(NOW)),
        "sa_token_unknown_key",
    )
    .await;
    assert!(message.starts_with("the token names key rotated, which is not in cluster east's"));
    assert!(message.contains("/openid/v1/jwks"), "{message}");
}

#[tokio::test]
async fn unsigned_and_hmac_tokens_are_refused_even_naming_a_known_key() {
    let key = TestKey::rsa("k1");
    let verifier = verifier(&[&key]).await;
    let header = b64(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
    let unsigned = format!("{header}.{}.", b64(claims(NOW).to_string().as_bytes()));
    let message = refused(&verifier, &unsigned, "sa_token_algorithm").await;
    assert!(
        message.starts_with("the token is signed with none:"),
        "{message}"
    );

    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".to_string());
    let secret = EncodingKey::from_secret(b"the RSA modulus, say").unwrap();
    let hmac = jsonwebtoken::encode(&header, &claims(NOW), &secret).unwrap();
    let message = refused(&verifier, &hmac, "sa_token_algorithm").await;
    assert!(
        message.starts_with("the token is signed with HS256:"),
        "{message}"
    );
}

#[tokio::test]
async fn a_token_whose_algorithm_does_not_fit_the_key_it_names_is_refused() {
    let (rsa, ec) = (TestKey::rsa("k1"), TestKey::ec256("k1"));
    let verifier = verifier(&[&rsa]).await;
    let message = refused(&verifier, &ec.sign(&claims(NOW)), "sa_token_algorithm").await;
    assert!(
        message.starts_with("the token is signed with ES256 but names key k1, which is not"),
        "{message}"
    );
}

#[tokio::test]
async fn malformed_tokens_are_refused_saying_what_is_wrong() {
    let key = TestKey::ec256("k1");
    let verifier = verifier(&[&key]).await;
    let good_header = b64(br#"{"alg":"ES256","kid":"k1"}"#);
    let good_claims = b64(claims(NOW).to_string().as_bytes());
    let cases = [
        ("an empty token", String::new(), "1 dot-separated part,"),
        ("two parts", "abc.def".to_string(), "2 dot-separated parts"),
        (
            "a header that is not base64url",
            format!("!!.{good_claims}.c2ln"),
            "header part is not base64url",
        ),
        (
            "a header that is not JSON",
            format!("{}.{good_claims}.c2ln", b64(b"alg")),
            "header part is not the JSON object",
        ),
        (
            "claims that are not an object",
            format!("{good_header}.{}.c2ln", b64(b"[1]")),
            "claims part is JSON but not an object",
        ),
        (
            "a signature that is not base64url",
            format!("{good_header}.{good_claims}.c2ln="),
            "signature is not base64url",
        ),
        (
            "critical extensions",
            format!(
                "{}.{good_claims}.c2ln",
                b64(br#"{"alg":"ES256","crit":["x"]}"#)
            ),
            "critical extensions",
        ),
        (
            "no expiry",
            key.sign(&with(claims(NOW), json!({ "exp": null }))),
            "no expiry (exp)",
        ),
        (
            "a token of 20 KiB",
            "a".repeat(20 * 1024),
            "more than the 16384",
        ),
    ];
    for (case, token, expected) in cases {
        let message = refused(&verifier, &token, "sa_token_malformed").await;
        assert!(message.contains(expected), "{case}: {message}");
    }
}

#[tokio::test]
async fn a_cluster_without_an_issuer_is_refused_by_name() {
    let key = TestKey::ec256("k1");
    let verifier = verifier(&[&key]).await;
    let refusal = verifier
        .verify("west", &key.sign(&claims(NOW)), NOW)
        .await
        .unwrap_err();
    assert_eq!(refusal.code(), "sa_cluster_not_configured");
    assert!(
        refusal
            .to_string()
            .starts_with("cluster west has no service-account issuer")
    );
}
