//! Command-line advice for the peering commands (`expose`, `link`, `check`,
//! `bootstrap --peering`): peering's errors and check-line fixes say what is wrong and what
//! must happen; this says what to type.

use meshtrust_peering::{Error, Fix};

/// What to do about `e` on the command line, as the text appended to its message (with the
/// punctuation that joins it); `None` when the message says it all.
pub fn advice(e: &Error) -> Option<String> {
    const SEE_VALUES: &str = " (see `meshtrust values`)";
    Some(match e {
        Error::NoIstioNamespace { .. }
        | Error::NoIstiod { .. }
        | Error::DefaultClusterId { .. }
        | Error::NoClusterId { .. } => SEE_VALUES.to_string(),
        Error::NoNetwork { .. } => {
            " and no --network was given; pass --network NET (the value of global.network)"
                .to_string()
        }
        Error::NoGatewayNetwork { context } => {
            format!("; rerun `meshtrust expose --context {context} --network NET`")
        }
        Error::NoEastWestGateway { context, .. } => {
            format!("; run `meshtrust expose --context {context}` first")
        }
        Error::NoAddress { context } => {
            format!("; wait for it (`meshtrust expose --context {context} --wait`) and rerun")
        }
        Error::NoSharedRoot { .. } => ". Give both the same root (`meshtrust bootstrap --contexts …` with one --root), or pass --skip-trust-check".to_string(),
        Error::FieldConflict { .. } => " — pass --force to take them over".to_string(),
        Error::Kube(k) => return Some(super::kube(k).to_string()).filter(|a| !a.is_empty()),
        _ => return None,
    })
}

/// `e` as the user reads it: its message with [`advice`], also for each error it gathers.
pub fn render(e: &Error) -> String {
    let list = |errors: &[Error], separator: &str| {
        errors
            .iter()
            .map(render)
            .collect::<Vec<_>>()
            .join(separator)
    };
    match e {
        Error::Cluster { context, error } => format!("context {context}: {}", render(error)),
        Error::LinkUnreadable { errors } => format!("nothing was linked: {}", list(errors, "; ")),
        Error::LinkRefused { refusals } => {
            format!("nothing was linked:\n  - {}", list(refusals, "\n  - "))
        }
        Error::LinkIncomplete { failed, written } => format!(
            "not every peer gateway was written:\n  - {}\nwritten: {}; rerun `meshtrust link` once those clusters are healthy (writes are server-side applies, safe to repeat)",
            list(failed, "\n  - "),
            if written.is_empty() {
                "none".to_string()
            } else {
                written.join(", ")
            }
        ),
        e => format!("{e}{}", advice(e).unwrap_or_default()),
    }
}

/// `e` as the error a command returns.
pub fn error(e: Error) -> anyhow::Error {
    anyhow::anyhow!(render(&e))
}

