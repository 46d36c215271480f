//! Test-only: a mocked Kubernetes API server for reconcile tests, after kube-rs/controller-rs's
//! `fixtures.rs`. The reconciler talks to a `tower_test` mock service; an
//! [`ApiServerVerifier`] task takes the requests one by one in the order a [`Scenario`]
//! expects, checks method, path and the fields of each write that matter, answers as the API
//! server would, and fails when a request is missing, unexpected or left over.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use http::{Method, Request, Response, StatusCode};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::client::Body;
use kube::runtime::events::{Recorder, Reporter};
use meshtrust_ca::{
    Backoff, BundleFormat, CaCerts, ClusterName, IntermediateParams, PrivateKey, RootCa,
    VerifyOptions, verify_bundle,
};
use meshtrust_issuer::{Clock, ManualClock};
use meshtrust_kube::{CACERTS, MANAGED_BY, NETWORK_LABEL, cacerts_secret, is_managed};
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::{Duration, OffsetDateTime};
use tokio::task::JoinHandle;
use tower_test::mock::{self, Handle, SendResponse};

use crate::context::Context;
use crate::crd::{MeshTrust, MeshTrustStatus, ROOT_CERT, ROOT_KEY};

/// Name of the `MeshTrust` under test.
pub const MESH: &str = "mesh";
/// Its one cluster (`local: true`, so reached through the same mock client).
pub const CLUSTER: &str = "cluster1";
/// That cluster's network.
pub const NETWORK: &str = "net1";
/// Where istiod runs, and `cacerts` is written.
pub const ISTIO_NAMESPACE: &str = "istio-system";
/// The local issuer's root Secret, `meshtrust-system/root`.
pub const ROOT_SECRET: (&str, &str) = ("meshtrust-system", "root");
/// The resourceVersion of every object the mock server already holds.
pub const HELD_VERSION: &str = "42";

/// How long a test waits for the verifier once the reconcile has returned.
const VERIFIER_TIMEOUT: StdDuration = StdDuration::from_secs(10);

impl MeshTrust {
    /// One local cluster `cluster1` on network `net1`, a local issuer whose root is kept in
    /// Secret `meshtrust-system/root`, generation 1 and no status yet.
    pub fn test() -> MeshTrust {
        let spec = serde_yaml_ng::from_str(&format!(
            "issuer:\n  local:\n    secretRef: {{name: {}, namespace: {}}}\n\
             clusters:\n  - {{name: {CLUSTER}, network: {NETWORK}, local: true}}\n",
            ROOT_SECRET.1, ROOT_SECRET.0
        ))
        .expect("a valid test spec");
        let mut mt = MeshTrust::new(MESH, spec);
        mt.metadata.generation = Some(1);
        mt.metadata.uid = Some("5e1f1c0a-0000-4000-8000-000000000001".into());
        mt.metadata.resource_version = Some("7".into());
        mt
    }

    /// The same resource with its one cluster renamed.
    pub fn with_cluster_name(mut self, name: &str) -> MeshTrust {
        self.spec.clusters[0].name = name.to_string();
        self
    }
}

/// The time a test runs at: the system clock's, once (certificates are also checked by
/// openssl and rustls-webpki at their own current time, so it must be close to it).
pub fn test_now() -> OffsetDateTime {
    Clock::system().now()
}

impl Context {
    /// A context over a mocked API server: a manual clock standing at `now`, small backoff
    /// values, fresh metrics and health, and a recorder on the mock client.
    pub fn test(now: OffsetDateTime) -> (Arc<Context>, ManualClock, ApiServerVerifier) {
        let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: "meshtrust".into(),
                instance: None,
            },
        );
        let (clock, manual) = ManualClock::at(now);
        let ctx = Context::new(
            client,
            ROOT_SECRET.0,
            clock,
            Backoff {
                base: Duration::seconds(2),
                cap: Duration::seconds(8),
            },
            StdDuration::from_secs(3600),
            StdDuration::from_secs(5),
            recorder,
        );
        (Arc::new(ctx), manual, ApiServerVerifier(handle))
    }
}

