//! The Gateway objects of ambient peering, as Solo's `istioctl multicluster expose` and `link`
//! write them — pure: facts in, objects out. The same objects are applied, or printed by
//! `--generate`, so the two can never drift apart.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::error::{Error, Result};

// The names the objects are built from: defined in `names.rs`, below `error.rs` too, and
// re-exported here with the objects.
pub use crate::names::{
    CLUSTER_LABEL, DATA_PLANE_SERVICE_TYPE, EASTWEST, EASTWEST_NAMESPACE, EXPOSE_ISTIOD_ADDRESS,
    EXPOSE_ISTIOD_LABEL, GATEWAY_API_VERSION, GATEWAY_NAME_LABEL, NETWORK_LABEL, PEER_PREFIX,
    PREFERRED_DATA_PLANE_SERVICE_TYPE, REGION_LABEL, REMOTE_CLASS, SERVICE_ACCOUNT_ANNOTATION,
    TRUST_DOMAIN_ANNOTATION, ZONE_LABEL,
};

/// Where a cluster sits, for locality-aware routing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Locality {
    /// `topology.kubernetes.io/region`.
    pub region: Option<String>,
    /// `topology.kubernetes.io/zone`.
    pub zone: Option<String>,
}

/// What the east-west gateway of one cluster is made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EastWest {
    /// Namespace of the gateway.
    pub namespace: String,
    /// The cluster's network.
    pub network: String,
    /// istiod's cluster ID (`CLUSTER_ID`, set from `global.multiCluster.clusterName`).
    pub cluster_id: String,
    /// Optional region and zone labels.
    pub locality: Locality,
    /// Data-plane traffic through NodePorts instead of the load balancer.
    pub nodeport: bool,
}

/// One address of a peer's east-west gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// An IPv4 or IPv6 address.
    Ip(String),
    /// A DNS name (e.g. an AWS load balancer).
    Hostname(String),
}

impl Address {
    /// An address of the right type for `value`.
    pub fn parse(value: &str) -> Address {
        if value.parse::<std::net::IpAddr>().is_ok() {
            Address::Ip(value.to_string())
        } else {
            Address::Hostname(value.to_string())
        }
    }

    /// The address itself.
    pub fn value(&self) -> &str {
        match self {
            Address::Ip(v) | Address::Hostname(v) => v,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Address::Ip(v) => json!({ "type": "IPAddress", "value": v }),
            Address::Hostname(v) => json!({ "type": "Hostname", "value": v }),
        }
    }
}

/// What a peer gateway (in a source cluster, standing for a destination) is made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Namespace of the gateway in the source cluster.
    pub namespace: String,
    /// The destination's cluster ID; the gateway is named `istio-remote-peer-<cluster_id>`.
    pub cluster_id: String,
    /// The destination's network.
    pub network: String,
    /// The destination's region and zone.
    pub locality: Locality,
    /// The destination mesh's trust domain.
    pub trust_domain: String,
    /// The service account of the destination's east-west gateway.
    pub service_account: String,
    /// Addresses of the destination's east-west gateway; the first is used for xDS.
    pub addresses: Vec<Address>,
    /// Prefer the destination's NodePorts for data-plane traffic.
    pub nodeport: bool,
}

impl Peer {
    /// Name of the peer gateway.
    pub fn name(&self) -> String {
        format!("{PEER_PREFIX}{}", self.cluster_id)
    }
}

/// The two listeners every east-west and peer gateway has: HBONE for data, TLS for xDS.
fn listeners() -> Value {
    json!([
        {
            "name": "cross-network",
            "port": 15008,
            "protocol": "HBONE",
            "tls": { "mode": "Passthrough" }
        },
        {
            "name": "xds-tls",
            "port": 15012,
            "protocol": "TLS",
            "tls": { "mode": "Passthrough" }
        }
    ])
}

fn topology_labels(
    network: &str,
    cluster_id: &str,
    locality: &Locality,
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (NETWORK_LABEL.to_string(), network.to_string()),
        (CLUSTER_LABEL.to_string(), cluster_id.to_string()),
    ]);
    if let Some(r) = &locality.region {
        labels.insert(REGION_LABEL.to_string(), r.clone());
    }
    if let Some(z) = &locality.zone {
        labels.insert(ZONE_LABEL.to_string(), z.clone());
    }
    labels
}

/// The east-west Gateway of one cluster.
pub fn eastwest_gateway(e: &EastWest) -> Value {
    let mut labels = topology_labels(&e.network, &e.cluster_id, &e.locality);
    labels.insert(EXPOSE_ISTIOD_LABEL.to_string(), "15012".to_string());
    let mut metadata = json!({
        "name": EASTWEST,
        "namespace": e.namespace,
        "labels": labels,
    });
    if e.nodeport {
        metadata["annotations"] = json!({ DATA_PLANE_SERVICE_TYPE: "NodePort" });
    }
    json!({
        "apiVersion": GATEWAY_API_VERSION,
        "kind": "Gateway",
        "metadata": metadata,
        "spec": {
            "gatewayClassName": EASTWEST,
            "listeners": listeners(),
        }
    })
}

