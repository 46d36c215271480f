//! Carrying out a plan in one cluster: namespace, network label, `cacerts`, backup.
//! Every write is a single create, or a replace with the observed resourceVersion, so a
//! cluster never holds a partial Secret and a concurrent change is never overwritten.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use time::OffsetDateTime;

use crate::error::{Error, Result, is_conflict, is_not_found};
use crate::plan::{Action, Existing};
use crate::secret::{CACERTS, ObservedSecret, scrub};

/// Label istiod and the ambient data plane read a namespace's network from.
pub const NETWORK_LABEL: &str = "topology.istio.io/network";

/// What was read from a cluster before deciding. (`Debug` leaves the Secret's data out: it
/// holds a private key.)
#[derive(Debug)]
pub struct Observed {
    /// The `cacerts` Secret, if any, its values in zeroizing buffers.
    pub secret: Option<ObservedSecret>,
    /// Whether the namespace exists.
    pub namespace_exists: bool,
    /// The namespace's current network label.
    pub network: Option<String>,
    /// Whether an istiod pod is running.
    pub istiod_running: bool,
}

impl Observed {
    /// The existing bundle, for planning.
    pub fn existing(&self) -> Existing {
        match &self.secret {
            None => Existing::Absent,
            Some(s) => Existing::Present { files: s.files() },
        }
    }
}

