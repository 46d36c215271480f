//! End to end: `meshtrust controller` processes against the loopback harness — a management
//! cluster holding the `MeshTrust`, the root Secret and kubeconfig Secrets, and three member
//! clusters. Time is moved with the controller's test clock (`--clock-offset-file`).

// The suite waits on real processes: wall-clock deadlines are the point here.
#![allow(clippy::disallowed_methods)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use meshtrust_testkit::apiserver::{Cluster, Fault, FaultRule, Harness, Method};
use meshtrust_testkit::{assert_bundle_independently_valid, text};
use serde_json::{Value, json};

const MEMBERS: [&str; 3] = ["c1", "c2", "c3"];
const NS: &str = "meshtrust-system";

struct Fleet {
    harness: Harness,
    work: tempfile::TempDir,
    controllers: Vec<(String, Child, u16)>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for (_, child, _) in &mut self.controllers {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn unb64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap_or_default())
        .unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Fleet {
    /// The management cluster with the controller's namespace, a kubeconfig Secret per member,
    /// and a `MeshTrust` named `mesh` over the three members (90-day intermediates).
    fn new() -> Fleet {
        let harness = Harness::start(&["mgmt", "c1", "c2", "c3"]);
        let mgmt = harness.cluster("mgmt");
        mgmt.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}));
        let kubeconfig = std::fs::read_to_string(harness.kubeconfig_path()).unwrap();
        for c in MEMBERS {
            mgmt.seed(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": format!("{c}-kubeconfig"), "namespace": NS},
                "data": {"kubeconfig": b64(&kubeconfig)}
            }));
        }
        mgmt.seed(json!({
            "apiVersion": "meshtrust.io/v1alpha1", "kind": "MeshTrust",
            "metadata": {"name": "mesh"},
            "spec": {
                "issuer": {"local": {"secretRef": {"name": "mesh-root", "namespace": NS}}},
                "intermediate": {"duration": "90d"},
                "clusters": MEMBERS.iter().map(|c| json!({
                    "name": c, "network": format!("net-{c}"),
                    "kubeconfigSecretRef": {"name": format!("{c}-kubeconfig"), "context": c}
                })).collect::<Vec<_>>()
            }
        }));
        Fleet {
            harness,
            work: tempfile::tempdir().unwrap(),
            controllers: Vec::new(),
        }
    }

    fn mgmt(&self) -> Cluster {
        self.harness.cluster("mgmt")
    }

    fn offset_file(&self) -> PathBuf {
        self.work.path().join("clock-offset")
    }

    /// Moves the controllers' clock `days` ahead of real time.
    fn advance_to(&self, days: i64) {
        std::fs::write(self.offset_file(), (days * 86_400).to_string()).unwrap();
    }

    /// Starts a controller replica named `identity`, logging text at `info,kube=warn`.
    fn start(&mut self, identity: &str) {
        self.start_logging(identity, "info,kube=warn", "text");
    }

    /// Starts a controller replica named `identity` with `RUST_LOG=rust_log` and
    /// `--log-format format`; its stderr goes to `<identity>.log` in the work directory.
    fn start_logging(&mut self, identity: &str, rust_log: &str, format: &str) {
        let port = free_port();
        let log = std::fs::File::create(self.work.path().join(format!("{identity}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_meshtrust"))
            .args([
                "controller",
                "--kubeconfig",
                &self.harness.kubeconfig_path().display().to_string(),
                "--context",
                "mgmt",
                "--namespace",
                NS,
                "--identity",
                identity,
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--lease-duration",
                "2s",
                "--renew-deadline",
                "1500ms",
                "--retry-period",
                "250ms",
                "--resync",
                "1s",
                "--backoff-base",
                "200ms",
                "--backoff-cap",
                "1s",
                "--request-timeout",
                "5s",
                "--clock-offset-file",
                &self.offset_file().display().to_string(),
                "--log-format",
                format,
            ])
            .env_remove("KUBECONFIG")
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.controllers.push((identity.to_string(), child, port));
    }

    fn log(&self, identity: &str) -> String {
        std::fs::read_to_string(self.work.path().join(format!("{identity}.log")))
            .unwrap_or_default()
    }

    fn meshtrust(&self) -> Value {
        self.mgmt()
            .get("meshtrust.io/v1alpha1", "MeshTrust", None, "mesh")
            .unwrap()
    }

    /// Waits until `pred` holds for the MeshTrust, or fails with the controllers' logs.
    fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mt = self.meshtrust();
            if pred(&mt) {
                return mt;
            }
            let exited = self
                .controllers
                .iter_mut()
                .any(|(_, c, _)| c.try_wait().ok().flatten().is_some());
            if exited || Instant::now() > deadline {
                let logs: Vec<String> = self
                    .controllers
                    .iter()
                    .map(|(id, _, _)| format!("--- {id} ---\n{}", self.log(id)))
                    .collect();
                panic!(
                    "timed out waiting for {what} (or a controller exited); status: {}\n{}",
                    serde_json::to_string_pretty(&mt["status"]).unwrap(),
                    logs.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn cacerts(&self, cluster: &str) -> Option<Value> {
        self.harness
            .cluster(cluster)
            .get("v1", "Secret", Some("istio-system"), "cacerts")
    }

    /// Writes a member's cacerts to a directory, for openssl and webpki.
    fn bundle_dir(&self, cluster: &str) -> PathBuf {
        let secret = self.cacerts(cluster).expect("cacerts");
        let dir = self
            .work
            .path()
            .join(format!("bundle-{cluster}-{}", fastrand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        for (k, v) in secret["data"].as_object().unwrap() {
            std::fs::write(dir.join(k), unb64(v)).unwrap();
        }
        dir
    }

    fn metrics(&self, identity: &str) -> String {
        let port = self
            .controllers
            .iter()
            .find(|(id, _, _)| id == identity)
            .unwrap()
            .2;
        http_get(port, "/metrics")
    }
}

impl Fleet {
    /// How many reconciles replica `identity` has started (`meshtrust_reconcile_total`).
    fn reconciles(&self, identity: &str) -> u64 {
        self.metrics(identity)
            .lines()
            .find_map(|l| l.strip_prefix("meshtrust_reconcile_total "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Waits until `done` holds; the timeout only keeps a broken test from hanging.
    fn wait_until(&self, what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn fastrand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            return out;
        }
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn cluster_status<'a>(mt: &'a Value, cluster: &str) -> &'a Value {
    mt["status"]["clusters"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == cluster))
        .unwrap_or(&Value::Null)
}

fn condition<'a>(conditions: &'a Value, type_: &str) -> &'a Value {
    conditions
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

fn all_ready(mt: &Value) -> bool {
    condition(&mt["status"]["conditions"], "Ready")["status"] == "True"
        && MEMBERS
            .iter()
            .all(|c| condition(&cluster_status(mt, c)["conditions"], "Ready")["status"] == "True")
}

fn root_fingerprint(fleet: &Fleet, secret: &str) -> String {
    let s = fleet
        .mgmt()
        .get("v1", "Secret", Some(NS), secret)
        .expect("root secret");
    let pem = unb64(&s["data"]["root-cert.pem"]);
    let dir = fleet
        .work
        .path()
        .join(format!("{secret}-{}", fastrand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("root-cert.pem"), &pem).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args([
            "inspect",
            "-o",
            "json",
            &dir.join("root-cert.pem").display().to_string(),
        ])
        .output()
        .unwrap();
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    find_key(&v, "sha256_fingerprint").unwrap_or_else(|| panic!("no fingerprint in {v}"))
}

fn find_key(v: &Value, key: &str) -> Option<String> {
    match v {
        Value::Object(m) => m
            .get(key)
            .and_then(|x| x.as_str().map(str::to_string))
            .or_else(|| m.values().find_map(|x| find_key(x, key))),
        Value::Array(a) => a.iter().find_map(|x| find_key(x, key)),
        _ => None,
    }
}

fn events(fleet: &Fleet) -> Vec<Value> {
    let mgmt = fleet.mgmt();
    let mut out = mgmt.list("events.k8s.io/v1", "Event", None);
    out.extend(mgmt.list("v1", "Event", None));
    out
}

#[test]
fn three_members_reach_ready_then_renew_when_time_passes_the_renewal_time() {
    let mut fleet = Fleet::new();
    fleet.start("replica-a");
    let mt = fleet.wait_for("every cluster Ready", all_ready);

    // The controller generated the root, and every cluster holds a bundle that openssl and
    // webpki accept, chaining to that root.
    let root = root_fingerprint(&fleet, "mesh-root");
    let mut serials = Vec::new();
    for c in MEMBERS {
        assert_bundle_independently_valid(&fleet.bundle_dir(c));
        let s = cluster_status(&mt, c);
        assert_eq!(s["trustedRoots"], json!([root]), "{c}: {s}");
        serials.push(s["serial"].as_str().unwrap().to_string());
        let ns = fleet
            .harness
            .cluster(c)
            .get("v1", "Namespace", None, "istio-system")
            .unwrap();
        assert_eq!(
            ns["metadata"]["labels"]["topology.istio.io/network"],
            format!("net-{c}")
        );
    }
    assert_eq!(
        mt["status"]["observedGeneration"],
        mt["metadata"]["generation"]
    );

    // Metrics are exposed.
    let metrics = fleet.metrics("replica-a");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    for needle in [
        "meshtrust_certificate_expiration_timestamp_seconds{cluster=\"c1\"}",
        "meshtrust_certificate_renewal_timestamp_seconds{cluster=\"c2\"}",
        "meshtrust_certificate_ready_status{cluster=\"c3\",condition=\"True\"} 1",
        "meshtrust_reconcile_total",
        "meshtrust_is_leader 1",
    ] {
        assert!(metrics.contains(needle), "no `{needle}` in\n{metrics}");
    }
    assert!(
        events(&fleet).iter().any(|e| e["reason"] == "Issued"),
        "{:?}",
        events(&fleet)
    );

    // 61 days later (renewal at 2/3 of 90 days): every intermediate is reissued.
    fleet.advance_to(61);
    let mt = fleet.wait_for("every serial renewed", |mt| {
        all_ready(mt)
            && MEMBERS.iter().zip(&serials).all(|(c, old)| {
                cluster_status(mt, c)["serial"]
                    .as_str()
                    .is_some_and(|s| s != old)
            })
    });
    for c in MEMBERS {
        let s = cluster_status(&mt, c);
        assert_eq!(s["trustedRoots"], json!([root]), "{c}: {s}");
        assert!(
            condition(&s["conditions"], "Issuing")["message"]
                .as_str()
                .unwrap_or_default()
                .contains("Renewing"),
            "{c}: {s}"
        );
    }

    // `meshtrust status` shows the table and exits 0 when everything is ready.
    let out = Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args([
            "status",
            "--kubeconfig",
            &fleet.harness.kubeconfig_path().display().to_string(),
            "--context",
            "mgmt",
        ])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    for c in MEMBERS {
        let row = t
            .lines()
            .find(|l| l.split_whitespace().take(2).eq(["mesh", c]))
            .unwrap_or_else(|| panic!("no row for {c}:\n{t}"));
        assert_eq!(row.split_whitespace().nth(2), Some("True"), "{row}");
    }
    assert!(t.contains(&root[..17]), "{t}");
    // Text logs carry no colour escapes when stderr is not a terminal (here a file).
    let log = fleet.log("replica-a");
    assert!(log.contains(" INFO "), "{log}");
    assert!(!log.contains('\x1b'), "ANSI escapes in a log file:\n{log}");
}

/// Every state each cluster's cacerts went through during the test, in write order across
/// clusters: (cluster, trust PEM, CA certificate PEM).
fn cacerts_history(fleet: &Fleet) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    cacerts_versions(fleet)
        .into_iter()
        .map(|(_, c, v)| {
            (
                c,
                unb64(&v["data"]["root-cert.pem"]),
                unb64(&v["data"]["ca-cert.pem"]),
            )
        })
        .collect()
}

/// Every version of every member's cacerts, in write order across clusters: (written at,
/// cluster, the Secret).
fn cacerts_versions(fleet: &Fleet) -> Vec<(Instant, String, Value)> {
    let mut all: Vec<(Instant, String, Value)> = Vec::new();
    for c in MEMBERS {
        for (at, v) in
            fleet
                .harness
                .cluster(c)
                .history("v1", "Secret", Some("istio-system"), "cacerts")
        {
            all.push((at, c.to_string(), v));
        }
    }
    all.sort_by_key(|(at, _, _)| *at);
    all
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Roots of a PEM bundle, as their PEM blocks.
fn pem_blocks(pem: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(pem);
    text.split("-----END CERTIFICATE-----")
        .filter(|b| b.contains("BEGIN"))
        .map(|b| b.trim().to_string())
        .collect()
}

/// Whether a root in `trust_pem` signed the CA certificate `ca_pem` (as intermediates here
/// are signed by the root directly).
fn trusts_issuer(trust_pem: &[u8], ca_pem: &[u8]) -> bool {
    let roots = meshtrust_ca::Certificate::all_from_pem("trust", trust_pem).unwrap();
    let ca = &meshtrust_ca::Certificate::all_from_pem("ca", ca_pem).unwrap()[0];
    roots.iter().any(|r| ca.is_issued_by(r))
}

#[test]
fn a_root_rotation_keeps_every_pair_of_clusters_trusting_each_other_after_every_write() {
    let mut fleet = Fleet::new();
    // The scenario that writes the most keys, logged at every level (issue 13: no key
    // material in any log, at any level), as JSON lines.
    fleet.start_logging("replica-a", "trace", "json");
    fleet.wait_for("every cluster Ready", all_ready);
    let before = cacerts_history(&fleet).len();

    // The new root, made with the CLI and handed over in a Secret.
    let dir = fleet.work.path().join("new-root");
    let out = Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args(["root", "create", "--out", &dir.display().to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    fleet.mgmt().seed(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "mesh-root-2", "namespace": NS},
        "data": {"root-cert.pem": b64(&read("root-cert.pem")), "root-key.pem": b64(&read("root-key.pem"))}
    }));
    let old_root = root_fingerprint(&fleet, "mesh-root");
    let new_root = root_fingerprint(&fleet, "mesh-root-2");
    let mut mt = fleet.meshtrust();
    mt["spec"]["rootRotation"] =
        json!({"newRootSecretRef": {"name": "mesh-root-2", "namespace": NS}});
    mt["metadata"]["generation"] = json!(mt["metadata"]["generation"].as_i64().unwrap() + 1);
    fleet.mgmt().seed(mt);

    // Every intermediate is reissued from the new root, then the old root is held (24h by
    // default) so that workload certificates signed under it expire before it goes.
    let holding = fleet.wait_for("the hold before phase 3", |mt| {
        mt["status"]["rotation"]["phase"] == "HoldingOldRoot"
    });
    assert!(
        holding["status"]["rotation"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("holdBeforeRemovingOldRoot"),
        "{}",
        holding["status"]["rotation"]
    );
    // Not a sleep as proof that nothing happened: the controller reconciles (every second,
    // its resync) several more times during the hold, and still removes nothing.
    let seen = fleet.reconciles("replica-a");
    fleet.wait_until("three more reconciles during the hold", || {
        fleet.reconciles("replica-a") >= seen + 3
    });
    for c in MEMBERS {
        let trust = unb64(&fleet.cacerts(c).unwrap()["data"]["root-cert.pem"]);
        assert_eq!(
            pem_blocks(&trust).len(),
            2,
            "{c} dropped the old root during the hold"
        );
    }
    fleet.advance_to(2);
    let mt = fleet.wait_for("rotation complete", |mt| {
        mt["status"]["rotation"]["phase"] == "Complete" && all_ready(mt)
    });
    for c in MEMBERS {
        assert_eq!(
            cluster_status(&mt, c)["trustedRoots"],
            json!([new_root]),
            "{c}"
        );
        assert_bundle_independently_valid(&fleet.bundle_dir(c));
    }

    // Replay every write, in order, across the three clusters.
    let history = cacerts_history(&fleet);
    let mut state: std::collections::BTreeMap<String, (Vec<u8>, Vec<u8>)> = Default::default();
    let mut phase3_started = false;
    let mut rotation_writes = 0;
    for (i, (cluster, trust, ca)) in history.iter().enumerate() {
        if let Some((prev_trust, _)) = state.get(cluster)
            && i >= before
        {
            rotation_writes += 1;
            if !contains(trust, prev_trust) {
                // Only phase 3 may shrink a root-cert.pem, and only to a part of it.
                assert!(
                    contains(prev_trust, trust),
                    "write {i} to {cluster}: new root-cert.pem neither contains nor is contained in the old one"
                );
                phase3_started = true;
            } else {
                assert!(
                    !phase3_started || trust == prev_trust,
                    "write {i} to {cluster}: a root-cert.pem grew again after phase 3 began"
                );
            }
        }
        state.insert(cluster.clone(), (trust.clone(), ca.clone()));
        // After every write: every pair of clusters that both hold a bundle shares a root,
        // and each trusts the root the other's intermediate chains to.
        for (a, (ta, _)) in &state {
            for (b, (tb, cb)) in &state {
                let shared = pem_blocks(ta).iter().any(|r| pem_blocks(tb).contains(r));
                assert!(shared, "after write {i}: {a} and {b} share no root");
                assert!(
                    trusts_issuer(ta, cb),
                    "after write {i}: {a} does not trust the root {b}'s intermediate chains to"
                );
            }
        }
    }
    assert!(
        rotation_writes >= 9,
        "3 clusters × 3 phases, saw {rotation_writes} writes"
    );
    assert!(phase3_started, "the old root was never removed");
    assert_ne!(old_root, new_root);
    let reasons: Vec<Value> = events(&fleet).iter().map(|e| e["reason"].clone()).collect();
    assert!(reasons.contains(&json!("RootRotation")), "{reasons:?}");
    assert_logs_hold_no_key(&fleet, &read("root-key.pem"));
}

/// The controller's log is JSON lines and shows no part of any key written during the
/// test: every intermediate key in any `cacerts` version, the roots' keys.
fn assert_logs_hold_no_key(fleet: &Fleet, new_root_key: &str) {
    let mut keys = vec![new_root_key.to_string()];
    for (_, _, v) in cacerts_versions(fleet) {
        keys.push(String::from_utf8(unb64(&v["data"]["ca-key.pem"])).unwrap());
    }
    for (_, v) in fleet.mgmt().history("v1", "Secret", Some(NS), "mesh-root") {
        keys.push(String::from_utf8(unb64(&v["data"]["root-key.pem"])).unwrap());
    }
    assert!(keys.len() >= 8, "{} keys", keys.len());
    meshtrust_testkit::leaks::assert_trace_json_log_holds_no_key(
        &fleet.log("replica-a"),
        keys.iter().map(String::as_str),
        "the controller's log",
    );
}

#[test]
fn with_two_replicas_only_the_leader_reconciles() {
    let mut fleet = Fleet::new();
    fleet.start("replica-a");
    fleet.start("replica-b");
    fleet.wait_for("every cluster Ready", all_ready);
    let lease = fleet
        .mgmt()
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            Some(NS),
            "meshtrust-controller",
        )
        .expect("a Lease");
    let leader = lease["spec"]["holderIdentity"]
        .as_str()
        .unwrap()
        .to_string();
    let follower = if leader == "replica-a" {
        "replica-b"
    } else {
        "replica-a"
    };
    let lm = fleet.metrics(&leader);
    let fm = fleet.metrics(follower);
    assert!(lm.contains("meshtrust_is_leader 1"), "{lm}");
    assert!(fm.contains("meshtrust_is_leader 0"), "{fm}");
    assert!(
        fm.contains("meshtrust_reconcile_total 0"),
        "the follower reconciled:\n{fm}"
    );
    // Every event was reported by the leader (and there were events to look at).
    let reported: Vec<String> = events(&fleet)
        .iter()
        .map(|e| {
            e["reportingInstance"]
                .as_str()
                .unwrap_or("(none)")
                .to_string()
        })
        .collect();
    assert!(!reported.is_empty(), "no events at all");
    assert!(reported.iter().all(|i| *i == leader), "{reported:?}");

    // The leader goes away: the follower takes over and keeps the mesh renewed.
    let (_, mut child, _) = {
        let i = fleet
            .controllers
            .iter()
            .position(|(id, _, _)| *id == leader)
            .unwrap();
        fleet.controllers.remove(i)
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let serial = cluster_status(&fleet.meshtrust(), "c1")["serial"].clone();
    fleet.advance_to(61);
    fleet.wait_for("c1 renewed by the new leader", |mt| {
        all_ready(mt) && cluster_status(mt, "c1")["serial"] != serial
    });
    let lease = fleet
        .mgmt()
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            Some(NS),
            "meshtrust-controller",
        )
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], follower);
}

#[test]
fn api_faults_back_off_and_then_succeed() {
    let mut fleet = Fleet::new();
    let c2 = fleet.harness.cluster("c2");
    // The first six attempts to create c2's cacerts fail with 500: the client's retry
    // policy sends each request up to 5 times, so the controller's first issuance fails
    // and its second one gets through.
    c2.fail(
        FaultRule::new(Fault::Status(500))
            .method(Method::POST)
            .path_contains("/secrets")
            .times(6),
    );
    fleet.start("replica-a");
    let failing = fleet.wait_for("a recorded failure", |mt| {
        cluster_status(mt, "c2")["failedIssuanceAttempts"]
            .as_u64()
            .unwrap_or(0)
            >= 1
    });
    let s = cluster_status(&failing, "c2");
    let error = s["lastError"].as_str().unwrap_or_default();
    assert!(error.contains("cacerts"), "{s}");
    assert!(error.contains("API server answered 500"), "{s}");
    assert_eq!(meshtrust_testkit::debug_text(error), None, "{error}");
    assert!(s["lastFailureTime"].is_string(), "{s}");
    assert_eq!(
        condition(&s["conditions"], "Ready")["status"],
        "False",
        "{s}"
    );
    assert_eq!(
        condition(&s["conditions"], "Ready")["reason"],
        "DoesNotExist",
        "{s}"
    );

    let mt = fleet.wait_for("every cluster Ready", all_ready);
    let s = cluster_status(&mt, "c2");
    assert_eq!(s["failedIssuanceAttempts"], 0, "{s}");
    assert!(s.get("lastError").is_none_or(Value::is_null), "{s}");
    let posts = c2
        .requests()
        .iter()
        .filter(|r| r.method == Method::POST && r.path.contains("/secrets"))
        .count();
    assert!(
        posts >= 7,
        "6 failed creates and one that worked, saw {posts}"
    );
    assert!(
        events(&fleet)
            .iter()
            .any(|e| e["reason"] == "IssuanceFailed")
    );
    assert_bundle_independently_valid(&fleet.bundle_dir("c2"));
}

#[test]
fn a_member_answering_503_to_everything_holds_up_no_other_and_is_named_in_status() {
    let mut fleet = Fleet::new();
    fleet
        .harness
        .cluster("c2")
        .fail(FaultRule::new(Fault::Status(503)).always());
    let started = Instant::now();
    fleet.start("replica-a");
    let ready = |mt: &Value, c: &str| {
        condition(&cluster_status(mt, c)["conditions"], "Ready")["status"] == "True"
    };
    let mt = fleet.wait_for("c1 and c3 Ready, c2's failure in status", |mt| {
        ready(mt, "c1") && ready(mt, "c3") && cluster_status(mt, "c2")["lastError"].is_string()
    });
    // The bound (30 s from start), far above what it takes: not a timing check of
    // the code, the proof that one member cannot hold the others for minutes.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let s = cluster_status(&mt, "c2");
    let error = s["lastError"].as_str().unwrap();
    assert!(error.contains("503"), "{s}");
    assert_eq!(meshtrust_testkit::debug_text(error), None, "{error}");
    assert_eq!(
        condition(&s["conditions"], "Ready")["status"],
        "False",
        "{s}"
    );
    let top = condition(&mt["status"]["conditions"], "Ready");
    assert_eq!(top["status"], "False", "{top}");
    assert!(
        top["message"].as_str().unwrap_or_default().contains("c2"),
        "the MeshTrust's Ready condition names the failing member: {top}"
    );
    for c in ["c1", "c3"] {
        assert_bundle_independently_valid(&fleet.bundle_dir(c));
    }
}
