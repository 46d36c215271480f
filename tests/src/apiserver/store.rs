//! One cluster's objects, its resourceVersion counter and its bounded change history.
//!
//! Every committed change takes the next resourceVersion from one monotonic counter (as
//! etcd's revision does), is stored on the object, and is appended to the history that
//! watches replay. Watches wait on [`Store::subscribe`].

use std::collections::{BTreeMap, VecDeque};

use serde_json::{Value, json};
use tokio::sync::watch;

use super::meta;
use super::resources::{Registry, ResourceId};
use super::status::ApiError;

/// How many changes the history keeps before the oldest are dropped (watches from before
/// them get 410 Expired).
pub(crate) const HISTORY_LIMIT: usize = 4096;

/// What a change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One entry of the history.
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub rv: u64,
    pub resource: ResourceId,
    pub kind: ChangeKind,
    /// The object after the change (for a deletion: its last state, with the deletion's RV).
    pub object: Value,
    /// The object before the change, for `Modified` (to tell selector entries and exits).
    pub previous: Option<Value>,
    /// When the change was made (to order changes across clusters in tests).
    pub at: std::time::Instant,
}

/// `(resource, namespace or "", name)`.
type Key = (ResourceId, String, String);

/// One cluster's state.
#[derive(Debug)]
pub(crate) struct Store {
    pub registry: Registry,
    objects: BTreeMap<Key, Value>,
    rv: u64,
    history: VecDeque<Change>,
    /// Watches from a resourceVersion below this get 410 Expired.
    oldest_watchable: u64,
    notify: watch::Sender<u64>,
}

impl Default for Store {
    fn default() -> Self {
        let mut store = Store {
            registry: Registry::default(),
            objects: BTreeMap::new(),
            rv: 0,
            history: VecDeque::new(),
            oldest_watchable: 0,
            notify: watch::channel(0).0,
        };
        let namespaces = store.registry.by_kind("v1", "Namespace").expect("built in");
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            store.insert(
                namespaces,
                super::defaults::fill_new(store.registry.get(namespaces), ns),
            );
        }
        store
    }
}

