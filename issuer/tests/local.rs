//! The local backend and the response checks every backend goes through.

use meshtrust_ca::*;
use meshtrust_issuer::{IssueRequest, Issuer, LocalIssuer, check_issued};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

fn request(cluster: &str) -> (PrivateKey, IssueRequest) {
    let params = IntermediateParams::new(ClusterName::new(cluster).unwrap());
    let key = PrivateKey::generate(params.key_type).unwrap();
    let req = IssueRequest::new(
        params.cluster.clone(),
        params.csr(&key).unwrap(),
        params.profile(),
        NOW,
    );
    (key, req)
}

#[tokio::test]
async fn the_local_issuer_returns_the_chain_and_trust_bundle() {
    let root = RootParams::default().self_signed(NOW).unwrap();
    let fp = root.certificate().fingerprint();
    let issuer = LocalIssuer::new(root);
    let (key, req) = request("c1");
    let issued = issuer.issue_intermediate(&req).await.unwrap();
    assert_eq!(issued.chain.len(), 1);
    assert_eq!(issued.trust_bundle.fingerprints(), vec![fp]);
    assert_eq!(issued.certificate.public_key_raw(), key.public_key_raw());
    assert!(issued.notices.is_empty());
}

#[tokio::test]
async fn a_clamped_validity_is_reported_as_a_notice() {
    let mut params = RootParams::default();
    params.validity = Duration::days(100);
    let issuer = LocalIssuer::new(params.self_signed(NOW).unwrap());
    let issued = issuer.issue_intermediate(&request("c1").1).await.unwrap();
    assert_eq!(issued.notices.len(), 1);
    assert!(
        issued.notices[0].contains("cluster c1") && issued.notices[0].contains("root's expiry")
    );
}

#[test]
fn loading_a_root_directory_names_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = LocalIssuer::from_dir(&dir.path().join("nope"), NOW).unwrap_err();
    assert!(
        matches!(missing, meshtrust_issuer::Error::NoRootDir { .. }),
        "{missing}"
    );
    let missing = missing.to_string();
    // How to create one (`meshtrust root create`) is the binary's advice, asserted in
    // cli/src/advice.rs.
    assert!(missing.contains("nope"), "{missing}");

    let root = RootParams::default().self_signed(NOW).unwrap();
    std::fs::write(
        dir.path().join("root-cert.pem"),
        root.certificate().to_pem(),
    )
    .unwrap();
    let no_key = LocalIssuer::from_dir(dir.path(), NOW)
        .unwrap_err()
        .to_string();
    assert!(
        no_key.contains("root-key.pem") && no_key.contains("does not exist"),
        "{no_key}"
    );

    std::fs::write(
        dir.path().join("root-key.pem"),
        root.key().to_pem().as_bytes(),
    )
    .unwrap();
    let issuer = LocalIssuer::from_dir(dir.path(), NOW).unwrap();
    assert!(
        issuer
            .describe()
            .contains(&dir.path().display().to_string())
    );
}

#[test]
fn check_issued_finds_every_mismatch() {
    let root = RootParams::default().self_signed(NOW).unwrap();
    let other = RootParams::default().self_signed(NOW).unwrap();
    let trust = root.trust_bundle();
    let (_, req) = request("c1");
    let (_, other_req) = request("c2");
    let good = root
        .sign_intermediate(&req.csr, &req.profile, NOW)
        .unwrap()
        .certificate;
    let wrong_key = root
        .sign_intermediate(&other_req.csr, &req.profile, NOW)
        .unwrap()
        .certificate;
    let wrong_len = root
        .sign_intermediate(
            &req.csr,
            &IntermediateProfile::new(2, Duration::days(30)),
            NOW,
        )
        .unwrap()
        .certificate;
    let foreign = other
        .sign_intermediate(&req.csr, &req.profile, NOW)
        .unwrap()
        .certificate;
    let chain = vec![root.certificate().clone()];
    let foreign_chain = vec![other.certificate().clone()];
    let cases: Vec<(&str, &Certificate, &[Certificate], Option<&str>)> = vec![
        ("a correct answer passes", &good, &chain, None),
        (
            "another key is caught",
            &wrong_key,
            &chain,
            Some("public key"),
        ),
        (
            "another path length is caught",
            &wrong_len,
            &chain,
            Some("path length is 2 instead of 0"),
        ),
        (
            "a chain to a foreign root is caught",
            &foreign,
            &foreign_chain,
            Some("not a root of the trust bundle"),
        ),
        (
            "a chain that does not link is caught",
            &good,
            &foreign_chain,
            Some("chain is broken"),
        ),
        (
            "a root returned as the intermediate is caught",
            root.certificate(),
            &[],
            Some("path length"),
        ),
    ];
    for (case, cert, chain, want) in cases {
        let problems = check_issued(&req.csr, &req.profile, cert, chain, &trust);
        match want {
            None => assert!(problems.is_empty(), "{case}: {problems:?}"),
            Some(w) => assert!(
                problems.iter().any(|p| p.contains(w)),
                "{case}: {problems:?}"
            ),
        }
    }
}
