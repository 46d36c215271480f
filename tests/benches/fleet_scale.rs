//! A fleet of simulated clusters against one `meshtrust serve` (issue 12, "Scale"): N
//! clusters enroll, then the service rotates the root across all of them with a zero hold.
//! tests/bench/fleet_scale.sh runs it for 10, 100 and 1,000 clusters; the figures are in
//! docs/BENCHMARKS.md.
//!
//! ```text
//! fleet_scale --meshtrust BIN --work DIR --clusters N [--connections C] [--report-every-ms MS]
//! ```
//!
//! Each simulated cluster is what an agent does, over the real API and TLS: it makes its
//! key and CSR and enrolls with a one-time token; then it reports (signed with its key) what
//! it holds, its istiod having loaded at once the roots its `cacerts` holds, and follows the
//! answer: renew when told to reissue (proof of possession), take the trust file given, or
//! wait `--report-every-ms` (a minute in production; 1 s here). No Kubernetes is involved:
//! the service's work is the same, the agents' writes to their clusters are left out.
//!
//! The service is started from BIN with a SQLite store in DIR, restarted with
//! `rotation.to` (a second root, hold 0s) once every cluster has enrolled and reported.
//! Printed, one JSON object: `{"clusters", "enroll_seconds", "rotate_seconds", "reports",
//! "renewals", "trust_writes", "serve_rss_peak_mb", "serve_cpu_seconds"}`. Afterwards
//! every cluster is checked to hold the new root alone, and an intermediate it issued.
#![allow(clippy::disallowed_methods)] // A benchmark reads the wall clock.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use meshtrust_ca::{
    Certificate, ClusterName, IntermediateParams, KeyType, PrivateKey, TrustBundle,
};
use meshtrust_issuer::server::api::{ClusterReport, IstiodSettings, ReportRequest, RotationPhase};
use meshtrust_issuer::server::{ServerIssuer, ServerTrust, ServiceClient, wire};
use meshtrust_issuer::{IssueRequest, IssueResponse};
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

type Failure = Box<dyn std::error::Error + Send + Sync>;
type Outcome<T> = Result<T, Failure>;

const ADMIN_TOKEN: &str = "fleet-scale-admin-token-0123456789abcdef";

struct Options {
    meshtrust: PathBuf,
    work: PathBuf,
    clusters: usize,
    connections: usize,
    report_every: Duration,
}

