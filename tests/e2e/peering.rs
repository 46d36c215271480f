//! End to end on the loopback multi-cluster harness: `expose`, `link`, `check` and
//! `bootstrap --peering`, driving the built binary over real HTTP. The harness plays the parts
//! a real cluster's controllers would (istiod publishing its roots, the gateway controller
//! creating the Service and reporting `Programmed`, the peering controller reporting
//! `PeerConnected`) through explicit helpers, so every test says what the cluster did.

use std::process::{Command, Output};

use base64::Engine;
use meshtrust_testkit::apiserver::{Cluster, Fault, FaultRule, Harness, Method};
use meshtrust_testkit::text;
use serde_json::{Value, json};

const GW: &str = "gateway.networking.k8s.io/v1";

/// Runs meshtrust; a failure's output must read without Rust Debug text (issue 13), so
/// every refusal this suite provokes is checked for it.
fn meshtrust(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    if !out.status.success() {
        let shown = text(&out);
        if let Some(debug) = meshtrust_testkit::debug_text(&shown) {
            panic!("meshtrust {args:?} failed with Debug text ({debug}):\n{shown}");
        }
    }
    out
}

struct Mesh {
    harness: Harness,
    work: tempfile::TempDir,
}

impl Mesh {
    /// Clusters with Istio installed (istiod, ztunnel) but no trust and no gateways yet.
    fn new(clusters: &[&str]) -> Mesh {
        let mesh = Mesh {
            harness: Harness::start(clusters),
            work: tempfile::tempdir().unwrap(),
        };
        for c in clusters {
            install_istio(&mesh.cluster(c), c);
        }
        mesh
    }

    fn cluster(&self, name: &str) -> Cluster {
        self.harness.cluster(name)
    }

    fn kubeconfig(&self) -> String {
        self.harness.kubeconfig_path().display().to_string()
    }

    /// Runs meshtrust with `--kubeconfig` appended.
    fn run(&self, args: &[&str]) -> Output {
        let kc = self.kubeconfig();
        let mut all = args.to_vec();
        all.extend(["--kubeconfig", &kc, "--request-timeout", "5s"]);
        meshtrust(&all)
    }

    /// `bootstrap` trust into `contexts` from the root in `root` (created on first use).
    fn trust(&self, contexts: &str, root: &str) {
        let root = self.work.path().join(root).display().to_string();
        let out = self.run(&[
            "bootstrap",
            "--contexts",
            contexts,
            "--root-out",
            &root,
            "--network-from-cluster-name",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        for c in contexts.split(',') {
            publish_roots(&self.cluster(c));
        }
    }

    /// Trust, expose and the gateway controller's part, for every cluster.
    fn ready_to_link(&self, clusters: &[&str]) {
        self.trust(&clusters.join(","), "root");
        for (i, c) in clusters.iter().enumerate() {
            let out = self.run(&["expose", "--context", c]);
            assert!(out.status.success(), "{}", text(&out));
            run_gateway_controller(&self.cluster(c), &format!("192.0.2.{}", i + 1));
        }
    }
}

/// What an Istio install leaves in a cluster: istiod (with its cluster ID and peering
/// discovery on), its mesh config, a ztunnel, all healthy.
fn install_istio(c: &Cluster, cluster_id: &str) {
    c.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}}));
    c.seed(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "istiod", "namespace": "istio-system", "labels": {"app": "istiod"}},
        "spec": {
            "selector": {"matchLabels": {"app": "istiod"}},
            "template": {
                "metadata": {"labels": {"app": "istiod"}},
                "spec": {"containers": [{"name": "discovery", "image": "istio/pilot", "env": [
                    {"name": "CLUSTER_ID", "value": cluster_id},
                    {"name": "ENABLE_PEERING_DISCOVERY", "value": "true"},
                    {"name": "PILOT_ENABLE_IP_AUTOALLOCATE", "value": "true"}
                ]}]}
            }
        }
    }));
    c.seed(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "istio", "namespace": "istio-system"},
        "data": {"mesh": format!("defaultConfig:\n  proxyMetadata: {{}}\ntrustDomain: {cluster_id}.local\n")}
    }));
    healthy_pod(
        c,
        "istio-system",
        "istiod-7d9f",
        json!({"app": "istiod"}),
        None,
    );
    healthy_pod(
        c,
        "istio-system",
        "ztunnel-x2k4",
        json!({"app": "ztunnel"}),
        None,
    );
}

