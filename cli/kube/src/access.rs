//! Reaching clusters: kubeconfig contexts (or in-cluster config) → `kube::Client`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use meshtrust_issuer::Clock;
use tower::ServiceBuilder;
use tower::buffer::BufferLayer;
use tower::retry::RetryLayer;
use tower::timeout::TimeoutLayer;

use crate::error::{Error, Result};
use crate::retry::{RetryPolicy, RetrySettings};

/// How to find clusters, shared by every command that talks to Kubernetes.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Access {
    /// Kubeconfig file; default `$KUBECONFIG`, then `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// Timeout of every request to the API server.
    pub timeout: Option<Duration>,
    /// Each cluster's budget for one step, all its requests together (see [`crate::within`]);
    /// [`crate::DEFAULT_CLUSTER_BUDGET`] when `None`.
    pub cluster_budget: Option<Duration>,
}

impl Access {
    /// Clusters found through `kubeconfig` (or the default places), each request bounded by
    /// `timeout`.
    pub fn new(kubeconfig: Option<PathBuf>, timeout: Option<Duration>) -> Access {
        Access {
            kubeconfig,
            timeout,
            cluster_budget: None,
        }
    }

    /// The same, with each cluster's step bounded by `budget`.
    pub fn with_cluster_budget(mut self, budget: Duration) -> Access {
        self.cluster_budget = Some(budget);
        self
    }

    /// Each cluster's budget for one step.
    pub fn cluster_budget(&self) -> Duration {
        self.cluster_budget.unwrap_or(crate::DEFAULT_CLUSTER_BUDGET)
    }

    fn kubeconfig(&self) -> Result<Option<Kubeconfig>> {
        match &self.kubeconfig {
            Some(path) => Ok(Some(read(path)?)),
            None => Ok(Kubeconfig::read().ok()),
        }
    }

    /// A client for `context` (the current context when `None`). Without any kubeconfig,
    /// and no context asked for, the in-cluster service account is used.
    pub async fn client(&self, context: Option<&str>) -> Result<Client> {
        let config = match self.kubeconfig()? {
            Some(kubeconfig) => {
                if let Some(ctx) = context
                    && !kubeconfig.contexts.iter().any(|c| c.name == ctx)
                {
                    let known: Vec<&str> =
                        kubeconfig.contexts.iter().map(|c| c.name.as_str()).collect();
                    return Err(Error::Access {
                        reason: format!(
                            "context `{ctx}` is not in the kubeconfig (it has: {}); list them with `kubectl config get-contexts`",
                            known.join(", ")
                        ),
                        no_kubeconfig: false,
                    });
                }
                let shown = format!("context `{}`", context.unwrap_or("(current)"));
                from_kubeconfig(kubeconfig, context, &shown).await?
            }
            None if context.is_none() => Config::incluster().map_err(|e| Error::Access {
                reason: format!(
                    "no kubeconfig found ($KUBECONFIG, ~/.kube/config) and not running in a cluster ({e})"
                ),
                no_kubeconfig: true,
            })?,
            None => {
                return Err(Error::Access {
                    reason: format!(
                        "context `{}` was asked for, but no kubeconfig was found ($KUBECONFIG, ~/.kube/config)",
                        context.unwrap_or_default()
                    ),
                    no_kubeconfig: true,
                });
            }
        };
        build(config, self.timeout)
    }
}

/// A client from kubeconfig text (e.g. kept in a Secret), for `context` (the kubeconfig's
/// current one when `None`); `shown` names where the text came from in messages.
pub async fn client_from_kubeconfig(
    text: &str,
    context: Option<&str>,
    shown: &str,
    timeout: Duration,
) -> Result<Client> {
    let kubeconfig = Kubeconfig::from_yaml(text).map_err(|e| Error::Access {
        reason: format!("{shown} is not a kubeconfig: {e}"),
        no_kubeconfig: false,
    })?;
    let config = from_kubeconfig(kubeconfig, context, shown).await?;
    build(config, Some(timeout))
}

async fn from_kubeconfig(
    kubeconfig: Kubeconfig,
    context: Option<&str>,
    shown: &str,
) -> Result<Config> {
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| Error::Access {
            reason: format!("cannot use {shown}: {e}"),
            no_kubeconfig: false,
        })
}

/// The most time one request may take when no `--request-timeout` was given.
const DEFAULT_REQUEST_BUDGET: Duration = Duration::from_secs(30);

/// The client for `config`: every request bounded by `timeout` (each read and write, and
/// the wait for the answer's headers, retries included; a watch's stream is not cut),
/// retried by [`RetryPolicy`] instead of kube's default retry layer.
fn build(mut config: Config, timeout: Option<Duration>) -> Result<Client> {
    if let Some(t) = timeout {
        config.connect_timeout = Some(t);
        config.read_timeout = Some(t);
        config.write_timeout = Some(t);
    }
    let budget = timeout.unwrap_or(DEFAULT_REQUEST_BUDGET);
    config.default_retry = false;
    let builder = ClientBuilder::try_from(config).map_err(|e| Error::Access {
        reason: format!(
            "cannot build a Kubernetes client: {}",
            crate::api_message(&e)
        ),
        no_kubeconfig: false,
    })?;
    let layers = ServiceBuilder::new()
        .layer(TimeoutLayer::new(budget))
        .layer(RetryLayer::new(RetryPolicy::new(
            RetrySettings::within(budget),
            Clock::system(),
        )))
        // A retry calls the stack below it again, so it needs a handle it can clone.
        .layer(BufferLayer::new(1024));
    Ok(builder.with_layer(&layers).build())
}

fn read(path: &Path) -> Result<Kubeconfig> {
    Kubeconfig::read_from(path).map_err(|e| Error::Access {
        reason: format!("cannot read kubeconfig {}: {e}", path.display()),
        no_kubeconfig: false,
    })
}
