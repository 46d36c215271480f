//! Enrollment with a Kubernetes projected ServiceAccount token, through the built binary over
//! TLS. A member cluster's service-account issuer stands in the test (`sa_issuer.rs`): its keys are made there,
//! its tokens are shaped as the kubelet projects them and signed with ring (not the JWT
//! library the service verifies with), and its public keys reach the service as a JWKS file,
//! printed the way `kubectl get --raw /openid/v1/jwks` prints it, or by OIDC discovery over
//! https, served the way EKS publishes it.
//!
//! Tokens are stamped by the service's clock (the wall clock plus the harness's clock
//! offset). Moving the offset, never sleeping, makes a token expired or not yet valid, or the
//! discovered keys due for a refresh.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use axum_server::tls_rustls::RustlsConfig;
use meshtrust_ca::{Certificate, KeyType, PrivateKey, RootParams};
use meshtrust_service::sa_token::KEY_REFRESH_INTERVAL;
use meshtrust_testkit::assert_bundle_independently_valid;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::harness::{self, Service, Setup, Store, path_str};
use super::sa_issuer::*;
use super::{assert_refused, csr_for, enroll_body, inventory, post};

/// East is an EKS cluster, west a GKE one, rotating an EKS cluster found by discovery.
const EAST_ISSUER: &str = "https://oidc.eks.eu-west-1.amazonaws.com/id/5C4E1B0A9F3D7E2C";
const WEST_ISSUER: &str =
    "https://container.googleapis.com/v1/projects/mesh/locations/europe-west1/clusters/west";
const ROTATING_ISSUER: &str = "https://oidc.eks.eu-central-1.amazonaws.com/id/9A1F0C3B7D2E";
/// The audience `kubectl create token` and the default projection give, which is not ours.
const KUBERNETES_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

/// East (RS256) and west (ES256), each configured with its JWKS file, served by one service
/// on `store`.
struct Members {
    _dir: tempfile::TempDir,
    east: Member,
    west: Member,
    setup: Setup,
}

impl Members {
    fn start(store: Store) -> (Members, Service) {
        let dir = tempfile::tempdir().unwrap();
        let east = Member {
            name: "east",
            issuer: EAST_ISSUER,
            key: SigningKey::rsa(),
        };
        let west = Member {
            name: "west",
            issuer: WEST_ISSUER,
            key: SigningKey::ec256(),
        };
        let clusters = format!(
            "clusters:\n{}{}",
            east.config(dir.path()),
            west.config(dir.path())
        );
        let setup = Setup::on(store, &clusters);
        let service = Service::start(&setup);
        let members = Members {
            _dir: dir,
            east,
            west,
            setup,
        };
        (members, service)
    }
}

fn enroll(
    setup: &Setup,
    service: &Service,
    cluster: &str,
    token: Option<&str>,
    csr: &str,
) -> (u16, Value) {
    let path = format!("/v1/clusters/{cluster}/enroll");
    post(setup, service, &path, token, &enroll_body(csr))
}

/// Writes an enrollment's answer and the CSR's key as Istio's `cacerts` files into `dir`.
fn write_bundle(dir: &Path, key: &PrivateKey, issued: &Value) {
    let field = |name: &str| issued[name].as_str().unwrap().to_string();
    std::fs::create_dir_all(dir).unwrap();
    let chain = field("certificate") + &field("chain");
    for (file, text) in [
        ("ca-key.pem", key.to_pem().to_string()),
        ("ca-cert.pem", field("certificate")),
        ("cert-chain.pem", chain),
        ("root-cert.pem", field("trust_bundle")),
    ] {
        std::fs::write(dir.join(file), text).unwrap();
    }
}

