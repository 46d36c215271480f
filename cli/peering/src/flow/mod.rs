//! The peering steps as whole operations — read, decide, write — shared by `expose`, `link`,
//! `check` and `bootstrap --peering`.
//!
//! Each step is in its own module: `expose`, `link` and `check`; reading many clusters at once
//! is here.

mod check;
mod expose;
mod link;

pub use check::{CheckReport, ClusterReport, check};
pub use expose::{ExposeOptions, Exposed, expose};
pub use link::{Link, LinkOptions, link};

use futures::StreamExt;
use kube::Client;
use meshtrust_kube::Access;

use crate::error::{Error, Result};
use crate::observe::{ClusterFacts, Namespaces, observe};

/// Clusters read at once.
const CONCURRENCY: usize = 8;

/// How a context of `None` is shown.
const CURRENT_CONTEXT: &str = "(current context)";

/// Reads every context (in parallel, bounded). One failing cluster does not stop the others;
/// its error is an [`Error::Cluster`].
async fn observe_all(
    access: &Access,
    contexts: &[Option<String>],
    namespaces: &Namespaces,
) -> Vec<Result<(Client, ClusterFacts)>> {
    futures::stream::iter(contexts.iter())
        .map(|ctx| async move {
            let shown = ctx.as_deref().unwrap_or(CURRENT_CONTEXT);
            meshtrust_kube::within(access.cluster_budget(), "reading the cluster", async {
                let client = access.client(ctx.as_deref()).await?;
                let facts = observe(&client, namespaces).await?;
                Ok::<_, Error>((client, facts))
            })
            .await
            .map_err(|e| e.in_cluster(shown))
        })
        .buffered(CONCURRENCY)
        .collect()
        .await
}
