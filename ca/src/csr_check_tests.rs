use rcgen::{CertificateParams, DnType, KeyUsagePurpose, SanType};

use super::*;
use crate::cluster::ClusterName;
use crate::intermediate::ISTIOD_DNS_NAME;
use crate::key::PrivateKey;

fn params(cluster: &str) -> IntermediateParams {
    IntermediateParams::new(ClusterName::new(cluster).unwrap())
}

fn ecdsa() -> PrivateKey {
    PrivateKey::generate(KeyType::EcdsaP256).unwrap()
}

/// A request made by hand with rcgen, for what `IntermediateParams::csr` never produces.
fn custom_csr(edit: impl FnOnce(&mut CertificateParams)) -> Csr {
    let p = params("c1");
    let mut cp = CertificateParams::default();
    cp.distinguished_name
        .push(DnType::OrganizationName, p.organization.as_str());
    cp.distinguished_name
        .push(DnType::CommonName, p.common_name.as_str());
    cp.distinguished_name
        .push(DnType::LocalityName, p.cluster.as_str());
    cp.subject_alt_names = vec![SanType::DnsName(ISTIOD_DNS_NAME.try_into().unwrap())];
    edit(&mut cp);
    let key = ecdsa();
    Csr::from_der(cp.serialize_request(&key).unwrap().der().to_vec())
}

#[test]
fn inspect_reads_what_intermediate_params_request() {
    let p = params("c1");
    let info = p.csr(&ecdsa()).unwrap().inspect().unwrap();
    assert_eq!(
        info.key,
        KeyAlgorithm::Ecdsa {
            curve: "P-256".to_string()
        }
    );
    assert_eq!(info.organization.as_deref(), Some("Istio"));
    assert_eq!(info.common_name.as_deref(), Some("Intermediate CA"));
    assert_eq!(info.locality.as_deref(), Some("c1"));
    assert_eq!(info.subject, "O=Istio, CN=Intermediate CA, L=c1");
    assert_eq!(info.dns_names, vec![ISTIOD_DNS_NAME.to_string()]);
    assert!(info.other_sans.is_empty(), "{info:?}");
    assert!(info.other_subject_attributes.is_empty(), "{info:?}");
    assert!(info.requested_extensions.is_empty(), "{info:?}");
}

#[test]
fn inspect_renders_other_sans_extensions_and_subject_attributes() {
    let csr = custom_csr(|cp| {
        cp.subject_alt_names
            .push(SanType::URI("spiffe://mesh/ns/x".try_into().unwrap()));
        cp.subject_alt_names
            .push(SanType::IpAddress("10.0.0.1".parse().unwrap()));
        cp.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        cp.distinguished_name
            .push(DnType::OrganizationalUnitName, "team");
    });
    let info = csr.inspect().unwrap();
    assert_eq!(info.other_sans, ["URI:spiffe://mesh/ns/x", "IP:10.0.0.1"]);
    assert_eq!(info.requested_extensions, ["keyUsage"]);
    assert_eq!(info.other_subject_attributes, ["OU=team"]);
}

/// Replaces the first occurrence of `from` in `der` by `to` (same length).
fn replaced(der: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = der
        .windows(from.len())
        .position(|w| w == from)
        .expect("the bytes occur in the DER");
    let mut out = der.to_vec();
    out[at..at + to.len()].copy_from_slice(to);
    out
}

#[test]
fn inspect_refuses_tampered_and_malformed_requests() {
    let good = params("c1").csr(&ecdsa()).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "a request whose subject was changed after signing",
            replaced(good.der(), b"Intermediate CA", b"Intermediate CB"),
            "the CSR's signature does not verify with its own public key: it was altered or signed with another key",
        ),
        (
            "a request whose SAN was changed after signing",
            replaced(good.der(), b"istiod", b"evilod"),
            "does not verify with its own public key",
        ),
        (
            "a truncated request",
            good.der()[..good.der().len() - 10].to_vec(),
            "the CSR is malformed",
        ),
        (
            "a request with trailing bytes",
            [good.der(), b"junk"].concat(),
            "4 bytes follow the request",
        ),
        (
            "not a request at all",
            b"hello".to_vec(),
            "the CSR is malformed",
        ),
    ];
    for (case, der, expected) in cases {
        let err = Csr::from_der(der).inspect().expect_err(case).to_string();
        assert!(err.contains(expected), "{case}: {err}");
        assert!(
            err.starts_with("invalid certificate signing request: "),
            "{case}: {err}"
        );
    }
    // The unmodified request is accepted, so the cases above fail for their edit alone.
    assert!(good.inspect().is_ok());
}

