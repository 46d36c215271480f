//! What a cluster's istiod runs with and has loaded, read from its namespace: the
//! `istio-ca-root-cert` ConfigMap it publishes (the roots it has loaded) and the settings
//! of its Deployment. Two `get`s of named objects, shared by the agent (its own cluster)
//! and the controller (each member, during a root rotation).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container};
use kube::{Api, Client};
use meshtrust_ca::{IstiodState, TrustBundle};
use meshtrust_issuer::server::api::IstiodSettings;
use meshtrust_issuer::server::wire;

use crate::error::{Error, Result};

/// The ConfigMap istiod publishes its roots in, in every namespace (its own included).
pub const ISTIO_ROOT_CONFIGMAP: &str = "istio-ca-root-cert";

/// The name of istiod's Deployment in a default install.
pub const ISTIOD_DEPLOYMENT: &str = "istiod";

const XDS_AGENT: &str = "PROXY_CONFIG_XDS_AGENT";

/// What one read of istiod found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Istiod {
    /// `root-cert.pem` of the `istio-ca-root-cert` ConfigMap, if present.
    pub roots_pem: Option<String>,
    /// istiod's settings, if its Deployment was found.
    pub settings: Option<IstiodSettings>,
    /// Whether istiod has a ready replica.
    pub ready: bool,
}

impl Istiod {
    /// Fingerprints of the roots istiod publishes (`None`: no ConfigMap; empty: a
    /// ConfigMap holding no certificate).
    pub fn published_roots(&self) -> Option<Vec<String>> {
        self.roots_pem.as_ref().map(|pem| {
            TrustBundle::from_pem(ISTIO_ROOT_CONFIGMAP, pem.as_bytes())
                .map(|trust| wire::fingerprints(&trust))
                .unwrap_or_default()
        })
    }

    /// What the rotation's gate reads.
    pub fn state(&self) -> IstiodState {
        IstiodState {
            multiroot_mesh: self.settings.as_ref().map(|s| s.multiroot_mesh.clone()),
            published_roots: self.published_roots(),
        }
    }
}

/// Reads istiod in `namespace`, its Deployment being `deployment`. Writes nothing.
pub async fn read_istiod(client: &Client, namespace: &str, deployment: &str) -> Result<Istiod> {
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let roots = maps.get_opt(ISTIO_ROOT_CONFIGMAP).await.map_err(|e| {
        Error::api(
            format!("cannot read configmap {namespace}/{ISTIO_ROOT_CONFIGMAP}"),
            e,
        )
    })?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let found = deployments.get_opt(deployment).await.map_err(|e| {
        Error::api(
            format!("cannot read deployment {namespace}/{deployment}"),
            e,
        )
    })?;
    Ok(Istiod {
        roots_pem: roots
            .and_then(|m| m.data)
            .and_then(|mut d| d.remove("root-cert.pem")),
        ready: found
            .as_ref()
            .and_then(|d| d.status.as_ref())
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0)
            > 0,
        settings: found.as_ref().map(settings),
    })
}

/// istiod's container in its Deployment: `discovery`, or else the first one.
pub fn discovery_container(deployment: &Deployment) -> Option<&Container> {
    let containers = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| p.containers.as_slice())
        .unwrap_or_default();
    containers
        .iter()
        .find(|c| c.name == "discovery")
        .or(containers.first())
}

/// istiod's rotation settings, from the `discovery` container (or the only one).
pub fn settings(deployment: &Deployment) -> IstiodSettings {
    let discovery = discovery_container(deployment);
    let env = |name: &str| {
        discovery
            .and_then(|c| c.env.as_ref())
            .and_then(|env| env.iter().find(|e| e.name == name))
            .and_then(|e| e.value.clone())
    };
    IstiodSettings {
        multiroot_mesh: env(meshtrust_ca::MULTIROOT_MESH),
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

    #[test]
    fn the_gate_sees_a_missing_deployment_apart_from_an_unset_variable() {
        assert_eq!(Istiod::default().state(), IstiodState::default());
        let unset = Istiod {
            settings: Some(IstiodSettings::default()),
            roots_pem: Some("not a certificate".to_string()),
            ready: true,
        };
        assert_eq!(
            unset.state(),
            IstiodState {
                multiroot_mesh: Some(None),
                published_roots: Some(Vec::new()),
            }
        );
    }
}
