//! LIST with label and field selectors, across namespaces, paged.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use meshtrust_testkit::apiserver::Harness;
use serde_json::json;

use crate::{client, namespace, status};

fn names(pods: &[Pod]) -> Vec<String> {
    pods.iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect()
}

#[tokio::test]
async fn lists_honour_label_and_field_selectors() {
    let h = Harness::start(&["c1"]);
    let c1 = h.cluster("c1");
    c1.seed(namespace("istio-system"));
    for (ns, name, labels) in [
        (
            "istio-system",
            "istiod-1",
            json!({"app": "istiod", "rev": "1-22"}),
        ),
        (
            "istio-system",
            "istiod-2",
            json!({"app": "istiod", "rev": "1-23"}),
        ),
        ("istio-system", "gateway", json!({"app": "gateway"})),
        ("istio-system", "bare", json!({})),
        (
            "default",
            "istiod-elsewhere",
            json!({"app": "istiod", "rev": "1-22"}),
        ),
    ] {
        c1.seed(json!({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "namespace": ns, "labels": labels}}));
    }
    let client = client(&h, "c1").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "istio-system");
    let list = |selector: &'static str| {
        let pods = pods.clone();
        async move {
            let lp = ListParams::default().labels(selector);
            names(&pods.list(&lp).await.unwrap().items)
        }
    };
    assert_eq!(list("app=istiod").await, ["istiod-1", "istiod-2"]);
    assert_eq!(list("app==istiod,rev=1-22").await, ["istiod-1"]);
    assert_eq!(list("app!=istiod").await, ["bare", "gateway"]);
    assert_eq!(list("rev").await, ["istiod-1", "istiod-2"]);
    assert_eq!(list("!rev").await, ["bare", "gateway"]);
    assert_eq!(list("rev in (1-23, 1-24)").await, ["istiod-2"]);
    assert_eq!(list("app notin (istiod,gateway)").await, ["bare"]);

    let all: Api<Pod> = Api::all(client.clone());
    let everywhere = all
        .list(&ListParams::default().labels("rev=1-22"))
        .await
        .unwrap();
    assert_eq!(names(&everywhere.items), ["istiod-elsewhere", "istiod-1"]);
    let by_field =
        ListParams::default().fields("metadata.namespace=istio-system,metadata.name=gateway");
    assert_eq!(
        names(&all.list(&by_field).await.unwrap().items),
        ["gateway"]
    );
    let s = status(
        all.list(&ListParams::default().fields("spec.bogus=1"))
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));

    let listed = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        listed.metadata.resource_version,
        Some(c1.resource_version())
    );
    let (code, raw) = crate::raw(
        &h.url("c1"),
        "GET",
        "/api/v1/namespaces/istio-system/pods",
        "",
        "",
    );
    assert_eq!((code, raw["kind"].as_str()), (200, Some("PodList")));
}

#[tokio::test]
async fn limit_and_continue_page_through_a_list() {
    let h = Harness::start(&["c1"]);
    let c1 = h.cluster("c1");
    for i in 0..5 {
        c1.seed(json!({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": format!("p{i}"), "namespace": "default"}}));
    }
    let pods: Api<Pod> = Api::namespaced(client(&h, "c1").await, "default");
    let mut seen = Vec::new();
    let mut lp = ListParams::default().limit(2);
    loop {
        let page = pods.list(&lp).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(names(&page.items));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => lp = lp.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(seen, ["p0", "p1", "p2", "p3", "p4"]);
}
