//! `link`: read every cluster of the pairs, plan a peer gateway per pair, refuse the whole
//! run if any pair cannot be linked, then apply.

use std::collections::HashSet;

use kube::Client;
use meshtrust_ca::VerifyOptions;
use meshtrust_kube::Access;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use super::observe_all;
use crate::apply::{apply_gateway, ensure_namespace};
use crate::error::{Error, Result};
use crate::gateway::peer_gateway;
use crate::observe::{ClusterFacts, Namespaces};
use crate::plan;
use crate::trust::{TrustView, cacerts_report, link_refusal};

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

/// A cluster read for linking.
struct Linkable {
    context: String,
    client: Client,
    facts: ClusterFacts,
    trust: TrustView,
}

/// Plans every pair, refuses the whole run if any pair cannot be linked (missing facts, or no
/// shared root unless `skip_trust_check`), then — unless generating — applies each gateway.
/// Nothing is written when anything is refused: clusters that cannot be read give
/// [`Error::LinkUnreadable`], pairs that cannot be linked [`Error::LinkRefused`]. `now` is
/// the time `cacerts` is verified at.
pub async fn link(
    access: &Access,
    pairs: &[(String, String)],
    opts: &LinkOptions,
    now: OffsetDateTime,
) -> Result<Vec<Link>> {
    let clusters = read(access, &contexts_of(pairs), &opts.namespaces, now).await?;
    let links = plan_links(&clusters, pairs, opts)?;
    if !opts.generate {
        apply_links(&clusters, &links, opts, access.cluster_budget()).await?;
    }
    Ok(links)
}

/// Every context of `pairs`, once each, in the order they first appear.
fn contexts_of(pairs: &[(String, String)]) -> Vec<String> {
    let mut contexts: Vec<String> = Vec::new();
    for (a, b) in pairs {
        for c in [a, b] {
            if !contexts.contains(c) {
                contexts.push(c.clone());
            }
        }
    }
    contexts
}

/// Reads every context and the roots it trusts (`cacerts` verified at `now`); fails with
/// [`Error::LinkUnreadable`] if any cannot be read.
async fn read(
    access: &Access,
    contexts: &[String],
    namespaces: &Namespaces,
    now: OffsetDateTime,
) -> Result<Vec<Linkable>> {
    let wanted: Vec<Option<String>> = contexts.iter().cloned().map(Some).collect();
    let observed = observe_all(access, &wanted, namespaces).await;
    let verify = VerifyOptions::at(now);
    let mut clusters = Vec::new();
    let mut unreadable = Vec::new();
    for (ctx, o) in contexts.iter().zip(observed) {
        match o {
            Ok((client, facts)) => {
                let trust = TrustView::new(&facts, cacerts_report(&facts, &verify).as_ref());
                clusters.push(Linkable {
                    context: ctx.clone(),
                    client,
                    facts,
                    trust,
                });
            }
            Err(e) => unreadable.push(e),
        }
    }
    if !unreadable.is_empty() {
        return Err(Error::LinkUnreadable { errors: unreadable });
    }
    Ok(clusters)
}

/// The cluster read for `context`.
fn find<'a>(clusters: &'a [Linkable], context: &str) -> &'a Linkable {
    clusters
        .iter()
        .find(|c| c.context == context)
        .expect("every context was read")
}

/// The peer gateway of every pair, or [`Error::LinkRefused`] with every reason a pair cannot
/// be linked: no shared root (unless `skip_trust_check`), or a destination missing what a
/// peer needs.
fn plan_links(
    clusters: &[Linkable],
    pairs: &[(String, String)],
    opts: &LinkOptions,
) -> Result<Vec<Link>> {
    let mut links = Vec::new();
    let mut refusals = Vec::new();
    let mut refused_pairs: Vec<(&String, &String)> = Vec::new();
    for (from, to) in pairs {
        let dst = find(clusters, to);
        if !opts.skip_trust_check
            && let Some(why) = link_refusal((from, &find(clusters, from).trust), (to, &dst.trust))
        {
            // Once per pair of clusters, not once per direction.
            if !refused_pairs.contains(&(to, from)) {
                refusals.push(why);
            }
            refused_pairs.push((from, to));
            continue;
        }
        match plan::peer(to, &dst.facts, &opts.namespaces.eastwest, opts.nodeport) {
            Ok(peer) => links.push(Link {
                from: from.clone(),
                to: to.clone(),
                network: peer.network.clone(),
                gateway: peer_gateway(&peer),
            }),
            Err(e) => refusals.push(e),
        }
    }
    refuse(refusals)?;
    Ok(links)
}

/// [`Error::LinkRefused`] unless there are no refusals; a destination that cannot be linked
/// is named once, not once per source.
fn refuse(mut refusals: Vec<Error>) -> Result<()> {
    let mut seen = HashSet::new();
    refusals.retain(|r| seen.insert(r.to_string()));
    if refusals.is_empty() {
        Ok(())
    } else {
        Err(Error::LinkRefused { refusals })
    }
}

/// Writes each peer gateway into its source cluster, creating the gateways' namespace
/// first, each source within `budget`. Source clusters are written concurrently, so a
/// failing or slow one holds up no other;
/// [`Error::LinkIncomplete`] names each that failed and the links that were written.
async fn apply_links(
    clusters: &[Linkable],
    links: &[Link],
    opts: &LinkOptions,
    budget: std::time::Duration,
) -> Result<()> {
    let mut sources: Vec<&str> = Vec::new();
    for l in links {
        if !sources.contains(&l.from.as_str()) {
            sources.push(&l.from);
        }
    }
    let results = futures::future::join_all(sources.iter().map(|from| {
        meshtrust_kube::within(budget, "writing the peer gateways", async move {
            let client = &find(clusters, from).client;
            ensure_namespace(client, &opts.namespaces.eastwest).await?;
            for l in links.iter().filter(|l| l.from == *from) {
                apply_gateway(client, &l.gateway, opts.force).await?;
            }
            Ok::<_, Error>(())
        })
    }))
    .await;
    let mut failed = Vec::new();
    let mut written = Vec::new();
    for (from, result) in sources.iter().zip(results) {
        match result {
            Ok(()) => written.extend(
                links
                    .iter()
                    .filter(|l| l.from == *from)
                    .map(|l| format!("{} → {}", l.from, l.to)),
            ),
            Err(e) => failed.push(e.in_cluster(from)),
        }
    }
    match failed.len() {
        0 => Ok(()),
        // One source alone: its own error says it all.
        1 if written.is_empty() => Err(failed.remove(0)),
        _ => Err(Error::LinkIncomplete { failed, written }),
    }
}