fn options() -> Outcome<Options> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut o = Options {
        meshtrust: PathBuf::from("target/release/meshtrust"),
        work: std::env::temp_dir().join("meshtrust-fleet-scale"),
        clusters: 100,
        connections: 32,
        report_every: Duration::from_secs(1),
    };
    for pair in args.chunks(2) {
        let [name, value] = pair else {
            return Err(format!("{pair:?}: every option takes a value").into());
        };
        match name.as_str() {
            "--meshtrust" => o.meshtrust = PathBuf::from(value),
            "--work" => o.work = PathBuf::from(value),
            "--clusters" => o.clusters = value.parse()?,
            "--connections" => o.connections = value.parse()?,
            "--report-every-ms" => o.report_every = Duration::from_millis(value.parse()?),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(o)
}

/// A running `meshtrust serve`.
struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    fn start(o: &Options) -> Outcome<Serve> {
        let mut child = Command::new(&o.meshtrust)
            .args(["serve", "--config"])
            .arg(o.work.join("serve.yaml"))
            .args(["--audit-log"])
            .arg(o.work.join("audit.log"))
            .env("RUST_LOG", "warn,meshtrust::cmd::serve=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(rest.split(['"', ' ']).next().unwrap_or("").to_string());
                } else {
                    eprintln!("serve: {line}");
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| "meshtrust serve did not start")?;
        Ok(Serve { child, url })
    }

    /// Peak resident memory (VmHWM) and CPU time so far.
    fn usage(&self) -> (f64, f64) {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let hwm_kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let ticks: f64 = [11, 12]
            .iter()
            .filter_map(|i| fields.get(*i)?.parse::<f64>().ok())
            .sum();
        (hwm_kb / 1024.0, ticks / 100.0)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One simulated cluster: what its `cacerts` holds.
struct Sim {
    name: ClusterName,
    key: PrivateKey,
    certificate: Certificate,
    chain: Vec<Certificate>,
    trust_pem: String,
}

impl Sim {
    fn held(name: ClusterName, key: PrivateKey, answer: IssueResponse) -> Sim {
        Sim {
            name,
            key,
            certificate: answer.certificate,
            chain: answer.chain,
            trust_pem: answer.trust_bundle.to_pem(),
        }
    }

    fn report(&self, now: OffsetDateTime) -> Outcome<ClusterReport> {
        let roots = wire::fingerprints(&TrustBundle::from_pem("trust", self.trust_pem.as_bytes())?);
        let chain: String = std::iter::once(&self.certificate)
            .chain(&self.chain)
            .map(Certificate::to_pem)
            .collect();
        Ok(ClusterReport {
            cacerts_serial: wire::serial(&self.certificate),
            cacerts_roots: roots.clone(),
            istiod_roots: Some(roots),
            istiod: Some(IstiodSettings {
                multiroot_mesh: Some("true".to_string()),
                proxy_config_xds_agent: Some("true".to_string()),
            }),
            cacerts_files: BTreeMap::from([
                ("ca-cert.pem".to_string(), self.certificate.to_pem()),
                ("cert-chain.pem".to_string(), chain),
                ("root-cert.pem".to_string(), self.trust_pem.clone()),
            ]),
            agent_version: "fleet-scale".to_string(),
            observed_at: wire::time(now),
        })
    }
}

struct Counters {
    reports: AtomicUsize,
    renewals: AtomicUsize,
    trust_writes: AtomicUsize,
}

/// The issuance request of `name` for `key`, under the service's policy `params`.
fn request(
    params: &IntermediateParams,
    name: &ClusterName,
    key: &PrivateKey,
) -> Outcome<IssueRequest> {
    let params = params.for_cluster(name.clone());
    let csr = params.csr(key)?;
    Ok(IssueRequest::new(
        name.clone(),
        csr,
        params.profile(),
        OffsetDateTime::now_utc(),
    ))
}

/// Enrolls every cluster (tokens made first, untimed); returns them and the seconds taken.
async fn enroll(
    o: &Options,
    issuer: &Arc<ServerIssuer>,
    admin: &Zeroizing<String>,
) -> Outcome<(Vec<Sim>, f64)> {
    let names: Vec<ClusterName> = (0..o.clusters)
        .map(|i| ClusterName::new(&format!("c{i:04}")))
        .collect::<Result<_, _>>()?;
    let mut tokens = Vec::new();
    for name in &names {
        let t = issuer
            .client()
            .create_token(name, time::Duration::HOUR, admin)
            .await?;
        tokens.push(Zeroizing::new(t.token));
    }
    let (params, _) = issuer
        .params(&IntermediateParams::new(names[0].clone()))
        .await?;
    let gate = Arc::new(Semaphore::new(o.connections));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (name, token) in names.into_iter().zip(tokens) {
        let (issuer, params, gate) = (issuer.clone(), params.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await?;
            let key = PrivateKey::generate(KeyType::EcdsaP256)?;
            let req = request(&params, &name, &key)?;
            let answer = issuer.enroll_with(&req, &token).await?;
            Ok::<_, Failure>(Sim::held(name, key, answer))
        }));
    }
    let mut sims = Vec::new();
    for t in tasks {
        sims.push(t.await??);
    }
    Ok((sims, started.elapsed().as_secs_f64()))
}

/// One report of `sim`, and what it does about the answer; `true` if it changed anything.
async fn round(
    issuer: &ServerIssuer,
    params: &IntermediateParams,
    sim: &mut Sim,
    counters: &Counters,
) -> Outcome<bool> {
    let now = OffsetDateTime::now_utc();
    let report = sim.report(now)?;
    let signed = ReportRequest::signed(&sim.name, &report, &sim.certificate, &sim.key, now)?;
    let answer = issuer.client().report(&sim.name, &signed).await?;
    counters.reports.fetch_add(1, Ordering::Relaxed);
    if answer.desired.reissue {
        let key = PrivateKey::generate(KeyType::EcdsaP256)?;
        let req = request(params, &sim.name, &key)?;
        let renewed = issuer.renew(&req, &sim.certificate, &sim.key).await?;
        *sim = Sim::held(sim.name.clone(), key, renewed);
        counters.renewals.fetch_add(1, Ordering::Relaxed);
        return Ok(true);
    }
    if answer.desired.trust_bundle_pem != sim.trust_pem {
        sim.trust_pem = answer.desired.trust_bundle_pem;
        counters.trust_writes.fetch_add(1, Ordering::Relaxed);
        return Ok(true);
    }
    Ok(false)
}

fn write_config(o: &Options, rotation: Option<&Path>) -> Outcome<()> {
    let mut config = format!(
        "listen: 127.0.0.1:0\ntls:\n  self_issued: [127.0.0.1]\nissuer:\n  root_dir: {}\nstore: sqlite://{}\nadmin_token_file: {}\nlimits:\n  requests_per_minute: 10000000\n",
        o.work.join("root").display(),
        o.work.join("meshtrust.db").display(),
        o.work.join("admin-token").display(),
    );
    if let Some(dir) = rotation {
        config.push_str(&format!(
            "rotation:\n  to:\n    root_dir: {}\n  hold: 0s\n",
            dir.display()
        ));
    }
    std::fs::write(o.work.join("serve.yaml"), config)?;
    Ok(())
}

