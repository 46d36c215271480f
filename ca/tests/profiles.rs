//! Table tests of the root and intermediate profiles, at a fixed `now`.

use meshtrust_ca::*;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

const NOW: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

fn ext_critical(cert: &Certificate, oid: &str) -> Option<bool> {
    let x = cert.x509();
    x.extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == oid)
        .map(|e| e.critical)
}

fn issue(root: &RootCa, params: &IntermediateParams) -> (PrivateKey, SignedIntermediate) {
    let key = PrivateKey::generate(params.key_type).unwrap();
    let signed = root
        .sign_intermediate(&params.csr(&key).unwrap(), &params.profile(), NOW)
        .unwrap();
    (key, signed)
}

#[test]
fn the_root_profile() {
    let root = RootParams::default().self_signed(NOW).unwrap();
    let cert = root.certificate();
    let cases: Vec<(&str, bool)> = vec![
        ("the root is a CA", cert.is_ca()),
        (
            "the root has no path length unless asked",
            cert.path_len().is_none(),
        ),
        (
            "basicConstraints is critical",
            ext_critical(cert, "2.5.29.19") == Some(true),
        ),
        (
            "keyUsage is critical",
            ext_critical(cert, "2.5.29.15") == Some(true),
        ),
        (
            "keyUsage is keyCertSign, cRLSign and digitalSignature",
            cert.key_usage() == ["digitalSignature", "keyCertSign", "cRLSign"],
        ),
        (
            "it has a subject key identifier",
            ext_critical(cert, "2.5.29.14").is_some(),
        ),
        (
            "it has no extendedKeyUsage",
            cert.extended_key_usage().is_none(),
        ),
        ("it is self-signed", cert.is_self_signed()),
        (
            "the subject is O=Istio, CN=Root CA",
            cert.subject() == "O=Istio, CN=Root CA",
        ),
        (
            "it is valid for ten years",
            cert.not_after() == NOW + Duration::days(3650),
        ),
        (
            "it is backdated five minutes for clock skew",
            cert.not_before() == NOW - Duration::minutes(5),
        ),
        (
            "the key is ECDSA P-256 by default",
            cert.key_algorithm().to_string() == "ECDSA P-256",
        ),
        (
            "the serial is positive and at least 64 bits",
            cert.x509().raw_serial().len() >= 8 && cert.x509().raw_serial()[0] & 0x80 == 0,
        ),
    ];
    for (case, ok) in cases {
        assert!(ok, "{case}");
    }
}

#[test]
fn two_roots_get_different_serials() {
    let a = RootParams::default().self_signed(NOW).unwrap();
    let b = RootParams::default().self_signed(NOW).unwrap();
    assert_ne!(a.certificate().serial_hex(), b.certificate().serial_hex());
}

#[test]
fn a_root_path_length_is_set_when_asked() {
    let mut params = RootParams::default();
    params.path_len = Some(2);
    params.organization = "Acme".into();
    params.common_name = "Acme Mesh Root".into();
    let root = params.self_signed(NOW).unwrap();
    assert_eq!(root.certificate().path_len(), Some(2));
    assert_eq!(root.certificate().subject(), "O=Acme, CN=Acme Mesh Root");
}

