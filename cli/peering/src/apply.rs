//! Writing peering objects into a cluster: the network label, the gateways' namespace, and
//! the Gateways themselves by server-side apply (field manager `meshtrust`), so reruns
//! converge and fields owned by someone else are never silently taken over.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use meshtrust_kube::{FIELD_MANAGER, is_conflict};
use serde_json::Value;

use crate::check::condition;
use crate::error::{Error, Result};
use crate::gateway::NETWORK_LABEL;
use crate::observe::gateway_resource;

/// Sets `topology.istio.io/network` on istiod's namespace (which must exist).
pub async fn label_network(client: &Client, namespace: &str, network: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let patch = serde_json::json!({ "metadata": { "labels": { NETWORK_LABEL: network } } });
    api.patch(namespace, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| {
            meshtrust_kube::Error::api(
                format!("cannot label namespace {namespace} with {NETWORK_LABEL}={network}"),
                e,
            )
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
        Err(e) => Err(meshtrust_kube::Error::api(
            format!("cannot create namespace {namespace}"),
            e,
        )
        .into()),
    }
}

/// Server-side applies a Gateway built by [`crate::eastwest_gateway`] or
/// [`crate::peer_gateway`]. `force` takes over fields another manager (e.g. `istioctl`)
/// owns; without it such a conflict is an [`Error::FieldConflict`] and nothing changes.
pub async fn apply_gateway(client: &Client, gateway: &Value, force: bool) -> Result<()> {
    let namespace = gateway["metadata"]["namespace"]
        .as_str()
        .ok_or(Error::Internal("gateway without namespace"))?;
    let name = gateway["metadata"]["name"]
        .as_str()
        .ok_or(Error::Internal("gateway without name"))?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &gateway_resource());
    let mut params = PatchParams::apply(FIELD_MANAGER);
    if force {
        params = params.force();
    }
    match api.patch(name, &params, &Patch::Apply(gateway)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Err(Error::FieldConflict {
            gateway: format!("{namespace}/{name}"),
            message: s.message.clone(),
        }),
        Err(kube::Error::Api(s)) if s.code == 404 => Err(Error::NoGatewayApi {
            message: s.message.clone(),
        }),
        Err(e) => Err(meshtrust_kube::Error::api(
            format!("cannot apply gateway {namespace}/{name}"),
            e,
        )
        .into()),
    }
}

/// Waits until the Gateway reports `Programmed=True`, polling every `every`, for at most
/// `timeout` (a request still running then is abandoned).
pub async fn wait_programmed(
    client: &Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
    every: Duration,
) -> Result<()> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &gateway_resource());
    let mut last = String::from("no status yet");
    let poll = async {
        loop {
            match api.get(name).await {
                Ok(g) => match condition(&g.data, "Programmed") {
                    Some((s, _, _)) if s == "True" => return,
                    Some((s, reason, message)) => {
                        last = format!("Programmed={s} ({reason}) {message}");
                    }
                    None => {}
                },
                Err(e) => last = format!("cannot read it: {e}"),
            }
            tokio::time::sleep(every).await;
        }
    };
    match tokio::time::timeout(timeout, poll).await {
        Ok(()) => Ok(()),
        Err(_) => Err(Error::NotProgrammed {
            namespace: namespace.to_string(),
            name: name.to_string(),
            timeout,
            last,
        }),
    }
}
