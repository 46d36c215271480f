use super::*;

const SERVICE: &str = "meshtrust serve at https://signer.example";

#[test]
fn a_service_error_keeps_its_code_and_message() {
    let body = br#"{"error":"csr_key_type","message":"use an ECDSA P-256 key"}"#;
    let e = refusal(SERVICE, "enrolling cluster east", 400, body);
    assert_eq!(
        e.to_string(),
        "meshtrust serve at https://signer.example: refused enrolling cluster east (400 csr_key_type): use an ECDSA P-256 key"
    );
}

#[test]
fn an_answer_that_is_not_a_service_error_is_quoted_on_one_line() {
    let long = format!("<html>\n{}</html>", "x".repeat(500));
    let e = refusal(SERVICE, "enrolling cluster east", 502, long.as_bytes());
    let Error::ServiceRefused { code, message, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(code.is_empty());
    assert!(
        message.starts_with("the answer is not a meshtrust error (it starts with \"<html> xxx"),
        "{message}"
    );
    assert!(message.len() < 400, "{message}");
    assert!(e.to_string().contains("(502): the answer"), "{e}");

    let e = refusal(SERVICE, "renewing cluster east", 404, b"  \n");
    assert!(
        e.to_string()
            .ends_with("(404): the answer has no body; check that the URL names a meshtrust serve"),
        "{e}"
    );
}

#[test]
fn rust_identifiers_become_words() {
    assert_eq!(words("BadCertificate"), "bad certificate");
    assert_eq!(
        identifier_words(&"UnknownRevocationStatus"),
        "unknown revocation status"
    );
    assert_eq!(
        identifier_words(&"a sentence, already"),
        "a sentence, already"
    );
}

#[test]
fn subject_alt_names_lose_their_rust_wrapping() {
    assert_eq!(san_text("DnsName(\"a.example\")"), "a.example");
    assert_eq!(san_text("IpAddress(10.0.0.1)"), "10.0.0.1");
    assert_eq!(san_text("plain"), "plain");
}

#[test]
fn tls_failures_read_as_sentences() {
    let expired = rustls::Error::InvalidCertificate(CertificateError::ExpiredContext {
        time: rustls_pki_types::UnixTime::since_unix_epoch(Duration::from_secs(1_767_225_600)),
        not_after: rustls_pki_types::UnixTime::since_unix_epoch(Duration::from_secs(1_767_139_200)),
    });
    assert_eq!(
        describe_tls(&expired),
        "the service's certificate expired on 2025-12-31 00:00:00 UTC (it is 2026-01-01 00:00:00 UTC here); the service must renew it"
    );
    let other = rustls::Error::InvalidCertificate(CertificateError::UnknownRevocationStatus);
    assert_eq!(
        describe_tls(&other),
        "the service's certificate is unusable (unknown revocation status)"
    );
    let alert = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
    assert_eq!(
        describe_tls(&alert),
        "the service ended the handshake with the alert \"handshake failure\""
    );
    let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
        expected: rustls_pki_types::ServerName::try_from("east.example").unwrap(),
        presented: vec![],
    });
    assert!(describe_tls(&name).contains("it names no host, not east.example"));
}

#[test]
fn durations_are_shown_in_seconds() {
    assert_eq!(seconds(Duration::from_secs(30)), "30 s");
    assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
}