/// Reads the namespace, the `cacerts` Secret and whether istiod runs. Writes nothing.
pub async fn observe(client: &Client, namespace: &str) -> Result<Observed> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = match namespaces.get(namespace).await {
        Ok(ns) => Some(ns),
        Err(e) if is_not_found(&e) => None,
        Err(e) => return Err(Error::api(format!("cannot read namespace {namespace}"), e)),
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
        Ok(s) => Some(ObservedSecret::from_secret(s)),
        Err(e) if is_not_found(&e) => None,
        Err(e) => {
            return Err(Error::api(
                format!("cannot read secret {namespace}/{CACERTS}"),
                e,
            ));
        }
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let istiod_running = pods
        .list(&ListParams::default().labels("app=istiod"))
        .await
        .map_err(|e| Error::api(format!("cannot list pods in {namespace}"), e))?
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

/// A Secret whose values (a private key among them) are zeroized when it goes: every copy
/// of `cacerts` data this module makes — the Secret written, its backup, the API server's
/// answers to a create or replace (they echo the data), a read-back — is held in one.
struct Scrubbed(Secret);

impl Drop for Scrubbed {
    fn drop(&mut self) {
        scrub(&mut self.0);
    }
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
/// and carries out `action` with `secret`. `context` is used in messages and commands;
/// `now` names a backup (`cacerts-backup-<stamp>`).
#[allow(clippy::too_many_arguments)]
pub async fn apply(
    client: &Client,
    context: &str,
    namespace: &str,
    observed: &Observed,
    action: &Action,
    secret: Option<Secret>,
    network: Option<&str>,
    now: OffsetDateTime,
) -> Result<Applied> {
    ensure_namespace(client, namespace, observed, network).await?;
    write(client, context, namespace, observed, action, secret, now).await
}

/// Carries out `action` with `secret` in `namespace`, which must exist; touches nothing
/// but `cacerts` and, for a replace with backup, its backup. This is all the in-cluster
/// agent may do (its Role allows no more): [`apply`] without the namespace.
pub async fn write(
    client: &Client,
    context: &str,
    namespace: &str,
    observed: &Observed,
    action: &Action,
    secret: Option<Secret>,
    now: OffsetDateTime,
) -> Result<Applied> {
    let secret = secret.map(Scrubbed);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut applied = Applied::default();
    match action {
        Action::Unchanged | Action::Conflict { .. } => return Ok(applied),
        Action::Create => {
            let secret = secret.ok_or(Error::Internal("no Secret to create"))?;
            create(&secrets, namespace, &secret.0).await?;
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
                .ok_or(Error::Internal("nothing to replace"))?;
            if *backup {
                let name = format!("{CACERTS}-{}", meshtrust_ca::backup_suffix(now));
                back_up(&secrets, namespace, old, &name).await?;
                applied.backup = Some(name);
            }
            let mut secret = secret.ok_or(Error::Internal("no Secret to write"))?;
            replace(&secrets, namespace, old, &mut secret.0).await?;
            if observed.istiod_running {
                applied.warnings.push(format!(
                    "istiod reloads a new intermediate by itself, but a new root only with ISTIO_MULTIROOT_MESH=true and a bundle containing the old root; otherwise run `kubectl --context={context} -n {namespace} rollout restart deployment/istiod` (docs/rotation.md)"
                ));
            }
        }
    }
    Ok(applied)
}

/// Creates `namespace` (labelled with `network`) when it was missing, or sets its network
/// label when it differs.
async fn ensure_namespace(
    client: &Client,
    namespace: &str,
    observed: &Observed,
    network: Option<&str>,
) -> Result<()> {
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
        return match namespaces.create(&PostParams::default(), &ns).await {
            Ok(_) => Ok(()),
            Err(e) if is_conflict(&e) => Ok(()),
            Err(e) => Err(Error::api(
                format!("cannot create namespace {namespace}"),
                e,
            )),
        };
    }
    if let Some(n) = network
        && observed.network.as_deref() != Some(n)
    {
        let patch = serde_json::json!({ "metadata": { "labels": { NETWORK_LABEL: n } } });
        namespaces
            .patch(namespace, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| {
                Error::api(
                    format!("cannot label namespace {namespace} with {NETWORK_LABEL}={n}"),
                    e,
                )
            })?;
    }
    Ok(())
}

/// Creates `cacerts`; someone else creating it first is a race, never overwritten. A 409
/// on a Secret that holds exactly this data is this create's own, retried after its
/// answer was lost.
async fn create(secrets: &Api<Secret>, namespace: &str, secret: &Secret) -> Result<()> {
    match secrets.create(&PostParams::default(), secret).await {
        Ok(answer) => {
            drop(Scrubbed(answer));
            Ok(())
        }
        Err(e) if is_conflict(&e) && holds(secrets, CACERTS, secret).await => Ok(()),
        Err(e) if is_conflict(&e) => Err(Error::Raced {
            object: format!("{namespace}/{CACERTS}"),
            what: "was created by someone else",
        }),
        Err(e) => Err(Error::api(
            format!("cannot create {namespace}/{CACERTS}"),
            e,
        )),
    }
}

/// Keeps a copy of `old` as the Secret `name`, before it is replaced.
async fn back_up(
    secrets: &Api<Secret>,
    namespace: &str,
    old: &ObservedSecret,
    name: &str,
) -> Result<()> {
    let backup = Scrubbed(old.backup(name));
    match secrets.create(&PostParams::default(), &backup.0).await {
        Ok(answer) => {
            drop(Scrubbed(answer));
            Ok(())
        }
        Err(e) if is_conflict(&e) && holds(secrets, name, &backup.0).await => Ok(()),
        Err(e) => Err(Error::api(
            format!("cannot back up {namespace}/{CACERTS} as {name}; nothing was replaced"),
            e,
        )),
    }
}

/// Replaces `cacerts` with the resourceVersion `old` was read at; a change since then is a
/// race, never overwritten. A 409 with `cacerts` holding exactly the new data is this
/// replace's own, retried after its answer was lost.
async fn replace(
    secrets: &Api<Secret>,
    namespace: &str,
    old: &ObservedSecret,
    secret: &mut Secret,
) -> Result<()> {
    secret.metadata.resource_version = old.resource_version();
    match secrets
        .replace(CACERTS, &PostParams::default(), secret)
        .await
    {
        Ok(answer) => {
            drop(Scrubbed(answer));
            Ok(())
        }
        Err(e) if is_conflict(&e) && holds(secrets, CACERTS, secret).await => Ok(()),
        Err(e) if is_conflict(&e) => Err(Error::Raced {
            object: format!("{namespace}/{CACERTS}"),
            what: "changed since it was read",
        }),
        Err(e) => Err(Error::api(
            format!("cannot replace {namespace}/{CACERTS}"),
            e,
        )),
    }
}

/// Whether the Secret `name` now holds what `written` holds (data, labels and
/// annotations): a write that came back 409 was then this one, repeated by the retry
/// policy after the API server carried it out and its answer was lost. The data holds a
/// freshly generated key, so no one else's write can match it.
async fn holds(secrets: &Api<Secret>, name: &str, written: &Secret) -> bool {
    let Ok(Some(found)) = secrets.get_opt(name).await else {
        return false;
    };
    let found = Scrubbed(found);
    let found = &found.0;
    let labels = |s: &Secret| s.metadata.labels.clone().unwrap_or_default();
    let annotations = |s: &Secret| s.metadata.annotations.clone().unwrap_or_default();
    found.data == written.data
        && labels(found) == labels(written)
        && annotations(found) == annotations(written)
}
