//! `meshtrust status`: what the controller reports, per MeshTrust and cluster.

use std::process::ExitCode;

use anyhow::{Context, Result};
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use meshtrust_ca::duration::human;
use meshtrust_controller::crd::{
    ClusterStatus, Condition, MeshTrust, RenewalRequest, find_condition, parse_timestamp,
};
use meshtrust_issuer::Clock;
use serde::Serialize;
use time::OffsetDateTime;

use crate::args::{Output, StatusArgs};
use crate::output;

#[derive(Serialize)]
struct Row {
    meshtrust: String,
    cluster: String,
    ready: String,
    reason: String,
    not_after: Option<String>,
    time_left: Option<String>,
    renewal_time: Option<String>,
    /// The id of a renewal request (`meshtrust renew`) not yet carried out for this cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    renewal_requested: Option<String>,
    root: Option<String>,
    phase: Option<String>,
    failed_attempts: u32,
    last_error: Option<String>,
}

pub async fn run(args: StatusArgs, clock: &Clock) -> Result<ExitCode> {
    if args.server.server.is_some() {
        return super::inventory::run(&args, clock).await;
    }
    let items = fetch(&args).await?;
    let (rows, all_ready) = rows(&items, clock.now());
    if args.output == Output::Json {
        output::json(&rows)?;
    } else if rows.is_empty() {
        println!("no MeshTrust resources");
    } else {
        print_table(&rows);
    }
    Ok(if all_ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The MeshTrust named by `args`, or all of them.
async fn fetch(args: &StatusArgs) -> Result<Vec<MeshTrust>> {
    let access = args.kube.access();
    let client = access.client(args.context.as_deref()).await?;
    let api: Api<MeshTrust> = Api::all(client);
    Ok(match &args.name {
        Some(n) => vec![api.get(n).await.with_context(|| format!("cannot read MeshTrust {n}"))?],
        None => api
            .list(&ListParams::default())
            .await
            .context("cannot list MeshTrust resources (is the CRD installed? `meshtrust crd | kubectl apply -f -`)")?
            .items,
    })
}

/// One row per cluster (one per MeshTrust not yet reconciled), and whether all are ready.
fn rows(items: &[MeshTrust], now: OffsetDateTime) -> (Vec<Row>, bool) {
    let mut rows = Vec::new();
    let mut all_ready = true;
    for mt in items {
        let status = mt.status.clone().unwrap_or_default();
        let phase = status.rotation.as_ref().map(|r| r.phase.clone());
        if status.clusters.is_empty() {
            all_ready = false;
            rows.push(unreconciled_row(mt, &status.conditions, phase.clone()));
        }
        for c in &status.clusters {
            let ready = find_condition(&c.conditions, Condition::READY);
            all_ready &= ready.is_some_and(|r| r.status.to_string() == "True");
            rows.push(cluster_row(mt, c, phase.clone(), now));
        }
    }
    (rows, all_ready)
}

/// A MeshTrust with no cluster status yet: its overall Ready condition, if any.
fn unreconciled_row(mt: &MeshTrust, conditions: &[Condition], phase: Option<String>) -> Row {
    let overall = find_condition(conditions, Condition::READY);
    Row {
        meshtrust: mt.name_any(),
        cluster: "-".into(),
        ready: overall.map_or("Unknown".into(), |c| c.status.to_string()),
        reason: overall.map_or("NotReconciled".into(), |c| c.reason.clone()),
        not_after: None,
        time_left: None,
        renewal_time: None,
        renewal_requested: None,
        root: None,
        phase,
        failed_attempts: 0,
        last_error: overall.map(|c| c.message.clone()),
    }
}

/// One cluster of a MeshTrust, its time left counted from `now`.
fn cluster_row(
    mt: &MeshTrust,
    c: &ClusterStatus,
    phase: Option<String>,
    now: OffsetDateTime,
) -> Row {
    let ready = find_condition(&c.conditions, Condition::READY);
    let left = parse_timestamp(c.not_after.as_deref()).map(|t| {
        if t <= now {
            "expired".to_string()
        } else {
            human(t - now)
        }
    });
    Row {
        meshtrust: mt.name_any(),
        cluster: c.name.clone(),
        ready: ready.map_or("Unknown".into(), |r| r.status.to_string()),
        reason: ready.map_or(String::new(), |r| r.reason.clone()),
        not_after: c.not_after.clone(),
        time_left: left,
        renewal_time: c.renewal_time.clone(),
        renewal_requested: pending_request(mt, c),
        root: c.trusted_roots.first().map(|f| output::short(f, 17)),
        phase,
        failed_attempts: c.failed_issuance_attempts,
        last_error: c.last_error.clone(),
    }
}

/// The id of `mt`'s renewal request when it names `c` and `c` still holds the intermediate
/// it asks to replace (the controller has not carried it out yet).
fn pending_request(mt: &MeshTrust, c: &ClusterStatus) -> Option<String> {
    let request = RenewalRequest::of(mt)?.ok()?;
    let serial = c.serial.as_deref()?;
    (request.serial_for(&c.name) == Some(serial)).then_some(request.id)
}

/// The rows as a table, `-` for what is unknown, the last error cut to 60 characters; a
/// pending renewal request shows as `requested` in the RENEWAL column.
fn print_table(rows: &[Row]) {
    let mut t = output::table([
        "MESHTRUST",
        "CLUSTER",
        "READY",
        "NOT AFTER",
        "LEFT",
        "RENEWAL",
        "ROOT",
        "PHASE",
        "LAST ERROR",
    ]);
    for r in rows {
        t.add_row([
            r.meshtrust.clone(),
            r.cluster.clone(),
            if r.reason.is_empty() || r.reason == "Ready" {
                r.ready.clone()
            } else {
                format!("{} ({})", r.ready, r.reason)
            },
            r.not_after.clone().unwrap_or_else(|| "-".into()),
            r.time_left.clone().unwrap_or_else(|| "-".into()),
            match &r.renewal_requested {
                Some(_) => "requested".into(),
                None => r.renewal_time.clone().unwrap_or_else(|| "-".into()),
            },
            r.root.clone().unwrap_or_else(|| "-".into()),
            r.phase.clone().unwrap_or_else(|| "-".into()),
            r.last_error
                .as_deref()
                .map(|e| e.chars().take(60).collect())
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    println!("{t}");
}
