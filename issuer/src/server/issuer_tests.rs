use meshtrust_ca::{IntermediateParams, PrivateKey, RootParams};
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;
use crate::LocalIssuer;
use crate::server::api::{PolicyInfo, RootInfo, RotationPhase};

const NOW: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);
const ISSUER: &str = "meshtrust serve at https://signer.example";

fn request(cluster: &str) -> IssueRequest {
    let params = IntermediateParams::new(ClusterName::new(cluster).unwrap());
    let key = PrivateKey::generate(params.key_type).unwrap();
    IssueRequest::new(
        params.cluster.clone(),
        params.csr(&key).unwrap(),
        params.profile(),
        NOW,
    )
}

/// What a correct service answers to `request`, signed by `issuer`.
async fn answer(issuer: &LocalIssuer, request: &IssueRequest) -> IssuedResponse {
    let issued = issuer.issue_intermediate(request).await.unwrap();
    IssuedResponse {
        cluster: request.cluster.to_string(),
        serial: issued.certificate.serial_hex(),
        certificate: issued.certificate.to_pem(),
        chain: issued.chain.iter().map(Certificate::to_pem).collect(),
        trust_bundle: issued.trust_bundle.to_pem(),
        root_fingerprints: issued.trust_bundle.fingerprints(),
        not_after: "2027-01-01T00:00:00Z".to_string(),
        renew_at: "2026-09-01T00:00:00Z".to_string(),
        notices: vec!["a notice".to_string()],
    }
}

fn local() -> LocalIssuer {
    LocalIssuer::new(RootParams::default().self_signed(NOW).unwrap())
}

fn rejection(e: Error) -> String {
    let Error::Rejected { reason, .. } = &e else {
        panic!("{e:?}")
    };
    reason.clone()
}

#[tokio::test]
async fn a_correct_answer_becomes_the_response_with_its_notices() {
    let issuer = local();
    let request = request("east");
    let issued = issue_response(ISSUER, &request, &answer(&issuer, &request).await).unwrap();
    assert_eq!(issued.chain, vec![issuer.root().certificate().clone()]);
    assert_eq!(issued.trust_bundle, issuer.root().trust_bundle());
    assert_eq!(issued.notices, vec!["a notice".to_string()]);
}

#[tokio::test]
async fn an_answer_for_another_cluster_is_refused() {
    let issuer = local();
    let request = request("east");
    let mut wrong = answer(&issuer, &request).await;
    wrong.cluster = "west".to_string();
    let e = issue_response(ISSUER, &request, &wrong).unwrap_err();
    assert_eq!(
        e.to_string(),
        "meshtrust serve at https://signer.example returned an unusable certificate for cluster east: the answer is for cluster west"
    );
}

#[tokio::test]
async fn a_certificate_field_must_hold_one_certificate() {
    let issuer = local();
    let request = request("east");
    let mut wrong = answer(&issuer, &request).await;
    wrong.certificate = format!("{}{}", wrong.certificate, wrong.chain);
    let reason = rejection(issue_response(ISSUER, &request, &wrong).unwrap_err());
    assert_eq!(
        reason,
        "the certificate field holds 2 certificates instead of one"
    );
}

#[tokio::test]
async fn an_empty_chain_is_refused() {
    let issuer = local();
    let request = request("east");
    let mut wrong = answer(&issuer, &request).await;
    wrong.chain = String::new();
    let reason = rejection(issue_response(ISSUER, &request, &wrong).unwrap_err());
    assert!(
        reason.starts_with("the chain: not a valid PEM certificate"),
        "{reason}"
    );
}

#[tokio::test]
async fn listed_fingerprints_must_be_the_bundles_roots() {
    let issuer = local();
    let request = request("east");
    let mut wrong = answer(&issuer, &request).await;
    wrong.root_fingerprints = vec!["ab".repeat(32)];
    let reason = rejection(issue_response(ISSUER, &request, &wrong).unwrap_err());
    assert!(
        reason.starts_with("the trust bundle holds the roots [")
            && reason.ends_with(&format!("] but the answer lists [{}]", "ab".repeat(32))),
        "{reason}"
    );
}

#[tokio::test]
async fn a_certificate_for_another_key_is_refused_by_the_common_checks() {
    let issuer = local();
    let request = request("east");
    let same_cluster_other_key = self::request("east");
    let other = answer(&issuer, &same_cluster_other_key).await;
    let reason = rejection(issue_response(ISSUER, &request, &other).unwrap_err());
    assert_eq!(
        reason,
        "its public key is not the one in the certificate signing request"
    );
}

#[tokio::test]
async fn a_chain_to_a_root_outside_the_trust_bundle_is_refused() {
    let (issuer, stranger) = (local(), local());
    let request = request("east");
    let mut wrong = answer(&issuer, &request).await;
    wrong.trust_bundle = stranger.root().certificate().to_pem();
    wrong.root_fingerprints = stranger.root().trust_bundle().fingerprints();
    let reason = rejection(issue_response(ISSUER, &request, &wrong).unwrap_err());
    assert!(
        reason.contains("which is not a root of the trust bundle"),
        "{reason}"
    );
}

fn bundle_answer(root: &Certificate, listed: Vec<String>) -> TrustBundleResponse {
    TrustBundleResponse {
        roots: listed
            .into_iter()
            .map(|fingerprint_sha256| RootInfo {
                fingerprint_sha256,
                subject: root.subject(),
                not_after: "2036-01-01T00:00:00Z".to_string(),
            })
            .collect(),
        trust_bundle_pem: root.to_pem(),
        rotation_phase: RotationPhase::Steady,
        policy: PolicyInfo {
            organization: "Istio".to_string(),
            common_name: "Intermediate CA".to_string(),
            dns_names: vec![],
            key_types: vec!["ecdsa-p256".to_string()],
            path_len: 0,
            validity_seconds: 86400,
        },
    }
}

#[test]
fn a_trust_bundle_answer_must_list_the_roots_it_holds() {
    let issuer = local();
    let root = issuer.root().certificate();
    let good = bundle_answer(root, vec![root.fingerprint()]);
    assert_eq!(
        trust_bundle_of(ISSUER, &good).unwrap(),
        issuer.root().trust_bundle()
    );

    for listed in [
        vec![],
        vec!["ab".repeat(32)],
        vec![root.fingerprint(), root.fingerprint()],
    ] {
        let e = trust_bundle_of(ISSUER, &bundle_answer(root, listed)).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("meshtrust serve at https://signer.example: unusable answer when fetching the trust bundle: its PEM holds the roots ["),
            "{text}"
        );
    }
}
