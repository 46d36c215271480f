//! Load client for `meshtrust serve` and its baselines (issue 11, "Performance").
//! tests/bench/serve_vs_cfssl.sh builds it in release mode and runs every mode; the
//! figures are in docs/BENCHMARKS.md. It prints one JSON object per run on stdout:
//! `{"mode", "requests", "connections", "seconds", "rate", "p50_ms", "p99_ms", "max_ms",
//! "errors", "first_error"}`; any answer other than 200 is an error, counted and shown.
//!
//! ```text
//! serve_load enroll     --url URL --ca ROOT_PEM --admin-token-file F [--requests N] [--connections C] [--prefix P]
//! serve_load storm      --url URL --ca ROOT_PEM --admin-token-file F [--requests 1000] [--prefix P]
//! serve_load cfssl      --url URL --ca CA_PEM [--requests N] [--connections C]
//! serve_load in-process --root DIR [--requests N] [--threads T]
//! ```
//!
//! - `enroll`: creates N one-time tokens for N distinct clusters through
//!   `POST /v1/admin/tokens` and N P-256 CSRs (neither timed), then posts the N enrollments
//!   from C workers, each on its own keep-alive TLS connection (HTTP/1.1, opened before the
//!   clock starts). Each 200 is an authenticated signing that the service recorded durably.
//! - `storm`: the same, but every cluster is its own client: N connections (a TLS handshake
//!   each), N requests released at once; `seconds` is the time to the last certificate.
//! - `cfssl`: `POST /api/v1/cfssl/sign` of CSRs of the same shape, with C connections.
//! - `in-process`: the limit — per CSR what the service's CA part does (PEM decode,
//!   `Csr::inspect` with its signature check, the policy check, the key fingerprint, and
//!   `LocalIssuer::issue_intermediate`: signing and checking the result) on T threads; no
//!   HTTP, no store.
//!
//! With `--server-pid PID` the service's CPU time per request (user + system, from /proc)
//! is reported too, and the client's own. If `SERVE_LOAD_STARTED_FILE` is set, that file is
//! written when the clock starts (to start `perf record -p PID` on the service then).
//!
//! The answers are checked after the clock stops: the first one must be a CA certificate
//! issued by the root given with `--ca` (`--root` in-process).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use meshtrust_ca::{
    Certificate, ClusterName, Csr, IntermediateParams, KeyType, PrivateKey, csr_matches, sha256_hex,
};
use meshtrust_issuer::server::api::{EnrollRequest, IssuedResponse, TokenRequest, TokenResponse};
use meshtrust_issuer::{IssueRequest, Issuer, LocalIssuer};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};

type Failure = Box<dyn std::error::Error + Send + Sync>;
type Outcome<T> = Result<T, Failure>;

/// Tokens created concurrently (untimed), on as many kept-alive connections.
const TOKEN_BATCH: usize = 16;

/// The command line: a mode, then `--name value` pairs.
struct Options {
    mode: String,
    url: String,
    ca: String,
    admin_token_file: String,
    root: String,
    prefix: String,
    server_pid: Option<String>,
    requests: usize,
    connections: usize,
    threads: usize,
}

fn options() -> Outcome<Options> {
    // `cargo bench` adds `--bench`; the script runs the binary directly.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mode = args
        .first()
        .cloned()
        .ok_or("name a mode: enroll, storm, cfssl or in-process")?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut o = Options {
        requests: if mode == "storm" { 1000 } else { 10_000 },
        connections: 16,
        threads: cores,
        mode,
        url: String::new(),
        ca: String::new(),
        admin_token_file: String::new(),
        root: String::new(),
        prefix: "bench".to_string(),
        server_pid: None,
    };
    for pair in args[1..].chunks(2) {
        let [name, value] = pair else {
            return Err(format!("{} needs a value", pair[0]).into());
        };
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("{name}: `{value}` is not a count"))
        };
        match name.as_str() {
            "--url" => o.url = value.trim_end_matches('/').to_string(),
            "--ca" => o.ca = value.clone(),
            "--admin-token-file" => o.admin_token_file = value.clone(),
            "--root" => o.root = value.clone(),
            "--prefix" => o.prefix = value.clone(),
            "--server-pid" => o.server_pid = Some(value.clone()),
            "--requests" => o.requests = number()?,
            "--connections" => o.connections = number()?,
            "--threads" => o.threads = number()?,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    if o.requests == 0 || o.connections == 0 || o.threads == 0 {
        return Err("--requests, --connections and --threads must be at least 1".into());
    }
    Ok(o)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("serve_load: {e}");
        std::process::exit(1);
    }
}