#[test]
fn key_algorithms_map_to_the_key_types_meshtrust_generates() {
    let ec = |c: &str| KeyAlgorithm::Ecdsa {
        curve: c.to_string(),
    };
    let cases = [
        (ec("P-256"), Some(KeyType::EcdsaP256)),
        (ec("P-384"), Some(KeyType::EcdsaP384)),
        (ec("P-521"), None),
        (KeyAlgorithm::Rsa { bits: 2048 }, Some(KeyType::Rsa2048)),
        (KeyAlgorithm::Rsa { bits: 3072 }, Some(KeyType::Rsa3072)),
        (KeyAlgorithm::Rsa { bits: 4096 }, Some(KeyType::Rsa4096)),
        (KeyAlgorithm::Rsa { bits: 1024 }, None),
        (KeyAlgorithm::Ed25519, None),
    ];
    for (alg, expected) in cases {
        assert_eq!(alg.key_type(), expected, "{alg}");
    }
}

#[test]
fn csr_matches_table() {
    let p = params("c1");
    let rsa = PrivateKey::generate(KeyType::Rsa2048).unwrap();
    let with_names = |names: &[&str]| {
        let mut q = p.clone();
        q.dns_names = names.iter().map(|n| n.to_string()).collect();
        q.csr(&ecdsa()).unwrap()
    };
    let uri = custom_csr(|cp| {
        cp.subject_alt_names
            .push(SanType::URI("spiffe://mesh/x".try_into().unwrap()))
    });
    // rcgen keeps one value per DnType, so the second O is written under its OID.
    let two_orgs = custom_csr(|cp| {
        cp.distinguished_name
            .push(DnType::CustomDnType(vec![2, 5, 4, 10]), "Evil")
    });
    let p384 = [KeyType::EcdsaP256, KeyType::EcdsaP384];
    let cases: Vec<(&str, Csr, &[KeyType], Vec<&str>)> = vec![
        (
            "a request made from the same parameters passes",
            p.csr(&ecdsa()).unwrap(),
            &[KeyType::EcdsaP256],
            vec![],
        ),
        (
            "an RSA-2048 key where only ECDSA P-256 is allowed",
            p.csr(&rsa).unwrap(),
            &[KeyType::EcdsaP256],
            vec!["the CSR's key is RSA 2048, but only ecdsa-p256 keys are allowed"],
        ),
        (
            "the allowed key types are all named",
            p.csr(&rsa).unwrap(),
            &p384,
            vec!["the CSR's key is RSA 2048, but only ecdsa-p256, ecdsa-p384 keys are allowed"],
        ),
        (
            "another cluster's locality",
            params("c2").csr(&ecdsa()).unwrap(),
            &[KeyType::EcdsaP256],
            vec!["the CSR's subject L is `c2`, but the parameters require `c1`"],
        ),
        (
            "an extra DNS SAN",
            with_names(&[ISTIOD_DNS_NAME, "evil.example"]),
            &[KeyType::EcdsaP256],
            vec!["the CSR asks for the DNS name `evil.example`, which the parameters do not list"],
        ),
        (
            "a missing DNS SAN",
            with_names(&[]),
            &[KeyType::EcdsaP256],
            vec![
                "the CSR lacks the DNS name `istiod.istio-system.svc`, which the parameters require",
            ],
        ),
        (
            "a URI SAN",
            uri,
            &[KeyType::EcdsaP256],
            vec![
                "the CSR asks for the SAN `URI:spiffe://mesh/x`; an intermediate carries DNS names only",
            ],
        ),
        (
            "a second organization",
            two_orgs,
            &[KeyType::EcdsaP256],
            vec!["the CSR's subject carries `O=Evil`, which the parameters do not set"],
        ),
    ];
    for (case, csr, allowed, expected) in cases {
        let info = csr.inspect().unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(csr_matches(&info, &p, allowed), expected, "{case}");
    }
}

#[test]
fn dns_names_compare_as_a_set_ignoring_case_order_and_repetition() {
    let mut p = params("c1");
    p.dns_names = vec![ISTIOD_DNS_NAME.to_string(), "b.example".to_string()];
    let mut q = p.clone();
    q.dns_names = vec![
        "B.example".to_string(),
        ISTIOD_DNS_NAME.to_string(),
        "b.example".to_string(),
    ];
    let info = q.csr(&ecdsa()).unwrap().inspect().unwrap();
    assert_eq!(
        csr_matches(&info, &p, &[KeyType::EcdsaP256]),
        Vec::<String>::new()
    );
    p.dns_names.pop();
    assert_eq!(
        csr_matches(&info, &p, &[KeyType::EcdsaP256]),
        ["the CSR asks for the DNS name `b.example`, which the parameters do not list"]
    );
}

#[test]
fn csr_matches_reports_every_mismatch_at_once() {
    let mut info = params("c1").csr(&ecdsa()).unwrap().inspect().unwrap();
    info.organization = Some("Other".to_string());
    info.common_name = None;
    info.dns_names.clear();
    let found = csr_matches(&info, &params("c1"), &[]);
    assert_eq!(
        found,
        [
            "the CSR's key is ECDSA P-256, but no key types are allowed",
            "the CSR's subject O is `Other`, but the parameters require `Istio`",
            "the CSR's subject has no CN, but the parameters require `Intermediate CA`",
            "the CSR lacks the DNS name `istiod.istio-system.svc`, which the parameters require",
        ]
    );
}
