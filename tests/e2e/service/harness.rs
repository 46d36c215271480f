//! A `meshtrust serve` process on loopback for the service suites: its root, config, admin
//! token, clock offset file and audit log in one temporary directory, its URL learnt from
//! its log, stopped (SIGKILL) on drop. Its store is a SQLite file in that directory, or a
//! fresh PostgreSQL database on the server named by `MESHTRUST_TEST_POSTGRES_URL`, created
//! with psql for the test and dropped after it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
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

/// The variable naming the PostgreSQL server the suites use: an admin URL such as
/// `postgres://meshtrust@127.0.0.1:5432/postgres` (each test creates its own database).
pub const POSTGRES_URL_VAR: &str = "MESHTRUST_TEST_POSTGRES_URL";

/// Where a service keeps its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// A SQLite file in the setup's directory (the default).
    Sqlite,
    /// A database of its own on the PostgreSQL server of `MESHTRUST_TEST_POSTGRES_URL`.
    Postgres,
}

/// Everything one service needs on disk (and, on PostgreSQL, its database).
pub struct Setup {
    pub dir: tempfile::TempDir,
    database: Option<Database>,
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
        Setup {
            dir,
            database: None,
        }
    }

    /// As [`Setup::new`], with the store `store`: on PostgreSQL, a database created for
    /// this setup (and dropped with it).
    pub fn on(store: Store, extra: &str) -> Setup {
        match store {
            Store::Sqlite => Setup::new(None, extra),
            Store::Postgres => {
                let database = Database::create();
                let mut setup = Setup::new(Some(&database.url), extra);
                setup.database = Some(database);
                setup
            }
        }
    }

    /// Runs `query` with psql on this setup's PostgreSQL database; returns its rows, one a
    /// line, columns separated by `|`.
    pub fn sql(&self, query: &str) -> String {
        let database = self
            .database
            .as_ref()
            .expect("Setup::sql needs a setup on Store::Postgres");
        psql(&database.url, query)
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
        self.audit_of("audit.log")
    }

    /// The lines so far of the audit log `file` (see [`Service::start_replica`]).
    pub fn audit_of(&self, file: &str) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.path(file))
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
        Service::start_logging_to(setup, "audit.log", &[])
    }

    /// [`Service::start`] with `env` added to the process's environment (e.g. the AWS
    /// credentials of an emulator).
    pub fn start_with_env(setup: &Setup, env: &[(&str, &str)]) -> Service {
        Service::start_logging_to(setup, "audit.log", env)
    }

    /// One more process of the same service (same config, store and clock), on a port of
    /// its own, writing its audit lines to `audit-<replica>.log` in the setup's directory.
    pub fn start_replica(setup: &Setup, replica: &str) -> Service {
        Service::start_logging_to(setup, &format!("audit-{replica}.log"), &[])
    }

    /// [`Service::start`] with every request it receives written to `requests.log` in the
    /// setup's directory (`--request-log`).
    pub fn start_logging_requests(setup: &Setup) -> Service {
        Service::start_logging_requests_with_env(setup, &[])
    }

    /// [`Service::start_logging_requests`] with `env` added to the process's environment.
    pub fn start_logging_requests_with_env(setup: &Setup, env: &[(&str, &str)]) -> Service {
        let log = setup.path("requests.log").display().to_string();
        Service::spawn(setup, "audit.log", env, &["--request-log", &log])
    }

    fn start_logging_to(setup: &Setup, audit_log: &str, env: &[(&str, &str)]) -> Service {
        Service::spawn(setup, audit_log, env, &[])
    }

    fn spawn(setup: &Setup, audit_log: &str, env: &[(&str, &str)], extra: &[&str]) -> Service {
        let mut child = Command::new(env!("CARGO_BIN_EXE_meshtrust"))
            .envs(env.iter().copied())
            .args([
                "serve",
                "--config",
                &setup.config(),
                "--audit-log",
                &setup.path(audit_log).display().to_string(),
                "--clock-offset-file",
                &setup.path("clock-offset").display().to_string(),
            ])
            .args(extra)
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
                // Text (`… listening on URL`) or JSON (`"message":"… listening on URL",…`).
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let url = rest.split(['"', ' ']).next().unwrap_or_default();
                    let _ = tx.send(url.to_string());
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

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (a name `kill -s` knows, e.g. `TERM`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -s {signal} failed");
    }

    /// Waits for the process to exit and returns its status.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
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
    match code.trim().parse() {
        Ok(code) if code != 0 => (code, body.to_string()),
        // No HTTP answer at all: say what curl saw, so that a failure explains itself.
        _ => (
            0,
            format!(
                "curl got no answer: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ),
    }
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// A database of one setup on the PostgreSQL server of `MESHTRUST_TEST_POSTGRES_URL`,
/// named after the test and this process, dropped on drop.
struct Database {
    admin: String,
    name: String,
    url: String,
}

impl Database {
    fn create() -> Database {
        let admin = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
            panic!(
                "{POSTGRES_URL_VAR} is not set, so this PostgreSQL case cannot run: run \
                 ./tests/run-all.sh (it starts PostgreSQL 15 and sets it), or set it to an \
                 admin URL such as postgres://meshtrust@127.0.0.1:5432/postgres"
            )
        });
        static DATABASES: AtomicU32 = AtomicU32::new(0);
        let n = DATABASES.fetch_add(1, Ordering::Relaxed);
        let test = std::thread::current().name().unwrap_or("test").to_owned();
        let name: String = format!("mt_{}_{n}_{test}", std::process::id())
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(63)
            .collect();
        psql(
            &admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
        psql(&admin, &format!("CREATE DATABASE {name}"));
        let url = database_url(&admin, &name);
        Database { admin, name, url }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // Best effort: a failing test keeps its answer; a leftover database is harmless.
        let _ = Command::new("psql")
            .args(["-X", "-q", "-d", &self.admin, "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

/// `admin` (`postgres://user@host:port/db?options`) with the database `name` instead.
fn database_url(admin: &str, name: &str) -> String {
    let (scheme, rest) = admin.split_once("://").unwrap_or_else(|| {
        panic!("{POSTGRES_URL_VAR}={admin} is not a URL; use postgres://user@host:port/postgres")
    });
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, format!("?{query}")),
        None => (rest, String::new()),
    };
    let authority = rest
        .split_once('/')
        .map_or(rest, |(authority, _)| authority);
    format!("{scheme}://{authority}/{name}{query}")
}

/// Runs `query` with psql on `url`; returns its rows (unaligned, tuples only).
fn psql(url: &str, query: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            query,
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run psql ({e}): install PostgreSQL's client (./tests/run-all.sh does)")
        });
    assert!(
        out.status.success(),
        "psql -d {url} -c {query:?} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A serving certificate for 127.0.0.1 signed by the setup's root (the AWS issuer cannot
/// self-issue one), leaf then root, so clients may pin the root by its fingerprint.
pub fn serving_certificate(setup: &Setup) -> (String, String) {
    let (cert, key, csr) = (
        setup.path("tls.crt"),
        setup.path("tls.key"),
        setup.path("tls.csr"),
    );
    let ext = setup.path("tls.ext");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let (ok, out) = meshtrust_testkit::openssl(args);
        assert!(ok, "openssl {args:?}: {out}");
    };
    run(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &path_str(&key),
        "-subj",
        "/CN=127.0.0.1",
        "-out",
        &path_str(&csr),
    ]);
    let leaf = setup.path("leaf.pem");
    run(&[
        "x509",
        "-req",
        "-in",
        &path_str(&csr),
        "-CA",
        &setup.root_cert(),
        "-CAkey",
        &path_str(&setup.path("root/root-key.pem")),
        "-set_serial",
        "7",
        "-days",
        "2",
        "-extfile",
        &path_str(&ext),
        "-out",
        &path_str(&leaf),
    ]);
    let chain = std::fs::read_to_string(&leaf).unwrap()
        + &std::fs::read_to_string(setup.root_cert()).unwrap();
    std::fs::write(&cert, chain).unwrap();
    (path_str(&cert), path_str(&key))
}
