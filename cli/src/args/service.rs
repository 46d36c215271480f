//! The arguments of `meshtrust serve` (the root-of-trust service) and of the commands that
//! talk to it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args as ClapArgs, Subcommand};
use meshtrust_ca::{ClusterName, duration};
use time::Duration;

use super::{Output, cluster};

/// `meshtrust serve`: the root-of-trust service.
///
/// Signs each member cluster's intermediate CA from a CSR (the intermediate key is born
/// where it is used and never reaches the service), over a versioned JSON API under /v1
/// (docs/api.md; the OpenAPI document is served at /v1/openapi.json), always over TLS.
///
/// Configuration: a YAML file (--config) whose fields are listed below; every flag
/// overrides its field. Fields: listen (ADDR, default 0.0.0.0:8443); tls.cert_file and
/// tls.key_file (PEM files, reloaded when they change) or tls.self_issued (names to issue a
/// serving certificate for from the local root); issuer.root_dir, or issuer.aws_pca_arn with
/// issuer.aws_region, issuer.aws_profile and issuer.aws_endpoint_url; store
/// (sqlite://PATH, the default sqlite:///var/lib/meshtrust/meshtrust.db, or postgres://… for
/// several replicas); admin_token_file; policy.organization, policy.common_name,
/// policy.dns_names, policy.key_types, policy.validity (730d), policy.path_len (0);
/// limits.max_body_bytes (65536), limits.requests_per_minute (120 per principal),
/// limits.request_timeout (30s), limits.shutdown_grace (30s); rotation.to (the issuer
/// fields, for the new root) and rotation.hold (24h) for a root rotation the agents carry
/// out; clusters.NAME.service_account
/// (issuer, subject, and one of jwks, jwks_file, discovery_url; ca_file) for enrollment with
/// a projected ServiceAccount token; insecure_plaintext_for_development_only.
#[derive(Debug, ClapArgs)]
#[command(args_conflicts_with_subcommands = true, long_about)]
pub struct ServeArgs {
    /// Other things to do with the service's store.
    #[command(subcommand)]
    pub command: Option<ServeCommand>,
    /// YAML configuration file (fields above).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address of the TLS listener (listen).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Serving certificate chain, PEM, leaf first (tls.cert_file).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Serving key, PEM (tls.key_file).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Issue the serving certificate from the local root for these names (tls.self_issued).
    #[arg(
        long,
        value_name = "NAMES",
        value_delimiter = ',',
        conflicts_with = "tls_cert"
    )]
    pub tls_self_issued: Vec<String>,
    /// Root directory with root-cert.pem and root-key.pem (issuer.root_dir).
    #[arg(long, value_name = "DIR", conflicts_with = "ca_arn")]
    pub root: Option<PathBuf>,
    /// AWS Private CA that signs (issuer.aws_pca_arn).
    #[arg(long, value_name = "ARN")]
    pub ca_arn: Option<String>,
    /// AWS region (issuer.aws_region).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// AWS endpoint override (issuer.aws_endpoint_url).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Rotate the root to this local root directory (rotation.to.root_dir): the agents
    /// carry out the phases as their istiods load each one (docs/agent.md).
    #[arg(long, value_name = "DIR", conflicts_with = "rotate_to_ca_arn")]
    pub rotate_to_root: Option<PathBuf>,
    /// Rotate the root to this AWS Private CA (rotation.to.aws_pca_arn; region and endpoint
    /// as the issuer's).
    #[arg(long, value_name = "ARN")]
    pub rotate_to_ca_arn: Option<String>,
    /// How long the old root stays trusted after the newest intermediate from the new one
    /// (rotation.hold, default 24h).
    #[arg(long, value_name = "DURATION")]
    pub rotation_hold: Option<String>,
    /// Store URL: sqlite://PATH or postgres://USER@HOST/DB (store). A password is best given
    /// in PGPASSWORD or a ~/.pgpass file, not on the command line.
    #[arg(long, value_name = "URL", env = "MESHTRUST_STORE")]
    pub store: Option<String>,
    /// File holding the admin token (admin_token_file).
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Where audit lines go: a file (appended), or - for stdout.
    #[arg(long, value_name = "PATH", default_value = "-")]
    pub audit_log: PathBuf,
    /// Also write every request received (time, method, path, status, body; never a
    /// header, so never a credential) to this file, appended: to prove what the service was
    /// sent, e.g. that no private key ever reached it.
    #[arg(long, value_name = "PATH")]
    pub request_log: Option<PathBuf>,
    /// Serve plain HTTP: tokens cross the network in clear. Never outside a laptop demo.
    #[arg(long)]
    pub insecure_plaintext_for_development_only: bool,
    /// Log lines on stderr: text, or one JSON object per line (the filter is RUST_LOG,
    /// default info).
    #[arg(long, value_enum, env = "MESHTRUST_LOG_FORMAT", default_value_t)]
    pub log_format: crate::logging::LogFormat,
    /// Test only: a file holding a number of seconds added to the clock (built only with
    /// the `test-clock` feature; release builds have no such flag).
    #[cfg(feature = "test-clock")]
    #[arg(long, value_name = "PATH", hide = true)]
    pub clock_offset_file: Option<PathBuf>,
}

