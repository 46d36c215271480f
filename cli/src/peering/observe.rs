//! Reading what peering depends on from one cluster: istiod's identity and settings, the
//! network label, the trust domain, the east-west gateway and its Service, peer gateways, the
//! roots the cluster trusts, and the health of the pods. Reads only; decisions are elsewhere.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, Service};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Api, Client};
use meshtrust_ca::BundleFiles;

use super::gateway::{
    Address, EASTWEST, EXPOSE_ISTIOD_ADDRESS, GATEWAY_NAME_LABEL, NETWORK_LABEL, REMOTE_CLASS,
};
use crate::cluster::is_not_found;
use crate::cluster::secret::{CACERTS, bundle_files};

/// The ConfigMap istiod publishes its root(s) in, in every namespace.
pub const ROOT_CONFIGMAP: &str = "istio-ca-root-cert";
/// istiod's mesh configuration.
const MESH_CONFIGMAP: &str = "istio";

/// The `Gateway` kind (no Rust type ships with k8s-openapi).
pub fn gateway_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "Gateway"),
        "gateways",
    )
}

/// Where things live in a cluster.
#[derive(Clone, Debug)]
pub struct Namespaces {
    /// istiod's namespace (`istio-system`).
    pub istio: String,
    /// The east-west and peer gateways' namespace (`istio-eastwest`).
    pub eastwest: String,
}

/// One pod's health, as the checks need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodHealth {
    /// `namespace/name`.
    pub name: String,
    /// `status.phase`.
    pub phase: String,
    /// The `Ready` condition is True.
    pub ready: bool,
}

/// Everything peering reads from one cluster.
#[derive(Debug, Default)]
pub struct ClusterFacts {
    /// Whether istiod's namespace exists.
    pub istio_namespace_exists: bool,
    /// `topology.istio.io/network` on istiod's namespace.
    pub network_label: Option<String>,
    /// Environment of istiod's `discovery` container, when an istiod Deployment exists.
    pub istiod_env: Option<BTreeMap<String, String>>,
    /// `meshConfig.trustDomain` from the `istio` ConfigMap (None: not set, Istio's default).
    pub trust_domain: Option<String>,
    /// The `cacerts` files, if the Secret exists (no key material leaves this struct's
    /// consumers: only roots and the certificate are read from it).
    pub cacerts: Option<BundleFiles>,
    /// `root-cert.pem` of the `istio-ca-root-cert` ConfigMap in istiod's namespace.
    pub published_roots: Option<Vec<u8>>,
    /// The east-west Gateway.
    pub eastwest: Option<DynamicObject>,
    /// The east-west gateway's Service.
    pub eastwest_service: Option<Service>,
    /// Peer (`istio-remote`) Gateways in the east-west namespace.
    pub peers: Vec<DynamicObject>,
    /// istiod pods.
    pub istiod_pods: Vec<PodHealth>,
    /// ztunnel pods (any namespace: istio-system, or kube-system on OpenShift).
    pub ztunnel_pods: Vec<PodHealth>,
    /// East-west gateway pods.
    pub eastwest_pods: Vec<PodHealth>,
    /// Service account of the east-west gateway's pods.
    pub eastwest_service_account: Option<String>,
}

impl ClusterFacts {
    /// istiod's `CLUSTER_ID`, if istiod is installed and sets it.
    pub fn istiod_cluster_id(&self) -> Option<&str> {
        self.istiod_env
            .as_ref()
            .and_then(|env| env.get("CLUSTER_ID"))
            .map(String::as_str)
    }
}

/// `get`, with 404 as `None`.
async fn get_opt<K>(api: &Api<K>, name: &str, what: &str) -> Result<Option<K>>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get(name).await {
        Ok(o) => Ok(Some(o)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {what}")),
    }
}

fn pod_health(p: &Pod) -> PodHealth {
    let status = p.status.as_ref();
    PodHealth {
        name: format!(
            "{}/{}",
            p.metadata.namespace.as_deref().unwrap_or_default(),
            p.metadata.name.as_deref().unwrap_or_default()
        ),
        phase: status
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Unknown".into()),
        ready: status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")),
    }
}

async fn pods(api: Api<Pod>, selector: &str) -> Result<Vec<Pod>> {
    Ok(api
        .list(&ListParams::default().labels(selector))
        .await
        .with_context(|| format!("cannot list pods ({selector})"))?
        .items)
}

