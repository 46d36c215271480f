//! A loopback Kubernetes API server for end-to-end tests: one plain-HTTP server per
//! cluster on `127.0.0.1`, an in-memory store behind each, and a kubeconfig with one context
//! per cluster, so the `meshtrust` binary (or a `kube::Client`) talks to it as to a real
//! cluster.
//!
//! ```no_run
//! use meshtrust_testkit::apiserver::{Fault, FaultRule, Harness, Method};
//! use serde_json::json;
//!
//! let h = Harness::start(&["c1", "c2"]);
//! let c1 = h.cluster("c1");
//! c1.seed(json!({"apiVersion": "v1", "kind": "Namespace",
//!                "metadata": {"name": "istio-system"}}));
//! c1.fail(FaultRule::new(Fault::Status(500)).method(Method::PUT).nth(2));
//! // run `meshtrust … --kubeconfig <h.kubeconfig_path()> --context c1`, then:
//! let cacerts = c1.get("v1", "Secret", Some("istio-system"), "cacerts");
//! assert!(h.cluster("c2").writes().is_empty(), "nothing was written to c2");
//! # let _ = cacerts;
//! ```
//!
//! The API is synchronous: the servers run on the harness's own tokio runtime (two worker
//! threads), so it works from plain `#[test]` functions and from async tests alike, and
//! dropping the [`Harness`] stops them.
//!
//! # What behaves like the real server (JSON only)
//! - **Resources** (data-driven table in `resources.rs`): core `v1` namespaces (cluster
//!   scope), secrets, configmaps, services, pods, serviceaccounts, events;
//!   `events.k8s.io/v1` events (what kube-runtime's event recorder writes); `apps/v1`
//!   deployments; `gateway.networking.k8s.io/v1` gateways; `coordination.k8s.io/v1` leases;
//!   `meshtrust.io/v1alpha1` meshtrusts (cluster scope, `/status`);
//!   `apiextensions.k8s.io/v1` customresourcedefinitions (cluster scope). Creating a CRD
//!   registers its resources. URL shapes and scopes as on the real server; every cluster
//!   starts with the namespaces `default`, `kube-system`, `kube-public`, `kube-node-lease`
//!   (so a fresh cluster is at resourceVersion 4).
//! - **Discovery**: `/version` (v1.33.0), `/api`, `/api/v1`, `/apis`, `/apis/{g}`,
//!   `/apis/{g}/{v}` (APIResourceList with name, namespaced, kind, verbs, `/status`).
//! - **Reads**: GET; LIST with `labelSelector` (`=`, `==`, `!=`, `in`, `notin`, exists,
//!   `!`, `>`/`<`), `fieldSelector` (`metadata.name`, `metadata.namespace` and a few
//!   per-kind fields; others are 400), `limit`/`continue`; `{Kind}List` with
//!   `metadata.resourceVersion`; `Accept: …;as=PartialObjectMetadata[List]`.
//! - **Writes**: POST 201 (409 AlreadyExists; 404 when the namespace does not exist; 422 for
//!   an invalid or missing name; `generateName`; uid, creationTimestamp, generation 1;
//!   apiVersion/kind checked or filled; a set resourceVersion is refused like the real
//!   server does); PUT with the resourceVersion precondition (409 Conflict, 404 when absent,
//!   unconditional without one); PATCH merge, strategic merge, JSON patch and server-side
//!   apply (`fieldManager`, `force`); DELETE (200 with the object, 202 while finalizers
//!   remain, `preconditions`, deleting a Namespace deletes its objects); DELETE on a
//!   collection; `dryRun=All`. `generation` grows when anything outside metadata/status
//!   changes; a write that changes nothing stores nothing and emits no event; a Secret's
//!   `stringData` is folded into `data` and `data` must be base64; namespaces get the
//!   `kubernetes.io/metadata.name` label and phase `Active`.
//! - **`/status`** for resources flagged with it: writes to `/status` change only
//!   `.status`, writes to the main resource never change `.status`.
//! - **resourceVersion**: one monotonic counter per cluster, as strings.
//! - **Watch** (`watch=true|1`): newline-delimited events over a chunked response, replayed
//!   from the history (bounded, 4096 changes; [`Cluster::compact`] forgets it), selectors
//!   honoured (an object leaving the selection is `DELETED`), a too-old resourceVersion
//!   gives one `ERROR` event with a 410 Expired `Status`, `timeoutSeconds` ends the stream,
//!   `sendInitialEvents=true` sends the current objects and the `initial-events-end`
//!   bookmark.
//! - **Errors** are `Status` objects with the real reasons and messages, e.g.
//!   `secrets "cacerts" not found`, `details: {name, kind[, group]}`.
//!
//! # Simplifications
//! - No authentication or authorisation (the kubeconfig's token is not checked), no
//!   admission, no schema validation beyond names, no defaulting beyond the fields above,
//!   no controllers (a Deployment never gets Pods; nothing sets `status` but you).
//! - Server-side apply: lists are atomic, only `Apply` operations own fields, conflicts
//!   are between appliers only; see `apply.rs`. Strategic merge patch is a JSON merge
//!   patch (lists replaced, directives dropped).
//! - PUT on a missing object is 404 for every kind (the real server creates Leases and
//!   Events on update).
//! - Namespace deletion is immediate (no `Terminating` phase); deleting a CRD leaves its
//!   resources served. `limit`/`continue` pages are not a consistent snapshot. No periodic
//!   watch bookmarks. No protobuf, no CBOR, no YAML bodies except for apply; no Table
//!   output for `kubectl get` (it falls back to client-side columns), no `/openapi` (so no
//!   `kubectl apply`).
//!
//! # Injecting faults
//! [`Cluster::fail`] adds a [`FaultRule`]: requests matching its method and path fragment
//! are counted, and the `nth` of them (and the `times - 1` after it, or all of them with
//! `times: None`) meet its [`Fault`]: an HTTP error with a `Status` body, a delay, or no
//! answer at all. Every request, faulted or not, is logged ([`Cluster::requests`]).

