//! Reading what peering depends on from one cluster: istiod's identity and settings, the
//! network label, the trust domain, the east-west gateway and its Service, peer gateways, the
//! roots the cluster trusts, and the health of the pods. Reads only; decisions are elsewhere.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, Service};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Api, Client};
use meshtrust_ca::BundleFiles;
use meshtrust_kube::{CACERTS, bundle_files, is_not_found};

use crate::error::Result;
use crate::gateway::{
    Address, EASTWEST, EXPOSE_ISTIOD_ADDRESS, GATEWAY_NAME_LABEL, NETWORK_LABEL, REMOTE_CLASS,
};

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
        Err(e) => Err(meshtrust_kube::Error::api(format!("cannot read {what}"), e).into()),
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
        .map_err(|e| meshtrust_kube::Error::api(format!("cannot list pods ({selector})"), e))?
        .items)
}

/// Reads everything peering needs from one cluster. Missing objects are `None`/empty; only
/// API failures are errors.
pub async fn observe(client: &Client, ns: &Namespaces) -> Result<ClusterFacts> {
    let mut facts = ClusterFacts::default();
    let istio_ns = istio_namespace(client, &ns.istio).await?;
    facts.istio_namespace_exists = istio_ns.is_some();
    facts.network_label = istio_ns
        .as_ref()
        .and_then(|n| n.metadata.labels.as_ref())
        .and_then(|l| l.get(NETWORK_LABEL).cloned());

    if facts.istio_namespace_exists {
        facts.istiod_env = istiod_env(client, &ns.istio).await?;
        let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.istio);
        facts.trust_domain = trust_domain(&configmaps).await?;
        facts.published_roots = published_roots(&configmaps).await?;
        facts.cacerts = cacerts(client, &ns.istio).await?;
        facts.istiod_pods =
            pod_healths(Api::namespaced(client.clone(), &ns.istio), "app=istiod").await?;
    }
    facts.ztunnel_pods = pod_healths(Api::all(client.clone()), "app=ztunnel").await?;

    let gateways: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns.eastwest, &gateway_resource());
    facts.eastwest = eastwest(&gateways, &ns.eastwest).await?;
    facts.peers = peers(&gateways, &ns.eastwest).await?;

    facts.eastwest_service = eastwest_service(client, &ns.eastwest).await?;
    let eastwest_pods = pods(
        Api::namespaced(client.clone(), &ns.eastwest),
        &eastwest_selector(),
    )
    .await?;
    facts.eastwest_service_account = eastwest_pods
        .iter()
        .find_map(|p| p.spec.as_ref().and_then(|s| s.service_account_name.clone()));
    facts.eastwest_pods = eastwest_pods.iter().map(pod_health).collect();
    Ok(facts)
}

/// istiod's namespace, if it exists.
async fn istio_namespace(client: &Client, istio: &str) -> Result<Option<Namespace>> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    get_opt(&namespaces, istio, &format!("namespace {istio}")).await
}

/// The environment of the first istiod Deployment (label `app=istiod`), if there is one.
async fn istiod_env(client: &Client, istio: &str) -> Result<Option<BTreeMap<String, String>>> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), istio);
    let istiod = deployments
        .list(&ListParams::default().labels("app=istiod"))
        .await
        .map_err(|e| meshtrust_kube::Error::api(format!("cannot list deployments in {istio}"), e))?
        .items
        .into_iter()
        .next();
    Ok(istiod.map(|d| discovery_env(&d)))
}

/// `meshConfig.trustDomain` from the `istio` mesh ConfigMap.
async fn trust_domain(configmaps: &Api<ConfigMap>) -> Result<Option<String>> {
    let mesh = get_opt(configmaps, MESH_CONFIGMAP, "the istio mesh ConfigMap").await?;
    Ok(mesh
        .as_ref()
        .and_then(|cm| cm.data.as_ref())
        .and_then(|d| d.get("mesh"))
        .and_then(|m| trust_domain_of(m)))
}

/// `root-cert.pem` of the ConfigMap istiod publishes its roots in.
async fn published_roots(configmaps: &Api<ConfigMap>) -> Result<Option<Vec<u8>>> {
    let published = get_opt(configmaps, ROOT_CONFIGMAP, ROOT_CONFIGMAP).await?;
    Ok(published
        .and_then(|cm| cm.data)
        .and_then(|d| d.get("root-cert.pem").cloned())
        .map(String::into_bytes))
}

/// The files of the `cacerts` Secret in istiod's namespace.
async fn cacerts(client: &Client, istio: &str) -> Result<Option<BundleFiles>> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), istio);
    let cacerts = get_opt(&secrets, CACERTS, &format!("secret {istio}/{CACERTS}")).await?;
    Ok(cacerts.as_ref().map(bundle_files))
}

/// The health of the pods `selector` selects.
async fn pod_healths(api: Api<Pod>, selector: &str) -> Result<Vec<PodHealth>> {
    Ok(pods(api, selector).await?.iter().map(pod_health).collect())
}

/// The east-west Gateway.
async fn eastwest(gateways: &Api<DynamicObject>, eastwest: &str) -> Result<Option<DynamicObject>> {
    get_opt(
        gateways,
        EASTWEST,
        &format!("gateway {eastwest}/{EASTWEST}"),
    )
    .await
}

/// The peer (`istio-remote`) Gateways.
async fn peers(gateways: &Api<DynamicObject>, eastwest: &str) -> Result<Vec<DynamicObject>> {
    Ok(gateways
        .list(&ListParams::default())
        .await
        .map_err(|e| meshtrust_kube::Error::api(format!("cannot list gateways in {eastwest}"), e))?
        .items
        .into_iter()
        .filter(|g| g.data["spec"]["gatewayClassName"] == REMOTE_CLASS)
        .collect())
}

/// The east-west gateway's Service: the one labelled with the gateway's name, else the one
/// named after it.
async fn eastwest_service(client: &Client, eastwest: &str) -> Result<Option<Service>> {
    let services: Api<Service> = Api::namespaced(client.clone(), eastwest);
    let by_label = services
        .list(&ListParams::default().labels(&eastwest_selector()))
        .await
        .map_err(|e| meshtrust_kube::Error::api(format!("cannot list services in {eastwest}"), e))?
        .items
        .into_iter()
        .next();
    match by_label {
        Some(s) => Ok(Some(s)),
        None => {
            get_opt(
                &services,
                EASTWEST,
                &format!("service {eastwest}/{EASTWEST}"),
            )
            .await
        }
    }
}

/// The label selector of the east-west gateway's Service and pods.
fn eastwest_selector() -> String {
    format!("{GATEWAY_NAME_LABEL}={EASTWEST}")
}

/// The environment of istiod's `discovery` container (or its first container).
fn discovery_env(d: &Deployment) -> BTreeMap<String, String> {
    meshtrust_kube::discovery_container(d)
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
fn trust_domain_of(mesh: &str) -> Option<String> {
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