/// Reads everything peering needs from one cluster. Missing objects are `None`/empty; only
/// API failures are errors.
pub async fn observe(client: &Client, ns: &Namespaces) -> Result<ClusterFacts> {
    let mut facts = ClusterFacts::default();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let istio_ns = get_opt(&namespaces, &ns.istio, &format!("namespace {}", ns.istio)).await?;
    facts.istio_namespace_exists = istio_ns.is_some();
    facts.network_label = istio_ns
        .as_ref()
        .and_then(|n| n.metadata.labels.as_ref())
        .and_then(|l| l.get(NETWORK_LABEL).cloned());

    if facts.istio_namespace_exists {
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.istio);
        let istiod = deployments
            .list(&ListParams::default().labels("app=istiod"))
            .await
            .with_context(|| format!("cannot list deployments in {}", ns.istio))?
            .items
            .into_iter()
            .next();
        facts.istiod_env = istiod.map(|d| discovery_env(&d));

        let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.istio);
        let mesh = get_opt(&configmaps, MESH_CONFIGMAP, "the istio mesh ConfigMap").await?;
        facts.trust_domain = mesh
            .as_ref()
            .and_then(|cm| cm.data.as_ref())
            .and_then(|d| d.get("mesh"))
            .and_then(|m| trust_domain_of(m));
        let published = get_opt(&configmaps, ROOT_CONFIGMAP, ROOT_CONFIGMAP).await?;
        facts.published_roots = published
            .and_then(|cm| cm.data)
            .and_then(|d| d.get("root-cert.pem").cloned())
            .map(String::into_bytes);

        let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.istio);
        let cacerts = get_opt(&secrets, CACERTS, &format!("secret {}/{CACERTS}", ns.istio)).await?;
        facts.cacerts = cacerts.as_ref().map(bundle_files);

        facts.istiod_pods = pods(Api::namespaced(client.clone(), &ns.istio), "app=istiod")
            .await?
            .iter()
            .map(pod_health)
            .collect();
    }
    facts.ztunnel_pods = pods(Api::all(client.clone()), "app=ztunnel")
        .await?
        .iter()
        .map(pod_health)
        .collect();

    let gateways: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns.eastwest, &gateway_resource());
    facts.eastwest = get_opt(
        &gateways,
        EASTWEST,
        &format!("gateway {}/{EASTWEST}", ns.eastwest),
    )
    .await?;
    facts.peers = gateways
        .list(&ListParams::default())
        .await
        .with_context(|| format!("cannot list gateways in {}", ns.eastwest))?
        .items
        .into_iter()
        .filter(|g| g.data["spec"]["gatewayClassName"] == REMOTE_CLASS)
        .collect();

    let services: Api<Service> = Api::namespaced(client.clone(), &ns.eastwest);
    let selector = format!("{GATEWAY_NAME_LABEL}={EASTWEST}");
    let by_label = services
        .list(&ListParams::default().labels(&selector))
        .await
        .with_context(|| format!("cannot list services in {}", ns.eastwest))?
        .items
        .into_iter()
        .next();
    facts.eastwest_service = match by_label {
        Some(s) => Some(s),
        None => {
            get_opt(
                &services,
                EASTWEST,
                &format!("service {}/{EASTWEST}", ns.eastwest),
            )
            .await?
        }
    };
    let eastwest_pods = pods(Api::namespaced(client.clone(), &ns.eastwest), &selector).await?;
    facts.eastwest_service_account = eastwest_pods
        .iter()
        .find_map(|p| p.spec.as_ref().and_then(|s| s.service_account_name.clone()));
    facts.eastwest_pods = eastwest_pods.iter().map(pod_health).collect();
    Ok(facts)
}

/// The environment of istiod's `discovery` container (or its first container).
fn discovery_env(d: &Deployment) -> BTreeMap<String, String> {
    let containers = d
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let container = containers
        .iter()
        .find(|c| c.name == "discovery")
        .or_else(|| containers.first());
    container
        .and_then(|c| c.env.as_ref())
        .map(|env| {
            env.iter()
                .filter_map(|e| e.value.clone().map(|v| (e.name.clone(), v)))
                .collect()
        })
        .unwrap_or_default()
}

/// Where peers reach a cluster's east-west gateway: the `istio.io/expose-istiod-address`
/// annotation of its Service, else the load balancer's IPs and hostnames. Empty while the load
/// balancer has no address yet.
pub fn service_addresses(service: &Service) -> Vec<Address> {
    if let Some(a) = service
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(EXPOSE_ISTIOD_ADDRESS))
        .filter(|a| !a.trim().is_empty())
    {
        return a.split(',').map(|v| Address::parse(v.trim())).collect();
    }
    service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|ingress| {
            ingress
                .iter()
                .filter_map(|i| {
                    i.ip.as_deref()
                        .map(|ip| Address::Ip(ip.to_string()))
                        .or_else(|| {
                            i.hostname
                                .as_deref()
                                .map(|h| Address::Hostname(h.to_string()))
                        })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `trustDomain` of a mesh config document (YAML).
pub fn trust_domain_of(mesh: &str) -> Option<String> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(mesh).ok()?;
    doc.get("trustDomain")
        .and_then(|t| t.as_str())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trust_domain_is_read_from_the_mesh_config() {
        assert_eq!(
            trust_domain_of("defaultConfig:\n  discoveryAddress: x\ntrustDomain: c1.local\n"),
            Some("c1.local".into())
        );
        assert_eq!(trust_domain_of("accessLogFile: /dev/stdout\n"), None);
        assert_eq!(trust_domain_of(": not yaml ["), None);
    }

    #[test]
    fn the_expose_annotation_wins_over_the_load_balancer() {
        let mut svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "istio-eastwest"},
            "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}, {"hostname": "lb.example.com"}]}}
        }))
        .unwrap();
        assert_eq!(
            service_addresses(&svc),
            vec![
                Address::Ip("10.0.0.1".into()),
                Address::Hostname("lb.example.com".into())
            ]
        );
        svc.metadata.annotations =
            Some([(EXPOSE_ISTIOD_ADDRESS.to_string(), "192.0.2.9".to_string())].into());
        assert_eq!(
            service_addresses(&svc),
            vec![Address::Ip("192.0.2.9".into())]
        );
        svc.metadata.annotations = None;
        svc.status = None;
        assert!(service_addresses(&svc).is_empty());
    }
}
