//! Carrying out a plan in one cluster: namespace, network label, `cacerts`, backup.
//! Every write is a single create, or a replace with the observed resourceVersion, so a
//! cluster never holds a partial Secret and a concurrent change is never overwritten.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};

use super::plan::{Action, Existing};
use super::secret::{CACERTS, backup_of, bundle_files};
use super::{is_conflict, is_not_found};

/// Label istiod and the ambient data plane read a namespace's network from.
pub const NETWORK_LABEL: &str = "topology.istio.io/network";

/// What was read from a cluster before deciding. (`Debug` leaves the Secret's data out: it
/// holds a private key.)
pub struct Observed {
    /// The `cacerts` Secret, if any.
    pub secret: Option<Secret>,
    /// Whether the namespace exists.
    pub namespace_exists: bool,
    /// The namespace's current network label.
    pub network: Option<String>,
    /// Whether an istiod pod is running.
    pub istiod_running: bool,
}

impl std::fmt::Debug for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observed")
            .field("cacerts", &self.secret.as_ref().map(bundle_files))
            .field("namespace_exists", &self.namespace_exists)
            .field("network", &self.network)
            .field("istiod_running", &self.istiod_running)
            .finish()
    }
}

impl Observed {
    /// The existing bundle, for planning.
    pub fn existing(&self) -> Existing {
        match &self.secret {
            None => Existing::Absent,
            Some(s) => Existing::Present {
                files: bundle_files(s),
            },
        }
    }
}

/// Reads the namespace, the `cacerts` Secret and whether istiod runs. Writes nothing.
pub async fn observe(client: &Client, namespace: &str) -> Result<Observed> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = match namespaces.get(namespace).await {
        Ok(ns) => Some(ns),
        Err(e) if is_not_found(&e) => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read namespace {namespace}")),
    };
    let Some(ns) = ns else {
        return Ok(Observed {
            secret: None,
            namespace_exists: false,
            network: None,
            istiod_running: false,
        });
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = match secrets.get(CACERTS).await {
        Ok(s) => Some(s),
        Err(e) if is_not_found(&e) => None,
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read secret {namespace}/{CACERTS}"));
        }
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let istiod_running = pods
        .list(&ListParams::default().labels("app=istiod"))
        .await
        .with_context(|| format!("cannot list pods in {namespace}"))?
        .items
        .iter()
        .any(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"));
    Ok(Observed {
        secret,
        namespace_exists: true,
        network: ns
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(NETWORK_LABEL).cloned()),
        istiod_running,
    })
}

/// What was done in one cluster.
#[derive(Debug, Default)]
pub struct Applied {
    /// The backup Secret's name, when one was made.
    pub backup: Option<String>,
    /// Things the user must know (e.g. istiod needs a restart).
    pub warnings: Vec<String>,
}

/// Creates the namespace if missing (labelled with the network), sets the network label,
/// and carries out `action` with `secret`. `context` is used in messages and commands.
pub async fn apply(
    client: &Client,
    context: &str,
    namespace: &str,
    observed: &Observed,
    action: &Action,
    secret: Option<Secret>,
    network: Option<&str>,
) -> Result<Applied> {
    let mut applied = Applied::default();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if !observed.namespace_exists {
        let labels = network.map(|n| BTreeMap::from([(NETWORK_LABEL.to_string(), n.to_string())]));
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(namespace.to_string()),
                labels,
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        match namespaces.create(&PostParams::default(), &ns).await {
            Ok(_) => {}
            Err(e) if is_conflict(&e) => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot create namespace {namespace}"));
            }
        }
    } else if let Some(n) = network
        && observed.network.as_deref() != Some(n)
    {
        let patch = serde_json::json!({ "metadata": { "labels": { NETWORK_LABEL: n } } });
        namespaces
            .patch(namespace, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| {
                format!("cannot label namespace {namespace} with {NETWORK_LABEL}={n}")
            })?;
    }

    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    match action {
        Action::Unchanged | Action::Conflict { .. } => return Ok(applied),
        Action::Create => {
            let secret = secret.context("internal: no Secret to create")?;
            match secrets.create(&PostParams::default(), &secret).await {
                Ok(_) => {}
                Err(e) if is_conflict(&e) => bail!(
                    "{namespace}/{CACERTS} was created by someone else while meshtrust was working; nothing was overwritten — rerun to plan again"
                ),
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {namespace}/{CACERTS}"));
                }
            }
            if observed.istiod_running {
                applied.warnings.push(format!(
                    "istiod was already running without {CACERTS}: it keeps its self-signed CA until restarted — run `kubectl --context={context} -n {namespace} rollout restart deployment/istiod`"
                ));
            }
        }
        Action::Replace { backup, .. } => {
            let old = observed
                .secret
                .as_ref()
                .context("internal: nothing to replace")?;
            if *backup {
                let name = format!(
                    "{CACERTS}-backup-{}",
                    time::OffsetDateTime::now_utc().unix_timestamp()
                );
                secrets
                    .create(&PostParams::default(), &backup_of(old, &name))
                    .await
                    .with_context(|| {
                        format!(
                            "cannot back up {namespace}/{CACERTS} as {name}; nothing was replaced"
                        )
                    })?;
                applied.backup = Some(name);
            }
            let mut secret = secret.context("internal: no Secret to write")?;
            secret.metadata.resource_version = old.metadata.resource_version.clone();
            match secrets
                .replace(CACERTS, &PostParams::default(), &secret)
                .await
            {
                Ok(_) => {}
                Err(e) if is_conflict(&e) => bail!(
                    "{namespace}/{CACERTS} changed since it was read; nothing was overwritten — rerun to plan again"
                ),
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot replace {namespace}/{CACERTS}"));
                }
            }
            if observed.istiod_running {
                applied.warnings.push(format!(
                    "istiod reloads a new intermediate by itself, but a new root only with ISTIO_MULTIROOT_MESH=true and a bundle containing the old root; otherwise run `kubectl --context={context} -n {namespace} rollout restart deployment/istiod` (docs/rotation.md)"
                ));
            }
        }
    }
    Ok(applied)
}
