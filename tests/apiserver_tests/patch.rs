//! Merge patch, JSON patch, server-side apply, and the `/status` subresource.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use meshtrust_testkit::apiserver::Harness;
use serde_json::{Value, json};

use crate::{client, raw, status};

#[tokio::test]
async fn a_merge_patch_adds_and_removes_fields_and_needs_the_object() {
    let h = Harness::start(&["c1"]);
    let namespaces: Api<Namespace> = Api::all(client(&h, "c1").await);
    let before = h
        .cluster("c1")
        .get("v1", "Namespace", None, "default")
        .unwrap();
    let patch = json!({"metadata": {"labels": {"topology.istio.io/network": "net1"}}});
    let patched = namespaces
        .patch("default", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let labels = patched.metadata.labels.clone().unwrap();
    assert_eq!(labels["topology.istio.io/network"], "net1");
    assert_eq!(
        labels["kubernetes.io/metadata.name"], "default",
        "existing labels stay"
    );
    assert_ne!(
        patched.metadata.resource_version.as_deref(),
        before["metadata"]["resourceVersion"].as_str()
    );

    let again = namespaces
        .patch("default", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version, patched.metadata.resource_version,
        "a patch that changes nothing stores nothing"
    );

    let remove = json!({"metadata": {"labels": {"topology.istio.io/network": null}}});
    let removed = namespaces
        .patch("default", &PatchParams::default(), &Patch::Merge(&remove))
        .await
        .unwrap();
    assert!(
        !removed
            .metadata
            .labels
            .unwrap()
            .contains_key("topology.istio.io/network")
    );

    let stale = json!({"metadata": {"resourceVersion": "1", "labels": {"x": "y"}}});
    let s = status(
        namespaces
            .patch("default", &PatchParams::default(), &Patch::Merge(&stale))
            .await,
    );
    assert_eq!(
        s.code, 409,
        "a resourceVersion in a patch is a precondition"
    );

    let s = status(
        namespaces
            .patch("absent", &PatchParams::default(), &Patch::Merge(&patch))
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));

    let ops = r#"[{"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}}]"#;
    let (code, jp) = raw(
        &h.url("c1"),
        "PATCH",
        "/api/v1/namespaces/default",
        "application/json-patch+json",
        ops,
    );
    assert_eq!(code, 200, "{jp}");
    assert_eq!(jp["metadata"]["annotations"]["a"], "b");
}

fn cm(labels: Value, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "mesh", "namespace": "default", "labels": labels}, "data": data})
}

