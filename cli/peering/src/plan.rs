//! Deciding the peering objects from what was read — pure: the east-west gateway of a
//! cluster, and the peer gateway a source cluster needs for a destination, with a clear
//! refusal when a fact is missing.

use crate::error::{Error, Result};
use crate::gateway::{
    Address, CLUSTER_LABEL, EASTWEST, EastWest, Locality, NETWORK_LABEL, Peer, REGION_LABEL,
    ZONE_LABEL,
};
use crate::observe::{ClusterFacts, service_addresses};
use crate::values::DEFAULT_TRUST_DOMAIN;

/// istiod's `CLUSTER_ID` when nothing sets it; never a usable peering identity.
pub const DEFAULT_CLUSTER_ID: &str = "Kubernetes";

/// The cluster ID peering must use: istiod's `CLUSTER_ID`, refusing the default.
pub fn cluster_id(context: &str, facts: &ClusterFacts) -> Result<String> {
    let context = context.to_string();
    match facts.istiod_cluster_id() {
        Some(DEFAULT_CLUSTER_ID) => Err(Error::DefaultClusterId { context }),
        Some(id) => Ok(id.to_string()),
        None if facts.istiod_env.is_some() => Err(Error::NoClusterId { context }),
        None => Err(Error::NoIstiod { context }),
    }
}

/// The east-west gateway for a cluster. `network` is the one asked for, else the cluster's
/// `topology.istio.io/network` label.
pub fn eastwest(
    context: &str,
    facts: &ClusterFacts,
    namespace: &str,
    network: Option<&str>,
    locality: Locality,
    nodeport: bool,
) -> Result<EastWest> {
    let network = network
        .map(str::to_string)
        .or_else(|| facts.network_label.clone())
        .ok_or_else(|| Error::NoNetwork {
            context: context.to_string(),
        })?;
    Ok(EastWest {
        namespace: namespace.to_string(),
        network,
        cluster_id: cluster_id(context, facts)?,
        locality,
        nodeport,
    })
}

/// The gateway that, in a source cluster, stands for the destination `context` described by
/// `facts`. Identity and locality are copied from the destination's east-west gateway.
pub fn peer(context: &str, facts: &ClusterFacts, namespace: &str, nodeport: bool) -> Result<Peer> {
    let gateway = facts
        .eastwest
        .as_ref()
        .ok_or_else(|| Error::NoEastWestGateway {
            context: context.to_string(),
            namespace: namespace.to_string(),
        })?;
    let labels = gateway.metadata.labels.clone().unwrap_or_default();
    let cluster_id = match labels.get(CLUSTER_LABEL) {
        Some(id) => id.clone(),
        None => cluster_id(context, facts)?,
    };
    let network = labels
        .get(NETWORK_LABEL)
        .cloned()
        .or_else(|| facts.network_label.clone())
        .ok_or_else(|| Error::NoGatewayNetwork {
            context: context.to_string(),
        })?;
    let service = facts
        .eastwest_service
        .as_ref()
        .ok_or_else(|| Error::NoEastWestService {
            context: context.to_string(),
            namespace: namespace.to_string(),
        })?;
    let addresses: Vec<Address> = service_addresses(service);
    if addresses.is_empty() {
        return Err(Error::NoAddress {
            context: context.to_string(),
        });
    }
    Ok(Peer {
        namespace: namespace.to_string(),
        cluster_id,
        network,
        locality: Locality {
            region: labels.get(REGION_LABEL).cloned(),
            zone: labels.get(ZONE_LABEL).cloned(),
        },
        trust_domain: facts
            .trust_domain
            .clone()
            .unwrap_or_else(|| DEFAULT_TRUST_DOMAIN.to_string()),
        service_account: facts
            .eastwest_service_account
            .clone()
            .unwrap_or_else(|| EASTWEST.to_string()),
        addresses,
        nodeport,
    })
}

