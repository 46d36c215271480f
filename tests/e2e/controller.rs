//! End to end: `meshtrust controller` processes against the loopback harness — a management
//! cluster holding the `MeshTrust`, the root Secret and kubeconfig Secrets, and three member
//! clusters. Time is moved with the controller's test clock (`--clock-offset-file`).

// The suite waits on real processes: wall-clock deadlines are the point here.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use meshtrust_testkit::apiserver::{Fault, FaultRule, Method};
use meshtrust_testkit::{assert_bundle_independently_valid, text};
use serde_json::{Value, json};

#[allow(dead_code)] // Each suite uses part of the fleet.
mod fleet;
use fleet::*;

#[test]
fn three_members_reach_ready_then_renew_when_time_passes_the_renewal_time() {
    let mut fleet = Fleet::new();
    fleet.start("replica-a");
    let mt = fleet.wait_for("every cluster Ready", all_ready);

    // The controller generated the root, and every cluster holds a bundle that openssl and
    // webpki accept, chaining to that root.
    let root = root_fingerprint(&fleet, "mesh-root");
    let mut serials = Vec::new();
    for c in MEMBERS {
        assert_bundle_independently_valid(&fleet.bundle_dir(c));
        let s = cluster_status(&mt, c);
        assert_eq!(s["trustedRoots"], json!([root]), "{c}: {s}");
        serials.push(s["serial"].as_str().unwrap().to_string());
        let ns = fleet
            .harness
            .cluster(c)
            .get("v1", "Namespace", None, "istio-system")
            .unwrap();
        assert_eq!(
            ns["metadata"]["labels"]["topology.istio.io/network"],
            format!("net-{c}")
        );
    }
    assert_eq!(
        mt["status"]["observedGeneration"],
        mt["metadata"]["generation"]
    );

    // Metrics are exposed.
    let metrics = fleet.metrics("replica-a");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    for needle in [
        "meshtrust_certificate_expiration_timestamp_seconds{cluster=\"c1\"}",
        "meshtrust_certificate_renewal_timestamp_seconds{cluster=\"c2\"}",
        "meshtrust_certificate_ready_status{cluster=\"c3\",condition=\"True\"} 1",
        "meshtrust_reconcile_total",
        "meshtrust_is_leader 1",
    ] {
        assert!(metrics.contains(needle), "no `{needle}` in\n{metrics}");
    }
    assert!(
        events(&fleet).iter().any(|e| e["reason"] == "Issued"),
        "{:?}",
        events(&fleet)
    );

    // 61 days later (renewal at 2/3 of 90 days): every intermediate is reissued.
    fleet.advance_to(61);
    let mt = fleet.wait_for("every serial renewed", |mt| {
        all_ready(mt)
            && MEMBERS.iter().zip(&serials).all(|(c, old)| {
                cluster_status(mt, c)["serial"]
                    .as_str()
                    .is_some_and(|s| s != old)
            })
    });
    for c in MEMBERS {
        let s = cluster_status(&mt, c);
        assert_eq!(s["trustedRoots"], json!([root]), "{c}: {s}");
        assert!(
            condition(&s["conditions"], "Issuing")["message"]
                .as_str()
                .unwrap_or_default()
                .contains("Renewing"),
            "{c}: {s}"
        );
    }

    // `meshtrust status` shows the table and exits 0 when everything is ready.
    let out = fleet.cli(&["status"]);
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    for c in MEMBERS {
        let row = t
            .lines()
            .find(|l| l.split_whitespace().take(2).eq(["mesh", c]))
            .unwrap_or_else(|| panic!("no row for {c}:\n{t}"));
        assert_eq!(row.split_whitespace().nth(2), Some("True"), "{row}");
    }
    assert!(t.contains(&root[..17]), "{t}");
    // Text logs carry no colour escapes when stderr is not a terminal (here a file).
    let log = fleet.log("replica-a");
    assert!(log.contains(" INFO "), "{log}");
    assert!(!log.contains('\x1b'), "ANSI escapes in a log file:\n{log}");
}

/// Every state each cluster's cacerts went through during the test, in write order across
/// clusters: (cluster, trust PEM, CA certificate PEM).
fn cacerts_history(fleet: &Fleet) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    cacerts_versions(fleet)
        .into_iter()
        .map(|(_, c, v)| {
            (
                c,
                unb64(&v["data"]["root-cert.pem"]),
                unb64(&v["data"]["ca-cert.pem"]),
            )
        })
        .collect()
}

