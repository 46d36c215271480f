//! Fault cases and operations of `meshtrust serve`, driven through the binary: the store
//! going away (connections refused, then a read-only database) mid-service, AWS Private CA
//! refusing to sign, `kill -9` while dozens of enrollments are in flight, SIGTERM with a
//! graceful drain, `/healthz`, `/readyz` and `/metrics` (parsed as the text exposition
//! format), and the body-size and rate limits.
//!
//! What every case checks is what a client was promised: a 200 is durably recorded, a
//! failure left nothing behind (the token still enrolls), nothing is issued twice, and the
//! audit log — file and store — stays whole.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::mpsc;

use meshtrust_ca::{Certificate, KeyType};
use meshtrust_testkit::assert_bundle_independently_valid;
use meshtrust_testkit::aws::{AWS_TEST_ENV, Emulator, Flavor};
use serde_json::Value;

use super::harness::{
    POSTGRES_URL_VAR, Service, Setup, Store, curl, path_str, serving_certificate,
};
use super::{assert_refused, cacerts, csr_for, enroll_body, inventory, post};

fn enroll_path(cluster: &str) -> String {
    format!("/v1/clusters/{cluster}/enroll")
}

fn get(setup: &Setup, service: &Service, path: &str) -> (u16, String) {
    curl(setup, &[&format!("{}{path}", service.url)])
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::String(text.to_string()))
}

/// The unix not-after of the certificate in an enrollment answer.
fn not_after_of(answer: &Value) -> i64 {
    let pem = answer["certificate"]
        .as_str()
        .expect("an issued certificate");
    Certificate::all_from_pem("issued", pem.as_bytes()).unwrap()[0]
        .not_after()
        .unix_timestamp()
}

/// Clusters of the inventory by name: (state, serial).
fn enrolled(setup: &Setup, service: &Service) -> BTreeMap<String, (String, String)> {
    let listed = inventory(setup, service);
    listed["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let field = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (field("name"), (field("state"), field("serial")))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The store, read independently of the service: psql, or Python's sqlite3 module.

/// Rows of `query` on the setup's store, one a line, columns joined by `|`.
fn store_rows(setup: &Setup, store: Store, query: &str) -> Vec<String> {
    let text = match store {
        Store::Postgres => setup.sql(query),
        Store::Sqlite => {
            let script = "import sqlite3, sys\n\
                c = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\n\
                for row in c.execute(sys.argv[2]):\n    \
                print('|'.join('' if v is None else str(v) for v in row))\n";
            let db = path_str(&setup.path("meshtrust.db"));
            let out = Command::new("python3")
                .args(["-c", script, &db, query])
                .output()
                .expect("python3 runs (./tests/run-all.sh installs it)");
            assert!(out.status.success(), "{}", meshtrust_testkit::text(&out));
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        }
    };
    text.lines().map(str::to_string).collect()
}

/// The audit table is whole: ids 1..=n without a gap and the counter at n; every `ok`
/// enrollment line names a stored certificate, and every certificate has exactly one line
/// of its issuance (a retry answered with it adds an `ok` line that says it was a retry).
fn assert_store_audit_intact(setup: &Setup, store: Store) {
    let summary = store_rows(
        setup,
        store,
        "SELECT count(*), coalesce(min(id), 0), coalesce(max(id), 0), \
         (SELECT value FROM counters WHERE name = 'audit') FROM audit",
    );
    let numbers: Vec<i64> = summary[0].split('|').map(|n| n.parse().unwrap()).collect();
    let n = numbers[0];
    assert_eq!(
        numbers,
        vec![n, n.min(1), n, n],
        "audit ids are 1..=n, gap-free, and the counter is n"
    );
    let unmatched = store_rows(
        setup,
        store,
        "SELECT c.serial, (SELECT count(*) FROM audit a WHERE a.serial = c.serial \
         AND a.result = 'ok' AND a.action = 'enroll' AND a.reason = '') AS lines \
         FROM certificates c WHERE (SELECT count(*) FROM audit a WHERE a.serial = c.serial \
         AND a.result = 'ok' AND a.action = 'enroll' AND a.reason = '') <> 1 \
         UNION ALL SELECT a.serial, -1 FROM audit a WHERE a.result = 'ok' \
         AND a.action = 'enroll' AND a.serial NOT IN (SELECT serial FROM certificates)",
    );
    assert!(
        unmatched.is_empty(),
        "certificates without exactly one `ok` audit row, or rows without a certificate: {unmatched:?}"
    );
}

/// Every line of the audit file is whole JSON, and the file ends with a newline (no torn
/// last line).
fn assert_audit_file_whole(setup: &Setup) -> Vec<Value> {
    let raw = std::fs::read_to_string(setup.path("audit.log")).unwrap_or_default();
    assert!(
        raw.is_empty() || raw.ends_with('\n'),
        "the audit file ends mid-line: {:?}",
        raw.lines().last()
    );
    setup.audit()
}

// ---------------------------------------------------------------------------------------
// 1. The store becomes unavailable while the service runs.

/// The admin side of the setup's PostgreSQL database: what an operator (or an outage)
/// does to it from outside.
struct Outage {
    admin: String,
    database: String,
}

impl Outage {
    fn of(setup: &Setup) -> Outage {
        let admin = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
            panic!("{POSTGRES_URL_VAR} is not set: run ./tests/run-all.sh, or set it")
        });
        let database = setup.sql("SELECT current_database()");
        Outage { admin, database }
    }

    fn admin_sql(&self, query: &str) {
        let out = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.admin,
                "-c",
                query,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", meshtrust_testkit::text(&out));
    }

    /// Ends every session of the database (the service's pooled connections).
    fn terminate_sessions(&self) {
        self.admin_sql(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{}' AND pid <> pg_backend_pid()",
            self.database
        ));
    }

    /// The database refuses every connection, and the open ones are cut.
    fn refuse_connections(&self) {
        self.admin_sql(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS false",
            self.database
        ));
        self.terminate_sessions();
    }

    /// The database answers again, but only reads (a failover onto a standby).
    fn read_only(&self) {
        self.admin_sql(&format!(
            "ALTER DATABASE {0} ALLOW_CONNECTIONS true; \
             ALTER DATABASE {0} SET default_transaction_read_only = on",
            self.database
        ));
        self.terminate_sessions();
    }

    /// Back to normal.
    fn heal(&self) {
        self.admin_sql(&format!(
            "ALTER DATABASE {0} ALLOW_CONNECTIONS true; \
             ALTER DATABASE {0} RESET default_transaction_read_only",
            self.database
        ));
        self.terminate_sessions();
    }
}

