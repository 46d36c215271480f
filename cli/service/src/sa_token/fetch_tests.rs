//! OIDC discovery against a real HTTP server on a loopback address: the first fetch, key
//! rotation, the refresh rate limit and TTL, and the ways a fetch fails.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum_server::tls_rustls::RustlsConfig;
use meshtrust_ca::{KeyType, PrivateKey, RootParams};
use meshtrust_issuer::{Clock, ManualClock};
use rustls::ServerConfig;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::sa_token::test_issuer::{NOW, SUBJECT, TestKey, claims, jwks};
use crate::sa_token::{KEY_REFRESH_INTERVAL, KEY_TTL, ServiceAccountIssuer, Verifier};

/// A member cluster's issuer as EKS or an API server publishes it.
struct OidcServer {
    base: String,
    served: Arc<Mutex<Served>>,
    task: tokio::task::JoinHandle<()>,
}

struct Served {
    issuer: String,
    jwks_uri: String,
    jwks: Value,
    /// Requests answered, of either document.
    hits: usize,
    failing: bool,
}

type Shared = Arc<Mutex<Served>>;

impl OidcServer {
    /// Serves `keys`, as issuer `http://127.0.0.1:<port>`.
    async fn start(keys: &[&TestKey]) -> OidcServer {
        OidcServer::serve(keys, None).await
    }

    /// Serves `keys` over TLS, as issuer `https://127.0.0.1:<port>`.
    async fn start_tls(keys: &[&TestKey], tls: ServerConfig) -> OidcServer {
        OidcServer::serve(keys, Some(tls)).await
    }

    async fn serve(keys: &[&TestKey], tls: Option<ServerConfig>) -> OidcServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base = format!("{scheme}://{}", listener.local_addr().unwrap());
        let served = Arc::new(Mutex::new(Served {
            issuer: base.clone(),
            jwks_uri: format!("{base}/openid/v1/jwks"),
            jwks: jwks(keys),
            hits: 0,
            failing: false,
        }));
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(document))
            .route("/openid/v1/jwks", get(key_set))
            .with_state(served.clone());
        listener.set_nonblocking(true).unwrap();
        let task = match tls {
            None => {
                let listener = TcpListener::from_std(listener).unwrap();
                tokio::spawn(async move { axum::serve(listener, app).await.unwrap() })
            }
            Some(tls) => {
                let tls = RustlsConfig::from_config(Arc::new(tls));
                let server = axum_server::from_tcp_rustls(listener, tls).unwrap();
                tokio::spawn(async move { server.serve(app.into_make_service()).await.unwrap() })
            }
        };
        OidcServer { base, served, task }
    }

    fn served(&self) -> MutexGuard<'_, Served> {
        self.served.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn hits(&self) -> usize {
        self.served().hits
    }

    /// A token of this issuer for the enrolling ServiceAccount, signed by `key`.
    fn token(&self, key: &TestKey) -> String {
        let issuer = self.served().issuer.clone();
        let mut claims = claims(NOW);
        claims["iss"] = json!(issuer);
        key.sign(&claims)
    }
}

impl Drop for OidcServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(served: &Shared, body: impl FnOnce(&Served) -> Value) -> Response {
    let mut served = served.lock().unwrap_or_else(PoisonError::into_inner);
    served.hits += 1;
    if served.failing {
        return (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response();
    }
    Json(body(&served)).into_response()
}

async fn document(State(served): State<Shared>) -> Response {
    answer(&served, |s| {
        json!({
            "issuer": s.issuer,
            "jwks_uri": s.jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })
    })
}

async fn key_set(State(served): State<Shared>) -> Response {
    answer(&served, |s| s.jwks.clone())
}

async fn discovering(server: &OidcServer, clock: Clock) -> Verifier {
    let issuer = ServiceAccountIssuer::new(server.base.clone(), SUBJECT);
    Verifier::new([("east".to_string(), issuer)], clock)
        .await
        .unwrap()
}

async fn code(verifier: &Verifier, token: &str) -> &'static str {
    match verifier.verify("east", token, NOW).await {
        Ok(_) => "accepted",
        Err(refusal) => refusal.code(),
    }
}