#[test]
fn the_intermediate_profile() {
    let root = RootParams::default().self_signed(NOW).unwrap();
    let params = IntermediateParams::new(ClusterName::new("cluster1").unwrap());
    let (key, signed) = issue(&root, &params);
    let cert = &signed.certificate;
    let info = cert.info();
    let root_info = root.certificate().info();
    let cases: Vec<(&str, bool)> = vec![
        ("the intermediate is a CA", cert.is_ca()),
        (
            "its path length is 0 by default",
            cert.path_len() == Some(0),
        ),
        (
            "basicConstraints is critical",
            ext_critical(cert, "2.5.29.19") == Some(true),
        ),
        (
            "keyUsage is critical",
            ext_critical(cert, "2.5.29.15") == Some(true),
        ),
        (
            "keyUsage is keyCertSign, cRLSign and digitalSignature",
            cert.key_usage() == ["digitalSignature", "keyCertSign", "cRLSign"],
        ),
        (
            "it has no extendedKeyUsage",
            cert.extended_key_usage().is_none(),
        ),
        (
            "it has a subject key identifier",
            info.subject_key_id.is_some(),
        ),
        (
            "its authority key identifier is the root's subject key identifier",
            info.authority_key_id.is_some() && info.authority_key_id == root_info.subject_key_id,
        ),
        (
            "the SAN is istiod's service name",
            cert.subject_alt_names() == ["DNS:istiod.istio-system.svc"],
        ),
        (
            "the subject is O=Istio, CN=Intermediate CA, L=<cluster>",
            cert.subject() == "O=Istio, CN=Intermediate CA, L=cluster1",
        ),
        (
            "it is issued by the root",
            cert.is_issued_by(root.certificate()),
        ),
        (
            "it carries the caller's key",
            cert.public_key_raw() == key.public_key_raw(),
        ),
        (
            "it is valid for two years",
            cert.not_after() == NOW + Duration::days(730),
        ),
        ("it was not clamped", signed.clamped_to.is_none()),
        (
            "its serial differs from the root's",
            cert.serial_hex() != root.certificate().serial_hex(),
        ),
    ];
    for (case, ok) in cases {
        assert!(ok, "{case}");
    }
}

#[test]
fn every_key_type_yields_a_bundle_istiod_accepts() {
    for key_type in KeyType::ALL {
        let mut rp = RootParams::default();
        rp.key_type = key_type;
        let root = rp.self_signed(NOW).unwrap();
        let mut params = IntermediateParams::new(ClusterName::new("c1").unwrap());
        params.key_type = key_type;
        let (key, signed) = issue(&root, &params);
        let expected = match key_type {
            KeyType::EcdsaP256 => "ECDSA P-256",
            KeyType::EcdsaP384 => "ECDSA P-384",
            KeyType::Rsa2048 => "RSA 2048",
            KeyType::Rsa3072 => "RSA 3072",
            KeyType::Rsa4096 => "RSA 4096",
        };
        assert_eq!(
            signed.certificate.key_algorithm().to_string(),
            expected,
            "{key_type}"
        );
        let bundle = root.cacerts(signed.certificate, key);
        let files = bundle.bundle_files(BundleFormat::Istio);
        let report = verify_bundle(&files, &VerifyOptions::at(NOW));
        assert!(report.accepted(), "{key_type}: {:?}", report.findings);
        assert!(
            report.findings.is_empty(),
            "{key_type}: {:?}",
            report.findings
        );
    }
}

#[test]
fn an_intermediate_never_outlives_its_root() {
    let mut rp = RootParams::default();
    rp.validity = Duration::days(365);
    let root = rp.self_signed(NOW).unwrap();
    let params = IntermediateParams::new(ClusterName::new("c1").unwrap());
    let (_, signed) = issue(&root, &params);
    assert_eq!(
        signed.certificate.not_after(),
        root.certificate().not_after()
    );
    assert_eq!(signed.clamped_to, Some(root.certificate().not_after()));
}

#[test]
fn signing_refusals() {
    let root = RootParams::default().self_signed(NOW).unwrap();
    let mut pl0 = RootParams::default();
    pl0.path_len = Some(0);
    let root_pl0 = pl0.self_signed(NOW).unwrap();
    let params = IntermediateParams::new(ClusterName::new("c1").unwrap());
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let csr = params.csr(&key).unwrap();
    let mut broken = csr.der().to_vec();
    let last = broken.len() - 1;
    broken[last] ^= 0xff;
    let cases: Vec<(&str, Result<SignedIntermediate>, &str)> = vec![
        (
            "an expired root refuses to sign",
            root.sign_intermediate(&csr, &params.profile(), NOW + Duration::days(3651)),
            "expired",
        ),
        (
            "a root not yet valid refuses to sign",
            root.sign_intermediate(&csr, &params.profile(), NOW - Duration::days(1)),
            "not valid before",
        ),
        (
            "a root with pathlen 0 cannot sign an intermediate CA",
            root_pl0.sign_intermediate(&csr, &params.profile(), NOW),
            "pathlen:0",
        ),
        (
            "a CSR whose signature does not verify is refused",
            root.sign_intermediate(&Csr::from_der(broken), &params.profile(), NOW),
            "signature",
        ),
        (
            "a zero validity is refused",
            root.sign_intermediate(&csr, &IntermediateProfile::new(0, Duration::ZERO), NOW),
            "positive validity",
        ),
    ];
    for (case, result, needle) in cases {
        let msg = result.map(|_| ()).unwrap_err().to_string();
        assert!(msg.contains(needle), "{case}: {msg}");
    }
}

