//! `meshtrust status --server URL`: a `meshtrust serve`'s inventory (admin API).

use std::process::ExitCode;

use anyhow::{Context, Result};
use meshtrust_ca::duration::human;
use meshtrust_issuer::Clock;
use meshtrust_issuer::server::ServiceClient;
use meshtrust_issuer::server::api::{ClusterEntry, ClusterList, ClusterState, RotationStatus};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use crate::args::{Output, StatusArgs};
use crate::output;

pub async fn run(args: &StatusArgs, clock: &Clock) -> Result<ExitCode> {
    let config = args.server.config()?;
    let path = args.admin_token_file.as_ref().ok_or_else(|| {
        anyhow::anyhow!("status --server needs --admin-token-file FILE (the service's admin token)")
    })?;
    let token = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the admin token", path.display()))?
            .trim()
            .to_string(),
    );
    let client = ServiceClient::new(&config.url, &config.trust, config.timeout)?;
    let list = client.clusters(&token).await?;
    let rotation = client.rotation(&token).await?;
    if args.output == Output::Json {
        output::json(&Inventory {
            list: &list,
            rotation: rotation.as_ref(),
        })?;
    } else {
        if list.clusters.is_empty() {
            println!("no cluster has enrolled with {}", config.url);
        } else {
            print_table(&list.clusters, clock.now());
        }
        if let Some(rotation) = &rotation {
            print_rotation(rotation);
        }
    }
    let now = clock.now();
    let all_valid = list.clusters.iter().all(|c| {
        c.state == ClusterState::Enrolled
            && OffsetDateTime::parse(&c.not_after, &Rfc3339).is_ok_and(|t| t > now)
    });
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `-o json`: the inventory, and the rotation in flight.
#[derive(serde::Serialize)]
struct Inventory<'a> {
    #[serde(flatten)]
    list: &'a ClusterList,
    #[serde(skip_serializing_if = "Option::is_none")]
    rotation: Option<&'a RotationStatus>,
}

/// Whether istiod publishes the roots `cacerts` holds, by the cluster's last report.
fn istiod(c: &ClusterEntry) -> &'static str {
    let Some(report) = c.reported.as_ref().map(|r| &r.report) else {
        return "unreported";
    };
    match report.istiod_loaded() {
        None => "no istio-ca-root-cert",
        Some(true) => "loaded",
        Some(false) => "pending",
    }
}

fn print_rotation(rotation: &RotationStatus) {
    let phase = serde_json::to_value(rotation.phase)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    println!(
        "\nroot rotation {} → {}: phase {phase}{}",
        output::short(&rotation.from_root, 16),
        output::short(&rotation.to_root, 16),
        if rotation.open { "" } else { ", waiting" }
    );
    const SHOWN: usize = 10;
    for w in rotation.waiting_for.iter().take(SHOWN) {
        println!("  - {}", w.message);
    }
    if rotation.waiting_for.len() > SHOWN {
        println!(
            "  … and {} more (-o json lists them all)",
            rotation.waiting_for.len() - SHOWN
        );
    }
}

fn print_table(clusters: &[ClusterEntry], now: OffsetDateTime) {
    let mut t = output::table([
        "CLUSTER",
        "STATE",
        "SERIAL",
        "NOT AFTER",
        "LEFT",
        "LAST SEEN",
        "ROOTS",
        "ISTIOD",
    ]);
    for c in clusters {
        let left = OffsetDateTime::parse(&c.not_after, &Rfc3339)
            .map(|t| human(t - now))
            .unwrap_or_else(|_| "-".into());
        t.add_row([
            c.name.clone(),
            match c.state {
                ClusterState::Enrolled => "enrolled".to_string(),
                ClusterState::Revoked => "revoked".to_string(),
            },
            output::short(&c.serial, 16),
            c.not_after.clone(),
            left,
            c.last_seen.clone(),
            c.roots
                .iter()
                .map(|r| output::short(r, 12))
                .collect::<Vec<_>>()
                .join(", "),
            istiod(c).to_string(),
        ]);
    }
    println!("{t}");
}
