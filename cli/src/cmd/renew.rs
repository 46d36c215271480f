//! `meshtrust renew`: ask the controller to reissue member clusters' intermediates now, as
//! `cmctl renew` does for cert-manager. The request goes into the MeshTrust's
//! `meshtrust.io/renewal-request` annotation, naming per cluster the intermediate to replace
//! (its serial in status); the controller reissues each named cluster once, records it in
//! `status.clusters[].renewalRequest` and tells it in a `RenewalRequested` Event.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Result, bail};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use meshtrust_controller::crd::{
    ClusterStatus, MeshTrust, RENEWAL_REQUEST_ANNOTATION, RenewalRequest, timestamp,
};
use meshtrust_issuer::Clock;
use serde::Serialize;
use time::OffsetDateTime;

use super::rotate::{in_progress, read_meshtrust};
use crate::args::{Output, RenewArgs};
use crate::output;

/// Attempts at writing the request when another writer changes the MeshTrust meanwhile.
const ATTEMPTS: usize = 3;

/// Which clusters to renew.
enum Which<'a> {
    Named(&'a [String]),
    All,
}

/// What `renew` reports.
#[derive(Serialize)]
struct Summary {
    meshtrust: String,
    id: String,
    requested_at: String,
    /// Cluster → serial of the intermediate to replace (this request's and earlier ones
    /// still pending).
    clusters: BTreeMap<String, String>,
    /// Members skipped by --all: they hold no intermediate on record yet.
    skipped: Vec<String>,
    /// With --wait: the clusters whose renewal was carried out.
    #[serde(skip_serializing_if = "Option::is_none")]
    carried_out: Option<Vec<String>>,
}

pub async fn run(args: RenewArgs, clock: &Clock) -> Result<ExitCode> {
    let which = if args.all {
        Which::All
    } else {
        Which::Named(&args.cluster)
    };
    let m = &args.management;
    let client = m.kube.access().client(m.context.as_deref()).await?;
    let api: Api<MeshTrust> = Api::all(client);
    let mut attempt = 0;
    let (mut summary, asked) = loop {
        attempt += 1;
        let mt = read_meshtrust(&api, &args.name).await?;
        let now = clock.now();
        let (request, asked, skipped) = plan(&mt, &which, request_id(now), now)?;
        match write(&api, &mt, &request).await {
            Ok(()) => break (summary(&mt, request, skipped), asked),
            Err(e) if meshtrust_kube::is_conflict(&e) && attempt < ATTEMPTS => continue,
            Err(e) => bail!(
                "cannot write the renewal request into MeshTrust {}: {}",
                args.name,
                meshtrust_kube::api_message(&e)
            ),
        }
    };
    if let Some(wait) = args.wait {
        let waited = wait_for(&api, &args.name, &summary.id, &asked, wait, clock).await?;
        summary.carried_out = Some(waited);
    }
    if args.output == Output::Json {
        output::json(&summary)?;
    } else {
        print_text(&summary, &asked);
    }
    Ok(ExitCode::SUCCESS)
}

/// A request id: the time, and the process id to tell two requests of one second apart.
fn request_id(now: OffsetDateTime) -> String {
    let t = timestamp(now).replace([':', '-'], "").to_lowercase();
    format!("renew-{t}-{}", std::process::id())
}

/// The request to write: the clusters asked for (each with the serial status reports) and
/// those of an earlier request still pending. Refuses an unknown cluster, a cluster with no
/// intermediate on record, and a MeshTrust in the middle of a root rotation. Also returns
/// the clusters asked for now, and the members --all skipped.
fn plan(
    mt: &MeshTrust,
    which: &Which<'_>,
    id: String,
    now: OffsetDateTime,
) -> Result<(RenewalRequest, Vec<String>, Vec<String>)> {
    let name = mt.name_any();
    if let Some(phase) = in_progress(mt) {
        bail!(
            "MeshTrust {name} is in the middle of a root rotation (phase {phase}); renewal is refused until it is Complete, because the rotation decides every cluster's intermediate and trust file (phase 2 reissues every intermediate from the new root anyway). Follow it with `meshtrust rotate status {name}` and renew once the phase is Complete"
        );
    }
    let members: Vec<&str> = mt.spec.clusters.iter().map(|c| c.name.as_str()).collect();
    let serials = serials_on_record(mt);
    let (asked, skipped) = choose(&name, &members, &serials, which)?;
    let mut clusters: BTreeMap<String, String> = BTreeMap::new();
    // An earlier request's clusters that still hold the intermediate it named stay asked.
    if let Some(Ok(earlier)) = RenewalRequest::of(mt) {
        for (c, serial) in earlier.clusters {
            if members.contains(&c.as_str()) && serials.get(&c) == Some(&serial) {
                clusters.insert(c, serial);
            }
        }
    }
    for c in &asked {
        clusters.insert(c.clone(), serials[c].clone());
    }
    let request = RenewalRequest {
        id,
        requested_at: timestamp(now),
        clusters,
    };
    Ok((request, asked, skipped))
}

