//! The checks across clusters: shared roots, unique cluster IDs, and peer gateways that
//! still match their destinations.

use std::collections::BTreeMap;

use kube::api::DynamicObject;
use meshtrust_kube::CACERTS;

use super::{ClusterView, Fix, Line, Status, line};
use crate::gateway::{CLUSTER_LABEL, NETWORK_LABEL, PEER_PREFIX};
use crate::observe::{ROOT_CONFIGMAP, service_addresses};
use crate::trust::{Agreement, short_list};

/// Checks across clusters: shared roots, unique cluster IDs, and peer gateways that still
/// point at what their destination really is.
pub fn mesh_checks(clusters: &[ClusterView<'_>], agreement: &Agreement) -> Vec<Line> {
    vec![
        trust_line(agreement),
        cluster_id_uniqueness(clusters),
        peer_consistency(clusters),
    ]
}

/// Whether every pair of clusters shares a root.
fn trust_line(agreement: &Agreement) -> Line {
    const CHECK: &str = "Trust Check";
    match agreement {
        Agreement::Same { roots } => line(
            CHECK,
            Status::Pass,
            format!("every cluster trusts the same root ({})", short_list(roots)),
        ),
        Agreement::Rotating { common, phase } => line(
            CHECK,
            Status::Warn,
            format!(
                "root sets differ but every pair shares {}: {phase}",
                short_list(common)
            ),
        ),
        Agreement::Split { pair: (a, b) } => line(
            CHECK,
            Status::Fail,
            format!("{a} and {b} share no root CA: cross-cluster mTLS between them fails"),
        )
        .with_fix(Fix::DeliverOneRoot),
        Agreement::Unknown { clusters } => line(
            CHECK,
            Status::Fail,
            format!(
                "no roots found in {}: no {CACERTS} and no {ROOT_CONFIGMAP}",
                clusters.join(", ")
            ),
        ),
    }
}

/// Whether any `CLUSTER_ID` is used by more than one cluster.
fn cluster_id_uniqueness(clusters: &[ClusterView<'_>]) -> Line {
    const CHECK: &str = "Cluster ID Uniqueness Check";
    let mut ids: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for c in clusters {
        if let Some(id) = c.facts.istiod_cluster_id() {
            ids.entry(id).or_default().push(c.name);
        }
    }
    let dupes: Vec<String> = ids
        .iter()
        .filter(|(_, names)| names.len() > 1)
        .map(|(id, names)| format!("{id} ({})", names.join(", ")))
        .collect();
    if dupes.is_empty() {
        line(CHECK, Status::Pass, "every cluster has its own ID")
    } else {
        line(
            CHECK,
            Status::Fail,
            format!("several clusters share a CLUSTER_ID: {}", dupes.join("; ")),
        )
    }
}

/// Whether every peer gateway still matches its destination's network, ID and address.
fn peer_consistency(clusters: &[ClusterView<'_>]) -> Line {
    const CHECK: &str = "Peer Consistency Check";
    let stale: Vec<(String, Option<Fix>)> = clusters
        .iter()
        .flat_map(|c| c.facts.peers.iter().map(move |p| (c, p)))
        .flat_map(|(c, p)| stale_peer(c, p, clusters))
        .collect();
    if stale.is_empty() {
        return line(
            CHECK,
            Status::Pass,
            "peer gateways match their destinations' network, ID and address",
        );
    }
    let fix = stale.iter().find_map(|(_, fix)| fix.clone());
    let what: Vec<String> = stale.into_iter().map(|(what, _)| what).collect();
    Line {
        fix,
        ..line(CHECK, Status::Fail, what.join("; "))
    }
}

/// How peer gateway `p` in cluster `c` differs from its destination among `clusters`, each
/// with what must happen about it when the message alone does not say; empty when it does
/// not differ, or when its destination is not among them.
fn stale_peer(
    c: &ClusterView<'_>,
    p: &DynamicObject,
    clusters: &[ClusterView<'_>],
) -> Vec<(String, Option<Fix>)> {
    let mut stale = Vec::new();
    let Some(dst_id) = p
        .metadata
        .name
        .as_deref()
        .and_then(|n| n.strip_prefix(PEER_PREFIX))
    else {
        return stale;
    };
    let Some(dst) = clusters
        .iter()
        .find(|d| d.facts.istiod_cluster_id() == Some(dst_id))
    else {
        return stale;
    };
    let label = |k: &str| p.metadata.labels.as_ref().and_then(|l| l.get(k)).cloned();
    if let Some(net) = &dst.facts.network_label
        && label(NETWORK_LABEL).as_ref() != Some(net)
    {
        let what = format!(
            "{}: peer {dst_id} says network {}, {} is on {net}",
            c.name,
            label(NETWORK_LABEL).unwrap_or_else(|| "(none)".into()),
            dst.name
        );
        stale.push((what, None));
    }
    if label(CLUSTER_LABEL).as_deref() != Some(dst_id) {
        let what = format!(
            "{}: peer {dst_id} has a wrong {CLUSTER_LABEL} label",
            c.name
        );
        stale.push((what, None));
    }
    let have = peer_addresses(p);
    let want = eastwest_addresses(dst);
    if !want.is_empty() && have != want {
        let what = format!(
            "{}: peer {dst_id} points at {}, but {}'s east-west gateway is at {}",
            c.name,
            have.join(","),
            dst.name,
            want.join(",")
        );
        stale.push((what, Some(Fix::Relink)));
    }
    stale
}

/// The addresses a peer gateway points at.
fn peer_addresses(p: &DynamicObject) -> Vec<String> {
    p.data["spec"]["addresses"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["value"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Where a cluster's east-west gateway is reached; empty while it has no address.
fn eastwest_addresses(c: &ClusterView<'_>) -> Vec<String> {
    c.facts
        .eastwest_service
        .as_ref()
        .map(service_addresses)
        .unwrap_or_default()
        .iter()
        .map(|a| a.value().to_string())
        .collect()
}
