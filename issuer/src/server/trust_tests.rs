use super::*;

#[test]
fn fingerprints_are_accepted_in_the_spellings_people_copy() {
    let hex = "ab".repeat(32);
    let colons = vec!["AB"; 32].join(":");
    for spelling in [
        hex.clone(),
        hex.to_uppercase(),
        colons.clone(),
        format!("  {colons}\n"),
        format!("sha256 Fingerprint={colons}"),
    ] {
        assert_eq!(normalize_fingerprint(&spelling).unwrap(), hex, "{spelling}");
    }
}

#[test]
fn a_malformed_fingerprint_says_what_one_looks_like() {
    for bad in [
        "",
        "abc",
        &"ab".repeat(31),
        &"zz".repeat(32),
        &"ab".repeat(33),
    ] {
        let e = ServerTrust::fingerprint(bad).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("the service's certificate fingerprint: `")
                && text.contains("is not a SHA-256 fingerprint: give the 64 hex digits"),
            "{text}"
        );
    }
}

#[test]
fn a_fingerprint_variant_built_by_hand_is_checked_when_used() {
    let e = ServerTrust::Fingerprint("nope".to_string())
        .client_config("https://signer.example")
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("`nope` is not a SHA-256 fingerprint"),
        "{e}"
    );
}

#[test]
fn an_empty_ca_bundle_is_refused() {
    let e = ServerTrust::CaBundle(Vec::new())
        .client_config("https://signer.example")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the CA bundle for https://signer.example: holds no certificate; give the PEM of the CA that issued the service's certificate"
    );
}

#[test]
fn a_ca_bundle_file_without_certificates_is_named() {
    let e = ServerTrust::ca_bundle_from_pem("tls-ca.pem", b"hello").unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("the CA bundle for the service's TLS certificate (tls-ca.pem): "),
        "{text}"
    );
}

#[test]
fn the_tls_configuration_offers_http2_and_http1() {
    let trust = ServerTrust::fingerprint(&"ab".repeat(32)).unwrap();
    let config = trust.client_config("https://signer.example").unwrap();
    assert_eq!(
        config.alpn_protocols,
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );
}

#[test]
fn debug_shows_fingerprints_not_bytes() {
    let root = meshtrust_ca::RootParams::default()
        .self_signed(time::macros::datetime!(2026-01-01 00:00 UTC))
        .unwrap();
    let trust =
        ServerTrust::ca_bundle_from_pem("ca.pem", root.certificate().to_pem().as_bytes()).unwrap();
    assert_eq!(
        format!("{trust:?}"),
        format!("CaBundle([\"{}\"])", sha256_hex(root.certificate().der()))
    );
}
