//! Reaching member clusters: the controller's own cluster (`local: true`), or a kubeconfig
//! kept in a Secret of the controller's namespace (`kubeconfigSecretRef`).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Secret;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use super::crd::{ClusterAccess, ClusterSpec};
use crate::cluster::is_not_found;

/// A client for one member cluster. `home` is the controller's own client; Secrets are read
/// from `namespace` unless the reference names another.
pub async fn member_client(
    home: &Client,
    namespace: &str,
    cluster: &ClusterSpec,
    timeout: Duration,
) -> Result<Client> {
    let access = cluster.access().map_err(|e| anyhow::anyhow!("{e}"))?;
    let r = match access {
        ClusterAccess::Local => return Ok(home.clone()),
        ClusterAccess::Kubeconfig(r) => r,
    };
    let ns = r.namespace_or(namespace);
    let secrets: Api<Secret> = Api::namespaced(home.clone(), ns);
    let secret = match secrets.get(&r.name).await {
        Ok(s) => s,
        Err(e) if is_not_found(&e) => bail!(
            "kubeconfig Secret {ns}/{} of cluster {} does not exist; create it with `kubectl -n {ns} create secret generic {} --from-file={}=PATH`",
            r.name,
            cluster.name,
            r.name,
            r.key
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot read Secret {ns}/{}", r.name)),
    };
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&r.key))
        .map(|b| b.0.clone())
        .with_context(|| {
            format!(
                "Secret {ns}/{} has no key `{}` (the kubeconfig of cluster {})",
                r.name, r.key, cluster.name
            )
        })?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("Secret {ns}/{} key `{}` is not UTF-8 text", r.name, r.key))?;
    let kubeconfig = Kubeconfig::from_yaml(&text)
        .with_context(|| format!("Secret {ns}/{} key `{}` is not a kubeconfig", r.name, r.key))?;
    let options = KubeConfigOptions {
        context: r.context.clone(),
        ..KubeConfigOptions::default()
    };
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .with_context(|| {
            format!(
                "the kubeconfig in Secret {ns}/{} cannot be used for cluster {}",
                r.name, cluster.name
            )
        })?;
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    Client::try_from(config).context("cannot build a Kubernetes client")
}