fn run() -> Outcome<()> {
    let o = options()?;
    if o.mode == "in-process" {
        return in_process(&o);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match o.mode.as_str() {
            "enroll" => enroll(&o).await,
            "storm" => storm(&o).await,
            "cfssl" => cfssl(&o).await,
            other => {
                Err(format!("unknown mode `{other}`: enroll, storm, cfssl or in-process").into())
            }
        }
    })
}

// ------------------------------------------------------------------------------- inputs

/// Cluster names `<prefix>-<i>`.
fn clusters(o: &Options) -> Outcome<Vec<ClusterName>> {
    (0..o.requests)
        .map(|i| Ok(ClusterName::new(&format!("{}-{i}", o.prefix))?))
        .collect()
}

/// A P-256 CSR per cluster, of the shape `meshtrust cacerts --issuer server` sends (the
/// policy's subject and SAN), made on every core.
fn csrs(clusters: &[ClusterName]) -> Outcome<Vec<Csr>> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = clusters.len().div_ceil(cores).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = clusters
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|c| {
                            let key = PrivateKey::generate(KeyType::EcdsaP256)?;
                            IntermediateParams::new(c.clone()).csr(&key)
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(clusters.len());
        for part in parts {
            all.extend(part.join().map_err(|_| "a CSR thread panicked")??);
        }
        Ok(all)
    })
}

/// An HTTP/1.1 client that keeps at most `idle` connections, trusting only `ca`.
fn client(ca: &[Certificate], idle: usize) -> Outcome<reqwest::Client> {
    let mut roots = rustls::RootCertStore::empty();
    for c in ca {
        roots.add(c.der().clone())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .http1_only()
        .pool_max_idle_per_host(idle)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(120))
        .build()?)
}

fn read_ca(path: &str) -> Outcome<Vec<Certificate>> {
    let pem = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    Ok(Certificate::all_from_pem(path, &pem)?)
}

/// One request ready to send: where, its body, its bearer credential.
#[derive(Clone)]
struct Job {
    method: reqwest::Method,
    url: String,
    body: bytes::Bytes,
    bearer: Option<HeaderValue>,
}

/// Creates one enrollment token per cluster through the admin API, `connections` at a time.
async fn tokens(
    o: &Options,
    http: &reqwest::Client,
    clusters: &[ClusterName],
) -> Outcome<Vec<String>> {
    let admin = std::fs::read_to_string(&o.admin_token_file)
        .map_err(|e| format!("{}: {e}", o.admin_token_file))?;
    let admin = HeaderValue::from_str(&format!("Bearer {}", admin.trim()))?;
    let url = format!("{}/v1/admin/tokens", o.url);
    let create = |cluster: &ClusterName| {
        let request = TokenRequest {
            cluster: cluster.to_string(),
            ttl_seconds: 3600,
        };
        let call = http
            .post(&url)
            .header(AUTHORIZATION, admin.clone())
            .json(&request)
            .send();
        async move {
            let response = call.await?;
            if !response.status().is_success() {
                let status = response.status();
                return Err(format!("token creation: {status}: {}", response.text().await?).into());
            }
            Ok::<_, Failure>(response.json::<TokenResponse>().await?.token)
        }
    };
    let mut out = Vec::with_capacity(clusters.len());
    for part in clusters.chunks(TOKEN_BATCH) {
        for token in futures::future::join_all(part.iter().map(create)).await {
            out.push(token?);
        }
    }
    Ok(out)
}