fn connect(o: &Options, url: &str) -> Outcome<Arc<ServerIssuer>> {
    let root = std::fs::read(o.work.join("root/root-cert.pem"))?;
    let trust = ServerTrust::ca_bundle_from_pem("root", &root)?;
    let client = ServiceClient::new(url, &trust, Duration::from_secs(60))?;
    Ok(Arc::new(ServerIssuer::new(client, BTreeMap::new(), None)))
}

async fn run(o: Options) -> Outcome<()> {
    let _ = std::fs::remove_dir_all(&o.work);
    std::fs::create_dir_all(&o.work)?;
    for dir in ["root", "root-2"] {
        let out = Command::new(&o.meshtrust)
            .args(["root", "create", "--out"])
            .arg(o.work.join(dir))
            .output()?;
        if !out.status.success() {
            return Err(format!("root create: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
    }
    std::fs::write(o.work.join("admin-token"), ADMIN_TOKEN)?;
    let admin = Zeroizing::new(ADMIN_TOKEN.to_string());
    write_config(&o, None)?;
    let serve = Serve::start(&o)?;
    let issuer = connect(&o, &serve.url)?;
    let (sims, enroll_seconds) = enroll(&o, &issuer, &admin).await?;
    eprintln!(
        "fleet_scale: {} clusters enrolled in {enroll_seconds:.2} s",
        o.clusters
    );
    let (enroll_rss, _) = serve.usage();
    let (params, _) = issuer
        .params(&IntermediateParams::new(sims[0].name.clone()))
        .await?;
    let counters = Arc::new(Counters {
        reports: AtomicUsize::new(0),
        renewals: AtomicUsize::new(0),
        trust_writes: AtomicUsize::new(0),
    });
    // Every cluster reports once before the rotation starts.
    let mut sims = sims;
    for sim in &mut sims {
        round(&issuer, &params, sim, &counters).await?;
    }
    eprintln!("fleet_scale: every cluster reported; restarting the service with rotation.to");
    drop(serve);
    write_config(&o, Some(&o.work.join("root-2")))?;
    let serve = Serve::start(&o)?;
    let issuer = connect(&o, &serve.url)?;
    let (_, cpu_before) = serve.usage();
    let stop = Arc::new(AtomicBool::new(false));
    let gate = Arc::new(Semaphore::new(o.connections));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut sim in sims {
        let (issuer, params, counters, stop, gate) = (
            issuer.clone(),
            params.clone(),
            counters.clone(),
            stop.clone(),
            gate.clone(),
        );
        let every = o.report_every;
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let changed = {
                    let _permit = gate.acquire().await?;
                    round(&issuer, &params, &mut sim, &counters).await?
                };
                if !changed {
                    tokio::time::sleep(every).await;
                }
            }
            Ok::<_, Failure>(sim)
        }));
    }
    let mut last = issuer
        .client()
        .rotation(&admin)
        .await?
        .ok_or("no rotation")?;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let status = issuer
            .client()
            .rotation(&admin)
            .await?
            .ok_or("no rotation")?;
        if status.phase == RotationPhase::Complete {
            break;
        }
        if status != last {
            let waits: Vec<&str> = status
                .waiting_for
                .iter()
                .map(|w| w.reason.as_str())
                .collect();
            eprintln!(
                "fleet_scale: {:.1} s: {:?} open {} waiting {} {:?}",
                started.elapsed().as_secs_f64(),
                status.phase,
                status.open,
                waits.len(),
                waits.first()
            );
            last = status;
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!("the rotation did not complete in 600 s: {last:?}").into());
        }
    }
    let rotate_seconds = started.elapsed().as_secs_f64();
    let (rss, cpu_after) = serve.usage();
    stop.store(true, Ordering::Relaxed);
    let new_pem = std::fs::read_to_string(o.work.join("root-2/root-cert.pem"))?;
    let new = Certificate::all_from_pem("new root", new_pem.as_bytes())?.remove(0);
    for t in tasks {
        let sim = t.await??;
        if sim.trust_pem != new.to_pem() || !sim.certificate.is_issued_by(&new) {
            return Err(format!("cluster {} does not hold the new root alone", sim.name).into());
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "clusters": o.clusters,
            "enroll_seconds": enroll_seconds,
            "rotate_seconds": rotate_seconds,
            "reports": counters.reports.load(Ordering::Relaxed),
            "renewals": counters.renewals.load(Ordering::Relaxed),
            "trust_writes": counters.trust_writes.load(Ordering::Relaxed),
            "serve_rss_peak_mb": rss.max(enroll_rss),
            "serve_cpu_seconds": cpu_after - cpu_before,
        })
    );
    Ok(())
}

fn main() {
    let outcome = options().and_then(|o| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(run(o))
    });
    if let Err(e) = outcome {
        eprintln!("fleet_scale: {e}");
        std::process::exit(1);
    }
}
