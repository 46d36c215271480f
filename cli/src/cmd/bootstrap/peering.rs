//! `bootstrap --peering`: once every cluster holds `cacerts`, expose each cluster (waiting for
//! its gateway to be programmed), link every pair — the trust gate now passes by
//! construction — and check the mesh as a precheck (peers take a moment to connect).

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use meshtrust_issuer::Clock;
use meshtrust_kube::Access;
use meshtrust_peering::{
    CheckOptions, EASTWEST, ExposeOptions, LinkOptions, Locality, Namespaces, check, expose, link,
    pairs,
};

use super::Target;
use crate::advice::peering as peering_advice;
use crate::args::BootstrapArgs;
use crate::cmd::report;

pub async fn run(args: &BootstrapArgs, access: &Access, targets: &[Target]) -> Result<ExitCode> {
    let namespaces = Namespaces {
        istio: args.namespace.clone(),
        eastwest: args.eastwest_namespace.clone(),
    };
    require_networks(targets)?;
    expose_all(args, access, targets, &namespaces).await?;
    let contexts: Vec<String> = targets.iter().map(|t| t.context.clone()).collect();
    if contexts.len() > 1 {
        link_all(args, access, &contexts, &namespaces).await?;
    }
    precheck(access, &contexts, &namespaces).await
}

/// Every cluster needs a network before it can be exposed.
fn require_networks(targets: &[Target]) -> Result<()> {
    if let Some(t) = targets.iter().find(|t| t.network.is_none()) {
        bail!(
            "--peering needs each cluster's network ({} has none): pass --networks or --network-from-cluster-name",
            t.context
        );
    }
    Ok(())
}

/// Exposes every cluster (bounded by `--concurrency`), waiting for each gateway to be
/// programmed; fails naming every cluster that could not be exposed.
async fn expose_all(
    args: &BootstrapArgs,
    access: &Access,
    targets: &[Target],
    namespaces: &Namespaces,
) -> Result<()> {
    eprintln!("exposing {} cluster(s)…", targets.len());
    let exposed: Vec<Result<()>> = futures::stream::iter(targets)
        .map(|t| expose_one(args, access, t, namespaces))
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
    Ok(())
}

/// Exposes one cluster and says so.
async fn expose_one(
    args: &BootstrapArgs,
    access: &Access,
    t: &Target,
    namespaces: &Namespaces,
) -> Result<()> {
    let opts = ExposeOptions {
        namespaces: namespaces.clone(),
        network: t.network.clone(),
        locality: Locality::default(),
        nodeport: args.nodeport,
        generate: false,
        force: args.write.force,
        wait: Some(args.peering_timeout),
    };
    let client = access
        .client(Some(&t.context))
        .await
        .map_err(|e| peering_advice::error(e.into()))?;
    let e = expose(&client, &t.context, &opts)
        .await
        .map_err(peering_advice::error)?;
    println!(
        "Gateway {}/{EASTWEST} applied to cluster \"{}\" (network \"{}\", cluster ID \"{}\"), programmed",
        opts.namespaces.eastwest, t.context, e.network, e.cluster_id
    );
    Ok(())
}

/// Links every ordered pair of `contexts` and says which gateways were applied.
async fn link_all(
    args: &BootstrapArgs,
    access: &Access,
    contexts: &[String],
    namespaces: &Namespaces,
) -> Result<()> {
    let opts = LinkOptions {
        namespaces: namespaces.clone(),
        nodeport: args.nodeport,
        generate: false,
        skip_trust_check: false,
        force: args.write.force,
    };
    let links = link(access, &pairs(contexts), &opts, Clock::system().now())
        .await
        .map_err(peering_advice::error)
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
    Ok(())
}

/// Checks the mesh as a precheck (peers not connected yet only warn) and prints the report.
async fn precheck(
    access: &Access,
    contexts: &[String],
    namespaces: &Namespaces,
) -> Result<ExitCode> {
    let wanted: Vec<Option<String>> = contexts.iter().cloned().map(Some).collect();
    let mut found = check(
        access,
        &wanted,
        namespaces,
        &CheckOptions {
            precheck: true,
            now: Clock::system().now(),
        },
    )
    .await;
    report::add_advice(&mut found);
    report::print(&found);
    if !found.ok {
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "peers connect within a minute or so; confirm with `meshtrust check --contexts {}`",
        contexts.join(",")
    );
    Ok(ExitCode::SUCCESS)
}
