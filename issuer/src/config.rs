//! The one issuer factory: every caller names the issuer it wants as an [`IssuerConfig`]
//! and [`connect`] builds it — the CLI from its flags, the controller from a `MeshTrust`
//! spec (once per generation). A root the caller has already read (the controller keeps
//! its local root in a Secret) is signed with directly by [`LocalIssuer::named`].

use std::path::PathBuf;
use std::sync::Arc;

use crate::Issuer;
use crate::aws_pca::{AwsOptions, RetryPolicy, SdkPca};
use crate::clock::Clock;
use crate::error::Result;
use crate::{AwsPcaIssuer, LocalIssuer};

/// Which issuer to build.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IssuerConfig {
    /// A root directory holding `root-cert.pem` and `root-key.pem`.
    RootDir(PathBuf),
    /// An AWS Private CA.
    AwsPca(AwsPcaConfig),
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

/// Builds the issuer `config` names: reads and checks a root directory at the clock's time,
/// or connects to AWS (credentials from the default chain, one retry policy).
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
    })
}
