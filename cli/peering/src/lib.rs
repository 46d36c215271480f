//! # meshtrust-peering
//!
//! Ambient multicluster peering once the clusters share a root of trust: the per-cluster
//! Helm values ([`values`]), the east-west gateway every cluster exposes ([`expose`]), the
//! `istio-remote` peer gateways that link clusters ([`link`]) — refused unless both clusters
//! trust a common root — and the mesh-wide check ([`check`]).
//!
//! Each step reads the clusters ([`observe`] → [`ClusterFacts`]), decides with pure
//! functions ([`eastwest`], [`peer`], [`link_refusal`], [`cluster_checks`],
//! [`mesh_checks`]), and only then writes (server-side apply, field manager
//! [`meshtrust_kube::FIELD_MANAGER`]). The Gateway objects are built by
//! [`eastwest_gateway`] and [`peer_gateway`], so what is applied and what is printed for
//! GitOps ([`to_yaml`]) are the same objects.
//!
//! Nothing here parses arguments, prints or reads the clock: time comes in as `now`, results
//! are values, and errors are [`Error`]s that say what is wrong; a caller with a command line
//! adds what to type about it.
//!
//! ```
//! use meshtrust_peering::{Address, EASTWEST_NAMESPACE, Locality, Peer, pairs, peer_gateway};
//!
//! // Every ordered pair of clusters is linked: each gets a gateway standing for the other.
//! let contexts = ["east".to_string(), "west".to_string()];
//! assert_eq!(
//!     pairs(&contexts),
//!     [("east".into(), "west".into()), ("west".into(), "east".into())]
//! );
//!
//! // In `east`, the gateway standing for `west`'s east-west gateway.
//! let west = Peer {
//!     namespace: EASTWEST_NAMESPACE.into(),
//!     cluster_id: "west".into(),
//!     network: "net-west".into(),
//!     locality: Locality::default(),
//!     trust_domain: "west.local".into(),
//!     service_account: "istio-eastwest".into(),
//!     addresses: vec![Address::parse("203.0.113.7")],
//!     nodeport: false,
//! };
//! let gateway = peer_gateway(&west);
//! assert_eq!(gateway["metadata"]["name"], "istio-remote-peer-west");
//! assert_eq!(gateway["spec"]["gatewayClassName"], "istio-remote");
//! assert_eq!(gateway["spec"]["addresses"][0]["value"], "203.0.113.7");
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod apply;
mod check;
mod error;
mod flow;
mod gateway;
mod names;
mod observe;
mod plan;
mod trust;
pub mod values;

pub use apply::{apply_gateway, ensure_namespace, label_network, wait_programmed};
pub use check::{
    CheckOptions, ClusterView, EXPIRY_WARNING, Fix, Line, Status, cluster_checks, mesh_checks,
};
pub use error::{Error, Result};
pub use flow::{
    CheckReport, ClusterReport, ExposeOptions, Exposed, Link, LinkOptions, check, expose, link,
};
pub use gateway::{
    Address, CLUSTER_LABEL, DATA_PLANE_SERVICE_TYPE, EASTWEST, EASTWEST_NAMESPACE,
    EXPOSE_ISTIOD_ADDRESS, EXPOSE_ISTIOD_LABEL, EastWest, GATEWAY_API_VERSION, GATEWAY_NAME_LABEL,
    Locality, NETWORK_LABEL, PEER_PREFIX, PREFERRED_DATA_PLANE_SERVICE_TYPE, Peer, REGION_LABEL,
    REMOTE_CLASS, SERVICE_ACCOUNT_ANNOTATION, TRUST_DOMAIN_ANNOTATION, ZONE_LABEL,
    eastwest_gateway, peer_gateway, to_yaml,
};
pub use observe::{
    ClusterFacts, Namespaces, PodHealth, ROOT_CONFIGMAP, gateway_resource, observe,
    service_addresses,
};
pub use plan::{DEFAULT_CLUSTER_ID, cluster_id, eastwest, pairs, peer};
pub use trust::{Agreement, TrustView, agreement, cacerts_report, link_refusal};
pub use values::{DEFAULT_TRUST_DOMAIN, Platform, ValuesInput};
