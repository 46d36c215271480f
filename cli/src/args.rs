//! Command-line surface of `meshtrust`.

use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};
use meshtrust_ca::{BundleFormat, ClusterName, KeyType};
use time::Duration;

use crate::duration;

/// meshtrust — a shared root of trust for multicluster Istio: one root, an intermediate CA
/// per cluster, delivered as Istio's `cacerts`, checked the way istiod checks it.
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
    /// Per-cluster state of every MeshTrust: expiry, renewal, root, rotation phase, errors.
    Status(StatusArgs),
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

fn key_type(s: &str) -> Result<KeyType, String> {
    s.parse().map_err(|e: meshtrust_ca::Error| e.to_string())
}

fn cluster(s: &str) -> Result<ClusterName, String> {
    ClusterName::new(s).map_err(|e| e.to_string())
}

fn format(s: &str) -> Result<BundleFormat, String> {
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

/// Who signs the intermediates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum IssuerKind {
    /// A root CA on this machine (`--root DIR`, or the one `demo` creates).
    #[default]
    Local,
    /// AWS Private CA (`--ca-arn`); the intermediate keys never leave this machine.
    AwsPca,
}

/// Choice of issuer, shared by `cacerts` and `demo`.
#[derive(Debug, ClapArgs)]
pub struct IssuerOptions {
    /// Who signs: local or aws-pca.
    #[arg(long, value_enum, value_name = "ISSUER", default_value_t)]
    pub issuer: IssuerKind,
    /// ARN of the AWS Private CA that signs (with --issuer aws-pca).
    #[arg(long, value_name = "ARN", required_if_eq("issuer", "aws-pca"))]
    pub ca_arn: Option<String>,
    /// AWS region (default: AWS_REGION or the profile's).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// AWS named profile (default: AWS_PROFILE or `default`).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// AWS endpoint override (a VPC endpoint, or a local emulator).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
}

/// Parameters of the intermediates, shared by `cacerts` and `demo`.
#[derive(Debug, ClapArgs)]
pub struct IntermediateOptions {
    /// Key type of each intermediate: ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096.
    #[arg(long, value_name = "T", default_value = "ecdsa-p256", value_parser = key_type)]
    pub key_type: KeyType,
    /// Lifetime of each intermediate (never beyond the root's), e.g. 2y, 90d.
    #[arg(long, value_name = "DURATION", default_value = "2y", value_parser = duration::parse)]
    pub validity: Duration,
    /// basicConstraints pathLenConstraint (0: istiod signs workload certificates only).
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=3))]
    pub path_len: u8,
    /// Subject organization (O) of the intermediates.
    #[arg(long, value_name = "O", default_value = "Istio")]
    pub org: String,
    /// Bundle layout: istio (ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem) or
    /// tls (tls.crt, tls.key, ca.crt).
    #[arg(long, value_name = "FORMAT", default_value = "istio", value_parser = format)]
    pub format: BundleFormat,
}

/// `meshtrust cacerts`
#[derive(Debug, ClapArgs)]
pub struct CacertsArgs {
    /// Root directory holding root-cert.pem and root-key.pem (with --issuer local).
    #[arg(long, value_name = "DIR", required_if_eq("issuer", "local"))]
    pub root: Option<PathBuf>,
    #[command(flatten)]
    pub issuer: IssuerOptions,
    /// Cluster names (DNS-1123 labels), comma-separated or repeated.
    #[arg(long, value_name = "NAME", required = true, value_delimiter = ',', value_parser = cluster)]
    pub cluster: Vec<ClusterName>,
    /// Output directory; each cluster's bundle goes to OUT/NAME/.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub intermediate: IntermediateOptions,
    #[command(flatten)]
    pub write: WriteOptions,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: Output,
}

/// `meshtrust demo`
#[derive(Debug, ClapArgs)]
pub struct DemoArgs {
    /// Cluster names (DNS-1123 labels), comma-separated.
    #[arg(long, value_name = "NAMES", required = true, value_delimiter = ',', value_parser = cluster)]
    pub clusters: Vec<ClusterName>,
    /// Output directory: OUT/root-cert.pem, OUT/root-key.pem (local issuer) and OUT/NAME/
    /// per cluster.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub issuer: IssuerOptions,
    #[command(flatten)]
    pub intermediate: IntermediateOptions,
    /// Replace an existing root and bundles in OUT.
    #[arg(long)]
    pub force: bool,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: Output,
}

/// `meshtrust inspect`
#[derive(Debug, ClapArgs)]
pub struct InspectArgs {
    /// PEM files (certificates or keys) or bundle directories.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: Output,
}

/// `meshtrust verify`
#[derive(Debug, ClapArgs)]
pub struct VerifyArgs {
    /// Bundle directory (ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem; or tls.crt,
    /// tls.key, ca.crt).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Warn when a certificate expires within this window.
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = duration::parse)]
    pub warn_within: Duration,
    /// Treat warnings (expiring soon, outliving the issuer, …) as failures.
    #[arg(long)]
    pub strict: bool,
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
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration::parse_std)]
    pub request_timeout: std::time::Duration,
}

impl KubeOptions {
    /// How to reach clusters with these options.
    pub fn access(&self) -> crate::cluster::client::Access {
        crate::cluster::client::Access {
            kubeconfig: self.kubeconfig.clone(),
            timeout: Some(self.request_timeout),
        }
    }
}

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
    #[arg(long, value_name = "NS", default_value = crate::peering::gateway::EASTWEST_NAMESPACE)]
    pub eastwest_namespace: String,
    /// With --peering: how long to wait for each east-west gateway to be programmed.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = duration::parse_std)]
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

