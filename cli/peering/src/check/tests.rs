//! The check lines state facts and a typed [`Fix`]; what to type about a fix is the binary's
//! (its wording is asserted in cli/src/cmd/report.rs).

use kube::api::DynamicObject;
use meshtrust_ca::{
    BundleFormat, BundleReport, ClusterName, IntermediateParams, PrivateKey, RootParams,
    VerifyOptions, verify_bundle,
};
use serde_json::json;
use time::{Duration, OffsetDateTime, macros::datetime};

use super::*;
use crate::trust::{Agreement, TrustView};

const NOW: OffsetDateTime = datetime!(2030-01-01 00:00 UTC);

fn opts() -> CheckOptions {
    CheckOptions {
        precheck: false,
        now: NOW,
    }
}

fn view<'a>(
    name: &'a str,
    facts: &'a ClusterFacts,
    report: Option<&'a BundleReport>,
    trust: &'a TrustView,
) -> ClusterView<'a> {
    ClusterView {
        name,
        facts,
        report,
        trust,
    }
}

/// A Gateway-like object named `name` with `labels` and `spec`.
fn object(name: &str, labels: serde_json::Value, spec: serde_json::Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }))
    .unwrap()
}

/// Cluster `id` on network `net`, its east-west gateway at `ip`.
fn exposed(id: &str, net: &str, ip: &str) -> ClusterFacts {
    ClusterFacts {
        istiod_env: Some([("CLUSTER_ID".to_string(), id.to_string())].into()),
        network_label: Some(net.into()),
        eastwest: Some(object(
            "istio-eastwest",
            json!({ "topology.istio.io/network": net }),
            json!({}),
        )),
        eastwest_service: Some(
            serde_json::from_value(json!({
                "metadata": {"name": "istio-eastwest"},
                "status": {"loadBalancer": {"ingress": [{"ip": ip}]}}
            }))
            .unwrap(),
        ),
        ..ClusterFacts::default()
    }
}

/// A peer gateway for cluster `id` on network `net`, pointing at `ip`.
fn peer_for(id: &str, net: &str, ip: &str) -> DynamicObject {
    object(
        &format!("istio-remote-peer-{id}"),
        json!({ "topology.istio.io/network": net, "topology.istio.io/cluster": id }),
        json!({ "addresses": [{ "type": "IPAddress", "value": ip }] }),
    )
}

/// A `cacerts` whose intermediate has `left` to live at [`NOW`], verified at [`NOW`].
fn expiring_cacerts(left: Duration) -> BundleReport {
    let then = NOW - Duration::days(300);
    let root = RootParams::default().self_signed(then).unwrap();
    let mut params = IntermediateParams::new(ClusterName::new("c1").unwrap());
    params.validity = Duration::days(300) + left;
    let key = PrivateKey::generate(params.key_type).unwrap();
    let signed = root
        .sign_intermediate(&params.csr(&key).unwrap(), &params.profile(), then)
        .unwrap();
    let files = root
        .cacerts(signed.certificate, key)
        .bundle_files(BundleFormat::Istio);
    verify_bundle(&files, &VerifyOptions::at(NOW))
}

fn find<'a>(lines: &'a [Line], check: &str) -> &'a Line {
    lines
        .iter()
        .find(|l| l.check == check)
        .unwrap_or_else(|| panic!("no {check} in {lines:?}"))
}

/// Every line, of every case below, that the checks make with a fix or advice of their own.
fn every_advising_line() -> Vec<Line> {
    let trust = TrustView::default();
    let mut lines = cluster_checks(&view("c1", &ClusterFacts::default(), None, &trust), &opts());
    let mut discovery_off = exposed("c1", "net1", "192.0.2.1");
    discovery_off.eastwest.as_mut().unwrap().metadata.labels =
        Some([(crate::NETWORK_LABEL.to_string(), "net2".to_string())].into());
    let expiring = expiring_cacerts(Duration::days(10));
    let mut disagreeing = TrustView::new(&discovery_off, Some(&expiring));
    disagreeing.published_roots = Some(vec!["SELF-SIGNED".into()]);
    lines.extend(cluster_checks(
        &view("c1", &discovery_off, Some(&expiring), &disagreeing),
        &opts(),
    ));
    let mut c1 = exposed("cluster1", "net1", "192.0.2.1");
    c1.peers = vec![peer_for("cluster2", "net9", "192.0.2.99")];
    let c2 = exposed("cluster2", "net2", "192.0.2.2");
    let split = Agreement::Split {
        pair: ("c1".into(), "c2".into()),
    };
    lines.extend(mesh_checks(
        &[view("c1", &c1, None, &trust), view("c2", &c2, None, &trust)],
        &split,
    ));
    lines
}

