//! Watches: a chunked stream of newline-delimited `{"type": …, "object": …}` events.
//!
//! From `resourceVersion` N the stream replays the history after N, then follows new
//! changes; from `""`/`"0"` (or with `sendInitialEvents=true`) it first sends the current
//! objects as `ADDED` (the latter closed by the `k8s.io/initial-events-end` bookmark). An N
//! older than the history yields one `ERROR` event carrying a 410 Expired `Status`, then the
//! end of the stream — exactly what makes kube-runtime's watcher relist. An object that
//! starts or stops matching the selectors arrives as `ADDED`/`DELETED`, as from the real
//! server. `timeoutSeconds` ends the stream; `allowWatchBookmarks` is accepted but no
//! periodic bookmarks are sent.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use super::cluster::ClusterState;
use super::meta;
use super::resources::ResourceId;
use super::selector::Selectors;
use super::store::{Change, ChangeKind};

/// What a watch request asked for.
#[derive(Clone, Debug)]
pub(crate) struct WatchRequest {
    pub id: ResourceId,
    pub namespace: Option<String>,
    pub selectors: Selectors,
    /// `None` for `""`/`"0"`: start with the current objects.
    pub resource_version: Option<u64>,
    pub send_initial_events: bool,
    pub deadline: Instant,
    /// Answer with `PartialObjectMetadata` objects (`Accept: …;as=PartialObjectMetadata`).
    pub partial_metadata: bool,
}

/// Just the metadata of an object, as `meta.k8s.io/v1` `PartialObjectMetadata`.
pub(crate) fn partial_metadata(obj: &Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
           "metadata": obj["metadata"]})
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec(&json!({"type": kind, "object": object}))
        .expect("JSON values serialise");
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// The state of one open watch.
struct Stream {
    state: Arc<ClusterState>,
    changed: watch::Receiver<u64>,
    req: WatchRequest,
    cursor: u64,
    pending: VecDeque<Bytes>,
    done: bool,
}

impl Stream {
    fn selected(&self, obj: &Value) -> bool {
        self.req
            .namespace
            .as_deref()
            .is_none_or(|ns| meta::namespace(obj) == ns)
            && self.req.selectors.matches(obj)
    }

    fn push(&mut self, kind: &str, obj: &Value) {
        let line = if self.req.partial_metadata {
            line(kind, &partial_metadata(obj))
        } else {
            line(kind, obj)
        };
        self.pending.push_back(line);
    }

    /// The event a change means to this watch, if any.
    fn translate(&mut self, change: &Change) {
        if change.resource != self.req.id {
            return;
        }
        let now = self.selected(&change.object);
        let before = change.previous.as_ref().is_some_and(|p| self.selected(p));
        let kind = match (change.kind, before, now) {
            (ChangeKind::Added, _, true) => "ADDED",
            (ChangeKind::Deleted, _, true) => "DELETED",
            (ChangeKind::Modified, true, true) => "MODIFIED",
            (ChangeKind::Modified, false, true) => "ADDED",
            (ChangeKind::Modified, true, false) => "DELETED",
            _ => return,
        };
        self.push(kind, &change.object);
    }

    /// Queues everything that happened after the cursor; a 410 ends the watch.
    fn catch_up(&mut self) {
        let state = Arc::clone(&self.state);
        let store = state.store.lock().expect("store lock");
        match store.changes_after(self.cursor) {
            Ok(changes) => {
                for change in &changes {
                    self.translate(change);
                }
                // A resourceVersion from the future waits for the store to get there.
                self.cursor = self.cursor.max(store.resource_version());
            }
            Err(expired) => {
                self.pending.push_back(line("ERROR", &expired.to_status()));
                self.done = true;
            }
        }
    }

    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                return Some((Ok(line), self));
            }
            if self.done {
                return None;
            }
            self.catch_up();
            if !self.pending.is_empty() || self.done {
                continue;
            }
            match tokio::time::timeout_at(self.req.deadline, self.changed.changed()).await {
                Ok(Ok(())) => {}
                _ => self.done = true,
            }
        }
    }
}

/// Opens a watch: the streaming response.
pub(crate) fn serve(state: Arc<ClusterState>, req: WatchRequest) -> Response {
    let store = state.store.lock().expect("store lock");
    let changed = store.subscribe();
    let current = store.resource_version();
    let initial = req.resource_version.is_none() || req.send_initial_events;
    let snapshot: Vec<Value> = if initial {
        store
            .list(req.id, req.namespace.as_deref())
            .filter(|o| req.selectors.matches(o))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    drop(store);
    let mut stream = Stream {
        state: Arc::clone(&state),
        changed,
        cursor: req.resource_version.filter(|_| !initial).unwrap_or(current),
        req,
        pending: VecDeque::new(),
        done: false,
    };
    for obj in &snapshot {
        stream.push("ADDED", obj);
    }
    if stream.req.send_initial_events {
        let registry_kind = {
            let store = state.store.lock().expect("store lock");
            let r = store.registry.get(stream.req.id);
            (r.api_version(), r.kind.clone())
        };
        let bookmark = json!({"apiVersion": registry_kind.0, "kind": registry_kind.1,
            "metadata": {"resourceVersion": current.to_string(),
                         "annotations": {"k8s.io/initial-events-end": "true"}}});
        stream.pending.push_back(line("BOOKMARK", &bookmark));
    }
    let body = Body::from_stream(futures::stream::unfold(stream, Stream::next));
    Response::builder()
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .expect("a valid response")
}
