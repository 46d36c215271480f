//! The arguments of the commands that issue and check bundles on disk.

use std::path::PathBuf;

use clap::{Args as ClapArgs, ValueEnum};
use meshtrust_ca::duration;
use meshtrust_ca::{BundleFormat, ClusterName, IntermediateParams, KeyType};
use meshtrust_issuer::aws_pca::AwsOptions;
use meshtrust_issuer::{AwsPcaConfig, IssuerConfig};
use time::Duration;

use super::{Output, ServerOptions, WriteOptions, cluster, format, key_type};

/// Who signs the intermediates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum IssuerKind {
    /// A root CA on this machine (`--root DIR`, or the one `demo` creates).
    #[default]
    Local,
    /// AWS Private CA (`--ca-arn`); the intermediate keys never leave this machine.
    AwsPca,
    /// A `meshtrust serve` (`--server`, `--token`); the intermediate keys never leave this
    /// machine.
    Server,
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
    #[command(flatten)]
    pub server: ServerOptions,
    /// Enrollment credential for --issuer server: a one-time token (or a ServiceAccount
    /// token) for every cluster, or CLUSTER=TOKEN per cluster (repeated).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "MESHTRUST_TOKEN",
        hide_env_values = true
    )]
    pub token: Vec<String>,
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
    /// Check as of this instant instead of now (RFC 3339, e.g. 2027-01-01T00:00:00Z): will
    /// the bundle still be valid then? (openssl verify's -attime.)
    #[arg(long, value_name = "TIME", value_parser = rfc3339)]
    pub at: Option<time::OffsetDateTime>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: Output,
}

fn rfc3339(text: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| format!("'{text}' is not an RFC 3339 time (e.g. 2027-01-01T00:00:00Z)"))
}

impl IntermediateOptions {
    /// The parameters every cluster's intermediate is issued with: the flags' one conversion
    /// into [`IntermediateParams`] (`cluster` is replaced per cluster by batch issuance).
    pub fn params(&self, cluster: ClusterName) -> IntermediateParams {
        let mut params = IntermediateParams::new(cluster);
        params.key_type = self.key_type;
        params.validity = self.validity;
        params.path_len = self.path_len;
        params.organization = self.org.clone();
        params.format = self.format;
        params
    }

    /// [`Self::params`] for a batch (the template's cluster is replaced per cluster).
    pub fn template(&self) -> IntermediateParams {
        self.params(ClusterName::new("template").expect("a valid cluster name"))
    }
}

impl IssuerOptions {
    /// The issuer these flags name, for the one issuer factory: the local root in `root`,
    /// or AWS Private CA. `Ok(None)` when the local issuer is chosen without a root (each
    /// command decides what that means: `cacerts` refuses, `bootstrap` uses its saved root).
    pub fn config(&self, root: Option<&std::path::Path>) -> anyhow::Result<Option<IssuerConfig>> {
        match (self.issuer, root) {
            (IssuerKind::Local, Some(dir)) => Ok(Some(IssuerConfig::RootDir(dir.to_path_buf()))),
            (IssuerKind::Local, None) => Ok(None),
            (IssuerKind::AwsPca, Some(_)) => anyhow::bail!(
                "--root is for --issuer local; with --issuer aws-pca the root lives in AWS Private CA"
            ),
            (IssuerKind::AwsPca, None) => Ok(Some(self.aws()?)),
            (IssuerKind::Server, Some(_)) => anyhow::bail!(
                "--root is for --issuer local; with --issuer server the service holds the root"
            ),
            (IssuerKind::Server, None) => Ok(Some(self.remote()?)),
        }
    }

    /// The remote issuer these flags name (AWS Private CA or a `meshtrust serve`).
    pub fn remote(&self) -> anyhow::Result<IssuerConfig> {
        match self.issuer {
            IssuerKind::Server => {
                let mut config = self.server.config()?;
                for token in &self.token {
                    match token.split_once('=') {
                        Some((name, value)) if ClusterName::is_dns_label(name) => {
                            config.tokens.insert(
                                ClusterName::new(name)?,
                                zeroize::Zeroizing::new(value.to_string()),
                            );
                        }
                        _ => config.default_token = Some(zeroize::Zeroizing::new(token.clone())),
                    }
                }
                Ok(IssuerConfig::Server(config))
            }
            _ => self.aws(),
        }
    }

    /// The AWS Private CA these flags name, or an error saying what is missing.
    pub fn aws(&self) -> anyhow::Result<IssuerConfig> {
        let arn = self.ca_arn.as_deref().ok_or_else(|| {
            anyhow::anyhow!("--issuer aws-pca needs --ca-arn ARN (the AWS Private CA that signs)")
        })?;
        Ok(IssuerConfig::AwsPca(AwsPcaConfig::new(
            arn,
            AwsOptions::new(
                self.region.clone(),
                self.profile.clone(),
                self.endpoint_url.clone(),
            ),
        )))
    }
}
