//! Command-line surface of `meshtrust`.

use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};
use meshtrust_ca::{BundleFormat, ClusterName, KeyType, duration};
use time::Duration;

mod agent;
mod bundles;
mod clusters;
mod operator;
mod peering;
mod reference;
mod service;

pub use agent::*;
pub use bundles::*;
pub use clusters::*;
pub use operator::*;
pub use peering::*;
pub use reference::*;
pub use service::*;

/// A shared root of trust for multicluster Istio: one root, an intermediate CA per cluster,
/// delivered as Istio's `cacerts`, checked the way istiod checks it.
///
/// Exit codes: 0 success; 1 failure (a refused or invalid bundle, bad input, I/O error);
/// 2 invalid command-line usage.
#[derive(Debug, Parser)]
#[command(
    name = "meshtrust",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage the root CA.
    #[command(subcommand)]
    Root(RootCommand),
    /// Issue each cluster's intermediate CA as an Istio `cacerts` bundle.
    Cacerts(CacertsArgs),
    /// Root and every cluster's bundle in one command, plus the kubectl lines to load them.
    Demo(DemoArgs),
    /// Show what is inside certificates, keys and bundles.
    Inspect(InspectArgs),
    /// Check a `cacerts` bundle exactly as istiod would, and explain every rejection.
    Verify(VerifyArgs),
    /// Write one bundle into a cluster as its `cacerts` Secret.
    Push(PushArgs),
    /// Issue and deliver every cluster's `cacerts`, create istio-system, label the network.
    Bootstrap(BootstrapArgs),
    /// Helm values for istiod, ztunnel and istio-cni of one cluster of the mesh.
    Values(ValuesArgs),
    /// Label the network and create a cluster's east-west gateway (server-side apply).
    Expose(ExposeArgs),
    /// Link clusters with istio-remote peer gateways — only clusters that share a root.
    Link(LinkArgs),
    /// Check pods, gateways, peers, and what istioctl does not: cacerts, shared roots, expiry.
    Check(CheckArgs),
    /// Run the trust controller: keep every cluster's intermediate valid, rotate roots.
    Controller(ControllerArgs),
    /// Print the MeshTrust CustomResourceDefinition (YAML).
    Crd,
    /// Per-cluster state of every MeshTrust (or, with --server, a service's inventory).
    Status(StatusArgs),
    /// Ask the controller to reissue clusters' intermediates now (e.g. after a key leak).
    Renew(RenewArgs),
    /// Rotate a MeshTrust's root: start a rotation, follow its phases.
    #[command(subcommand)]
    Rotate(RotateCommand),
    /// Run the root-of-trust service: sign cluster CSRs over an authenticated TLS API.
    Serve(ServeArgs),
    /// Run in a member cluster: enroll with `meshtrust serve`, keep cacerts renewed (the key
    /// never leaves the cluster), report what the cluster and its istiod hold.
    Agent(AgentArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) to stdout.
    Completions(CompletionsArgs),
    /// Write manual pages: meshtrust.1 and one page per subcommand.
    Man(ManArgs),
}

/// `meshtrust root …`
#[derive(Debug, Subcommand)]
pub enum RootCommand {
    /// Create a self-signed root CA: DIR/root-cert.pem and DIR/root-key.pem (0600).
    Create(RootCreateArgs),
}

/// Human text or JSON for scripts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Tables and sentences.
    #[default]
    Text,
    /// One JSON document on stdout.
    Json,
}

pub(crate) fn key_type(s: &str) -> Result<KeyType, String> {
    s.parse().map_err(|e: meshtrust_ca::Error| e.to_string())
}

pub(crate) fn cluster(s: &str) -> Result<ClusterName, String> {
    ClusterName::new(s).map_err(|e| e.to_string())
}

pub(crate) fn format(s: &str) -> Result<BundleFormat, String> {
    s.parse().map_err(|e: meshtrust_ca::Error| e.to_string())
}

/// Options shared by commands that write files.
#[derive(Debug, ClapArgs)]
pub struct WriteOptions {
    /// Replace existing output (a root key or a cluster's bundle).
    #[arg(long)]
    pub force: bool,
    /// With --force, keep what is replaced as `<name>.backup-<UTC timestamp>`.
    #[arg(long, requires = "force")]
    pub backup: bool,
}

/// `meshtrust root create`
#[derive(Debug, ClapArgs)]
pub struct RootCreateArgs {
    /// Directory to write root-cert.pem and root-key.pem into (created 0700 if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Key type: ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096.
    #[arg(long, value_name = "T", default_value = "ecdsa-p256", value_parser = key_type)]
    pub key_type: KeyType,
    /// Lifetime, e.g. 10y, 3650d, 87600h.
    #[arg(long, value_name = "DURATION", default_value = "10y", value_parser = duration::parse)]
    pub validity: Duration,
    /// Subject organization (O).
    #[arg(long, value_name = "O", default_value = "Istio")]
    pub org: String,
    /// Subject common name (CN).
    #[arg(long, value_name = "CN", default_value = "Root CA")]
    pub common_name: String,
    /// basicConstraints pathLenConstraint of the root (none by default).
    #[arg(long, value_name = "N")]
    pub path_len: Option<u8>,
    #[command(flatten)]
    pub write: WriteOptions,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: Output,
}

/// How to reach Kubernetes.
#[derive(Debug, ClapArgs)]
pub struct KubeOptions {
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config; in a pod, its service account).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Timeout of each request to an API server.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_std)]
    pub request_timeout: std::time::Duration,
    /// The most time reading one cluster, and then writing to it, may take, all its requests
    /// and retries together; a cluster past it fails alone, named, while the others go on.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_std)]
    pub cluster_timeout: std::time::Duration,
}

impl KubeOptions {
    /// How to reach clusters with these options.
    pub fn access(&self) -> meshtrust_kube::Access {
        meshtrust_kube::Access::new(self.kubeconfig.clone(), Some(self.request_timeout))
            .with_cluster_budget(self.cluster_timeout)
    }
}

/// [`duration::parse`] for timeouts (`std::time::Duration`).
pub(crate) fn parse_std(text: &str) -> Result<std::time::Duration, String> {
    duration::parse(text).map(|d| d.unsigned_abs())
}