/// Every version of every member's cacerts, in write order across clusters: (written at,
/// cluster, the Secret).
fn cacerts_versions(fleet: &Fleet) -> Vec<(Instant, String, Value)> {
    let mut all: Vec<(Instant, String, Value)> = Vec::new();
    for c in MEMBERS {
        for (at, v) in
            fleet
                .harness
                .cluster(c)
                .history("v1", "Secret", Some("istio-system"), "cacerts")
        {
            all.push((at, c.to_string(), v));
        }
    }
    all.sort_by_key(|(at, _, _)| *at);
    all
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Whether a root in `trust_pem` signed the CA certificate `ca_pem` (as intermediates here
/// are signed by the root directly).
fn trusts_issuer(trust_pem: &[u8], ca_pem: &[u8]) -> bool {
    let roots = meshtrust_ca::Certificate::all_from_pem("trust", trust_pem).unwrap();
    let ca = &meshtrust_ca::Certificate::all_from_pem("ca", ca_pem).unwrap()[0];
    roots.iter().any(|r| ca.is_issued_by(r))
}

#[test]
fn a_root_rotation_keeps_every_pair_of_clusters_trusting_each_other_after_every_write() {
    let mut fleet = Fleet::new();
    // The scenario that writes the most keys, logged at every level (issue 13: no key
    // material in any log, at any level), as JSON lines.
    fleet.start_logging("replica-a", "trace", "json");
    fleet.wait_for("every cluster Ready", all_ready);
    let before = cacerts_history(&fleet).len();

    // The new root, made with the CLI and handed over in a Secret.
    let dir = fleet.seed_root_secret("mesh-root-2");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let old_root = root_fingerprint(&fleet, "mesh-root");
    let new_root = root_fingerprint(&fleet, "mesh-root-2");
    fleet.start_rotation("mesh-root-2", None);

    // Every intermediate is reissued from the new root, then the old root is held (24h by
    // default) so that workload certificates signed under it expire before it goes.
    let holding = fleet.wait_for("the hold before phase 3", |mt| {
        mt["status"]["rotation"]["phase"] == "HoldingOldRoot"
    });
    assert!(
        holding["status"]["rotation"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("holdBeforeRemovingOldRoot"),
        "{}",
        holding["status"]["rotation"]
    );
    // Not a sleep as proof that nothing happened: the controller reconciles (every second,
    // its resync) several more times during the hold, and still removes nothing.
    let seen = fleet.reconciles("replica-a");
    fleet.wait_until("three more reconciles during the hold", || {
        fleet.reconciles("replica-a") >= seen + 3
    });
    for c in MEMBERS {
        let trust = unb64(&fleet.cacerts(c).unwrap()["data"]["root-cert.pem"]);
        assert_eq!(
            pem_blocks(&trust).len(),
            2,
            "{c} dropped the old root during the hold"
        );
    }
    fleet.advance_to(2);
    fleet.wait_rotated_to(&new_root);

    // Replay every write, in order, across the three clusters.
    let history = cacerts_history(&fleet);
    let mut state: std::collections::BTreeMap<String, (Vec<u8>, Vec<u8>)> = Default::default();
    let mut phase3_started = false;
    let mut rotation_writes = 0;
    for (i, (cluster, trust, ca)) in history.iter().enumerate() {
        if let Some((prev_trust, _)) = state.get(cluster)
            && i >= before
        {
            rotation_writes += 1;
            if !contains(trust, prev_trust) {
                // Only phase 3 may shrink a root-cert.pem, and only to a part of it.
                assert!(
                    contains(prev_trust, trust),
                    "write {i} to {cluster}: new root-cert.pem neither contains nor is contained in the old one"
                );
                phase3_started = true;
            } else {
                assert!(
                    !phase3_started || trust == prev_trust,
                    "write {i} to {cluster}: a root-cert.pem grew again after phase 3 began"
                );
            }
        }
        state.insert(cluster.clone(), (trust.clone(), ca.clone()));
        // After every write: every pair of clusters that both hold a bundle shares a root,
        // and each trusts the root the other's intermediate chains to.
        for (a, (ta, _)) in &state {
            for (b, (tb, cb)) in &state {
                let shared = pem_blocks(ta).iter().any(|r| pem_blocks(tb).contains(r));
                assert!(shared, "after write {i}: {a} and {b} share no root");
                assert!(
                    trusts_issuer(ta, cb),
                    "after write {i}: {a} does not trust the root {b}'s intermediate chains to"
                );
            }
        }
    }
    assert!(
        rotation_writes >= 9,
        "3 clusters × 3 phases, saw {rotation_writes} writes"
    );
    assert!(phase3_started, "the old root was never removed");
    assert_ne!(old_root, new_root);
    let reasons: Vec<Value> = events(&fleet).iter().map(|e| e["reason"].clone()).collect();
    assert!(reasons.contains(&json!("RootRotation")), "{reasons:?}");
    assert_logs_hold_no_key(&fleet, &read("root-key.pem"));
}

/// The controller's log is JSON lines and shows no part of any key written during the
/// test: every intermediate key in any `cacerts` version, the roots' keys.
fn assert_logs_hold_no_key(fleet: &Fleet, new_root_key: &str) {
    let mut keys = vec![new_root_key.to_string()];
    for (_, _, v) in cacerts_versions(fleet) {
        keys.push(String::from_utf8(unb64(&v["data"]["ca-key.pem"])).unwrap());
    }
    for (_, v) in fleet.mgmt().history("v1", "Secret", Some(NS), "mesh-root") {
        keys.push(String::from_utf8(unb64(&v["data"]["root-key.pem"])).unwrap());
    }
    assert!(keys.len() >= 8, "{} keys", keys.len());
    meshtrust_testkit::leaks::assert_trace_json_log_holds_no_key(
        &fleet.log("replica-a"),
        keys.iter().map(String::as_str),
        "the controller's log",
    );
}

#[test]
fn with_two_replicas_only_the_leader_reconciles() {
    let mut fleet = Fleet::new();
    fleet.start("replica-a");
    fleet.start("replica-b");
    fleet.wait_for("every cluster Ready", all_ready);
    let lease = fleet
        .mgmt()
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            Some(NS),
            "meshtrust-controller",
        )
        .expect("a Lease");
    let leader = lease["spec"]["holderIdentity"]
        .as_str()
        .unwrap()
        .to_string();
    let follower = if leader == "replica-a" {
        "replica-b"
    } else {
        "replica-a"
    };
    let lm = fleet.metrics(&leader);
    let fm = fleet.metrics(follower);
    assert!(lm.contains("meshtrust_is_leader 1"), "{lm}");
    assert!(fm.contains("meshtrust_is_leader 0"), "{fm}");
    assert!(
        fm.contains("meshtrust_reconcile_total 0"),
        "the follower reconciled:\n{fm}"
    );
    // Every event was reported by the leader (and there were events to look at).
    let reported: Vec<String> = events(&fleet)
        .iter()
        .map(|e| {
            e["reportingInstance"]
                .as_str()
                .unwrap_or("(none)")
                .to_string()
        })
        .collect();
    assert!(!reported.is_empty(), "no events at all");
    assert!(reported.iter().all(|i| *i == leader), "{reported:?}");

    // The leader goes away: the follower takes over and keeps the mesh renewed.
    let (_, mut child, _) = {
        let i = fleet
            .controllers
            .iter()
            .position(|(id, _, _)| *id == leader)
            .unwrap();
        fleet.controllers.remove(i)
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let serial = cluster_status(&fleet.meshtrust(), "c1")["serial"].clone();
    fleet.advance_to(61);
    fleet.wait_for("c1 renewed by the new leader", |mt| {
        all_ready(mt) && cluster_status(mt, "c1")["serial"] != serial
    });
    let lease = fleet
        .mgmt()
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            Some(NS),
            "meshtrust-controller",
        )
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], follower);
}

