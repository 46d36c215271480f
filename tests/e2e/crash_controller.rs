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
use std::time::{Duration, Instant};

use meshtrust_testkit::apiserver::{Cluster, Fault, FaultRule, RequestRecord};
use meshtrust_testkit::crash::{
    assert_clusters_trust_each_other, assert_every_cacerts_version_valid, ders, unb64,
};
use serde_json::Value;

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

/// The clusters the kill points are in: the management cluster and the members.
const CLUSTERS: [&str; 4] = ["mgmt", "c1", "c2", "c3"];

/// The writes of the kind [`rule`] picks that `cluster` received so far, oldest first.
fn picked(fleet: &Fleet, cluster: &str) -> Vec<RequestRecord> {
    let probe = rule(cluster);
    fleet
        .harness
        .cluster(cluster)
        .writes()
        .into_iter()
        .filter(|w| w.target().contains(&probe.path_contains))
        .collect()
}

/// How many picked writes each cluster received so far.
fn picked_counts(fleet: &Fleet) -> Vec<usize> {
    CLUSTERS.iter().map(|c| picked(fleet, c).len()).collect()
}

/// A kill point for each picked write after `before` (from [`picked_counts`]).
fn points_since(fleet: &Fleet, before: &[usize]) -> Vec<Point> {
    CLUSTERS
        .iter()
        .zip(picked_counts(fleet).iter().zip(before))
        .flat_map(|(c, (now, before))| {
            (1..=now - before).map(|nth| Point {
                cluster: c.to_string(),
                nth,
            })
        })
        .collect()
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

/// Arms `point`: its write will be carried out and held. Returns the writes before it.
fn arm(fleet: &Fleet, point: &Point) -> usize {
    let before = picked(fleet, &point.cluster).len();
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
    let write = &picked(fleet, &point.cluster)[before + point.nth - 1];
    format!(
        "killed after write {} to {} ({} {})",
        point.nth, point.cluster, write.method, write.path
    )
}

#[test]
fn a_controller_killed_after_any_write_of_a_first_issuance_leaves_valid_members_and_the_next_converges()
 {
    let mut clean = Fleet::new();
    clean.start("clean");
    clean.wait_for("every cluster Ready", all_ready);
    let points = points_since(&clean, &[0; CLUSTERS.len()]);
    drop(clean);
    assert!(points.len() >= 7, "a first issuance writes: {points:?}");

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

/// A fleet at rest (every member Ready), with a second root's Secret `mesh-root-2`.
fn fleet_before_rotation() -> Fleet {
    let mut fleet = Fleet::new();
    fleet.start("a");
    fleet.wait_for("every cluster Ready", all_ready);
    fleet.stop("a");
    fleet.seed_root_secret("mesh-root-2");
    fleet
}

/// The rotation to `mesh-root-2`, holding the old root 1 s so that it runs through without
/// a clock move.
fn start_rotation(fleet: &Fleet) {
    fleet.start_rotation("mesh-root-2", Some("1s"));
}

#[test]
fn a_controller_killed_after_any_write_of_a_root_rotation_leaves_every_pair_trusting_and_the_next_completes_it()
 {
    let mut clean = fleet_before_rotation();
    let before = picked_counts(&clean);
    start_rotation(&clean);
    clean.start("clean");
    clean.wait_for("the rotation complete", rotation_complete);
    let points = points_since(&clean, &before);
    drop(clean);
    assert!(points.len() >= 9, "a rotation writes: {points:?}");

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
        fleet.wait_for(
            &format!("the rotation complete, {after}"),
            rotation_complete,
        );
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
