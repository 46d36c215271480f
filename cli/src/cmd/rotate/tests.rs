//! Which MeshTrusts `meshtrust rotate start` refuses, by table, and the new root's checks.

use serde_json::json;

use super::*;

fn meshtrust(extra: serde_json::Value) -> MeshTrust {
    let mut v = json!({
        "apiVersion": "meshtrust.io/v1alpha1", "kind": "MeshTrust",
        "metadata": {"name": "mesh"},
        "spec": {
            "issuer": {"local": {"secretRef": {"name": "mesh-root", "namespace": "meshtrust-system"}}},
            "clusters": [{"name": "c1", "local": true}],
        },
    });
    if let (Some(a), serde_json::Value::Object(b)) = (v.as_object_mut(), extra) {
        for (k, x) in b {
            match (a.get_mut(&k), x) {
                (Some(serde_json::Value::Object(a)), serde_json::Value::Object(x)) => a.extend(x),
                (_, x) => {
                    a.insert(k, x);
                }
            }
        }
    }
    serde_json::from_value(v).unwrap()
}

const ARN: &str = "arn:aws:acm-pca:eu-west-1:111122223333:certificate-authority/new";

fn rotation(secret: &str) -> serde_json::Value {
    json!({"newRootSecretRef": {"name": secret, "namespace": "meshtrust-system"}})
}

#[test]
fn which_meshtrusts_can_start_a_rotation() {
    let cases: Vec<(&str, MeshTrust, Option<&str>)> = vec![
        (
            "a local issuer without a rotation can",
            meshtrust(json!({})),
            None,
        ),
        (
            "a rotation that names the issuer's own Secret is ignored, as by the controller",
            meshtrust(json!({"spec": {"rootRotation": rotation("mesh-root")}})),
            None,
        ),
        (
            "a rotation under way is refused, naming its phase",
            meshtrust(
                json!({"spec": {"rootRotation": rotation("mesh-root-2")}, "status": {"rotation": {"phase": "AddNewRoot"}}}),
            ),
            Some("already rotating its root (phase AddNewRoot)"),
        ),
        (
            "a rotation the controller has not reported yet is refused",
            meshtrust(json!({"spec": {"rootRotation": rotation("mesh-root-2")}})),
            Some("not started yet"),
        ),
        (
            "a finished rotation that is not closed is refused, saying how to close it",
            meshtrust(
                json!({"spec": {"rootRotation": rotation("mesh-root-2")}, "status": {"rotation": {"phase": "Complete"}}}),
            ),
            Some(
                "it rotated to the root in Secret meshtrust-system/mesh-root-2): run `meshtrust rotate finish mesh`",
            ),
        ),
        (
            "an AWS Private CA issuer is refused, pointing at spec.rootRotation.awsPca",
            meshtrust(
                json!({"spec": {"issuer": {"awsPca": {"arn": "arn:aws:acm-pca:eu-west-1:1:certificate-authority/x"}, "local": null}}}),
            ),
            Some("set spec.rootRotation.awsPca.arn"),
        ),
    ];
    for (case, mt, refusal) in cases {
        match (refuse_unless_rotatable(&mt), refusal) {
            (Ok(s), None) => assert_eq!(s.name, "mesh-root", "{case}"),
            (Err(e), Some(needle)) => {
                let e = e.to_string();
                assert!(e.contains(needle), "{case}: {e}");
                assert_eq!(meshtrust_testkit::debug_text(&e), None, "{case}: {e}");
            }
            (r, _) => panic!("{case}: {:?}", r.map_err(|e| e.to_string())),
        }
    }
}

#[test]
fn the_default_secret_name_comes_from_the_fingerprint() {
    assert_eq!(
        default_secret_name("mesh", "AB:CD:EF:01:23:45:67:89:AA"),
        "mesh-root-abcdef01"
    );
}