#[test]
fn api_faults_back_off_and_then_succeed() {
    let mut fleet = Fleet::new();
    let c2 = fleet.harness.cluster("c2");
    // The first six attempts to create c2's cacerts fail with 500: the client's retry
    // policy sends each request up to 5 times, so the controller's first issuance fails
    // and its second one gets through.
    c2.fail(
        FaultRule::new(Fault::Status(500))
            .method(Method::POST)
            .path_contains("/secrets")
            .times(6),
    );
    fleet.start("replica-a");
    let failing = fleet.wait_for("a recorded failure", |mt| {
        cluster_status(mt, "c2")["failedIssuanceAttempts"]
            .as_u64()
            .unwrap_or(0)
            >= 1
    });
    let s = cluster_status(&failing, "c2");
    let error = s["lastError"].as_str().unwrap_or_default();
    assert!(error.contains("cacerts"), "{s}");
    assert!(error.contains("API server answered 500"), "{s}");
    assert_eq!(meshtrust_testkit::debug_text(error), None, "{error}");
    assert!(s["lastFailureTime"].is_string(), "{s}");
    assert_eq!(
        condition(&s["conditions"], "Ready")["status"],
        "False",
        "{s}"
    );
    assert_eq!(
        condition(&s["conditions"], "Ready")["reason"],
        "DoesNotExist",
        "{s}"
    );

    let mt = fleet.wait_for("every cluster Ready", all_ready);
    let s = cluster_status(&mt, "c2");
    assert_eq!(s["failedIssuanceAttempts"], 0, "{s}");
    assert!(s.get("lastError").is_none_or(Value::is_null), "{s}");
    let posts = c2
        .requests()
        .iter()
        .filter(|r| r.method == Method::POST && r.path.contains("/secrets"))
        .count();
    assert!(
        posts >= 7,
        "6 failed creates and one that worked, saw {posts}"
    );
    assert!(
        events(&fleet)
            .iter()
            .any(|e| e["reason"] == "IssuanceFailed")
    );
    assert_bundle_independently_valid(&fleet.bundle_dir("c2"));
}

