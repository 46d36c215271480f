//! A loopback `meshtrust serve` for the client's tests: real HTTPS (rustls on ring, HTTP/2
//! or HTTP/1.1) with a serving certificate from a test TLS root, and canned answers built
//! by `meshtrust_ca` (intermediates signed by a [`LocalIssuer`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_server::tls_rustls::RustlsConfig;
use meshtrust_ca::{
    ClusterName, Csr, IntermediateParams, KeyType, PrivateKey, RootCa, RootParams, fmt_time,
    sha256_hex,
};
use meshtrust_issuer::server::api::*;
use meshtrust_issuer::{Clock, IssueRequest, Issuer, LocalIssuer};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer, PrivateKeyDer};

/// The admin token the fake accepts.
pub const ADMIN_TOKEN: &str = "admin-secret-token";

/// A TLS root and a serving certificate signed by it.
pub struct ServingPki {
    /// The test TLS root (not the mesh's root).
    pub tls_root: RootCa,
    /// What the server presents: the leaf, then (when asked) the root.
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivateKey,
}

impl ServingPki {
    /// A serving certificate for `names`, presented with the root when `with_root`.
    pub fn new(names: &[&str], with_root: bool) -> ServingPki {
        ServingPki::named("Test TLS Root", names, with_root)
    }

    /// The same, from a TLS root with subject CN `root_name`.
    pub fn named(root_name: &str, names: &[&str], with_root: bool) -> ServingPki {
        let now = Clock::system().now();
        let mut params = RootParams::default();
        params.organization = "meshtrust tests".to_string();
        params.common_name = root_name.to_string();
        let tls_root = params.self_signed(now).unwrap();
        let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
        let names: Vec<String> = names.iter().map(ToString::to_string).collect();
        let leaf = tls_root
            .sign_server_certificate(&key, &names, time::Duration::days(1), now)
            .unwrap();
        let mut chain = vec![leaf.der().clone()];
        if with_root {
            chain.push(tls_root.certificate().der().clone());
        }
        ServingPki {
            tls_root,
            chain,
            key,
        }
    }

    /// The root's SHA-256 as openssl prints it (`AB:CD:…`), to show that form is accepted.
    pub fn root_fingerprint(&self) -> String {
        self.tls_root.certificate().fingerprint()
    }

    /// The root's PEM (a CA bundle file).
    pub fn root_pem(&self) -> String {
        self.tls_root.certificate().to_pem()
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::from_pem_slice(self.key.to_pem().as_bytes()).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// The fake's state: the mesh root it signs with, each cluster's enrollment token, and how
/// many requests reached it.
pub struct Service {
    issuer: LocalIssuer,
    tokens: BTreeMap<String, String>,
    /// Requests received, on any route.
    pub requests: AtomicUsize,
}

impl Service {
    /// A service with a fresh mesh root, accepting `tokens` (cluster → token).
    pub fn new(tokens: &[(&str, &str)]) -> Arc<Service> {
        let root = RootParams::default()
            .self_signed(Clock::system().now())
            .unwrap();
        Arc::new(Service {
            issuer: LocalIssuer::new(root),
            tokens: tokens
                .iter()
                .map(|(c, t)| (c.to_string(), t.to_string()))
                .collect(),
            requests: AtomicUsize::new(0),
        })
    }

    /// The mesh root every intermediate chains to.
    pub fn root(&self) -> &RootCa {
        self.issuer.root()
    }

    /// The requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// The `/v1` routes of `meshtrust serve`, answered by `service`.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/v1/trust-bundle", get(trust_bundle))
        .route("/v1/clusters/{name}/enroll", post(enroll))
        .route("/v1/admin/clusters", get(clusters))
        .route("/v1/admin/tokens", post(create_token))
        .with_state(service)
}

/// Serves `app` over HTTPS with `pki` on a loopback port; returns the address.
pub async fn serve_tls(app: Router, pki: &ServingPki) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = RustlsConfig::from_config(pki.server_config());
    let server = axum_server::from_tcp_rustls(listener, tls).unwrap();
    tokio::spawn(server.serve(app.into_make_service()));
    addr
}

/// Serves `app` over plain HTTP on a loopback port; returns the address.
pub async fn serve_plain(app: Router) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = axum_server::from_tcp(listener).unwrap();
    tokio::spawn(server.serve(app.into_make_service()));
    addr
}

