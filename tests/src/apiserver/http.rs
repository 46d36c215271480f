//! The HTTP side: routes, URL shapes, query parameters, and the middleware that logs every
//! request and applies fault rules.
//!
//! Resource URLs, as on the real server:
//! `/api/v1/{plural}[/{name}[/status]]` and `/apis/{group}/{version}/{plural}[…]` for
//! cluster-scoped resources (and all-namespace lists/watches of namespaced ones),
//! `…/namespaces/{ns}/{plural}[/{name}[/status]]` for namespaced resources.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::cluster::ClusterState;
use super::discovery;
use super::faults::{self, Fault};
use super::meta;
use super::patch::{self, PatchKind};
use super::requests::RequestRecord;
use super::resources::{Registry, ResourceId};
use super::selector::{FieldSelector, LabelSelector, Selectors};
use super::status::ApiError;
use super::store::Store;
use super::watch::{self, WatchRequest, partial_metadata};
use super::write::{self, Target, WriteOptions};

/// How long a watch without `timeoutSeconds` stays open (the real server's minimum).
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// The server of one cluster.
pub(crate) fn router(state: Arc<ClusterState>) -> Router {
    Router::new()
        .route("/version", get(discovery::version))
        .route("/api", get(discovery::core_versions))
        .route("/api/v1", get(discovery::core_resources))
        .route("/apis", get(discovery::groups))
        .route("/apis/{group}", get(discovery::group))
        .route("/apis/{group}/{version}", get(discovery::group_resources))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .fallback(resource_request)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            record_and_fault,
        ))
        .with_state(state)
}

/// Logs the request, then applies the first fault rule whose turn it is.
async fn record_and_fault(
    State(state): State<Arc<ClusterState>>,
    request: Request,
    next: Next,
) -> Response {
    let record = RequestRecord {
        method: request.method().clone(),
        path: request.uri().path().to_string(),
        query: request.uri().query().map(str::to_string),
        content_type: request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    let fault = {
        let mut rules = state.faults.lock().expect("faults lock");
        faults::decide(&mut rules, &record)
    };
    state.requests.lock().expect("requests lock").push(record);
    match fault {
        None => next.run(request).await,
        Some(Fault::Status(code)) => ApiError::new(
            code,
            format!("fault injected by the test harness (HTTP {code})"),
        )
        .into_response(),
        Some(Fault::AfterApplying(code)) => {
            let carried_out = next.run(request).await;
            drop(carried_out);
            ApiError::new(
                code,
                format!("fault injected by the test harness after carrying the request out (HTTP {code})"),
            )
            .into_response()
        }
        Some(Fault::Delay(pause)) => {
            tokio::time::sleep(pause).await;
            next.run(request).await
        }
        Some(Fault::Hang) => std::future::pending().await,
        Some(Fault::HoldAfterApplying) => {
            drop(next.run(request).await);
            state.held.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::future::pending().await
        }
    }
}

/// A resource URL, parsed.
#[derive(Debug)]
struct ResourcePath {
    id: ResourceId,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

fn parse_path(registry: &Registry, path: &str) -> Result<ResourcePath, ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(ApiError::no_such_path()),
    };
    let (id, namespace, tail) = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if registry
                .by_plural(group, version, plural)
                .is_some_and(|id| registry.get(id).namespaced) =>
        {
            let id = registry.by_plural(group, version, plural).expect("checked");
            (id, Some(ns.to_string()), tail)
        }
        [plural, tail @ ..] => {
            let id = registry
                .by_plural(group, version, plural)
                .ok_or_else(ApiError::no_such_path)?;
            (id, None, tail)
        }
        [] => return Err(ApiError::no_such_path()),
    };
    let resource = registry.get(id);
    let (name, status) = match tail {
        [] => (None, false),
        [name] => (Some(name.to_string()), false),
        [name, "status"] if resource.status => (Some(name.to_string()), true),
        _ => return Err(ApiError::no_such_path()),
    };
    if resource.namespaced && namespace.is_none() && name.is_some() {
        return Err(ApiError::no_such_path());
    }
    Ok(ResourcePath {
        id,
        namespace,
        name,
        status,
    })
}

fn json_response(code: StatusCode, body: Value) -> Response {
    (code, axum::Json(body)).into_response()
}

async fn resource_request(
    State(state): State<Arc<ClusterState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&state, &method, &uri, &headers, &body).unwrap_or_else(IntoResponse::into_response)
}

