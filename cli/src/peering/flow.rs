//! The peering steps as whole operations — read, decide, write — shared by `expose`, `link`,
//! `check` and `bootstrap --peering`.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use kube::Client;
use meshtrust_ca::VerifyOptions;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use super::apply::{apply_gateway, ensure_namespace, label_network, wait_programmed};
use super::check::{self, ClusterView, Line, Status};
use super::gateway::{EASTWEST, Locality, eastwest_gateway, peer_gateway};
use super::observe::{ClusterFacts, Namespaces, observe};
use super::plan;
use super::trust::{TrustView, agreement, cacerts_report, link_refusal};
use crate::cluster::client::Access;

/// Clusters read at once.
const CONCURRENCY: usize = 8;

/// How `expose` builds and applies the east-west gateway.
#[derive(Clone, Debug)]
pub struct ExposeOptions {
    /// Namespaces of istiod and the gateways.
    pub namespaces: Namespaces,
    /// `--network`.
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
        .with_context(|| format!("context {context}"))?;
    if !facts.istio_namespace_exists {
        bail!(
            "{context} has no namespace {}: install istiod first (see `meshtrust values`)",
            opts.namespaces.istio
        );
    }
    let ew = plan::eastwest(
        context,
        &facts,
        &opts.namespaces.eastwest,
        opts.network.as_deref(),
        opts.locality.clone(),
        opts.nodeport,
    )
    .map_err(anyhow::Error::msg)?;
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

/// Reads every context (in parallel, bounded). One failing cluster does not stop the others.
pub async fn observe_all(
    access: &Access,
    contexts: &[Option<String>],
    namespaces: &Namespaces,
) -> Vec<Result<(Client, ClusterFacts)>> {
    futures::stream::iter(contexts.iter())
        .map(|ctx| async move {
            let shown = ctx.as_deref().unwrap_or("(current context)");
            async {
                let client = access.client(ctx.as_deref()).await?;
                let facts = observe(&client, namespaces).await?;
                Ok::<_, anyhow::Error>((client, facts))
            }
            .await
            .with_context(|| format!("context {shown}"))
        })
        .buffered(CONCURRENCY)
        .collect()
        .await
}

/// How `link` works.
#[derive(Clone, Debug)]
pub struct LinkOptions {
    /// Namespaces of istiod and the gateways.
    pub namespaces: Namespaces,
    /// Prefer NodePorts for data-plane traffic.
    pub nodeport: bool,
    /// Build only; write nothing.
    pub generate: bool,
    /// Link clusters without a common root.
    pub skip_trust_check: bool,
    /// Take over conflicting fields.
    pub force: bool,
}

/// One peer gateway, planned or applied.
#[derive(Debug, Serialize)]
pub struct Link {
    /// Source context (where the gateway is written).
    pub from: String,
    /// Destination context.
    pub to: String,
    /// The destination's network.
    pub network: String,
    /// The Gateway.
    pub gateway: Value,
}

/// Plans every pair, refuses the whole run if any pair cannot be linked (missing facts, or no
/// shared root unless `skip_trust_check`), then — unless generating — applies each gateway.
/// Nothing is written when anything is refused.
pub async fn link(
    access: &Access,
    pairs: &[(String, String)],
    opts: &LinkOptions,
    now: OffsetDateTime,
) -> Result<Vec<Link>> {
    let mut contexts: Vec<String> = Vec::new();
    for (a, b) in pairs {
        for c in [a, b] {
            if !contexts.contains(c) {
                contexts.push(c.clone());
            }
        }
    }
    let wanted: Vec<Option<String>> = contexts.iter().cloned().map(Some).collect();
    let observed = observe_all(access, &wanted, &opts.namespaces).await;
    let mut clusters = Vec::new();
    let mut refusals = Vec::new();
    for (ctx, o) in contexts.iter().zip(observed) {
        match o {
            Ok((client, facts)) => clusters.push((ctx.clone(), client, facts)),
            Err(e) => refusals.push(format!("{e:#}")),
        }
    }
    if !refusals.is_empty() {
        bail!("nothing was linked: {}", refusals.join("; "));
    }
    let find = |c: &str| {
        clusters
            .iter()
            .find(|(ctx, _, _)| ctx == c)
            .expect("every context was read")
    };
    let verify = VerifyOptions::at(now);
    let views: Vec<(String, TrustView)> = clusters
        .iter()
        .map(|(ctx, _, f)| {
            (
                ctx.clone(),
                TrustView::new(f, cacerts_report(f, &verify).as_ref()),
            )
        })
        .collect();
    let view = |c: &str| &views.iter().find(|(n, _)| n == c).expect("viewed").1;

    let mut links = Vec::new();
    let mut refused_pairs: Vec<(&String, &String)> = Vec::new();
    for (from, to) in pairs {
        let (_, _, dst) = find(to);
        if !opts.skip_trust_check
            && let Some(why) = link_refusal((from, view(from)), (to, view(to)))
        {
            // Once per pair of clusters, not once per direction.
            if !refused_pairs.contains(&(to, from)) {
                refusals.push(why);
            }
            refused_pairs.push((from, to));
            continue;
        }
        match plan::peer(to, dst, &opts.namespaces.eastwest, opts.nodeport) {
            Ok(peer) => links.push(Link {
                from: from.clone(),
                to: to.clone(),
                network: peer.network.clone(),
                gateway: peer_gateway(&peer),
            }),
            Err(e) => refusals.push(e),
        }
    }
    // A destination that cannot be linked is named once, not once per source.
    let mut seen = std::collections::HashSet::new();
    refusals.retain(|r| seen.insert(r.clone()));
    if !refusals.is_empty() {
        bail!("nothing was linked:\n  - {}", refusals.join("\n  - "));
    }
    if opts.generate {
        return Ok(links);
    }
    for l in &links {
        let (_, client, _) = find(&l.from);
        ensure_namespace(client, &opts.namespaces.eastwest)
            .await
            .with_context(|| format!("context {}", l.from))?;
        apply_gateway(client, &l.gateway, opts.force)
            .await
            .with_context(|| format!("context {}", l.from))?;
    }
    Ok(links)
}

/// The report of `check`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Per cluster, its lines.
    pub clusters: Vec<ClusterReport>,
    /// Lines about the whole mesh (with two or more clusters).
    pub mesh: Vec<Line>,
    /// No ❌ anywhere.
    pub ok: bool,
}

