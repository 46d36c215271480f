//! The arguments of the commands that deliver into clusters and run the controller.

use std::path::PathBuf;

use clap::Args as ClapArgs;
use meshtrust_ca::ClusterName;
use meshtrust_ca::duration;
use time::Duration;

use super::{
    IntermediateOptions, IssuerOptions, KubeOptions, Output, WriteOptions, cluster, parse_std,
};

/// `meshtrust push`
#[derive(Debug, ClapArgs)]
pub struct PushArgs {
    /// Bundle directory (as written by `meshtrust cacerts`).
    #[arg(long, value_name = "DIR")]
    pub bundle: PathBuf,
    /// Kubeconfig context (default: the current one).
    #[arg(long, value_name = "CTX")]
    pub context: Option<String>,
    /// Namespace of istiod.
    #[arg(long, value_name = "NS", default_value = "istio-system")]
    pub namespace: String,
    /// Also label the namespace with topology.istio.io/network=NET.
    #[arg(long, value_name = "NET")]
    pub network: Option<String>,
    #[command(flatten)]
    pub write: WriteOptions,
    #[command(flatten)]
    pub kube: KubeOptions,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: Output,
}

/// `meshtrust bootstrap`
#[derive(Debug, ClapArgs)]
pub struct BootstrapArgs {
    /// Kubeconfig contexts, one per cluster, comma-separated.
    #[arg(
        long,
        value_name = "CTX,…",
        value_delimiter = ',',
        required_unless_present = "generate"
    )]
    pub contexts: Vec<String>,
    /// Cluster names (DNS-1123), in the order of --contexts (default: the context names).
    #[arg(long, value_name = "NAME,…", value_delimiter = ',', value_parser = cluster)]
    pub cluster_names: Vec<ClusterName>,
    /// Root directory to issue from (with --issuer local). Without it, the root in --root-out
    /// is used, or created there.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Where a root created by bootstrap is saved (root-key.pem 0600), and found on reruns.
    #[arg(long, value_name = "DIR", default_value = "meshtrust-root")]
    pub root_out: PathBuf,
    #[command(flatten)]
    pub issuer: IssuerOptions,
    /// Label istio-system with topology.istio.io/network=<cluster name>.
    #[arg(long, conflicts_with = "networks")]
    pub network_from_cluster_name: bool,
    /// Networks, in the order of --contexts, for the topology.istio.io/network label.
    #[arg(long, value_name = "NET,…", value_delimiter = ',')]
    pub networks: Vec<String>,
    /// Write the manifests to DIR/<cluster>.yaml instead of applying them (GitOps). They hold
    /// private keys.
    #[arg(long, value_name = "DIR", conflicts_with = "dry_run")]
    pub generate: Option<PathBuf>,
    /// Read every cluster and show the plan (create / unchanged / conflict / replace);
    /// issue nothing and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Namespace of istiod.
    #[arg(long, value_name = "NS", default_value = "istio-system")]
    pub namespace: String,
    /// Clusters worked on at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Then peer the clusters: label, expose, link every pair, check.
    #[arg(long, conflicts_with_all = ["generate", "dry_run"], requires = "contexts")]
    pub peering: bool,
    /// With --peering: east-west data-plane traffic through NodePorts.
    #[arg(long, requires = "peering")]
    pub nodeport: bool,
    /// With --peering: namespace of the east-west and peer gateways.
    #[arg(long, value_name = "NS", default_value = meshtrust_peering::EASTWEST_NAMESPACE)]
    pub eastwest_namespace: String,
    /// With --peering: how long to wait for each east-west gateway to be programmed.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_std)]
    pub peering_timeout: std::time::Duration,
    #[command(flatten)]
    pub intermediate: IntermediateOptions,
    #[command(flatten)]
    pub write: WriteOptions,
    #[command(flatten)]
    pub kube: KubeOptions,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: Output,
}

/// `meshtrust controller`
#[derive(Debug, ClapArgs)]
pub struct ControllerArgs {
    /// Kubeconfig context of the management cluster (default: the current one, or the
    /// in-cluster service account).
    #[arg(long, value_name = "CTX")]
    pub context: Option<String>,
    /// The controller's namespace: kubeconfig Secrets and its Lease live there.
    #[arg(
        long,
        value_name = "NS",
        env = "POD_NAMESPACE",
        default_value = "meshtrust-system"
    )]
    pub namespace: String,
    /// This replica's identity in the leader Lease.
    #[arg(long, value_name = "ID", env = "POD_NAME")]
    pub identity: Option<String>,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080")]
    pub listen: std::net::SocketAddr,
    /// Name of the leader-election Lease.
    #[arg(long, value_name = "NAME", default_value = "meshtrust-controller")]
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
    /// Longest time between two reconciles of a MeshTrust (catches drift in member clusters).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_std)]
    pub resync: std::time::Duration,
    /// First delay after a failed issuance; doubles per failure.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration::parse)]
    pub backoff_base: Duration,
    /// Longest delay between issuance attempts.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = duration::parse)]
    pub backoff_cap: Duration,
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

/// `meshtrust status`
#[derive(Debug, ClapArgs)]
pub struct StatusArgs {
    /// Kubeconfig context of the management cluster (default: the current one).
    #[arg(long, value_name = "CTX")]
    pub context: Option<String>,
    /// Only this MeshTrust (default: all).
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    #[command(flatten)]
    pub kube: KubeOptions,
    /// Show the inventory of this `meshtrust serve` instead (https://HOST:PORT).
    #[command(flatten)]
    pub server: super::ServerOptions,
    /// The service's admin token, in a file (with --server).
    #[arg(long, value_name = "FILE", requires = "server")]
    pub admin_token_file: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: Output,
}
