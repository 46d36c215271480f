//! The one issuer factory: every caller names the issuer it wants as an [`IssuerConfig`]
//! and [`connect`] builds it — the CLI from its flags, the controller from a `MeshTrust`
//! spec (once per generation). A root the caller has already read (the controller keeps
//! its local root in a Secret) is signed with directly by [`LocalIssuer::named`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use meshtrust_ca::ClusterName;
use zeroize::Zeroizing;

use crate::Issuer;
use crate::aws_pca::{AwsOptions, RetryPolicy, SdkPca};
use crate::clock::Clock;
use crate::error::Result;
use crate::server::{DEFAULT_TIMEOUT, ServerIssuer, ServerTrust, ServiceClient};
use crate::{AwsPcaIssuer, LocalIssuer};

/// Which issuer to build.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IssuerConfig {
    /// A root directory holding `root-cert.pem` and `root-key.pem`.
    RootDir(PathBuf),
    /// An AWS Private CA.
    AwsPca(AwsPcaConfig),
    /// A `meshtrust serve`, enrolled with per-cluster credentials.
    Server(ServerConfig),
}

/// Where an AWS Private CA is and how to reach it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AwsPcaConfig {
    /// ARN of the certificate authority.
    pub arn: String,
    /// Region, profile and endpoint overrides.
    pub options: AwsOptions,
}

impl AwsPcaConfig {
    /// The CA `arn`, reached with `options`.
    pub fn new(arn: impl Into<String>, options: AwsOptions) -> AwsPcaConfig {
        AwsPcaConfig {
            arn: arn.into(),
            options,
        }
    }
}

/// Where a `meshtrust serve` is, how to trust it and how to enroll with it. `Debug` names
/// the clusters that have a token, never a token.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The service's URL (`https://host[:port]`).
    pub url: String,
    /// How its TLS certificate is trusted.
    pub trust: ServerTrust,
    /// The enrollment credential of each cluster.
    pub tokens: BTreeMap<ClusterName, Zeroizing<String>>,
    /// A credential for any cluster without its own (e.g. a ServiceAccount token).
    pub default_token: Option<Zeroizing<String>>,
    /// The longest one call may take.
    pub timeout: Duration,
    /// Accept an `http://` URL (development only: `trust` is then unused, and tokens and
    /// certificates travel in clear). An `https://` URL is trusted as `trust` says either way.
    pub allow_plaintext: bool,
}

impl ServerConfig {
    /// The service at `url`, trusted as `trust` says, without credentials yet, with
    /// [`DEFAULT_TIMEOUT`], HTTPS only.
    pub fn new(url: impl Into<String>, trust: ServerTrust) -> ServerConfig {
        ServerConfig {
            url: url.into(),
            trust,
            tokens: BTreeMap::new(),
            default_token: None,
            timeout: DEFAULT_TIMEOUT,
            allow_plaintext: false,
        }
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("url", &self.url)
            .field("trust", &self.trust)
            .field("tokens_for", &self.tokens.keys().collect::<Vec<_>>())
            .field(
                "default_token",
                &self.default_token.as_ref().map(|_| "<redacted>"),
            )
            .field("timeout", &self.timeout)
            .field("allow_plaintext", &self.allow_plaintext)
            .finish()
    }
}

/// Builds the issuer `config` names: reads and checks a root directory at the clock's time,
/// or connects to AWS (credentials from the default chain, one retry policy), or prepares
/// the client of a `meshtrust serve` (no request is made until the first call).
pub async fn connect(config: IssuerConfig, clock: &Clock) -> Result<Arc<dyn Issuer>> {
    Ok(match config {
        IssuerConfig::RootDir(dir) => Arc::new(LocalIssuer::from_dir(&dir, clock.now())?),
        IssuerConfig::AwsPca(aws) => {
            let api = SdkPca::connect(&aws.options).await?;
            Arc::new(AwsPcaIssuer::new(
                Arc::new(api),
                &aws.arn,
                RetryPolicy::default(),
            ))
        }
        IssuerConfig::Server(server) => Arc::new(server_issuer(server)?),
    })
}

/// The client of the `meshtrust serve` `config` names, as an issuer (no request is made
/// until the first call).
pub fn server_issuer(config: ServerConfig) -> Result<ServerIssuer> {
    let plaintext = config.allow_plaintext
        && config
            .url
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("http://");
    let client = if plaintext {
        ServiceClient::new_plaintext(&config.url, config.timeout)?
    } else {
        ServiceClient::new(&config.url, &config.trust, config.timeout)?
    };
    Ok(ServerIssuer::new(
        client,
        config.tokens,
        config.default_token,
    ))
}
