//! `meshtrust link`: istio-remote peer gateways between clusters that share a root.

use std::process::ExitCode;

use anyhow::Result;
use meshtrust_issuer::Clock;
use meshtrust_peering::{LinkOptions, link, pairs, to_yaml};

use super::expose::namespaces;
use crate::advice::peering as peering_advice;
use crate::args::LinkArgs;

pub async fn run(args: LinkArgs) -> Result<ExitCode> {
    let access = args.kube.access();
    let pairs = match (&args.from, &args.to) {
        (Some(from), Some(to)) if from == to => {
            anyhow::bail!("--from and --to are both `{from}`; a cluster is not linked to itself")
        }
        (Some(from), Some(to)) => vec![(from.clone(), to.clone())],
        _ if args.contexts.len() < 2 => {
            anyhow::bail!("--contexts needs at least two contexts to link")
        }
        _ => pairs(&args.contexts),
    };
    let opts = LinkOptions {
        namespaces: namespaces(&args.namespaces),
        nodeport: args.nodeport,
        generate: args.generate,
        skip_trust_check: args.skip_trust_check,
        force: args.force,
    };
    let links = link(&access, &pairs, &opts, Clock::system().now())
        .await
        .map_err(peering_advice::error)?;
    if args.generate {
        for l in &links {
            println!(
                "# in cluster \"{}\", pointing to cluster \"{}\"",
                l.from, l.to
            );
            let yaml = to_yaml(std::slice::from_ref(&l.gateway)).map_err(peering_advice::error)?;
            print!("{yaml}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    for l in &links {
        println!(
            "Gateway {}/{} applied to cluster \"{}\" pointing to cluster \"{}\" (network \"{}\")",
            l.gateway["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default(),
            l.gateway["metadata"]["name"].as_str().unwrap_or_default(),
            l.from,
            l.to,
            l.network
        );
    }
    Ok(ExitCode::SUCCESS)
}
