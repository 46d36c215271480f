//! End to end: the controller's root rotation gated on what each member's istiod has
//! *loaded*, with the test playing istiod in every member (it publishes `cacerts`' roots in
//! `istio-ca-root-cert` 200 ms after they change, and can be held back):
//! - a phase waits, naming the cluster, until every istiod has loaded the previous one; the
//!   history of every `cacerts` and `istio-ca-root-cert` then shows that no phase began
//!   early and every pair of clusters trusted each other after every write;
//! - the preflight: a member whose istiod lacks `ISTIO_MULTIROOT_MESH=true` keeps the
//!   rotation from starting, named with the Helm value, and nothing is written;
//! - rotations from the local root to an AWS Private CA, and from one PCA to another
//!   (`spec.rootRotation.awsPca`), on the faithful emulator, each closed with `meshtrust
//!   rotate finish`.

// The suite waits on real processes: wall-clock deadlines are the point here.
#![allow(clippy::disallowed_methods)]

use meshtrust_ca::Certificate;
use meshtrust_testkit::apiserver::Cluster;
use meshtrust_testkit::aws::{AWS_TEST_ENV, Emulator, Flavor};
use meshtrust_testkit::istiod::{decoded, install_istiod};
use meshtrust_testkit::{assert_bundle_independently_valid, text};
use serde_json::{Value, json};

#[allow(dead_code)] // Each suite uses part of the fleet.
mod fleet;
use fleet::*;

#[path = "rotation_history.rs"]
mod rotation_history;
use rotation_history::{check_history, held_root};

fn members(fleet: &Fleet) -> Vec<(&'static str, Cluster)> {
    MEMBERS
        .iter()
        .map(|c| (*c, fleet.harness.cluster(c)))
        .collect()
}

fn certificate(fleet: &Fleet, secret: &str) -> Certificate {
    let s = fleet
        .mgmt()
        .get("v1", "Secret", Some(NS), secret)
        .expect("root secret");
    Certificate::all_from_pem(secret, &unb64(&s["data"]["root-cert.pem"])).unwrap()[0].clone()
}

