//! End to end: `meshtrust serve` over real TLS on loopback, driven as a user would — the
//! built binary as the service and as its client (`cacerts --issuer server`, `status
//! --server`, `serve token create`), curl as an independent HTTP client, and openssl and
//! rustls-webpki as independent verifiers of what it issues.
//!
//! Each case runs on both stores, as two tests named `<case>::sqlite` and
//! `<case>::postgres` (a database of its own on `MESHTRUST_TEST_POSTGRES_URL`, which
//! `tests/run-all.sh` sets; without it the PostgreSQL tests fail and say so).
#![allow(clippy::disallowed_methods)] // Tests read the wall clock to sign proofs for it.

#[path = "service/harness.rs"]
#[allow(dead_code)] // Each suite uses part of the harness.
mod harness;
#[path = "service/sa_issuer.rs"]
#[allow(dead_code)] // Each suite uses part of the issuer.
mod sa_issuer;

/// Two tests for each case fn (taking the store): `<case>::sqlite` and `<case>::postgres`.
macro_rules! on_both_stores {
    ($($case:ident),+ $(,)?) => {$(
        mod $case {
            use super::harness::Store;

            #[test]
            fn sqlite() {
                super::$case(Store::Sqlite)
            }

            #[test]
            fn postgres() {
                super::$case(Store::Postgres)
            }
        }
    )+};
}

// Further suites of the same binary (one test binary links once): each uses the helpers below.
#[path = "service/cli_client.rs"]
mod cli_client;
#[path = "service/deploy.rs"]
mod deploy;
#[path = "service/faults.rs"]
mod faults;
#[path = "service/listener.rs"]
mod listener;
#[path = "service/replicas.rs"]
mod replicas;
#[path = "service/sa_token.rs"]
mod sa_token;

use harness::{ADMIN_TOKEN, Service, Setup, Store, curl, meshtrust, ok, path_str};
use meshtrust_ca::{Certificate, ClusterName, IntermediateParams, KeyType, PrivateKey};
use meshtrust_issuer::server::api::RenewRequest;
use meshtrust_testkit::{assert_bundle_independently_valid, text};

/// `meshtrust cacerts` through the service for `cluster` into `out`.
fn cacerts(
    setup: &Setup,
    service: &Service,
    token: &str,
    cluster: &str,
    out: &str,
) -> std::process::Output {
    meshtrust(&[
        "cacerts",
        "--issuer",
        "server",
        "--server",
        &service.url,
        "--server-fingerprint",
        &setup.fingerprint(),
        "--token",
        token,
        "--cluster",
        cluster,
        "--out",
        out,
    ])
}

fn enroll_body(csr_pem: &str) -> String {
    serde_json::json!({ "csr": csr_pem }).to_string()
}

fn csr_for(cluster: &str, key_type: KeyType) -> (PrivateKey, String) {
    let params = IntermediateParams::new(ClusterName::new(cluster).unwrap());
    let key = PrivateKey::generate(key_type).unwrap();
    let csr = params.csr(&key).unwrap().to_pem();
    (key, csr)
}

fn post(
    setup: &Setup,
    service: &Service,
    path: &str,
    bearer: Option<&str>,
    body: &str,
) -> (u16, serde_json::Value) {
    let url = format!("{}{path}", service.url);
    let auth = bearer.map(|b| format!("Authorization: Bearer {b}"));
    let mut args = vec![
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        body,
    ];
    if let Some(a) = &auth {
        args.extend(["-H", a.as_str()]);
    }
    args.push(&url);
    let (code, body) = curl(setup, &args);
    (
        code,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
    )
}

/// The answer is the refusal `status` with the stable code `error` and a message for a
/// person (no Rust Debug text).
fn assert_refused(code: u16, body: &serde_json::Value, status: u16, error: &str) {
    assert_eq!(
        (code, body["error"].as_str()),
        (status, Some(error)),
        "{body}"
    );
    let message = body["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{body}");
    assert_eq!(meshtrust_testkit::debug_text(message), None, "{body}");
}

