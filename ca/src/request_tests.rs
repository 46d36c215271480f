use rcgen::{CertificateParams, DnType, DnValue, SanType};
use time::macros::datetime;

use crate::cluster::ClusterName;
use crate::intermediate::{Csr, IntermediateParams};
use crate::key::{KeyType, PrivateKey};
use crate::root::{RootCa, RootParams};

const NOW: time::OffsetDateTime = datetime!(2026-06-01 00:00 UTC);

fn root() -> RootCa {
    RootParams::default().self_signed(NOW).unwrap()
}

fn request(edit: impl FnOnce(&mut CertificateParams)) -> Csr {
    let mut params = CertificateParams::default();
    edit(&mut params);
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    Csr::from_der(params.serialize_request(&key).unwrap().der().to_vec())
}

fn signed_subject_and_sans(csr: &Csr) -> (String, Vec<String>) {
    let params = IntermediateParams::new(ClusterName::new("east").unwrap());
    let signed = root()
        .sign_intermediate(csr, &params.profile(), NOW)
        .unwrap();
    let info = signed.certificate.info();
    (info.subject, info.subject_alt_names)
}

#[test]
fn the_subject_keeps_its_attributes_order_and_string_types() {
    let csr = request(|p| {
        p.distinguished_name.push(
            DnType::CountryName,
            DnValue::PrintableString("DE".try_into().unwrap()),
        );
        p.distinguished_name.push(
            DnType::OrganizationName,
            DnValue::Utf8String("Mesh AG".into()),
        );
        p.distinguished_name
            .push(DnType::CommonName, "Intermediate CA");
    });
    let params = IntermediateParams::new(ClusterName::new("east").unwrap());
    let signed = root()
        .sign_intermediate(&csr, &params.profile(), NOW)
        .unwrap();
    let requested = csr
        .parsed()
        .unwrap()
        .certification_request_info
        .subject
        .as_raw()
        .to_vec();
    let (_, cert) = x509_parser::parse_x509_certificate(signed.certificate.der()).unwrap();
    assert_eq!(
        cert.subject().as_raw(),
        requested.as_slice(),
        "byte for byte"
    );
}

#[test]
fn dns_uri_ip_and_email_names_are_certified() {
    let csr = request(|p| {
        p.distinguished_name.push(DnType::CommonName, "x");
        p.subject_alt_names = vec![
            SanType::DnsName("istiod.istio-system.svc".try_into().unwrap()),
            SanType::URI("spiffe://east.local/ns/istio-system".try_into().unwrap()),
            SanType::IpAddress("10.0.0.1".parse().unwrap()),
            SanType::IpAddress("fd00::1".parse().unwrap()),
            SanType::Rfc822Name("pki@example.com".try_into().unwrap()),
        ];
    });
    let (_, sans) = signed_subject_and_sans(&csr);
    let all = sans.join(" ");
    for wanted in [
        "istiod.istio-system.svc",
        "spiffe://east.local/ns/istio-system",
        "10.0.0.1",
        "fd00::1",
        "pki@example.com",
    ] {
        assert!(all.contains(wanted), "{wanted} missing from {all}");
    }
}

#[test]
fn a_san_kind_meshtrust_does_not_certify_is_refused_by_name() {
    let csr = request(|p| {
        p.distinguished_name.push(DnType::CommonName, "x");
        p.subject_alt_names = vec![SanType::OtherName((
            vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
            "upn@example.com".into(),
        ))];
    });
    let params = IntermediateParams::new(ClusterName::new("east").unwrap());
    let err = root()
        .sign_intermediate(&csr, &params.profile(), NOW)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("of a kind meshtrust does not certify"),
        "{err}"
    );
}

#[test]
fn a_verified_request_is_not_verified_again_and_a_failed_one_is_not_remembered() {
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let params = IntermediateParams::new(ClusterName::new("east").unwrap());
    let good = params.csr(&key).unwrap();
    assert!(good.signature_verified.get().is_none());
    good.inspect().unwrap();
    assert!(good.signature_verified.get().is_some());
    // A clone carries the verdict; the DER it was reached for is the same.
    assert!(good.clone().signature_verified.get().is_some());

    let mut der = good.der().to_vec();
    let last = der.len() - 1;
    der[last] ^= 0xff;
    let tampered = Csr::from_der(der);
    assert!(tampered.inspect().is_err());
    assert!(tampered.signature_verified.get().is_none());
    let err = root()
        .sign_intermediate(&tampered, &params.profile(), NOW)
        .unwrap_err()
        .to_string();
    assert!(err.contains("signature does not verify"), "{err}");
}
