//! Create, get, replace, delete: preconditions, errors, namespaces, finalizers.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use meshtrust_testkit::apiserver::Harness;
use serde_json::json;

use crate::{client, namespace, raw, status};

fn secret(name: &str, value: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "ca-cert.pem".to_string(),
            ByteString(value.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    }
}

#[tokio::test]
async fn create_sets_server_fields_and_replace_with_a_stale_resource_version_conflicts() {
    let h = Harness::start(&["c1"]);
    h.cluster("c1").seed(namespace("istio-system"));
    let secrets: Api<Secret> = Api::namespaced(client(&h, "c1").await, "istio-system");
    let pp = PostParams::default();

    let created = secrets
        .create(&pp, &secret("cacerts", "one"))
        .await
        .unwrap();
    let m = &created.metadata;
    assert_eq!(m.namespace.as_deref(), Some("istio-system"));
    assert_eq!(m.uid.as_ref().map(String::len), Some(36));
    assert!(m.creation_timestamp.is_some());
    assert_eq!(m.generation, Some(1));
    assert_eq!(created.type_.as_deref(), Some("Opaque"));
    let rv1 = m.resource_version.clone().unwrap();

    let fetched = secrets.get("cacerts").await.unwrap();
    assert_eq!(
        fetched.metadata.resource_version.as_deref(),
        Some(rv1.as_str())
    );

    let mut update = fetched.clone();
    update.data = secret("cacerts", "two").data;
    let replaced = secrets.replace("cacerts", &pp, &update).await.unwrap();
    let rv2 = replaced.metadata.resource_version.clone().unwrap();
    assert!(rv2.parse::<u64>().unwrap() > rv1.parse::<u64>().unwrap());
    assert_eq!(
        replaced.metadata.uid, created.metadata.uid,
        "uid is immutable"
    );

    let mut stale = fetched;
    stale.data = secret("cacerts", "three").data;
    let s = status(secrets.replace("cacerts", &pp, &stale).await);
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert!(
        s.message.contains("the object has been modified"),
        "{}",
        s.message
    );
    let stored = h
        .cluster("c1")
        .get("v1", "Secret", Some("istio-system"), "cacerts")
        .unwrap();
    assert_eq!(
        stored["data"]["ca-cert.pem"], "dHdv",
        "the conflicting write changed nothing"
    );

    let s = status(secrets.replace("absent", &pp, &secret("absent", "x")).await);
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
}

#[tokio::test]
async fn creating_twice_is_already_exists_and_a_missing_namespace_is_not_found() {
    let h = Harness::start(&["c1"]);
    let client = client(&h, "c1").await;
    let pp = PostParams::default();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    secrets.create(&pp, &secret("cacerts", "a")).await.unwrap();
    let s = status(secrets.create(&pp, &secret("cacerts", "b")).await);
    assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(s.message, "secrets \"cacerts\" already exists");

    let nowhere: Api<Secret> = Api::namespaced(client, "istio-system");
    let s = status(nowhere.create(&pp, &secret("cacerts", "a")).await);
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
    assert_eq!(s.message, "namespaces \"istio-system\" not found");
    assert!(
        h.cluster("c1")
            .list("v1", "Secret", Some("istio-system"))
            .is_empty()
    );
}

#[tokio::test]
async fn errors_are_status_objects_with_the_real_servers_wording() {
    let h = Harness::start(&["c1"]);
    let path = "/api/v1/namespaces/istio-system/secrets/cacerts";
    let (code, body) = raw(&h.url("c1"), "GET", path, "application/json", "");
    assert_eq!(code, 404);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "secrets \"cacerts\" not found", "reason": "NotFound",
               "details": {"name": "cacerts", "kind": "secrets"}, "code": 404})
    );
    let (code, body) = raw(&h.url("c1"), "GET", "/apis/example.com/v1/widgets", "", "");
    assert_eq!((code, body["reason"].as_str()), (404, Some("NotFound")));
    let bad = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}"#;
    let (code, body) = raw(
        &h.url("c1"),
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        bad,
    );
    assert_eq!((code, body["reason"].as_str()), (422, Some("Invalid")));
}

