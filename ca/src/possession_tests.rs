use time::macros::datetime;

use super::*;
use crate::intermediate::IntermediateParams;
use crate::key::KeyType;
use crate::root::{RootCa, RootParams};

const NOW: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

fn root(key_type: KeyType) -> RootCa {
    RootParams {
        key_type,
        ..RootParams::default()
    }
    .self_signed(NOW)
    .unwrap()
}

fn cluster() -> ClusterName {
    ClusterName::new("cluster1").unwrap()
}

#[test]
fn the_message_format_is_pinned() {
    let msg = possession_message(
        "meshtrust-renewal-v1",
        &cluster(),
        datetime!(2026-03-04 05:06:07.891 +02:00),
        &Csr::from_der(b"hello".to_vec()),
    );
    assert_eq!(
        String::from_utf8(msg).unwrap(),
        "meshtrust-renewal-v1\ncluster1\n2026-03-04T03:06:07Z\n\
         2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\n"
    );
}

#[test]
fn every_input_changes_the_message() {
    let csr = Csr::from_der(b"hello".to_vec());
    let base = possession_message("ctx", &cluster(), NOW, &csr);
    let variants = [
        ("context", possession_message("ctx2", &cluster(), NOW, &csr)),
        (
            "cluster",
            possession_message("ctx", &ClusterName::new("cluster2").unwrap(), NOW, &csr),
        ),
        (
            "time",
            possession_message("ctx", &cluster(), NOW + time::Duration::SECOND, &csr),
        ),
        (
            "csr",
            possession_message("ctx", &cluster(), NOW, &Csr::from_der(b"hellp".to_vec())),
        ),
    ];
    for (what, msg) in variants {
        assert_ne!(msg, base, "changing the {what} must change the message");
    }
    // Below a second, the time is not part of the message.
    let later = NOW + time::Duration::milliseconds(999);
    assert_eq!(possession_message("ctx", &cluster(), later, &csr), base);
}

#[test]
fn a_signature_verifies_with_the_signers_certificate_for_every_key_type() {
    for key_type in [KeyType::EcdsaP256, KeyType::EcdsaP384, KeyType::Rsa2048] {
        let ca = root(key_type);
        let msg = possession_message("ctx", &cluster(), NOW, &Csr::from_der(vec![1, 2, 3]));
        let sig = ca.key().sign_message(&msg).unwrap();
        ca.certificate()
            .verify_message(&msg, &sig)
            .unwrap_or_else(|e| panic!("{key_type}: {e}"));
    }
}

#[test]
fn a_cluster_proves_it_holds_its_current_intermediate_key() {
    let ca = root(KeyType::EcdsaP256);
    let params = IntermediateParams::new(cluster());
    let key = PrivateKey::generate(params.key_type).unwrap();
    let current = ca
        .sign_intermediate(&params.csr(&key).unwrap(), &params.profile(), NOW)
        .unwrap()
        .certificate;
    let new_key = PrivateKey::generate(params.key_type).unwrap();
    let new_csr = params.csr(&new_key).unwrap();
    let msg = possession_message("meshtrust-renewal-v1", &cluster(), NOW, &new_csr);
    let proof = key.sign_message(&msg).unwrap();
    current.verify_message(&msg, &proof).unwrap();
    // The new key cannot stand in for the current one.
    let forged = new_key.sign_message(&msg).unwrap();
    assert!(current.verify_message(&msg, &forged).is_err());
}

#[test]
fn a_signature_by_another_key_or_over_another_message_is_refused() {
    for key_type in [KeyType::EcdsaP256, KeyType::EcdsaP384, KeyType::Rsa2048] {
        let ca = root(key_type);
        let other = PrivateKey::generate(key_type).unwrap();
        let msg = possession_message("ctx", &cluster(), NOW, &Csr::from_der(vec![1, 2, 3]));
        let changed = possession_message("ctx", &cluster(), NOW, &Csr::from_der(vec![1, 2, 4]));
        let good = ca.key().sign_message(&msg).unwrap();
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let cases = [
            (
                "signed by another key",
                &msg,
                other.sign_message(&msg).unwrap(),
            ),
            ("a changed message", &changed, good.clone()),
            ("a damaged signature", &msg, flipped),
            ("an empty signature", &msg, Vec::new()),
        ];
        for (case, m, sig) in cases {
            let err = ca
                .certificate()
                .verify_message(m, &sig)
                .expect_err(case)
                .to_string();
            assert!(
                err.starts_with("invalid signature: the signature does not verify with the public key of O=Istio, CN=Root CA"),
                "{key_type}, {case}: {err}"
            );
        }
        assert!(ca.certificate().verify_message(&msg, &good).is_ok());
    }
}

#[test]
fn a_signature_from_one_key_type_does_not_verify_under_another() {
    let msg = b"the same message";
    let ec = root(KeyType::EcdsaP256);
    let p384 = root(KeyType::EcdsaP384);
    let sig = ec.key().sign_message(msg).unwrap();
    assert!(ec.certificate().verify_message(msg, &sig).is_ok());
    assert!(p384.certificate().verify_message(msg, &sig).is_err());
}
