//! The checks of one cluster: pods, gateways, peers, istiod's settings, `cacerts`, the
//! published roots and the network label.

use kube::api::DynamicObject;
use meshtrust_ca::{Severity, fmt_time};
use meshtrust_kube::CACERTS;

use super::{
    CheckOptions, ClusterView, EXPIRY_WARNING, Fix, Line, Status, condition_problem, line,
};
use crate::gateway::{EASTWEST, NETWORK_LABEL};
use crate::observe::{ClusterFacts, PodHealth, ROOT_CONFIGMAP};

/// The checks of one cluster, in the order `istioctl multicluster check` prints them, then
/// meshtrust's own.
pub fn cluster_checks(c: &ClusterView<'_>, opts: &CheckOptions) -> Vec<Line> {
    let f = c.facts;
    vec![
        pods(
            "Pod Check (istiod)",
            "istiod",
            &f.istiod_pods,
            Remedy::Fix(Fix::InstallIstiod),
        ),
        pods(
            "Pod Check (ztunnel)",
            "ztunnel",
            &f.ztunnel_pods,
            Remedy::Advice("install the ztunnel chart"),
        ),
        pods(
            "Pod Check (eastwest gateway)",
            "east-west gateway",
            &f.eastwest_pods,
            Remedy::Fix(Fix::Expose),
        ),
        eastwest_programmed(f),
        peers(f, opts),
        peering_discovery(f),
        cluster_id(f),
        cacerts(c, opts),
        published_roots(c),
        network(f),
    ]
}

fn eastwest_programmed(f: &ClusterFacts) -> Line {
    const CHECK: &str = "Gateway Check";
    match &f.eastwest {
        None => line(
            CHECK,
            Status::Fail,
            format!("no east-west gateway {EASTWEST}"),
        )
        .with_fix(Fix::Expose),
        Some(g) => match condition_problem(&g.data, "Programmed") {
            None => line(CHECK, Status::Pass, "all eastwest gateways programmed"),
            Some(p) => line(
                CHECK,
                Status::Fail,
                format!("{EASTWEST} is not programmed: {p}"),
            ),
        },
    }
}

fn peering_discovery(f: &ClusterFacts) -> Line {
    const CHECK: &str = "Peering Discovery Check";
    match &f.istiod_env {
        None => line(
            CHECK,
            Status::Fail,
            "no istiod Deployment (label app=istiod) to read settings from",
        ),
        Some(env) if env.get("ENABLE_PEERING_DISCOVERY").map(String::as_str) == Some("true") => {
            line(
                CHECK,
                Status::Pass,
                "istiod sets ENABLE_PEERING_DISCOVERY=true",
            )
        }
        Some(_) => line(
            CHECK,
            Status::Fail,
            "istiod does not set ENABLE_PEERING_DISCOVERY=true, so it ignores peer gateways",
        )
        .with_fix(Fix::EnablePeeringDiscovery),
    }
}

fn cluster_id(f: &ClusterFacts) -> Line {
    const CHECK: &str = "Cluster ID Check";
    match f.istiod_cluster_id() {
        Some(id) if id != "Kubernetes" => {
            line(CHECK, Status::Pass, format!("istiod's CLUSTER_ID is {id}"))
        }
        Some(_) => line(
            CHECK,
            Status::Fail,
            "istiod's CLUSTER_ID is the default `Kubernetes`; every cluster needs its own (global.multiCluster.clusterName)",
        ),
        None if f.istiod_env.is_some() => line(
            CHECK,
            Status::Fail,
            "istiod sets no CLUSTER_ID; set global.multiCluster.clusterName",
        ),
        None => line(CHECK, Status::Fail, "istiod is not installed"),
    }
}

fn peers(f: &ClusterFacts, opts: &CheckOptions) -> Line {
    const CHECK: &str = "Peers Check";
    if f.peers.is_empty() {
        return if opts.precheck {
            line(CHECK, Status::Pass, "no peers yet (precheck)")
        } else {
            line(CHECK, Status::Fail, "no istio-remote peer gateways").with_fix(Fix::Link)
        };
    }
    let problems: Vec<String> = f.peers.iter().filter_map(peer_problem).collect();
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

/// What keeps one peer gateway from being connected, as `name: problems`; `None` when
/// nothing does.
fn peer_problem(p: &DynamicObject) -> Option<String> {
    let name = p.metadata.name.clone().unwrap_or_default();
    let issues: Vec<String> = [
        "gloo.solo.io/PeeringSucceeded",
        "gloo.solo.io/PeerConnected",
    ]
    .iter()
    .filter_map(|t| condition_problem(&p.data, t))
    .collect();
    (!issues.is_empty()).then(|| format!("{name}: {}", issues.join(", ")))
}

fn cacerts(c: &ClusterView<'_>, opts: &CheckOptions) -> Line {
    const CHECK: &str = "CA Check (cacerts)";
    let Some(report) = c.report else {
        return line(
            CHECK,
            Status::Fail,
            format!(
                "no {CACERTS} Secret: istiod signs with its own self-signed root, which no other cluster trusts"
            ),
        )
        .with_fix(Fix::DeliverCacerts);
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
                "valid, but the intermediate expires {} (in {} day(s))",
                fmt_time(cert.not_after),
                left.whole_days()
            ),
        )
        .with_fix(Fix::RenewIntermediate);
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
            format!("istio-system has no {NETWORK_LABEL} label"),
        )
        .with_fix(Fix::LabelNetwork);
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
            format!("istio-system is on network {ns} but the east-west gateway says {g}"),
        )
        .with_fix(Fix::ExposeOnNetwork(ns.clone())),
        _ => line(CHECK, Status::Pass, format!("network {ns}")),
    }
}

/// What to do when a component has no pods at all.
enum Remedy {
    /// Advice that needs no meshtrust command, appended to the message.
    Advice(&'static str),
    /// What must happen, for the caller to say how.
    Fix(Fix),
}

fn pods(check: &str, what: &str, pods: &[PodHealth], missing: Remedy) -> Line {
    if pods.is_empty() {
        let none = format!("no {what} pods found");
        return match missing {
            Remedy::Advice(advice) => line(check, Status::Fail, format!("{none}; {advice}")),
            Remedy::Fix(fix) => line(check, Status::Fail, none).with_fix(fix),
        };
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