/// The `istio-remote` Gateway that, in a source cluster, stands for a destination cluster.
pub fn peer_gateway(p: &Peer) -> Value {
    let mut annotations = BTreeMap::from([
        (
            SERVICE_ACCOUNT_ANNOTATION.to_string(),
            p.service_account.clone(),
        ),
        (TRUST_DOMAIN_ANNOTATION.to_string(), p.trust_domain.clone()),
    ]);
    if p.nodeport {
        annotations.insert(
            PREFERRED_DATA_PLANE_SERVICE_TYPE.to_string(),
            "NodePort".to_string(),
        );
    }
    json!({
        "apiVersion": GATEWAY_API_VERSION,
        "kind": "Gateway",
        "metadata": {
            "name": p.name(),
            "namespace": p.namespace,
            "labels": topology_labels(&p.network, &p.cluster_id, &p.locality),
            "annotations": annotations,
        },
        "spec": {
            "gatewayClassName": REMOTE_CLASS,
            "addresses": p.addresses.iter().map(Address::to_json).collect::<Vec<_>>(),
            "listeners": listeners(),
        }
    })
}

/// Objects as one multi-document YAML stream, as `--generate` prints them.
pub fn to_yaml(objects: &[Value]) -> Result<String> {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        let yaml = serde_yaml_ng::to_string(o).map_err(|e| Error::Yaml {
            message: e.to_string(),
        })?;
        out.push_str(&yaml);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eastwest(nodeport: bool) -> EastWest {
        EastWest {
            namespace: EASTWEST_NAMESPACE.into(),
            network: "net1".into(),
            cluster_id: "cluster1".into(),
            locality: Locality {
                region: Some("us-east-1".into()),
                zone: None,
            },
            nodeport,
        }
    }

    #[test]
    fn the_eastwest_gateway_exposes_hbone_and_xds_by_passthrough() {
        let g = eastwest_gateway(&eastwest(false));
        assert_eq!(
            g,
            json!({
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "Gateway",
                "metadata": {
                    "name": "istio-eastwest",
                    "namespace": "istio-eastwest",
                    "labels": {
                        "istio.io/expose-istiod": "15012",
                        "topology.istio.io/cluster": "cluster1",
                        "topology.istio.io/network": "net1",
                        "topology.kubernetes.io/region": "us-east-1",
                    }
                },
                "spec": {
                    "gatewayClassName": "istio-eastwest",
                    "listeners": [
                        {"name": "cross-network", "port": 15008, "protocol": "HBONE", "tls": {"mode": "Passthrough"}},
                        {"name": "xds-tls", "port": 15012, "protocol": "TLS", "tls": {"mode": "Passthrough"}}
                    ]
                }
            })
        );
    }

    #[test]
    fn a_nodeport_eastwest_gateway_says_so_in_an_annotation() {
        let g = eastwest_gateway(&eastwest(true));
        assert_eq!(
            g["metadata"]["annotations"],
            json!({ "peering.solo.io/data-plane-service-type": "NodePort" })
        );
    }

    #[test]
    fn a_peer_gateway_carries_the_destinations_identity_and_addresses() {
        let p = Peer {
            namespace: EASTWEST_NAMESPACE.into(),
            cluster_id: "cluster2".into(),
            network: "net2".into(),
            locality: Locality {
                region: Some("eu-west-1".into()),
                zone: Some("eu-west-1a".into()),
            },
            trust_domain: "cluster2.local".into(),
            service_account: "istio-eastwest".into(),
            addresses: vec![
                Address::parse("203.0.113.7"),
                Address::parse("lb.example.com"),
            ],
            nodeport: true,
        };
        let g = peer_gateway(&p);
        assert_eq!(g["metadata"]["name"], "istio-remote-peer-cluster2");
        assert_eq!(g["spec"]["gatewayClassName"], "istio-remote");
        assert_eq!(
            g["spec"]["addresses"],
            json!([
                {"type": "IPAddress", "value": "203.0.113.7"},
                {"type": "Hostname", "value": "lb.example.com"}
            ])
        );
        assert_eq!(
            g["metadata"]["annotations"],
            json!({
                "gateway.istio.io/service-account": "istio-eastwest",
                "gateway.istio.io/trust-domain": "cluster2.local",
                "peering.solo.io/preferred-data-plane-service-type": "NodePort",
            })
        );
        assert_eq!(
            g["metadata"]["labels"]["topology.kubernetes.io/zone"],
            "eu-west-1a"
        );
        assert_eq!(g["spec"]["listeners"], listeners());
    }

    #[test]
    fn generated_yaml_parses_back_to_the_same_objects() {
        let objects = vec![
            eastwest_gateway(&eastwest(true)),
            eastwest_gateway(&eastwest(false)),
        ];
        let yaml = to_yaml(&objects).unwrap();
        let parsed: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&yaml)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        assert_eq!(parsed, objects);
    }
}