/// The enrollment is refused 503 `store_unavailable` naming the store, and `/readyz` says
/// the same while `/healthz` still answers.
fn assert_store_down(setup: &Setup, service: &Service, token: &str, csr: &str) {
    let (code, body) = post(
        setup,
        service,
        &enroll_path("east"),
        Some(token),
        &enroll_body(csr),
    );
    assert_refused(code, &body, 503, "store_unavailable");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("postgres://") && message.contains("retry"),
        "names the store and says to retry: {message}"
    );
    assert!(body.get("certificate").is_none(), "{body}");
    let (code, ready) = get(setup, service, "/readyz");
    assert_refused(code, &json(&ready), 503, "store_unavailable");
    assert_eq!(get(setup, service, "/healthz").0, 200);
}

#[test]
fn a_store_that_goes_away_gets_a_clear_503_nothing_half_recorded_and_the_token_still_enrolls() {
    let setup = Setup::on(Store::Postgres, "");
    let service = Service::start(&setup);
    let token = setup.token("east", "1h");
    let (_, csr) = csr_for("east", KeyType::EcdsaP256);
    assert_eq!(
        get(&setup, &service, "/readyz"),
        (200, "ready\n".to_string())
    );
    let outage = Outage::of(&setup);

    // No connection at all. With a local root the service signs first (the store decides
    // every rule when recording), so the commit is what fails.
    outage.refuse_connections();
    assert_store_down(&setup, &service, &token, &csr);

    // Reads work, writes fail: the CSR is signed, then its commit is refused. The whole
    // transaction — the token spent, the cluster enrolled — must be rolled back.
    outage.read_only();
    assert_store_down(&setup, &service, &token, &csr);
    let signed = metric_value(
        &setup,
        &service,
        "meshtrust_serve_signing_duration_seconds_count",
    );
    assert_eq!(
        signed, 2.0,
        "both cases failed after signing, at the commit"
    );

    outage.heal();
    assert_eq!(get(&setup, &service, "/readyz").0, 200);
    assert_eq!(setup.sql("SELECT count(*) FROM certificates"), "0");
    assert_eq!(setup.sql("SELECT count(*) FROM clusters"), "0");
    assert_eq!(
        setup.sql("SELECT count(*) FROM tokens WHERE used_at IS NULL"),
        "1",
        "the token was not consumed"
    );
    let (code, body) = post(
        &setup,
        &service,
        &enroll_path("east"),
        Some(&token),
        &enroll_body(&csr),
    );
    assert_eq!(
        code, 200,
        "the same token enrolls once the store is back: {body}"
    );
    let clusters = enrolled(&setup, &service);
    assert_eq!(clusters.len(), 1, "{clusters:?}");
    assert_eq!(clusters["east"].1, body["serial"].as_str().unwrap());
    assert_eq!(setup.sql("SELECT count(*) FROM certificates"), "1");

    let audit = assert_audit_file_whole(&setup);
    let failed = audit
        .iter()
        .filter(|l| {
            l["result"] == "error"
                && l["reason"]
                    .as_str()
                    .unwrap()
                    .starts_with("store_unavailable")
        })
        .count();
    assert_eq!(failed, 2, "both failures are in the audit file: {audit:?}");
    assert_store_audit_intact(&setup, Store::Postgres);
}

