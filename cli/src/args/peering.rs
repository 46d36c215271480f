//! The arguments of the peering commands.

use std::path::PathBuf;

use clap::Args as ClapArgs;
use meshtrust_ca::ClusterName;

use super::{KubeOptions, Output, cluster, parse_std};

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
    pub platform: Platform,
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
    #[arg(long, value_name = "NS", default_value = meshtrust_peering::EASTWEST_NAMESPACE)]
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
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_std)]
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

/// Where the mesh runs (`--platform`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Platform {
    /// Any conformant Kubernetes.
    #[default]
    Kubernetes,
    /// OpenShift: `global.platform=openshift`, istio-cni and ztunnel in kube-system.
    Openshift,
}

impl From<Platform> for meshtrust_peering::Platform {
    fn from(p: Platform) -> Self {
        match p {
            Platform::Kubernetes => Self::Kubernetes,
            Platform::Openshift => Self::Openshift,
        }
    }
}