/// What to type about `fix`, as the text appended to the message of its check line (with
/// the punctuation that joins it); `None` for a fix this binary has no words for.
pub fn fix_advice(fix: &Fix) -> Option<String> {
    Some(match fix {
        Fix::InstallIstiod => "; install istiod (`meshtrust values` prints its Helm values)".into(),
        Fix::EnablePeeringDiscovery => {
            "; reinstall istiod with `meshtrust values` (platforms.peering.enabled)".into()
        }
        Fix::Expose => "; create it with `meshtrust expose`".into(),
        Fix::LabelNetwork => "; set it with `meshtrust expose --network NET`".into(),
        Fix::ExposeOnNetwork(network) => format!("; rerun `meshtrust expose --network {network}`"),
        Fix::Link => "; link clusters with `meshtrust link`".into(),
        Fix::Relink => "; rerun `meshtrust link`".into(),
        Fix::DeliverCacerts => "; create it with `meshtrust bootstrap` or `meshtrust push`".into(),
        Fix::RenewIntermediate => {
            "; renew it: `meshtrust bootstrap --force`, or run the controller".into()
        }
        Fix::DeliverOneRoot => "; deliver one root to both (`meshtrust bootstrap`), or, if a root rotation skipped a phase, follow docs/rotation.md".into(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use meshtrust_peering::{ClusterFacts, Locality, eastwest, peer};

    use super::*;

    fn with_cluster_id(id: &str) -> ClusterFacts {
        ClusterFacts {
            istiod_env: Some([("CLUSTER_ID".to_string(), id.to_string())].into()),
            ..ClusterFacts::default()
        }
    }

    #[test]
    fn a_destination_without_an_eastwest_gateway_names_the_fix() {
        let e = peer(
            "ctx2",
            &with_cluster_id("cluster2"),
            "istio-eastwest",
            false,
        )
        .unwrap_err();
        let e = render(&e);
        assert!(e.contains("meshtrust expose --context ctx2"), "{e}");
    }

    #[test]
    fn expose_needs_a_network_from_somewhere() {
        let f = with_cluster_id("cluster1");
        let e = eastwest(
            "ctx",
            &f,
            "istio-eastwest",
            None,
            Locality::default(),
            false,
        )
        .unwrap_err();
        let e = render(&e);
        assert!(e.contains("pass --network"), "{e}");
    }

    fn s(v: &str) -> String {
        v.to_string()
    }

    #[test]
    fn errors_read_as_they_did_before_the_library_split() {
        let conflict = || Error::FieldConflict {
            gateway: s("istio-eastwest/istio-eastwest"),
            message: s("conflict"),
        };
        let no_root = |a: &str, b: &str| Error::NoSharedRoot {
            a: s(a),
            b: s(b),
            a_trusts: format!("{a} trusts AA"),
            b_trusts: format!("{b} trusts BB"),
        };
        let cases: Vec<(&str, Error, &str)> = vec![
            (
                "the default cluster ID",
                Error::DefaultClusterId { context: s("c1") },
                "istiod in c1 runs with the default CLUSTER_ID `Kubernetes`: every cluster needs its own — reinstall istiod with global.multiCluster.clusterName (see `meshtrust values`)",
            ),
            (
                "no cluster ID",
                Error::NoClusterId { context: s("c1") },
                "istiod in c1 sets no CLUSTER_ID — reinstall it with global.multiCluster.clusterName (see `meshtrust values`)",
            ),
            (
                "no istiod",
                Error::NoIstiod { context: s("c1") },
                "no istiod Deployment (label app=istiod) in c1, and the east-west gateway is labelled with its cluster ID: install istiod first (see `meshtrust values`)",
            ),
            (
                "no istio namespace",
                Error::NoIstioNamespace {
                    context: s("c1"),
                    namespace: s("istio-system"),
                },
                "c1 has no namespace istio-system: install istiod first (see `meshtrust values`)",
            ),
            (
                "no network for expose",
                Error::NoNetwork { context: s("c1") },
                "c1: istio-system has no topology.istio.io/network label and no --network was given; pass --network NET (the value of global.network)",
            ),
            (
                "no network for a peer",
                Error::NoGatewayNetwork { context: s("c2") },
                "c2: neither its east-west gateway nor istio-system has a topology.istio.io/network label; rerun `meshtrust expose --context c2 --network NET`",
            ),
            (
                "no east-west gateway",
                Error::NoEastWestGateway {
                    context: s("c2"),
                    namespace: s("istio-eastwest"),
                },
                "c2 has no east-west gateway istio-eastwest/istio-eastwest; run `meshtrust expose --context c2` first",
            ),
            (
                "no address yet",
                Error::NoAddress { context: s("c2") },
                "c2's east-west gateway has no address yet (no load balancer IP or hostname, no istio.io/expose-istiod-address annotation); wait for it (`meshtrust expose --context c2 --wait`) and rerun",
            ),
            (
                "a field conflict",
                conflict(),
                "gateway istio-eastwest/istio-eastwest has fields owned by another manager (conflict); nothing was changed — pass --force to take them over",
            ),
            (
                "a field conflict in one of several clusters",
                conflict().in_context("c1"),
                "context c1: gateway istio-eastwest/istio-eastwest has fields owned by another manager (conflict); nothing was changed — pass --force to take them over",
            ),
            (
                "refused links",
                Error::LinkRefused {
                    refusals: vec![no_root("c1", "c3"), no_root("c2", "c3")],
                },
                "nothing was linked:\n  - c1 and c3 share no root CA, so their workloads could not authenticate each other: c1 trusts AA; c3 trusts BB. Give both the same root (`meshtrust bootstrap --contexts …` with one --root), or pass --skip-trust-check\n  - c2 and c3 share no root CA, so their workloads could not authenticate each other: c2 trusts AA; c3 trusts BB. Give both the same root (`meshtrust bootstrap --contexts …` with one --root), or pass --skip-trust-check",
            ),
            (
                "unreadable clusters",
                Error::LinkUnreadable {
                    errors: vec![
                        Error::NoAddress { context: s("c2") }.in_context("c1"),
                        Error::Kube(meshtrust_kube::Error::Internal("x")).in_context("c2"),
                    ],
                },
                "nothing was linked: context c1: c2's east-west gateway has no address yet (no load balancer IP or hostname, no istio.io/expose-istiod-address annotation); wait for it (`meshtrust expose --context c2 --wait`) and rerun; context c2: internal error: x",
            ),
            (
                "a gateway that is not programmed (kubectl advice only)",
                Error::NotProgrammed {
                    namespace: s("istio-eastwest"),
                    name: s("istio-eastwest"),
                    timeout: std::time::Duration::from_secs(1),
                    last: s("no status yet"),
                },
                "gateway istio-eastwest/istio-eastwest was not programmed within 1s: no status yet; check `kubectl -n istio-eastwest describe gateway istio-eastwest`",
            ),
        ];
        for (case, e, want) in cases {
            assert_eq!(render(&e), want, "{case}");
            assert_eq!(format!("{:#}", error(e)), want, "{case}");
        }
    }

    trait InContext {
        fn in_context(self, context: &str) -> Error;
    }

    impl InContext for Error {
        fn in_context(self, context: &str) -> Error {
            Error::Cluster {
                context: context.to_string(),
                error: Box::new(self),
            }
        }
    }

    #[test]
    fn each_fix_reads_as_the_check_line_did_before_the_library_split() {
        let cases: Vec<(&str, Fix, &str)> = vec![
            (
                "no istiod pods found",
                Fix::InstallIstiod,
                "no istiod pods found; install istiod (`meshtrust values` prints its Helm values)",
            ),
            (
                "istiod does not set ENABLE_PEERING_DISCOVERY=true, so it ignores peer gateways",
                Fix::EnablePeeringDiscovery,
                "istiod does not set ENABLE_PEERING_DISCOVERY=true, so it ignores peer gateways; reinstall istiod with `meshtrust values` (platforms.peering.enabled)",
            ),
            (
                "no east-west gateway pods found",
                Fix::Expose,
                "no east-west gateway pods found; create it with `meshtrust expose`",
            ),
            (
                "no east-west gateway istio-eastwest",
                Fix::Expose,
                "no east-west gateway istio-eastwest; create it with `meshtrust expose`",
            ),
            (
                "istio-system has no topology.istio.io/network label",
                Fix::LabelNetwork,
                "istio-system has no topology.istio.io/network label; set it with `meshtrust expose --network NET`",
            ),
            (
                "istio-system is on network net1 but the east-west gateway says net2",
                Fix::ExposeOnNetwork(s("net1")),
                "istio-system is on network net1 but the east-west gateway says net2; rerun `meshtrust expose --network net1`",
            ),
            (
                "no istio-remote peer gateways",
                Fix::Link,
                "no istio-remote peer gateways; link clusters with `meshtrust link`",
            ),
            (
                "c1: peer cluster2 points at 192.0.2.99, but c2's east-west gateway is at 192.0.2.2",
                Fix::Relink,
                "c1: peer cluster2 points at 192.0.2.99, but c2's east-west gateway is at 192.0.2.2; rerun `meshtrust link`",
            ),
            (
                "no cacerts Secret: istiod signs with its own self-signed root, which no other cluster trusts",
                Fix::DeliverCacerts,
                "no cacerts Secret: istiod signs with its own self-signed root, which no other cluster trusts; create it with `meshtrust bootstrap` or `meshtrust push`",
            ),
            (
                "valid, but the intermediate expires 2030-01-11 00:00:00 UTC (in 10 day(s))",
                Fix::RenewIntermediate,
                "valid, but the intermediate expires 2030-01-11 00:00:00 UTC (in 10 day(s)); renew it: `meshtrust bootstrap --force`, or run the controller",
            ),
            (
                "c1 and c2 share no root CA: cross-cluster mTLS between them fails",
                Fix::DeliverOneRoot,
                "c1 and c2 share no root CA: cross-cluster mTLS between them fails; deliver one root to both (`meshtrust bootstrap`), or, if a root rotation skipped a phase, follow docs/rotation.md",
            ),
        ];
        for (fact, fix, want) in cases {
            let advice = fix_advice(&fix).unwrap_or_default();
            assert_eq!(format!("{fact}{advice}"), want, "{fix:?}");
        }
    }
}
