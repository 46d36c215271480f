//! Several clusters: isolation, the kubeconfig, discovery, kubectl.

use std::process::Command;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use kube::config::Kubeconfig;
use kube::discovery::{Discovery, Scope};
use meshtrust_testkit::apiserver::Harness;
use serde_json::json;

use crate::client;

#[tokio::test]
async fn three_clusters_are_isolated() {
    let h = Harness::start(&["c1", "c2", "c3"]);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("only-in-c1".into()),
            ..ObjectMeta::default()
        },
        ..Secret::default()
    };
    let in_c1: Api<Secret> = Api::namespaced(client(&h, "c1").await, "default");
    in_c1.create(&PostParams::default(), &secret).await.unwrap();
    for other in ["c2", "c3"] {
        let api: Api<Secret> = Api::namespaced(client(&h, other).await, "default");
        assert!(
            api.get_opt("only-in-c1").await.unwrap().is_none(),
            "{other}"
        );
        assert!(
            h.cluster(other)
                .get("v1", "Secret", Some("default"), "only-in-c1")
                .is_none()
        );
        assert!(h.cluster(other).writes().is_empty(), "{other}");
        assert_eq!(
            h.cluster(other).resource_version(),
            "4",
            "{other} saw no change"
        );
    }
    assert!(
        h.cluster("c1")
            .get("v1", "Secret", Some("default"), "only-in-c1")
            .is_some()
    );
    assert_eq!(h.cluster("c1").writes().len(), 1);
    let urls: Vec<String> = h.cluster_names().iter().map(|n| h.url(n)).collect();
    assert!(
        urls[0] != urls[1] && urls[1] != urls[2] && urls[0] != urls[2],
        "{urls:?}"
    );
}

#[test]
fn the_kubeconfig_has_one_context_per_cluster() {
    let h = Harness::start(&["east", "west"]);
    let k = Kubeconfig::read_from(h.kubeconfig_path()).unwrap();
    assert_eq!(k.current_context.as_deref(), Some("east"));
    let contexts: Vec<(String, String)> = k
        .contexts
        .iter()
        .map(|c| (c.name.clone(), c.context.as_ref().unwrap().cluster.clone()))
        .collect();
    assert_eq!(
        contexts,
        [
            ("east".into(), "east".into()),
            ("west".into(), "west".into())
        ]
    );
    for named in &k.clusters {
        let server = named.cluster.as_ref().unwrap().server.clone().unwrap();
        assert_eq!(server, h.url(&named.name));
        assert!(server.starts_with("http://127.0.0.1:"), "{server}");
    }
    assert_eq!(k.auth_infos.len(), 1);
    let path = h.kubeconfig_path().to_path_buf();
    h.stop();
    assert!(!path.exists(), "the kubeconfig goes with the harness");
}

#[tokio::test]
async fn discovery_finds_every_resource_with_its_scope() {
    let h = Harness::start(&["c1"]);
    let client = client(&h, "c1").await;
    assert_eq!(
        client.apiserver_version().await.unwrap().git_version,
        "v1.33.0"
    );
    let discovery = Discovery::new(client).run().await.unwrap();
    let find = |group: &str, kind: &str| {
        discovery
            .groups()
            .filter(|g| g.name() == group)
            .flat_map(|g| g.recommended_resources())
            .find(|(ar, _)| ar.kind == kind)
            .unwrap_or_else(|| panic!("{group} {kind} not discovered"))
    };
    let (secrets, caps) = find("", "Secret");
    assert_eq!(
        (secrets.plural.as_str(), caps.scope),
        ("secrets", Scope::Namespaced)
    );
    let (_, caps) = find("", "Namespace");
    assert_eq!(caps.scope, Scope::Cluster);
    let (meshtrusts, caps) = find("meshtrust.io", "MeshTrust");
    assert_eq!(
        (meshtrusts.version.as_str(), caps.scope),
        ("v1alpha1", Scope::Cluster)
    );
    assert!(
        caps.subresources
            .iter()
            .any(|(ar, _)| ar.plural == "status")
    );
    for (group, kind) in [
        ("apps", "Deployment"),
        ("gateway.networking.k8s.io", "Gateway"),
        ("coordination.k8s.io", "Lease"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ] {
        find(group, kind);
    }
}

#[tokio::test]
async fn a_seeded_crd_serves_its_resources() {
    let h = Harness::start(&["c1"]);
    let c1 = h.cluster("c1");
    c1.seed(
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "links.networking.solo.io"},
        "spec": {"group": "networking.solo.io", "scope": "Namespaced",
                 "names": {"plural": "links", "kind": "Link"},
                 "versions": [{"name": "v1", "served": true}]}}),
    );
    let path = "/apis/networking.solo.io/v1/namespaces/default/links";
    let body = r#"{"apiVersion":"networking.solo.io/v1","kind":"Link","metadata":{"name":"l"}}"#;
    let (code, created) = crate::raw(&h.url("c1"), "POST", path, "application/json", body);
    assert_eq!(code, 201, "{created}");
    assert!(
        c1.get("networking.solo.io/v1", "Link", Some("default"), "l")
            .is_some()
    );
}

#[test]
fn kubectl_get_works_against_the_harness() {
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        eprintln!("kubectl is not installed: skipping");
        return;
    }
    let h = Harness::start(&["c1", "c2"]);
    h.cluster("c2")
        .seed(json!({"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": "istio-system"}}));
    let kubectl = |args: &[&str]| {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(h.kubeconfig_path())
            .args(args)
            .output()
            .unwrap();
        let text = meshtrust_testkit::text(&out);
        assert!(out.status.success(), "kubectl {args:?}: {text}");
        text
    };
    let names = kubectl(&["--context", "c2", "get", "namespaces", "-o", "name"]);
    assert!(names.contains("namespace/istio-system"), "{names}");
    let table = kubectl(&["--context", "c2", "get", "namespaces"]);
    assert!(table.contains("istio-system"), "{table}");
    let json = kubectl(&["get", "namespaces", "-o", "json"]);
    assert!(
        !json.contains("istio-system"),
        "the current context is c1: {json}"
    );
}