mod apply;
mod cluster;
mod defaults;
mod discovery;
mod faults;
mod http;
mod kubeconfig;
mod meta;
mod patch;
mod requests;
mod resources;
mod selector;
mod status;
mod store;
mod watch;
mod write;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use axum::http::Method;
pub use cluster::Cluster;
pub use faults::{Fault, FaultRule};
pub use requests::RequestRecord;

/// The running servers, one per cluster, and their kubeconfig.
#[derive(Debug)]
pub struct Harness {
    runtime: Option<tokio::runtime::Runtime>,
    clusters: Vec<(Cluster, String)>,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// Starts one API server per name, each on its own random `127.0.0.1` port, and writes
    /// the kubeconfig (context = cluster name, current context = the first).
    ///
    /// # Panics
    /// When `names` is empty or has duplicates, or a port cannot be bound.
    pub fn start(names: &[&str]) -> Harness {
        assert!(
            !names.is_empty(),
            "Harness::start needs at least one cluster name"
        );
        for (i, name) in names.iter().enumerate() {
            assert!(
                !names[..i].contains(name),
                "cluster name {name:?} given twice"
            );
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("loopback-apiserver")
            .enable_all()
            .build()
            .expect("a tokio runtime for the loopback API server");
        let mut clusters = Vec::new();
        for name in names {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
            listener
                .set_nonblocking(true)
                .expect("non-blocking listener");
            let url = format!("http://{}", listener.local_addr().expect("bound address"));
            let state = Arc::new(cluster::ClusterState::new(name));
            let app = http::router(Arc::clone(&state));
            runtime.spawn(async move {
                let listener = tokio::net::TcpListener::from_std(listener)
                    .expect("a tokio listener from a bound std listener");
                axum::serve(listener, app).await
            });
            clusters.push((Cluster { state }, url));
        }
        let dir = tempfile::tempdir().expect("a temporary directory for the kubeconfig");
        let kubeconfig = dir.path().join("kubeconfig");
        let entries: Vec<(String, String)> = clusters
            .iter()
            .map(|(c, url)| (c.name().to_string(), url.clone()))
            .collect();
        kubeconfig::write(&kubeconfig, &entries).expect("writing the kubeconfig");
        Harness {
            runtime: Some(runtime),
            clusters,
            kubeconfig,
            _dir: dir,
        }
    }

    /// The kubeconfig file (in a temporary directory that lives as long as the harness).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The kube-rs configuration for `cluster`'s context, e.g. to set timeouts.
    ///
    /// # Panics
    /// When the kubeconfig or the context cannot be read.
    pub async fn kube_config(&self, cluster: &str) -> kube::Config {
        // The AWS SDK in the test binaries enables aws-lc-rs too; rustls needs one provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let kubeconfig =
            kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("the kubeconfig parses");
        let options = kube::config::KubeConfigOptions {
            context: Some(cluster.to_string()),
            ..kube::config::KubeConfigOptions::default()
        };
        kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .expect("the context loads")
    }

    /// A kube-rs client for `cluster`'s context.
    ///
    /// # Panics
    /// As [`Harness::kube_config`].
    pub async fn kube_client(&self, cluster: &str) -> kube::Client {
        kube::Client::try_from(self.kube_config(cluster).await).expect("a client")
    }

    /// The cluster names, in the order given to [`Harness::start`].
    pub fn cluster_names(&self) -> Vec<String> {
        self.clusters
            .iter()
            .map(|(c, _)| c.name().to_string())
            .collect()
    }

    fn entry(&self, name: &str) -> &(Cluster, String) {
        self.clusters
            .iter()
            .find(|(c, _)| c.name() == name)
            .unwrap_or_else(|| panic!("no cluster {name:?} in this harness"))
    }

    /// `http://127.0.0.1:PORT` of a cluster's server. Panics on an unknown name.
    pub fn url(&self, cluster: &str) -> String {
        self.entry(cluster).1.clone()
    }

    /// A handle to a cluster's store, request log and fault rules. Panics on an unknown
    /// name.
    pub fn cluster(&self, name: &str) -> Cluster {
        self.entry(name).0.clone()
    }

    /// Stops every server now (open watches and hanging requests are cut). Dropping the
    /// harness does the same.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown();
    }
}