// ---------------------------------------------------------------------------------------
// 2. AWS Private CA refuses to sign.

/// Rewrites the setup's configuration: AWS Private CA `arn` on `pca` signs.
fn use_aws_issuer(setup: &Setup, pca: &Emulator, arn: &str) {
    let (cert, key) = serving_certificate(setup);
    let config = format!(
        "listen: 127.0.0.1:0\ntls:\n  cert_file: {cert}\n  key_file: {key}\nissuer:\n  \
         aws_pca_arn: {arn}\n  aws_region: us-east-1\n  aws_endpoint_url: {}\nstore: sqlite://{}\n\
         admin_token_file: {}\n",
        pca.url,
        path_str(&setup.path("meshtrust.db")),
        path_str(&setup.path("admin-token")),
    );
    std::fs::write(setup.config(), config).unwrap();
}

#[tokio::test]
async fn a_failing_aws_private_ca_gets_a_502_naming_it_and_the_token_waits_until_it_signs_again() {
    let pca = Emulator::start(Flavor::Faithful);
    let arn = pca.root_ca("EC_prime256v1", true).await;
    let setup = Setup::new(None, "");
    use_aws_issuer(&setup, &pca, &arn);
    let service = Service::start_with_env(&setup, &AWS_TEST_ENV);
    let token = setup.token("east", "1h");
    let set_status = |status: &'static str| {
        pca.client()
            .update_certificate_authority()
            .certificate_authority_arn(&arn)
            .status(status.into())
            .send()
    };

    set_status("DISABLED").await.unwrap();
    let (_, csr) = csr_for("east", KeyType::EcdsaP256);
    let (code, body) = post(
        &setup,
        &service,
        &enroll_path("east"),
        Some(&token),
        &enroll_body(&csr),
    );
    assert_refused(code, &body, 502, "issuer_failed");
    let message = body["message"].as_str().unwrap();
    for want in [
        "AWS Private CA",
        arn.as_str(),
        "ACTIVE",
        "nothing was issued",
    ] {
        assert!(message.contains(want), "`{want}` not in: {message}");
    }
    assert!(enrolled(&setup, &service).is_empty(), "nothing recorded");
    assert!(
        setup.audit().iter().any(|l| l["result"] == "error"
            && l["reason"].as_str().unwrap().starts_with("issuer_failed")),
        "the failure is audited"
    );

    // Once the CA signs again, the same token enrolls — through the CLI as a client — and
    // the bundle chains to the AWS root.
    set_status("ACTIVE").await.unwrap();
    let out = setup.path("out");
    let run = cacerts(&setup, &service, &token, "east", &path_str(&out));
    assert!(run.status.success(), "{}", meshtrust_testkit::text(&run));
    assert_bundle_independently_valid(&out.join("east"));
    let root = std::fs::read(out.join("east/root-cert.pem")).unwrap();
    let root = Certificate::all_from_pem("root", &root).unwrap().remove(0);
    assert!(
        root.subject().contains("Acme Mesh Root"),
        "{}",
        root.subject()
    );
    let clusters = enrolled(&setup, &service);
    assert_eq!(clusters.len(), 1, "{clusters:?}");
    assert_store_audit_intact(&setup, Store::Sqlite);
}

// ---------------------------------------------------------------------------------------
// 3 and 4. Many enrollments in flight when the process is killed or told to stop.