impl Store {
    /// The current resourceVersion (of the last change).
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// A receiver that sees the resourceVersion after every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.notify.subscribe()
    }

    fn key(&self, id: ResourceId, namespace: Option<&str>, name: &str) -> Key {
        let ns = if self.registry.get(id).namespaced {
            namespace.unwrap_or("")
        } else {
            ""
        };
        (id, ns.to_string(), name.to_string())
    }

    pub fn get(&self, id: ResourceId, namespace: Option<&str>, name: &str) -> Option<&Value> {
        self.objects.get(&self.key(id, namespace, name))
    }

    /// Objects of a resource, in one namespace or all, sorted by namespace and name.
    pub fn list<'a>(
        &'a self,
        id: ResourceId,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .range((id, String::new(), String::new())..)
            .take_while(move |((r, _, _), _)| *r == id)
            .filter(move |((_, ns, _), _)| namespace.is_none_or(|want| want == ns))
            .map(|(_, v)| v)
    }

    pub fn namespace_exists(&self, namespace: &str) -> bool {
        let id = self.registry.by_kind("v1", "Namespace").expect("built in");
        self.get(id, None, namespace).is_some()
    }

    /// Rejects a namespaced write into a namespace that does not exist (404, as the real
    /// server does).
    pub fn require_namespace(&self, id: ResourceId, namespace: &str) -> Result<(), ApiError> {
        if self.registry.get(id).namespaced && !self.namespace_exists(namespace) {
            return Err(ApiError::namespace_not_found(namespace));
        }
        Ok(())
    }

    fn record(&mut self, change: Change) {
        self.history.push_back(change);
        while self.history.len() > HISTORY_LIMIT {
            let dropped = self.history.pop_front().expect("non-empty");
            self.oldest_watchable = dropped.rv;
        }
        self.notify.send_replace(self.rv);
    }

    /// Stores `obj` (new or replacing the object with its name) under the next
    /// resourceVersion; returns the stored object.
    pub fn insert(&mut self, id: ResourceId, mut obj: Value) -> Value {
        self.rv += 1;
        meta::metadata_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        if self.registry.get(id).plural == "customresourcedefinitions" {
            self.registry.register_crd(&obj);
        }
        let key = self.key(id, Some(meta::namespace(&obj)), meta::name(&obj));
        let previous = self.objects.insert(key, obj.clone());
        let kind = if previous.is_some() {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        self.record(Change {
            at: std::time::Instant::now(),
            rv: self.rv,
            resource: id,
            kind,
            object: obj.clone(),
            previous,
        });
        obj
    }

    /// Deletes an object; returns its last state, stamped with the deletion's
    /// resourceVersion.
    pub fn remove(&mut self, id: ResourceId, namespace: Option<&str>, name: &str) -> Option<Value> {
        let mut obj = self.objects.remove(&self.key(id, namespace, name))?;
        self.rv += 1;
        meta::metadata_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.record(Change {
            at: std::time::Instant::now(),
            rv: self.rv,
            resource: id,
            kind: ChangeKind::Deleted,
            object: obj.clone(),
            previous: None,
        });
        Some(obj)
    }

    /// Deletes every namespaced object in `namespace`.
    pub fn remove_namespace_contents(&mut self, namespace: &str) {
        let keys: Vec<Key> = self
            .objects
            .keys()
            .filter(|(_, ns, _)| ns == namespace)
            .cloned()
            .collect();
        for (id, ns, name) in keys {
            self.remove(id, Some(&ns), &name);
        }
    }

    /// The changes after resourceVersion `rv`, or 410 Expired when the history no longer
    /// reaches back that far.
    pub fn changes_after(&self, rv: u64) -> Result<Vec<Change>, ApiError> {
        if rv < self.oldest_watchable {
            return Err(ApiError::expired(rv, self.oldest_watchable));
        }
        Ok(self.history.iter().filter(|c| c.rv > rv).cloned().collect())
    }

    /// Every change of one object still in the history, oldest first, with when it was made.
    pub fn history_of(
        &self,
        id: ResourceId,
        namespace: Option<&str>,
        name: &str,
    ) -> Vec<(std::time::Instant, ChangeKind, Value)> {
        self.history
            .iter()
            .filter(|c| {
                c.resource == id
                    && meta::name(&c.object) == name
                    && namespace.is_none_or(|ns| meta::namespace(&c.object) == ns)
            })
            .map(|c| (c.at, c.kind, c.object.clone()))
            .collect()
    }

    /// Forgets the whole history, as an etcd compaction does: watches from any earlier
    /// resourceVersion now get 410 Expired.
    pub fn compact(&mut self) {
        self.history.clear();
        self.oldest_watchable = self.rv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(ns: &str, name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns}})
    }

    #[test]
    fn every_change_takes_the_next_resource_version() {
        let mut s = Store::default();
        let start = s.resource_version();
        assert_eq!(start, 4, "the four default namespaces");
        let id = s.registry.by_kind("v1", "Secret").unwrap();
        let a = s.insert(id, secret("default", "a"));
        let b = s.insert(id, secret("default", "a"));
        assert_eq!(meta::resource_version(&a), "5");
        assert_eq!(meta::resource_version(&b), "6");
        let gone = s.remove(id, Some("default"), "a").unwrap();
        assert_eq!(meta::resource_version(&gone), "7");
        let kinds: Vec<_> = s
            .changes_after(start)
            .unwrap()
            .iter()
            .map(|c| c.kind)
            .collect();
        assert_eq!(
            kinds,
            [ChangeKind::Added, ChangeKind::Modified, ChangeKind::Deleted]
        );
        assert_eq!(s.changes_after(6).unwrap().len(), 1);
    }

    #[test]
    fn lists_are_sorted_and_scoped() {
        let mut s = Store::default();
        let id = s.registry.by_kind("v1", "Secret").unwrap();
        for (ns, name) in [("kube-system", "b"), ("default", "z"), ("default", "a")] {
            s.insert(id, secret(ns, name));
        }
        let names = |s: &Store, ns| {
            s.list(id, ns)
                .map(|o| meta::name(o).to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&s, None), ["a", "z", "b"]);
        assert_eq!(names(&s, Some("default")), ["a", "z"]);
        s.remove_namespace_contents("default");
        assert_eq!(names(&s, None), ["b"]);
    }

    #[test]
    fn compaction_expires_older_watches() {
        let mut s = Store::default();
        let id = s.registry.by_kind("v1", "Secret").unwrap();
        s.insert(id, secret("default", "a"));
        s.compact();
        assert_eq!(s.changes_after(4).unwrap_err().code, 410);
        assert!(s.changes_after(5).unwrap().is_empty());
    }
}
