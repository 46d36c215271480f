//! Crash consistency against clusters: `meshtrust bootstrap`, with a local root and with AWS
//! Private CA, is killed with SIGKILL right after each write an API server carries out.
//!
//! The loopback API server carries the chosen write out and then holds its answer
//! ([`Fault::HoldAfterApplying`]); the test kills the process while it waits. Every write
//! of a clean run (the namespace, the backup of a foreign `cacerts`, the `cacerts` itself,
//! in each cluster) is, in turn, the last one the process made. After each kill:
//! - every version any cluster's `cacerts` ever had passes `meshtrust verify` and
//!   `openssl verify`: no instant with a partial or invalid bundle;
//! - the root files are untouched, and the foreign `cacerts` is never lost (it is in place,
//!   or in a backup Secret);
//! - a rerun converges: exit 0, every cluster's `cacerts` chaining to the one root.

// The suite waits on real processes: wall-clock deadlines are the point here.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use meshtrust_testkit::apiserver::{Fault, FaultRule, Harness};
use meshtrust_testkit::aws::{AWS_TEST_ENV, Emulator, Flavor};
use meshtrust_testkit::crash::{assert_every_cacerts_version_valid, ders, run_killed_at, unb64};
use meshtrust_testkit::{snapshot, text};
use serde_json::{Value, json};

const CLUSTERS: [&str; 3] = ["c1", "c2", "c3"];
/// The cluster that starts with a `cacerts` meshtrust did not write.
const FOREIGN: &str = "c3";

fn meshtrust(args: &[String]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_meshtrust"));
    cmd.args(args).env_remove("KUBECONFIG");
    for (k, v) in AWS_TEST_ENV {
        cmd.env(k, v);
    }
    cmd
}

fn run(args: &[String]) -> Output {
    meshtrust(args).output().unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The fixed inputs of every run: a root on disk, and a foreign bundle from another root.
struct Inputs {
    work: tempfile::TempDir,
    foreign: Value,
}

impl Inputs {
    fn new() -> Inputs {
        let work = tempfile::tempdir().unwrap();
        let w = work.path().display().to_string();
        for args in [
            vec!["root", "create", "--out", &format!("{w}/root")],
            vec![
                "demo",
                "--clusters",
                "other",
                "--out",
                &format!("{w}/other"),
            ],
        ] {
            let out = run(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert!(out.status.success(), "{}", text(&out));
        }
        let mut data = serde_json::Map::new();
        for f in [
            "ca-cert.pem",
            "ca-key.pem",
            "cert-chain.pem",
            "root-cert.pem",
        ] {
            let bytes = std::fs::read(work.path().join("other/other").join(f)).unwrap();
            data.insert(f.into(), json!(b64(&bytes)));
        }
        Inputs {
            work,
            foreign: Value::Object(data),
        }
    }

    fn root(&self) -> PathBuf {
        self.work.path().join("root")
    }

    /// A fresh set of clusters; `FOREIGN` holds the foreign `cacerts`.
    fn clusters(&self) -> Harness {
        let harness = Harness::start(&CLUSTERS);
        let c = harness.cluster(FOREIGN);
        c.seed(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}}),
        );
        c.seed(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "cacerts", "namespace": "istio-system"},
            "data": self.foreign,
        }));
        harness
    }
}

