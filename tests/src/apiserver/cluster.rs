//! One cluster: its store, request log and fault rules, and the [`Cluster`] handle tests
//! use to seed, inspect and break it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use super::defaults;
use super::faults::{ActiveRule, FaultRule};
use super::meta;
use super::requests::RequestRecord;
use super::resources::ResourceId;
use super::store::Store;

/// Shared state of one cluster's server.
#[derive(Debug)]
pub(crate) struct ClusterState {
    pub name: String,
    pub store: Mutex<Store>,
    pub requests: Mutex<Vec<RequestRecord>>,
    pub faults: Mutex<Vec<ActiveRule>>,
    /// Requests carried out whose answer is held ([`super::Fault::HoldAfterApplying`]).
    pub held: AtomicUsize,
}

impl ClusterState {
    pub fn new(name: &str) -> Self {
        ClusterState {
            name: name.to_string(),
            store: Mutex::new(Store::default()),
            requests: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            held: AtomicUsize::new(0),
        }
    }
}

/// A handle to one cluster's server: seed and read objects directly, read the request log,
/// inject faults. Cheap to clone; all clones see the same cluster.
///
/// Methods panic on misuse (an unknown `apiVersion`/`kind`, an object without a name), as
/// test helpers should.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub(crate) state: Arc<ClusterState>,
}

impl Cluster {
    /// The cluster's name (its kubeconfig context).
    pub fn name(&self) -> &str {
        &self.state.name
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.state.store.lock().expect("store lock")
    }

    fn resource(store: &Store, api_version: &str, kind: &str) -> ResourceId {
        store.registry.by_kind(api_version, kind).unwrap_or_else(|| {
            panic!("the loopback API server does not serve {api_version} {kind}: add it to BUILTIN in apiserver/resources.rs or seed its CustomResourceDefinition")
        })
    }

    /// Inserts (or overwrites) an object directly, without going through HTTP: watches see
    /// it as `ADDED`/`MODIFIED`, but the request log does not. Fills in `uid`,
    /// `creationTimestamp`, `generation` when absent and always sets a fresh
    /// `resourceVersion`; a Secret's `stringData` is folded into `data`; `status` is kept.
    /// Returns the stored object.
    ///
    /// # Panics
    /// On an unknown `apiVersion`/`kind`, a missing `metadata.name`, or a namespaced object
    /// whose namespace does not exist (seed the `Namespace` first).
    pub fn seed(&self, object: Value) -> Value {
        let mut store = self.store();
        let id = Self::resource(
            &store,
            object["apiVersion"].as_str().unwrap_or(""),
            object["kind"].as_str().unwrap_or(""),
        );
        let resource = store.registry.get(id).clone();
        assert!(
            !meta::name(&object).is_empty(),
            "seeded objects need metadata.name: {object}"
        );
        if resource.namespaced {
            let ns = meta::namespace(&object);
            assert!(
                store.namespace_exists(ns),
                "seeding {} {:?} into namespace {ns:?}, which does not exist: seed the Namespace first",
                resource.kind,
                meta::name(&object)
            );
        }
        let mut object = object;
        if resource.group.is_empty() && resource.kind == "Secret" {
            defaults::normalise_secret(&mut object).unwrap_or_else(|e| panic!("{}", e.message));
        }
        meta::metadata_mut(&mut object).remove("resourceVersion");
        let object = defaults::fill_new(&resource, object);
        store.insert(id, object)
    }

    /// One object, as a GET would return it.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let store = self.store();
        let id = Self::resource(&store, api_version, kind);
        store.get(id, namespace, name).cloned()
    }

    /// Every object of a kind, in one namespace or (`None`) all, sorted by namespace and
    /// name.
    pub fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let store = self.store();
        let id = Self::resource(&store, api_version, kind);
        store.list(id, namespace).cloned().collect()
    }

    /// Every version of one object the server stored (creations, updates, deletion), oldest
    /// first, each with the instant it was stored: instants order writes across clusters.
    /// Bounded by the watch history (4096 changes per cluster).
    pub fn history(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Vec<(std::time::Instant, Value)> {
        let store = self.store();
        let id = Self::resource(&store, api_version, kind);
        store
            .history_of(id, namespace, name)
            .into_iter()
            .map(|(at, _, v)| (at, v))
            .collect()
    }

    /// Removes an object at once (finalizers are ignored; a Namespace takes its objects
    /// with it); watches see `DELETED`. Returns the removed object.
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let mut store = self.store();
        let id = Self::resource(&store, api_version, kind);
        if store.registry.get(id).kind == "Namespace" && store.get(id, None, name).is_some() {
            store.remove_namespace_contents(name);
        }
        store.remove(id, namespace, name)
    }

    /// The cluster's current resourceVersion (of its latest change), as the API writes it.
    pub fn resource_version(&self) -> String {
        self.store().resource_version().to_string()
    }

    /// Forgets the change history, as an etcd compaction does: a watch from any earlier
    /// resourceVersion now gets a 410 Expired event.
    pub fn compact(&self) {
        self.store().compact();
    }

    /// Every request received so far, oldest first (including ones a fault answered).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.requests.lock().expect("requests lock").clone()
    }

    /// The POST, PUT, PATCH and DELETE requests among [`Cluster::requests`].
    pub fn writes(&self) -> Vec<RequestRecord> {
        self.requests()
            .into_iter()
            .filter(RequestRecord::is_write)
            .collect()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.state.requests.lock().expect("requests lock").clear();
    }

    /// Adds a fault rule (see [`FaultRule`]); rules are checked in the order added, and the
    /// first whose turn it is decides.
    pub fn fail(&self, rule: FaultRule) {
        self.state
            .faults
            .lock()
            .expect("faults lock")
            .push(rule.into());
    }

    /// How many requests were carried out and then held unanswered
    /// ([`super::Fault::HoldAfterApplying`]).
    pub fn held(&self) -> usize {
        self.state.held.load(Ordering::SeqCst)
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.state.faults.lock().expect("faults lock").clear();
    }
}
