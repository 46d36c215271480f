//! A cluster's time budget: every request and retry of one step (reading a cluster, writing
//! to it) together, so that one slow cluster fails alone instead of holding the others.

use std::future::Future;
use std::time::Duration;

use crate::error::Error;

/// A cluster's budget unless one is given: 2 minutes.
pub const DEFAULT_CLUSTER_BUDGET: Duration = Duration::from_secs(120);

/// `work`, given up as [`Error::OutOfTime`] (naming `doing`) once `budget` is spent. A
/// write given up may still be carried out by the API server: a rerun (or the next round)
/// reads it back and recognises it.
pub async fn within<T, E: From<Error>>(
    budget: Duration,
    doing: &str,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    tokio::time::timeout(budget, work)
        .await
        .unwrap_or_else(|_| {
            Err(Error::OutOfTime {
                doing: doing.to_string(),
                budget,
            }
            .into())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn work_past_its_budget_is_given_up_naming_what_it_did() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Ok::<_, Error>(())
        };
        let e = within(Duration::from_secs(2), "reading the cluster", slow)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "reading the cluster took longer than the cluster's 2s budget (its API server is slow or does not answer); rerun when it is healthy"
        );
        let quick = async { Ok::<_, Error>(7) };
        assert_eq!(within(Duration::from_secs(2), "x", quick).await.unwrap(), 7);
    }
}
