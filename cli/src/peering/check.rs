//! The checks of `meshtrust check` — pure: a cluster's facts (and the whole mesh's) in, ✅/⚠️/❌
//! lines out. The same lines as `istioctl multicluster check`, plus what it never checks: the
//! `cacerts` bundle, the roots every cluster trusts, expiry and network consistency.

use std::collections::BTreeMap;

use meshtrust_ca::{BundleReport, Severity, fmt_time};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::gateway::{CLUSTER_LABEL, EASTWEST, NETWORK_LABEL, PEER_PREFIX};
use super::observe::{ClusterFacts, PodHealth, ROOT_CONFIGMAP, service_addresses};
use super::trust::{Agreement, TrustView};
use crate::cluster::secret::CACERTS;
use crate::output::short;

/// Warn when the intermediate expires sooner than this.
pub const EXPIRY_WARNING: Duration = Duration::days(30);

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// ✅
    Pass,
    /// ⚠️: works, needs attention.
    Warn,
    /// ❌: exit non-zero.
    Fail,
}

impl Status {
    /// The mark shown before the line.
    pub fn mark(self) -> &'static str {
        match self {
            Status::Pass => "✅",
            Status::Warn => "⚠️ ",
            Status::Fail => "❌",
        }
    }
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Line {
    /// What was checked, e.g. `Pod Check (istiod)`.
    pub check: String,
    /// Pass, warn or fail.
    pub status: Status,
    /// What was found, and what to do about a failure.
    pub message: String,
}

fn line(check: &str, status: Status, message: impl Into<String>) -> Line {
    Line {
        check: check.to_string(),
        status,
        message: message.into(),
    }
}

/// How the checks run.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Before linking: no peers yet is fine, and peers not connected yet only warn.
    pub precheck: bool,
    /// The time expiry is judged at.
    pub now: OffsetDateTime,
}

/// One cluster, as the checks see it.
pub struct ClusterView<'a> {
    /// Name shown in messages (the context).
    pub name: &'a str,
    /// What was read.
    pub facts: &'a ClusterFacts,
    /// `cacerts` verified at `now`, if present.
    pub report: Option<&'a BundleReport>,
    /// The roots it trusts.
    pub trust: &'a TrustView,
}

fn pods(check: &str, what: &str, pods: &[PodHealth], hint: &str) -> Line {
    if pods.is_empty() {
        return line(check, Status::Fail, format!("no {what} pods found; {hint}"));
    }
    let unhealthy: Vec<String> = pods
        .iter()
        .filter(|p| p.phase != "Running" || !p.ready)
        .map(|p| {
            let state = if p.phase == "Running" {
                "not ready".to_string()
            } else {
                p.phase.clone()
            };
            format!("{} ({state})", p.name)
        })
        .collect();
    if unhealthy.is_empty() {
        line(check, Status::Pass, "all pods healthy")
    } else {
        line(
            check,
            Status::Fail,
            format!("unhealthy: {}", unhealthy.join(", ")),
        )
    }
}

/// The status of condition `type_` of an object, with its reason and message.
pub fn condition(object: &serde_json::Value, type_: &str) -> Option<(String, String, String)> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or("Unknown").to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            )
        })
}

fn condition_problem(object: &serde_json::Value, type_: &str) -> Option<String> {
    match condition(object, type_) {
        Some((status, _, _)) if status == "True" => None,
        Some((status, reason, message)) => Some(format!(
            "{type_}={status}{}{}",
            if reason.is_empty() {
                String::new()
            } else {
                format!(" ({reason})")
            },
            if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            }
        )),
        None => Some(format!("{type_} not reported yet")),
    }
}

