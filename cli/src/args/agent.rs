//! `meshtrust agent`: the in-cluster agent's flags.

use std::path::PathBuf;

use clap::{Args as ClapArgs, ValueEnum};
use meshtrust_ca::{ClusterName, KeyType, duration};
use time::Duration;

use super::{KubeOptions, ServerOptions, key_type, parse_std};

/// What to do with a `cacerts` meshtrust did not write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ForeignCacerts {
    /// Keep a copy as cacerts-backup-<stamp>, then replace it.
    #[default]
    Backup,
    /// Leave it alone and report the refusal (in the log, /readyz and metrics).
    Refuse,
}

/// `meshtrust agent`
#[derive(Debug, ClapArgs)]
pub struct AgentArgs {
    /// The cluster's name at the service (the name its enrollment credential is bound to).
    #[arg(long, value_name = "NAME", env = "MESHTRUST_CLUSTER", value_parser = ClusterName::new)]
    pub cluster: ClusterName,
    #[command(flatten)]
    pub server: ServerOptions,
    /// A file holding a one-time enrollment token (e.g. a mounted Secret), read when the
    /// cluster must enroll.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "service_account_token_file"
    )]
    pub token_file: Option<PathBuf>,
    /// A projected ServiceAccount token with audience meshtrust, read afresh at every
    /// enrollment (kubelet rotates it).
    #[arg(long, value_name = "FILE")]
    pub service_account_token_file: Option<PathBuf>,
    /// Kubeconfig context of the member cluster (default: the current one, or the pod's
    /// service account).
    #[arg(long, value_name = "CTX")]
    pub context: Option<String>,
    /// Namespace of cacerts, istiod and the agent's Lease.
    #[arg(
        long,
        value_name = "NS",
        env = "POD_NAMESPACE",
        default_value = "istio-system"
    )]
    pub namespace: String,
    /// Name of istiod's Deployment (its settings and readiness are reported).
    #[arg(long, value_name = "NAME", default_value = "istiod")]
    pub istiod_deployment: String,
    /// What to do with a cacerts meshtrust did not write.
    #[arg(long, value_enum, default_value_t)]
    pub foreign_cacerts: ForeignCacerts,
    /// Key type of the intermediates the agent makes.
    #[arg(long, value_name = "T", default_value = "ecdsa-p256", value_parser = key_type)]
    pub key_type: KeyType,
    /// How often the cluster is read and reported when nothing is due.
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_std)]
    pub report_every: std::time::Duration,
    /// First delay after a failed round; doubles per failure.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration::parse)]
    pub backoff_base: Duration,
    /// Longest delay between rounds after failures.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = duration::parse)]
    pub backoff_cap: Duration,
    /// Renewals spread over this share (percent) of the time from the renewal time to
    /// expiry, at most an hour.
    #[arg(long, value_name = "PERCENT", default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub jitter_percent: u8,
    /// Timeout of each call to the service.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_std)]
    pub server_timeout: std::time::Duration,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080")]
    pub listen: std::net::SocketAddr,
    /// This replica's identity in the leader Lease.
    #[arg(long, value_name = "ID", env = "POD_NAME")]
    pub identity: Option<String>,
    /// Name of the leader-election Lease.
    #[arg(long, value_name = "NAME", default_value = meshtrust_agent::DEFAULT_LEASE_NAME)]
    pub lease_name: String,
    /// How long a Lease is valid without renewal.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_std)]
    pub lease_duration: std::time::Duration,
    /// A leader that cannot renew within this steps down.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_std)]
    pub renew_deadline: std::time::Duration,
    /// How often the Lease is renewed or tried.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_std)]
    pub retry_period: std::time::Duration,
    /// Test only: a file holding a number of seconds added to the clock (built only with
    /// the `test-clock` feature; release builds have no such flag).
    #[cfg(feature = "test-clock")]
    #[arg(long, value_name = "PATH", hide = true)]
    pub clock_offset_file: Option<PathBuf>,
    /// Log lines on stderr: text, or one JSON object per line (the filter is RUST_LOG,
    /// default info,kube=warn).
    #[arg(long, value_enum, env = "MESHTRUST_LOG_FORMAT", default_value_t)]
    pub log_format: crate::logging::LogFormat,
    #[command(flatten)]
    pub kube: KubeOptions,
}
