//! Arguments of the operator verbs on a `MeshTrust`: `renew`, `rotate start|status|finish`.

use std::path::PathBuf;

use clap::{ArgGroup, Args as ClapArgs, Subcommand};
use meshtrust_ca::duration;

use super::{KubeOptions, Output, parse_std};

/// `meshtrust renew`
#[derive(Debug, ClapArgs)]
#[command(group(ArgGroup::new("which").required(true).args(["cluster", "all"])))]
pub struct RenewArgs {
    /// The MeshTrust whose clusters to renew.
    #[arg(value_name = "MESHTRUST")]
    pub name: String,
    /// A member cluster to renew (repeat, or separate with commas).
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub cluster: Vec<String>,
    /// Renew every member cluster.
    #[arg(long)]
    pub all: bool,
    /// Wait up to this long (e.g. 2m) until the controller has carried the renewal out.
    #[arg(long, value_name = "DURATION", value_parser = parse_std)]
    pub wait: Option<std::time::Duration>,
    #[command(flatten)]
    pub management: Management,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: Output,
}

/// `meshtrust rotate …`
#[derive(Debug, Subcommand)]
pub enum RotateCommand {
    /// Start a root rotation: put the new root in a Secret, set spec.rootRotation.
    Start(RotateStartArgs),
    /// The rotation's phase, what it waits for, and where each cluster stands.
    Status(RotationArgs),
    /// Close a Complete rotation: issue from the new root's Secret, remove spec.rootRotation.
    Finish(RotationArgs),
}

/// `meshtrust rotate start`
#[derive(Debug, ClapArgs)]
pub struct RotateStartArgs {
    /// The MeshTrust whose root to replace.
    #[arg(value_name = "MESHTRUST")]
    pub name: String,
    /// Directory with the new root's root-cert.pem and root-key.pem (`meshtrust root create`).
    #[arg(long, value_name = "DIR")]
    pub new_root: PathBuf,
    /// Name of the Secret to create for the new root (default: MESHTRUST-root-FINGERPRINT,
    /// with the first 8 hex digits of the new root's SHA-256 fingerprint).
    #[arg(long, value_name = "NAME")]
    pub secret: Option<String>,
    /// The controller's namespace, where the Secret is created.
    #[arg(long, value_name = "NS", default_value = "meshtrust-system")]
    pub namespace: String,
    /// How long the old root stays trusted after the last intermediate was reissued
    /// (spec.rootRotation.holdBeforeRemovingOldRoot; default: the controller's, 24h).
    #[arg(long, value_name = "DURATION", value_parser = hold)]
    pub hold: Option<String>,
    /// Replace a Secret of that name that holds another root.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub management: Management,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: Output,
}

/// `meshtrust rotate status` and `meshtrust rotate finish`: one MeshTrust's rotation.
#[derive(Debug, ClapArgs)]
pub struct RotationArgs {
    /// The MeshTrust.
    #[arg(value_name = "MESHTRUST")]
    pub name: String,
    #[command(flatten)]
    pub management: Management,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: Output,
}

/// How to reach the management cluster, where the MeshTrust lives.
#[derive(Debug, ClapArgs)]
pub struct Management {
    /// Kubeconfig context of the management cluster (default: the current one).
    #[arg(long, value_name = "CTX")]
    pub context: Option<String>,
    #[command(flatten)]
    pub kube: KubeOptions,
}

/// A hold duration as the CRD accepts it (a whole number and a unit), kept as written.
fn hold(text: &str) -> Result<String, String> {
    duration::parse(text).map(|_| text.trim().to_string())
}