#[tokio::test]
async fn keys_are_discovered_from_the_issuer_when_the_verifier_starts() {
    let key = TestKey::rsa("k1");
    let server = OidcServer::start(&[&key]).await;
    let (clock, _) = ManualClock::at(NOW);
    let verifier = discovering(&server, clock).await;
    assert_eq!(server.hits(), 2, "the discovery document, then the JWKS");
    assert_eq!(code(&verifier, &server.token(&key)).await, "accepted");
    assert_eq!(server.hits(), 2, "known keys are not fetched again");
}

#[tokio::test]
async fn a_token_naming_a_new_key_fetches_the_keys_once() {
    let (old, new) = (TestKey::ec256("old"), TestKey::ec256("new"));
    let server = OidcServer::start(&[&old]).await;
    let (clock, manual) = ManualClock::at(NOW);
    let verifier = discovering(&server, clock).await;
    manual.advance(KEY_REFRESH_INTERVAL);
    server.served().jwks = jwks(&[&old, &new]);
    assert_eq!(code(&verifier, &server.token(&new)).await, "accepted");
    assert_eq!(server.hits(), 4, "one refresh: the document and the JWKS");
    assert_eq!(code(&verifier, &server.token(&new)).await, "accepted");
    assert_eq!(code(&verifier, &server.token(&old)).await, "accepted");
    assert_eq!(server.hits(), 4);
}

#[tokio::test]
async fn unknown_keys_fetch_at_most_once_a_minute() {
    let keys = [
        TestKey::ec256("k1"),
        TestKey::ec256("k2"),
        TestKey::ec256("k3"),
    ];
    let server = OidcServer::start(&[&keys[0]]).await;
    let (clock, manual) = ManualClock::at(NOW);
    let verifier = discovering(&server, clock).await;
    server.served().jwks = jwks(&[&keys[0], &keys[1]]);
    for _ in 0..5 {
        assert_eq!(
            code(&verifier, &server.token(&keys[1])).await,
            "sa_token_unknown_key"
        );
    }
    assert_eq!(server.hits(), 2, "the start fetched a moment ago");
    let refusal = verifier
        .verify("east", &server.token(&keys[1]), NOW)
        .await
        .unwrap_err();
    assert!(
        refusal.to_string().contains("at most once a minute"),
        "{refusal}"
    );

    manual.advance(KEY_REFRESH_INTERVAL);
    assert_eq!(code(&verifier, &server.token(&keys[1])).await, "accepted");
    assert_eq!(server.hits(), 4);
    server.served().jwks = jwks(&[&keys[0], &keys[1], &keys[2]]);
    manual.advance(KEY_REFRESH_INTERVAL / 2);
    assert_eq!(
        code(&verifier, &server.token(&keys[2])).await,
        "sa_token_unknown_key"
    );
    assert_eq!(server.hits(), 4);
    manual.advance(KEY_REFRESH_INTERVAL / 2);
    assert_eq!(code(&verifier, &server.token(&keys[2])).await, "accepted");
    assert_eq!(server.hits(), 6);
}

#[tokio::test]
async fn a_clock_moved_ahead_moves_the_refresh_with_it() {
    // The end-to-end suites move a running service's wall clock, not its monotonic one.
    let (old, new) = (TestKey::ec256("old"), TestKey::ec256("new"));
    let server = OidcServer::start(&[&old]).await;
    let dir = tempfile::tempdir().unwrap();
    let offset = dir.path().join("clock-offset");
    let verifier = discovering(&server, Clock::offset_file(&offset)).await;
    server.served().jwks = jwks(&[&old, &new]);
    std::fs::write(&offset, KEY_REFRESH_INTERVAL.as_secs().to_string()).unwrap();
    assert_eq!(code(&verifier, &server.token(&new)).await, "accepted");
    assert_eq!(server.hits(), 4, "one refresh: the document and the JWKS");
}

