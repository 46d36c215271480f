//! The rules of a root rotation, checked on the stored history of every member's `cacerts`
//! and `istio-ca-root-cert` (the test playing istiod): after every write every pair of
//! clusters trusts the root of the other's intermediate; each trust file byte-contains its
//! predecessor or is contained in it; no intermediate comes from the new root while some
//! istiod lacks either root; the old root leaves no trust file while some istiod lacks both.
//! Shared by the agent's and the controller's rotation suites.

use std::collections::BTreeMap;
use std::time::Instant;

use meshtrust_ca::{Certificate, TrustBundle};
use meshtrust_testkit::apiserver::Cluster;
use meshtrust_testkit::crash::unb64;
use meshtrust_testkit::istiod::{ISTIO_NS as NS, cacerts, decoded};
use serde_json::Value;

/// One stored version of an object: when, which cluster, what.
struct Version {
    at: Instant,
    cluster: String,
    kind: &'static str,
    object: Value,
}

/// Every version of every cluster's cacerts and istio-ca-root-cert, in write order.
fn history(clusters: &[(&str, Cluster)]) -> Vec<Version> {
    let mut all = Vec::new();
    for (c, cluster) in clusters {
        for (kind, api, name) in [
            ("Secret", "v1", "cacerts"),
            ("ConfigMap", "v1", "istio-ca-root-cert"),
        ] {
            for (at, object) in cluster.history(api, kind, Some(NS), name) {
                all.push(Version {
                    at,
                    cluster: c.to_string(),
                    kind,
                    object,
                });
            }
        }
    }
    all.sort_by_key(|v| v.at);
    all
}

pub fn roots_of(pem: &[u8]) -> Vec<Certificate> {
    TrustBundle::from_pem("trust", pem)
        .map(|t| t.roots().to_vec())
        .unwrap_or_default()
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Replays the history and checks every rule of the rotation after every write.
pub fn check_history(clusters: &[(&str, Cluster)], old: &Certificate, new: &Certificate) -> usize {
    // Per cluster: (trust file, intermediate) held, and the roots istiod publishes.
    let mut held: BTreeMap<String, (Vec<u8>, Certificate)> = BTreeMap::new();
    let mut loaded: BTreeMap<String, Vec<Certificate>> = BTreeMap::new();
    let mut writes = 0;
    let mut dropped = false;
    for (i, v) in history(clusters).iter().enumerate() {
        let Some(data) = v.object["data"].as_object() else {
            continue;
        };
        if v.kind == "ConfigMap" {
            let pem = data["root-cert.pem"].as_str().unwrap_or_default();
            loaded.insert(v.cluster.clone(), roots_of(pem.as_bytes()));
            continue;
        }
        let trust = unb64(&data["root-cert.pem"]);
        let ca = Certificate::all_from_pem("ca", &unb64(&data["ca-cert.pem"])).unwrap()[0].clone();
        let every_istiod_has_both = || {
            clusters.iter().all(|(c, _)| {
                loaded
                    .get(*c)
                    .is_some_and(|r| r.contains(old) && r.contains(new))
            })
        };
        if let Some((before, before_ca)) = held.get(&v.cluster) {
            writes += 1;
            assert!(
                contains(&trust, before) || contains(before, &trust),
                "write {i} to {}: the new root-cert.pem neither contains nor is contained in the old one",
                v.cluster
            );
            if ca.is_issued_by(new) && !before_ca.is_issued_by(new) {
                assert!(
                    every_istiod_has_both(),
                    "write {i} to {}: an intermediate from the new root while some istiod had not loaded both roots: {loaded:?}",
                    v.cluster
                );
            }
            if !roots_of(&trust).contains(old) && roots_of(before).contains(old) {
                // Phase 3 begins only once every istiod has both roots; within it, every
                // istiod still has the new one.
                assert!(
                    dropped || every_istiod_has_both(),
                    "write {i} to {}: phase 3 began while some istiod had not loaded both roots: {loaded:?}",
                    v.cluster
                );
                assert!(
                    clusters
                        .iter()
                        .all(|(c, _)| loaded.get(*c).is_some_and(|r| r.contains(new))),
                    "write {i} to {}: the old root dropped while some istiod lacked the new one",
                    v.cluster
                );
                dropped = true;
            }
        }
        held.insert(v.cluster.clone(), (trust, ca));
        // Every pair trusts the root the other's intermediate chains to.
        for (a, (trust_a, _)) in &held {
            for (b, (_, ca_b)) in &held {
                assert!(
                    roots_of(trust_a).iter().any(|r| ca_b.is_issued_by(r)),
                    "after write {i} (to {}): {a} does not trust the root of {b}'s intermediate",
                    v.cluster
                );
            }
        }
    }
    writes
}

/// The first root `cluster`'s `cacerts` trusts (its only one outside a rotation).
pub fn held_root(cluster: &Cluster) -> Certificate {
    let pem = decoded(&cacerts(cluster).expect("cacerts"), "root-cert.pem");
    roots_of(pem.as_bytes())
        .into_iter()
        .next()
        .expect("a root in root-cert.pem")
}
