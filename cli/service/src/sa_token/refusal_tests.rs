//! Refusal codes and the values from tokens that messages repeat.

use super::*;

#[test]
fn values_from_a_token_are_printable_and_cut_short() {
    assert_eq!(shown(""), "(none)");
    assert_eq!(shown("a\nb\u{1b}[31m"), "a\u{fffd}b\u{fffd}[31m");
    let long = shown(&"x".repeat(10_000));
    assert_eq!(long.chars().count(), SHOWN_CHARS + 1);
    assert!(long.ends_with('…'));
}

#[test]
fn every_refusal_has_its_own_code() {
    let now = time::macros::datetime!(2026-06-01 12:00 UTC);
    let cluster = || "east".to_string();
    let refusals = [
        Refusal::Malformed {
            reason: String::new(),
        },
        Refusal::Signature {
            cluster: cluster(),
            kid: None,
        },
        Refusal::Issuer {
            cluster: cluster(),
            found: String::new(),
            expected: String::new(),
        },
        Refusal::Audience { found: Vec::new() },
        Refusal::Expired {
            expired_at: now,
            now,
        },
        Refusal::NotYetValid {
            cluster: cluster(),
            claim: "nbf",
            valid_from: now,
            now,
        },
        Refusal::Subject {
            cluster: cluster(),
            found: String::new(),
            expected: String::new(),
        },
        Refusal::UnknownKey {
            cluster: cluster(),
            kid: None,
            discovered: true,
        },
        Refusal::Algorithm {
            alg: "none".to_string(),
            mismatched_kid: None,
        },
        Refusal::ClusterNotConfigured { cluster: cluster() },
        Refusal::JwksUnavailable {
            cluster: cluster(),
            reason: String::new(),
        },
    ];
    let codes: std::collections::BTreeSet<&str> = refusals.iter().map(Refusal::code).collect();
    assert_eq!(codes.len(), refusals.len());
    assert!(codes.iter().all(|c| c.starts_with("sa_")));
    for refusal in &refusals {
        assert!(
            !refusal.to_string().is_empty(),
            "{} has a message",
            refusal.code()
        );
    }
}
