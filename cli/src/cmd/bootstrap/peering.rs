//! `bootstrap --peering`: once every cluster holds `cacerts`, expose each cluster (waiting for
//! its gateway to be programmed), link every pair — the trust gate now passes by
//! construction — and check the mesh as a precheck (peers take a moment to connect).

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use time::OffsetDateTime;

use super::Target;
use crate::args::BootstrapArgs;
use crate::cluster::client::Access;
use crate::peering::check::Options;
use crate::peering::flow::{ExposeOptions, LinkOptions, check, expose, link, print_report};
use crate::peering::gateway::Locality;
use crate::peering::observe::Namespaces;
use crate::peering::plan::pairs;

pub async fn run(args: &BootstrapArgs, access: &Access, targets: &[Target]) -> Result<ExitCode> {
    let namespaces = Namespaces {
        istio: args.namespace.clone(),
        eastwest: args.eastwest_namespace.clone(),
    };
    if let Some(t) = targets.iter().find(|t| t.network.is_none()) {
        bail!(
            "--peering needs each cluster's network ({} has none): pass --networks or --network-from-cluster-name",
            t.context
        );
    }
    eprintln!("exposing {} cluster(s)…", targets.len());
    let exposed: Vec<Result<()>> = futures::stream::iter(targets)
        .map(|t| {
            let opts = ExposeOptions {
                namespaces: namespaces.clone(),
                network: t.network.clone(),
                locality: Locality::default(),
                nodeport: args.nodeport,
                generate: false,
                force: args.write.force,
                wait: Some(args.peering_timeout),
            };
            async move {
                let client = access.client(Some(&t.context)).await?;
                let e = expose(&client, &t.context, &opts).await?;
                println!(
                    "Gateway {}/istio-eastwest applied to cluster \"{}\" (network \"{}\", cluster ID \"{}\"), programmed",
                    opts.namespaces.eastwest, t.context, e.network, e.cluster_id
                );
                Ok(())
            }
        })
        .buffered(usize::from(args.concurrency))
        .collect()
        .await;
    let errors: Vec<String> = exposed
        .into_iter()
        .filter_map(|r| r.err().map(|e| format!("{e:#}")))
        .collect();
    if !errors.is_empty() {
        bail!(
            "trust is delivered, but exposing failed — fix and rerun (bootstrap converges): {}",
            errors.join("; ")
        );
    }

    let contexts: Vec<String> = targets.iter().map(|t| t.context.clone()).collect();
    if contexts.len() > 1 {
        let opts = LinkOptions {
            namespaces: namespaces.clone(),
            nodeport: args.nodeport,
            generate: false,
            skip_trust_check: false,
            force: args.write.force,
        };
        let links = link(access, &pairs(&contexts), &opts, OffsetDateTime::now_utc())
            .await
            .context("trust is delivered and clusters exposed, but linking failed")?;
        for l in &links {
            println!(
                "Gateway {}/{} applied to cluster \"{}\" pointing to cluster \"{}\" (network \"{}\")",
                namespaces.eastwest,
                l.gateway["metadata"]["name"].as_str().unwrap_or_default(),
                l.from,
                l.to,
                l.network
            );
        }
    }

    let wanted: Vec<Option<String>> = contexts.iter().cloned().map(Some).collect();
    let report = check(
        access,
        &wanted,
        &namespaces,
        &Options {
            precheck: true,
            now: OffsetDateTime::now_utc(),
        },
    )
    .await;
    print_report(&report);
    if !report.ok {
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "peers connect within a minute or so; confirm with `meshtrust check --contexts {}`",
        contexts.join(",")
    );
    Ok(ExitCode::SUCCESS)
}
