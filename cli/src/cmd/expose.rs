//! `meshtrust expose`: the network label and the east-west gateway of one cluster.

use std::process::ExitCode;

use anyhow::Result;

use meshtrust_peering::{EASTWEST, ExposeOptions, Locality, Namespaces, expose, to_yaml};

use crate::advice::peering as peering_advice;
use crate::args::{ExposeArgs, PeeringNamespaces};

/// The namespaces of a peering command.
pub fn namespaces(n: &PeeringNamespaces) -> Namespaces {
    Namespaces {
        istio: n.istio_namespace.clone(),
        eastwest: n.namespace.clone(),
    }
}

pub async fn run(args: ExposeArgs) -> Result<ExitCode> {
    let access = args.kube.access();
    let context = args.context.as_deref();
    let shown = context.unwrap_or("(current context)");
    let client = access
        .client(context)
        .await
        .map_err(|e| peering_advice::error(e.into()))?;
    let opts = ExposeOptions {
        namespaces: namespaces(&args.namespaces),
        network: args.network.clone(),
        locality: Locality {
            region: args.region.clone(),
            zone: args.zone.clone(),
        },
        nodeport: args.nodeport,
        generate: args.generate,
        force: args.force,
        wait: args.wait.then_some(args.timeout),
    };
    let exposed = expose(&client, shown, &opts)
        .await
        .map_err(peering_advice::error)?;
    if args.generate {
        if exposed.relabelled {
            eprintln!(
                "note: {} would also be labelled topology.istio.io/network={}",
                opts.namespaces.istio, exposed.network
            );
        }
        print!(
            "{}",
            to_yaml(&[exposed.gateway]).map_err(peering_advice::error)?
        );
        return Ok(ExitCode::SUCCESS);
    }
    if exposed.relabelled {
        println!(
            "Namespace {} labelled topology.istio.io/network={} in cluster \"{shown}\"",
            opts.namespaces.istio, exposed.network
        );
    }
    println!(
        "Gateway {}/{EASTWEST} applied to cluster \"{shown}\" (network \"{}\", cluster ID \"{}\"){}",
        opts.namespaces.eastwest,
        exposed.network,
        exposed.cluster_id,
        if args.wait { ", programmed" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}