#[tokio::test]
async fn keys_older_than_the_ttl_are_fetched_again_and_a_removed_key_is_refused() {
    let (old, new) = (TestKey::ec256("old"), TestKey::ec256("new"));
    let server = OidcServer::start(&[&old]).await;
    let (clock, manual) = ManualClock::at(NOW);
    let verifier = discovering(&server, clock).await;
    server.served().jwks = jwks(&[&new]);
    manual.advance(KEY_TTL - KEY_REFRESH_INTERVAL);
    assert_eq!(code(&verifier, &server.token(&old)).await, "accepted");
    assert_eq!(
        server.hits(),
        2,
        "keys younger than the TTL are used as they are"
    );
    manual.advance(KEY_REFRESH_INTERVAL);
    assert_eq!(
        code(&verifier, &server.token(&old)).await,
        "sa_token_unknown_key"
    );
    assert_eq!(server.hits(), 4);
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_keys_held() {
    let key = TestKey::rsa("k1");
    let server = OidcServer::start(&[&key]).await;
    let (clock, manual) = ManualClock::at(NOW);
    let verifier = discovering(&server, clock).await;
    server.served().failing = true;
    manual.advance(KEY_TTL);
    assert_eq!(code(&verifier, &server.token(&key)).await, "accepted");
    assert_eq!(server.hits(), 3, "the refresh was tried, and failed");
}

#[tokio::test]
async fn an_issuer_down_at_start_does_not_stop_it_and_is_retried_a_minute_later() {
    let key = TestKey::ec256("k1");
    let server = OidcServer::start(&[&key]).await;
    server.served().failing = true;
    let (clock, manual) = ManualClock::at(NOW);
    let verifier = discovering(&server, clock).await;
    let refusal = verifier
        .verify("east", &server.token(&key), NOW)
        .await
        .unwrap_err();
    assert_eq!(refusal.code(), "sa_jwks_unavailable");
    let message = refusal.to_string();
    assert!(
        message.starts_with("the keys of cluster east's service-account issuer are not available"),
        "{message}"
    );
    assert!(
        message.contains("answered 503 Service Unavailable"),
        "{message}"
    );
    server.served().failing = false;
    manual.advance(KEY_REFRESH_INTERVAL);
    assert_eq!(code(&verifier, &server.token(&key)).await, "accepted");
}

#[tokio::test]
async fn an_unreachable_issuer_is_refused_naming_the_address() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let (clock, _) = ManualClock::at(NOW);
    let issuer = ServiceAccountIssuer::new(base.clone(), SUBJECT);
    let verifier = Verifier::new([("east".to_string(), issuer)], clock)
        .await
        .unwrap();
    let mut claims = claims(NOW);
    claims["iss"] = json!(base);
    let token = TestKey::ec256("k1").sign(&claims);
    let refusal = verifier.verify("east", &token, NOW).await.unwrap_err();
    assert_eq!(refusal.code(), "sa_jwks_unavailable");
    assert!(
        refusal.to_string().contains(&format!(
            "GET {base}/.well-known/openid-configuration failed"
        )),
        "{refusal}"
    );
}

#[tokio::test]
async fn a_discovery_url_serves_an_issuer_unreachable_by_its_name() {
    let key = TestKey::rsa("k1");
    let server = OidcServer::start(&[&key]).await;
    let in_cluster = "https://kubernetes.default.svc.cluster.local";
    let mut issuer = ServiceAccountIssuer::new(in_cluster, SUBJECT);
    issuer.discovery_url = Some(format!("{}/", server.base));
    let (clock, manual) = ManualClock::at(NOW);
    let verifier = Verifier::new([("east".to_string(), issuer)], clock)
        .await
        .unwrap();
    let mut claims = claims(NOW);
    claims["iss"] = json!(in_cluster);
    let token = key.sign(&claims);
    let refusal = verifier.verify("east", &token, NOW).await.unwrap_err();
    assert_eq!(
        refusal.code(),
        "sa_jwks_unavailable",
        "the document names another issuer"
    );
    let message = refusal.to_string();
    assert!(
        message.contains(&format!("names issuer {}, not {in_cluster}", server.base)),
        "{message}"
    );
    server.served().issuer = in_cluster.to_string();
    manual.advance(KEY_REFRESH_INTERVAL);
    assert_eq!(code(&verifier, &token).await, "accepted");
}

