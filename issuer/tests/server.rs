//! The client of `meshtrust serve` against a loopback HTTPS service: how it trusts the
//! service (a pinned fingerprint, a CA bundle, the server name), how failures read, and the
//! service as an issuer backend through `issue_batch`.

mod server {
    pub mod fake;
}

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use meshtrust_ca::{ClusterName, IntermediateParams, PrivateKey, VerifyOptions, verify_bundle};
use meshtrust_issuer::server::api::ClusterState;
use meshtrust_issuer::{
    Clock, Error, IssueRequest, Issuer, IssuerConfig, ServerConfig, ServerIssuer, ServerTrust,
    ServiceClient, connect, issue_batch,
};
use server::fake::{ADMIN_TOKEN, Service, ServingPki, router, serve_plain, serve_tls};
use zeroize::Zeroizing;

const TIMEOUT: Duration = Duration::from_secs(10);

fn cluster(name: &str) -> ClusterName {
    ClusterName::new(name).unwrap()
}

fn secret(s: &str) -> Zeroizing<String> {
    Zeroizing::new(s.to_string())
}

/// A running fake service for `names`, and its URL at 127.0.0.1.
async fn running(
    names: &[&str],
    with_root: bool,
    tokens: &[(&str, &str)],
) -> (ServingPki, Arc<Service>, String) {
    let pki = ServingPki::new(names, with_root);
    let service = Service::new(tokens);
    let addr = serve_tls(router(Arc::clone(&service)), &pki).await;
    (pki, service, format!("https://{addr}"))
}

/// An error's message, checked to carry no Rust Debug text.
fn message(e: &Error) -> String {
    let text = e.to_string();
    for debug in ["Kind(", "Os {", "kind:", "Error {", "Some(", "inner:"] {
        assert!(!text.contains(debug), "Debug text `{debug}` in: {text}");
    }
    text
}

#[tokio::test]
async fn a_pinned_root_fingerprint_is_accepted_in_any_spelling() {
    let (pki, service, url) = running(&["127.0.0.1"], true, &[]).await;
    let colons = pki.root_fingerprint();
    let plain = colons.replace(':', "").to_lowercase();
    for spelling in [
        colons.clone(),
        plain,
        format!("sha256 Fingerprint={colons}"),
    ] {
        let trust = ServerTrust::fingerprint(&spelling).unwrap();
        let client = ServiceClient::new(&url, &trust, TIMEOUT).unwrap();
        let answer = client.trust_bundle().await.unwrap();
        assert_eq!(
            answer.trust_bundle_pem,
            service.root().certificate().to_pem()
        );
    }
}

#[tokio::test]
async fn a_wrong_fingerprint_is_refused_naming_what_was_presented() {
    let (pki, service, url) = running(&["127.0.0.1"], true, &[]).await;
    let other = "ab".repeat(32);
    let trust = ServerTrust::fingerprint(&other.to_uppercase()).unwrap();
    let client = ServiceClient::new(&url, &trust, TIMEOUT).unwrap();
    let e = client.trust_bundle().await.unwrap_err();
    assert!(matches!(e, Error::UntrustedService { .. }), "{e:?}");
    let text = message(&e);
    let root = pki.root_fingerprint().replace(':', "").to_lowercase();
    assert!(
        text.starts_with(&format!(
            "the service at {url} presented no certificate with fingerprint {other}; it presented "
        )),
        "{text}"
    );
    assert!(text.contains("CN=127.0.0.1"), "{text}");
    assert!(
        text.contains(&format!("CN=Test TLS Root (sha256 {root})")),
        "{text}"
    );
    assert_eq!(
        service.requests(),
        0,
        "no request may reach an untrusted service"
    );
}