/// One cluster's enrollment: its token and CSR.
struct Enrollment {
    cluster: String,
    token: String,
    csr: String,
}

/// `n` clusters, each with a token of its own (made by `serve token create`, in parallel).
fn enrollments(setup: &Setup, n: usize) -> Vec<Enrollment> {
    std::thread::scope(|scope| {
        let made: Vec<_> = (0..n)
            .map(|i| {
                scope.spawn(move || {
                    let cluster = format!("c{i:02}");
                    let token = setup.token(&cluster, "1h");
                    let (_, csr) = csr_for(&cluster, KeyType::EcdsaP256);
                    Enrollment {
                        cluster,
                        token,
                        csr,
                    }
                })
            })
            .collect();
        made.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Fires every enrollment at once (one curl each) and calls `interrupt` as soon as the
/// first 200 arrives — so the others are still in flight. Returns each answer, in order.
fn fire(
    setup: &Setup,
    service: &Service,
    all: &[Enrollment],
    interrupt: impl FnOnce(),
) -> Vec<(u16, Value)> {
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|scope| {
        for (i, e) in all.iter().enumerate() {
            let tx = tx.clone();
            scope.spawn(move || {
                let path = enroll_path(&e.cluster);
                let answer = post(setup, service, &path, Some(&e.token), &enroll_body(&e.csr));
                let _ = tx.send((i, answer));
            });
        }
        drop(tx);
        let mut answers = BTreeMap::new();
        let mut interrupt = Some(interrupt);
        for (i, answer) in rx {
            if answer.0 == 200
                && let Some(now) = interrupt.take()
            {
                now();
            }
            answers.insert(i, answer);
        }
        assert!(interrupt.is_none(), "no enrollment succeeded: {answers:?}");
        answers.into_values().collect()
    })
}

/// A 200 holds a whole answer: a certificate for the cluster whose serial it states.
fn assert_whole_answer(cluster: &str, answer: &Value) {
    assert_eq!(answer["cluster"], cluster, "{answer}");
    let pem = answer["certificate"].as_str().unwrap_or_default();
    let cert = Certificate::all_from_pem("answer", pem.as_bytes())
        .unwrap()
        .remove(0);
    let serial = cert.serial_hex().replace(':', "").to_ascii_lowercase();
    assert_eq!(answer["serial"], serial.as_str(), "{answer}");
}

fn kill_9_mid_signing(store: Store) {
    let setup = Setup::on(store, "");
    let mut service = Service::start(&setup);
    let all = enrollments(&setup, 40);
    let answers = fire(&setup, &service, &all, || service.signal("KILL"));
    assert!(!service.wait().success(), "killed");
    let service = Service::start(&setup);
    let before = enrolled(&setup, &service);
    let mut answered = 0;
    for (e, (code, answer)) in all.iter().zip(&answers) {
        if *code == 200 {
            answered += 1;
            assert_whole_answer(&e.cluster, answer);
            assert_eq!(
                before.get(&e.cluster).map(|(_, s)| s.as_str()),
                answer["serial"].as_str(),
                "{}: a 200 is durably recorded",
                e.cluster
            );
        } else {
            assert_eq!(
                *code, 0,
                "{}: only a lost answer besides 200: {answer}",
                e.cluster
            );
        }
    }
    replay_every_token(&setup, &service, &all, &before);
    assert_store_audit_intact(&setup, store);
    let file = assert_audit_file_whole(&setup);
    let duplicates = store_rows(
        &setup,
        store,
        "SELECT cluster FROM certificates GROUP BY cluster HAVING count(*) > 1",
    );
    assert!(duplicates.is_empty(), "issued twice: {duplicates:?}");
    eprintln!(
        "kill -9 on {store:?}: {answered}/{} answered 200 before the kill, {} recorded, {} audit file lines",
        all.len(),
        before.len(),
        file.len()
    );
}

/// After the restart: the same token and CSR get the certificate already recorded (or, if
/// nothing was, the first one); the token with another key is refused; one enrollment each.
fn replay_every_token(
    setup: &Setup,
    service: &Service,
    all: &[Enrollment],
    before: &BTreeMap<String, (String, String)>,
) {
    std::thread::scope(|scope| {
        for e in all {
            scope.spawn(move || {
                let path = enroll_path(&e.cluster);
                let (code, again) =
                    post(setup, service, &path, Some(&e.token), &enroll_body(&e.csr));
                assert_eq!(code, 200, "{}: {again}", e.cluster);
                assert_whole_answer(&e.cluster, &again);
                if let Some((_, serial)) = before.get(&e.cluster) {
                    assert_eq!(
                        again["serial"],
                        serial.as_str(),
                        "{}: not issued twice",
                        e.cluster
                    );
                }
                let (_, other) = csr_for(&e.cluster, KeyType::EcdsaP256);
                let (code, body) =
                    post(setup, service, &path, Some(&e.token), &enroll_body(&other));
                assert!(
                    matches!(
                        body["error"].as_str(),
                        Some("token_used" | "already_enrolled")
                    ),
                    "{}: {code} {body}",
                    e.cluster
                );
            });
        }
    });
    let after = enrolled(setup, service);
    assert_eq!(
        after.len(),
        all.len(),
        "one enrollment per cluster: {after:?}"
    );
    assert!(
        after.values().all(|(state, _)| state == "enrolled"),
        "{after:?}"
    );
}

#[test]
fn kill_9_with_enrollments_in_flight_on_sqlite_keeps_every_200_and_issues_nothing_twice() {
    kill_9_mid_signing(Store::Sqlite);
}

#[test]
fn kill_9_with_enrollments_in_flight_on_postgresql_keeps_every_200_and_issues_nothing_twice() {
    kill_9_mid_signing(Store::Postgres);
}

/// The whole log of an exited service (its reader thread may still be catching up).
fn final_log(service: &Service) -> String {
    for _ in 0..500 {
        let log = service.log();
        if log.contains("meshtrust serve stopped") {
            return log;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    service.log()
}

#[test]
fn sigterm_lets_in_flight_enrollments_finish_then_exits_0_having_drained() {
    let setup = Setup::new(None, "limits:\n  shutdown_grace: 120s\n");
    let mut service = Service::start(&setup);
    let all = enrollments(&setup, 30);
    let answers = fire(&setup, &service, &all, || service.signal("TERM"));
    let status = service.wait();
    let log = final_log(&service);
    assert!(status.success(), "exit 0 after SIGTERM: {status:?}\n{log}");
    let mut answered = BTreeMap::new();
    for (e, (code, answer)) in all.iter().zip(&answers) {
        match code {
            200 => {
                assert_whole_answer(&e.cluster, answer);
                answered.insert(
                    e.cluster.clone(),
                    answer["serial"].as_str().unwrap().to_string(),
                );
            }
            // Never served: refused at connect, or dropped before its request was read.
            0 => {}
            _ => panic!(
                "{}: cut or failed by the shutdown: {code} {answer}",
                e.cluster
            ),
        }
    }
    let service = Service::start(&setup);
    let recorded: BTreeMap<String, String> = enrolled(&setup, &service)
        .into_iter()
        .map(|(name, (_, serial))| (name, serial))
        .collect();
    assert_eq!(
        recorded, answered,
        "exactly the answered enrollments are recorded: none was recorded and then cut"
    );
    assert!(log.contains("drained"), "the log says it drained:\n{log}");
    eprintln!(
        "SIGTERM: {}/{} finished with 200",
        answered.len(),
        all.len()
    );
}

// ---------------------------------------------------------------------------------------
// 5. /healthz, /readyz, /metrics.

/// One sample of the text exposition format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed exposition: each family's type, and every sample.
#[derive(Debug)]
struct Exposition {
    types: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Exposition {
    /// Parses OpenMetrics / Prometheus text; panics on anything malformed.
    fn parse(text: &str) -> Exposition {
        let mut types = BTreeMap::new();
        let mut samples = Vec::new();
        let mut ended = false;
        for line in text.lines() {
            assert!(!ended, "text after `# EOF`: {line:?}");
            if line == "# EOF" {
                ended = true;
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name type");
                types.insert(name.to_string(), kind.to_string());
            } else if !(line.starts_with("# HELP ") || line.starts_with("# UNIT ")) {
                samples.push(parse_sample(line));
            }
        }
        for s in &samples {
            let family = types.keys().find(|f| family_of(&s.name, f));
            assert!(family.is_some(), "{} has no # TYPE", s.name);
        }
        Exposition { types, samples }
    }

    /// The value of the sample `name` with exactly `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }
}

/// Whether sample `name` belongs to family `family` (its own name or a suffixed series).
fn family_of(name: &str, family: &str) -> bool {
    name.strip_prefix(family).is_some_and(|rest| {
        [
            "", "_total", "_created", "_bucket", "_count", "_sum", "_info",
        ]
        .contains(&rest)
    })
}

/// `name{label="value",…} value [timestamp]`, with `\\`, `\"` and `\n` escapes.
fn parse_sample(line: &str) -> Sample {
    let end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("no value: {line:?}"));
    let name = &line[..end];
    assert!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
        "bad metric name in {line:?}"
    );
    let mut rest = &line[end..];
    let mut labels = BTreeMap::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        loop {
            let (key, value, after) = parse_label(inner, &mut chars, line);
            if let Some(key) = key {
                labels.insert(key, value);
            }
            match after {
                Some((i, '}')) => {
                    rest = &inner[i + 1..];
                    break;
                }
                Some((_, ',')) => {}
                other => panic!("bad label list in {line:?} at {other:?}"),
            }
        }
    }
    let mut fields = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("{line:?}"))
        .split(' ');
    let value = fields
        .next()
        .unwrap()
        .parse::<f64>()
        .unwrap_or_else(|e| panic!("{line:?}: {e}"));
    assert!(fields.count() <= 1, "too many fields: {line:?}");
    Sample {
        name: name.to_string(),
        labels,
        value,
    }
}

/// One `key="value"` and the character after it (`,` or `}`).
fn parse_label(
    inner: &str,
    chars: &mut std::str::CharIndices<'_>,
    line: &str,
) -> (Option<String>, String, Option<(usize, char)>) {
    let mut key = String::new();
    loop {
        match chars.next() {
            Some((_, '=')) => break,
            Some((i, '}')) if key.is_empty() => return (None, String::new(), Some((i, '}'))),
            Some((_, c)) if c.is_ascii_alphanumeric() || c == '_' => key.push(c),
            other => panic!("bad label name in {line:?} at {other:?} ({inner})"),
        }
    }
    assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line:?}");
    let mut value = String::new();
    loop {
        match chars
            .next()
            .unwrap_or_else(|| panic!("unterminated value: {line:?}"))
        {
            (_, '"') => break,
            (_, '\\') => value.push(match chars.next().map(|(_, c)| c) {
                Some('n') => '\n',
                Some(c @ ('\\' | '"')) => c,
                other => panic!("bad escape {other:?} in {line:?}"),
            }),
            (_, c) => value.push(c),
        }
    }
    (Some(key), value, chars.next())
}