#[tokio::test]
async fn server_side_apply_creates_then_updates_and_removes_what_the_manager_dropped() {
    let h = Harness::start(&["c1"]);
    let cms: Api<ConfigMap> = Api::namespaced(client(&h, "c1").await, "default");
    let ssa = PatchParams::apply("meshtrust").force();

    let created = cms
        .patch(
            "mesh",
            &ssa,
            &Patch::Apply(cm(json!({"a": "1", "b": "2"}), json!({"k": "v"}))),
        )
        .await
        .unwrap();
    assert_eq!(created.metadata.labels.as_ref().unwrap().len(), 2);
    let managed = created.metadata.managed_fields.as_ref().unwrap();
    assert_eq!(managed.len(), 1);
    assert_eq!(managed[0].manager.as_deref(), Some("meshtrust"));
    assert_eq!(managed[0].operation.as_deref(), Some("Apply"));

    let updated = cms
        .patch(
            "mesh",
            &ssa,
            &Patch::Apply(cm(json!({"b": "2"}), json!({"k": "w"}))),
        )
        .await
        .unwrap();
    let labels = updated.metadata.labels.clone().unwrap();
    assert!(
        !labels.contains_key("a"),
        "the manager dropped label a: {labels:?}"
    );
    assert_eq!(labels["b"], "2");
    assert_eq!(updated.data.unwrap()["k"], "w");
    assert_eq!(updated.metadata.uid, created.metadata.uid);

    let other = PatchParams::apply("someone-else");
    let s = status(
        cms.patch(
            "mesh",
            &other,
            &Patch::Apply(cm(json!({"b": "3"}), Value::Null)),
        )
        .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert!(
        s.message.contains("conflict with \"meshtrust\""),
        "{}",
        s.message
    );
    let forced = cms
        .patch(
            "mesh",
            &other.force(),
            &Patch::Apply(cm(json!({"b": "3"}), Value::Null)),
        )
        .await
        .unwrap();
    assert_eq!(forced.metadata.labels.unwrap()["b"], "3");

    let s = status(
        cms.patch(
            "mesh",
            &PatchParams::default(),
            &Patch::Apply(cm(json!({}), Value::Null)),
        )
        .await,
    );
    assert_eq!(s.code, 400, "apply without a field manager");
}

#[tokio::test]
async fn an_apply_body_may_be_yaml() {
    let h = Harness::start(&["c1"]);
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n  labels:\n    app: x\ndata:\n  k: v\n";
    let path = "/api/v1/namespaces/default/configmaps/y?fieldManager=kubectl";
    let (code, body) = raw(
        &h.url("c1"),
        "PATCH",
        path,
        "application/apply-patch+yaml",
        yaml,
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["metadata"]["labels"]["app"], "x");
    let (code, _) = raw(
        &h.url("c1"),
        "PATCH",
        path,
        "application/apply-patch+yaml",
        yaml,
    );
    assert_eq!(code, 200, "the second apply updates");
}

#[tokio::test]
async fn the_status_subresource_changes_only_status() {
    let h = Harness::start(&["c1"]);
    let gvk = GroupVersionKind::gvk("meshtrust.io", "v1alpha1", "MeshTrust");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "meshtrusts");
    let api: Api<DynamicObject> = Api::all_with(client(&h, "c1").await, &ar);
    let mut obj = DynamicObject::new("mesh", &ar).data(json!({
        "spec": {"clusters": ["c1"]},
        "status": {"phase": "ignored on create"},
    }));
    let created = api.create(&PostParams::default(), &obj).await.unwrap();
    assert!(
        created.data.get("status").is_none(),
        "status is not set through the main resource"
    );
    assert_eq!(created.metadata.generation, Some(1));

    let status_patch = json!({"status": {"phase": "Ready"}, "spec": {"clusters": ["changed"]}});
    let patched = api
        .patch_status(
            "mesh",
            &PatchParams::default(),
            &Patch::Merge(&status_patch),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["status"]["phase"], "Ready");
    assert_eq!(
        patched.data["spec"]["clusters"],
        json!(["c1"]),
        "spec untouched via /status"
    );
    assert_eq!(
        patched.metadata.generation,
        Some(1),
        "status changes keep the generation"
    );

    obj.metadata.resource_version = patched.metadata.resource_version.clone();
    obj.data = json!({"spec": {"clusters": ["c1", "c2"]}, "status": {"phase": "Hacked"}});
    let replaced = api
        .replace("mesh", &PostParams::default(), &obj)
        .await
        .unwrap();
    assert_eq!(
        replaced.data["status"]["phase"], "Ready",
        "status untouched via the main resource"
    );
    assert_eq!(replaced.data["spec"]["clusters"], json!(["c1", "c2"]));
    assert_eq!(
        replaced.metadata.generation,
        Some(2),
        "a spec change bumps the generation"
    );

    let mut status_only = replaced.clone();
    status_only.data["status"] = json!({"phase": "Degraded"});
    status_only.data["spec"] = json!({"clusters": []});
    let done = api
        .replace_status("mesh", &PostParams::default(), &status_only)
        .await
        .unwrap();
    assert_eq!(done.data["status"]["phase"], "Degraded");
    assert_eq!(done.data["spec"]["clusters"], json!(["c1", "c2"]));
}