fn rotation_message(mt: &Value) -> String {
    mt["status"]["rotation"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Every member Ready on the first root, and the new root handed over in `mesh-root-2`.
fn ready_fleet() -> Fleet {
    let mut fleet = Fleet::new();
    fleet.start("replica-a");
    fleet.wait_for("every cluster Ready", all_ready);
    fleet.seed_root_secret("mesh-root-2");
    fleet
}

#[test]
fn each_phase_waits_until_every_istiod_has_loaded_the_previous_one() {
    let mut fleet = ready_fleet();
    fleet.play_istiod();
    fleet.wait_until("every istiod loaded the first root", || {
        MEMBERS
            .iter()
            .all(|c| meshtrust_testkit::istiod::published(&fleet.harness.cluster(c)).is_some())
    });
    // c3's istiod will not load phase 1's roots until released.
    fleet.istiods.lock().unwrap()[2].hold(true);
    let (old, new) = (
        certificate(&fleet, "mesh-root"),
        certificate(&fleet, "mesh-root-2"),
    );
    fleet.start_rotation("mesh-root-2", None);

    // Phase 1 reaches every cacerts (c3's too: only its istiod lags), then the rotation
    // waits for c3's istiod, by name, and c3 is the one member not Ready.
    let waiting = fleet.wait_for("phase 2 waiting for c3's istiod", |mt| {
        rotation_message(mt).contains("waits for istiod: cluster c3: istiod publishes")
    });
    let message = rotation_message(&waiting);
    assert!(
        !message.contains("cluster c1") && !message.contains("cluster c2"),
        "{message}"
    );
    assert!(
        message.contains("cacerts being written is not enough"),
        "{message}"
    );
    let c3 = condition(&cluster_status(&waiting, "c3")["conditions"], "Ready").clone();
    assert_eq!(
        (c3["status"].as_str(), c3["reason"].as_str()),
        (Some("False"), Some("IstiodNotLoaded")),
        "{c3}"
    );
    assert_eq!(
        condition(&cluster_status(&waiting, "c1")["conditions"], "Ready")["status"],
        "True"
    );
    // Not a sleep as proof that nothing happened: the controller looks again several times
    // (every 2 s while it waits for istiod), and reissues nothing.
    let serials = fleet.serials();
    let seen = fleet.reconciles("replica-a");
    fleet.wait_until("two more reconciles while c3's istiod lags", || {
        fleet.reconciles("replica-a") >= seen + 2
    });
    assert_eq!(fleet.serials(), serials, "an intermediate was reissued");
    assert!(
        rotation_message(&fleet.meshtrust()).contains("cluster c3"),
        "{}",
        fleet.meshtrust()["status"]["rotation"]
    );

    // Released, phase 2 runs through to the hold (24h).
    fleet.istiods.lock().unwrap()[2].hold(false);
    fleet.wait_for("the hold before phase 3", |mt| {
        mt["status"]["rotation"]["phase"] == "HoldingOldRoot"
    });
    // Past the hold, phase 3 drops the old root everywhere, and Complete waits until every
    // istiod has dropped it too: c3's is held back again.
    fleet.istiods.lock().unwrap()[2].hold(true);
    fleet.advance_to(2);
    let last = fleet.wait_for("Complete waiting for c3's istiod", |mt| {
        rotation_message(mt)
            .starts_with("phase 3 of 3 (RemoveOldRoot) waits for istiod: cluster c3:")
    });
    assert_eq!(
        last["status"]["rotation"]["phase"], "RemoveOldRoot",
        "{}",
        last["status"]["rotation"]
    );
    for c in MEMBERS {
        let trust = decoded(&fleet.cacerts(c).unwrap(), "root-cert.pem");
        assert_eq!(
            rotation_history::roots_of(trust.as_bytes()),
            vec![new.clone()],
            "{c}"
        );
    }
    let out = fleet.cli(&["rotate", "finish", "mesh"]);
    assert_eq!(out.status.code(), Some(1), "finished early: {}", text(&out));
    fleet.istiods.lock().unwrap()[2].hold(false);
    fleet.wait_rotated_to(&root_fingerprint(&fleet, "mesh-root-2"));
    let checked = check_history(&members(&fleet), &old, &new);
    assert!(checked >= 9, "3 clusters × 3 phases, saw {checked} writes");
}

#[test]
fn a_member_whose_istiod_lacks_multiroot_mesh_keeps_the_rotation_from_starting() {
    let mut fleet = ready_fleet();
    // c2's istiod runs without ISTIO_MULTIROOT_MESH (installed before the test plays it).
    install_istiod(&fleet.harness.cluster("c2"), false);
    fleet.play_istiod();
    let writes: Vec<usize> = MEMBERS.iter().map(|c| fleet.cacerts_writes(c)).collect();
    fleet.start_rotation("mesh-root-2", Some("1s"));

    let blocked = fleet.wait_for("the preflight to name c2", |mt| {
        mt["status"]["rotation"]["phase"] == "Blocked"
    });
    let message = rotation_message(&blocked);
    assert!(
        message.starts_with(
            "the rotation does not start: cluster c2: istiod does not set ISTIO_MULTIROOT_MESH;"
        ),
        "{message}"
    );
    assert!(
        message.contains("pilot.env.ISTIO_MULTIROOT_MESH=true"),
        "{message}"
    );
    assert!(!message.contains("cluster c1"), "{message}");
    assert_eq!(
        condition(&cluster_status(&blocked, "c2")["conditions"], "Ready")["reason"],
        "MultirootMeshOff"
    );
    assert_eq!(meshtrust_testkit::debug_text(&message), None, "{message}");
    // A Warning Event says so, and `rotate status` exits non-zero with the message.
    assert!(
        events(&fleet)
            .iter()
            .any(|e| e["reason"] == "MultirootMeshOff" && e["type"] == "Warning"),
        "{:#?}",
        events(&fleet)
    );
    let out = fleet.cli(&["rotate", "status", "mesh"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("cluster c2: istiod does not set"),
        "{}",
        text(&out)
    );
    // Several more rounds, and no cacerts was written.
    let seen = fleet.reconciles("replica-a");
    fleet.wait_until("two more reconciles while the preflight fails", || {
        fleet.reconciles("replica-a") >= seen + 2
    });
    let after: Vec<usize> = MEMBERS.iter().map(|c| fleet.cacerts_writes(c)).collect();
    assert_eq!(
        after, writes,
        "a cacerts was written while the preflight failed"
    );

    // Fixed, the rotation starts and completes, keeping every rule.
    install_istiod(&fleet.harness.cluster("c2"), true);
    let (old, new) = (
        certificate(&fleet, "mesh-root"),
        certificate(&fleet, "mesh-root-2"),
    );
    let new_fp = root_fingerprint(&fleet, "mesh-root-2");
    fleet.wait_rotated_to(&new_fp);
    let checked = check_history(&members(&fleet), &old, &new);
    assert!(checked >= 9, "3 clusters × 3 phases, saw {checked} writes");
}

/// A fleet whose controller reaches the emulator, `issuer` (JSON) its MeshTrust's issuer.
fn fleet_on(issuer: Value) -> Fleet {
    let mut fleet = Fleet::new();
    fleet.extra_env = AWS_TEST_ENV
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut mt = fleet.meshtrust();
    mt["spec"]["issuer"] = issuer;
    fleet.mgmt().seed(mt);
    fleet.start("replica-a");
    fleet.wait_for("every cluster Ready", all_ready);
    fleet.play_istiod();
    fleet
}

/// The PCA `arn` on `pca` as the spec names one.
fn pca_spec(pca: &Emulator, arn: &str) -> Value {
    json!({"arn": arn, "region": "us-east-1", "endpointUrl": pca.url})
}

#[test]
fn a_rotation_from_the_local_root_to_aws_private_ca_completes_and_finishes_onto_it() {
    let pca = Emulator::start(Flavor::Faithful);
    let arn = pca.p256_roots(1).remove(0);
    let mut fleet =
        fleet_on(json!({"local": {"secretRef": {"name": "mesh-root", "namespace": NS}}}));
    let old = certificate(&fleet, "mesh-root");
    rotate_to_pca_and_finish(&mut fleet, &pca, &arn, &old);
}

#[test]
fn a_rotation_from_one_aws_private_ca_to_another_completes_and_finishes_onto_it() {
    let pca = Emulator::start(Flavor::Faithful);
    let [first, second]: [String; 2] = pca.p256_roots(2).try_into().unwrap();
    let mut fleet = fleet_on(json!({"awsPca": pca_spec(&pca, &first)}));
    let old = held_root(&fleet.harness.cluster("c1"));
    rotate_to_pca_and_finish(&mut fleet, &pca, &second, &old);
}

/// Rotates `fleet` (every member on `old`) to the PCA `arn`, checks every write and
/// every bundle, then closes the rotation with `rotate finish`.
fn rotate_to_pca_and_finish(fleet: &mut Fleet, pca: &Emulator, arn: &str, old: &Certificate) {
    let mut mt = fleet.meshtrust();
    mt["spec"]["rootRotation"] = json!({
        "awsPca": pca_spec(pca, arn),
        "holdBeforeRemovingOldRoot": "1s"
    });
    mt["metadata"]["generation"] = json!(mt["metadata"]["generation"].as_i64().unwrap() + 1);
    fleet.mgmt().seed(mt);

    // A just-created PCA clamps an intermediate's notBefore to its own birth: the hold
    // counts from there plus the usual 5-minute backdating, which the clock skips.
    let holding = fleet.wait_for("every intermediate issued by the PCA", |mt| {
        mt["status"]["rotation"]["phase"] == "HoldingOldRoot"
            || mt["status"]["rotation"]["phase"] == "Complete"
    });
    let new_fp = holding["status"]["rotation"]["newRoot"]
        .as_str()
        .unwrap()
        .to_string();
    fleet.advance_to(1);
    fleet.wait_rotated_to(&new_fp);
    let new = held_root(&fleet.harness.cluster("c1"));
    assert_ne!(new.fingerprint(), old.fingerprint());
    for c in MEMBERS {
        assert_bundle_independently_valid(&fleet.bundle_dir(c));
    }
    let checked = check_history(&members(fleet), old, &new);
    assert!(checked >= 9, "3 clusters × 3 phases, saw {checked} writes");

    // `rotate status` names the PCA; `rotate finish` moves the issuer onto it.
    let out = fleet.cli(&["rotate", "status", "mesh", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["new_ca_arn"], arn, "{status}");
    let out = fleet.cli(&["rotate", "finish", "mesh", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let finished: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(finished["issuer_ca_arn"], arn, "{finished}");
    let spec = fleet.meshtrust()["spec"].clone();
    assert_eq!(spec["issuer"]["awsPca"]["arn"], arn, "{spec}");
    assert!(
        spec["issuer"].get("local").is_none_or(Value::is_null),
        "{spec}"
    );
    assert!(
        spec.get("rootRotation").is_none_or(Value::is_null),
        "{spec}"
    );
    // The controller goes on from the PCA, reissuing nothing.
    let serials = fleet.serials();
    fleet.wait_for("every cluster Ready on the PCA", |mt| {
        all_ready(mt) && mt["status"]["observedGeneration"] == mt["metadata"]["generation"]
    });
    assert_eq!(fleet.serials(), serials);
}
