//! Crash consistency of `meshtrust controller`: killed with SIGKILL right after each write it
//! makes to a Secret or a namespace — while it issues a new mesh, and in the middle of a root
//! rotation — then a new replica is started.
//!
//! The loopback API server carries the chosen write out and holds its answer
//! ([`Fault::HoldAfterApplying`]); the replica is killed while it waits. Every write of a
//! clean run is, in turn, the last one the replica made. After each kill every version any
//! member's `cacerts` ever had passes `meshtrust verify` and `openssl verify`, and every pair
//! of members trusts each other's intermediate (openssl); the new replica converges (every
//! member Ready, the rotation Complete), and no root Secret was ever replaced.

// The suite waits on real processes: wall-clock deadlines are the point here.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use meshtrust_testkit::apiserver::{Cluster, Fault, FaultRule};
use meshtrust_testkit::crash::{
    assert_clusters_trust_each_other, assert_every_cacerts_version_valid, ders, unb64,
};
use meshtrust_testkit::text;
use serde_json::{Value, json};

#[allow(dead_code)] // Each suite uses part of the fleet.
mod fleet;
use fleet::*;

/// Where a kill point is: a cluster and which of its writes.
#[derive(Clone, Debug)]
struct Point {
    cluster: String,
    nth: usize,
}

/// The writes the kill points are among: a member's namespace and Secrets, the management
/// cluster's Secrets (the root). Leases, status and Events are rewritten by the next
/// replica anyway.
fn rule(cluster: &str) -> FaultRule {
    let rule = FaultRule::new(Fault::HoldAfterApplying).writes();
    if cluster == "mgmt" {
        rule.path_contains("/secrets")
    } else {
        rule
    }
}

/// How many writes of the kind [`rule`] picks each cluster received since `from`.
fn writes_since(fleet: &Fleet, from: &[(String, usize)]) -> Vec<(String, usize)> {
    from.iter()
        .map(|(c, before)| {
            let probe = rule(c);
            let all = fleet.harness.cluster(c).writes();
            let n = all
                .iter()
                .filter(|w| w.target().contains(&probe.path_contains))
                .count();
            (c.clone(), n - before)
        })
        .collect()
}

fn clusters() -> Vec<String> {
    std::iter::once("mgmt")
        .chain(MEMBERS)
        .map(str::to_string)
        .collect()
}

fn no_writes() -> Vec<(String, usize)> {
    clusters().into_iter().map(|c| (c, 0)).collect()
}

fn members(fleet: &Fleet) -> Vec<Cluster> {
    MEMBERS.iter().map(|c| fleet.harness.cluster(c)).collect()
}

/// Every check that must hold at any instant: each `cacerts` version valid, every pair of
/// members trusting each other.
fn assert_safe(fleet: &Fleet, after: &str) {
    for c in members(fleet) {
        assert_every_cacerts_version_valid(&c, Path::new(env!("CARGO_BIN_EXE_meshtrust")), after);
    }
    assert_clusters_trust_each_other(&members(fleet), after);
}

/// Every version of the management cluster's Secret `name` with data (a root is created
/// once and never replaced).
fn root_versions(fleet: &Fleet, name: &str) -> Vec<Value> {
    fleet
        .mgmt()
        .history("v1", "Secret", Some(NS), name)
        .into_iter()
        .map(|(_, v)| v["data"].clone())
        .filter(|d| d.is_object())
        .collect()
}

/// How many writes [`rule`] would pick `cluster` has received so far.
fn picked(fleet: &Fleet, cluster: &str) -> usize {
    writes_since(fleet, &[(cluster.to_string(), 0)])[0].1
}

/// Arms `point`: its write will be carried out and held. Returns the writes before it.
fn arm(fleet: &Fleet, point: &Point) -> usize {
    let before = picked(fleet, &point.cluster);
    fleet
        .harness
        .cluster(&point.cluster)
        .fail(rule(&point.cluster).nth(point.nth).times(1));
    before
}