#[test]
fn keys_never_show_their_bytes() {
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let pem = key.to_pem();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    for shown in [format!("{key:?}"), format!("{key}")] {
        assert!(!shown.contains(&body[..24]), "{shown}");
        assert!(shown.contains(&key.fingerprint()[..16]), "{shown}");
    }
}

#[test]
fn keys_round_trip_through_pem() {
    for key_type in [KeyType::EcdsaP256, KeyType::EcdsaP384, KeyType::Rsa2048] {
        let key = PrivateKey::generate(key_type).unwrap();
        assert!(key.to_pem().starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let back = PrivateKey::from_pem("ca-key.pem", key.to_pem().as_bytes()).unwrap();
        assert_eq!(back.fingerprint(), key.fingerprint(), "{key_type}");
    }
}

/// (case, root-cert.pem, root-key.pem, now, expected error)
type RootLoadCase<'a> = (&'a str, &'a [u8], &'a [u8], OffsetDateTime, Option<&'a str>);

#[test]
fn loading_a_root_checks_it() {
    let root = RootParams::default().self_signed(NOW).unwrap();
    let other = RootParams::default().self_signed(NOW).unwrap();
    let cert = root.certificate().to_pem();
    let key = root.key().to_pem();
    let other_key = other.key().to_pem();
    let cases: Vec<RootLoadCase> = vec![
        (
            "a matching pair loads",
            cert.as_bytes(),
            key.as_bytes(),
            NOW,
            None,
        ),
        (
            "a key from another root is refused",
            cert.as_bytes(),
            other_key.as_bytes(),
            NOW,
            Some("root-key.pem does not match root-cert.pem"),
        ),
        (
            "an expired root is refused",
            cert.as_bytes(),
            key.as_bytes(),
            NOW + Duration::days(4000),
            Some("root-cert.pem expired"),
        ),
        (
            "garbage is refused",
            b"hello",
            key.as_bytes(),
            NOW,
            Some("root-cert.pem: not a valid PEM certificate"),
        ),
    ];
    for (case, c, k, now, err) in cases {
        match (RootCa::from_pem(c, k, now), err) {
            (Ok(_), None) => {}
            (Err(e), Some(needle)) => assert!(e.to_string().contains(needle), "{case}: {e}"),
            (Ok(_), Some(_)) => panic!("{case}: accepted"),
            (Err(e), None) => panic!("{case}: {e}"),
        }
    }
}

#[test]
fn key_types_parse_from_their_names() {
    for k in KeyType::ALL {
        assert_eq!(k.as_str().parse::<KeyType>().unwrap(), k);
    }
    let msg = "dsa-1024".parse::<KeyType>().unwrap_err().to_string();
    assert!(
        msg.contains("ecdsa-p256") && msg.contains("rsa-4096"),
        "{msg}"
    );
}

#[test]
fn inspection_reads_the_fields_users_look_for() {
    let root = RootParams::default().self_signed(NOW).unwrap();
    let info = root.certificate().info();
    assert_eq!(info.sha256_fingerprint.len(), 32 * 3 - 1);
    assert!(info.self_signed && info.is_ca);
    assert_eq!(info.signature_algorithm, "ecdsa-with-SHA256");
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["key"]["kind"], "ecdsa");
    assert_eq!(json["not_after"], "2035-12-30T00:00:00Z");
    let _ = X509Certificate::from_der(root.certificate().der()).unwrap();
}
