//! Reaching and reading member clusters: the controller's own cluster (`local: true`), or a
//! kubeconfig kept in a Secret of the controller's namespace (`kubeconfigSecretRef`).

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use meshtrust_ca::{BundleFiles, ClusterName};
use meshtrust_kube::{Observed, ObservedSecret, client_from_kubeconfig, is_not_found, observe};
use zeroize::Zeroizing;

use crate::context::{CONCURRENCY, Context};
use crate::crd::{ClusterAccess, ClusterSpec, MeshTrust};
use crate::error::{Error, Result};

/// One member cluster as read this round.
pub struct Member<'a> {
    /// Its entry in the spec.
    pub spec: &'a ClusterSpec,
    /// Its name, checked.
    pub name: ClusterName,
    /// A client for it and what it holds, or why it could not be read.
    pub read: Result<(Client, Observed)>,
}

impl Member<'_> {
    /// The `cacerts` files it holds (`None`: none, or it could not be read).
    pub fn held(&self) -> Option<BundleFiles> {
        self.read
            .as_ref()
            .ok()
            .and_then(|(_, o)| o.secret.as_ref().map(ObservedSecret::files))
    }
}

/// A client for one member cluster. `home` is the controller's own client; Secrets are read
/// from `namespace` unless the reference names another.
pub async fn member_client(
    home: &Client,
    namespace: &str,
    cluster: &ClusterSpec,
    timeout: Duration,
) -> Result<Client> {
    let r = match cluster.access()? {
        ClusterAccess::Local => return Ok(home.clone()),
        ClusterAccess::Kubeconfig(r) => r,
    };
    let ns = r.namespace_or(namespace);
    let secrets: Api<Secret> = Api::namespaced(home.clone(), ns);
    let mut secret = match secrets.get(&r.name).await {
        Ok(s) => s,
        Err(e) if is_not_found(&e) => {
            return Err(Error::Member {
                reason: format!(
                    "kubeconfig Secret {ns}/{} of cluster {} does not exist; create it with `kubectl -n {ns} create secret generic {} --from-file={}=PATH`",
                    r.name, cluster.name, r.name, r.key
                ),
            });
        }
        Err(e) => {
            return Err(meshtrust_kube::Error::api(
                format!("cannot read Secret {ns}/{}", r.name),
                e,
            )
            .into());
        }
    };
    // The kubeconfig holds credentials: taken out of the Secret into a buffer zeroized on
    // drop, and every other value of the Secret zeroized now.
    let bytes = secret
        .data
        .as_mut()
        .and_then(|d| d.remove(&r.key))
        .map(|b| Zeroizing::new(b.0));
    meshtrust_kube::scrub(&mut secret);
    let bytes = bytes.ok_or_else(|| Error::Member {
        reason: format!(
            "Secret {ns}/{} has no key `{}` (the kubeconfig of cluster {})",
            r.name, r.key, cluster.name
        ),
    })?;
    let text = Zeroizing::new(
        std::str::from_utf8(&bytes)
            .map_err(|_| Error::Member {
                reason: format!("Secret {ns}/{} key `{}` is not UTF-8 text", r.name, r.key),
            })?
            .to_string(),
    );
    let shown = format!(
        "the kubeconfig in Secret {ns}/{} key `{}` (cluster {})",
        r.name, r.key, cluster.name
    );
    Ok(client_from_kubeconfig(&text, r.context.as_deref(), &shown, timeout).await?)
}

/// Reads every member cluster (bounded in parallel). Names were checked by `validate`.
pub async fn read_members<'a>(ctx: &Context, mt: &'a MeshTrust) -> Result<Vec<Member<'a>>> {
    let mut work = Vec::with_capacity(mt.spec.clusters.len());
    for spec in &mt.spec.clusters {
        work.push(read_member(
            ctx,
            &mt.spec.namespace,
            spec,
            spec.cluster_name()?,
        ));
    }
    Ok(futures::stream::iter(work)
        .buffered(CONCURRENCY)
        .collect()
        .await)
}

async fn read_member<'a>(
    ctx: &Context,
    namespace: &str,
    spec: &'a ClusterSpec,
    name: ClusterName,
) -> Member<'a> {
    let read = meshtrust_kube::within(ctx.member_budget, "reading the cluster", async {
        let client = member_client(&ctx.client, &ctx.namespace, spec, ctx.member_timeout).await?;
        let observed = observe(&client, namespace).await?;
        Ok::<_, Error>((client, observed))
    })
    .await
    .map_err(|e| Error::in_cluster(&spec.name, e));
    Member { spec, name, read }
}