#[test]
fn a_new_root_is_refused_naming_the_file_and_the_fix() {
    let clock = Clock::system();
    let dir = tempfile::tempdir().unwrap();
    let missing = read_new_root(dir.path(), &clock).map(drop).unwrap_err();
    let text = format!("{missing:#}");
    assert!(
        text.contains("root-cert.pem") && text.contains("meshtrust root create"),
        "{text}"
    );
    // A key that belongs to another root.
    let a = meshtrust_ca::RootParams::default()
        .self_signed(clock.now())
        .unwrap();
    let b = meshtrust_ca::RootParams::default()
        .self_signed(clock.now())
        .unwrap();
    std::fs::write(dir.path().join(ROOT_CERT), a.certificate().to_pem()).unwrap();
    std::fs::write(dir.path().join(ROOT_KEY), b.key().to_pem().as_bytes()).unwrap();
    let e = read_new_root(dir.path(), &clock)
        .map(drop)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("root-key.pem") && e.contains("meshtrust root create"),
        "{e}"
    );
    std::fs::write(dir.path().join(ROOT_KEY), a.key().to_pem().as_bytes()).unwrap();
    let (root, files) = read_new_root(dir.path(), &clock).unwrap();
    assert_eq!(
        root.certificate().fingerprint(),
        a.certificate().fingerprint()
    );
    assert_eq!(
        files.cert,
        a.certificate().to_pem().into_bytes(),
        "kept byte for byte"
    );
}

#[test]
fn which_rotations_can_be_finished() {
    let done = |generation: i64, observed: i64| {
        json!({
            "metadata": {"name": "mesh", "generation": generation},
            "spec": {"rootRotation": rotation("mesh-root-2")},
            "status": {"observedGeneration": observed, "rotation": {"phase": "Complete"}},
        })
    };
    let done_to_aws = || {
        json!({
            "metadata": {"name": "mesh", "generation": 2},
            "spec": {"rootRotation": {"awsPca": {"arn": ARN}}},
            "status": {"observedGeneration": 2, "rotation": {"phase": "Complete"}},
        })
    };
    let cases: Vec<(&str, MeshTrust, Option<&str>)> = vec![
        (
            "a Complete rotation the controller reported on the latest spec can",
            meshtrust(done(2, 2)),
            None,
        ),
        (
            "a rotation under way is refused, naming its phase",
            meshtrust(
                json!({"spec": {"rootRotation": rotation("mesh-root-2")}, "status": {"rotation": {"phase": "HoldingOldRoot"}}}),
            ),
            Some("is in phase HoldingOldRoot, not Complete"),
        ),
        (
            "a Complete status of an older spec is refused until the controller catches up",
            meshtrust(done(3, 2)),
            Some("has not yet reported on the latest spec"),
        ),
        (
            "no rotation at all is refused",
            meshtrust(json!({})),
            Some("has no root rotation"),
        ),
        (
            "a rotation naming the issuer's own Secret has nothing to finish",
            meshtrust(json!({"spec": {"rootRotation": rotation("mesh-root")}})),
            Some("already issues from the root in Secret meshtrust-system/mesh-root;"),
        ),
        (
            "a Complete rotation to an AWS Private CA closes onto it",
            meshtrust(done_to_aws()),
            None,
        ),
    ];
    for (case, mt, refusal) in cases {
        match (finish::closable(&mt), refusal) {
            (Ok(closing), None) => {
                assert_eq!(
                    closing.old, "the root in Secret meshtrust-system/mesh-root",
                    "{case}"
                );
                let new = match (&closing.new_secret, &closing.new_ca) {
                    (Some(r), None) => r.name.clone(),
                    (None, Some(a)) => a.arn.clone(),
                    other => panic!(
                        "{case}: {} new issuers",
                        [other.0.is_some(), other.1.is_some()]
                            .iter()
                            .filter(|x| **x)
                            .count()
                    ),
                };
                assert!(
                    ["mesh-root-2", ARN].contains(&new.as_str()),
                    "{case}: {new}"
                );
            }
            (Err(e), Some(needle)) => {
                let e = e.to_string();
                assert!(e.contains(needle), "{case}: {e}");
                assert_eq!(meshtrust_testkit::debug_text(&e), None, "{case}: {e}");
            }
            (Ok(_), Some(needle)) => panic!("{case}: accepted, expected a refusal with {needle:?}"),
            (Err(e), None) => panic!("{case}: refused: {e}"),
        }
    }
}
