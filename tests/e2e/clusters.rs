//! End to end on the loopback multi-cluster harness: `bootstrap` and `push` driving real
//! HTTP against one API server per cluster.

use std::path::Path;
use std::process::{Command, Output};

use meshtrust_testkit::apiserver::{Cluster, Fault, FaultRule, Harness, Method};
use meshtrust_testkit::{snapshot, text};
use serde_json::{Value, json};

fn meshtrust(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap()
}

struct Mesh {
    harness: Harness,
    work: tempfile::TempDir,
}

impl Mesh {
    fn new(clusters: &[&str]) -> Mesh {
        Mesh {
            harness: Harness::start(clusters),
            work: tempfile::tempdir().unwrap(),
        }
    }

    fn kubeconfig(&self) -> String {
        self.harness.kubeconfig_path().display().to_string()
    }

    fn root_out(&self) -> String {
        self.work.path().join("root").display().to_string()
    }

    /// `meshtrust bootstrap` over `contexts` with the mesh's saved root, as JSON.
    fn bootstrap(&self, contexts: &str, extra: &[&str]) -> (Output, Vec<Value>) {
        let out = self.bootstrap_as(contexts, &[extra, &["-o", "json"]].concat());
        let rows =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
        (out, rows)
    }

    /// `meshtrust bootstrap` over `contexts` with the mesh's saved root and `extra`
    /// (`--request-timeout 5s` unless `extra` sets one), as it prints.
    fn bootstrap_as(&self, contexts: &str, extra: &[&str]) -> Output {
        let kc = self.kubeconfig();
        let root = self.root_out();
        let mut args = vec![
            "bootstrap",
            "--contexts",
            contexts,
            "--kubeconfig",
            &kc,
            "--root-out",
            &root,
            "--network-from-cluster-name",
        ];
        if !extra.contains(&"--request-timeout") {
            args.extend(["--request-timeout", "5s"]);
        }
        args.extend_from_slice(extra);
        meshtrust(&args)
    }

    fn cluster(&self, name: &str) -> Cluster {
        self.harness.cluster(name)
    }
}

fn row<'a>(rows: &'a [Value], cluster: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["cluster"] == cluster)
        .unwrap_or_else(|| panic!("{cluster} in {rows:?}"))
}

fn cacerts(c: &Cluster) -> Option<Value> {
    c.get("v1", "Secret", Some("istio-system"), "cacerts")
}

/// Writes a Secret's bundle files to a directory, for `meshtrust verify` and openssl.
fn export(secret: &Value, dir: &Path) {
    meshtrust_testkit::export_secret(secret, dir);
}

