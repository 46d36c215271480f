//! Two `meshtrust serve` replicas sharing one PostgreSQL database, as behind one Kubernetes
//! Service: the same config, each process on a port of its own, started at the same time
//! on a fresh database (both bring its schema up to date). What one replica decides, the
//! other must honour: a token spent on one is spent on both, even when the same token
//! reaches both at once; renewal moves from the current certificate only, whichever
//! replica issued it; a revocation and the inventory are the same everywhere.

use std::path::Path;
use std::sync::Barrier;

use meshtrust_ca::{Certificate, ClusterName, IntermediateParams, KeyType, PrivateKey};
use meshtrust_issuer::server::api::RenewRequest;
use meshtrust_testkit::assert_bundle_independently_valid;
use serde_json::{Value, json};

use super::harness::{ADMIN_TOKEN, Service, Setup, Store, meshtrust};
use super::{assert_refused, csr_for, enroll_body, inventory, post};

/// How many tokens the race sends to both replicas at once.
const RACES: usize = 20;

/// Both replicas, started at once.
fn two_replicas(setup: &Setup) -> (Service, Service) {
    std::thread::scope(|s| {
        let one = s.spawn(|| Service::start_replica(setup, "1"));
        let two = s.spawn(|| Service::start_replica(setup, "2"));
        (one.join().unwrap(), two.join().unwrap())
    })
}

/// A one-time token for `cluster`, created through `service`'s admin API.
fn admin_token(setup: &Setup, service: &Service, cluster: &str) -> String {
    let body = json!({ "cluster": cluster, "ttl_seconds": 3600 }).to_string();
    let (code, answer) = post(setup, service, "/v1/admin/tokens", Some(ADMIN_TOKEN), &body);
    assert_eq!(code, 200, "{answer}");
    answer["token"].as_str().unwrap().to_owned()
}

fn enroll(setup: &Setup, service: &Service, cluster: &str, token: &str, csr: &str) -> (u16, Value) {
    let path = format!("/v1/clusters/{cluster}/enroll");
    post(setup, service, &path, Some(token), &enroll_body(csr))
}

/// Renews `cluster` through `service`, proving possession of `key` (of `current`), for
/// `new_key`.
fn renew(
    setup: &Setup,
    service: &Service,
    cluster: &str,
    (current, key): (&Certificate, &PrivateKey),
    new_key: &PrivateKey,
) -> (u16, Value) {
    let name = ClusterName::new(cluster).unwrap();
    let csr = IntermediateParams::new(name.clone()).csr(new_key).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let request = RenewRequest::signed(&name, &csr, current, key, now).unwrap();
    let body = serde_json::to_string(&request).unwrap();
    post(
        setup,
        service,
        &format!("/v1/clusters/{cluster}/renew"),
        None,
        &body,
    )
}

/// The intermediate of an answer.
fn certificate(issued: &Value) -> Certificate {
    let pem = issued["certificate"]
        .as_str()
        .expect("an issued certificate");
    Certificate::all_from_pem("issued", pem.as_bytes())
        .unwrap()
        .remove(0)
}

/// Writes an answer and its key as Istio's four `cacerts` files in `dir`, and checks them
/// with openssl and rustls-webpki.
fn assert_issued_bundle_valid(dir: &Path, issued: &Value, key: &PrivateKey) {
    let field = |name: &str| {
        issued[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in {issued}"))
            .to_owned()
    };
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("ca-cert.pem"), field("certificate")).unwrap();
    let chain = field("certificate") + &field("chain");
    std::fs::write(dir.join("cert-chain.pem"), chain).unwrap();
    std::fs::write(dir.join("root-cert.pem"), field("trust_bundle")).unwrap();
    std::fs::write(dir.join("ca-key.pem"), key.to_pem().as_bytes()).unwrap();
    assert_bundle_independently_valid(dir);
}

/// The certificates the shared database holds, as sorted `cluster|serial` lines.
fn stored_certificates(setup: &Setup) -> Vec<String> {
    let rows = setup.sql("SELECT cluster, serial FROM certificates");
    let mut rows: Vec<String> = rows.lines().map(str::to_owned).collect();
    rows.sort();
    rows
}