#[test]
fn a_member_answering_slowly_is_given_up_at_its_budget_and_holds_up_no_other() {
    let mut fleet = Fleet::new();
    // Every request to c2 answers within --request-timeout (5 s), but after 2.5 s: past
    // the member's 2 s budget.
    fleet
        .harness
        .cluster("c2")
        .fail(FaultRule::new(Fault::Delay(Duration::from_millis(2500))).always());
    fleet.extra_args = vec!["--cluster-timeout".into(), "2s".into()];
    fleet.start("replica-a");
    let ready = |mt: &Value, c: &str| {
        condition(&cluster_status(mt, c)["conditions"], "Ready")["status"] == "True"
    };
    let mt = fleet.wait_for("c1 and c3 Ready, c2 given up in status", |mt| {
        ready(mt, "c1") && ready(mt, "c3") && cluster_status(mt, "c2")["lastError"].is_string()
    });
    let error = cluster_status(&mt, "c2")["lastError"].as_str().unwrap();
    assert!(
        error.contains("reading the cluster took longer than the cluster's 2s budget"),
        "{error}"
    );
    assert!(fleet.cacerts("c2").is_none());
    for c in ["c1", "c3"] {
        assert_bundle_independently_valid(&fleet.bundle_dir(c));
    }
}

#[test]
fn a_member_answering_503_to_everything_holds_up_no_other_and_is_named_in_status() {
    let mut fleet = Fleet::new();
    fleet
        .harness
        .cluster("c2")
        .fail(FaultRule::new(Fault::Status(503)).always());
    let started = Instant::now();
    fleet.start("replica-a");
    let ready = |mt: &Value, c: &str| {
        condition(&cluster_status(mt, c)["conditions"], "Ready")["status"] == "True"
    };
    let mt = fleet.wait_for("c1 and c3 Ready, c2's failure in status", |mt| {
        ready(mt, "c1") && ready(mt, "c3") && cluster_status(mt, "c2")["lastError"].is_string()
    });
    // The bound (30 s from start), far above what it takes: not a timing check of
    // the code, the proof that one member cannot hold the others for minutes.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let s = cluster_status(&mt, "c2");
    let error = s["lastError"].as_str().unwrap();
    assert!(error.contains("503"), "{s}");
    assert_eq!(meshtrust_testkit::debug_text(error), None, "{error}");
    assert_eq!(
        condition(&s["conditions"], "Ready")["status"],
        "False",
        "{s}"
    );
    let top = condition(&mt["status"]["conditions"], "Ready");
    assert_eq!(top["status"], "False", "{top}");
    assert!(
        top["message"].as_str().unwrap_or_default().contains("c2"),
        "the MeshTrust's Ready condition names the failing member: {top}"
    );
    for c in ["c1", "c3"] {
        assert_bundle_independently_valid(&fleet.bundle_dir(c));
    }
}
