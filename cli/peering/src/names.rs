//! The names ambient peering shares with Istio and the Gateway API: gateway names and
//! classes, labels and annotations. They sit below both the objects built from them
//! (`gateway.rs`) and the errors that name them (`error.rs`).

/// API version of the Kubernetes Gateway API objects.
pub const GATEWAY_API_VERSION: &str = "gateway.networking.k8s.io/v1";
/// Name and class of the east-west gateway.
pub const EASTWEST: &str = "istio-eastwest";
/// Default namespace of the east-west and peer gateways.
pub const EASTWEST_NAMESPACE: &str = "istio-eastwest";
/// Class of a gateway standing for another cluster's east-west gateway.
pub const REMOTE_CLASS: &str = "istio-remote";
/// Prefix of a peer gateway's name; the destination cluster's name follows.
pub const PEER_PREFIX: &str = "istio-remote-peer-";

/// Label: the network a gateway (or namespace) is on (the same label `meshtrust-kube`
/// puts on istiod's namespace).
pub const NETWORK_LABEL: &str = meshtrust_kube::NETWORK_LABEL;
/// Label: the Istio cluster ID behind a gateway.
pub const CLUSTER_LABEL: &str = "topology.istio.io/cluster";
/// Label: region of the gateway's cluster.
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";
/// Label: zone of the gateway's cluster.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// Label asking the east-west gateway to expose istiod's xDS port.
pub const EXPOSE_ISTIOD_LABEL: &str = "istio.io/expose-istiod";
/// Annotation on the east-west gateway: its data plane is reached through NodePorts.
pub const DATA_PLANE_SERVICE_TYPE: &str = "peering.solo.io/data-plane-service-type";
/// Annotation on a peer gateway: prefer the peer's NodePorts for data-plane traffic.
pub const PREFERRED_DATA_PLANE_SERVICE_TYPE: &str =
    "peering.solo.io/preferred-data-plane-service-type";
/// Annotation on a peer gateway: the service account of the peer's east-west gateway.
pub const SERVICE_ACCOUNT_ANNOTATION: &str = "gateway.istio.io/service-account";
/// Annotation on a peer gateway: the peer mesh's trust domain.
pub const TRUST_DOMAIN_ANNOTATION: &str = "gateway.istio.io/trust-domain";
/// Annotation on the east-west Service: the address peers should dial for istiod.
pub const EXPOSE_ISTIOD_ADDRESS: &str = "istio.io/expose-istiod-address";
/// Label Istio puts on the Service and pods it deploys for a Gateway.
pub const GATEWAY_NAME_LABEL: &str = "gateway.networking.k8s.io/gateway-name";