/// The enrollment requests, bodies serialised before the clock starts.
async fn enrollments(o: &Options, ca: &[Certificate]) -> Outcome<Vec<Job>> {
    let clusters = clusters(o)?;
    let csrs = csrs(&clusters)?;
    let tokens = tokens(o, &client(ca, TOKEN_BATCH)?, &clusters).await?;
    let mut jobs = Vec::with_capacity(clusters.len());
    for ((cluster, csr), token) in clusters.iter().zip(&csrs).zip(&tokens) {
        let body = serde_json::to_vec(&EnrollRequest { csr: csr.to_pem() })?;
        jobs.push(Job {
            method: reqwest::Method::POST,
            url: format!("{}/v1/clusters/{cluster}/enroll", o.url),
            body: body.into(),
            bearer: Some(HeaderValue::from_str(&format!("Bearer {token}"))?),
        });
    }
    Ok(jobs)
}

// ------------------------------------------------------------------------------ driving

/// What one request came to: its latency, and its body when it succeeded.
struct Answer {
    took: Duration,
    result: Result<bytes::Bytes, String>,
}

async fn send(http: &reqwest::Client, job: &Job) -> Answer {
    let started = Instant::now();
    let mut request = http
        .request(job.method.clone(), &job.url)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(job.body.clone());
    if let Some(bearer) = &job.bearer {
        request = request.header(AUTHORIZATION, bearer.clone());
    }
    let result = async {
        let response = request.send().await.map_err(|e| format!("{e}"))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| format!("{e}"))?;
        if status != reqwest::StatusCode::OK {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(format!("{status}: {text}"));
        }
        Ok(body)
    }
    .await;
    Answer {
        took: started.elapsed(),
        result,
    }
}