/// Waits until replica `identity` has had write `point` carried out and held (`before`
/// such writes came earlier), then kills it.
fn kill_at(fleet: &mut Fleet, identity: &str, point: &Point, before: usize) -> String {
    let c = fleet.harness.cluster(&point.cluster);
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.held() == 0 {
        assert!(
            Instant::now() < deadline,
            "write {} to {} never came:\n{}",
            point.nth,
            point.cluster,
            fleet.log(identity)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    fleet.stop(identity);
    c.clear_faults();
    let probe = rule(&point.cluster);
    let write = c
        .writes()
        .into_iter()
        .filter(|w| w.target().contains(&probe.path_contains))
        .nth(before + point.nth - 1)
        .unwrap();
    format!(
        "killed after write {} to {} ({} {})",
        point.nth, point.cluster, write.method, write.path
    )
}

fn points(counts: &[(String, usize)]) -> Vec<Point> {
    counts
        .iter()
        .flat_map(|(c, n)| {
            (1..=*n).map(|nth| Point {
                cluster: c.clone(),
                nth,
            })
        })
        .collect()
}

#[test]
fn a_controller_killed_after_any_write_of_a_first_issuance_leaves_valid_members_and_the_next_converges()
 {
    let mut clean = Fleet::new();
    clean.start("clean");
    clean.wait_for("every cluster Ready", all_ready);
    let counts = writes_since(&clean, &no_writes());
    drop(clean);
    let points = points(&counts);
    assert!(points.len() >= 7, "a first issuance writes: {counts:?}");

    let mut covered = Vec::new();
    for point in &points {
        let mut fleet = Fleet::new();
        let before = arm(&fleet, point);
        fleet.start("a");
        let after = kill_at(&mut fleet, "a", point, before);
        assert_safe(&fleet, &after);
        let roots = root_versions(&fleet, "mesh-root");

        fleet.start("b");
        fleet.wait_for(&format!("every cluster Ready, {after}"), all_ready);
        assert_safe(&fleet, &after);
        let now = root_versions(&fleet, "mesh-root");
        assert_eq!(
            now.len(),
            1,
            "{after}: the root Secret was written {} times",
            now.len()
        );
        if let Some(first) = roots.first() {
            assert!(*first == now[0], "{after}: the root was replaced");
        }
        let anchor = ders(&unb64(&now[0]["root-cert.pem"]));
        for c in MEMBERS {
            let trust = ders(&unb64(&fleet.cacerts(c).unwrap()["data"]["root-cert.pem"]));
            assert!(trust == anchor, "{after}: {c} trusts another root");
        }
        covered.push(after);
    }
    eprintln!(
        "controller, first issuance: {} kill points: {covered:#?}",
        covered.len()
    );
}

/// A fleet at rest (every member Ready), with a second root's Secret `mesh-root-2`; the
/// rotation it is given holds the old root 1 s, so that it runs through without a clock move.
fn fleet_before_rotation() -> Fleet {
    let mut fleet = Fleet::new();
    fleet.start("a");
    fleet.wait_for("every cluster Ready", all_ready);
    fleet.stop("a");
    let dir = fleet.work.path().join("new-root");
    let out = Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args(["root", "create", "--out", &dir.display().to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    fleet.mgmt().seed(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "mesh-root-2", "namespace": NS},
        "data": {"root-cert.pem": b64(&read("root-cert.pem")), "root-key.pem": b64(&read("root-key.pem"))}
    }));
    fleet
}

fn start_rotation(fleet: &Fleet) {
    let mut mt = fleet.meshtrust();
    mt["spec"]["rootRotation"] = json!({
        "newRootSecretRef": {"name": "mesh-root-2", "namespace": NS},
        "holdBeforeRemovingOldRoot": "1s",
    });
    mt["metadata"]["generation"] = json!(mt["metadata"]["generation"].as_i64().unwrap() + 1);
    fleet.mgmt().seed(mt);
}

fn rotated(mt: &Value) -> bool {
    mt["status"]["rotation"]["phase"] == "Complete" && all_ready(mt)
}

#[test]
fn a_controller_killed_after_any_write_of_a_root_rotation_leaves_every_pair_trusting_and_the_next_completes_it()
 {
    let mut clean = fleet_before_rotation();
    let before: Vec<(String, usize)> = writes_since(&clean, &no_writes());
    start_rotation(&clean);
    clean.start("clean");
    clean.wait_for("the rotation complete", rotated);
    let counts = writes_since(&clean, &before);
    drop(clean);
    let points = points(&counts);
    assert!(points.len() >= 9, "a rotation writes: {counts:?}");

    let mut covered = Vec::new();
    for point in &points {
        let mut fleet = fleet_before_rotation();
        let roots = (
            root_versions(&fleet, "mesh-root"),
            root_versions(&fleet, "mesh-root-2"),
        );
        let before = arm(&fleet, point);
        start_rotation(&fleet);
        fleet.start("a");
        let after = kill_at(&mut fleet, "a", point, before);
        assert_safe(&fleet, &after);

        fleet.start("b");
        fleet.wait_for(&format!("the rotation complete, {after}"), rotated);
        assert_safe(&fleet, &after);
        let now = (
            root_versions(&fleet, "mesh-root"),
            root_versions(&fleet, "mesh-root-2"),
        );
        assert!(now == roots, "{after}: a root Secret was rewritten");
        let anchor = ders(&unb64(&roots.1[0]["root-cert.pem"]));
        for c in MEMBERS {
            let trust = ders(&unb64(&fleet.cacerts(c).unwrap()["data"]["root-cert.pem"]));
            assert!(
                trust == anchor,
                "{after}: {c} does not trust only the new root"
            );
            assert_bundle_valid(&fleet, c);
        }
        covered.push(after);
    }
    eprintln!(
        "controller, root rotation: {} kill points: {covered:#?}",
        covered.len()
    );
}

fn assert_bundle_valid(fleet: &Fleet, cluster: &str) {
    meshtrust_testkit::assert_bundle_independently_valid(&fleet.bundle_dir(cluster));
}