/// A root generated at `at`, valid for ten years.
pub fn root_at(at: OffsetDateTime) -> RootCa {
    meshtrust_ca::RootParams::default()
        .self_signed(at)
        .expect("a root")
}

/// The local issuer's root Secret holding `root`, as the API server returns it.
pub fn root_secret(root: &RootCa) -> Secret {
    Secret {
        metadata: held(ROOT_SECRET.0, ROOT_SECRET.1),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([
            (
                ROOT_CERT.to_string(),
                ByteString(root.certificate().to_pem().into_bytes()),
            ),
            (
                ROOT_KEY.to_string(),
                ByteString(root.key().to_pem().as_bytes().to_vec()),
            ),
        ])),
        ..Secret::default()
    }
}

/// A bundle for [`CLUSTER`] as the spec asks for it, issued by `root` at `at` for `validity`.
pub fn bundle_issued_at(root: &RootCa, at: OffsetDateTime, validity: Duration) -> CaCerts {
    let mut params = IntermediateParams::new(ClusterName::new(CLUSTER).expect("a valid name"));
    params.validity = validity;
    let key = PrivateKey::generate(params.key_type).expect("a key");
    let csr = params.csr(&key).expect("a CSR");
    let signed = root
        .sign_intermediate(&csr, &params.profile(), at)
        .expect("an intermediate");
    root.cacerts(signed.certificate, key)
}

/// The `cacerts` Secret meshtrust would have written for `bundle`, as the API server returns
/// it (resourceVersion [`HELD_VERSION`]).
pub fn held_cacerts(bundle: &CaCerts, at: OffsetDateTime) -> Secret {
    let files = bundle.bundle_files(BundleFormat::Istio);
    let report = verify_bundle(&files, &VerifyOptions::at(at));
    let mut secret = cacerts_secret(ISTIO_NAMESPACE, &files, &report);
    secret.metadata = ObjectMeta {
        labels: secret.metadata.labels.take(),
        annotations: secret.metadata.annotations.take(),
        ..held(ISTIO_NAMESPACE, CACERTS)
    };
    secret
}

/// `secret` as if another tool had written it (no managed-by label).
pub fn foreign(mut secret: Secret) -> Secret {
    if let Some(labels) = secret.metadata.labels.as_mut() {
        labels.remove(MANAGED_BY.0);
    }
    secret
}

fn held(namespace: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(namespace.into()),
        resource_version: Some(HELD_VERSION.into()),
        uid: Some(format!("uid-{namespace}-{name}")),
        ..ObjectMeta::default()
    }
}

/// What the API server holds before the reconcile, and how it answers.
pub enum Scenario {
    /// Nothing exists: the root Secret is generated, then the namespace (with its network
    /// label) and `cacerts` are created.
    FreshCluster,
    /// The root and a current `cacerts` exist: only the status is written.
    UpToDate { root: Secret, cacerts: Secret },
    /// [`Scenario::UpToDate`], reconciled twice at the same generation: the second round
    /// reuses the issuer built by the first (no second read of the root Secret).
    UpToDateTwice { root: Secret, cacerts: Secret },
    /// `cacerts` is past its renewal time: it is replaced with the observed resourceVersion
    /// (after a backup when meshtrust did not write it).
    Renewing { root: Secret, cacerts: Secret },
    /// The root exists, `cacerts` does not, and creating it fails with a 500.
    CacertsCreateFails { root: Secret },
    /// The spec is invalid: no request but the status patch.
    InvalidSpec,
}

/// What the reconciler wrote, for the test to check.
#[derive(Default)]
pub struct Written {
    /// The root Secret it created.
    pub root: Option<Secret>,
    /// The backup of a foreign `cacerts` it created.
    pub backup: Option<Secret>,
    /// The `cacerts` Secret it created or replaced (also when the write was refused).
    pub cacerts: Option<Secret>,
    /// The events it published, in order.
    pub events: Vec<Event>,
    /// The status it patched.
    pub status: Option<MeshTrustStatus>,
}