fn scrape(setup: &Setup, service: &Service) -> Exposition {
    let (code, text) = get(setup, service, "/metrics");
    assert_eq!(code, 200, "/metrics needs no credential: {text}");
    Exposition::parse(&text)
}

fn metric_value(setup: &Setup, service: &Service, name: &str) -> f64 {
    scrape(setup, service).value(name, &[]).unwrap_or(0.0)
}

/// The signing histogram is one: cumulative buckets rising to `+Inf`, which is the count.
fn assert_signing_histogram(metrics: &Exposition, signings: f64) {
    let family = "meshtrust_serve_signing_duration_seconds";
    assert_eq!(metrics.types[family], "histogram");
    let mut buckets: Vec<(f64, f64)> = metrics
        .samples
        .iter()
        .filter(|s| s.name == format!("{family}_bucket"))
        .map(|s| (s.labels["le"].parse::<f64>().unwrap(), s.value))
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.len() > 2, "{buckets:?}");
    assert!(
        buckets.windows(2).all(|w| w[0].1 <= w[1].1),
        "cumulative: {buckets:?}"
    );
    assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, signings));
    assert_eq!(
        metrics.value(&format!("{family}_count"), &[]),
        Some(signings)
    );
    assert!(metrics.value(&format!("{family}_sum"), &[]).unwrap() > 0.0);
}