fn healthy_pod(c: &Cluster, ns: &str, name: &str, labels: Value, sa: Option<&str>) {
    let mut spec = json!({"containers": [{"name": "main", "image": "img"}]});
    if let Some(sa) = sa {
        spec["serviceAccountName"] = sa.into();
    }
    c.seed(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": spec,
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    }));
}

/// istiod's part: publish the roots of `cacerts` in `istio-ca-root-cert`.
fn publish_roots(c: &Cluster) {
    let secret = c
        .get("v1", "Secret", Some("istio-system"), "cacerts")
        .expect("cacerts");
    let b64 = secret["data"]["root-cert.pem"].as_str().unwrap();
    let pem = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    c.seed(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "istio-ca-root-cert", "namespace": "istio-system"},
        "data": {"root-cert.pem": String::from_utf8(pem).unwrap()}
    }));
}

/// The gateway controller's part: the east-west Service with a load-balancer address, a
/// healthy gateway pod, and `Programmed=True` on the Gateway.
fn run_gateway_controller(c: &Cluster, ip: &str) {
    c.seed(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "istio-eastwest", "namespace": "istio-eastwest",
                     "labels": {"gateway.networking.k8s.io/gateway-name": "istio-eastwest"}},
        "spec": {"type": "LoadBalancer", "ports": [{"name": "xds-tls", "port": 15012}]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip}]}}
    }));
    healthy_pod(
        c,
        "istio-eastwest",
        "istio-eastwest-5c8d",
        json!({"gateway.networking.k8s.io/gateway-name": "istio-eastwest"}),
        Some("istio-eastwest"),
    );
    set_condition(c, "istio-eastwest", "Programmed", "True", "Programmed");
}