/// The checks of one cluster, in the order `istioctl multicluster check` prints them, then
/// meshtrust's own.
pub fn cluster_checks(c: &ClusterView<'_>, opts: &Options) -> Vec<Line> {
    let f = c.facts;
    let mut out = vec![
        pods(
            "Pod Check (istiod)",
            "istiod",
            &f.istiod_pods,
            "install istiod (`meshtrust values` prints its Helm values)",
        ),
        pods(
            "Pod Check (ztunnel)",
            "ztunnel",
            &f.ztunnel_pods,
            "install the ztunnel chart",
        ),
        pods(
            "Pod Check (eastwest gateway)",
            "east-west gateway",
            &f.eastwest_pods,
            "create it with `meshtrust expose`",
        ),
    ];

    out.push(match &f.eastwest {
        None => line(
            "Gateway Check",
            Status::Fail,
            format!("no east-west gateway {EASTWEST}; create it with `meshtrust expose`"),
        ),
        Some(g) => match condition_problem(&g.data, "Programmed") {
            None => line(
                "Gateway Check",
                Status::Pass,
                "all eastwest gateways programmed",
            ),
            Some(p) => line(
                "Gateway Check",
                Status::Fail,
                format!("{EASTWEST} is not programmed: {p}"),
            ),
        },
    });

    out.push(peers(f, opts));

    out.push(match &f.istiod_env {
        None => line(
            "Peering Discovery Check",
            Status::Fail,
            "no istiod Deployment (label app=istiod) to read settings from",
        ),
        Some(env) if env.get("ENABLE_PEERING_DISCOVERY").map(String::as_str) == Some("true") => {
            line(
                "Peering Discovery Check",
                Status::Pass,
                "istiod sets ENABLE_PEERING_DISCOVERY=true",
            )
        }
        Some(_) => line(
            "Peering Discovery Check",
            Status::Fail,
            "istiod does not set ENABLE_PEERING_DISCOVERY=true, so it ignores peer gateways; reinstall istiod with `meshtrust values` (platforms.peering.enabled)",
        ),
    });

    out.push(match f.istiod_cluster_id() {
        Some(id) if id != "Kubernetes" => line(
            "Cluster ID Check",
            Status::Pass,
            format!("istiod's CLUSTER_ID is {id}"),
        ),
        Some(_) => line(
            "Cluster ID Check",
            Status::Fail,
            "istiod's CLUSTER_ID is the default `Kubernetes`; every cluster needs its own (global.multiCluster.clusterName)",
        ),
        None if f.istiod_env.is_some() => line(
            "Cluster ID Check",
            Status::Fail,
            "istiod sets no CLUSTER_ID; set global.multiCluster.clusterName",
        ),
        None => line("Cluster ID Check", Status::Fail, "istiod is not installed"),
    });

    out.push(cacerts(c, opts));
    out.push(published_roots(c));
    out.push(network(f));
    out
}

fn peers(f: &ClusterFacts, opts: &Options) -> Line {
    const CHECK: &str = "Peers Check";
    if f.peers.is_empty() {
        return if opts.precheck {
            line(CHECK, Status::Pass, "no peers yet (precheck)")
        } else {
            line(
                CHECK,
                Status::Fail,
                "no istio-remote peer gateways; link clusters with `meshtrust link`",
            )
        };
    }
    let problems: Vec<String> = f
        .peers
        .iter()
        .filter_map(|p| {
            let name = p.metadata.name.clone().unwrap_or_default();
            let issues: Vec<String> = [
                "gloo.solo.io/PeeringSucceeded",
                "gloo.solo.io/PeerConnected",
            ]
            .iter()
            .filter_map(|t| condition_problem(&p.data, t))
            .collect();
            (!issues.is_empty()).then(|| format!("{name}: {}", issues.join(", ")))
        })
        .collect();
    if problems.is_empty() {
        line(CHECK, Status::Pass, "all clusters connected")
    } else {
        let status = if opts.precheck {
            Status::Warn
        } else {
            Status::Fail
        };
        line(CHECK, status, problems.join("; "))
    }
}

fn cacerts(c: &ClusterView<'_>, opts: &Options) -> Line {
    const CHECK: &str = "CA Check (cacerts)";
    let Some(report) = c.report else {
        return line(
            CHECK,
            Status::Fail,
            format!(
                "no {CACERTS} Secret: istiod signs with its own self-signed root, which no other cluster trusts; create it with `meshtrust bootstrap` or `meshtrust push`"
            ),
        );
    };
    let errors: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.message.as_str())
        .collect();
    if !errors.is_empty() {
        return line(
            CHECK,
            Status::Fail,
            format!("{CACERTS} would be refused: {}", errors.join("; ")),
        );
    }
    let Some(cert) = &report.ca_cert else {
        return line(
            CHECK,
            Status::Fail,
            format!("{CACERTS} has no CA certificate"),
        );
    };
    let left = cert.not_after - opts.now;
    if left < EXPIRY_WARNING {
        return line(
            CHECK,
            Status::Warn,
            format!(
                "valid, but the intermediate expires {} (in {} day(s)); renew it: `meshtrust bootstrap --force`, or run the controller",
                fmt_time(cert.not_after),
                left.whole_days()
            ),
        );
    }
    line(
        CHECK,
        Status::Pass,
        format!(
            "valid; intermediate expires {} (in {} days)",
            fmt_time(cert.not_after),
            left.whole_days()
        ),
    )
}

fn published_roots(c: &ClusterView<'_>) -> Line {
    const CHECK: &str = "Root Check (istio-ca-root-cert)";
    if let Some(p) = c.trust.problems.first() {
        return line(CHECK, Status::Fail, p.clone());
    }
    match c.trust.published_agrees() {
        Some(true) => line(
            CHECK,
            Status::Pass,
            format!("istiod publishes the roots of {CACERTS}"),
        ),
        Some(false) => line(
            CHECK,
            Status::Fail,
            format!(
                "istiod publishes other roots than {CACERTS} holds, so it has not loaded {CACERTS} (it reads it at start-up); restart it: `kubectl -n istio-system rollout restart deployment/istiod`"
            ),
        ),
        None if c.trust.published_roots.is_none() => line(
            CHECK,
            Status::Warn,
            format!("{ROOT_CONFIGMAP} is not published yet (is istiod running?)"),
        ),
        None => line(
            CHECK,
            Status::Fail,
            format!(
                "istiod publishes a root, but there is no {CACERTS} behind it (self-signed CA)"
            ),
        ),
    }
}