#[test]
fn metrics_count_requests_signings_issuances_refusals_and_each_clusters_expiry() {
    let setup = Setup::new(None, "");
    let service = Service::start(&setup);
    assert_eq!(get(&setup, &service, "/healthz"), (200, "ok\n".to_string()));
    assert_eq!(
        get(&setup, &service, "/readyz"),
        (200, "ready\n".to_string())
    );
    let mut expiry = BTreeMap::new();
    for cluster in ["east", "west"] {
        let token = setup.token(cluster, "1h");
        let (_, csr) = csr_for(cluster, KeyType::EcdsaP256);
        let (code, issued) = post(
            &setup,
            &service,
            &enroll_path(cluster),
            Some(&token),
            &enroll_body(&csr),
        );
        assert_eq!(code, 200, "{issued}");
        expiry.insert(cluster, not_after_of(&issued));
        let (_, other) = csr_for(cluster, KeyType::EcdsaP256);
        let (code, body) = post(
            &setup,
            &service,
            &enroll_path(cluster),
            Some(&token),
            &enroll_body(&other),
        );
        assert_refused(code, &body, 401, "token_used");
    }
    let (code, body) = post(&setup, &service, &enroll_path("south"), None, "{}");
    assert_refused(code, &body, 401, "credential_missing");

    let metrics = scrape(&setup, &service);
    for s in &metrics.samples {
        assert!(s.name.starts_with("meshtrust_serve_"), "{}", s.name);
    }
    assert_eq!(metrics.types["meshtrust_serve_requests"], "counter");
    let requests = |code: &str| {
        metrics.value(
            "meshtrust_serve_requests_total",
            &[("route", "/v1/clusters/{name}/enroll"), ("code", code)],
        )
    };
    assert_eq!((requests("200"), requests("401")), (Some(2.0), Some(3.0)));
    assert_eq!(
        metrics.value(
            "meshtrust_serve_requests_total",
            &[("route", "/readyz"), ("code", "200")]
        ),
        Some(1.0)
    );
    // With a local root, the service signs before the store decides (a discarded local
    // signature leaves no trace), so the two refused re-uses were signed too.
    assert_signing_histogram(&metrics, 4.0);
    let issued = metrics.value("meshtrust_serve_issued_total", &[("kind", "enroll")]);
    assert_eq!(issued, Some(2.0));
    let refused =
        |reason: &str| metrics.value("meshtrust_serve_refused_total", &[("reason", reason)]);
    assert_eq!(refused("token_used"), Some(2.0));
    assert_eq!(refused("credential_missing"), Some(1.0));
    let gauge = "meshtrust_serve_certificate_expiration_timestamp_seconds";
    assert_eq!(metrics.types[gauge], "gauge");
    for (cluster, not_after) in expiry {
        assert_eq!(
            metrics.value(gauge, &[("cluster", cluster)]),
            Some(not_after as f64)
        );
    }
    assert_eq!(metrics.value(gauge, &[("cluster", "south")]), None);
}