/// `meshtrust status --server` through `service`, whatever its exit code (1 once a
/// cluster is revoked): the inventory as JSON.
fn inventory_with_revoked(setup: &Setup, service: &Service) -> Value {
    let token_file = setup.path("admin-token").display().to_string();
    let out = meshtrust(&[
        "status",
        "--server",
        &service.url,
        "--server-ca",
        &setup.root_cert(),
        "--admin-token-file",
        &token_file,
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "a revoked cluster is not valid");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The audit rows of `action` in the shared store, as sorted `result` words.
fn audited_in_store(setup: &Setup, action: &str) -> Vec<String> {
    let rows = setup.sql(&format!(
        "SELECT result FROM audit WHERE action = '{action}'"
    ));
    let mut rows: Vec<String> = rows.lines().map(str::to_owned).collect();
    rows.sort();
    rows
}

#[test]
fn a_token_created_on_one_replica_enrolls_on_the_other_and_is_spent_on_both() {
    let setup = Setup::on(Store::Postgres, "");
    let (one, two) = two_replicas(&setup);
    let token = admin_token(&setup, &one, "east");
    let (key, csr) = csr_for("east", KeyType::EcdsaP256);
    let (code, issued) = enroll(&setup, &two, "east", &token, &csr);
    assert_eq!(code, 200, "{issued}");
    assert_issued_bundle_valid(&setup.path("east"), &issued, &key);
    let serial = issued["serial"].as_str().unwrap().to_owned();
    let stored = stored_certificates(&setup);
    assert_eq!(stored, [format!("east|{serial}")]);

    // The same key again on the first replica is a retry: the certificate already issued.
    let (code, again) = enroll(&setup, &one, "east", &token, &csr);
    assert_eq!(code, 200, "{again}");
    assert_eq!(
        (&again["serial"], &again["certificate"]),
        (&issued["serial"], &issued["certificate"])
    );
    // Another key with the spent token, or with a fresh token: refused on the first.
    let (_, other_csr) = csr_for("east", KeyType::EcdsaP256);
    let (code, body) = enroll(&setup, &one, "east", &token, &other_csr);
    assert_refused(code, &body, 401, "token_used");
    let fresh = admin_token(&setup, &two, "east");
    let (code, body) = enroll(&setup, &one, "east", &fresh, &other_csr);
    assert_refused(code, &body, 409, "already_enrolled");
    // And after both replicas restarted.
    one.kill();
    two.kill();
    let (one, two) = two_replicas(&setup);
    let (code, body) = enroll(&setup, &two, "east", &token, &other_csr);
    assert_refused(code, &body, 401, "token_used");

    assert_eq!(stored_certificates(&setup), stored, "nothing more issued");
    let listed = inventory(&setup, &one);
    assert_eq!(listed["clusters"][0]["serial"], serial.as_str(), "{listed}");
    assert_eq!(listed, inventory(&setup, &two));
    // Each replica wrote its own audit lines; the shared store holds the lines of both.
    let enrolls = |file: &str| -> Vec<String> {
        let lines = setup.audit_of(file);
        let enrolls = lines.iter().filter(|l| l["action"] == "enroll");
        enrolls
            .map(|l| l["result"].as_str().unwrap().to_owned())
            .collect()
    };
    let (on_one, on_two) = (enrolls("audit-1.log"), enrolls("audit-2.log"));
    assert_eq!(on_two, ["ok", "refused"]);
    assert_eq!(on_one.iter().filter(|r| *r == "refused").count(), 2);
    let retries: Vec<_> = setup
        .audit_of("audit-1.log")
        .into_iter()
        .filter(|l| l["result"] == "ok" && l["serial"] == serial.as_str())
        .collect();
    assert!(
        retries.len() == 1 && retries[0]["reason"].as_str().unwrap().contains("a retry"),
        "the retry is audited, as a retry: {retries:?}"
    );
    let mut both = [on_one, on_two].concat();
    both.sort();
    assert_eq!(audited_in_store(&setup, "enroll"), both);
}

/// What the two replicas answered for one token.
struct Race {
    cluster: String,
    /// Whether both were sent the same CSR (a client retrying elsewhere) rather than two
    /// different keys (two claimants of one token).
    same_csr: bool,
    answers: [(u16, Value); 2],
}

/// Sends each token to both replicas at the same moment, all tokens at once.
fn race(setup: &Setup, replicas: [&Service; 2]) -> Vec<Race> {
    let entries: Vec<(String, String, bool, [String; 2])> = (0..RACES)
        .map(|i| {
            let cluster = format!("race-{i}");
            let token = admin_token(setup, replicas[i % 2], &cluster);
            let same_csr = i % 2 == 0;
            let (_, first) = csr_for(&cluster, KeyType::EcdsaP256);
            let second = if same_csr {
                first.clone()
            } else {
                csr_for(&cluster, KeyType::EcdsaP256).1
            };
            (cluster, token, same_csr, [first, second])
        })
        .collect();
    let start = Barrier::new(2 * RACES);
    std::thread::scope(|s| {
        let running: Vec<_> = entries
            .iter()
            .map(|(cluster, token, same_csr, csrs)| {
                let sent = [0, 1].map(|r| {
                    let start = &start;
                    s.spawn(move || {
                        start.wait();
                        enroll(setup, replicas[r], cluster, token, &csrs[r])
                    })
                });
                (cluster.clone(), *same_csr, sent)
            })
            .collect();
        running
            .into_iter()
            .map(|(cluster, same_csr, sent)| Race {
                cluster,
                same_csr,
                answers: sent.map(|t| t.join().unwrap()),
            })
            .collect()
    })
}

/// One certificate per token: with the same CSR, one 200 and a refused retry or the same
/// certificate twice; with two keys, exactly one 200. Returns the winning answer.
fn assert_one_certificate(race: &Race) -> &Value {
    let won: Vec<&Value> = race
        .answers
        .iter()
        .filter(|(code, _)| *code == 200)
        .map(|(_, body)| body)
        .collect();
    let shown = format!("{}: {:?}", race.cluster, race.answers);
    match won[..] {
        [winner] => {
            let (code, body) = race.answers.iter().find(|(c, _)| *c != 200).unwrap();
            let error = body["error"].as_str().unwrap_or_default();
            let allowed = if race.same_csr {
                &["token_used"][..]
            } else {
                &["token_used", "already_enrolled"][..]
            };
            assert!(allowed.contains(&error), "{shown}");
            assert_refused(
                *code,
                body,
                if error == "token_used" { 401 } else { 409 },
                error,
            );
            winner
        }
        [first, second] if race.same_csr => {
            assert_eq!(
                (&first["serial"], &first["certificate"]),
                (&second["serial"], &second["certificate"]),
                "{shown}"
            );
            first
        }
        _ => panic!("not exactly one certificate: {shown}"),
    }
}

#[test]
fn the_same_token_sent_to_both_replicas_at_once_issues_one_certificate() {
    let setup = Setup::on(Store::Postgres, "");
    let (one, two) = two_replicas(&setup);
    let races = race(&setup, [&one, &two]);
    let mut winners: Vec<String> = races
        .iter()
        .map(|race| {
            let winner = assert_one_certificate(race);
            let cert = certificate(winner);
            let root = Certificate::all_from_pem(
                "root",
                winner["trust_bundle"].as_str().unwrap().as_bytes(),
            )
            .unwrap();
            assert!(cert.is_issued_by(&root[0]), "{}", race.cluster);
            format!("{}|{}", race.cluster, winner["serial"].as_str().unwrap())
        })
        .collect();
    winners.sort();
    assert_eq!(
        stored_certificates(&setup),
        winners,
        "the store holds exactly the certificates answered"
    );
    let listed = inventory(&setup, &one);
    assert_eq!(
        listed["clusters"].as_array().unwrap().len(),
        RACES,
        "{listed}"
    );
    assert_eq!(listed, inventory(&setup, &two));
}

#[test]
fn renewal_on_one_replica_moves_the_cluster_for_both_and_a_revocation_is_seen_by_both() {
    let setup = Setup::on(Store::Postgres, "");
    let (one, two) = two_replicas(&setup);
    let token = admin_token(&setup, &two, "east");
    let (key, csr) = csr_for("east", KeyType::EcdsaP256);
    let (code, issued) = enroll(&setup, &one, "east", &token, &csr);
    assert_eq!(code, 200, "{issued}");
    let enrolled = certificate(&issued);

    let renewed_key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let (code, renewed) = renew(&setup, &two, "east", (&enrolled, &key), &renewed_key);
    assert_eq!(code, 200, "{renewed}");
    assert_issued_bundle_valid(&setup.path("renewed"), &renewed, &renewed_key);
    assert_ne!(renewed["serial"], issued["serial"]);
    let listed = inventory(&setup, &one);
    assert_eq!(
        listed["clusters"][0]["serial"], renewed["serial"],
        "{listed}"
    );

    // The enrolled certificate is no longer current, on the replica that issued it too.
    let spare = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let (code, body) = renew(&setup, &one, "east", (&enrolled, &key), &spare);
    assert_refused(code, &body, 403, "not_current");
    assert_eq!(stored_certificates(&setup).len(), 2, "nothing issued");

    let (code, body) = post(
        &setup,
        &two,
        "/v1/admin/clusters/east/revoke",
        Some(ADMIN_TOKEN),
        "",
    );
    assert_eq!((code, &body["state"]), (200, &json!("revoked")), "{body}");
    let current = certificate(&renewed);
    let (code, body) = renew(&setup, &one, "east", (&current, &renewed_key), &spare);
    assert_refused(code, &body, 403, "revoked");
    let listed = inventory_with_revoked(&setup, &one);
    assert_eq!(listed["clusters"][0]["state"], "revoked", "{listed}");
    assert_eq!(listed, inventory_with_revoked(&setup, &two));
    assert_eq!(stored_certificates(&setup).len(), 2, "nothing issued");
}
