//! Reading what the cluster holds: `cacerts`, the pending key, the roots istiod publishes
//! and istiod's settings. Only `get`s of named objects in one namespace: what the agent's
//! Role allows.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use meshtrust_kube::{CACERTS, Istiod, ObservedSecret, read_istiod};

use crate::config::{AgentConfig, PENDING};
use crate::error::Result;

/// What one read of the cluster found. (`Debug` shows no Secret data.)
#[derive(Debug, Default)]
pub struct ClusterView {
    /// `cacerts`, if present.
    pub cacerts: Option<ObservedSecret>,
    /// The pending key, if a previous round stopped between signing and writing.
    pub pending: Option<ObservedSecret>,
    /// What istiod publishes and runs with.
    pub istiod: Istiod,
}

/// Reads the cluster. Writes nothing.
pub async fn observe(client: &Client, config: &AgentConfig) -> Result<ClusterView> {
    let ns = config.namespace.as_str();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let cacerts = read(&secrets, ns, CACERTS).await?;
    let pending = read(&secrets, ns, PENDING).await?;
    let istiod = read_istiod(client, ns, &config.istiod).await?;
    Ok(ClusterView {
        cacerts,
        pending,
        istiod,
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