/// Cluster → serial of its intermediate, as the MeshTrust's status reports it.
fn serials_on_record(mt: &MeshTrust) -> BTreeMap<String, String> {
    mt.status
        .iter()
        .flat_map(|s| &s.clusters)
        .filter_map(|c: &ClusterStatus| Some((c.name.clone(), c.serial.clone()?)))
        .collect()
}

/// The clusters to ask for, each a member with an intermediate on record; and the members
/// `--all` skips for having none yet.
fn choose(
    name: &str,
    members: &[&str],
    serials: &BTreeMap<String, String>,
    which: &Which<'_>,
) -> Result<(Vec<String>, Vec<String>)> {
    let (asked, skipped): (Vec<String>, Vec<String>) = match which {
        Which::All => members
            .iter()
            .map(|c| c.to_string())
            .partition(|c| serials.contains_key(c)),
        Which::Named(names) => {
            for c in names.iter() {
                if !members.contains(&c.as_str()) {
                    bail!(
                        "MeshTrust {name} has no member cluster {c:?}; its members are: {}",
                        members.join(", ")
                    );
                }
                if !serials.contains_key(c) {
                    bail!(
                        "cluster {c} of MeshTrust {name} has no intermediate on record yet (status.clusters[{c}].serial is empty): the controller issues its first one by itself; check `meshtrust status {name}`"
                    );
                }
            }
            let mut names = names.to_vec();
            names.sort();
            names.dedup();
            (names, Vec::new())
        }
    };
    if asked.is_empty() {
        bail!(
            "no member cluster of MeshTrust {name} has an intermediate on record yet ({}): the controller issues the first ones by itself; check `meshtrust status {name}`",
            skipped.join(", ")
        );
    }
    Ok((asked, skipped))
}

/// Writes the request annotation, on the condition that the MeshTrust is still the one read.
async fn write(api: &Api<MeshTrust>, mt: &MeshTrust, request: &RenewalRequest) -> kube::Result<()> {
    let patch = serde_json::json!({
        "metadata": {
            "resourceVersion": mt.resource_version(),
            "annotations": {RENEWAL_REQUEST_ANNOTATION: request.to_annotation()},
        }
    });
    api.patch(
        &mt.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map(drop)
}

fn summary(mt: &MeshTrust, r: RenewalRequest, skipped: Vec<String>) -> Summary {
    Summary {
        meshtrust: mt.name_any(),
        id: r.id,
        requested_at: r.requested_at,
        clusters: r.clusters,
        skipped,
        carried_out: None,
    }
}

/// Polls the status until every cluster in `asked` records request `id`, for up to `wait`.
async fn wait_for(
    api: &Api<MeshTrust>,
    name: &str,
    id: &str,
    asked: &[String],
    wait: std::time::Duration,
    clock: &Clock,
) -> Result<Vec<String>> {
    let started = clock.instant();
    loop {
        let mt = read_meshtrust(api, name).await?;
        let status = mt.status.unwrap_or_default();
        let done: Vec<String> = asked
            .iter()
            .filter(|c| {
                status.clusters.iter().any(|s| {
                    s.name == **c && s.renewal_request.as_ref().is_some_and(|r| r.id == id)
                })
            })
            .cloned()
            .collect();
        if done.len() == asked.len() {
            return Ok(done);
        }
        if clock.elapsed(started) >= wait {
            let pending: Vec<&String> = asked.iter().filter(|c| !done.contains(c)).collect();
            bail!(
                "the controller has not carried renewal request {id} out for {} within {}s; it stays requested: check `meshtrust status {name}` (LAST ERROR) and the controller's Events",
                pending
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                wait.as_secs()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

fn print_text(s: &Summary, asked: &[String]) {
    println!(
        "Requested renewal of {} cluster(s) of MeshTrust {} (request {}):",
        asked.len(),
        s.meshtrust,
        s.id
    );
    for (c, serial) in &s.clusters {
        let note = if asked.contains(c) {
            ""
        } else {
            "  (still pending from an earlier request)"
        };
        println!("  {c}  replaces serial {serial}{note}");
    }
    if !s.skipped.is_empty() {
        println!(
            "Skipped (no intermediate on record yet; the controller issues it by itself): {}",
            s.skipped.join(", ")
        );
    }
    match &s.carried_out {
        Some(done) => println!("Carried out by the controller: {}", done.join(", ")),
        None => println!(
            "The controller reissues them at its next round: follow with `meshtrust status {}` (status.clusters[].renewalRequest) or its RenewalRequested Events",
            s.meshtrust
        ),
    }
}

#[cfg(test)]
#[path = "renew_tests.rs"]
mod tests;
