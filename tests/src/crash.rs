//! Checks shared by the crash suites (`tests/e2e/crash_*.rs`): what a cluster may hold after
//! a process writing to it was killed.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use rustls_pki_types::pem::PemObject;
use serde_json::Value;

use crate::apiserver::Cluster;
use crate::{openssl_verify, text};

/// Every version `cluster`'s `istio-system/cacerts` ever had (its whole history on the
/// loopback API server) passes `meshtrust verify` (the binary at `meshtrust`) and
/// `openssl verify`: there was no instant with a partial or invalid bundle. `after` says
/// when, for the message.
///
/// # Panics
/// On the first version that fails, naming the cluster, the version and `after`.
pub fn assert_every_cacerts_version_valid(cluster: &Cluster, meshtrust: &Path, after: &str) {
    let scratch = tempfile::tempdir().unwrap();
    let versions = cluster.history("v1", "Secret", Some("istio-system"), "cacerts");
    for (i, (_, secret)) in versions.iter().enumerate() {
        let Some(data) = secret["data"].as_object() else {
            continue; // a deletion
        };
        let dir = scratch.path().join(i.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        for (k, v) in data {
            std::fs::write(dir.join(k), unb64(v)).unwrap();
        }
        let verified = Command::new(meshtrust)
            .arg("verify")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            verified.status.success(),
            "{after}: version {i} of {}'s cacerts fails meshtrust verify: {}",
            cluster.name(),
            text(&verified)
        );
        openssl_verify(
            &dir.join("root-cert.pem"),
            &dir.join("cert-chain.pem"),
            &dir.join("ca-cert.pem"),
        )
        .unwrap_or_else(|e| panic!("{after}: version {i} of {}'s cacerts: {e}", cluster.name()));
    }
}

/// Every pair of `clusters` holding a `cacerts` trusts each other: openssl verifies each
/// one's intermediate (through its chain) against every other's `root-cert.pem`.
///
/// # Panics
/// Naming the first pair that does not, and `after`.
pub fn assert_clusters_trust_each_other(clusters: &[Cluster], after: &str) {
    let scratch = tempfile::tempdir().unwrap();
    let mut held = Vec::new();
    for c in clusters {
        let Some(secret) = c.get("v1", "Secret", Some("istio-system"), "cacerts") else {
            continue;
        };
        let dir = scratch.path().join(c.name());
        std::fs::create_dir_all(&dir).unwrap();
        for (k, v) in secret["data"].as_object().unwrap() {
            std::fs::write(dir.join(k), unb64(v)).unwrap();
        }
        held.push((c.name().to_string(), dir));
    }
    for (a, da) in &held {
        for (b, db) in &held {
            openssl_verify(
                &da.join("root-cert.pem"),
                &db.join("cert-chain.pem"),
                &db.join("ca-cert.pem"),
            )
            .unwrap_or_else(|e| panic!("{after}: {a} does not trust {b}'s intermediate: {e}"));
        }
    }
}

/// Runs `command` under strace, killed (SIGKILL) as it enters its `n`th call of `syscall`,
/// before the call runs; strace's log goes to `log`. Returns the call it was killed at
/// (strace's line), or `None` when it ran to the end.
///
/// # Panics
/// When strace cannot run, or the command, not killed, fails.
pub fn run_killed_at(command: &Command, syscall: &str, n: usize, log: &Path) -> Option<String> {
    let out = Command::new("strace")
        .args(["-f", "-qq", "-o"])
        .arg(log)
        .arg(format!("-etrace={syscall}"))
        .arg(format!("-einject={syscall}:signal=KILL:when={n}"))
        .arg("--")
        .arg(command.get_program())
        .args(command.get_args())
        .envs(command.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .env_remove("KUBECONFIG")
        .output()
        .expect("strace runs (tests/run-all.sh installs it)");
    if out.status.signal() == Some(9) {
        let log = std::fs::read_to_string(log).unwrap();
        let line = log
            .lines()
            .rev()
            .find(|l| l.contains("= ?"))
            .unwrap_or_else(|| panic!("strace logged the killed call:\n{log}"));
        // `PID call(args) = ?`, or `PID <... call resumed>…) = ?` when threads interleave.
        let call = line.split_once(' ').map_or(line, |(_, call)| call);
        let call = call.strip_prefix("<... ").unwrap_or(call);
        return Some(call.replace(" resumed>", "(…"));
    }
    assert!(
        out.status.success(),
        "{:?} {:?}: {}",
        command.get_program(),
        command.get_args().collect::<Vec<_>>(),
        text(&out)
    );
    None
}

/// The DER of every certificate in a PEM bundle, in order.
pub fn ders(pem_text: &[u8]) -> Vec<Vec<u8>> {
    rustls_pki_types::CertificateDer::pem_slice_iter(pem_text)
        .map(|c| c.unwrap().to_vec())
        .collect()
}

/// A Secret's base64 value, decoded.
pub fn unb64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap_or_default())
        .unwrap()
}