/// The inventory's entry for `cluster`, if it has one.
fn listed(setup: &Setup, service: &Service, cluster: &str) -> Option<Value> {
    inventory(setup, service)["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == cluster)
        .cloned()
}

fn serial_of(certificate_pem: &str) -> String {
    Certificate::all_from_pem("ca-cert.pem", certificate_pem.as_bytes()).unwrap()[0]
        .serial_hex()
        .replace(':', "")
        .to_ascii_lowercase()
}

// The two suites that record enrollments and refusals run on both stores; the discovery
// suites below exercise the verifier, the same on either, and run on SQLite.
on_both_stores!(
    a_service_account_token_enrolls_its_own_cluster_once_and_the_audit_names_the_account,
    every_bad_service_account_token_is_refused_naming_what_is_wrong_and_nothing_is_issued,
);

fn a_service_account_token_enrolls_its_own_cluster_once_and_the_audit_names_the_account(
    store: Store,
) {
    let (members, service) = Members::start(store);
    let setup = &members.setup;
    let (key, csr) = csr_for("east", KeyType::EcdsaP256);
    let token = members.east.token(setup);
    let (code, issued) = enroll(setup, &service, "east", Some(&token), &csr);
    assert_eq!(code, 200, "{issued}");
    let bundle = setup.path("east");
    write_bundle(&bundle, &key, &issued);
    assert_bundle_independently_valid(&bundle);
    let serial = serial_of(issued["certificate"].as_str().unwrap());
    assert_eq!(issued["serial"], serial.as_str());
    let east = listed(setup, &service, "east").expect("east is in the inventory");
    assert_eq!(
        (&east["state"], &east["serial"]),
        (&json!("enrolled"), &json!(serial))
    );
    let audit = setup.audit();
    let line = audit
        .iter()
        .find(|l| l["action"] == "enroll" && l["result"] == "ok")
        .expect("the enrollment is audited");
    assert_eq!(line["principal"], format!("{SUBJECT} of cluster east"));
    assert_eq!(
        (&line["cluster"], &line["serial"]),
        (&json!("east"), &json!(serial))
    );

    // An ES256 token enrolls west the same way.
    let (west_key, west_csr) = csr_for("west", KeyType::EcdsaP256);
    let (code, west) = enroll(
        setup,
        &service,
        "west",
        Some(&members.west.token(setup)),
        &west_csr,
    );
    assert_eq!(code, 200, "{west}");
    write_bundle(&setup.path("west"), &west_key, &west);
    assert_bundle_independently_valid(&setup.path("west"));

    // No hijack: a fresh token of the same ServiceAccount does not enroll east with another key.
    let (_, other_csr) = csr_for("east", KeyType::EcdsaP256);
    let fresh = members.east.token(setup);
    let (code, body) = enroll(setup, &service, "east", Some(&fresh), &other_csr);
    assert_refused(code, &body, 409, "already_enrolled");
    assert_names("another key", &body, &["revoke".into()]);
    let east = listed(setup, &service, "east").unwrap();
    assert_eq!(
        east["serial"],
        serial.as_str(),
        "east keeps its certificate"
    );

    // The token is a credential: neither the audit log nor the service's log repeats it.
    let signature = token.rsplit('.').next().unwrap();
    let audit = std::fs::read_to_string(setup.path("audit.log")).unwrap();
    assert!(!audit.contains(signature) && !service.log().contains(signature));
}

/// A refusal (401) this suite expects: the code, and what its message must name.
struct Refused {
    case: &'static str,
    cluster: &'static str,
    token: Option<String>,
    code: &'static str,
    names: Vec<String>,
}

/// Every way a presented ServiceAccount token is wrong, at cluster east (unless named).
fn bad_tokens(members: &Members) -> Vec<Refused> {
    let (setup, east) = (&members.setup, &members.east);
    let with = |changes: Value| {
        let mut claims = east.claims(setup);
        for (name, value) in changes.as_object().unwrap() {
            claims[name] = value.clone();
        }
        east.key.sign(&claims)
    };
    let stranger = SigningKey::rsa();
    let valid = east.token(setup);
    let (header, _, signature) = split(&valid);
    let edited = projected(
        EAST_ISSUER,
        "system:serviceaccount:default:default",
        service_now(setup),
    );
    let altered = format!(
        "{header}.{}.{signature}",
        b64(edited.to_string().as_bytes())
    );
    let unsigned = signing_input(
        &json!({ "alg": "none", "kid": east.key.kid }),
        &east.claims(setup),
    ) + ".";
    let refused = |case, token: String, code, names: &[&str]| Refused {
        case,
        cluster: "east",
        token: Some(token),
        code,
        names: names.iter().map(|n| n.to_string()).collect(),
    };
    let other_issuer = "https://oidc.eks.eu-west-1.amazonaws.com/id/0000000000000000";
    let other_subject = "system:serviceaccount:default:default";
    vec![
        Refused {
            token: None,
            ..refused(
                "no Authorization header",
                String::new(),
                "credential_missing",
                &["Authorization: Bearer"],
            )
        },
        refused(
            "another issuer",
            with(json!({ "iss": other_issuer })),
            "sa_token_issuer",
            &[other_issuer, EAST_ISSUER, "(iss)"],
        ),
        refused(
            "the Kubernetes API audience",
            with(json!({ "aud": [KUBERNETES_AUDIENCE] })),
            "sa_token_audience",
            &[KUBERNETES_AUDIENCE, "audience: meshtrust"],
        ),
        refused(
            "another ServiceAccount",
            with(json!({ "sub": other_subject })),
            "sa_token_subject",
            &[other_subject, SUBJECT],
        ),
        refused(
            "a stranger's key naming east's key id",
            stranger.sign_naming(&east.key.kid, &east.claims(setup)),
            "sa_token_signature",
            &["signature", &east.key.kid],
        ),
        refused(
            "claims altered after signing",
            altered,
            "sa_token_signature",
            &["signature", "altered"],
        ),
        refused(
            "a key east does not publish",
            stranger.sign(&east.claims(setup)),
            "sa_token_unknown_key",
            &[&stranger.kid, "jwks_file"],
        ),
        refused(
            "alg none",
            unsigned,
            "sa_token_algorithm",
            &["(none)", "RS256"],
        ),
        refused(
            "HS256 keyed with east's public key",
            hmac_token(east, setup),
            "sa_token_algorithm",
            &["HS256"],
        ),
        refused(
            "not a JWT",
            "eyJhbGciOiJSUzI1NiJ9".to_string(),
            "sa_token_malformed",
            &["malformed", "1 dot-separated part,"],
        ),
        refused(
            "west's token at east",
            members.west.token(setup),
            "sa_token_issuer",
            &[WEST_ISSUER, "cluster east"],
        ),
        Refused {
            cluster: "west",
            ..refused(
                "east's token at west",
                valid.clone(),
                "sa_token_issuer",
                &[EAST_ISSUER, "cluster west"],
            )
        },
        Refused {
            cluster: "south",
            ..refused(
                "a cluster without a service-account issuer",
                valid,
                "sa_cluster_not_configured",
                &[
                    "clusters: south:",
                    "service_account",
                    "token create --cluster south",
                ],
            )
        },
    ]
}

/// A token signed HS256 with the issuer's public JWKS as the shared secret: the
/// algorithm-confusion attack on verifiers that take the algorithm from the token.
fn hmac_token(member: &Member, setup: &Setup) -> String {
    let header = json!({ "alg": "HS256", "kid": member.key.kid });
    let input = signing_input(&header, &member.claims(setup));
    let secret = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        member.key.jwk.to_string().as_bytes(),
    );
    let tag = ring::hmac::sign(&secret, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

fn assert_names(case: &str, body: &Value, names: &[String]) {
    let message = body["message"].as_str().unwrap_or_default();
    for name in names {
        assert!(
            message.contains(name.as_str()),
            "{case}: the message names {name}: {body}"
        );
    }
    assert!(
        body.get("certificate").is_none(),
        "{case}: nothing issued: {body}"
    );
}

fn every_bad_service_account_token_is_refused_naming_what_is_wrong_and_nothing_is_issued(
    store: Store,
) {
    let (members, service) = Members::start(store);
    let setup = &members.setup;
    let cases = bad_tokens(&members);
    for case in &cases {
        let (_, csr) = csr_for(case.cluster, KeyType::EcdsaP256);
        let (code, body) = enroll(setup, &service, case.cluster, case.token.as_deref(), &csr);
        assert_refused(code, &body, 401, case.code);
        assert_names(case.case, &body, &case.names);
    }

    // Issued an hour ago by the service's clock: expired, beyond the 30 s of leeway.
    let (_, csr) = csr_for("east", KeyType::EcdsaP256);
    let expired = members.east.token(setup);
    setup.set_clock_offset(3600 + 120);
    let (code, body) = enroll(setup, &service, "east", Some(&expired), &csr);
    setup.set_clock_offset(0);
    assert_refused(code, &body, 401, "sa_token_expired");
    assert_names(
        "expired",
        &body,
        &["(exp)".into(), "projected token file".into()],
    );
    // Issued ten minutes ahead of the service's clock: not valid yet.
    let early = members.east.token(setup);
    setup.set_clock_offset(-600);
    let (code, body) = enroll(setup, &service, "east", Some(&early), &csr);
    setup.set_clock_offset(0);
    assert_refused(code, &body, 401, "sa_token_not_yet_valid");
    assert_names("not yet valid", &body, &["(nbf)".into(), "clocks".into()]);

    let inventory = inventory(setup, &service);
    assert_eq!(
        inventory["clusters"],
        json!([]),
        "nothing was issued: {inventory}"
    );
    let refused: Vec<String> = setup
        .audit()
        .iter()
        .filter(|l| l["action"] == "enroll" && l["result"] == "refused")
        .map(|l| l["reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        refused.len(),
        cases.len() + 2,
        "every refusal is audited: {refused:#?}"
    );
    for code in cases
        .iter()
        .map(|c| c.code)
        .chain(["sa_token_expired", "sa_token_not_yet_valid"])
    {
        assert!(
            refused.iter().any(|r| r.starts_with(&format!("{code}: "))),
            "{code} audited: {refused:#?}"
        );
    }

    // The refusals were the tokens' fault: a valid one enrolls east now.
    let (code, body) = enroll(
        setup,
        &service,
        "east",
        Some(&members.east.token(setup)),
        &csr,
    );
    assert_eq!(code, 200, "{body}");
}

/// A member cluster's OIDC issuer as EKS publishes it: the discovery document and, at its
/// `jwks_uri`, the keys, over https with a certificate from a throwaway CA.
struct OidcServer {
    base: String,
    ca_pem: String,
    published: Arc<Mutex<Published>>,
    _runtime: tokio::runtime::Runtime,
}

struct Published {
    issuer: String,
    jwks_uri: String,
    jwks: Value,
    /// How many times the keys were fetched.
    jwks_fetches: usize,
}

type Shared = Arc<Mutex<Published>>;

impl OidcServer {
    fn start(issuer: &str, keys: &[&SigningKey]) -> OidcServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("https://{}", listener.local_addr().unwrap());
        let published = Arc::new(Mutex::new(Published {
            issuer: issuer.to_string(),
            jwks_uri: format!("{base}/keys"),
            jwks: jwks(keys),
            jwks_fetches: 0,
        }));
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery_document))
            .route("/keys", get(key_set))
            .with_state(published.clone());
        let (ca_pem, tls) = loopback_tls();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.spawn(async move {
            let tls = RustlsConfig::from_config(Arc::new(tls));
            let server = axum_server::from_tcp_rustls(listener, tls).unwrap();
            server.serve(app.into_make_service()).await.unwrap()
        });
        OidcServer {
            base,
            ca_pem,
            published,
            _runtime: runtime,
        }
    }

    fn published(&self) -> std::sync::MutexGuard<'_, Published> {
        self.published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

async fn discovery_document(State(published): State<Shared>) -> Json<Value> {
    let published = published.lock().unwrap_or_else(PoisonError::into_inner);
    Json(json!({
        "issuer": published.issuer,
        "jwks_uri": published.jwks_uri,
        "authorization_endpoint": "urn:kubernetes:programmatic_authorization",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "claims_supported": ["sub", "iss"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

async fn key_set(State(published): State<Shared>) -> Json<Value> {
    let mut published = published.lock().unwrap_or_else(PoisonError::into_inner);
    published.jwks_fetches += 1;
    Json(published.jwks.clone())
}

/// A throwaway CA (PEM) and the TLS configuration of a server at 127.0.0.1 it certified.
/// Valid by the system clock, which the service's TLS client checks certificates by.
fn loopback_tls() -> (String, rustls::ServerConfig) {
    let now = OffsetDateTime::now_utc();
    let root = RootParams::default().self_signed(now).unwrap();
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let names = ["127.0.0.1".to_string()];
    let cert = root
        .sign_server_certificate(&key, &names, time::Duration::days(1), now)
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.to_pem().as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap();
    (root.certificate().to_pem(), config)
}

/// Cluster `name`'s entry under `clusters:`: keys by discovery from `discovery_url`.
fn discovered(name: &str, issuer: &str, discovery_url: &str, ca_file: &Path) -> String {
    format!(
        "  {name}:\n    service_account:\n      issuer: {issuer}\n      subject: {SUBJECT}\n      discovery_url: {discovery_url}\n      ca_file: {}\n",
        quoted(&path_str(ca_file))
    )
}

#[test]
fn a_key_the_discovered_jwks_gains_later_is_accepted_once_the_keys_are_fetched_again() {
    let (old, new) = (SigningKey::rsa(), SigningKey::rsa());
    let oidc = OidcServer::start(ROTATING_ISSUER, &[&old]);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("oidc-ca.pem");
    std::fs::write(&ca_file, &oidc.ca_pem).unwrap();
    let clusters =
        "clusters:\n".to_string() + &discovered("rotating", ROTATING_ISSUER, &oidc.base, &ca_file);
    let setup = Setup::new(None, &clusters);
    let service = Service::start(&setup);
    assert_eq!(
        oidc.published().jwks_fetches,
        1,
        "the keys are fetched at start"
    );

    let (key, csr) = csr_for("rotating", KeyType::EcdsaP256);
    let claims = |setup: &Setup| projected(ROTATING_ISSUER, SUBJECT, service_now(setup));
    let (code, body) = enroll(
        &setup,
        &service,
        "rotating",
        Some(&new.sign(&claims(&setup))),
        &csr,
    );
    assert_refused(code, &body, 401, "sa_token_unknown_key");
    assert_names(
        "unpublished key",
        &body,
        &[new.kid.clone(), "at most once a minute".into()],
    );

    // The API server rotates its signing key: the JWKS publishes both until old tokens expire.
    oidc.published().jwks = jwks(&[&old, &new]);
    let fetched = oidc.published().jwks_fetches;
    setup.set_clock_offset(i64::try_from(KEY_REFRESH_INTERVAL.as_secs()).unwrap() + 1);
    let (code, issued) = enroll(
        &setup,
        &service,
        "rotating",
        Some(&new.sign(&claims(&setup))),
        &csr,
    );
    assert_eq!(code, 200, "{issued}");
    assert!(
        oidc.published().jwks_fetches > fetched,
        "the keys were fetched again"
    );
    write_bundle(&setup.path("rotating"), &key, &issued);
    assert_bundle_independently_valid(&setup.path("rotating"));
    let rotating = listed(&setup, &service, "rotating").expect("rotating is in the inventory");
    assert_eq!(
        rotating["serial"],
        serial_of(issued["certificate"].as_str().unwrap()).as_str()
    );
    let audit = setup.audit();
    assert!(
        audit
            .iter()
            .any(|l| l["result"] == "ok"
                && l["principal"] == format!("{SUBJECT} of cluster rotating"))
    );
}

#[test]
fn an_unreachable_discovery_is_a_clear_503_and_nothing_is_issued() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("oidc-ca.pem");
    std::fs::write(&ca_file, loopback_tls().0).unwrap();
    let url = format!("https://{address}");
    let clusters = "clusters:\n".to_string() + &discovered("dark", ROTATING_ISSUER, &url, &ca_file);
    let setup = Setup::new(None, &clusters);
    let service = Service::start(&setup);
    let key = SigningKey::rsa();
    let token = key.sign(&projected(ROTATING_ISSUER, SUBJECT, service_now(&setup)));
    let (_, csr) = csr_for("dark", KeyType::EcdsaP256);
    let (code, body) = enroll(&setup, &service, "dark", Some(&token), &csr);
    assert_refused(code, &body, 503, "sa_jwks_unavailable");
    let document = format!("{url}/.well-known/openid-configuration");
    assert_names(
        "unreachable",
        &body,
        &[document, "cluster dark".into(), "discovery_url".into()],
    );
    assert_eq!(inventory(&setup, &service)["clusters"], json!([]));
    let audit = setup.audit();
    assert!(
        audit.iter().any(|l| l["cluster"] == "dark"
            && l["reason"]
                .as_str()
                .unwrap()
                .starts_with("sa_jwks_unavailable: ")),
        "the refusal is audited: {audit:?}"
    );
}

fn split(token: &str) -> (&str, &str, &str) {
    let mut parts = token.split('.');
    let mut next = || parts.next().unwrap();
    (next(), next(), next())
}