fn verify_cluster(c: &Cluster, dir: &Path) -> Value {
    let secret = cacerts(c).unwrap_or_else(|| panic!("{} has cacerts", c.name()));
    export(&secret, dir);
    let out = meshtrust(&["verify", &dir.display().to_string(), "-o", "json"]);
    assert!(out.status.success(), "{}: {}", c.name(), text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn bootstrap_three_clusters_then_a_rerun_writes_nothing() {
    let mesh = Mesh::new(&["c1", "c2", "c3"]);
    let (out, rows) = mesh.bootstrap("c1,c2,c3", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let mut anchors = Vec::new();
    for c in ["c1", "c2", "c3"] {
        assert_eq!(row(&rows, c)["action"], "create");
        let cluster = mesh.cluster(c);
        let report = verify_cluster(&cluster, &mesh.work.path().join(c));
        anchors.push(report["anchor_fingerprint"].clone());
        let ns = cluster
            .get("v1", "Namespace", None, "istio-system")
            .unwrap();
        assert_eq!(ns["metadata"]["labels"]["topology.istio.io/network"], c);
        let secret = cacerts(&cluster).unwrap();
        assert_eq!(secret["type"], "Opaque");
        assert_eq!(
            secret["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "meshtrust"
        );
        assert!(secret["metadata"]["annotations"]["meshtrust.io/not-after"].is_string());
        assert!(secret["data"].get("istio-generated").is_none());
    }
    assert!(
        anchors.iter().all(|a| *a == anchors[0] && a.is_string()),
        "one root: {anchors:?}"
    );
    assert!(Path::new(&mesh.root_out()).join("root-key.pem").exists());

    for c in ["c1", "c2", "c3"] {
        mesh.cluster(c).clear_requests();
    }
    let (out, rows) = mesh.bootstrap("c1,c2,c3", &[]);
    assert!(out.status.success(), "{}", text(&out));
    for c in ["c1", "c2", "c3"] {
        assert_eq!(row(&rows, c)["action"], "unchanged", "{rows:?}");
        assert!(
            mesh.cluster(c).writes().is_empty(),
            "{c}: {:?}",
            mesh.cluster(c).writes()
        );
    }
}

#[test]
fn a_foreign_cacerts_is_refused_then_replaced_with_a_backup_when_forced() {
    let mesh = Mesh::new(&["c1", "c2"]);
    // c2 already holds a cacerts from another mesh.
    let other = tempfile::tempdir().unwrap();
    let o = other.path().display().to_string();
    assert!(
        meshtrust(&["demo", "--clusters", "c2", "--out", &o])
            .status
            .success()
    );
    let kc = mesh.kubeconfig();
    let pushed = meshtrust(&[
        "push",
        "--bundle",
        &format!("{o}/c2"),
        "--context",
        "c2",
        "--kubeconfig",
        &kc,
    ]);
    assert!(pushed.status.success(), "{}", text(&pushed));
    let foreign = cacerts(&mesh.cluster("c2")).unwrap();

    let (out, rows) = mesh.bootstrap("c1,c2", &[]);
    assert!(!out.status.success(), "a refusal is a failure");
    assert_eq!(row(&rows, "c1")["result"], "ok");
    assert_eq!(row(&rows, "c2")["action"], "conflict");
    assert!(
        row(&rows, "c2")["reason"]
            .as_str()
            .unwrap()
            .contains("another root")
    );
    assert_eq!(
        cacerts(&mesh.cluster("c2")).unwrap()["data"],
        foreign["data"],
        "untouched"
    );

    let (out, rows) = mesh.bootstrap("c1,c2", &["--force", "--backup"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(row(&rows, "c1")["action"], "unchanged");
    assert_eq!(row(&rows, "c2")["action"], "replace");
    let backup_name = row(&rows, "c2")["backup"].as_str().unwrap().to_string();
    let backup = mesh
        .cluster("c2")
        .get("v1", "Secret", Some("istio-system"), &backup_name)
        .unwrap();
    assert_eq!(
        backup["data"], foreign["data"],
        "the backup holds the old bundle"
    );
    let c1 = verify_cluster(&mesh.cluster("c1"), &mesh.work.path().join("v1"));
    let c2 = verify_cluster(&mesh.cluster("c2"), &mesh.work.path().join("v2"));
    assert_eq!(c1["anchor_fingerprint"], c2["anchor_fingerprint"]);
}

#[test]
fn a_fault_in_one_cluster_leaves_the_others_done_and_a_rerun_converges() {
    let mesh = Mesh::new(&["c1", "c2", "c3"]);
    mesh.cluster("c2").fail(
        FaultRule::new(Fault::Status(500))
            .method(Method::POST)
            .path_contains("/secrets")
            .always(),
    );
    let (out, rows) = mesh.bootstrap("c1,c2,c3", &[]);
    assert!(!out.status.success());
    assert_eq!(row(&rows, "c1")["result"], "ok");
    assert_eq!(row(&rows, "c3")["result"], "ok");
    let failed = row(&rows, "c2")["result"].as_str().unwrap();
    assert!(failed.starts_with("failed"), "{rows:?}");
    assert_eq!(meshtrust_testkit::debug_text(failed), None, "{failed}");
    assert_eq!(
        meshtrust_testkit::debug_text(&text(&out)),
        None,
        "{}",
        text(&out)
    );
    assert!(
        cacerts(&mesh.cluster("c2")).is_none(),
        "c2 never holds a partial secret"
    );
    verify_cluster(&mesh.cluster("c1"), &mesh.work.path().join("a"));
    verify_cluster(&mesh.cluster("c3"), &mesh.work.path().join("b"));

    mesh.cluster("c2").clear_faults();
    let (out, rows) = mesh.bootstrap("c1,c2,c3", &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(row(&rows, "c1")["action"], "unchanged");
    assert_eq!(row(&rows, "c2")["action"], "create");
    assert_eq!(row(&rows, "c3")["action"], "unchanged");
    verify_cluster(&mesh.cluster("c2"), &mesh.work.path().join("c"));
}

#[test]
fn one_transient_fault_per_cluster_is_retried_and_every_cluster_is_done() {
    let mesh = Mesh::new(&["c1", "c2", "c3"]);
    // c1: its first request of all gets a 500. c2: its cacerts create is carried out but
    // the answer is lost (a 500 instead), so the retry meets its own Secret (409). c3: its
    // namespace create gets a 503, then a 429 with Retry-After on the Secret create.
    mesh.cluster("c1").fail(FaultRule::new(Fault::Status(500)));
    mesh.cluster("c2").fail(
        FaultRule::new(Fault::AfterApplying(500))
            .method(Method::POST)
            .path_contains("/secrets"),
    );
    let c3 = mesh.cluster("c3");
    c3.fail(
        FaultRule::new(Fault::Status(503))
            .method(Method::POST)
            .path_contains("/namespaces"),
    );
    c3.fail(
        FaultRule::new(Fault::Status(429))
            .method(Method::POST)
            .path_contains("/secrets"),
    );
    let (out, rows) = mesh.bootstrap("c1,c2,c3", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let mut anchors = Vec::new();
    for c in ["c1", "c2", "c3"] {
        assert_eq!(row(&rows, c)["result"], "ok", "{rows:?}");
        let v = verify_cluster(&mesh.cluster(c), &mesh.work.path().join(c));
        anchors.push(v["anchor_fingerprint"].clone());
    }
    assert!(anchors.windows(2).all(|w| w[0] == w[1]), "{anchors:?}");
    let creates = |c: &str| {
        mesh.cluster(c)
            .requests()
            .iter()
            .filter(|r| r.method == Method::POST && r.path.ends_with("/secrets"))
            .count()
    };
    assert_eq!(creates("c2"), 2, "the lost create and its retry");
    assert_eq!(creates("c3"), 2, "the 429 and its retry");
}

#[test]
#[allow(clippy::disallowed_methods)] // The command's wall time, against the issue's bound.
fn a_cluster_answering_503_to_everything_is_reported_within_its_deadline() {
    let mesh = Mesh::new(&["c1", "c2"]);
    mesh.cluster("c2")
        .fail(FaultRule::new(Fault::Status(503)).always());
    let started = std::time::Instant::now();
    let (out, rows) = mesh.bootstrap("c1,c2", &["--request-timeout", "5s"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(row(&rows, "c1")["result"], "ok", "{rows:?}");
    verify_cluster(&mesh.cluster("c1"), &mesh.work.path().join("c1"));
    let failed = row(&rows, "c2")["result"].as_str().unwrap();
    assert!(
        failed.contains("context c2") && failed.contains("503"),
        "{failed}"
    );
    assert_eq!(meshtrust_testkit::debug_text(failed), None, "{failed}");
    assert!(
        failed.contains("rerun when the API server is healthy"),
        "{failed}"
    );
    // The first request of c2 is tried 5 times (4 retries, 0.25 s doubling to 2 s, each
    // jittered), then c2 is reported; far below kube's default retry (15 retries, delays
    // doubling to 1000 s). Not a timing check of the code: the bound is 20 s of slack.
    let attempts = mesh.cluster("c2").requests().len();
    assert!((5..=10).contains(&attempts), "{attempts} requests to c2");
    assert!(took < std::time::Duration::from_secs(25), "took {took:?}");

    // As a table: one short line per cluster, the long error below it.
    let out = mesh.bootstrap_as("c1,c2", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.trim_start().starts_with('c'))
        .collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(
        rows.iter().all(|r| r.len() <= 120),
        "a wide table:\n{table}"
    );
    assert!(rows[1].contains("failed (see below)"), "{table}");
    let below = String::from_utf8_lossy(&out.stderr);
    assert!(below.contains("c2: failed: context c2"), "{below}");
    assert_eq!(meshtrust_testkit::debug_text(&below), None, "{below}");
}

#[test]
fn a_slow_cluster_is_given_up_at_its_budget_while_the_others_are_done() {
    let mesh = Mesh::new(&["c1", "c2"]);
    // Each request of c2 answers within --request-timeout (5 s), but after 2.5 s: past the
    // cluster's 2 s budget.
    mesh.cluster("c2")
        .fail(FaultRule::new(Fault::Delay(std::time::Duration::from_millis(2500))).always());
    let (out, rows) = mesh.bootstrap(
        "c1,c2",
        &["--request-timeout", "5s", "--cluster-timeout", "2s"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(row(&rows, "c1")["result"], "ok", "{rows:?}");
    verify_cluster(&mesh.cluster("c1"), &mesh.work.path().join("c1"));
    let failed = row(&rows, "c2")["result"].as_str().unwrap();
    assert!(
        failed.contains("context c2: reading the cluster took longer than the cluster's 2s budget")
            && failed.contains("--cluster-timeout"),
        "{failed}"
    );
    assert!(cacerts(&mesh.cluster("c2")).is_none());
}

#[test]
fn an_unreachable_cluster_times_out_without_stopping_the_others() {
    let mesh = Mesh::new(&["c1", "c2"]);
    mesh.cluster("c2")
        .fail(FaultRule::new(Fault::Hang).always());
    let (out, rows) = mesh.bootstrap("c1,c2", &["--request-timeout", "1s"]);
    assert!(!out.status.success());
    assert_eq!(row(&rows, "c1")["result"], "ok");
    let failed = row(&rows, "c2")["result"].as_str().unwrap();
    assert!(failed.contains("context c2"), "{rows:?}");
    assert_eq!(meshtrust_testkit::debug_text(failed), None, "{failed}");
}

#[test]
fn a_running_istiod_without_cacerts_gets_the_restart_command() {
    let mesh = Mesh::new(&["c1"]);
    let c1 = mesh.cluster("c1");
    c1.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}}));
    c1.seed(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "istiod-abc", "namespace": "istio-system", "labels": {"app": "istiod"}},
        "status": {"phase": "Running"}
    }));
    let (out, rows) = mesh.bootstrap("c1", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let warnings = row(&rows, "c1")["warnings"].to_string();
    assert!(
        warnings.contains("kubectl --context=c1 -n istio-system rollout restart deployment/istiod"),
        "{warnings}"
    );
}

#[test]
fn generated_manifests_apply_cleanly_to_an_empty_cluster() {
    let mesh = Mesh::new(&["east"]);
    let dir = mesh.work.path().join("gitops");
    let d = dir.display().to_string();
    let root = mesh.root_out();
    let out = meshtrust(&[
        "bootstrap",
        "--cluster-names",
        "east",
        "--root-out",
        &root,
        "--generate",
        &d,
        "--network-from-cluster-name",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("private keys"),
        "the user is warned: {}",
        text(&out)
    );
    assert!(
        mesh.cluster("east").writes().is_empty(),
        "--generate touches no cluster"
    );
    let yaml = std::fs::read_to_string(dir.join("east.yaml")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(dir.join("east.yaml"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = mesh.harness.kube_client("east").await;
        for doc in yaml.split("\n---\n").skip(1) {
            let value: Value = serde_yaml_ng::from_str(doc).unwrap();
            match value["kind"].as_str().unwrap() {
                "Namespace" => {
                    let ns: k8s_openapi::api::core::v1::Namespace =
                        serde_json::from_value(value).unwrap();
                    kube::Api::all(client.clone())
                        .create(&Default::default(), &ns)
                        .await
                        .unwrap();
                }
                "Secret" => {
                    let s: k8s_openapi::api::core::v1::Secret =
                        serde_json::from_value(value).unwrap();
                    kube::Api::namespaced(client.clone(), "istio-system")
                        .create(&Default::default(), &s)
                        .await
                        .unwrap();
                }
                other => panic!("unexpected {other}"),
            }
        }
    });
    verify_cluster(&mesh.cluster("east"), &mesh.work.path().join("check"));
    let ns = mesh
        .cluster("east")
        .get("v1", "Namespace", None, "istio-system")
        .unwrap();
    assert_eq!(
        ns["metadata"]["labels"]["topology.istio.io/network"],
        "east"
    );
}

#[test]
fn push_creates_is_idempotent_and_replaces_only_when_forced() {
    let mesh = Mesh::new(&["c1"]);
    let certs = tempfile::tempdir().unwrap();
    let c = certs.path().display().to_string();
    assert!(
        meshtrust(&["demo", "--clusters", "a,b", "--out", &c])
            .status
            .success()
    );
    let kc = mesh.kubeconfig();
    let push = |bundle: &str, extra: &[&str]| {
        let b = format!("{c}/{bundle}");
        let mut args = vec![
            "push",
            "--bundle",
            &b,
            "--context",
            "c1",
            "--kubeconfig",
            &kc,
            "-o",
            "json",
        ];
        args.extend_from_slice(extra);
        let out = meshtrust(&args);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out, v)
    };
    let (out, v) = push("a", &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(v["action"], "create");
    mesh.cluster("c1").clear_requests();
    let (out, v) = push("a", &[]);
    assert!(out.status.success());
    assert_eq!(v["action"], "unchanged");
    assert!(mesh.cluster("c1").writes().is_empty());
    let before = cacerts(&mesh.cluster("c1")).unwrap();
    let (out, v) = push("b", &[]);
    assert!(!out.status.success());
    assert_eq!(v["action"], "conflict");
    assert_eq!(
        cacerts(&mesh.cluster("c1")).unwrap()["data"],
        before["data"]
    );
    let (out, v) = push("b", &["--force", "--backup"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(v["action"], "replace");
    assert!(v["backup"].as_str().unwrap().starts_with("cacerts-backup-"));
    // A bundle istiod would refuse is never pushed.
    let broken = certs.path().join("a");
    std::fs::remove_file(broken.join("root-cert.pem")).unwrap();
    let snap = snapshot(certs.path());
    let (out, _) = push("a", &["--force"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("root-cert.pem is missing"),
        "{}",
        text(&out)
    );
    assert_eq!(snapshot(certs.path()), snap);
}

#[test]
fn a_dry_run_shows_the_plan_and_writes_nothing() {
    let mesh = Mesh::new(&["c1", "c2"]);
    let (out, _) = mesh.bootstrap("c1", &[]);
    assert!(out.status.success(), "{}", text(&out));
    mesh.cluster("c1").clear_requests();
    let (out, rows) = mesh.bootstrap("c1,c2", &["--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(row(&rows, "c1")["action"], "unchanged");
    assert_eq!(row(&rows, "c2")["action"], "create");
    assert_eq!(row(&rows, "c2")["result"], "planned");
    for c in ["c1", "c2"] {
        assert!(mesh.cluster(c).writes().is_empty(), "{c} was written to");
    }
    assert!(cacerts(&mesh.cluster("c2")).is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_issues_from_aws_private_ca() {
    use meshtrust_testkit::aws::{AWS_TEST_ENV, Emulator, Flavor};
    let pca = Emulator::start(Flavor::Faithful);
    let arn = pca.root_ca("EC_prime256v1", true).await;
    let mesh = Mesh::new(&["east", "west"]);
    let (kc, root) = (mesh.kubeconfig(), mesh.root_out());
    let out = Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args([
            "bootstrap",
            "--contexts",
            "east,west",
            "--kubeconfig",
            &kc,
            "--root-out",
            &root,
        ])
        .args(["--issuer", "aws-pca", "--ca-arn", &arn])
        .args([
            "--endpoint-url",
            &pca.url,
            "--region",
            "us-east-1",
            "-o",
            "json",
        ])
        .envs(AWS_TEST_ENV)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let east = verify_cluster(&mesh.cluster("east"), &mesh.work.path().join("e"));
    let west = verify_cluster(&mesh.cluster("west"), &mesh.work.path().join("w"));
    assert_eq!(east["anchor_fingerprint"], west["anchor_fingerprint"]);
    assert_eq!(east["ca_cert"]["issuer"], "O=Acme, CN=Acme Mesh Root");
    assert!(
        !Path::new(&mesh.root_out()).exists(),
        "no local root is created with an AWS issuer"
    );
}