fn handle(
    state: &Arc<ClusterState>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let query: HashMap<String, String> = Query::try_from_uri(uri)
        .map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request(format!("malformed query: {e}")))?;
    let q = |key: &str| query.get(key).map(String::as_str).unwrap_or("");
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
    };
    let partial = header(ACCEPT).is_some_and(|a| a.contains("as=PartialObjectMetadata"));
    let opts = WriteOptions {
        dry_run: q("dryRun") == "All",
        field_manager: query.get("fieldManager").cloned(),
        force: q("force") == "true",
    };
    let mut store = state.store.lock().expect("store lock");
    let p = parse_path(&store.registry, uri.path())?;
    let resource = store.registry.get(p.id).clone();
    let ns = p.namespace.as_deref();
    let target = |name| Target {
        id: p.id,
        namespace: ns,
        name,
        status: p.status,
    };
    let selectors = || -> Result<Selectors, ApiError> {
        Ok(Selectors {
            labels: LabelSelector::parse(q("labelSelector"))?,
            fields: FieldSelector::parse(q("fieldSelector"), &resource)?,
        })
    };
    let shown = |obj: Value| if partial { partial_metadata(&obj) } else { obj };
    match (method.clone(), p.name.as_deref()) {
        (Method::GET, None) if matches!(q("watch"), "true" | "1") => {
            let resource_version = match q("resourceVersion") {
                "" | "0" => None,
                rv => Some(rv.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid resourceVersion {rv:?}"))
                })?),
            };
            let timeout = q("timeoutSeconds")
                .parse()
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_WATCH_TIMEOUT);
            let req = WatchRequest {
                id: p.id,
                namespace: p.namespace.clone(),
                selectors: selectors()?,
                resource_version,
                send_initial_events: q("sendInitialEvents") == "true",
                deadline: Instant::now() + timeout,
                partial_metadata: partial,
            };
            drop(store);
            Ok(watch::serve(Arc::clone(state), req))
        }
        (Method::GET, None) => {
            let list = list(
                &store,
                &p,
                &selectors()?,
                q("limit"),
                q("continue"),
                partial,
            )?;
            Ok(json_response(StatusCode::OK, list))
        }
        (Method::GET, Some(name)) => store
            .get(p.id, ns, name)
            .cloned()
            .map(|o| json_response(StatusCode::OK, shown(o)))
            .ok_or_else(|| ApiError::not_found(&resource, name)),
        (Method::POST, None) if resource.namespaced && ns.is_none() => Err(ApiError::new(
            405,
            "the server does not allow this method on the requested resource",
        )),
        (Method::POST, None) => {
            let obj = patch::object_body(header(CONTENT_TYPE), body)?;
            let created = write::create(&mut store, p.id, ns, obj, &opts)?;
            Ok(json_response(StatusCode::CREATED, created))
        }
        (Method::PUT, Some(name)) => {
            let obj = patch::object_body(header(CONTENT_TYPE), body)?;
            let replaced = write::replace(&mut store, &target(name), obj, &opts)?;
            Ok(json_response(StatusCode::OK, replaced))
        }
        (Method::PATCH, Some(name)) => {
            let kind = PatchKind::from_content_type(header(CONTENT_TYPE))?;
            let patch = patch::patch_body(kind, body)?;
            let (obj, created) = write::patch(&mut store, &target(name), kind, &patch, &opts)?;
            let code = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(json_response(code, obj))
        }
        (Method::DELETE, Some(name)) => {
            let options = delete_options(body)?;
            let (obj, gone) = write::delete(&mut store, &target(name), &options, &opts)?;
            let code = if gone {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            Ok(json_response(code, obj))
        }
        (Method::DELETE, None) => {
            let options = delete_options(body)?;
            let selectors = selectors()?;
            let names: Vec<(String, String)> = store
                .list(p.id, ns)
                .filter(|o| selectors.matches(o))
                .map(|o| (meta::namespace(o).to_string(), meta::name(o).to_string()))
                .collect();
            let mut items = Vec::new();
            for (obj_ns, name) in &names {
                let t = Target {
                    namespace: Some(obj_ns.as_str()),
                    ..target(name)
                };
                items.push(write::delete(&mut store, &t, &options, &opts)?.0);
            }
            let list = json!({"apiVersion": resource.api_version(),
                "kind": format!("{}List", resource.kind),
                "metadata": {"resourceVersion": store.resource_version().to_string()},
                "items": items});
            Ok(json_response(StatusCode::OK, list))
        }
        _ => Err(ApiError::new(
            405,
            format!("the server does not allow this method on the requested resource ({method})"),
        )),
    }
}

/// The optional `DeleteOptions` body of a DELETE.
fn delete_options(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))
}

/// A `{Kind}List` (or `PartialObjectMetadataList`), paged by `limit`/`continue`. The
/// continue token is the last returned `namespace/name`; pages are not a consistent
/// snapshot (a simplification).
fn list(
    store: &Store,
    p: &ResourcePath,
    selectors: &Selectors,
    limit: &str,
    continue_from: &str,
    partial: bool,
) -> Result<Value, ApiError> {
    let resource = store.registry.get(p.id);
    let key = |o: &Value| format!("{}/{}", meta::namespace(o), meta::name(o));
    let mut items: Vec<&Value> = store
        .list(p.id, p.namespace.as_deref())
        .filter(|o| selectors.matches(o))
        .filter(|o| continue_from.is_empty() || key(o).as_str() > continue_from)
        .collect();
    let limit: usize = match limit {
        "" => 0,
        n => n
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {n:?}")))?,
    };
    let mut metadata = json!({"resourceVersion": store.resource_version().to_string()});
    if limit > 0 && items.len() > limit {
        let remaining = items.len() - limit;
        items.truncate(limit);
        metadata["continue"] = json!(key(items[limit - 1]));
        metadata["remainingItemCount"] = json!(remaining);
    }
    let items: Vec<Value> = items
        .into_iter()
        .map(|o| {
            if partial {
                partial_metadata(o)
            } else {
                o.clone()
            }
        })
        .collect();
    Ok(if partial {
        json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
               "metadata": metadata, "items": items})
    } else {
        json!({"apiVersion": resource.api_version(), "kind": format!("{}List", resource.kind),
               "metadata": metadata, "items": items})
    })
}
