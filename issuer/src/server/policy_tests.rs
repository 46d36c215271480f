use meshtrust_ca::{ClusterName, IntermediateParams, KeyType};
use time::Duration;

use super::apply_policy;
use crate::server::api::PolicyInfo;

const SERVICE: &str = "meshtrust serve at https://ca.example:8443";

fn policy() -> PolicyInfo {
    PolicyInfo {
        organization: "Example Mesh".to_string(),
        common_name: "Mesh Intermediate".to_string(),
        dns_names: vec!["istiod.istio-system.svc".to_string()],
        key_types: vec!["ecdsa-p256".to_string(), "ecdsa-p384".to_string()],
        path_len: 0,
        validity_seconds: 90 * 86_400,
    }
}

fn params() -> IntermediateParams {
    IntermediateParams::new(ClusterName::new("east").unwrap())
}

#[test]
fn the_service_policy_replaces_the_asked_fields_and_says_which_changed() {
    let (applied, notices) = apply_policy(SERVICE, &params(), &policy()).unwrap();
    assert_eq!(applied.organization, "Example Mesh");
    assert_eq!(applied.common_name, "Mesh Intermediate");
    assert_eq!(applied.validity, Duration::days(90));
    assert_eq!(applied.cluster.as_str(), "east");
    assert_eq!(applied.key_type, KeyType::EcdsaP256);
    assert_eq!(notices.len(), 3, "{notices:?}");
    assert!(
        notices
            .iter()
            .any(|n| n.contains("validity by its policy: 90d 0h (asked: 2y 0d)")),
        "{notices:?}"
    );
    assert!(
        notices.iter().all(|n| n.starts_with(SERVICE)),
        "{notices:?}"
    );
}

#[test]
fn a_template_that_already_is_the_policy_gets_no_notice() {
    let mut p = policy();
    p.organization = "Istio".to_string();
    p.common_name = "Intermediate CA".to_string();
    p.validity_seconds = 730 * 86_400;
    let (applied, notices) = apply_policy(SERVICE, &params(), &p).unwrap();
    assert!(notices.is_empty(), "{notices:?}");
    assert_eq!(applied.validity, params().validity);
}

#[test]
fn a_key_type_the_service_does_not_sign_is_refused_naming_the_ones_it_does() {
    let mut asked = params();
    asked.key_type = KeyType::Rsa4096;
    let e = apply_policy(SERVICE, &asked, &policy())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ecdsa-p256, ecdsa-p384 only, not rsa-4096"),
        "{e}"
    );
    assert!(e.contains("--key-type"), "{e}");
}
