//! A `meshtrust serve` process on loopback for the service suites: its root, config, admin
//! token, clock offset file and audit log in one temporary directory, its URL learnt from
//! its log, stopped (SIGKILL) on drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshtrust_testkit::text;

pub const ADMIN_TOKEN: &str = "admin-token-for-tests-0123456789abcdef";

pub fn meshtrust(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args(args)
        .output()
        .unwrap()
}

pub fn ok(args: &[&str]) -> String {
    let out = meshtrust(args);
    assert!(
        out.status.success(),
        "meshtrust {args:?} failed:\n{}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Everything one service needs on disk.
pub struct Setup {
    pub dir: tempfile::TempDir,
}

impl Setup {
    /// A root, an admin token and a config using `store` (None: a SQLite file here), with
    /// `extra` YAML appended (policy, clusters, limits).
    pub fn new(store: Option<&str>, extra: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        ok(&["root", "create", "--out", &root.display().to_string()]);
        std::fs::write(dir.path().join("admin-token"), ADMIN_TOKEN).unwrap();
        std::fs::write(dir.path().join("clock-offset"), "0").unwrap();
        let sqlite = format!("sqlite://{}", dir.path().join("meshtrust.db").display());
        let config = format!(
            "listen: 127.0.0.1:0\ntls:\n  self_issued: [127.0.0.1, localhost]\nissuer:\n  root_dir: {}\nstore: {}\nadmin_token_file: {}\n{extra}",
            root.display(),
            store.unwrap_or(&sqlite),
            dir.path().join("admin-token").display(),
        );
        std::fs::write(dir.path().join("serve.yaml"), config).unwrap();
        Setup { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn config(&self) -> String {
        self.path("serve.yaml").display().to_string()
    }

    pub fn root_cert(&self) -> String {
        self.path("root/root-cert.pem").display().to_string()
    }

    /// SHA-256 of the root certificate (what clients pin).
    pub fn fingerprint(&self) -> String {
        let pem = std::fs::read(self.path("root/root-cert.pem")).unwrap();
        meshtrust_ca::Certificate::all_from_pem("root", &pem).unwrap()[0].fingerprint()
    }

    /// Moves the service's clock `seconds` ahead of the wall clock.
    pub fn set_clock_offset(&self, seconds: i64) {
        std::fs::write(self.path("clock-offset"), seconds.to_string()).unwrap();
    }

    /// A one-time token for `cluster`, made with `meshtrust serve token create`.
    pub fn token(&self, cluster: &str, ttl: &str) -> String {
        let out = ok(&[
            "serve",
            "token",
            "create",
            "--config",
            &self.config(),
            "--cluster",
            cluster,
            "--ttl",
            ttl,
            "-o",
            "json",
        ]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["token"].as_str().unwrap().to_string()
    }

    /// The lines of the audit log so far.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.path("audit.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("every audit line is JSON"))
            .collect()
    }
}

/// A running service.
pub struct Service {
    child: Child,
    pub url: String,
    log: Arc<Mutex<String>>,
}

impl Service {
    pub fn start(setup: &Setup) -> Service {
        let mut child = Command::new(env!("CARGO_BIN_EXE_meshtrust"))
            .args([
                "serve",
                "--config",
                &setup.config(),
                "--audit-log",
                &setup.path("audit.log").display().to_string(),
                "--clock-offset-file",
                &setup.path("clock-offset").display().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_string());
                }
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("meshtrust serve did not start:\n{}", log.lock().unwrap()));
        Service { child, url, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Kills the process at once (SIGKILL) and waits for it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `curl` as an independent client: returns (HTTP status, body).
pub fn curl(setup: &Setup, args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--cacert",
            &setup.root_cert(),
            "-w",
            "\n%{http_code}",
        ])
        .args(args)
        .output()
        .unwrap();
    let all = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = all.rsplit_once('\n').unwrap_or(("", &all));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}