#[test]
fn each_failure_states_the_fact_and_names_its_fix() {
    let lines = every_advising_line();
    let cases: Vec<(&str, &str, Option<Fix>)> = vec![
        (
            "Pod Check (istiod)",
            "no istiod pods found",
            Some(Fix::InstallIstiod),
        ),
        (
            "Pod Check (ztunnel)",
            "no ztunnel pods found; install the ztunnel chart",
            None,
        ),
        (
            "Pod Check (eastwest gateway)",
            "no east-west gateway pods found",
            Some(Fix::Expose),
        ),
        (
            "Gateway Check",
            "no east-west gateway istio-eastwest",
            Some(Fix::Expose),
        ),
        (
            "Peers Check",
            "no istio-remote peer gateways",
            Some(Fix::Link),
        ),
        (
            "CA Check (cacerts)",
            "no cacerts Secret: istiod signs with its own self-signed root, which no other cluster trusts",
            Some(Fix::DeliverCacerts),
        ),
        (
            "Network Check",
            "istio-system has no topology.istio.io/network label",
            Some(Fix::LabelNetwork),
        ),
        (
            "Trust Check",
            "c1 and c2 share no root CA: cross-cluster mTLS between them fails",
            Some(Fix::DeliverOneRoot),
        ),
        (
            "Peer Consistency Check",
            "c1: peer cluster2 says network net9, c2 is on net2; c1: peer cluster2 points at 192.0.2.99, but c2's east-west gateway is at 192.0.2.2",
            Some(Fix::Relink),
        ),
    ];
    for (check, message, fix) in cases {
        let l = find(&lines, check);
        assert_eq!((l.message.as_str(), &l.fix), (message, &fix), "{check}");
    }
    let second = &lines[10..20];
    let discovery = find(second, "Peering Discovery Check");
    assert_eq!(
        (discovery.message.as_str(), &discovery.fix),
        (
            "istiod does not set ENABLE_PEERING_DISCOVERY=true, so it ignores peer gateways",
            &Some(Fix::EnablePeeringDiscovery)
        )
    );
    let network = find(second, "Network Check");
    assert_eq!(
        (network.message.as_str(), &network.fix),
        (
            "istio-system is on network net1 but the east-west gateway says net2",
            &Some(Fix::ExposeOnNetwork("net1".into()))
        )
    );
    let expiry = find(second, "CA Check (cacerts)");
    assert_eq!(expiry.status, Status::Warn, "{expiry:?}");
    assert!(
        expiry
            .message
            .starts_with("valid, but the intermediate expires ")
            && expiry.message.ends_with(" (in 10 day(s))"),
        "{expiry:?}"
    );
    assert_eq!(expiry.fix, Some(Fix::RenewIntermediate));
}

#[test]
fn check_lines_state_facts_and_never_advise_a_command_line() {
    let lines = every_advising_line();
    assert!(lines.iter().filter(|l| l.fix.is_some()).count() >= 11);
    for l in &lines {
        let m = &l.message;
        assert!(!m.contains("`meshtrust ") && !m.contains("--"), "{l:?}");
    }
    // Advice that needs no meshtrust command stays in the message.
    let restart = find(&lines[10..20], "Root Check (istio-ca-root-cert)");
    assert!(
        restart
            .message
            .ends_with("restart it: `kubectl -n istio-system rollout restart deployment/istiod`"),
        "{restart:?}"
    );
    assert_eq!(restart.fix, None);
}

#[test]
fn a_fix_is_never_serialized() {
    let l = line("Peers Check", Status::Fail, "no istio-remote peer gateways").with_fix(Fix::Link);
    assert_eq!(
        serde_json::to_value(&l).unwrap(),
        json!({"check": "Peers Check", "status": "fail", "message": "no istio-remote peer gateways"})
    );
}

#[test]
fn a_peer_pointing_at_the_right_address_needs_no_relink() {
    let trust = TrustView::default();
    let mut c1 = exposed("cluster1", "net1", "192.0.2.1");
    c1.peers = vec![peer_for("cluster2", "net9", "192.0.2.2")];
    let c2 = exposed("cluster2", "net2", "192.0.2.2");
    let same = Agreement::Same { roots: vec![] };
    let lines = mesh_checks(
        &[view("c1", &c1, None, &trust), view("c2", &c2, None, &trust)],
        &same,
    );
    let l = find(&lines, "Peer Consistency Check");
    assert_eq!(l.status, Status::Fail);
    assert_eq!(
        l.message,
        "c1: peer cluster2 says network net9, c2 is on net2"
    );
    assert_eq!(l.fix, None);
}