fn inventory(setup: &Setup, service: &Service) -> serde_json::Value {
    let out = ok(&[
        "status",
        "--server",
        &service.url,
        "--server-ca",
        &setup.root_cert(),
        "--admin-token-file",
        &path_str(&setup.path("admin-token")),
        "-o",
        "json",
    ]);
    serde_json::from_str(&out).unwrap()
}

on_both_stores!(
    a_token_enrolls_once_and_the_bundle_passes_openssl_webpki_and_verify_even_across_a_restart,
    every_bad_enrollment_is_refused_with_a_clear_reason_and_nothing_is_issued,
    renewal_needs_the_current_intermediate_key_and_stops_once_revoked,
    a_second_enrollment_with_another_key_is_refused_until_an_admin_revokes_the_first,
);

fn a_token_enrolls_once_and_the_bundle_passes_openssl_webpki_and_verify_even_across_a_restart(
    store: Store,
) {
    let setup = Setup::on(store, "");
    let service = Service::start(&setup);
    let token = setup.token("east", "1h");
    let out = setup.path("out");
    let enrolled = cacerts(&setup, &service, &token, "east", &path_str(&out));
    assert!(enrolled.status.success(), "{}", text(&enrolled));
    assert_bundle_independently_valid(&out.join("east"));
    let verified = ok(&["verify", &path_str(&out.join("east")), "-o", "json"]);
    assert!(verified.contains("\"accepted\": true"), "{verified}");

    let again = cacerts(
        &setup,
        &service,
        &token,
        "east",
        &path_str(&setup.path("again")),
    );
    assert!(!again.status.success());
    assert!(text(&again).contains("token_used"), "{}", text(&again));
    assert!(
        !setup.path("again/east").exists(),
        "nothing written for a refused enrollment"
    );

    service.kill();
    let service = Service::start(&setup);
    let after = cacerts(
        &setup,
        &service,
        &token,
        "east",
        &path_str(&setup.path("after")),
    );
    assert!(text(&after).contains("token_used"), "{}", text(&after));

    let listed = inventory(&setup, &service);
    let clusters = listed["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 1, "{listed}");
    assert_eq!(clusters[0]["name"], "east");
    assert_eq!(clusters[0]["state"], "enrolled");
    let serial =
        Certificate::all_from_pem("ca", &std::fs::read(out.join("east/ca-cert.pem")).unwrap())
            .unwrap()[0]
            .serial_hex()
            .replace(':', "")
            .to_ascii_lowercase();
    assert_eq!(clusters[0]["serial"], serial.as_str());
    let audit = setup.audit();
    assert!(
        audit.iter().any(|l| l["action"] == "enroll"
            && l["result"] == "ok"
            && l["serial"] == serial.as_str())
    );
    assert_eq!(
        audit
            .iter()
            .filter(|l| l["action"] == "enroll" && l["result"] == "refused")
            .count(),
        2
    );
    // Text logs (the default) carry no colour escapes when stderr is not a terminal.
    let log = service.log();
    assert!(log.contains("listening on"), "{log}");
    assert!(!log.contains('\x1b'), "ANSI escapes in a piped log:\n{log}");
}

fn every_bad_enrollment_is_refused_with_a_clear_reason_and_nothing_is_issued(store: Store) {
    let setup = Setup::on(store, "policy:\n  key_types: [ecdsa-p256]\n");
    let service = Service::start(&setup);
    let (_, good_csr) = csr_for("east", KeyType::EcdsaP256);
    let path = "/v1/clusters/east/enroll";

    let (code, body) = post(&setup, &service, path, None, &enroll_body(&good_csr));
    assert_refused(code, &body, 401, "credential_missing");

    let west = setup.token("west", "1h");
    let (code, body) = post(&setup, &service, path, Some(&west), &enroll_body(&good_csr));
    assert_refused(code, &body, 403, "token_wrong_cluster");
    assert!(body["message"].as_str().unwrap().contains("west"), "{body}");

    let token = setup.token("east", "1h");
    let (_, rsa_csr) = csr_for("east", KeyType::Rsa2048);
    let (code, body) = post(&setup, &service, path, Some(&token), &enroll_body(&rsa_csr));
    assert_refused(code, &body, 400, "csr_policy");
    assert!(
        body["message"].as_str().unwrap().contains("ecdsa-p256"),
        "{body}"
    );

    let mut der = pem::parse(&good_csr).unwrap().into_contents();
    let at = der.len() / 2;
    der[at] ^= 0x01;
    let tampered = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der));
    let (code, body) = post(
        &setup,
        &service,
        path,
        Some(&token),
        &enroll_body(&tampered),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        matches!(
            body["error"].as_str(),
            Some("csr_invalid" | "csr_malformed")
        ),
        "{body}"
    );

    let huge = enroll_body(&"A".repeat(70 * 1024));
    let (code, body) = post(&setup, &service, path, Some(&token), &huge);
    assert_refused(code, &body, 413, "body_too_large");

    let (code, body) = post(
        &setup,
        &service,
        "/v1/clusters/Not_A_Name/enroll",
        Some(&token),
        &enroll_body(&good_csr),
    );
    assert_refused(code, &body, 400, "cluster_name");

    setup.set_clock_offset(2 * 3600);
    let (code, body) = post(
        &setup,
        &service,
        path,
        Some(&token),
        &enroll_body(&good_csr),
    );
    assert_refused(code, &body, 401, "token_expired");
    setup.set_clock_offset(0);

    let (_, body) = post(&setup, &service, path, Some(&token), "not json");
    assert_eq!(body["error"], "body_malformed", "{body}");
    assert!(
        !body["message"].as_str().unwrap().contains("Error("),
        "{body}"
    );
    assert_eq!(
        inventory(&setup, &service)["clusters"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let refused = setup
        .audit()
        .iter()
        .filter(|l| l["result"] == "refused")
        .count();
    assert!(refused >= 7, "every refusal is audited: {refused}");

    // The token survived all of this: the good request still enrolls.
    let (code, body) = post(
        &setup,
        &service,
        path,
        Some(&token),
        &enroll_body(&good_csr),
    );
    assert_eq!(code, 200, "{body}");
}

fn renewal_needs_the_current_intermediate_key_and_stops_once_revoked(store: Store) {
    let setup = Setup::on(store, "");
    // Logged at every level, as JSON lines: at the end, no key of the run is in the log.
    let service = Service::start_with_env(
        &setup,
        &[("RUST_LOG", "trace"), ("MESHTRUST_LOG_FORMAT", "json")],
    );
    let token = setup.token("east", "1h");
    let out = setup.path("out");
    let enrolled = cacerts(&setup, &service, &token, "east", &path_str(&out));
    assert!(enrolled.status.success(), "{}", text(&enrolled));
    let read = |name: &str| std::fs::read(out.join("east").join(name)).unwrap();
    let current = Certificate::all_from_pem("ca-cert.pem", &read("ca-cert.pem"))
        .unwrap()
        .remove(0);
    let current_key = PrivateKey::from_pem("ca-key.pem", &read("ca-key.pem")).unwrap();
    let cluster = ClusterName::new("east").unwrap();
    let renew_to = |cert: &Certificate, key: &PrivateKey, new_key: &PrivateKey| {
        let params = IntermediateParams::new(cluster.clone());
        let csr = params.csr(new_key).unwrap();
        let now = time::OffsetDateTime::now_utc();
        let request = RenewRequest::signed(&cluster, &csr, cert, key, now).unwrap();
        let body = serde_json::to_string(&request).unwrap();
        post(&setup, &service, "/v1/clusters/east/renew", None, &body)
    };
    let renew = |cert: &Certificate, key: &PrivateKey| {
        renew_to(
            cert,
            key,
            &PrivateKey::generate(KeyType::EcdsaP256).unwrap(),
        )
    };
    let renewed_key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();

    let (code, body) = renew_to(&current, &current_key, &renewed_key);
    assert_eq!(code, 200, "{body}");
    let renewed =
        Certificate::all_from_pem("renewed", body["certificate"].as_str().unwrap().as_bytes())
            .unwrap()
            .remove(0);
    assert!(
        renewed
            .is_issued_by(&Certificate::all_from_pem("root", &read("root-cert.pem")).unwrap()[0])
    );
    let renewed_pem = setup.path("renewed.pem");
    std::fs::write(&renewed_pem, body["certificate"].as_str().unwrap()).unwrap();
    let (verified, why) = meshtrust_testkit::openssl(&[
        "verify",
        "-CAfile",
        &setup.root_cert(),
        &path_str(&renewed_pem),
    ]);
    assert!(verified, "{why}");

    let (code, body) = renew(&current, &current_key);
    assert_refused(code, &body, 403, "not_current");

    let stranger = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let (code, body) = renew(&renewed, &stranger);
    assert_refused(code, &body, 401, "proof_invalid");

    let other = Setup::on(store, "");
    let foreign_service = Service::start(&other);
    let foreign_token = other.token("east", "1h");
    let foreign = cacerts(
        &other,
        &foreign_service,
        &foreign_token,
        "east",
        &path_str(&other.path("out")),
    );
    assert!(foreign.status.success(), "{}", text(&foreign));
    let foreign_cert = Certificate::all_from_pem(
        "f",
        &std::fs::read(other.path("out/east/ca-cert.pem")).unwrap(),
    )
    .unwrap()
    .remove(0);
    let foreign_key = PrivateKey::from_pem(
        "f",
        &std::fs::read(other.path("out/east/ca-key.pem")).unwrap(),
    )
    .unwrap();
    let (code, body) = renew(&foreign_cert, &foreign_key);
    assert_refused(code, &body, 403, "certificate_unknown");

    let (code, body) = post(
        &setup,
        &service,
        "/v1/admin/clusters/east/revoke",
        Some(ADMIN_TOKEN),
        "",
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["state"], "revoked");
    let (code, body) = post(
        &setup,
        &service,
        "/v1/admin/clusters/east/revoke",
        Some("not-the-admin-token-but-long-enough-000"),
        "",
    );
    assert_refused(code, &body, 401, "admin_unauthorized");
    // Even the current intermediate, with its own key, may not renew once revoked.
    let (code, body) = renew(&renewed, &renewed_key);
    assert_refused(code, &body, 403, "revoked");

    let root_key = std::fs::read_to_string(setup.path("root/root-key.pem")).unwrap();
    let keys = [&current_key, &renewed_key, &stranger, &foreign_key].map(|k| k.to_pem());
    meshtrust_testkit::leaks::assert_trace_json_log_holds_no_key(
        &service.log(),
        keys.iter().map(|k| k.as_str()).chain([root_key.as_str()]),
        "the service's log",
    );
}

fn a_second_enrollment_with_another_key_is_refused_until_an_admin_revokes_the_first(store: Store) {
    let setup = Setup::on(store, "");
    let service = Service::start(&setup);
    let first = setup.token("east", "1h");
    let enrolled = cacerts(
        &setup,
        &service,
        &first,
        "east",
        &path_str(&setup.path("one")),
    );
    assert!(enrolled.status.success(), "{}", text(&enrolled));
    let second = setup.token("east", "1h");
    let hijack = cacerts(
        &setup,
        &service,
        &second,
        "east",
        &path_str(&setup.path("two")),
    );
    assert!(!hijack.status.success());
    assert!(
        text(&hijack).contains("already_enrolled"),
        "{}",
        text(&hijack)
    );
    let (code, _) = post(
        &setup,
        &service,
        "/v1/admin/clusters/east/revoke",
        Some(ADMIN_TOKEN),
        "",
    );
    assert_eq!(code, 200);
    let after = cacerts(
        &setup,
        &service,
        &second,
        "east",
        &path_str(&setup.path("three")),
    );
    assert!(after.status.success(), "{}", text(&after));
    assert_bundle_independently_valid(&setup.path("three/east"));
}
