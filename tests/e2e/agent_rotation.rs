//! End to end: a root rotation driven by `meshtrust serve` and carried out by the
//! `meshtrust agent` of each member cluster, with the test playing each cluster's istiod:
//! it publishes `istio-ca-root-cert` only some time after `cacerts` changes, and can be
//! held back. The operator starts the rotation by giving the service `rotation.to` and
//! restarting it.
//!
//! Checked on the history of every object the loopback API server stored: after every
//! write every pair of clusters trusts the root the other's intermediate chains to; every
//! trust file byte-contains the one before or is contained in it; no intermediate is issued
//! by the new root while some istiod has not loaded both roots; the old root leaves no trust
//! file while some istiod has not loaded both. Local → local, local → AWS Private CA, and one
//! AWS Private CA → another on the emulator (moto with the faithful patch).
#![allow(clippy::disallowed_methods)] // Tests poll with the wall clock.

#[path = "service/harness.rs"]
#[allow(dead_code)] // This suite uses part of the harness.
mod harness;

#[path = "agent/fleet.rs"]
#[allow(dead_code)] // This suite uses part of the fixture.
mod fleet;
#[path = "rotation_history.rs"]
mod rotation_history;

use std::time::{Duration, Instant};

use fleet::*;
use meshtrust_ca::Certificate;
use meshtrust_issuer::server::wire;
use meshtrust_testkit::aws::{AWS_TEST_ENV, Emulator, Flavor};
use meshtrust_testkit::istiod::Istiod;
use rotation_history::{check_history, held_root, roots_of};
use serde_json::Value;

const CLUSTERS: [&str; 3] = ["c1", "c2", "c3"];

/// The service's rotation status (`status --server -o json`'s `rotation`).
fn rotation(fleet: &Fleet) -> Value {
    fleet.inventory()["rotation"].clone()
}

/// A second local root, made with the CLI.
fn new_root(fleet: &Fleet) -> (std::path::PathBuf, Certificate) {
    let dir = fleet.work.path().join("root-2");
    harness::ok(&["root", "create", "--out", &dir.display().to_string()]);
    let pem = std::fs::read(dir.join("root-cert.pem")).unwrap();
    (
        dir,
        Certificate::all_from_pem("new root", &pem).unwrap()[0].clone(),
    )
}

fn old_root(fleet: &Fleet) -> Certificate {
    let pem = std::fs::read(fleet.setup.root_cert()).unwrap();
    Certificate::all_from_pem("old root", &pem).unwrap()[0].clone()
}

/// Restarts the service with `rotation` appended to its configuration.
fn restart_rotating(fleet: &mut Fleet, rotation: &str) {
    fleet.stop_service();
    let mut config = std::fs::read_to_string(fleet.setup.config()).unwrap();
    config.push_str(rotation);
    std::fs::write(fleet.setup.config(), config).unwrap();
    fleet.start_service();
}

