//! Discovery: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/{group}`,
//! `/apis/{group}/{version}` — enough for kube-rs and `kubectl get`.
//! Not served: aggregated discovery (clients fall back to these documents) and
//! `/openapi/v2`, `/openapi/v3` (so `kubectl apply` does not work).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::header::HOST;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::cluster::ClusterState;
use super::resources::{Registry, VERBS};
use super::status::ApiError;

/// The Kubernetes version the server claims.
pub(crate) const GIT_VERSION: &str = "v1.33.0";

pub(crate) async fn version() -> Json<Value> {
    Json(json!({
        "major": "1",
        "minor": "33",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    }))
}

pub(crate) async fn core_versions(headers: HeaderMap) -> Json<Value> {
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    Json(json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
    }))
}

fn group_doc(registry: &Registry, group: &str) -> Option<Value> {
    let versions: Vec<Value> = registry
        .group_versions()
        .into_iter()
        .filter(|(g, _)| g == group)
        .map(|(g, v)| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first()?.clone();
    Some(json!({"name": group, "versions": versions, "preferredVersion": preferred}))
}

pub(crate) async fn groups(State(state): State<Arc<ClusterState>>) -> Json<Value> {
    let store = state.store.lock().expect("store lock");
    let mut names: Vec<String> = Vec::new();
    for (g, _) in store.registry.group_versions() {
        if !g.is_empty() && !names.contains(&g) {
            names.push(g);
        }
    }
    let groups: Vec<Value> = names
        .iter()
        .filter_map(|g| group_doc(&store.registry, g))
        .collect();
    Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
}

pub(crate) async fn group(
    State(state): State<Arc<ClusterState>>,
    Path(group): Path<String>,
) -> Response {
    let store = state.store.lock().expect("store lock");
    match group_doc(&store.registry, &group) {
        Some(mut doc) => {
            doc["kind"] = json!("APIGroup");
            doc["apiVersion"] = json!("v1");
            Json(doc).into_response()
        }
        None => ApiError::no_such_path().into_response(),
    }
}

fn resource_list(state: &ClusterState, group: &str, version: &str) -> Response {
    let store = state.store.lock().expect("store lock");
    let mut resources = Vec::new();
    for (_, r) in store
        .registry
        .all()
        .filter(|(_, r)| r.group == group && r.version == version)
    {
        resources.push(
            json!({"name": r.plural, "singularName": r.kind.to_lowercase(),
            "namespaced": r.namespaced, "kind": r.kind, "verbs": VERBS}),
        );
        if r.status {
            resources.push(
                json!({"name": format!("{}/status", r.plural), "singularName": "",
                "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get", "patch", "update"]}),
            );
        }
    }
    if resources.is_empty() {
        return ApiError::no_such_path().into_response();
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Json(json!({"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": group_version, "resources": resources}))
    .into_response()
}

pub(crate) async fn core_resources(State(state): State<Arc<ClusterState>>) -> Response {
    resource_list(&state, "", "v1")
}

pub(crate) async fn group_resources(
    State(state): State<Arc<ClusterState>>,
    Path((group, version)): Path<(String, String)>,
) -> Response {
    resource_list(&state, &group, &version)
}