type Refusal = (StatusCode, Json<ErrorResponse>);

fn refuse(status: StatusCode, error: &str, message: &str) -> Refusal {
    let body = ErrorResponse {
        error: error.to_string(),
        message: message.to_string(),
    };
    (status, Json(body))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

async fn trust_bundle(State(s): State<Arc<Service>>) -> Json<TrustBundleResponse> {
    s.requests.fetch_add(1, Ordering::SeqCst);
    let root = s.root().certificate();
    Json(TrustBundleResponse {
        roots: vec![RootInfo {
            fingerprint_sha256: sha256_hex(root.der()),
            subject: root.subject(),
            not_after: fmt_time(root.not_after()),
        }],
        trust_bundle_pem: root.to_pem(),
        rotation_phase: RotationPhase::Steady,
        policy: PolicyInfo {
            organization: "Istio".to_string(),
            common_name: "Intermediate CA".to_string(),
            dns_names: vec!["istiod.istio-system.svc".to_string()],
            key_types: vec!["ecdsa-p256".to_string()],
            path_len: 0,
            validity_seconds: 365 * 86400,
        },
    })
}

async fn enroll(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Json(body): Json<EnrollRequest>,
) -> Result<Json<IssuedResponse>, Refusal> {
    s.requests.fetch_add(1, Ordering::SeqCst);
    if s.tokens.get(&name).map(String::as_str) != bearer(&headers) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "token_used",
            &format!(
                "the enrollment token for cluster {name} was already used; ask an admin for a new one"
            ),
        ));
    }
    let cluster = ClusterName::new(&name).unwrap();
    let csr = CertificateSigningRequestDer::from_pem_slice(body.csr.as_bytes()).unwrap();
    let params = IntermediateParams::new(cluster.clone());
    let now = Clock::system().now();
    let request = IssueRequest::new(
        cluster,
        Csr::from_der(csr.as_ref().to_vec()),
        params.profile(),
        now,
    );
    let issued = s.issuer.issue_intermediate(&request).await.unwrap();
    Ok(Json(IssuedResponse {
        cluster: name,
        serial: issued.certificate.serial_hex(),
        certificate: issued.certificate.to_pem(),
        chain: issued.chain.iter().map(|c| c.to_pem()).collect(),
        trust_bundle: issued.trust_bundle.to_pem(),
        root_fingerprints: issued
            .trust_bundle
            .roots()
            .iter()
            .map(|r| sha256_hex(r.der()))
            .collect(),
        not_after: fmt_time(issued.certificate.not_after()),
        renew_at: fmt_time(now),
        notices: issued.notices,
    }))
}

fn admin(s: &Service, headers: &HeaderMap) -> Result<(), Refusal> {
    s.requests.fetch_add(1, Ordering::SeqCst);
    if bearer(headers) == Some(ADMIN_TOKEN) {
        return Ok(());
    }
    Err(refuse(
        StatusCode::UNAUTHORIZED,
        "admin_token",
        "this route needs the admin token",
    ))
}

async fn clusters(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
) -> Result<Json<ClusterList>, Refusal> {
    admin(&s, &headers)?;
    Ok(Json(ClusterList {
        clusters: vec![ClusterEntry {
            name: "east".to_string(),
            state: ClusterState::Enrolled,
            serial: "01".to_string(),
            not_after: "2027-01-01T00:00:00Z".to_string(),
            last_seen: "2026-01-01T00:00:00Z".to_string(),
            roots: vec![sha256_hex(s.root().certificate().der())],
            key_fingerprint: "00".repeat(32),
            reported: None,
        }],
    }))
}

async fn create_token(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    Json(body): Json<TokenRequest>,
) -> Result<Json<TokenResponse>, Refusal> {
    admin(&s, &headers)?;
    Ok(Json(TokenResponse {
        token: format!("{ENROLLMENT_TOKEN_PREFIX}{}", "A".repeat(43)),
        cluster: body.cluster,
        expires_at: format!("in {} seconds", body.ttl_seconds),
    }))
}