#[tokio::test]
async fn a_pin_needs_the_root_in_the_presented_chain() {
    let (pki, _, url) = running(&["127.0.0.1"], false, &[]).await;
    let trust = ServerTrust::fingerprint(&pki.root_fingerprint()).unwrap();
    let client = ServiceClient::new(&url, &trust, TIMEOUT).unwrap();
    let e = client.trust_bundle().await.unwrap_err();
    assert!(matches!(e, Error::UntrustedService { .. }), "{e:?}");
}

#[tokio::test]
async fn a_ca_bundle_is_trusted_and_only_it() {
    let (pki, _, url) = running(&["127.0.0.1"], false, &[]).await;
    let trust = ServerTrust::ca_bundle_from_pem("tls-ca.pem", pki.root_pem().as_bytes()).unwrap();
    let client = ServiceClient::new(&url, &trust, TIMEOUT).unwrap();
    client.trust_bundle().await.unwrap();

    let stranger = ServingPki::named("Another Root", &["127.0.0.1"], false);
    let trust =
        ServerTrust::ca_bundle_from_pem("other-ca.pem", stranger.root_pem().as_bytes()).unwrap();
    let client = ServiceClient::new(&url, &trust, TIMEOUT).unwrap();
    let e = client.trust_bundle().await.unwrap_err();
    assert!(matches!(e, Error::ServiceUnreachable { .. }), "{e:?}");
    let text = message(&e);
    assert!(
        text.contains("the TLS handshake failed: the service's certificate is not issued by a CA this client trusts"),
        "{text}"
    );

    // A root of the same name with another key: found by name, refused by signature.
    let namesake = ServingPki::new(&["127.0.0.1"], false);
    let trust =
        ServerTrust::ca_bundle_from_pem("namesake.pem", namesake.root_pem().as_bytes()).unwrap();
    let client = ServiceClient::new(&url, &trust, TIMEOUT).unwrap();
    let e = client.trust_bundle().await.unwrap_err();
    let text = message(&e);
    assert!(
        text.contains("the signature on the service's certificate does not verify"),
        "{text}"
    );
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused_even_with_the_right_pin() {
    let (pki, _, url) = running(&["signer.example"], true, &[]).await;
    let trusts = [
        ServerTrust::fingerprint(&pki.root_fingerprint()).unwrap(),
        ServerTrust::ca_bundle_from_pem("tls-ca.pem", pki.root_pem().as_bytes()).unwrap(),
    ];
    for trust in trusts {
        let client = ServiceClient::new(&url, &trust, TIMEOUT).unwrap();
        let e = client.trust_bundle().await.unwrap_err();
        assert!(matches!(e, Error::ServiceUnreachable { .. }), "{e:?}");
        let text = message(&e);
        assert!(
            text.contains("the TLS handshake failed: the service's certificate is not valid for the host of the URL: it is valid for signer.example, not 127.0.0.1; use a URL with a name its certificate was issued for"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn plain_http_is_refused_unless_allowed() {
    let trust = ServerTrust::fingerprint(&"ab".repeat(32)).unwrap();
    let e = ServiceClient::new("http://127.0.0.1:8080", &trust, TIMEOUT).unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e:?}");
    let text = message(&e);
    assert!(
        text.contains("http://127.0.0.1:8080 is plain HTTP"),
        "{text}"
    );
    assert!(!text.contains("--"), "a library names no flag: {text}");

    let service = Service::new(&[("east", "t-east")]);
    let addr = serve_plain(router(Arc::clone(&service))).await;
    let mut config = ServerConfig::new(format!("http://{addr}"), trust);
    let refused = connect(IssuerConfig::Server(config.clone()), &Clock::system()).await;
    assert!(refused.is_err());
    config.allow_plaintext = true;
    let issuer = connect(IssuerConfig::Server(config), &Clock::system())
        .await
        .unwrap();
    let bundle = issuer.trust_bundle().await.unwrap();
    assert!(bundle.contains(service.root().certificate()));
}

#[tokio::test]
async fn a_refusal_carries_the_status_code_and_message() {
    let (pki, _, url) = running(&["127.0.0.1"], true, &[("east", "right")]).await;
    let trust = ServerTrust::fingerprint(&pki.root_fingerprint()).unwrap();
    let client = ServiceClient::new(&url, &trust, TIMEOUT).unwrap();
    let key = PrivateKey::generate(meshtrust_ca::KeyType::EcdsaP256).unwrap();
    let csr = IntermediateParams::new(cluster("east")).csr(&key).unwrap();
    let e = client
        .enroll(&cluster("east"), &csr.to_pem(), &secret("wrong"))
        .await
        .unwrap_err();
    let Error::ServiceRefused {
        status,
        ref code,
        ref message,
        ..
    } = e
    else {
        panic!("{e:?}")
    };
    assert_eq!((status, code.as_str()), (403, "token_used"));
    let said = "the enrollment token for cluster east was already used; ask an admin for a new one";
    assert_eq!(message, said);
    assert_eq!(
        e.to_string(),
        format!(
            "meshtrust serve at {url}: refused enrolling cluster east (403 token_used): {said}"
        )
    );
}

#[tokio::test]
async fn an_unreachable_service_is_described_in_words() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let trust = ServerTrust::fingerprint(&"ab".repeat(32)).unwrap();
    let client = ServiceClient::new(&format!("https://{addr}"), &trust, TIMEOUT).unwrap();
    let e = client.trust_bundle().await.unwrap_err();
    assert!(matches!(e, Error::ServiceUnreachable { .. }), "{e:?}");
    let text = message(&e);
    assert!(
        text.starts_with(&format!(
            "meshtrust serve at https://{addr}: fetching the trust bundle failed: could not connect ("
        )),
        "{text}"
    );
    assert!(text.to_lowercase().contains("connection refused"), "{text}");
    assert!(
        text.ends_with("check that the service runs and listens at that address"),
        "{text}"
    );
}

#[tokio::test]
async fn a_silent_service_times_out_with_the_limit_in_the_message() {
    // The kernel accepts the connection; nobody ever answers the TLS handshake.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let trust = ServerTrust::fingerprint(&"ab".repeat(32)).unwrap();
    let url = format!("https://{addr}");
    let client = ServiceClient::new(&url, &trust, Duration::from_millis(300)).unwrap();
    let e = client.trust_bundle().await.unwrap_err();
    let text = message(&e);
    assert!(
        text.contains("fetching the trust bundle failed: no answer within 0.3 s"),
        "{text}"
    );
    drop(listener);
}

#[tokio::test]
async fn an_answer_that_is_not_the_api_is_refused_clearly() {
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    let pki = ServingPki::new(&["127.0.0.1"], true);
    let app = axum::Router::new()
        .route("/v1/trust-bundle", get(|| async { "<html>hello</html>" }))
        .route(
            "/v1/clusters/{name}/enroll",
            post(|| async { (StatusCode::BAD_GATEWAY, "<html>\nBad gateway</html>") }),
        );
    let url = format!("https://{}", serve_tls(app, &pki).await);
    let trust = ServerTrust::fingerprint(&pki.root_fingerprint()).unwrap();
    let client = ServiceClient::new(&url, &trust, TIMEOUT).unwrap();

    let e = client.trust_bundle().await.unwrap_err();
    assert!(matches!(e, Error::BadAnswer { .. }), "{e:?}");
    let text = message(&e);
    assert!(
        text.starts_with(&format!(
            "meshtrust serve at {url}: unusable answer when fetching the trust bundle: the body is not the JSON the API defines"
        )),
        "{text}"
    );

    let e = client
        .enroll(&cluster("east"), "csr", &secret("t"))
        .await
        .unwrap_err();
    let text = message(&e);
    assert!(
        text.starts_with(&format!(
            "meshtrust serve at {url}: refused enrolling cluster east (502): the answer is not a meshtrust error (it starts with \"<html> Bad gateway</html>\")"
        )),
        "{text}"
    );
}

#[tokio::test]
async fn the_service_issues_a_batch_with_each_clusters_token() {
    let tokens = [("east", "token-east"), ("west", "token-west")];
    let (pki, service, url) = running(&["127.0.0.1"], true, &tokens).await;
    let mut config = ServerConfig::new(
        url.clone(),
        ServerTrust::fingerprint(&pki.root_fingerprint()).unwrap(),
    );
    for (c, t) in tokens {
        config.tokens.insert(cluster(c), secret(t));
    }
    let debug = format!("{config:?}");
    assert!(
        !debug.contains("token-east") && !debug.contains("token-west"),
        "{debug}"
    );

    let clock = Clock::system();
    let issuer = connect(IssuerConfig::Server(config), &clock).await.unwrap();
    assert_eq!(issuer.describe(), format!("meshtrust serve at {url}"));
    let expected = service.root().trust_bundle();
    assert_eq!(issuer.trust_bundle().await.unwrap(), expected);

    let clusters = [cluster("east"), cluster("west")];
    let params = IntermediateParams::new(cluster("east"));
    let batch = issue_batch(issuer, &params, &clusters, &clock)
        .await
        .unwrap();
    assert_eq!(batch.bundles.len(), 2);
    for (bundle, name) in batch.bundles.iter().zip(&clusters) {
        assert_eq!(&bundle.cluster, name);
        let files = bundle.bundle.bundle_files(params.format);
        let report = verify_bundle(&files, &VerifyOptions::at(clock.now()));
        assert!(report.accepted(), "{name}: {:?}", report.findings);
        assert_eq!(bundle.bundle.trust(), &expected);
    }
    // The trust bundle asked above, the policy asked by the batch, two enrollments.
    assert_eq!(service.requests(), 4);
}

#[tokio::test]
async fn a_batch_where_the_service_refuses_one_cluster_hands_back_the_others() {
    let tokens = [("east", "token-east"), ("west", "token-west")];
    let (pki, _, url) = running(&["127.0.0.1"], true, &tokens).await;
    let trust = ServerTrust::fingerprint(&pki.root_fingerprint()).unwrap();
    let client = ServiceClient::new(&url, &trust, TIMEOUT).unwrap();
    let given = BTreeMap::from([
        (cluster("east"), secret("token-east")),
        (cluster("west"), secret("not-west's-token")),
    ]);
    let issuer: Arc<dyn Issuer> = Arc::new(ServerIssuer::new(client, given, None));
    let clusters = [cluster("east"), cluster("west")];
    let clock = Clock::system();
    let params = IntermediateParams::new(cluster("east"));
    let e = issue_batch(issuer, &params, &clusters, &clock)
        .await
        .unwrap_err();
    let text = message(&e);
    let Error::PartialBatch {
        issued, failures, ..
    } = e
    else {
        panic!("not a partial batch: {text}");
    };
    assert_eq!(issued.bundles.len(), 1, "{text}");
    assert_eq!(issued.bundles[0].cluster, cluster("east"));
    let files = issued.bundles[0].bundle.bundle_files(params.format);
    let report = verify_bundle(&files, &VerifyOptions::at(clock.now()));
    assert!(report.accepted(), "{:?}", report.findings);
    assert!(
        matches!(&failures[..], [Error::Issuance { cluster, .. }] if cluster == "west"),
        "{text}"
    );
    assert!(
        text.starts_with(&format!(
            "1 of 2 clusters could not be issued by meshtrust serve at {url}: cluster west:"
        )) && text.ends_with("; the others (east) were issued"),
        "{text}"
    );
}

#[tokio::test]
async fn a_cluster_without_a_credential_is_refused_before_any_request() {
    let (pki, service, url) = running(&["127.0.0.1"], true, &[("east", "t")]).await;
    let trust = ServerTrust::fingerprint(&pki.root_fingerprint()).unwrap();
    let client = ServiceClient::new(&url, &trust, TIMEOUT).unwrap();
    let tokens = BTreeMap::from([(cluster("east"), secret("t"))]);
    let issuer = ServerIssuer::new(client, tokens, None);
    assert!(!format!("{issuer:?}").contains("\"t\""));

    let e = issuer
        .check_credentials(&[cluster("east"), cluster("west"), cluster("north")])
        .unwrap_err();
    assert_eq!(
        message(&e),
        format!(
            "meshtrust serve at {url}: no enrollment credential for cluster west, north; give a token for each, or a default token that any cluster may use"
        )
    );

    let params = IntermediateParams::new(cluster("west"));
    let key = PrivateKey::generate(params.key_type).unwrap();
    let now = Clock::system().now();
    let request = IssueRequest::new(
        cluster("west"),
        params.csr(&key).unwrap(),
        params.profile(),
        now,
    );
    let e = issuer.issue_intermediate(&request).await.unwrap_err();
    assert!(matches!(e, Error::NoCredential { .. }), "{e:?}");
    assert_eq!(service.requests(), 0);
}

#[tokio::test]
async fn a_batch_with_a_cluster_lacking_a_credential_spends_no_other_clusters_token() {
    let (pki, service, url) = running(&["127.0.0.1"], true, &[("east", "t")]).await;
    let trust = ServerTrust::fingerprint(&pki.root_fingerprint()).unwrap();
    let client = ServiceClient::new(&url, &trust, TIMEOUT).unwrap();
    let tokens = BTreeMap::from([(cluster("east"), secret("t"))]);
    let issuer: Arc<dyn Issuer> = Arc::new(ServerIssuer::new(client, tokens, None));
    let template = IntermediateParams::new(cluster("east"));
    let clusters = [cluster("east"), cluster("west")];
    let e = issue_batch(issuer, &template, &clusters, &Clock::system())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NoCredential { .. }), "{e:?}");
    assert_eq!(service.requests(), 0, "east's one-time token was not spent");
}

#[tokio::test]
async fn a_default_token_enrolls_any_cluster() {
    let (pki, _, url) = running(&["127.0.0.1"], true, &[("south", "shared")]).await;
    let trust = ServerTrust::fingerprint(&pki.root_fingerprint()).unwrap();
    let client = ServiceClient::new(&url, &trust, TIMEOUT).unwrap();
    let issuer = ServerIssuer::new(client, BTreeMap::new(), Some(secret("shared")));
    let params = IntermediateParams::new(cluster("south"));
    let key = PrivateKey::generate(params.key_type).unwrap();
    let now = Clock::system().now();
    let request = IssueRequest::new(
        cluster("south"),
        params.csr(&key).unwrap(),
        params.profile(),
        now,
    );
    let issued = issuer.issue_intermediate(&request).await.unwrap();
    assert_eq!(issued.certificate.public_key_raw(), key.public_key_raw());
    assert!(format!("{issuer:?}").contains("<redacted>"));
}

#[tokio::test]
async fn the_admin_routes_use_the_admin_token() {
    let (pki, _, url) = running(&["127.0.0.1"], true, &[]).await;
    let trust = ServerTrust::ca_bundle_from_pem("tls-ca.pem", pki.root_pem().as_bytes()).unwrap();
    let client = ServiceClient::new(&url, &trust, TIMEOUT).unwrap();
    let admin = secret(ADMIN_TOKEN);
    let list = client.clusters(&admin).await.unwrap();
    assert_eq!(list.clusters[0].state, ClusterState::Enrolled);
    let token = client
        .create_token(&cluster("east"), time::Duration::hours(1), &admin)
        .await
        .unwrap();
    assert_eq!(
        (token.cluster.as_str(), token.expires_at.as_str()),
        ("east", "in 3600 seconds")
    );
    assert!(!format!("{token:?}").contains(&token.token));

    let e = client.clusters(&secret("nope")).await.unwrap_err();
    assert!(
        message(&e).ends_with(
            "refused listing the clusters (401 admin_token): this route needs the admin token"
        ),
        "{e}"
    );
}