/// Which (source, destination) pairs to link: every ordered pair of `contexts`, or the one
/// asymmetric pair.
pub fn pairs(contexts: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for a in contexts {
        for b in contexts {
            if a != b {
                out.push((a.clone(), b.clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::DynamicObject;
    use serde_json::json;

    fn facts() -> ClusterFacts {
        let gateway: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "istio-eastwest", "labels": {
                "topology.istio.io/network": "net2",
                "topology.istio.io/cluster": "cluster2",
                "topology.kubernetes.io/zone": "z1"
            }},
            "spec": {}
        }))
        .unwrap();
        ClusterFacts {
            istiod_env: Some([("CLUSTER_ID".to_string(), "cluster2".to_string())].into()),
            eastwest: Some(gateway),
            eastwest_service: Some(
                serde_json::from_value(json!({
                    "metadata": {"name": "istio-eastwest"},
                    "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}}
                }))
                .unwrap(),
            ),
            trust_domain: Some("cluster2.local".into()),
            eastwest_service_account: Some("istio-eastwest-sa".into()),
            ..ClusterFacts::default()
        }
    }

    #[test]
    fn a_peer_copies_the_destinations_identity() {
        let p = peer("ctx2", &facts(), "istio-eastwest", false).unwrap();
        assert_eq!(p.cluster_id, "cluster2");
        assert_eq!(p.network, "net2");
        assert_eq!(p.locality.zone.as_deref(), Some("z1"));
        assert_eq!(p.locality.region, None);
        assert_eq!(p.trust_domain, "cluster2.local");
        assert_eq!(p.service_account, "istio-eastwest-sa");
        assert_eq!(
            p.addresses,
            vec![Address::Hostname("lb.example.com".into())]
        );
    }

    #[test]
    fn a_destination_without_an_address_is_refused_clearly() {
        let mut f = facts();
        f.eastwest_service.as_mut().unwrap().status = None;
        let e = peer("ctx2", &f, "istio-eastwest", false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ctx2's east-west gateway has no address yet"),
            "{e}"
        );
    }

    #[test]
    // The fix (`meshtrust expose --context ctx2`) is the binary's advice: asserted in
    // cli/src/cmd/report.rs, where the error is rendered with it.
    fn a_destination_without_an_eastwest_gateway_is_refused_naming_it() {
        let mut f = facts();
        f.eastwest = None;
        let e = peer("ctx2", &f, "istio-eastwest", false).unwrap_err();
        assert!(
            matches!(&e, Error::NoEastWestGateway { context, namespace }
                if context == "ctx2" && namespace == "istio-eastwest"),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "ctx2 has no east-west gateway istio-eastwest/istio-eastwest"
        );
    }

    #[test]
    fn the_default_cluster_id_is_refused() {
        let mut f = facts();
        f.istiod_env = Some([("CLUSTER_ID".to_string(), "Kubernetes".to_string())].into());
        let e = eastwest(
            "ctx",
            &f,
            "istio-eastwest",
            Some("n"),
            Locality::default(),
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("default CLUSTER_ID"), "{e}");
        f.istiod_env = None;
        let e = eastwest(
            "ctx",
            &f,
            "istio-eastwest",
            Some("n"),
            Locality::default(),
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no istiod Deployment"), "{e}");
    }

    #[test]
    fn expose_needs_a_network_from_somewhere() {
        let f = facts();
        let e = eastwest(
            "ctx",
            &f,
            "istio-eastwest",
            None,
            Locality::default(),
            false,
        )
        .unwrap_err();
        // "pass --network" is the binary's advice: asserted in cli/src/cmd/report.rs.
        assert!(
            matches!(&e, Error::NoNetwork { context } if context == "ctx"),
            "{e:?}"
        );
        let mut f = facts();
        f.network_label = Some("net9".into());
        let g = eastwest("ctx", &f, "istio-eastwest", None, Locality::default(), true).unwrap();
        assert_eq!(g.network, "net9");
    }

    #[test]
    fn refusals_state_facts_and_never_advise_a_command_line() {
        let mut errors = Vec::new();
        let mut f = facts();
        f.eastwest = None;
        errors.push(peer("ctx2", &f, "istio-eastwest", false).unwrap_err());
        let mut f = facts();
        f.eastwest_service = None;
        errors.push(peer("ctx2", &f, "istio-eastwest", false).unwrap_err());
        let mut f = facts();
        f.eastwest_service.as_mut().unwrap().status = None;
        errors.push(peer("ctx2", &f, "istio-eastwest", false).unwrap_err());
        let mut f = facts();
        f.eastwest.as_mut().unwrap().metadata.labels = None;
        f.istiod_env = None;
        errors.push(peer("ctx2", &f, "istio-eastwest", false).unwrap_err());
        f.istiod_env = Some([("CLUSTER_ID".to_string(), "cluster2".to_string())].into());
        errors.push(peer("ctx2", &f, "istio-eastwest", false).unwrap_err());
        for env in [
            None,
            Some(Default::default()),
            Some([("CLUSTER_ID".to_string(), "Kubernetes".to_string())].into()),
        ] {
            f.istiod_env = env;
            let ew = eastwest("ctx", &f, "ns", Some("n"), Locality::default(), false);
            errors.push(ew.unwrap_err());
        }
        errors.push(eastwest("ctx", &facts(), "ns", None, Locality::default(), false).unwrap_err());
        assert_eq!(errors.len(), 9);
        for e in errors {
            let m = e.to_string();
            assert!(
                !m.contains("meshtrust ") && !m.contains("pass --") && !m.contains("--network"),
                "{m}"
            );
        }
    }

    #[test]
    fn all_ordered_pairs_are_linked() {
        let p = pairs(&["a".into(), "b".into(), "c".into()]);
        assert_eq!(p.len(), 6);
        assert!(p.contains(&("c".into(), "a".into())));
    }
}