fn network(f: &ClusterFacts) -> Line {
    const CHECK: &str = "Network Check";
    let Some(ns) = &f.network_label else {
        return line(
            CHECK,
            Status::Fail,
            format!(
                "istio-system has no {NETWORK_LABEL} label; set it with `meshtrust expose --network NET`"
            ),
        );
    };
    let gw = f
        .eastwest
        .as_ref()
        .and_then(|g| g.metadata.labels.as_ref())
        .and_then(|l| l.get(NETWORK_LABEL));
    match gw {
        Some(g) if g != ns => line(
            CHECK,
            Status::Fail,
            format!(
                "istio-system is on network {ns} but the east-west gateway says {g}; rerun `meshtrust expose --network {ns}`"
            ),
        ),
        _ => line(CHECK, Status::Pass, format!("network {ns}")),
    }
}

/// Checks across clusters: shared roots, unique cluster IDs, and peer gateways that still
/// point at what their destination really is.
pub fn mesh_checks(clusters: &[ClusterView<'_>], agreement: &Agreement) -> Vec<Line> {
    let mut out = Vec::new();
    out.push(match agreement {
        Agreement::Same { roots } => line(
            "Trust Check",
            Status::Pass,
            format!(
                "every cluster trusts the same root ({})",
                roots.iter().map(|r| short(r, 17)).collect::<Vec<_>>().join(", ")
            ),
        ),
        Agreement::Rotating { common, phase } => line(
            "Trust Check",
            Status::Warn,
            format!(
                "root sets differ but every pair shares {}: {phase}",
                common.iter().map(|r| short(r, 17)).collect::<Vec<_>>().join(", ")
            ),
        ),
        Agreement::Split { pair: (a, b) } => line(
            "Trust Check",
            Status::Fail,
            format!("{a} and {b} share no root CA: cross-cluster mTLS between them fails; deliver one root to both (`meshtrust bootstrap`), or, if a root rotation skipped a phase, follow docs/rotation.md"),
        ),
        Agreement::Unknown { clusters } => line(
            "Trust Check",
            Status::Fail,
            format!("no roots found in {}: no {CACERTS} and no {ROOT_CONFIGMAP}", clusters.join(", ")),
        ),
    });

    let mut ids: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for c in clusters {
        if let Some(id) = c.facts.istiod_cluster_id() {
            ids.entry(id).or_default().push(c.name);
        }
    }
    let dupes: Vec<String> = ids
        .iter()
        .filter(|(_, names)| names.len() > 1)
        .map(|(id, names)| format!("{id} ({})", names.join(", ")))
        .collect();
    out.push(if dupes.is_empty() {
        line(
            "Cluster ID Uniqueness Check",
            Status::Pass,
            "every cluster has its own ID",
        )
    } else {
        line(
            "Cluster ID Uniqueness Check",
            Status::Fail,
            format!("several clusters share a CLUSTER_ID: {}", dupes.join("; ")),
        )
    });

    let mut stale = Vec::new();
    for c in clusters {
        for p in &c.facts.peers {
            let Some(dst_id) = p
                .metadata
                .name
                .as_deref()
                .and_then(|n| n.strip_prefix(PEER_PREFIX))
            else {
                continue;
            };
            let Some(dst) = clusters
                .iter()
                .find(|d| d.facts.istiod_cluster_id() == Some(dst_id))
            else {
                continue;
            };
            let label = |k: &str| p.metadata.labels.as_ref().and_then(|l| l.get(k)).cloned();
            if let Some(net) = &dst.facts.network_label
                && label(NETWORK_LABEL).as_ref() != Some(net)
            {
                stale.push(format!(
                    "{}: peer {dst_id} says network {}, {} is on {net}",
                    c.name,
                    label(NETWORK_LABEL).unwrap_or_else(|| "(none)".into()),
                    dst.name
                ));
            }
            if label(CLUSTER_LABEL).as_deref() != Some(dst_id) {
                stale.push(format!(
                    "{}: peer {dst_id} has a wrong {CLUSTER_LABEL} label",
                    c.name
                ));
            }
            let have: Vec<String> = p.data["spec"]["addresses"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x["value"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let want: Vec<String> = dst
                .facts
                .eastwest_service
                .as_ref()
                .map(service_addresses)
                .unwrap_or_default()
                .iter()
                .map(|a| a.value().to_string())
                .collect();
            if !want.is_empty() && have != want {
                stale.push(format!(
                    "{}: peer {dst_id} points at {}, but {}'s east-west gateway is at {}; rerun `meshtrust link`",
                    c.name,
                    have.join(","),
                    dst.name,
                    want.join(",")
                ));
            }
        }
    }
    out.push(if stale.is_empty() {
        line(
            "Peer Consistency Check",
            Status::Pass,
            "peer gateways match their destinations' network, ID and address",
        )
    } else {
        line("Peer Consistency Check", Status::Fail, stale.join("; "))
    });
    out
}