type Exchange = (Request<Body>, SendResponse<Response<Body>>);

/// The other end of the mock client: answers requests in the order a [`Scenario`] expects.
pub struct ApiServerVerifier(Handle<Request<Body>, Response<Body>>);

impl ApiServerVerifier {
    /// Serves `scenario` for `mt` in a task; the task ends once every client is dropped, and
    /// fails on a missing, unexpected or extra request.
    pub fn run(mut self, mt: MeshTrust, scenario: Scenario) -> JoinHandle<Written> {
        tokio::spawn(async move {
            let mut w = Written::default();
            match scenario {
                Scenario::FreshCluster => {
                    self.get_root_secret(None).await;
                    w.root = Some(self.create_root_secret().await);
                    w.events.push(self.publish_event("RootGenerated").await);
                    self.get_namespace(None).await;
                    self.create_namespace().await;
                    w.cacerts = Some(self.create_cacerts(StatusCode::CREATED).await);
                    w.events.push(self.publish_event("Issued").await);
                }
                Scenario::UpToDate { root, cacerts } => {
                    self.get_root_secret(Some(&root)).await;
                    self.get_namespace(Some(NETWORK)).await;
                    self.get_cacerts(Some(&cacerts)).await;
                    self.list_istiod_pods().await;
                }
                Scenario::UpToDateTwice { root, cacerts } => {
                    self.get_root_secret(Some(&root)).await;
                    self.get_namespace(Some(NETWORK)).await;
                    self.get_cacerts(Some(&cacerts)).await;
                    self.list_istiod_pods().await;
                    self.patch_status(mt.clone()).await;
                    // The same generation again: the issuer is reused, the root Secret
                    // is not read a second time.
                    self.get_namespace(Some(NETWORK)).await;
                    self.get_cacerts(Some(&cacerts)).await;
                    self.list_istiod_pods().await;
                }
                Scenario::Renewing { root, cacerts } => {
                    self.get_root_secret(Some(&root)).await;
                    self.get_namespace(Some(NETWORK)).await;
                    self.get_cacerts(Some(&cacerts)).await;
                    self.list_istiod_pods().await;
                    if !is_managed(&cacerts) {
                        w.backup = Some(self.create_backup(&cacerts).await);
                    }
                    w.cacerts = Some(self.replace_cacerts().await);
                    w.events.push(self.publish_event("Issued").await);
                }
                Scenario::CacertsCreateFails { root } => {
                    self.get_root_secret(Some(&root)).await;
                    self.get_namespace(Some(NETWORK)).await;
                    self.get_cacerts(None).await;
                    self.list_istiod_pods().await;
                    w.cacerts = Some(self.create_cacerts(StatusCode::INTERNAL_SERVER_ERROR).await);
                    w.events.push(self.publish_event("IssuanceFailed").await);
                }
                Scenario::InvalidSpec => {}
            }
            w.status = Some(self.patch_status(mt).await);
            self.no_more_requests().await;
            w
        })
    }

    async fn get_root_secret(&mut self, held: Option<&Secret>) {
        let (ns, name) = ROOT_SECRET;
        let (_, send) = self
            .next(
                Method::GET,
                &format!("/api/v1/namespaces/{ns}/secrets/{name}"),
            )
            .await;
        answer_get(send, held, "secrets", name);
    }

    async fn create_root_secret(&mut self) -> Secret {
        let (request, send) = self
            .next(
                Method::POST,
                &format!("/api/v1/namespaces/{}/secrets", ROOT_SECRET.0),
            )
            .await;
        let secret: Secret = body(request).await;
        assert_eq!(secret.metadata.name.as_deref(), Some(ROOT_SECRET.1));
        assert_eq!(keys(&secret), [ROOT_CERT, ROOT_KEY], "root Secret keys");
        created(send, &secret);
        secret
    }