/// Sends every job from `connections` workers, each with its own connection, opened by
/// `warm_up` before the clock starts. Returns the wall time and every answer.
async fn drive(
    jobs: Vec<Job>,
    connections: usize,
    ca: &[Certificate],
    warm_up: Job,
    server_pid: Option<&str>,
) -> Outcome<(Measured, Vec<Answer>)> {
    let jobs = Arc::new(jobs);
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        let http = client(ca, 1)?;
        if let Err(e) = send(&http, &warm_up).await.result {
            return Err(format!("warm-up request to {}: {e}", warm_up.url).into());
        }
        clients.push(http);
    }
    let meter = Meter::start(server_pid);
    let workers: Vec<_> = clients
        .into_iter()
        .map(|http| {
            let (jobs, next) = (jobs.clone(), next.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else {
                        break answers;
                    };
                    answers.push(send(&http, job).await);
                }
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(jobs.len());
    for worker in workers {
        answers.extend(worker.await?);
    }
    Ok((meter.stop(), answers))
}

async fn enroll(o: &Options) -> Outcome<()> {
    let ca = read_ca(&o.ca)?;
    let jobs = enrollments(o, &ca).await?;
    let warm_up = Job {
        method: reqwest::Method::GET,
        url: format!("{}/healthz", o.url),
        body: bytes::Bytes::new(),
        bearer: None,
    };
    let (took, answers) = drive(jobs, o.connections, &ca, warm_up, o.server_pid.as_deref()).await?;
    check_enrolled(&answers, &ca)?;
    report(o, o.connections, took, &answers);
    Ok(())
}

/// N clusters at once: each its own client and connection (handshake included), all
/// released together; the time is to the last certificate.
async fn storm(o: &Options) -> Outcome<()> {
    let ca = read_ca(&o.ca)?;
    let jobs = enrollments(o, &ca).await?;
    let mut ready = Vec::with_capacity(jobs.len());
    for job in jobs {
        ready.push((client(&ca, 1)?, job));
    }
    let gate = Arc::new(tokio::sync::Barrier::new(ready.len() + 1));
    let tasks: Vec<_> = ready
        .into_iter()
        .map(|(http, job)| {
            let gate = gate.clone();
            tokio::spawn(async move {
                gate.wait().await;
                send(&http, &job).await
            })
        })
        .collect();
    gate.wait().await;
    let meter = Meter::start(o.server_pid.as_deref());
    let mut answers = Vec::with_capacity(tasks.len());
    for task in tasks {
        answers.push(task.await?);
    }
    let took = meter.stop();
    check_enrolled(&answers, &ca)?;
    report(o, answers.len(), took, &answers);
    Ok(())
}

async fn cfssl(o: &Options) -> Outcome<()> {
    let ca = read_ca(&o.ca)?;
    let clusters = clusters(o)?;
    let mut jobs = Vec::with_capacity(clusters.len());
    for csr in csrs(&clusters)? {
        let body = serde_json::json!({ "certificate_request": csr.to_pem() });
        jobs.push(Job {
            method: reqwest::Method::POST,
            url: format!("{}/api/v1/cfssl/sign", o.url),
            body: serde_json::to_vec(&body)?.into(),
            bearer: None,
        });
    }
    let warm_up = Job {
        method: reqwest::Method::POST,
        url: format!("{}/api/v1/cfssl/info", o.url),
        body: bytes::Bytes::from_static(b"{}"),
        bearer: None,
    };
    let (took, answers) = drive(jobs, o.connections, &ca, warm_up, o.server_pid.as_deref()).await?;
    if let Some(body) = answers.iter().find_map(|a| a.result.as_ref().ok()) {
        let value: serde_json::Value = serde_json::from_slice(body)?;
        let pem = value["result"]["certificate"]
            .as_str()
            .ok_or("cfssl: no result.certificate")?;
        check_intermediate(pem, &ca, "cfssl")?;
    }
    report(o, o.connections, took, &answers);
    Ok(())
}

/// The first certificate issued must be a CA issued by the root; every body must parse.
fn check_enrolled(answers: &[Answer], ca: &[Certificate]) -> Outcome<()> {
    let mut checked = false;
    for body in answers.iter().filter_map(|a| a.result.as_ref().ok()) {
        let issued: IssuedResponse = serde_json::from_slice(body)?;
        if !checked {
            check_intermediate(&issued.certificate, ca, &issued.cluster)?;
            checked = true;
        }
    }
    Ok(())
}

fn check_intermediate(pem: &str, ca: &[Certificate], what: &str) -> Outcome<()> {
    let cert = Certificate::all_from_pem(what, pem.as_bytes())?;
    let cert = cert
        .first()
        .ok_or_else(|| format!("{what}: no certificate in the answer"))?;
    if !cert.is_ca() || !ca.iter().any(|root| cert.is_issued_by(root)) {
        return Err(format!("{what}: the certificate is not a CA issued by the root given").into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------- in-process

/// The CA part of one enrollment, as `cli/service/src/api/sign.rs` does it.
async fn sign_one(
    issuer: &LocalIssuer,
    cluster: &ClusterName,
    pem_text: &str,
) -> Outcome<Certificate> {
    let der = pem::parse(pem_text)?.into_contents();
    let csr = Csr::from_der(der);
    let info = csr.inspect()?;
    let params = IntermediateParams::new(cluster.clone());
    let allowed = [
        KeyType::EcdsaP256,
        KeyType::EcdsaP384,
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
    ];
    let mismatches = csr_matches(&info, &params, &allowed);
    if !mismatches.is_empty() {
        return Err(mismatches.join("; ").into());
    }
    std::hint::black_box(sha256_hex(&csr.public_key_raw()?));
    let now = time::OffsetDateTime::now_utc();
    let request = IssueRequest::new(cluster.clone(), csr, params.profile(), now);
    Ok(issuer.issue_intermediate(&request).await?.certificate)
}

fn in_process(o: &Options) -> Outcome<()> {
    let now = time::OffsetDateTime::now_utc();
    let issuer = LocalIssuer::from_dir(std::path::Path::new(&o.root), now)?;
    let clusters = clusters(o)?;
    let pems: Vec<String> = csrs(&clusters)?.iter().map(Csr::to_pem).collect();
    let next = AtomicUsize::new(0);
    let meter = Meter::start(None);
    let answers: Vec<Answer> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..o.threads)
            .map(|_| {
                scope.spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .expect("a runtime");
                    let mut answers = Vec::new();
                    while let Some(i) =
                        Some(next.fetch_add(1, Ordering::Relaxed)).filter(|i| *i < pems.len())
                    {
                        let t = Instant::now();
                        let signed = runtime.block_on(sign_one(&issuer, &clusters[i], &pems[i]));
                        answers.push(Answer {
                            took: t.elapsed(),
                            result: signed
                                .map(|c| bytes::Bytes::from(c.to_pem()))
                                .map_err(|e| e.to_string()),
                        });
                    }
                    answers
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("a signing thread"))
            .collect()
    });
    let took = meter.stop();
    if let Some(pem) = answers.iter().find_map(|a| a.result.as_ref().ok()) {
        let text = std::str::from_utf8(pem)?;
        check_intermediate(
            text,
            std::slice::from_ref(issuer.root().certificate()),
            "in-process",
        )?;
    }
    report(o, o.threads, took, &answers);
    Ok(())
}

// -------------------------------------------------------------------------------- report

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
}

/// CPU time (user + system) of a process so far, from /proc (clock ticks of 10 ms).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    // After the command name: state is field 0, utime 11, stime 12.
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

/// The timed phase: wall time, and the CPU time the server and this client spent in it.
struct Meter {
    started: Instant,
    server: Option<(String, f64)>,
    client: Option<f64>,
}

struct Measured {
    wall: Duration,
    server_cpu: Option<f64>,
    client_cpu: Option<f64>,
}

impl Meter {
    fn start(server_pid: Option<&str>) -> Meter {
        if let Some(path) = std::env::var_os("SERVE_LOAD_STARTED_FILE") {
            // For a profiler of the service: the clock starts now.
            let _ = std::fs::write(path, "started\n");
        }
        Meter {
            server: server_pid.and_then(|pid| Some((pid.to_string(), cpu_seconds(pid)?))),
            client: cpu_seconds("self"),
            started: Instant::now(),
        }
    }

    fn stop(self) -> Measured {
        let wall = self.started.elapsed();
        Measured {
            wall,
            server_cpu: self
                .server
                .and_then(|(pid, before)| Some(cpu_seconds(&pid)? - before)),
            client_cpu: self
                .client
                .and_then(|before| Some(cpu_seconds("self")? - before)),
        }
    }
}

fn report(o: &Options, connections: usize, took: Measured, answers: &[Answer]) {
    let mut latencies: Vec<Duration> = answers.iter().map(|a| a.took).collect();
    latencies.sort();
    let errors: Vec<&String> = answers
        .iter()
        .filter_map(|a| a.result.as_ref().err())
        .collect();
    let ok = answers.len() - errors.len();
    let seconds = took.wall.as_secs_f64();
    let per_request =
        |cpu: Option<f64>| cpu.map(|c| (c * 1e6 / answers.len().max(1) as f64).round());
    let line = serde_json::json!({
        "mode": o.mode,
        "requests": answers.len(),
        "connections": connections,
        "seconds": (seconds * 1e4).round() / 1e4,
        "rate": (ok as f64 / seconds).round(),
        "p50_ms": (percentile(&latencies, 50.0) * 1e3).round() / 1e3,
        "p99_ms": (percentile(&latencies, 99.0) * 1e3).round() / 1e3,
        "max_ms": (percentile(&latencies, 100.0) * 1e3).round() / 1e3,
        "server_cpu_us_per_request": per_request(took.server_cpu),
        "client_cpu_us_per_request": per_request(took.client_cpu),
        "errors": errors.len(),
        "first_error": errors.first(),
    });
    println!("{line}");
}