fn set_condition(c: &Cluster, name: &str, type_: &str, status: &str, reason: &str) {
    let mut g = c
        .get(GW, "Gateway", Some("istio-eastwest"), name)
        .unwrap_or_else(|| panic!("gateway {name}"));
    let conditions = g["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut conditions: Vec<Value> = conditions
        .into_iter()
        .filter(|x| x["type"] != type_)
        .collect();
    conditions.push(json!({"type": type_, "status": status, "reason": reason, "message": ""}));
    g["status"] = json!({ "conditions": conditions });
    c.seed(g);
}

/// The peering controller's part: every peer gateway succeeded and connected.
fn connect_peers(c: &Cluster) {
    for p in c.list(GW, "Gateway", Some("istio-eastwest")) {
        if p["spec"]["gatewayClassName"] == "istio-remote" {
            let name = p["metadata"]["name"].as_str().unwrap().to_string();
            set_condition(
                c,
                &name,
                "gloo.solo.io/PeeringSucceeded",
                "True",
                "Succeeded",
            );
            set_condition(c, &name, "gloo.solo.io/PeerConnected", "True", "Connected");
        }
    }
}

fn gateway(c: &Cluster, name: &str) -> Value {
    c.get(GW, "Gateway", Some("istio-eastwest"), name)
        .unwrap_or_else(|| panic!("gateway istio-eastwest/{name} in {}", c.name()))
}

/// What meshtrust owns of a gateway: name, namespace, labels, annotations and spec.
fn owned(g: &Value) -> Value {
    let m = &g["metadata"];
    json!({
        "apiVersion": g["apiVersion"], "kind": g["kind"],
        "metadata": {
            "name": m["name"], "namespace": m["namespace"],
            "labels": m["labels"], "annotations": m.get("annotations").cloned().unwrap_or(json!(null))
        },
        "spec": g["spec"],
    })
}

fn parse_yaml_stream(s: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(s)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn listeners() -> Value {
    json!([
        {"name": "cross-network", "port": 15008, "protocol": "HBONE", "tls": {"mode": "Passthrough"}},
        {"name": "xds-tls", "port": 15012, "protocol": "TLS", "tls": {"mode": "Passthrough"}}
    ])
}

#[test]
fn expose_labels_the_network_and_applies_the_eastwest_gateway_server_side() {
    let mesh = Mesh::new(&["c1"]);
    let c1 = mesh.cluster("c1");
    let out = mesh.run(&["expose", "--context", "c1", "--network", "net1"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Gateway istio-eastwest/istio-eastwest applied to cluster \"c1\" (network \"net1\", cluster ID \"c1\")"),
        "{}",
        text(&out)
    );
    let ns = c1.get("v1", "Namespace", None, "istio-system").unwrap();
    assert_eq!(
        ns["metadata"]["labels"]["topology.istio.io/network"],
        "net1"
    );
    assert!(c1.get("v1", "Namespace", None, "istio-eastwest").is_some());
    assert_eq!(
        owned(&gateway(&c1, "istio-eastwest")),
        json!({
            "apiVersion": GW, "kind": "Gateway",
            "metadata": {
                "name": "istio-eastwest", "namespace": "istio-eastwest",
                "labels": {
                    "topology.istio.io/network": "net1",
                    "topology.istio.io/cluster": "c1",
                    "istio.io/expose-istiod": "15012"
                },
                "annotations": null
            },
            "spec": {"gatewayClassName": "istio-eastwest", "listeners": listeners()}
        })
    );
    let apply = c1
        .writes()
        .into_iter()
        .find(|r| r.path.contains("/gateways/istio-eastwest"))
        .expect("a write of the gateway");
    assert_eq!(apply.method, "PATCH");
    assert!(
        apply
            .query
            .as_deref()
            .unwrap_or_default()
            .contains("fieldManager=meshtrust"),
        "{:?}",
        apply.query
    );
    assert_eq!(
        gateway(&c1, "istio-eastwest")["metadata"]["managedFields"][0]["manager"],
        "meshtrust"
    );

    // A rerun converges: same object, and the network label (now set) is not rewritten.
    c1.clear_requests();
    let out = mesh.run(&["expose", "--context", "c1"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !c1.writes()
            .iter()
            .any(|r| r.path.contains("/namespaces/istio-system")),
        "{:?}",
        c1.writes()
    );
}

#[test]
fn a_nodeport_gateway_with_locality_matches_what_generate_prints() {
    let mesh = Mesh::new(&["c1"]);
    let c1 = mesh.cluster("c1");
    let args = [
        "expose",
        "--context",
        "c1",
        "--network",
        "net1",
        "--nodeport",
        "--region",
        "us-east-1",
        "--zone",
        "us-east-1a",
    ];
    let mut generate = args.to_vec();
    generate.push("--generate");
    let out = mesh.run(&generate);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        c1.writes().is_empty(),
        "--generate wrote: {:?}",
        c1.writes()
    );
    let printed = parse_yaml_stream(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(printed.len(), 1);

    let out = mesh.run(&args);
    assert!(out.status.success(), "{}", text(&out));
    let applied = owned(&gateway(&c1, "istio-eastwest"));
    assert_eq!(applied, owned(&printed[0]));
    assert_eq!(
        applied["metadata"]["annotations"],
        json!({"peering.solo.io/data-plane-service-type": "NodePort"})
    );
    assert_eq!(
        applied["metadata"]["labels"]["topology.kubernetes.io/region"],
        "us-east-1"
    );
    assert_eq!(
        applied["metadata"]["labels"]["topology.kubernetes.io/zone"],
        "us-east-1a"
    );
}

#[test]
fn expose_refuses_istiods_default_cluster_id_and_writes_nothing() {
    let mesh = Mesh::new(&["c1"]);
    let c1 = mesh.cluster("c1");
    let mut d = c1
        .get("apps/v1", "Deployment", Some("istio-system"), "istiod")
        .unwrap();
    d["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "Kubernetes".into();
    c1.seed(d);
    let out = mesh.run(&["expose", "--context", "c1", "--network", "net1"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("default CLUSTER_ID `Kubernetes`"),
        "{}",
        text(&out)
    );
    assert!(c1.writes().is_empty(), "{:?}", c1.writes());
}

#[test]
fn expose_wait_returns_once_programmed_and_times_out_clearly_otherwise() {
    let mesh = Mesh::new(&["c1"]);
    let c1 = mesh.cluster("c1");
    let out = mesh.run(&[
        "expose",
        "--context",
        "c1",
        "--network",
        "n1",
        "--wait",
        "--timeout",
        "1s",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("was not programmed within 1s"),
        "{}",
        text(&out)
    );
    set_condition(&c1, "istio-eastwest", "Programmed", "True", "Programmed");
    let out = mesh.run(&["expose", "--context", "c1", "--wait", "--timeout", "5s"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("programmed"), "{}", text(&out));
}

fn expected_peer(dst: &str, ip: &str, nodeport: bool) -> Value {
    let mut annotations = json!({
        "gateway.istio.io/service-account": "istio-eastwest",
        "gateway.istio.io/trust-domain": format!("{dst}.local"),
    });
    if nodeport {
        annotations["peering.solo.io/preferred-data-plane-service-type"] = "NodePort".into();
    }
    json!({
        "apiVersion": GW, "kind": "Gateway",
        "metadata": {
            "name": format!("istio-remote-peer-{dst}"), "namespace": "istio-eastwest",
            "labels": {"topology.istio.io/network": dst, "topology.istio.io/cluster": dst},
            "annotations": annotations
        },
        "spec": {
            "gatewayClassName": "istio-remote",
            "addresses": [{"type": "IPAddress", "value": ip}],
            "listeners": listeners()
        }
    })
}

#[test]
fn link_connects_every_pair_both_ways_with_the_destinations_identity() {
    let mesh = Mesh::new(&["c1", "c2", "c3"]);
    mesh.ready_to_link(&["c1", "c2", "c3"]);
    let out = mesh.run(&["link", "--contexts", "c1,c2,c3"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Gateway istio-eastwest/istio-remote-peer-c1 applied to cluster \"c2\" pointing to cluster \"c1\" (network \"c1\")"),
        "{}",
        text(&out)
    );
    for (i, src) in ["c1", "c2", "c3"].iter().enumerate() {
        let c = mesh.cluster(src);
        for (j, dst) in ["c1", "c2", "c3"].iter().enumerate() {
            let name = format!("istio-remote-peer-{dst}");
            let found = c.get(GW, "Gateway", Some("istio-eastwest"), &name);
            if i == j {
                assert!(found.is_none(), "{src} links to itself");
            } else {
                assert_eq!(
                    owned(&found.unwrap()),
                    expected_peer(dst, &format!("192.0.2.{}", j + 1), false),
                    "{src} → {dst}"
                );
            }
        }
    }
}

#[test]
fn a_source_cluster_failing_every_write_holds_up_no_other_and_is_named() {
    let mesh = Mesh::new(&["c1", "c2", "c3"]);
    mesh.ready_to_link(&["c1", "c2", "c3"]);
    mesh.cluster("c1").fail(
        FaultRule::new(Fault::Status(500))
            .method(Method::PATCH)
            .path_contains("/gateways/")
            .always(),
    );
    let out = mesh.run(&["link", "--contexts", "c1,c2,c3"]);
    assert!(!out.status.success());
    let shown = text(&out);
    assert!(
        shown.contains("not every peer gateway was written")
            && shown.contains("context c1: ")
            && shown.contains("500")
            && shown.contains("written: c2 → c1, c2 → c3, c3 → c1, c3 → c2")
            && shown.contains("rerun `meshtrust link`"),
        "{shown}"
    );
    for (src, dst) in [("c2", "c1"), ("c2", "c3"), ("c3", "c1"), ("c3", "c2")] {
        let name = format!("istio-remote-peer-{dst}");
        assert!(
            mesh.cluster(src)
                .get(GW, "Gateway", Some("istio-eastwest"), &name)
                .is_some(),
            "{src} → {dst} was written despite c1"
        );
    }
    mesh.cluster("c1").clear_faults();
    let out = mesh.run(&["link", "--contexts", "c1,c2,c3"]);
    assert!(out.status.success(), "the rerun: {}", text(&out));
    assert!(
        mesh.cluster("c1")
            .get(
                GW,
                "Gateway",
                Some("istio-eastwest"),
                "istio-remote-peer-c2"
            )
            .is_some()
    );
}

#[test]
fn a_slow_cluster_is_given_up_at_its_budget_and_named() {
    let mesh = Mesh::new(&["c1", "c2"]);
    mesh.ready_to_link(&["c1", "c2"]);
    mesh.cluster("c1").clear_requests();
    // Every request to c2 answers within --request-timeout (5 s), but after 2.5 s.
    mesh.cluster("c2")
        .fail(FaultRule::new(Fault::Delay(std::time::Duration::from_millis(2500))).always());
    let out = mesh.run(&["link", "--contexts", "c1,c2", "--cluster-timeout", "2s"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains(
            "nothing was linked: context c2: reading the cluster took longer than the cluster's 2s budget"
        ),
        "{shown}"
    );
    assert!(
        mesh.cluster("c1").writes().is_empty(),
        "a link with an unreadable cluster writes nothing: {:?}",
        mesh.cluster("c1").writes()
    );
}

#[test]
fn an_asymmetric_nodeport_link_writes_only_in_the_source_and_matches_generate() {
    let mesh = Mesh::new(&["c1", "c2"]);
    mesh.ready_to_link(&["c1", "c2"]);
    let (c1, c2) = (mesh.cluster("c1"), mesh.cluster("c2"));
    c1.clear_requests();
    c2.clear_requests();
    let args = ["link", "--from", "c1", "--to", "c2", "--nodeport"];
    let mut generate = args.to_vec();
    generate.push("--generate");
    let out = mesh.run(&generate);
    assert!(out.status.success(), "{}", text(&out));
    assert!(c1.writes().is_empty() && c2.writes().is_empty());
    let printed = parse_yaml_stream(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(printed.len(), 1, "{}", text(&out));

    let out = mesh.run(&args);
    assert!(out.status.success(), "{}", text(&out));
    let applied = owned(&gateway(&c1, "istio-remote-peer-c2"));
    assert_eq!(applied, expected_peer("c2", "192.0.2.2", true));
    assert_eq!(applied, owned(&printed[0]));
    assert!(
        c2.get(
            GW,
            "Gateway",
            Some("istio-eastwest"),
            "istio-remote-peer-c1"
        )
        .is_none(),
        "the reverse direction was linked"
    );
    assert!(c2.writes().is_empty(), "{:?}", c2.writes());
}

#[test]
fn link_refuses_clusters_that_share_no_root_and_writes_nothing() {
    let mesh = Mesh::new(&["c1", "c2", "c3"]);
    mesh.ready_to_link(&["c1", "c2"]);
    mesh.trust("c3", "other-root");
    let out = mesh.run(&["expose", "--context", "c3"]);
    assert!(out.status.success(), "{}", text(&out));
    run_gateway_controller(&mesh.cluster("c3"), "192.0.2.3");
    for c in ["c1", "c2", "c3"] {
        mesh.cluster(c).clear_requests();
    }

    let out = mesh.run(&["link", "--contexts", "c1,c2,c3"]);
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(msg.contains("nothing was linked"), "{msg}");
    assert!(msg.contains("c1 and c3 share no root CA"), "{msg}");
    assert!(msg.contains("c2 and c3 share no root CA"), "{msg}");
    assert_eq!(
        msg.matches("share no root CA").count(),
        2,
        "each pair once: {msg}"
    );
    assert!(msg.contains("--skip-trust-check"), "{msg}");
    for c in ["c1", "c2", "c3"] {
        assert!(
            mesh.cluster(c).writes().is_empty(),
            "{c}: {:?}",
            mesh.cluster(c).writes()
        );
    }

    // c1 ↔ c2 share a root: linking just them is fine; forcing past the gate also works.
    let out = mesh.run(&["link", "--contexts", "c1,c2"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = mesh.run(&["link", "--from", "c1", "--to", "c3", "--skip-trust-check"]);
    assert!(out.status.success(), "{}", text(&out));
    gateway(&mesh.cluster("c1"), "istio-remote-peer-c3");
}

#[test]
fn link_refuses_a_destination_whose_gateway_has_no_address_yet() {
    let mesh = Mesh::new(&["c1", "c2"]);
    mesh.ready_to_link(&["c1", "c2"]);
    let c2 = mesh.cluster("c2");
    let mut svc = c2
        .get("v1", "Service", Some("istio-eastwest"), "istio-eastwest")
        .unwrap();
    svc["status"] = json!({});
    c2.seed(svc);
    mesh.cluster("c1").clear_requests();
    let out = mesh.run(&["link", "--contexts", "c1,c2"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("c2's east-west gateway has no address yet"),
        "{}",
        text(&out)
    );
    assert!(mesh.cluster("c1").writes().is_empty());
}

/// A fully linked, healthy two-cluster mesh.
fn healthy_mesh() -> Mesh {
    let mesh = Mesh::new(&["c1", "c2"]);
    mesh.ready_to_link(&["c1", "c2"]);
    let out = mesh.run(&["link", "--contexts", "c1,c2"]);
    assert!(out.status.success(), "{}", text(&out));
    connect_peers(&mesh.cluster("c1"));
    connect_peers(&mesh.cluster("c2"));
    mesh
}

fn check_json(mesh: &Mesh, extra: &[&str]) -> (Output, Value) {
    let mut args = vec!["check", "--contexts", "c1,c2", "-o", "json"];
    args.extend_from_slice(extra);
    let out = mesh.run(&args);
    let report =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out, report)
}

/// The failing lines of a report, as "context: check".
fn failures(report: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for c in report["clusters"].as_array().unwrap() {
        for l in c["checks"].as_array().unwrap() {
            if l["status"] == "fail" {
                out.push(format!(
                    "{}: {}",
                    c["context"].as_str().unwrap(),
                    l["check"].as_str().unwrap()
                ));
            }
        }
    }
    for l in report["mesh"].as_array().unwrap() {
        if l["status"] == "fail" {
            out.push(format!("mesh: {}", l["check"].as_str().unwrap()));
        }
    }
    out
}

#[test]
fn check_passes_on_a_healthy_linked_mesh() {
    let mesh = healthy_mesh();
    let out = mesh.run(&["check", "--contexts", "c1,c2"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for line in [
        "✅ Pod Check (istiod): all pods healthy",
        "✅ Pod Check (ztunnel): all pods healthy",
        "✅ Pod Check (eastwest gateway): all pods healthy",
        "✅ Gateway Check: all eastwest gateways programmed",
        "✅ Peers Check: all clusters connected",
        "✅ CA Check (cacerts): valid",
        "✅ Root Check (istio-ca-root-cert)",
        "✅ Trust Check: every cluster trusts the same root",
        "✅ Peer Consistency Check",
    ] {
        assert!(t.contains(line), "missing `{line}` in:\n{t}");
    }
    assert!(!t.contains('❌'), "{t}");
    let (_, report) = check_json(&mesh, &[]);
    assert_eq!(report["ok"], true);
    assert!(failures(&report).is_empty());
}

#[test]
fn check_reports_each_failure_and_exits_non_zero() {
    type Break = fn(&Mesh);
    let cases: Vec<(&str, Break, &str)> = vec![
        (
            "a pod that is not ready",
            |m| {
                let c = m.cluster("c2");
                let mut p = c
                    .get("v1", "Pod", Some("istio-system"), "ztunnel-x2k4")
                    .unwrap();
                p["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
                c.seed(p);
            },
            "c2: Pod Check (ztunnel)",
        ),
        (
            "a gateway that is not programmed",
            |m| {
                set_condition(
                    &m.cluster("c1"),
                    "istio-eastwest",
                    "Programmed",
                    "False",
                    "AddressNotAssigned",
                );
            },
            "c1: Gateway Check",
        ),
        (
            "a peer that is not connected",
            |m| {
                set_condition(
                    &m.cluster("c1"),
                    "istio-remote-peer-c2",
                    "gloo.solo.io/PeerConnected",
                    "False",
                    "Disconnected",
                );
            },
            "c1: Peers Check",
        ),
        (
            "a cluster with another root",
            |m| {
                // c2's cacerts and published roots replaced by a bundle from another root.
                let c2 = m.cluster("c2");
                c2.delete("v1", "Secret", Some("istio-system"), "cacerts");
                m.trust("c2", "other-root");
            },
            "mesh: Trust Check",
        ),
        (
            "an expired intermediate",
            |m| {
                let c1 = m.cluster("c1");
                let mut s = c1
                    .get("v1", "Secret", Some("istio-system"), "cacerts")
                    .unwrap();
                let files = expired_bundle();
                for (k, v) in files {
                    s["data"][k] = base64::engine::general_purpose::STANDARD.encode(v).into();
                }
                c1.seed(s);
            },
            "c1: CA Check (cacerts)",
        ),
    ];
    for (what, break_it, expected) in cases {
        let mesh = healthy_mesh();
        let (out, before) = check_json(&mesh, &[]);
        assert!(
            out.status.success(),
            "{what}: healthy first: {:?}",
            failures(&before)
        );
        break_it(&mesh);
        let (out, report) = check_json(&mesh, &[]);
        assert!(!out.status.success(), "{what}: check passed: {report}");
        let f = failures(&report);
        assert!(
            f.contains(&expected.to_string()),
            "{what}: expected `{expected}` in {f:?}"
        );
    }
}

/// An istio-form bundle whose intermediate expired long ago (its own root, too).
fn expired_bundle() -> Vec<(&'static str, Vec<u8>)> {
    use meshtrust_ca::{BundleFormat, ClusterName, IntermediateParams, PrivateKey, RootParams};
    let then = time::macros::datetime!(2020-01-01 00:00 UTC);
    let root = RootParams::default().self_signed(then).unwrap();
    let mut params = IntermediateParams::new(ClusterName::new("c1").unwrap());
    params.validity = time::Duration::days(30);
    let key = PrivateKey::generate(params.key_type).unwrap();
    let signed = root
        .sign_intermediate(&params.csr(&key).unwrap(), &params.profile(), then)
        .unwrap();
    let files = root
        .cacerts(signed.certificate, key)
        .bundle_files(BundleFormat::Istio);
    [
        "ca-cert.pem",
        "ca-key.pem",
        "cert-chain.pem",
        "root-cert.pem",
    ]
    .into_iter()
    .map(|n| (n, files.get(n).unwrap().to_vec()))
    .collect()
}

#[test]
fn precheck_tolerates_a_mesh_not_linked_yet_but_not_a_missing_cacerts() {
    let mesh = Mesh::new(&["c1", "c2"]);
    mesh.ready_to_link(&["c1", "c2"]);
    let (out, report) = check_json(&mesh, &[]);
    assert!(!out.status.success());
    assert_eq!(
        failures(&report),
        vec!["c1: Peers Check", "c2: Peers Check"]
    );
    let (out, report) = check_json(&mesh, &["--precheck"]);
    assert!(out.status.success(), "{report}");

    mesh.cluster("c2")
        .delete("v1", "Secret", Some("istio-system"), "cacerts");
    let (out, report) = check_json(&mesh, &["--precheck"]);
    assert!(!out.status.success());
    assert!(
        failures(&report).contains(&"c2: CA Check (cacerts)".to_string()),
        "{report}"
    );
}

/// Plays the gateway controller in the background: as soon as a cluster's east-west Gateway
/// appears, give it a Service with an address, a pod, and `Programmed=True`.
fn gateway_controller_thread(mesh: &Mesh, clusters: &[&str]) -> std::thread::JoinHandle<()> {
    let clusters: Vec<(Cluster, String)> = clusters
        .iter()
        .enumerate()
        .map(|(i, c)| (mesh.cluster(c), format!("198.51.100.{}", i + 1)))
        .collect();
    std::thread::spawn(move || {
        let mut pending = clusters;
        for _ in 0..600 {
            pending.retain(|(c, ip)| {
                if c.get(GW, "Gateway", Some("istio-eastwest"), "istio-eastwest")
                    .is_some()
                {
                    run_gateway_controller(c, ip);
                    false
                } else {
                    true
                }
            });
            if pending.is_empty() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    })
}

#[test]
fn bootstrap_with_peering_goes_from_nothing_to_linked_in_one_command() {
    let mesh = Mesh::new(&["c1", "c2"]);
    let controller = gateway_controller_thread(&mesh, &["c1", "c2"]);
    let root = mesh.work.path().join("root").display().to_string();
    let out = mesh.run(&[
        "bootstrap",
        "--contexts",
        "c1,c2",
        "--root-out",
        &root,
        "--network-from-cluster-name",
        "--peering",
        "--peering-timeout",
        "20s",
    ]);
    controller.join().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for c in ["c1", "c2"] {
        assert!(
            mesh.cluster(c)
                .get("v1", "Secret", Some("istio-system"), "cacerts")
                .is_some()
        );
        let ns = mesh
            .cluster(c)
            .get("v1", "Namespace", None, "istio-system")
            .unwrap();
        assert_eq!(ns["metadata"]["labels"]["topology.istio.io/network"], c);
    }
    assert!(
        t.contains("Gateway istio-eastwest/istio-remote-peer-c2 applied to cluster \"c1\" pointing to cluster \"c2\" (network \"c2\")"),
        "{t}"
    );
    assert_eq!(
        owned(&gateway(&mesh.cluster("c2"), "istio-remote-peer-c1")),
        expected_peer("c1", "198.51.100.1", false)
    );
    // Peers are not connected yet (nothing plays the peering controller): the closing
    // precheck says so without failing, and points at the final check.
    assert!(t.contains("Peers Check"), "{t}");
    assert!(t.contains("meshtrust check --contexts c1,c2"), "{t}");
}
