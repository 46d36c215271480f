//! Reaching clusters: kubeconfig contexts (or in-cluster config) → `kube::Client`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// How to find clusters, shared by every command that talks to Kubernetes.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// Kubeconfig file (`--kubeconfig`); default `$KUBECONFIG`, then `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// Timeout of every request to the API server.
    pub timeout: Option<Duration>,
}

impl Access {
    fn kubeconfig(&self) -> Result<Option<Kubeconfig>> {
        match &self.kubeconfig {
            Some(path) => Ok(Some(read(path)?)),
            None => match Kubeconfig::read() {
                Ok(k) => Ok(Some(k)),
                Err(_) => Ok(None),
            },
        }
    }

    /// A client for `context` (the current context when `None`). Without any kubeconfig,
    /// and no context asked for, the in-cluster service account is used.
    pub async fn client(&self, context: Option<&str>) -> Result<Client> {
        let mut config = match self.kubeconfig()? {
            Some(kubeconfig) => {
                if let Some(ctx) = context
                    && !kubeconfig.contexts.iter().any(|c| c.name == ctx)
                {
                    let known: Vec<&str> = kubeconfig.contexts.iter().map(|c| c.name.as_str()).collect();
                    bail!(
                        "context `{ctx}` is not in the kubeconfig (it has: {}); list them with `kubectl config get-contexts`",
                        known.join(", ")
                    );
                }
                let options = KubeConfigOptions {
                    context: context.map(str::to_string),
                    ..KubeConfigOptions::default()
                };
                Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .with_context(|| format!("cannot use context `{}`", context.unwrap_or("(current)")))?
            }
            None if context.is_none() => Config::incluster()
                .context("no kubeconfig found ($KUBECONFIG, ~/.kube/config) and not running in a cluster; pass --kubeconfig")?,
            None => bail!(
                "context `{}` was asked for, but no kubeconfig was found ($KUBECONFIG, ~/.kube/config); pass --kubeconfig",
                context.unwrap_or_default()
            ),
        };
        if let Some(t) = self.timeout {
            config.connect_timeout = Some(t);
            config.read_timeout = Some(t);
            config.write_timeout = Some(t);
        }
        Client::try_from(config).context("cannot build a Kubernetes client")
    }
}

fn read(path: &Path) -> Result<Kubeconfig> {
    Kubeconfig::read_from(path)
        .with_context(|| format!("cannot read kubeconfig {}", path.display()))
}
