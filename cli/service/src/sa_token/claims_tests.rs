//! The pure claim checks, at their boundaries.

use serde_json::{Value, json};
use time::Duration;

use super::*;
use crate::sa_token::test_issuer::{ISSUER, NOW, SUBJECT, claims};

fn expected() -> Expected {
    Expected {
        cluster: "east".to_string(),
        issuer: ISSUER.to_string(),
        subject: SUBJECT.to_string(),
    }
}

fn check(changes: Value) -> Result<OffsetDateTime, Refusal> {
    let mut claims = claims(NOW);
    claims
        .as_object_mut()
        .unwrap()
        .extend(changes.as_object().unwrap().clone());
    let claims: Claims = serde_json::from_value(claims).unwrap();
    check_claims(&expected(), &claims, NOW)
}

#[test]
fn the_leeway_ends_exactly_thirty_seconds_after_expiry() {
    let at = |offset: i64| json!({ "exp": (NOW + Duration::seconds(offset)).unix_timestamp() });
    assert!(check(at(-29)).is_ok());
    assert_eq!(check(at(-30)).unwrap_err().code(), "sa_token_expired");
    let ahead = |offset: i64| json!({ "nbf": (NOW + Duration::seconds(offset)).unix_timestamp() });
    assert!(check(ahead(30)).is_ok());
    assert_eq!(
        check(ahead(31)).unwrap_err().code(),
        "sa_token_not_yet_valid"
    );
}

#[test]
fn fractional_times_are_read_and_times_that_are_not_numbers_are_malformed() {
    let exp = NOW.unix_timestamp() + 60;
    assert_eq!(
        check(json!({ "exp": exp as f64 + 0.75 })).unwrap(),
        OffsetDateTime::from_unix_timestamp(exp).unwrap()
    );
    let refusal = check(json!({ "exp": 1e300 })).unwrap_err();
    assert_eq!(refusal.code(), "sa_token_malformed");
    assert!(
        refusal.to_string().contains("its exp is not a time"),
        "{refusal}"
    );
}

#[test]
fn the_issuer_is_compared_exactly() {
    for iss in [json!(format!("{ISSUER}/")), json!(null)] {
        let mut claims = claims(NOW);
        claims["iss"] = iss;
        let claims: Claims = serde_json::from_value(claims).unwrap();
        assert_eq!(
            check_issuer(&expected(), &claims).unwrap_err().code(),
            "sa_token_issuer"
        );
    }
}

#[test]
fn an_audience_that_is_neither_a_string_nor_strings_is_malformed() {
    for aud in [json!(7), json!(["meshtrust", 7])] {
        let refusal = check(json!({ "aud": aud })).unwrap_err();
        assert_eq!(refusal.code(), "sa_token_malformed");
        assert!(refusal.to_string().contains("its aud is"), "{refusal}");
    }
}