/// `meshtrust bootstrap` of the three clusters, replacing the foreign `cacerts` with a
/// backup, with `issuer` arguments.
fn bootstrap_args(harness: &Harness, issuer: &[String]) -> Vec<String> {
    let mut args: Vec<String> = [
        "bootstrap",
        "--contexts",
        "c1,c2,c3",
        "--kubeconfig",
        &harness.kubeconfig_path().display().to_string(),
        "--network-from-cluster-name",
        "--force",
        "--backup",
        "--request-timeout",
        "5s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend_from_slice(issuer);
    args
}

/// Every version of every cluster's `cacerts` passes `meshtrust verify` and openssl.
fn assert_every_version_valid(harness: &Harness, after: &str) {
    for c in CLUSTERS {
        assert_every_cacerts_version_valid(
            &harness.cluster(c),
            Path::new(env!("CARGO_BIN_EXE_meshtrust")),
            after,
        );
    }
}

/// The foreign `cacerts` is still somewhere in `FOREIGN`: in place or in a backup.
fn assert_foreign_kept(harness: &Harness, foreign: &Value, after: &str) {
    let secrets = harness
        .cluster(FOREIGN)
        .list("v1", "Secret", Some("istio-system"));
    assert!(
        secrets.iter().any(|s| s["data"] == *foreign),
        "{after}: the foreign cacerts is lost: {:?}",
        secrets
            .iter()
            .map(|s| &s["metadata"]["name"])
            .collect::<Vec<_>>()
    );
}

/// Every cluster's `cacerts` trusts exactly the root in `root`.
fn assert_converged(harness: &Harness, root: &Path, after: &str) {
    let anchor = std::fs::read(root.join("root-cert.pem")).unwrap();
    for c in CLUSTERS {
        let secret = harness
            .cluster(c)
            .get("v1", "Secret", Some("istio-system"), "cacerts")
            .unwrap_or_else(|| panic!("{after}: {c} has no cacerts"));
        assert_eq!(
            ders(&unb64(&secret["data"]["root-cert.pem"])),
            ders(&anchor),
            "{after}: {c}'s cacerts trusts another root"
        );
        assert_eq!(
            secret["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "meshtrust"
        );
    }
}

/// Kills bootstrap after each write of a clean run, in turn; returns the points covered.
fn kill_after_every_write(inputs: &Inputs, issuer: &[String]) -> Vec<String> {
    let clean = inputs.clusters();
    let out = run(&bootstrap_args(&clean, issuer));
    assert!(out.status.success(), "the clean run: {}", text(&out));
    let writes: Vec<(String, usize)> = CLUSTERS
        .iter()
        .map(|c| (c.to_string(), clean.cluster(c).writes().len()))
        .collect();
    let root_before = snapshot(&inputs.root());
    let mut points = Vec::new();
    for (c, count) in &writes {
        for k in 1..=*count {
            let harness = inputs.clusters();
            harness.cluster(c).fail(
                FaultRule::new(Fault::HoldAfterApplying)
                    .writes()
                    .nth(k)
                    .times(1),
            );
            let mut child = meshtrust(&bootstrap_args(&harness, issuer))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            while harness.cluster(c).held() == 0 {
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "bootstrap ended before its write {k} to {c}"
                );
                assert!(Instant::now() < deadline, "write {k} to {c} never came");
                std::thread::sleep(Duration::from_millis(10));
            }
            child.kill().unwrap();
            child.wait().unwrap();
            let write = &harness.cluster(c).writes()[k - 1];
            let after = format!(
                "killed after write {k} to {c} ({} {})",
                write.method, write.path
            );
            assert_every_version_valid(&harness, &after);
            assert_foreign_kept(&harness, &inputs.foreign, &after);
            assert_eq!(
                snapshot(&inputs.root()),
                root_before,
                "{after}: the root changed"
            );

            harness.cluster(c).clear_faults();
            let rerun = run(&bootstrap_args(&harness, issuer));
            assert!(
                rerun.status.success(),
                "{after}, the rerun: {}",
                text(&rerun)
            );
            assert_every_version_valid(&harness, &after);
            assert_foreign_kept(&harness, &inputs.foreign, &after);
            assert_converged(&harness, &inputs.root(), &after);
            points.push(after);
        }
    }
    let total: usize = writes.iter().map(|(_, n)| n).sum();
    assert!(total >= 5, "a clean run writes: {writes:?}");
    assert_eq!(points.len(), total);
    points
}

#[test]
fn bootstrap_with_a_local_root_killed_after_any_write_leaves_valid_clusters_and_a_rerun_converges()
{
    let inputs = Inputs::new();
    let issuer = vec!["--root".to_string(), inputs.root().display().to_string()];
    let points = kill_after_every_write(&inputs, &issuer);
    eprintln!(
        "bootstrap (local root): {} kill points: {points:#?}",
        points.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_with_aws_private_ca_killed_after_any_write_leaves_valid_clusters_and_a_rerun_converges()
 {
    let pca = Emulator::start(Flavor::Faithful);
    let arn = pca.root_ca("EC_prime256v1", true).await;
    let inputs = Inputs::new();
    // The mesh root is the CA's certificate: fetch it to the place the checks read it from.
    let issuer: Vec<String> = [
        "--issuer",
        "aws-pca",
        "--ca-arn",
        &arn,
        "--endpoint-url",
        &pca.url,
        "--region",
        "us-east-1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let root = pca
        .client()
        .get_certificate_authority_certificate()
        .certificate_authority_arn(&arn)
        .send()
        .await
        .unwrap();
    std::fs::remove_dir_all(inputs.root()).unwrap();
    std::fs::create_dir_all(inputs.root()).unwrap();
    std::fs::write(
        inputs.root().join("root-cert.pem"),
        format!("{}\n", root.certificate().unwrap().trim_end()),
    )
    .unwrap();
    let points = tokio::task::block_in_place(|| kill_after_every_write(&inputs, &issuer));
    eprintln!(
        "bootstrap (AWS Private CA): {} kill points: {points:#?}",
        points.len()
    );
}

/// The calls that make a root appear on disk (its files, links, directories and flushes);
/// `write` is left out here, since most of bootstrap's are to the API servers' sockets
/// (tests/e2e/crash_files.rs kills `root create` at every `write`).
const ROOT_KILL_POINTS: &[&str] = &[
    "fsync",
    "fchmod",
    "mkdir",
    "renameat",
    "renameat2",
    "symlink",
    "unlinkat",
];

#[test]
fn bootstrap_creating_its_root_killed_at_any_file_change_leaves_no_root_or_a_whole_one() {
    let mut points = Vec::new();
    for syscall in ROOT_KILL_POINTS {
        for n in 1.. {
            let harness = Harness::start(&["c1", "c2"]);
            let work = tempfile::tempdir().unwrap();
            let root = work.path().join("root");
            let args: Vec<String> = [
                "bootstrap",
                "--contexts",
                "c1,c2",
                "--kubeconfig",
                &harness.kubeconfig_path().display().to_string(),
                "--root-out",
                &root.display().to_string(),
                "--request-timeout",
                "5s",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let log = work.path().join("strace.log");
            let Some(point) = run_killed_at(&meshtrust(&args), syscall, n, &log) else {
                break;
            };
            let after = format!("killed at {point}");
            let cert = std::fs::read(root.join("root-cert.pem")).ok();
            let key = std::fs::read(root.join("root-key.pem")).ok();
            assert_eq!(
                cert.is_some(),
                key.is_some(),
                "{after}: one of the root's two files without the other"
            );
            if cert.is_some() {
                assert!(
                    meshtrust_testkit::openssl_key_matches_cert(
                        &root.join("root-key.pem"),
                        &root.join("root-cert.pem")
                    ),
                    "{after}: root-key.pem is not root-cert.pem's key"
                );
            }
            for c in ["c1", "c2"] {
                assert_every_cacerts_version_valid(
                    &harness.cluster(c),
                    Path::new(env!("CARGO_BIN_EXE_meshtrust")),
                    &after,
                );
            }
            // The rerun reuses a whole root (never replaces it) or makes the first one.
            let rerun = run(&args);
            assert!(
                rerun.status.success(),
                "{after}, the rerun: {}",
                text(&rerun)
            );
            let made = std::fs::read(root.join("root-cert.pem")).unwrap();
            if let Some(cert) = &cert {
                assert!(*cert == made, "{after}: the rerun replaced the root");
            }
            for c in ["c1", "c2"] {
                let secret = harness
                    .cluster(c)
                    .get("v1", "Secret", Some("istio-system"), "cacerts")
                    .unwrap_or_else(|| panic!("{after}: {c} has no cacerts"));
                assert!(
                    ders(&unb64(&secret["data"]["root-cert.pem"])) == ders(&made),
                    "{after}: {c} trusts another root than the one in --root-out"
                );
            }
            points.push(point);
        }
    }
    assert!(points.len() >= 10, "kill points: {points:?}");
    eprintln!("bootstrap creating its root: {} kill points", points.len());
}
