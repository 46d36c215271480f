//! Which clusters `bootstrap` works on: contexts, cluster names and networks, checked.

use anyhow::{Result, bail};
use meshtrust_ca::ClusterName;

use crate::args::BootstrapArgs;

/// One cluster to bootstrap.
#[derive(Clone, Debug)]
pub(super) struct Target {
    pub(super) context: String,
    pub(super) cluster: ClusterName,
    pub(super) network: Option<String>,
}

/// The clusters of `args`, in order, each with its name and network.
pub(super) fn targets(args: &BootstrapArgs) -> Result<Vec<Target>> {
    let contexts: Vec<String> = if args.contexts.is_empty() {
        args.cluster_names.iter().map(ToString::to_string).collect()
    } else {
        args.contexts.clone()
    };
    if contexts.is_empty() {
        bail!("name the clusters: --contexts c1,c2,… (or --cluster-names with --generate)");
    }
    if !args.cluster_names.is_empty() && args.cluster_names.len() != contexts.len() {
        bail!(
            "--cluster-names has {} names for {} contexts; give one name per context, in the same order",
            args.cluster_names.len(),
            contexts.len()
        );
    }
    if !args.networks.is_empty() && args.networks.len() != contexts.len() {
        bail!(
            "--networks has {} networks for {} clusters; give one per cluster",
            args.networks.len(),
            contexts.len()
        );
    }
    let mut out = Vec::new();
    for (i, context) in contexts.iter().enumerate() {
        let cluster = match args.cluster_names.get(i) {
            Some(c) => c.clone(),
            None => ClusterName::new(context).map_err(|_| {
                anyhow::anyhow!(
                    "context `{context}` is not a valid cluster name (a DNS-1123 label); pass --cluster-names with one name per context"
                )
            })?,
        };
        let network = if args.network_from_cluster_name {
            Some(cluster.to_string())
        } else {
            args.networks.get(i).cloned()
        };
        out.push(Target {
            context: context.clone(),
            cluster,
            network,
        });
    }
    let mut names: Vec<&str> = out.iter().map(|t| t.cluster.as_str()).collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        bail!(
            "cluster name `{}` appears twice; every cluster needs its own name",
            w[0]
        );
    }
    Ok(out)
}
