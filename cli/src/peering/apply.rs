//! Writing peering objects into a cluster: the network label, the gateways' namespace, and
//! the Gateways themselves by server-side apply (field manager `meshtrust`), so reruns
//! converge and fields owned by someone else are never silently taken over.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::Value;

use super::check::condition;
use super::gateway::{FIELD_MANAGER, NETWORK_LABEL};
use super::observe::gateway_resource;
use crate::cluster::is_conflict;

/// Sets `topology.istio.io/network` on istiod's namespace (which must exist).
pub async fn label_network(client: &Client, namespace: &str, network: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let patch = serde_json::json!({ "metadata": { "labels": { NETWORK_LABEL: network } } });
    api.patch(namespace, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| {
            format!("cannot label namespace {namespace} with {NETWORK_LABEL}={network}")
        })?;
    Ok(())
}

/// Creates `namespace` unless it exists.
pub async fn ensure_namespace(client: &Client, namespace: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(namespace.to_string()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(e) if is_conflict(&e) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot create namespace {namespace}")),
    }
}

/// Server-side applies a Gateway built by [`super::gateway`]. `force` takes over fields
/// another manager (e.g. `istioctl`) owns; without it such a conflict is an error that says so.
pub async fn apply_gateway(client: &Client, gateway: &Value, force: bool) -> Result<()> {
    let namespace = gateway["metadata"]["namespace"]
        .as_str()
        .context("internal: gateway without namespace")?;
    let name = gateway["metadata"]["name"]
        .as_str()
        .context("internal: gateway without name")?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &gateway_resource());
    let mut params = PatchParams::apply(FIELD_MANAGER);
    if force {
        params = params.force();
    }
    match api.patch(name, &params, &Patch::Apply(gateway)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => bail!(
            "gateway {namespace}/{name} has fields owned by another manager ({}); nothing was changed — pass --force to take them over",
            s.message
        ),
        Err(kube::Error::Api(s)) if s.code == 404 => bail!(
            "the cluster does not serve gateway.networking.k8s.io/v1 Gateways ({}); install the Gateway API CRDs first",
            s.message
        ),
        Err(e) => Err(e).with_context(|| format!("cannot apply gateway {namespace}/{name}")),
    }
}

/// Waits until the Gateway reports `Programmed=True`, polling every `every`.
pub async fn wait_programmed(
    client: &Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
    every: Duration,
) -> Result<()> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &gateway_resource());
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::from("no status yet");
    loop {
        match api.get(name).await {
            Ok(g) => match condition(&g.data, "Programmed") {
                Some((s, _, _)) if s == "True" => return Ok(()),
                Some((s, reason, message)) => last = format!("Programmed={s} ({reason}) {message}"),
                None => {}
            },
            Err(e) => last = format!("cannot read it: {e}"),
        }
        if tokio::time::Instant::now() + every > deadline {
            bail!(
                "gateway {namespace}/{name} was not programmed within {}s: {last}; check `kubectl -n {namespace} describe gateway {name}`",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(every).await;
    }
}