    async fn get_namespace(&mut self, network: Option<&str>) {
        let (_, send) = self
            .next(
                Method::GET,
                &format!("/api/v1/namespaces/{ISTIO_NAMESPACE}"),
            )
            .await;
        let ns = network.map(|n| Namespace {
            metadata: ObjectMeta {
                name: Some(ISTIO_NAMESPACE.into()),
                labels: Some(BTreeMap::from([(NETWORK_LABEL.into(), n.into())])),
                resource_version: Some(HELD_VERSION.into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        });
        answer_get(send, ns.as_ref(), "namespaces", ISTIO_NAMESPACE);
    }

    async fn create_namespace(&mut self) {
        let (request, send) = self.next(Method::POST, "/api/v1/namespaces").await;
        let ns: Namespace = body(request).await;
        assert_eq!(ns.metadata.name.as_deref(), Some(ISTIO_NAMESPACE));
        assert_eq!(
            ns.metadata.labels.unwrap_or_default().get(NETWORK_LABEL),
            Some(&NETWORK.to_string()),
            "the namespace is created with the spec's network label"
        );
        created(
            send,
            &serde_json::json!({"metadata": {"name": ISTIO_NAMESPACE}}),
        );
    }

    async fn get_cacerts(&mut self, held: Option<&Secret>) {
        let (_, send) = self.next(Method::GET, &cacerts_path()).await;
        answer_get(send, held, "secrets", CACERTS);
    }

    async fn list_istiod_pods(&mut self) {
        let (request, send) = self
            .next(
                Method::GET,
                &format!("/api/v1/namespaces/{ISTIO_NAMESPACE}/pods"),
            )
            .await;
        let query = request.uri().query().unwrap_or_default();
        assert!(
            query.contains("labelSelector=app%3Distiod"),
            "pods are listed by app=istiod: {query}"
        );
        let pods = serde_json::json!({
            "apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": HELD_VERSION},
            "items": [{
                "metadata": {"name": "istiod-1", "namespace": ISTIO_NAMESPACE, "labels": {"app": "istiod"}},
                "status": {"phase": "Running"},
            }],
        });
        reply(send, StatusCode::OK, &pods);
    }

    /// A `cacerts` create, answered with `code`.
    async fn create_cacerts(&mut self, code: StatusCode) -> Secret {
        let (request, send) = self
            .next(
                Method::POST,
                &format!("/api/v1/namespaces/{ISTIO_NAMESPACE}/secrets"),
            )
            .await;
        let secret: Secret = body(request).await;
        assert_eq!(secret.metadata.name.as_deref(), Some(CACERTS));
        assert_eq!(secret.metadata.resource_version, None, "a create has none");
        if code.is_success() {
            created(send, &secret);
        } else {
            reply(
                send,
                code,
                &failure(code, "InternalError", "etcdserver: request timed out"),
            );
        }
        secret
    }

    async fn create_backup(&mut self, old: &Secret) -> Secret {
        let (request, send) = self
            .next(
                Method::POST,
                &format!("/api/v1/namespaces/{ISTIO_NAMESPACE}/secrets"),
            )
            .await;
        let backup: Secret = body(request).await;
        let name = backup.metadata.name.clone().unwrap_or_default();
        assert!(
            name.starts_with("cacerts-backup-"),
            "a backup name, not {name}"
        );
        assert_eq!(backup.data, old.data, "the backup keeps the old bundle");
        created(send, &backup);
        backup
    }

    async fn replace_cacerts(&mut self) -> Secret {
        let (request, send) = self.next(Method::PUT, &cacerts_path()).await;
        let secret: Secret = body(request).await;
        assert_eq!(
            secret.metadata.resource_version.as_deref(),
            Some(HELD_VERSION),
            "a replace carries the observed resourceVersion"
        );
        reply(send, StatusCode::OK, &secret);
        secret
    }

    async fn publish_event(&mut self, reason: &str) -> Event {
        let (request, send) = self
            .next(
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/default/events",
            )
            .await;
        let event: Event = body(request).await;
        assert_eq!(event.reason.as_deref(), Some(reason), "event reason");
        let regarding = event.regarding.clone().unwrap_or_default();
        assert_eq!(
            (regarding.kind.as_deref(), regarding.name.as_deref()),
            (Some("MeshTrust"), Some(MESH))
        );
        created(send, &event);
        event
    }

    async fn patch_status(&mut self, mut mt: MeshTrust) -> MeshTrustStatus {
        let (request, send) = self
            .next(
                Method::PATCH,
                &format!("/apis/meshtrust.io/v1alpha1/meshtrusts/{MESH}/status"),
            )
            .await;
        assert_eq!(
            request.headers().get(http::header::CONTENT_TYPE),
            Some(&http::HeaderValue::from_static(
                "application/apply-patch+yaml"
            )),
            "status is written by server-side apply"
        );
        let query = request.uri().query().unwrap_or_default().to_string();
        assert!(
            query.contains("fieldManager=meshtrust") && query.contains("force=true"),
            "one field manager, forced: {query}"
        );
        let patch: serde_json::Value = body(request).await;
        let status: MeshTrustStatus =
            serde_json::from_value(patch["status"].clone()).expect("a MeshTrust status");
        mt.status = Some(status.clone());
        reply(send, StatusCode::OK, &mt);
        status
    }

    /// Takes the next request, which must be `method path`.
    async fn next(&mut self, method: Method, path: &str) -> Exchange {
        let Some((request, send)) = self.0.next_request().await else {
            panic!("the reconciler finished without sending {method} {path}");
        };
        assert!(
            request.method() == method && request.uri().path() == path,
            "expected {method} {path}, got {} {}",
            request.method(),
            request.uri()
        );
        (request, send)
    }

    /// Waits until every client is dropped, failing on any further request.
    async fn no_more_requests(mut self) {
        if let Some((request, _)) = self.0.next_request().await {
            panic!(
                "unexpected request after the scenario: {} {}",
                request.method(),
                request.uri()
            );
        }
    }
}

/// The verifier's record once it has seen the whole scenario; a failed check in the
/// verifier fails the test with its own message.
pub async fn verified(verifier: JoinHandle<Written>) -> Written {
    match tokio::time::timeout(VERIFIER_TIMEOUT, verifier).await {
        Err(_) => panic!(
            "the mock API server still waits after {VERIFIER_TIMEOUT:?}: is a client still alive?"
        ),
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("the mock API server task failed: {e}"),
        Ok(Ok(written)) => written,
    }
}

fn cacerts_path() -> String {
    format!("/api/v1/namespaces/{ISTIO_NAMESPACE}/secrets/{CACERTS}")
}

fn keys(secret: &Secret) -> Vec<&str> {
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, _)| k.as_str())
        .collect()
}