#[tokio::test]
async fn generate_name_and_dry_run_behave_like_the_real_server() {
    let h = Harness::start(&["c1"]);
    let cms: Api<ConfigMap> = Api::namespaced(client(&h, "c1").await, "default");
    let template = ConfigMap {
        metadata: ObjectMeta {
            generate_name: Some("backup-".into()),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    };
    let made = cms.create(&PostParams::default(), &template).await.unwrap();
    let name = made.metadata.name.unwrap();
    assert!(name.starts_with("backup-") && name.len() == 12, "{name}");

    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let mut other = template.clone();
    other.metadata = ObjectMeta {
        name: Some("dry".into()),
        ..ObjectMeta::default()
    };
    cms.create(&dry, &other).await.unwrap();
    assert!(
        h.cluster("c1")
            .get("v1", "ConfigMap", Some("default"), "dry")
            .is_none()
    );
    assert_eq!(
        h.cluster("c1")
            .list("v1", "ConfigMap", Some("default"))
            .len(),
        1
    );
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_objects() {
    let h = Harness::start(&["c1"]);
    let c1 = h.cluster("c1");
    c1.seed(namespace("team"));
    let client = client(&h, "c1").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "team");
    for name in ["a", "b"] {
        secrets
            .create(&PostParams::default(), &secret(name, name))
            .await
            .unwrap();
    }
    Api::<Secret>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &secret("elsewhere", "x"))
        .await
        .unwrap();

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = namespaces.get("team").await.unwrap();
    let labels = ns.metadata.labels.unwrap();
    assert_eq!(labels["kubernetes.io/metadata.name"], "team");
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Active"));

    namespaces
        .delete("team", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(status(namespaces.get("team").await).code, 404);
    assert!(
        secrets
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        c1.list("v1", "Secret", None).len(),
        1,
        "other namespaces keep theirs"
    );
    assert_eq!(
        status(secrets.delete("a", &DeleteParams::default()).await).code,
        404
    );
}

#[tokio::test]
async fn finalizers_hold_a_deletion_until_they_are_removed() {
    let h = Harness::start(&["c1"]);
    let cms: Api<ConfigMap> = Api::namespaced(client(&h, "c1").await, "default");
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("held".into()),
            finalizers: Some(vec!["meshtrust.io/cleanup".into()]),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    };
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let pending = cms.delete("held", &DeleteParams::default()).await.unwrap();
    assert!(pending.is_left(), "the object comes back while it waits");
    let held = cms.get("held").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());

    let release = json!({"metadata": {"finalizers": null}});
    cms.patch("held", &PatchParams::default(), &Patch::Merge(&release))
        .await
        .unwrap();
    assert_eq!(status(cms.get("held").await).code, 404);
}

#[tokio::test]
async fn a_delete_precondition_on_the_resource_version_is_enforced() {
    let h = Harness::start(&["c1"]);
    let secrets: Api<Secret> = Api::namespaced(client(&h, "c1").await, "default");
    let made = secrets
        .create(&PostParams::default(), &secret("s", "x"))
        .await
        .unwrap();
    let rv = made.metadata.resource_version.unwrap();
    let stale = DeleteParams::default().preconditions(kube::api::Preconditions {
        resource_version: Some("1".into()),
        uid: None,
    });
    assert_eq!(status(secrets.delete("s", &stale).await).code, 409);
    let fresh = DeleteParams::default().preconditions(kube::api::Preconditions {
        resource_version: Some(rv),
        uid: None,
    });
    secrets.delete("s", &fresh).await.unwrap();
    assert!(
        h.cluster("c1")
            .get("v1", "Secret", Some("default"), "s")
            .is_none()
    );
}
