//! `expose`: read a cluster, build its east-west gateway, and apply it.

use std::time::Duration;

use kube::Client;
use serde_json::Value;

use crate::apply::{apply_gateway, ensure_namespace, label_network, wait_programmed};
use crate::error::{Error, Result};
use crate::gateway::{EASTWEST, Locality, eastwest_gateway};
use crate::observe::{Namespaces, observe};
use crate::plan;

/// How `expose` builds and applies the east-west gateway.
#[derive(Clone, Debug)]
pub struct ExposeOptions {
    /// Namespaces of istiod and the gateways.
    pub namespaces: Namespaces,
    /// The cluster's network; `None`: the network label istiod's namespace already has.
    pub network: Option<String>,
    /// Region and zone labels.
    pub locality: Locality,
    /// NodePort data plane.
    pub nodeport: bool,
    /// Build only; write nothing.
    pub generate: bool,
    /// Take over conflicting fields.
    pub force: bool,
    /// Wait for `Programmed=True` this long.
    pub wait: Option<Duration>,
}

/// What `expose` did (or, with `generate`, would do).
#[derive(Debug)]
pub struct Exposed {
    /// The Gateway.
    pub gateway: Value,
    /// The network.
    pub network: String,
    /// The cluster ID.
    pub cluster_id: String,
    /// Whether istio-system's network label was (or would be) changed.
    pub relabelled: bool,
}

/// Reads a cluster, builds its east-west gateway, and unless generating, labels istio-system,
/// creates the gateways' namespace and applies the gateway.
pub async fn expose(client: &Client, context: &str, opts: &ExposeOptions) -> Result<Exposed> {
    let facts = observe(client, &opts.namespaces)
        .await
        .map_err(|e| e.in_cluster(context))?;
    if !facts.istio_namespace_exists {
        return Err(Error::NoIstioNamespace {
            context: context.to_string(),
            namespace: opts.namespaces.istio.clone(),
        });
    }
    let ew = plan::eastwest(
        context,
        &facts,
        &opts.namespaces.eastwest,
        opts.network.as_deref(),
        opts.locality.clone(),
        opts.nodeport,
    )?;
    let gateway = eastwest_gateway(&ew);
    let relabelled = facts.network_label.as_deref() != Some(ew.network.as_str());
    if !opts.generate {
        if relabelled {
            label_network(client, &opts.namespaces.istio, &ew.network).await?;
        }
        ensure_namespace(client, &opts.namespaces.eastwest).await?;
        apply_gateway(client, &gateway, opts.force).await?;
        if let Some(timeout) = opts.wait {
            wait_programmed(
                client,
                &opts.namespaces.eastwest,
                EASTWEST,
                timeout,
                Duration::from_millis(500),
            )
            .await?;
        }
    }
    Ok(Exposed {
        gateway,
        network: ew.network,
        cluster_id: ew.cluster_id,
        relabelled,
    })
}
