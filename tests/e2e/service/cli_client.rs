//! The CLI as the service's client across several clusters: a batch takes the service's
//! policy before any key is made, and when the service refuses one cluster the others'
//! bundles — whose one-time tokens are spent — are still written, never thrown away.

use std::path::Path;

use meshtrust_ca::Certificate;
use meshtrust_testkit::apiserver::Harness;
use meshtrust_testkit::{assert_bundle_independently_valid, text};
use serde_json::Value;

use super::harness::{Service, Setup, meshtrust, path_str};

const POLICY: &str = "policy:\n  organization: Example Mesh\n  validity: 90d\n";

fn server_flags<'a>(service: &'a Service, fp: &'a str) -> Vec<&'a str> {
    vec![
        "--issuer",
        "server",
        "--server",
        &service.url,
        "--server-fingerprint",
        fp,
    ]
}

fn certificate(dir: &Path) -> Certificate {
    let pem = std::fs::read(dir.join("ca-cert.pem")).unwrap();
    Certificate::all_from_pem("ca-cert.pem", &pem)
        .unwrap()
        .remove(0)
}

#[test]
fn cacerts_takes_the_service_policy_and_keeps_the_clusters_issued_when_one_is_refused() {
    let setup = Setup::new(None, POLICY);
    let service = Service::start(&setup);
    let fp = setup.fingerprint();
    let east = format!("east={}", setup.token("east", "1h"));
    let west = format!("west={}", setup.token("west", "1h"));
    // north's token is east's: the service refuses it for north (token_wrong_cluster).
    let north = east.replacen("east=", "north=", 1);
    let out = setup.path("out");
    let mut args = vec!["cacerts"];
    args.extend(server_flags(&service, &fp));
    let out_s = path_str(&out);
    args.extend([
        "--cluster",
        "east",
        "--cluster",
        "west",
        "--cluster",
        "north",
        "--token",
        &east,
        "--token",
        &west,
        "--token",
        &north,
        "--out",
        &out_s,
    ]);
    let run = meshtrust(&args);
    let said = text(&run);
    assert!(!run.status.success(), "{said}");
    assert!(
        said.contains("1 of 3 clusters could not be issued")
            && said.contains("cluster north")
            && said.contains("token_wrong_cluster")
            && said.contains(&format!(
                "The bundles of east, west were issued and written to {out_s}"
            )),
        "{said}"
    );
    assert!(
        !said.contains("Some(") && !said.contains("Error {"),
        "{said}"
    );
    assert!(
        said.contains(
            "sets the intermediate's subject O by its policy: Example Mesh (asked: Istio)"
        ),
        "the policy's differences are reported: {said}"
    );
    for cluster in ["east", "west"] {
        let dir = out.join(cluster);
        assert_bundle_independently_valid(&dir);
        let cert = certificate(&dir);
        assert!(
            cert.subject().contains("Example Mesh"),
            "{}",
            cert.subject()
        );
        let days = (cert.not_after() - cert.not_before()).whole_days();
        assert!((89..=90).contains(&days), "{cluster}: {days} days");
    }
    assert!(
        !out.join("north").exists(),
        "nothing for the refused cluster"
    );
    // Rerun for north alone, with its own token.
    let north = format!("north={}", setup.token("north", "1h"));
    let mut args = vec!["cacerts"];
    args.extend(server_flags(&service, &fp));
    args.extend(["--cluster", "north", "--token", &north, "--out", &out_s]);
    let rerun = meshtrust(&args);
    assert!(rerun.status.success(), "{}", text(&rerun));
    assert_bundle_independently_valid(&out.join("north"));
}

#[test]
fn a_key_type_the_service_does_not_sign_is_refused_before_any_token_is_spent() {
    let setup = Setup::new(None, "policy:\n  key_types: [ecdsa-p256]\n");
    let service = Service::start(&setup);
    let fp = setup.fingerprint();
    let token = setup.token("east", "1h");
    let out_s = path_str(&setup.path("out"));
    let mut args = vec!["cacerts"];
    args.extend(server_flags(&service, &fp));
    args.extend([
        "--cluster",
        "east",
        "--token",
        &token,
        "--key-type",
        "ecdsa-p384",
        "--out",
        &out_s,
    ]);
    let run = meshtrust(&args);
    assert!(!run.status.success());
    assert!(
        text(&run).contains("keys of type ecdsa-p256 only, not ecdsa-p384"),
        "{}",
        text(&run)
    );
    let mut args = vec!["cacerts"];
    args.extend(server_flags(&service, &fp));
    args.extend(["--cluster", "east", "--token", &token, "--out", &out_s]);
    let run = meshtrust(&args);
    assert!(
        run.status.success(),
        "the token was not spent: {}",
        text(&run)
    );
}

/// Writes a Secret's bundle files to `dir`.
fn export(secret: &Value, dir: &Path) {
    use base64::Engine as _;
    std::fs::create_dir_all(dir).unwrap();
    for (k, v) in secret["data"].as_object().unwrap() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        std::fs::write(dir.join(k), bytes).unwrap();
    }
}

#[test]
fn bootstrap_through_the_service_writes_every_cluster_it_could_enroll() {
    let setup = Setup::new(None, "");
    let service = Service::start(&setup);
    let harness = Harness::start(&["c1", "c2", "c3"]);
    let fp = setup.fingerprint();
    let kubeconfig = path_str(harness.kubeconfig_path());
    let t1 = format!("c1={}", setup.token("c1", "1h"));
    let t2 = format!("c2={}", setup.token("c2", "1h"));
    let t3 = format!("c3={}", setup.token("c2", "1h")); // c2's token: refused for c3
    let mut args = vec![
        "bootstrap",
        "--contexts",
        "c1,c2,c3",
        "--kubeconfig",
        &kubeconfig,
    ];
    args.extend(server_flags(&service, &fp));
    args.extend([
        "--token",
        &t1,
        "--token",
        &t2,
        "--token",
        &t3,
        "--request-timeout",
        "5s",
        "-o",
        "json",
    ]);
    let run = meshtrust(&args);
    assert!(!run.status.success(), "{}", text(&run));
    let rows: Vec<Value> =
        serde_json::from_slice(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&run)));
    let row = |c: &str| rows.iter().find(|r| r["cluster"] == c).cloned().unwrap();
    assert_eq!(row("c1")["action"], "create", "{rows:?}");
    assert_eq!(row("c2")["action"], "create", "{rows:?}");
    let c3 = row("c3").to_string();
    assert!(c3.contains("token_wrong_cluster"), "{c3}");
    for c in ["c1", "c2"] {
        let secret = harness
            .cluster(c)
            .get("v1", "Secret", Some("istio-system"), "cacerts")
            .unwrap_or_else(|| panic!("{c} has cacerts"));
        let dir = setup.path(&format!("exported/{c}"));
        export(&secret, &dir);
        assert_bundle_independently_valid(&dir);
        let verified = meshtrust(&["verify", &path_str(&dir), "-o", "json"]);
        assert!(verified.status.success(), "{}", text(&verified));
    }
    assert!(
        harness
            .cluster("c3")
            .get("v1", "Secret", Some("istio-system"), "cacerts")
            .is_none()
    );
}