async fn body<T: DeserializeOwned>(request: Request<Body>) -> T {
    let bytes = request
        .into_body()
        .collect_bytes()
        .await
        .expect("a request body");
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "unexpected request body ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    })
}

fn reply<T: Serialize>(send: SendResponse<Response<Body>>, code: StatusCode, body: &T) {
    let bytes = serde_json::to_vec(body).expect("JSON");
    send.send_response(
        Response::builder()
            .status(code)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(bytes))
            .expect("a response"),
    );
}

/// A create accepted: the object as sent, with the server's metadata added.
fn created<T: Serialize>(send: SendResponse<Response<Body>>, object: &T) {
    let mut json = serde_json::to_value(object).expect("JSON");
    json["metadata"]["resourceVersion"] = "1".into();
    json["metadata"]["uid"] = "uid-created".into();
    reply(send, StatusCode::CREATED, &json);
}

fn answer_get<T: Serialize>(
    send: SendResponse<Response<Body>>,
    held: Option<&T>,
    kind: &str,
    name: &str,
) {
    match held {
        Some(object) => reply(send, StatusCode::OK, object),
        None => reply(
            send,
            StatusCode::NOT_FOUND,
            &failure(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("{kind} \"{name}\" not found"),
            ),
        ),
    }
}

/// A `Status` failure body, as the API server sends with an error code.
fn failure(code: StatusCode, reason: &str, message: &str) -> serde_json::Value {
    serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16(),
    })
}