/// `meshtrust serve …`
#[derive(Debug, Subcommand)]
pub enum ServeCommand {
    /// Enrollment tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

/// `meshtrust serve token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a one-time enrollment token for one cluster, directly in the store.
    Create(TokenCreateArgs),
}

/// `meshtrust serve token create`
#[derive(Debug, ClapArgs)]
pub struct TokenCreateArgs {
    /// The only cluster the token may enroll.
    #[arg(long, value_name = "NAME", value_parser = cluster)]
    pub cluster: ClusterName,
    /// How long it stays valid (at most 7d).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = duration::parse)]
    pub ttl: Duration,
    /// The service's configuration file (for its store).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Store URL (overrides the configuration's).
    #[arg(long, value_name = "URL", env = "MESHTRUST_STORE")]
    pub store: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: Output,
}

/// How to reach a running `meshtrust serve` and trust its certificate.
#[derive(Debug, Clone, ClapArgs)]
pub struct ServerOptions {
    /// URL of the service (https://HOST:PORT).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Trust the service's certificate if it chains to this CA bundle (PEM).
    #[arg(long, value_name = "FILE", conflicts_with = "server_fingerprint")]
    pub server_ca: Option<PathBuf>,
    /// Trust the service's certificate if it chains to a root with this SHA-256 fingerprint
    /// (as `meshtrust inspect` shows it).
    #[arg(long, value_name = "SHA256")]
    pub server_fingerprint: Option<String>,
}

impl ServerOptions {
    /// The service these flags name, and how its certificate is trusted.
    pub fn config(&self) -> anyhow::Result<meshtrust_issuer::ServerConfig> {
        use anyhow::Context;
        use meshtrust_issuer::server::ServerTrust;
        let url = self.server.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "--issuer server needs --server URL (the meshtrust serve to enroll with)"
            )
        })?;
        let trust = match (&self.server_ca, &self.server_fingerprint) {
            (Some(path), _) => {
                let pem = std::fs::read(path).with_context(|| {
                    format!("{}: cannot read the service's CA bundle", path.display())
                })?;
                ServerTrust::ca_bundle_from_pem(&path.display().to_string(), &pem)?
            }
            (None, Some(fingerprint)) => ServerTrust::fingerprint(fingerprint)?,
            (None, None) => anyhow::bail!(
                "{url}: say how to trust the service's certificate: --server-ca FILE (its CA bundle) or --server-fingerprint SHA256 (its root's)"
            ),
        };
        Ok(meshtrust_issuer::ServerConfig::new(url, trust))
    }
}