/// How many reports the service received (its request log).
fn reports_received(fleet: &Fleet) -> usize {
    std::fs::read_to_string(fleet.setup.path("requests.log"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("/report"))
        .count()
}

/// Every cluster reported that istiod publishes exactly the roots its cacerts holds.
fn all_loaded(fleet: &Fleet) -> bool {
    let inventory = fleet.inventory();
    let clusters = inventory["clusters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    clusters.len() == CLUSTERS.len()
        && clusters.iter().all(|c| {
            let r = &c["reported"]["report"];
            !r["istiod_roots"].is_null()
                && sorted(&r["istiod_roots"]) == sorted(&r["cacerts_roots"])
        })
}

fn sorted(v: &Value) -> Vec<String> {
    let mut all: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect();
    all.sort();
    all
}

/// Each cluster, by name.
fn members(fleet: &Fleet) -> Vec<(&'static str, meshtrust_testkit::apiserver::Cluster)> {
    CLUSTERS.iter().map(|c| (*c, fleet.cluster(c))).collect()
}

/// Three enrolled clusters whose istiods have loaded the old root.
fn enrolled_fleet() -> (Fleet, Vec<Agent>, Vec<Istiod>) {
    enrolled(Fleet::new(&CLUSTERS))
}

/// `fleet`'s clusters enrolled, their istiods having loaded the first root.
fn enrolled(fleet: Fleet) -> (Fleet, Vec<Agent>, Vec<Istiod>) {
    let agents: Vec<Agent> = CLUSTERS.iter().map(|c| fleet.agent(c, &[])).collect();
    let istiods: Vec<Istiod> = CLUSTERS
        .iter()
        .map(|c| Istiod::start(fleet.cluster(c), Duration::from_millis(700)))
        .collect();
    for c in CLUSTERS {
        fleet.written(c, "");
    }
    eventually("every istiod loaded the first root", 60, || {
        all_loaded(&fleet).then_some(())
    });
    (fleet, agents, istiods)
}

#[test]
fn a_rotation_waits_for_every_istiod_to_load_each_phase_and_keeps_every_pair_trusting() {
    let (mut fleet, _agents, istiods) = enrolled_fleet();
    let (old, (dir, new)) = (old_root(&fleet), new_root(&fleet));
    // c3's istiod will not load phase 1's roots until released.
    istiods[2].hold(true);
    restart_rotating(
        &mut fleet,
        &format!(
            "rotation:\n  to:\n    root_dir: {}\n  hold: 0s\n",
            dir.display()
        ),
    );

    // Phase 1 reaches every cacerts (c3's too: only its istiod lags).
    for c in CLUSTERS {
        let cluster = fleet.cluster(c);
        eventually(&format!("{c}'s cacerts with both roots"), 60, || {
            let secret = cacerts(&cluster)?;
            (roots_of(decoded(&secret, "root-cert.pem").as_bytes()).len() == 2).then_some(())
        });
    }
    // c1's and c2's istiods load both roots; the rotation then waits for c3's alone.
    let status = eventually("the rotation waiting for c3's istiod alone", 30, || {
        let r = rotation(&fleet);
        (r["phase"] == "reissue_intermediates"
            && r["waiting_for"].as_array().map(Vec::len) == Some(1))
        .then_some(r)
    });
    assert_eq!(status["open"], false, "{status}");
    let waiting = &status["waiting_for"];
    assert_eq!(waiting[0]["cluster"], "c3", "{status}");
    assert_eq!(waiting[0]["reason"], "istiod_not_loaded", "{status}");
    // While it lags, the agents report again and again, and nothing is reissued.
    let reports = || reports_received(&fleet);
    let seen = reports();
    eventually("six more reports while c3's istiod lags", 30, || {
        (reports() >= seen + 6).then_some(())
    });
    for c in CLUSTERS {
        let secret = cacerts(&fleet.cluster(c)).unwrap();
        let ca = Certificate::all_from_pem("ca", decoded(&secret, "ca-cert.pem").as_bytes())
            .unwrap()[0]
            .clone();
        assert!(
            ca.is_issued_by(&old),
            "{c} was reissued while c3's istiod lagged"
        );
    }
    // The status page says what the rotation waits for.
    let (code, page) = harness::curl(
        &fleet.setup,
        &[
            "-u",
            &format!("x:{}", harness::ADMIN_TOKEN),
            &format!("{}/status", fleet.url),
        ],
    );
    assert_eq!(code, 200, "{page}");
    assert!(
        page.contains("data-reason=\"istiod_not_loaded\"") && page.contains("cluster c3"),
        "{page}"
    );

    istiods[2].hold(false);
    eventually("the rotation to complete", 120, || {
        (rotation(&fleet)["phase"] == "complete").then_some(())
    });
    for c in CLUSTERS {
        let anchor = fleet.verified(c);
        assert_eq!(anchor, new.fingerprint(), "{c} chains to the new root");
        let secret = cacerts(&fleet.cluster(c)).unwrap();
        assert_eq!(
            decoded(&secret, "root-cert.pem"),
            new.to_pem(),
            "{c} trusts the new root alone"
        );
    }
    let writes = check_history(&members(&fleet), &old, &new);
    // Each cluster: the new root added, reissued from it, the old root dropped.
    assert!(writes >= 3 * CLUSTERS.len(), "{writes} rotation writes");
    // The trust bundle every client can fetch now holds the new root alone.
    let (code, body) = harness::curl(&fleet.setup, &[&format!("{}/v1/trust-bundle", fleet.url)]);
    assert_eq!(code, 200, "{body}");
    let bundle: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(bundle["rotation_phase"], "complete");
    assert_eq!(
        bundle["roots"].as_array().map(Vec::len),
        Some(1),
        "{bundle}"
    );
}

#[test]
fn a_cluster_whose_istiod_lacks_multiroot_mesh_keeps_the_rotation_from_starting() {
    let (mut fleet, _agents, _istiods) = enrolled_fleet();
    // c2's istiod runs without ISTIO_MULTIROOT_MESH.
    install_istio(&fleet.cluster("c2"), false);
    eventually("c2's report of its istiod's settings", 30, || {
        fleet.entry("c2")["reported"]["report"]["istiod"]["multiroot_mesh"]
            .is_null()
            .then_some(())
    });
    let (_, dir) = (old_root(&fleet), new_root(&fleet).0);
    let before: Vec<usize> = CLUSTERS
        .iter()
        .map(|c| {
            fleet
                .cluster(c)
                .history("v1", "Secret", Some(NS), "cacerts")
                .len()
        })
        .collect();
    restart_rotating(
        &mut fleet,
        &format!(
            "rotation:\n  to:\n    root_dir: {}\n  hold: 0s\n",
            dir.display()
        ),
    );
    let status = eventually("the preflight to name c2", 30, || {
        let r = rotation(&fleet);
        (r["waiting_for"][0]["reason"] == "multiroot_mesh_off").then_some(r)
    });
    assert_eq!(status["phase"], "add_new_root", "{status}");
    assert_eq!(status["waiting_for"][0]["cluster"], "c2", "{status}");
    let message = status["waiting_for"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("pilot.env.ISTIO_MULTIROOT_MESH=true"),
        "{message}"
    );
    // The table says it too, and what each istiod has loaded.
    let table = harness::ok(&[
        "status",
        "--server",
        &fleet.url,
        "--server-ca",
        &fleet.setup.root_cert(),
        "--admin-token-file",
        &fleet.setup.path("admin-token").display().to_string(),
    ]);
    assert!(
        table.contains("phase add_new_root, waiting")
            && table.contains("cluster c2: istiod does not set ISTIO_MULTIROOT_MESH"),
        "{table}"
    );
    assert!(table.contains("loaded"), "{table}");
    // Agents keep reporting; no cacerts changes.
    let reports = || reports_received(&fleet);
    let seen = reports();
    eventually("six more reports", 30, || {
        (reports() >= seen + 6).then_some(())
    });
    for (c, n) in CLUSTERS.iter().zip(before) {
        let now = fleet
            .cluster(c)
            .history("v1", "Secret", Some(NS), "cacerts")
            .len();
        assert_eq!(
            now, n,
            "{c}'s cacerts changed although the preflight failed"
        );
    }
    // Fixed: the rotation starts.
    install_istio(&fleet.cluster("c2"), true);
    eventually("the rotation to start", 60, || {
        (rotation(&fleet)["phase"] != "add_new_root" || rotation(&fleet)["open"] == true)
            .then_some(())
    });
}

#[test]
fn a_rotation_from_a_local_root_to_aws_private_ca_completes_on_the_emulator() {
    let pca = Emulator::start(Flavor::Faithful);
    let arn = pca.p256_roots(1).remove(0);
    let (mut fleet, agents, _istiods) = enrolled_fleet();
    let old = old_root(&fleet);
    fleet.stop_service();
    let mut config = std::fs::read_to_string(fleet.setup.config()).unwrap();
    config.push_str(&format!(
        "rotation:\n  to:\n    aws_pca_arn: {arn}\n    aws_region: us-east-1\n    aws_endpoint_url: {}\n  hold: 0s\n",
        pca.url
    ));
    std::fs::write(fleet.setup.config(), config).unwrap();
    fleet.start_service_with_env(&AWS_TEST_ENV);
    let status = completed(&fleet, &agents, "to AWS Private CA");
    let new_fingerprint = status["to_root"].as_str().unwrap().to_string();
    assert_ne!(new_fingerprint, status["from_root"].as_str().unwrap());
    let new = held_root(&fleet.cluster("c1"));
    assert_eq!(new.subject(), "O=Acme, CN=Acme Mesh Root", "the PCA's root");
    assert_rotated(&fleet, &old, &new);
}

/// Every cluster chains to `new` alone (openssl, webpki, `meshtrust verify`), and every
/// write of the rotation from `old` kept the rules.
fn assert_rotated(fleet: &Fleet, old: &Certificate, new: &Certificate) {
    for c in CLUSTERS {
        assert_eq!(
            fleet.verified(c),
            new.fingerprint(),
            "{c} chains to the new root"
        );
    }
    let writes = check_history(&members(fleet), old, new);
    assert!(writes >= 3 * CLUSTERS.len(), "{writes} rotation writes");
}

/// Waits for the rotation to complete, skipping the clock past a hold that counts from a
/// just-created PCA's birth (an intermediate's notBefore is never before its CA's).
fn completed(fleet: &Fleet, agents: &[Agent], what: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = rotation(fleet);
        if r["phase"] == "complete" {
            return r;
        }
        if r["waiting_for"][0]["reason"] == "hold" && fleet.offset.get() == 0 {
            fleet.move_clock(600);
        }
        assert!(
            Instant::now() < deadline,
            "the rotation {what} did not complete: {r}\nservice:\n{}\nagent c1:\n{}",
            fleet.service.as_ref().unwrap().log(),
            agents[0].log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_rotation_from_one_aws_private_ca_to_another_completes_on_the_emulator() {
    let pca = Emulator::start(Flavor::Faithful);
    let [first, second]: [String; 2] = pca.p256_roots(2).try_into().unwrap();
    // The service signs with the first PCA from the start (serving TLS from a certificate
    // of the setup's root, which the agents pin).
    let mut fleet = Fleet::new(&CLUSTERS);
    fleet.stop_service();
    let (cert, key) = harness::serving_certificate(&fleet.setup);
    let config = std::fs::read_to_string(fleet.setup.config()).unwrap();
    let local = format!(
        "tls:\n  self_issued: [127.0.0.1, localhost]\nissuer:\n  root_dir: {}\n",
        fleet.setup.path("root").display()
    );
    assert!(config.contains(&local), "{config}");
    let on_pca = |arn: &str| {
        format!(
            "aws_pca_arn: {arn}\n    aws_region: us-east-1\n    aws_endpoint_url: {}\n",
            pca.url
        )
    };
    let config = config.replace(
        &local,
        &format!(
            "tls:\n  cert_file: {cert}\n  key_file: {key}\nissuer:\n  {}",
            on_pca(&first).replace("\n    ", "\n  ")
        ),
    );
    std::fs::write(fleet.setup.config(), config).unwrap();
    fleet.start_service_with_env(&AWS_TEST_ENV);
    let (mut fleet, agents, _istiods) = enrolled(fleet);
    let old = held_root(&fleet.cluster("c1"));

    fleet.stop_service();
    let mut config = std::fs::read_to_string(fleet.setup.config()).unwrap();
    config.push_str(&format!(
        "rotation:\n  to:\n    {}  hold: 0s\n",
        on_pca(&second)
    ));
    std::fs::write(fleet.setup.config(), config).unwrap();
    fleet.start_service_with_env(&AWS_TEST_ENV);
    let status = completed(&fleet, &agents, "from one PCA to another");

    let new = held_root(&fleet.cluster("c1"));
    assert_ne!(new.fingerprint(), old.fingerprint());
    assert_eq!(status["to_root"], wire::fingerprint(&new), "{status}");
    assert_eq!(status["from_root"], wire::fingerprint(&old), "{status}");
    assert_rotated(&fleet, &old, &new);
}