// ---------------------------------------------------------------------------------------
// 6. Limits through the binary.

#[test]
fn a_configured_body_limit_answers_413_and_a_principal_over_its_rate_answers_429() {
    let setup = Setup::new(
        None,
        "limits:\n  max_body_bytes: 2048\n  requests_per_minute: 2\n",
    );
    let service = Service::start(&setup);
    let token = setup.token("east", "1h");
    let (_, csr) = csr_for("east", KeyType::EcdsaP256);

    let big = enroll_body(&"A".repeat(4096));
    let (code, body) = post(&setup, &service, &enroll_path("west"), Some(&token), &big);
    assert_refused(code, &body, 413, "body_too_large");
    assert!(body["message"].as_str().unwrap().contains("2048"), "{body}");

    let path = enroll_path("east");
    let (code, body) = post(&setup, &service, &path, None, &enroll_body(&csr));
    assert_refused(code, &body, 401, "credential_missing");
    let (code, body) = post(&setup, &service, &path, Some(&token), &enroll_body(&csr));
    assert_eq!(code, 200, "{body}");
    // A third request within the minute: even a valid replay is turned away.
    let (code, body) = post(&setup, &service, &path, Some(&token), &enroll_body(&csr));
    assert_refused(code, &body, 429, "rate_limited");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("cluster east") && message.contains("retry in"),
        "{message}"
    );
    // Another principal has a bucket of its own.
    let (code, body) = post(
        &setup,
        &service,
        &enroll_path("west"),
        None,
        &enroll_body(&csr),
    );
    assert_refused(code, &body, 401, "credential_missing");

    let metrics = scrape(&setup, &service);
    let refused =
        |reason: &str| metrics.value("meshtrust_serve_refused_total", &[("reason", reason)]);
    assert_eq!(
        (refused("rate_limited"), refused("body_too_large")),
        (Some(1.0), Some(1.0))
    );
    let audit = setup.audit();
    assert!(
        audit.iter().any(|l| l["reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("rate_limited")),
        "{audit:?}"
    );
}