#[tokio::test]
async fn an_oversized_jwks_and_a_plain_http_jwks_uri_are_refused() {
    let key = TestKey::ec256("k1");
    let server = OidcServer::start(&[&key]).await;
    server.served().jwks = json!({ "keys": [key.jwk()], "padding": "x".repeat(2 << 20) });
    let (clock, manual) = ManualClock::at(NOW);
    let verifier = discovering(&server, clock).await;
    let refusal = verifier
        .verify("east", &server.token(&key), NOW)
        .await
        .unwrap_err();
    assert!(
        refusal.to_string().contains("sent more than 1048576 bytes"),
        "{refusal}"
    );
    server.served().jwks_uri = "http://oidc.example/openid/v1/jwks".to_string();
    manual.advance(KEY_REFRESH_INTERVAL);
    let refusal = verifier
        .verify("east", &server.token(&key), NOW)
        .await
        .unwrap_err();
    assert_eq!(refusal.code(), "sa_jwks_unavailable");
    assert!(
        refusal.to_string().contains(
            "its jwks_uri cannot be used: http://oidc.example/openid/v1/jwks is plain http"
        ),
        "{refusal}"
    );
}

#[tokio::test]
async fn a_ca_file_that_holds_no_certificate_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, "not a certificate\n").unwrap();
    let mut issuer = ServiceAccountIssuer::new("https://oidc.example", SUBJECT);
    issuer.ca_file = Some(path.clone());
    let (clock, _) = ManualClock::at(NOW);
    let error = Verifier::new([("east".to_string(), issuer)], clock)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "cluster east: ca_file {} holds no certificate",
            path.display()
        )
    );
}

/// A root, and the TLS configuration of a server at 127.0.0.1 with a certificate it
/// signed. Valid now by the system clock, which is the one rustls checks certificates by.
fn loopback_tls() -> (String, ServerConfig) {
    let now = Clock::system().now();
    let root = RootParams::default().self_signed(now).unwrap();
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let names = ["127.0.0.1".to_string()];
    let cert = root
        .sign_server_certificate(&key, &names, time::Duration::days(1), now)
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.to_pem().as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap();
    (root.certificate().to_pem(), config)
}

#[tokio::test]
async fn https_discovery_trusts_the_ca_file_and_nothing_else() {
    let key = TestKey::rsa("k1");
    let (root_pem, tls) = loopback_tls();
    let server = OidcServer::start_tls(&[&key], tls).await;
    let dir = tempfile::tempdir().unwrap();
    let (trusted, other) = (dir.path().join("ca.pem"), dir.path().join("other-ca.pem"));
    std::fs::write(&trusted, root_pem).unwrap();
    std::fs::write(&other, loopback_tls().0).unwrap();
    let (clock, _) = ManualClock::at(NOW);
    let issuer = |ca_file: &std::path::Path| {
        let mut issuer = ServiceAccountIssuer::new(server.base.clone(), SUBJECT);
        issuer.ca_file = Some(ca_file.to_path_buf());
        issuer
    };
    let issuers = [
        ("east".to_string(), issuer(&trusted)),
        ("west".to_string(), issuer(&other)),
    ];
    let verifier = Verifier::new(issuers, clock).await.unwrap();
    let token = server.token(&key);
    let verified = verifier.verify("east", &token, NOW).await;
    assert!(verified.is_ok(), "{}", verified.unwrap_err());
    let refusal = verifier.verify("west", &token, NOW).await.unwrap_err();
    assert_eq!(refusal.code(), "sa_jwks_unavailable");
    assert!(
        refusal.to_string().contains("invalid peer certificate"),
        "{refusal}"
    );
}
