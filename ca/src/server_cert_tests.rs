use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use time::macros::datetime;

use super::*;
use crate::key::KeyType;
use crate::root::RootParams;

const NOW: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

fn unix(t: OffsetDateTime) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(t.unix_timestamp()).unwrap(),
    ))
}

/// rustls-webpki's verdict: path-validated to `root` for serverAuth at `at`, then valid
/// for `name`.
fn webpki_verify(
    root: &Certificate,
    leaf: &Certificate,
    name: &str,
    at: OffsetDateTime,
) -> std::result::Result<(), String> {
    let anchors = [webpki::anchor_from_trusted_cert(root.der())
        .map_err(|e| format!("{e:?}"))?
        .to_owned()];
    let leaf_der: CertificateDer<'_> = leaf.der().clone();
    let ee = webpki::EndEntityCert::try_from(&leaf_der).map_err(|e| format!("{e:?}"))?;
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &[],
        unix(at),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .map_err(|e| format!("path: {e:?}"))?;
    let server_name = ServerName::try_from(name).map_err(|e| format!("{e:?}"))?;
    ee.verify_is_valid_for_subject_name(&server_name)
        .map_err(|e| format!("name: {e:?}"))
}

fn root() -> RootCa {
    RootParams::default().self_signed(NOW).unwrap()
}

#[test]
fn webpki_accepts_the_certificate_for_each_dns_name_and_ip_and_nothing_else() {
    let ca = root();
    for key_type in [KeyType::EcdsaP256, KeyType::Rsa2048] {
        let key = PrivateKey::generate(key_type).unwrap();
        let leaf = ca
            .sign_server_certificate(
                &key,
                &names(&["signer.meshtrust.svc", "127.0.0.1", "::1"]),
                Duration::days(90),
                NOW,
            )
            .unwrap();
        let at = NOW + Duration::hours(1);
        for name in ["signer.meshtrust.svc", "127.0.0.1", "::1"] {
            webpki_verify(ca.certificate(), &leaf, name, at)
                .unwrap_or_else(|e| panic!("{key_type}, {name}: {e}"));
        }
        let refused = [
            (
                "a name not in the certificate",
                "other.meshtrust.svc",
                at,
                "name:",
            ),
            ("an IP not in the certificate", "127.0.0.2", at, "name:"),
            (
                "after the certificate expired",
                "signer.meshtrust.svc",
                NOW + Duration::days(91),
                "path: CertExpired",
            ),
        ];
        for (case, name, when, expected) in refused {
            let err = webpki_verify(ca.certificate(), &leaf, name, when).expect_err(case);
            assert!(err.starts_with(expected), "{key_type}, {case}: {err}");
        }
        let other = RootParams::default().self_signed(NOW).unwrap();
        let err = webpki_verify(other.certificate(), &leaf, "signer.meshtrust.svc", at)
            .expect_err("another root");
        // Both roots are `O=Istio, CN=Root CA`: webpki finds the name and refuses the signature.
        assert!(err.starts_with("path: "), "{err}");
    }
}

#[test]
fn the_certificate_is_a_serverauth_leaf_with_key_ids() {
    let ca = root();
    let cases = [
        (KeyType::EcdsaP256, vec!["digitalSignature"]),
        (
            KeyType::Rsa2048,
            vec!["digitalSignature", "keyEncipherment"],
        ),
    ];
    for (key_type, usages) in cases {
        let key = PrivateKey::generate(key_type).unwrap();
        let leaf = ca
            .sign_server_certificate(
                &key,
                &names(&["a.example", "10.1.2.3"]),
                Duration::days(30),
                NOW,
            )
            .unwrap();
        let x = leaf.x509();
        let bc = x
            .basic_constraints()
            .unwrap()
            .expect("basicConstraints present");
        assert!(bc.critical, "{key_type}: basicConstraints is critical");
        assert!(!bc.value.ca, "{key_type}: CA:FALSE");
        let info = leaf.info();
        assert_eq!(info.key_usage, usages, "{key_type}");
        assert_eq!(info.extended_key_usage, ["serverAuth"], "{key_type}");
        assert_eq!(info.subject_alt_names, ["DNS:a.example", "IP:10.1.2.3"]);
        assert_eq!(info.subject, "O=meshtrust, CN=a.example");
        assert_eq!(info.issuer, ca.certificate().subject());
        assert!(info.subject_key_id.is_some(), "{key_type}: SKI");
        assert_eq!(
            info.authority_key_id,
            ca.certificate().info().subject_key_id,
            "{key_type}: AKI is the root's SKI"
        );
        assert_eq!(leaf.public_key_raw(), key.public_key_raw());
        assert!(leaf.is_issued_by(ca.certificate()));
        assert_eq!(leaf.not_before(), NOW - crate::root::BACKDATE);
        assert_eq!(leaf.not_after(), NOW + Duration::days(30));
    }
}

#[test]
fn serials_are_random() {
    let ca = root();
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let sign = || {
        ca.sign_server_certificate(&key, &names(&["a.example"]), Duration::days(1), NOW)
            .unwrap()
            .serial_hex()
    };
    let (a, b) = (sign(), sign());
    assert_ne!(a, b);
    assert_eq!(a.split(':').count(), 16, "{a}");
}

#[test]
fn the_validity_is_cut_to_the_roots() {
    let ca = RootParams {
        validity: Duration::days(10),
        ..RootParams::default()
    }
    .self_signed(NOW)
    .unwrap();
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let leaf = ca
        .sign_server_certificate(&key, &names(&["a.example"]), Duration::days(90), NOW)
        .unwrap();
    assert_eq!(leaf.not_after(), ca.certificate().not_after());
    assert_eq!(leaf.not_before(), ca.certificate().not_before());
}

#[test]
fn a_long_first_name_is_a_san_but_not_the_cn() {
    let long = format!("{}.example", "a".repeat(60));
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let leaf = root()
        .sign_server_certificate(&key, std::slice::from_ref(&long), Duration::days(1), NOW)
        .unwrap();
    assert_eq!(leaf.subject(), "O=meshtrust");
    assert_eq!(leaf.subject_alt_names(), [format!("DNS:{long}")]);
}

#[test]
fn bad_requests_are_refused_with_the_field_at_fault() {
    let ca = root();
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let day = Duration::days(1);
    let cases: [(&str, Vec<String>, Duration, OffsetDateTime, &str); 8] = [
        ("no names", vec![], day, NOW, "invalid server names: "),
        (
            "a space",
            names(&["bad name"]),
            day,
            NOW,
            "invalid server name: `bad name`",
        ),
        (
            "a wildcard",
            names(&["*.example"]),
            day,
            NOW,
            "invalid server name: `*.example`",
        ),
        (
            "a trailing dot",
            names(&["a.example."]),
            day,
            NOW,
            "invalid server name",
        ),
        (
            "an empty name",
            names(&["a.example", ""]),
            day,
            NOW,
            "invalid server name: ``",
        ),
        (
            "a bad second name",
            names(&["a.example", "-x"]),
            day,
            NOW,
            "invalid server name: `-x`",
        ),
        (
            "a zero validity",
            names(&["a.example"]),
            Duration::ZERO,
            NOW,
            "invalid validity",
        ),
        (
            "a root that has expired",
            names(&["a.example"]),
            day,
            NOW + Duration::days(4000),
            "root-cert.pem expired at",
        ),
    ];
    for (case, n, validity, now, expected) in cases {
        let err = ca
            .sign_server_certificate(&key, &n, validity, now)
            .expect_err(case)
            .to_string();
        assert!(err.starts_with(expected), "{case}: {err}");
    }
}
