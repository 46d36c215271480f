//! Reading what the cluster holds: `cacerts`, the pending key, the roots istiod publishes
//! and istiod's settings. Only `get`s of named objects in one namespace: what the agent's
//! Role allows.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};
use meshtrust_issuer::server::api::IstiodSettings;
use meshtrust_kube::{CACERTS, ObservedSecret};

use crate::config::{AgentConfig, ISTIO_ROOT_CONFIGMAP, PENDING};
use crate::error::Result;

/// The environment variables of istiod the service gates root rotation on.
const MULTIROOT: &str = "ISTIO_MULTIROOT_MESH";
const XDS_AGENT: &str = "PROXY_CONFIG_XDS_AGENT";

/// What one read of the cluster found. (`Debug` shows no Secret data.)
#[derive(Debug, Default)]
pub struct ClusterView {
    /// `cacerts`, if present.
    pub cacerts: Option<ObservedSecret>,
    /// The pending key, if a previous round stopped between signing and writing.
    pub pending: Option<ObservedSecret>,
    /// `root-cert.pem` of the `istio-ca-root-cert` ConfigMap, if present.
    pub istiod_roots_pem: Option<String>,
    /// istiod's settings, if its Deployment was found.
    pub istiod: Option<IstiodSettings>,
    /// Whether istiod has a ready replica.
    pub istiod_ready: bool,
}

/// Reads the cluster. Writes nothing.
pub async fn observe(client: &Client, config: &AgentConfig) -> Result<ClusterView> {
    let ns = config.namespace.as_str();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let cacerts = read(&secrets, ns, CACERTS).await?;
    let pending = read(&secrets, ns, PENDING).await?;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let roots = maps.get_opt(ISTIO_ROOT_CONFIGMAP).await.map_err(|e| {
        api(
            format!("cannot read configmap {ns}/{ISTIO_ROOT_CONFIGMAP}"),
            e,
        )
    })?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let istiod = deployments
        .get_opt(&config.istiod)
        .await
        .map_err(|e| api(format!("cannot read deployment {ns}/{}", config.istiod), e))?;
    Ok(ClusterView {
        cacerts,
        pending,
        istiod_roots_pem: roots
            .and_then(|m| m.data)
            .and_then(|mut d| d.remove("root-cert.pem")),
        istiod_ready: istiod
            .as_ref()
            .and_then(|d| d.status.as_ref())
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0)
            > 0,
        istiod: istiod.as_ref().map(settings),
    })
}

async fn read(secrets: &Api<Secret>, ns: &str, name: &str) -> Result<Option<ObservedSecret>> {
    let found = secrets
        .get_opt(name)
        .await
        .map_err(|e| api(format!("cannot read secret {ns}/{name}"), e))?;
    Ok(found.map(ObservedSecret::from_secret))
}

fn api(action: String, e: kube::Error) -> crate::Error {
    meshtrust_kube::Error::api(action, e).into()
}

/// istiod's rotation settings, from the `discovery` container (or the only one).
pub fn settings(deployment: &Deployment) -> IstiodSettings {
    let containers = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| p.containers.as_slice())
        .unwrap_or_default();
    let discovery = containers
        .iter()
        .find(|c| c.name == "discovery")
        .or(containers.first());
    let env = |name: &str| {
        discovery
            .and_then(|c| c.env.as_ref())
            .and_then(|env| env.iter().find(|e| e.name == name))
            .and_then(|e| e.value.clone())
    };
    IstiodSettings {
        multiroot_mesh: env(MULTIROOT),
        proxy_config_xds_agent: env(XDS_AGENT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(containers: serde_json::Value) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "istiod"},
            "spec": {"selector": {}, "template": {"spec": {"containers": containers}}}
        }))
        .unwrap()
    }

    #[test]
    fn istiods_settings_come_from_the_discovery_container_or_the_only_one() {
        let two = deployment(serde_json::json!([
            {"name": "sidecar", "env": [{"name": "ISTIO_MULTIROOT_MESH", "value": "false"}]},
            {"name": "discovery", "env": [{"name": "ISTIO_MULTIROOT_MESH", "value": "true"},
                                          {"name": "PROXY_CONFIG_XDS_AGENT", "value": "true"}]}
        ]));
        let found = settings(&two);
        assert_eq!(found.multiroot_mesh.as_deref(), Some("true"));
        assert_eq!(found.proxy_config_xds_agent.as_deref(), Some("true"));
        let one = deployment(serde_json::json!([
            {"name": "pilot", "env": [{"name": "ISTIO_MULTIROOT_MESH", "value": "true"}]}
        ]));
        assert_eq!(settings(&one).multiroot_mesh.as_deref(), Some("true"));
        let unset = deployment(serde_json::json!([{"name": "discovery"}]));
        assert_eq!(settings(&unset), IstiodSettings::default());
    }
}
