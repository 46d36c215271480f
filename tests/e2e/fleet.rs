//! The controller suites' fleet: a management cluster holding the `MeshTrust` `mesh`, its
//! namespace and a kubeconfig Secret per member, three member clusters on the loopback
//! harness, and `meshtrust controller` replicas started against it with a test clock moved
//! by an offset file. Shared by the controller, operator-verb, monitoring and controller
//! crash suites (`tests/e2e/{controller,operator_verbs,monitoring,crash_controller}.rs`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use meshtrust_testkit::apiserver::{Cluster, Harness};
use meshtrust_testkit::istiod::Istiod;
use meshtrust_testkit::text;
use serde_json::{Value, json};

pub const MEMBERS: [&str; 3] = ["c1", "c2", "c3"];
pub const NS: &str = "meshtrust-system";

pub struct Fleet {
    pub harness: Harness,
    pub work: tempfile::TempDir,
    /// Running replicas: identity, process, metrics port.
    pub controllers: Vec<(String, Child, u16)>,
    /// More `meshtrust controller` flags for the replicas started from now on.
    pub extra_args: Vec<String>,
    /// More environment variables for the replicas started from now on.
    pub extra_env: Vec<(String, String)>,
    /// The test playing istiod in each member, once a rotation is started.
    pub istiods: std::sync::Mutex<Vec<Istiod>>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for (_, child, _) in &mut self.controllers {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

pub fn unb64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap_or_default())
        .unwrap()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Fleet {
    /// The management cluster with the controller's namespace, a kubeconfig Secret per member,
    /// and a `MeshTrust` named `mesh` over the three members (90-day intermediates).
    pub fn new() -> Fleet {
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
            extra_args: Vec::new(),
            extra_env: Vec::new(),
            istiods: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub fn mgmt(&self) -> Cluster {
        self.harness.cluster("mgmt")
    }

    pub fn offset_file(&self) -> PathBuf {
        self.work.path().join("clock-offset")
    }

    /// Moves the controllers' clock `days` ahead of real time.
    pub fn advance_to(&self, days: i64) {
        std::fs::write(self.offset_file(), (days * 86_400).to_string()).unwrap();
    }

    /// Starts a controller replica named `identity`, logging text at `info,kube=warn`.
    pub fn start(&mut self, identity: &str) {
        self.start_logging(identity, "info,kube=warn", "text");
    }

    /// Starts a controller replica named `identity` with `RUST_LOG=rust_log` and
    /// `--log-format format`; its stderr goes to `<identity>.log` in the work directory.
    pub fn start_logging(&mut self, identity: &str, rust_log: &str, format: &str) {
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
            .args(&self.extra_args)
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .env_remove("KUBECONFIG")
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.controllers.push((identity.to_string(), child, port));
    }

    pub fn log(&self, identity: &str) -> String {
        std::fs::read_to_string(self.work.path().join(format!("{identity}.log")))
            .unwrap_or_default()
    }

    pub fn meshtrust(&self) -> Value {
        self.mgmt()
            .get("meshtrust.io/v1alpha1", "MeshTrust", None, "mesh")
            .unwrap()
    }

    /// Waits until `pred` holds for the MeshTrust, or fails with the controllers' logs.
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
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

    pub fn cacerts(&self, cluster: &str) -> Option<Value> {
        self.harness
            .cluster(cluster)
            .get("v1", "Secret", Some("istio-system"), "cacerts")
    }

    /// Writes a member's cacerts to a directory, for openssl and webpki.
    pub fn bundle_dir(&self, cluster: &str) -> PathBuf {
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

    pub fn metrics(&self, identity: &str) -> String {
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
    pub fn reconciles(&self, identity: &str) -> u64 {
        self.metrics(identity)
            .lines()
            .find_map(|l| l.strip_prefix("meshtrust_reconcile_total "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Waits until `done` holds; the timeout only keeps a broken test from hanging.
    pub fn wait_until(&self, what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

pub fn fastrand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

pub fn http_get(port: u16, path: &str) -> String {
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

pub fn cluster_status<'a>(mt: &'a Value, cluster: &str) -> &'a Value {
    mt["status"]["clusters"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == cluster))
        .unwrap_or(&Value::Null)
}

pub fn condition<'a>(conditions: &'a Value, type_: &str) -> &'a Value {
    conditions
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

pub fn all_ready(mt: &Value) -> bool {
    condition(&mt["status"]["conditions"], "Ready")["status"] == "True"
        && MEMBERS
            .iter()
            .all(|c| condition(&cluster_status(mt, c)["conditions"], "Ready")["status"] == "True")
}

/// A root rotation is done and every member is Ready.
pub fn rotation_complete(mt: &Value) -> bool {
    mt["status"]["rotation"]["phase"] == "Complete" && all_ready(mt)
}

impl Fleet {
    /// A new root made by `meshtrust root create` in the work directory, handed over in the
    /// management cluster's Secret `secret` (as docs/rotation.md's kubectl way does).
    /// Returns the root's directory.
    pub fn seed_root_secret(&self, secret: &str) -> PathBuf {
        let dir = self.work.path().join(secret);
        let out = Command::new(env!("CARGO_BIN_EXE_meshtrust"))
            .args(["root", "create", "--out", &dir.display().to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        self.mgmt().seed(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": secret, "namespace": NS},
            "data": {"root-cert.pem": b64(&read("root-cert.pem")), "root-key.pem": b64(&read("root-key.pem"))}
        }));
        dir
    }

    /// Waits for the rotation to complete, then checks that every member trusts the root
    /// `new_root` (fingerprint) alone and holds a bundle openssl and webpki accept.
    pub fn wait_rotated_to(&mut self, new_root: &str) {
        let mt = self.wait_for("rotation complete", rotation_complete);
        for c in MEMBERS {
            assert_eq!(
                cluster_status(&mt, c)["trustedRoots"],
                json!([new_root]),
                "{c}"
            );
            meshtrust_testkit::assert_bundle_independently_valid(&self.bundle_dir(c));
        }
    }

    /// Sets `spec.rootRotation` of `mesh` to the root in Secret `secret` (holding the old
    /// root `hold`, or the default 24h), as a spec change: the generation moves.
    pub fn start_rotation(&self, secret: &str, hold: Option<&str>) {
        self.play_istiod();
        let mut mt = self.meshtrust();
        mt["spec"]["rootRotation"] = json!({"newRootSecretRef": {"name": secret, "namespace": NS}});
        if let Some(h) = hold {
            mt["spec"]["rootRotation"]["holdBeforeRemovingOldRoot"] = json!(h);
        }
        mt["metadata"]["generation"] = json!(mt["metadata"]["generation"].as_i64().unwrap() + 1);
        self.mgmt().seed(mt);
    }
}

impl Fleet {
    /// From now on (once), the test plays istiod in every member: once the member holds
    /// `cacerts`, an istiod Deployment with ISTIO_MULTIROOT_MESH=true, publishing
    /// `cacerts`' roots in `istio-ca-root-cert` 200 ms after they change — what a rotation
    /// waits for.
    pub fn play_istiod(&self) {
        let mut istiods = self.istiods.lock().unwrap();
        if !istiods.is_empty() {
            return;
        }
        for c in MEMBERS {
            let cluster = self.harness.cluster(c);
            istiods.push(Istiod::start(cluster, Duration::from_millis(200)));
        }
    }
}

pub fn root_fingerprint(fleet: &Fleet, secret: &str) -> String {
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

pub fn find_key(v: &Value, key: &str) -> Option<String> {
    match v {
        Value::Object(m) => m
            .get(key)
            .and_then(|x| x.as_str().map(str::to_string))
            .or_else(|| m.values().find_map(|x| find_key(x, key))),
        Value::Array(a) => a.iter().find_map(|x| find_key(x, key)),
        _ => None,
    }
}

pub fn events(fleet: &Fleet) -> Vec<Value> {
    let mgmt = fleet.mgmt();
    let mut out = mgmt.list("events.k8s.io/v1", "Event", None);
    out.extend(mgmt.list("v1", "Event", None));
    out
}

/// Roots of a PEM bundle, as their PEM blocks.
pub fn pem_blocks(pem: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(pem);
    text.split("-----END CERTIFICATE-----")
        .filter(|b| b.contains("BEGIN"))
        .map(|b| b.trim().to_string())
        .collect()
}

impl Fleet {
    /// Runs `meshtrust ARGS --kubeconfig … --context mgmt`: a command of an operator's
    /// workstation against the management cluster.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_meshtrust"))
            .args(args)
            .args([
                "--kubeconfig",
                &self.harness.kubeconfig_path().display().to_string(),
                "--context",
                "mgmt",
            ])
            .env_remove("KUBECONFIG")
            .output()
            .unwrap()
    }

    /// Every version of `cluster`'s cacerts written so far.
    pub fn cacerts_writes(&self, cluster: &str) -> usize {
        self.harness
            .cluster(cluster)
            .history("v1", "Secret", Some("istio-system"), "cacerts")
            .len()
    }

    /// Each member's intermediate serial, as status reports it.
    pub fn serials(&self) -> Vec<String> {
        let mt = self.meshtrust();
        MEMBERS
            .iter()
            .map(|c| {
                cluster_status(&mt, c)["serial"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    }

    /// Stops replica `identity` (SIGKILL) and waits for it.
    pub fn stop(&mut self, identity: &str) {
        let i = self
            .controllers
            .iter()
            .position(|(id, _, _)| id == identity)
            .unwrap();
        let (_, mut child, _) = self.controllers.remove(i);
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
