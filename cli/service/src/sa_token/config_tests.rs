//! The issuer configuration: how it reads from YAML and what it refuses, by cluster and field.

use meshtrust_issuer::ManualClock;
use serde_json::json;

use super::*;
use crate::sa_token::Verifier;
use crate::sa_token::test_issuer::{ISSUER, NOW, SUBJECT, TestKey, claims, inline_issuer, jwks};

fn refusal(config: &ServiceAccountIssuer) -> String {
    config.validate("east").unwrap_err().to_string()
}

#[test]
fn an_issuer_reads_from_yaml_with_snake_case_fields() {
    let yaml = format!(
        "issuer: {ISSUER}\nsubject: {SUBJECT}\ndiscovery_url: https://oidc.example/\n\
         ca_file: /etc/ssl/certs/ca-certificates.crt\n"
    );
    let config: ServiceAccountIssuer = serde_yaml_ng::from_str(&yaml).unwrap();
    assert_eq!(config.issuer, ISSUER);
    assert_eq!(config.subject, SUBJECT);
    assert_eq!(
        config.discovery_url.as_deref(),
        Some("https://oidc.example/")
    );
    assert!(config.jwks.is_none() && config.jwks_file.is_none());
    let Ok(KeySource::Discovery { document, .. }) = config.key_source("east") else {
        panic!("discovery is the key source")
    };
    assert_eq!(
        document.as_str(),
        "https://oidc.example/.well-known/openid-configuration"
    );
}

#[test]
fn an_unknown_field_is_refused_by_name() {
    let yaml = format!("issuer: {ISSUER}\nsubject: {SUBJECT}\njwksFile: /keys.json\n");
    let error = serde_yaml_ng::from_str::<ServiceAccountIssuer>(&yaml).unwrap_err();
    assert!(error.to_string().contains("jwksFile"), "{error}");
}

#[test]
fn keys_are_discovered_from_the_issuer_when_no_source_is_given() {
    let mut config = ServiceAccountIssuer::new(ISSUER, SUBJECT);
    config.ca_file = Some("/etc/ssl/certs/ca-certificates.crt".into());
    let Ok(KeySource::Discovery { document, .. }) = config.key_source("east") else {
        panic!("discovery is the key source")
    };
    assert_eq!(
        document.as_str(),
        format!("{ISSUER}/.well-known/openid-configuration")
    );
    config.discovery_url = Some(format!("{ISSUER}/.well-known/openid-configuration"));
    let Ok(KeySource::Discovery {
        document: given, ..
    }) = config.key_source("east")
    else {
        panic!("discovery is the key source")
    };
    assert_eq!(given, document, "a full discovery URL is used as it is");
}

#[test]
fn two_key_sources_are_refused_naming_the_cluster_and_both_fields() {
    let mut config = inline_issuer(json!({"keys": []}));
    config.jwks_file = Some("/keys.json".into());
    assert_eq!(
        refusal(&config),
        "cluster east, field jwks: jwks_file is set too: give the issuer's keys in one way only"
    );
}

#[test]
fn https_discovery_without_a_ca_file_is_refused_with_the_system_bundle_as_the_fix() {
    let message = refusal(&ServiceAccountIssuer::new(ISSUER, SUBJECT));
    assert!(
        message.starts_with("cluster east, field ca_file: is needed to fetch"),
        "{message}"
    );
    assert!(
        message.contains("/etc/ssl/certs/ca-certificates.crt"),
        "{message}"
    );
}

#[test]
fn plain_http_discovery_is_refused_unless_to_a_loopback_address() {
    let config = ServiceAccountIssuer::new("http://oidc.example", SUBJECT);
    let message = refusal(&config);
    assert!(
        message.starts_with("cluster east, field issuer: http://oidc.example/"),
        "{message}"
    );
    assert!(
        message.contains("allowed only to a loopback address"),
        "{message}"
    );
    for loopback in ["http://127.0.0.1:8080", "http://[::1]:8080"] {
        let mut config = ServiceAccountIssuer::new(ISSUER, SUBJECT);
        config.discovery_url = Some(loopback.to_string());
        assert!(config.validate("east").is_ok(), "{loopback}");
    }
}

#[test]
fn an_issuer_that_is_no_url_needs_keys_given_another_way() {
    let message = refusal(&ServiceAccountIssuer::new(
        "kubernetes/serviceaccount",
        SUBJECT,
    ));
    assert!(
        message.starts_with("cluster east, field issuer:"),
        "{message}"
    );
    assert!(
        message.contains("give the keys with jwks or jwks_file"),
        "{message}"
    );
}

#[test]
fn a_ca_file_beside_given_keys_is_refused() {
    let mut config = inline_issuer(json!({"keys": []}));
    config.ca_file = Some("/ca.pem".into());
    assert!(
        refusal(&config).starts_with("cluster east, field ca_file: is used only for discovery")
    );
}

#[test]
fn a_subject_that_is_no_service_account_and_an_empty_issuer_are_refused() {
    for subject in [
        "meshtrust-agent",
        "system:serviceaccount:istio-system",
        "system:serviceaccount::x",
    ] {
        let message = refusal(&inline_issuer(json!({})).with_subject(subject));
        assert!(
            message.starts_with("cluster east, field subject:"),
            "{subject}: {message}"
        );
        assert!(
            message.contains("system:serviceaccount:<namespace>:<name>"),
            "{message}"
        );
    }
    let message = refusal(&ServiceAccountIssuer::new(" ", SUBJECT));
    assert!(
        message.starts_with("cluster east, field issuer: is empty"),
        "{message}"
    );
}

impl ServiceAccountIssuer {
    fn with_subject(mut self, subject: &str) -> ServiceAccountIssuer {
        self.subject = subject.to_string();
        self
    }
}

#[tokio::test]
async fn keys_come_from_a_jwks_file_or_from_json_text_inline() {
    let key = TestKey::ec256("k1");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("east-jwks.json");
    std::fs::write(&path, jwks(&[&key]).to_string()).unwrap();
    let mut from_file = ServiceAccountIssuer::new(ISSUER, SUBJECT);
    from_file.jwks_file = Some(path);
    let from_text = inline_issuer(json!(jwks(&[&key]).to_string()));
    let (clock, _) = ManualClock::at(NOW);
    let issuers = [
        ("east".to_string(), from_file),
        ("west".to_string(), from_text),
    ];
    let verifier = Verifier::new(issuers, clock).await.unwrap();
    for cluster in ["east", "west"] {
        let verified = verifier.verify(cluster, &key.sign(&claims(NOW)), NOW).await;
        assert!(verified.is_ok(), "{cluster}: {}", verified.unwrap_err());
    }
}

#[tokio::test]
async fn an_unreadable_jwks_file_or_a_jwks_without_keys_stops_the_start() {
    let (clock, _) = ManualClock::at(NOW);
    let mut missing = ServiceAccountIssuer::new(ISSUER, SUBJECT);
    missing.jwks_file = Some("/nonexistent/east-jwks.json".into());
    let error = Verifier::new([("east".to_string(), missing)], clock.clone())
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("cluster east: jwks_file /nonexistent/east-jwks.json cannot be read"),
        "{error}"
    );
    let empty = inline_issuer(json!({"keys": []}));
    let error = Verifier::new([("east".to_string(), empty)], clock)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "cluster east, field jwks: the JWKS has no RSA, EC P-256 or EC P-384 signing key: it \
         has no keys"
    );
}