/// `meshtrust values`
#[derive(Debug, ClapArgs)]
pub struct ValuesArgs {
    /// Cluster name (global.multiCluster.clusterName).
    #[arg(long, value_name = "NAME", value_parser = cluster)]
    pub cluster: ClusterName,
    /// Network (global.network); default: the cluster name.
    #[arg(long, value_name = "NET")]
    pub network: Option<String>,
    /// Trust domain (meshConfig.trustDomain); default: <cluster>.local.
    #[arg(long, value_name = "TD")]
    pub trust_domain: Option<String>,
    /// Platform differences (openshift: global.platform, istio-cni and ztunnel in kube-system).
    #[arg(long, value_enum, default_value_t)]
    pub platform: crate::peering::values::Platform,
    /// License kept in a Secret: NAMESPACE/NAME (license.secretRef).
    #[arg(long, value_name = "NS/NAME")]
    pub license_secret: Option<String>,
    /// Image hub (global.hub).
    #[arg(long, value_name = "HUB")]
    pub hub: Option<String>,
    /// Image tag (global.tag), also the chart version in the helm lines.
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// Kube context for the helm lines; default: the cluster name.
    #[arg(long, value_name = "CTX")]
    pub context: Option<String>,
    /// Write OUT/<cluster>/{istiod,ztunnel,istio-cni}.yaml instead of printing them.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace existing values files.
    #[arg(long)]
    pub force: bool,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: Output,
}

/// Where the peering objects live.
#[derive(Debug, ClapArgs)]
pub struct PeeringNamespaces {
    /// Namespace of the east-west and peer gateways.
    #[arg(long, value_name = "NS", default_value = crate::peering::gateway::EASTWEST_NAMESPACE)]
    pub namespace: String,
    /// Namespace of istiod.
    #[arg(long, value_name = "NS", default_value = "istio-system")]
    pub istio_namespace: String,
}

/// `meshtrust expose`
#[derive(Debug, ClapArgs)]
pub struct ExposeArgs {
    /// Kubeconfig context (default: the current one).
    #[arg(long, value_name = "CTX")]
    pub context: Option<String>,
    #[command(flatten)]
    pub namespaces: PeeringNamespaces,
    /// Network of the cluster (global.network); istio-system is labelled with it. Default:
    /// istio-system's current topology.istio.io/network label.
    #[arg(long, value_name = "NET")]
    pub network: Option<String>,
    /// Peers reach this cluster's data plane through NodePorts (xDS still uses the load
    /// balancer's stable address).
    #[arg(long)]
    pub nodeport: bool,
    /// Region label (topology.kubernetes.io/region) of the gateway.
    #[arg(long, value_name = "R")]
    pub region: Option<String>,
    /// Zone label (topology.kubernetes.io/zone) of the gateway.
    #[arg(long, value_name = "Z")]
    pub zone: Option<String>,
    /// Print the Gateway as YAML instead of applying it (the cluster is still read).
    #[arg(long, conflicts_with = "wait")]
    pub generate: bool,
    /// Wait until the gateway reports Programmed=True.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = duration::parse_std)]
    pub timeout: std::time::Duration,
    /// Take over fields of the Gateway that another field manager owns.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub kube: KubeOptions,
}

/// `meshtrust link`
#[derive(Debug, ClapArgs)]
pub struct LinkArgs {
    /// Link every pair of these contexts, both ways.
    #[arg(long, value_name = "CTX,…", value_delimiter = ',', conflicts_with_all = ["from", "to"], required_unless_present = "from")]
    pub contexts: Vec<String>,
    /// Asymmetric link: services in this context may reach --to.
    #[arg(long, value_name = "CTX", requires = "to")]
    pub from: Option<String>,
    /// Asymmetric link: the context reached from --from.
    #[arg(long, value_name = "CTX", requires = "from")]
    pub to: Option<String>,
    #[command(flatten)]
    pub namespaces: PeeringNamespaces,
    /// Prefer the peers' NodePorts for data-plane traffic.
    #[arg(long)]
    pub nodeport: bool,
    /// Print the peer Gateways as YAML (per source cluster) instead of applying them.
    #[arg(long)]
    pub generate: bool,
    /// Link even clusters that share no root CA (their mTLS will fail).
    #[arg(long)]
    pub skip_trust_check: bool,
    /// Take over fields of the Gateways that another field manager owns.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub kube: KubeOptions,
}

/// `meshtrust check`
#[derive(Debug, ClapArgs)]
pub struct CheckArgs {
    /// Contexts to check, comma-separated (default: the current one).
    #[arg(long, value_name = "CTX,…", value_delimiter = ',')]
    pub contexts: Vec<String>,
    #[command(flatten)]
    pub namespaces: PeeringNamespaces,
    /// Before linking: no peer gateways yet is not a failure.
    #[arg(long)]
    pub precheck: bool,
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
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = duration::parse_std)]
    pub lease_duration: std::time::Duration,
    /// A leader that cannot renew within this steps down.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration::parse_std)]
    pub renew_deadline: std::time::Duration,
    /// How often the Lease is renewed or tried.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = duration::parse_std)]
    pub retry_period: std::time::Duration,
    /// Longest time between two reconciles of a MeshTrust (catches drift in member clusters).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration::parse_std)]
    pub resync: std::time::Duration,
    /// First delay after a failed issuance; doubles per failure.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration::parse)]
    pub backoff_base: Duration,
    /// Longest delay between issuance attempts.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = duration::parse)]
    pub backoff_cap: Duration,
    /// Test only: a file holding a number of seconds added to the clock.
    #[arg(long, value_name = "PATH", hide = true)]
    pub clock_offset_file: Option<PathBuf>,
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
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: Output,
}
