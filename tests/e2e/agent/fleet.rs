//! The fixture of the agent suites: a `meshtrust serve`, the loopback member clusters with
//! istio-system and a ready istiod, and `meshtrust agent` processes, one per cluster.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::harness::{self, Service, Setup};
use meshtrust_testkit::apiserver::{Cluster, Harness};
use meshtrust_testkit::{assert_bundle_independently_valid_at, export_secret, text};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;

pub const NS: &str = "istio-system";

/// Polls `probe` until it gives a value, for at most `seconds`.
pub fn eventually<T>(what: &str, seconds: u64, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

// Shared by the agent suites; each uses some of them.
#[allow(unused_imports)]
pub use meshtrust_testkit::istiod::{cacerts, decoded, install_istio, istiod_publishes};

pub fn pending(cluster: &Cluster) -> Option<Value> {
    cluster.get("v1", "Secret", Some(NS), "meshtrust-agent-pending")
}

/// The serial of `cacerts`' intermediate (its annotation, `5c:95:…`), as the service
/// writes serials (`5c95…`).
pub fn serial(secret: &Value) -> String {
    secret["metadata"]["annotations"]["meshtrust.io/intermediate-serial"]
        .as_str()
        .unwrap_or_default()
        .replace(':', "")
        .to_lowercase()
}

/// A running `meshtrust agent`, killed (SIGKILL) on drop.
pub struct Agent {
    pub child: Child,
    pub log: Arc<Mutex<String>>,
    pub address: String,
}

impl Agent {
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args([
                "-sS",
                "-w",
                "\n%{http_code}",
                &format!("http://{}{path}", self.address),
            ])
            .output()
            .unwrap();
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = body.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// The value of one metric series (its full name and labels as printed).
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (_, text) = self.get("/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A service, the loopback clusters, and the agents' files.
pub struct Fleet {
    pub setup: Setup,
    pub service: Option<Service>,
    pub url: String,
    pub harness: Harness,
    pub work: tempfile::TempDir,
    /// Seconds the service's and the agents' clocks are ahead of the wall clock.
    pub offset: std::cell::Cell<i64>,
}

impl Fleet {
    /// A service on a fixed loopback port (so that it can be restarted where the agents
    /// look for it) and `clusters`, each with istio-system and a ready istiod.
    pub fn new(clusters: &[&str]) -> Fleet {
        Fleet::configured(clusters, "")
    }

    /// As [`Fleet::new`], with `extra` YAML in the service's configuration (e.g. `clusters:`).
    pub fn configured(clusters: &[&str], extra: &str) -> Fleet {
        // The tests poll the inventory; the admin's rate limit is not what they test.
        let setup = Setup::new(
            None,
            &format!("limits:\n  requests_per_minute: 100000\n{extra}"),
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = std::fs::read_to_string(setup.config()).unwrap();
        let config = config.replace("listen: 127.0.0.1:0", &format!("listen: 127.0.0.1:{port}"));
        std::fs::write(setup.config(), config).unwrap();
        let service = Service::start_logging_requests(&setup);
        let harness = Harness::start(clusters);
        for name in clusters {
            install_istio(&harness.cluster(name), true);
        }
        Fleet {
            url: service.url.clone(),
            service: Some(service),
            setup,
            harness,
            work: tempfile::tempdir().unwrap(),
            offset: std::cell::Cell::new(0),
        }
    }

    /// Moves the service's and the agents' clocks to `seconds` ahead of the wall clock.
    pub fn move_clock(&self, seconds: i64) {
        self.setup.set_clock_offset(seconds);
        self.offset.set(seconds);
    }

    /// Moves the clocks to a day before `secret`'s intermediate expires: past its renewal
    /// time and jitter.
    pub fn move_clock_to_renewal_of(&self, secret: &Value) {
        let not_after = secret["metadata"]["annotations"]["meshtrust.io/not-after"]
            .as_str()
            .map(|t| time::OffsetDateTime::parse(t, &Rfc3339).unwrap())
            .expect("a not-after annotation");
        let skip = not_after - time::OffsetDateTime::now_utc() - time::Duration::days(1);
        self.move_clock(skip.whole_seconds());
    }

    /// Now, on the fleet's clocks.
    pub fn now(&self) -> SystemTime {
        let offset = Duration::from_secs(self.offset.get().unsigned_abs());
        match self.offset.get() >= 0 {
            true => SystemTime::now() + offset,
            false => SystemTime::now() - offset,
        }
    }

    pub fn cluster(&self, name: &str) -> Cluster {
        self.harness.cluster(name)
    }

    pub fn token_file(&self, cluster: &str) -> PathBuf {
        let path = self.work.path().join(format!("{cluster}.token"));
        if !path.exists() {
            std::fs::write(&path, self.setup.token(cluster, "1h")).unwrap();
        }
        path
    }

    /// Starts the agent of `cluster` (a one-time token of its own), with `extra` flags.
    pub fn agent(&self, cluster: &str, extra: &[&str]) -> Agent {
        self.agent_as(cluster, &format!("agent-{cluster}"), extra)
    }

    /// Starts a replica of `cluster`'s agent with Lease identity `identity`.
    pub fn agent_as(&self, cluster: &str, identity: &str, extra: &[&str]) -> Agent {
        let token = self.token_file(cluster).display().to_string();
        self.agent_with(cluster, identity, ["--token-file", &token], extra)
    }

    /// Starts a replica of `cluster`'s agent enrolling with `credential` (a flag and a
    /// file: `--token-file` or `--service-account-token-file`).
    pub fn agent_with(
        &self,
        cluster: &str,
        identity: &str,
        credential: [&str; 2],
        extra: &[&str],
    ) -> Agent {
        let mut child = Command::new(env!("CARGO_BIN_EXE_meshtrust"))
            .env_remove("KUBECONFIG")
            .env("RUST_LOG", "info,kube=warn")
            .args([
                "agent",
                "--cluster",
                cluster,
                "--server",
                &self.url,
                "--server-ca",
                &self.setup.root_cert(),
                credential[0],
                credential[1],
                "--kubeconfig",
                &self.harness.kubeconfig_path().display().to_string(),
                "--context",
                cluster,
                "--listen",
                "127.0.0.1:0",
                "--identity",
                identity,
                "--report-every",
                "1s",
                "--backoff-base",
                "200ms",
                "--backoff-cap",
                "1s",
                "--lease-duration",
                "3s",
                "--renew-deadline",
                "2s",
                "--retry-period",
                "300ms",
                "--request-timeout",
                "5s",
                "--server-timeout",
                "5s",
                "--clock-offset-file",
                &self.setup.path("clock-offset").display().to_string(),
                "--log-format",
                "json",
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
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && let Some(address) = v["address"].as_str()
                {
                    let _ = tx.send(address.to_string());
                }
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let address = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("meshtrust agent did not start:\n{}", log.lock().unwrap()));
        Agent {
            child,
            log,
            address,
        }
    }

    /// The service's inventory (`status --server -o json`).
    pub fn inventory(&self) -> Value {
        let out = harness::ok(&[
            "status",
            "--server",
            &self.url,
            "--server-ca",
            &self.setup.root_cert(),
            "--admin-token-file",
            &self.setup.path("admin-token").display().to_string(),
            "-o",
            "json",
        ]);
        serde_json::from_str(&out).unwrap()
    }

    pub fn entry(&self, cluster: &str) -> Value {
        let inventory = self.inventory();
        let clusters = inventory["clusters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        clusters
            .into_iter()
            .find(|c| c["name"] == cluster)
            .unwrap_or_else(|| panic!("{cluster} in the inventory: {inventory}"))
    }

    pub fn stop_service(&mut self) {
        if let Some(service) = self.service.take() {
            service.kill();
        }
    }

    pub fn start_service(&mut self) {
        self.start_service_with_env(&[]);
    }

    /// Starts the service again, with `env` added to its environment.
    pub fn start_service_with_env(&mut self, env: &[(&str, &str)]) {
        let service = Service::start_logging_requests_with_env(&self.setup, env);
        assert_eq!(service.url, self.url, "the service came back where it was");
        self.service = Some(service);
    }

    /// Waits until `cluster` holds a cacerts with a serial other than `not`, and no pending
    /// key; returns it.
    pub fn written(&self, cluster: &str, not: &str) -> Value {
        let c = self.cluster(cluster);
        eventually(&format!("{cluster}'s cacerts"), 60, || {
            cacerts(&c).filter(|s| serial(s) != not && pending(&c).is_none())
        })
    }

    /// Checks `cluster`'s cacerts with openssl, rustls-webpki and `meshtrust verify`;
    /// returns the root it chains to.
    pub fn verified(&self, cluster: &str) -> String {
        let secret = cacerts(&self.cluster(cluster)).expect("cacerts");
        let dir = self.work.path().join(format!("{cluster}-bundle"));
        let _ = std::fs::remove_dir_all(&dir);
        export_secret(&secret, &dir);
        assert_bundle_independently_valid_at(&dir, Some(self.now()));
        let at = time::OffsetDateTime::from(self.now())
            .format(&Rfc3339)
            .unwrap();
        let out = harness::meshtrust(&[
            "verify",
            &dir.display().to_string(),
            "--at",
            &at,
            "-o",
            "json",
        ]);
        assert!(out.status.success(), "{cluster}: {}", text(&out));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        report["anchor_fingerprint"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}