/// One cluster's part of the report.
#[derive(Debug, Serialize)]
pub struct ClusterReport {
    /// The context.
    pub context: String,
    /// Its checks.
    pub checks: Vec<Line>,
}

/// Runs every check on every context, and the mesh-wide checks across them.
pub async fn check(
    access: &Access,
    contexts: &[Option<String>],
    namespaces: &Namespaces,
    opts: &check::Options,
) -> Report {
    let observed = observe_all(access, contexts, namespaces).await;
    let verify = VerifyOptions::at(opts.now);
    let mut reports = Vec::new();
    let mut read = Vec::new();
    for (ctx, o) in contexts.iter().zip(observed) {
        let name = ctx.clone().unwrap_or_else(|| "(current context)".into());
        match o {
            Ok((_, facts)) => {
                let report = cacerts_report(&facts, &verify);
                let trust = TrustView::new(&facts, report.as_ref());
                read.push((name, facts, report, trust));
            }
            Err(e) => reports.push(ClusterReport {
                context: name,
                checks: vec![Line {
                    check: "Cluster Access".into(),
                    status: Status::Fail,
                    message: format!("{e:#}"),
                }],
            }),
        }
    }
    let views: Vec<ClusterView<'_>> = read
        .iter()
        .map(|(name, facts, report, trust)| ClusterView {
            name,
            facts,
            report: report.as_ref(),
            trust,
        })
        .collect();
    for v in &views {
        reports.push(ClusterReport {
            context: v.name.to_string(),
            checks: check::cluster_checks(v, opts),
        });
    }
    let mesh = if contexts.len() > 1 {
        let trust: Vec<(String, TrustView)> = read
            .iter()
            .map(|(n, _, _, t)| (n.clone(), t.clone()))
            .collect();
        let mut lines = check::mesh_checks(&views, &agreement(&trust));
        if views.len() < contexts.len() {
            lines.push(Line {
                check: "Mesh Check".into(),
                status: Status::Fail,
                message:
                    "some clusters could not be read; the mesh-wide checks cover only the others"
                        .into(),
            });
        }
        lines
    } else {
        Vec::new()
    };
    // Keep the order the contexts were given in.
    reports.sort_by_key(|r| {
        contexts
            .iter()
            .position(|c| c.as_deref().unwrap_or("(current context)") == r.context)
    });
    let ok = reports
        .iter()
        .flat_map(|r| &r.checks)
        .chain(&mesh)
        .all(|l| l.status != Status::Fail);
    Report {
        clusters: reports,
        mesh,
        ok,
    }
}

/// Prints a report as `istioctl multicluster check` does, one section per cluster.
pub fn print_report(report: &Report) {
    let several = report.clusters.len() > 1;
    for c in &report.clusters {
        if several {
            println!("=== {} ===", c.context);
        }
        for l in &c.checks {
            println!("{} {}: {}", l.status.mark(), l.check, l.message);
        }
        if several {
            println!();
        }
    }
    if !report.mesh.is_empty() {
        println!("=== mesh ===");
        for l in &report.mesh {
            println!("{} {}: {}", l.status.mark(), l.check, l.message);
        }
    }
}
