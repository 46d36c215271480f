//! How the peering commands report: the `check` report as text (or JSON, by the caller),
//! with the command-line advice added to its lines first.

use meshtrust_peering::{CheckReport, Line};

use crate::advice::peering::{fix_advice, render};

/// Adds the command-line advice to a report before it is printed or serialized: to every
/// line with a [`Fix`], what to type about it (the fix is used up, so advice is added once);
/// to the `Cluster Access` line of every cluster that could not be read, its error's advice.
pub fn add_advice(report: &mut CheckReport) {
    for c in &mut report.clusters {
        if let Some(e) = &c.unreadable {
            for l in &mut c.checks {
                l.message = render(e);
            }
        }
        c.checks.iter_mut().for_each(advise);
    }
    report.mesh.iter_mut().for_each(advise);
}

/// Appends to `l`'s message what to type about its fix, if it has one.
fn advise(l: &mut Line) {
    if let Some(advice) = l.fix.take().as_ref().and_then(fix_advice) {
        l.message.push_str(&advice);
    }
}

/// Prints a report as `istioctl multicluster check` does, one section per cluster.
pub fn print(report: &CheckReport) {
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

#[cfg(test)]
mod tests {
    use meshtrust_peering::{ClusterFacts, Error, Fix};

    use super::*;

    fn s(v: &str) -> String {
        v.to_string()
    }

    #[test]
    fn an_unreadable_cluster_in_a_check_report_gets_the_advice() {
        let unreadable = Error::Cluster {
            context: s("c1"),
            error: Box::new(Error::Kube(meshtrust_kube::Error::Access {
                reason: s("no kubeconfig found"),
                no_kubeconfig: true,
            })),
        };
        let mut report = CheckReport {
            clusters: vec![meshtrust_peering::ClusterReport {
                context: s("c1"),
                checks: vec![meshtrust_peering::Line {
                    check: s("Cluster Access"),
                    status: meshtrust_peering::Status::Fail,
                    message: unreadable.to_string(),
                    fix: None,
                }],
                unreadable: Some(unreadable),
            }],
            mesh: vec![],
            ok: false,
        };
        add_advice(&mut report);
        assert_eq!(
            report.clusters[0].checks[0].message,
            "context c1: no kubeconfig found; pass --kubeconfig"
        );
    }

    fn report(
        checks: Vec<meshtrust_peering::Line>,
        mesh: Vec<meshtrust_peering::Line>,
    ) -> CheckReport {
        CheckReport {
            clusters: vec![meshtrust_peering::ClusterReport {
                context: s("c1"),
                checks,
                unreadable: None,
            }],
            mesh,
            ok: false,
        }
    }

    #[test]
    fn a_fix_is_appended_to_cluster_and_mesh_lines_once() {
        let l = meshtrust_peering::Line {
            check: s("Peers Check"),
            status: meshtrust_peering::Status::Fail,
            message: s("no istio-remote peer gateways"),
            fix: Some(Fix::Link),
        };
        let mut r = report(vec![l.clone()], vec![l]);
        add_advice(&mut r);
        add_advice(&mut r);
        let want = "no istio-remote peer gateways; link clusters with `meshtrust link`";
        assert_eq!(r.clusters[0].checks[0].message, want);
        assert_eq!(r.mesh[0].message, want, "mesh lines too");
    }

    #[test]
    fn a_cluster_with_nothing_installed_reads_as_before_in_text_and_json() {
        use meshtrust_peering::{CheckOptions, ClusterView, TrustView, cluster_checks};
        let facts = ClusterFacts::default();
        let trust = TrustView::default();
        let view = ClusterView {
            name: "c1",
            facts: &facts,
            report: None,
            trust: &trust,
        };
        let opts = CheckOptions {
            precheck: false,
            now: time::OffsetDateTime::UNIX_EPOCH,
        };
        let mut r = report(cluster_checks(&view, &opts), vec![]);
        add_advice(&mut r);
        add_advice(&mut r);
        let messages: Vec<&str> = r.clusters[0]
            .checks
            .iter()
            .map(|l| l.message.as_str())
            .collect();
        assert_eq!(
            messages,
            [
                "no istiod pods found; install istiod (`meshtrust values` prints its Helm values)",
                "no ztunnel pods found; install the ztunnel chart",
                "no east-west gateway pods found; create it with `meshtrust expose`",
                "no east-west gateway istio-eastwest; create it with `meshtrust expose`",
                "no istio-remote peer gateways; link clusters with `meshtrust link`",
                "no istiod Deployment (label app=istiod) to read settings from",
                "istiod is not installed",
                "no cacerts Secret: istiod signs with its own self-signed root, which no other cluster trusts; create it with `meshtrust bootstrap` or `meshtrust push`",
                "istio-ca-root-cert is not published yet (is istiod running?)",
                "istio-system has no topology.istio.io/network label; set it with `meshtrust expose --network NET`",
            ]
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json["clusters"][0]["checks"][4],
            serde_json::json!({
                "check": "Peers Check",
                "status": "fail",
                "message": "no istio-remote peer gateways; link clusters with `meshtrust link`"
            })
        );
    }
}
