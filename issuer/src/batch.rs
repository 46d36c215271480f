//! Batch issuance: the one way every caller (the CLI's `cacerts`, `demo` and `bootstrap`,
//! the controller's renewals and rotations) turns a set of clusters into checked `cacerts`
//! bundles.
//!
//! Keys are generated in parallel on every core, the CSRs are signed with a bounded number
//! of requests in flight, and every bundle is verified as istiod would before it is
//! returned. Keys never leave this function's memory; only CSRs reach the issuer.

use std::sync::Arc;

use futures::StreamExt;
use meshtrust_ca::{
    CaCerts, ClusterName, IntermediateParams, PrivateKey, VerifyOptions, verify_bundle,
};
use rayon::prelude::*;
use time::OffsetDateTime;
use tokio::task::JoinError;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::issued::{Batch, IssuedBundle};
use crate::{IssueRequest, IssueResponse, Issuer};

/// How many signing requests are in flight at once: enough to hide a remote CA's latency,
/// few enough not to trip its rate limits.
pub const MAX_IN_FLIGHT: usize = 8;

/// Issues one intermediate per cluster in `clusters` from the template `params` (its
/// `cluster` is replaced by each; the issuer may adjust the rest to its policy, with a
/// notice), signed by `issuer`, and checks every bundle (in `params.format`) as istiod
/// would. Fails as a whole, naming the cluster, when any cluster cannot be issued or its
/// bundle would be refused: nothing is returned half done — except through an issuer whose
/// issuance is final, where the clusters issued come back in [`Error::PartialBatch`].
pub async fn issue_batch(
    issuer: Arc<dyn Issuer>,
    params: &IntermediateParams,
    clusters: &[ClusterName],
    clock: &Clock,
) -> Result<Batch> {
    let (params, notices) = issuer.prepare(params, clusters).await?;
    let now = clock.now();
    let (keys, requests) = keys_and_requests(&params, clusters, now)?;
    let responses = sign_all(&issuer, requests).await;
    let (mut batch, mut failures) = collect_bundles(issuer.as_ref(), clusters, keys, responses);
    batch.notices.splice(0..0, notices);
    if !failures.is_empty() && (batch.bundles.is_empty() || !issuer.issuance_is_final()) {
        return Err(failures.remove(0));
    }
    // Checked at the time of checking, not of the request: a remote CA stamps notBefore
    // with its own clock.
    check_all(issuer.as_ref(), &params, &batch, clock.now().max(now))?;
    if failures.is_empty() {
        return Ok(batch);
    }
    Err(Error::PartialBatch {
        issuer: issuer.describe(),
        issued: Box::new(batch),
        failures,
    })
}

/// A key and a CSR for every cluster, generated in parallel on every core.
fn keys_and_requests(
    params: &IntermediateParams,
    clusters: &[ClusterName],
    now: OffsetDateTime,
) -> Result<(Vec<PrivateKey>, Vec<IssueRequest>)> {
    Ok(clusters
        .par_iter()
        .map(|cluster| {
            let params = params.for_cluster(cluster.clone());
            let key = PrivateKey::generate(params.key_type)?;
            let csr = params.csr(&key)?;
            Ok((
                key,
                IssueRequest::new(cluster.clone(), csr, params.profile(), now),
            ))
        })
        .collect::<std::result::Result<Vec<_>, meshtrust_ca::Error>>()
        .map_err(|cause| Error::Ca {
            context: "generating the intermediate keys and requests".to_string(),
            cause,
        })?
        .into_iter()
        .unzip())
}

/// What one signing task returns: the cluster and its intermediate, or why it failed.
type Signed = std::result::Result<(ClusterName, Result<IssueResponse>), JoinError>;

/// Sends every request to `issuer`, [`MAX_IN_FLIGHT`] at a time; the answers come back in
/// the order of the requests.
async fn sign_all(issuer: &Arc<dyn Issuer>, requests: Vec<IssueRequest>) -> Vec<Signed> {
    futures::stream::iter(requests)
        .map(|request| {
            let issuer = Arc::clone(issuer);
            tokio::spawn(async move {
                let issued = issuer.issue_intermediate(&request).await;
                (request.cluster, issued)
            })
        })
        .buffered(MAX_IN_FLIGHT)
        .collect()
        .await
}

/// Pairs each answer with its key into a bundle; each failure is an [`Error::Issuance`]
/// naming its cluster, in the order of the clusters.
fn collect_bundles(
    issuer: &dyn Issuer,
    clusters: &[ClusterName],
    keys: Vec<PrivateKey>,
    responses: Vec<Signed>,
) -> (Batch, Vec<Error>) {
    let mut batch = Batch::default();
    let mut failures = Vec::new();
    for ((key, joined), asked) in keys.into_iter().zip(responses).zip(clusters) {
        let issued = match joined {
            Ok((_, Ok(issued))) => issued,
            Ok((cluster, Err(cause))) => {
                failures.push(Error::Issuance {
                    cluster: cluster.to_string(),
                    issuer: issuer.describe(),
                    cause: Box::new(cause),
                });
                continue;
            }
            Err(_) => {
                failures.push(Error::Issuance {
                    cluster: asked.to_string(),
                    issuer: issuer.describe(),
                    cause: Box::new(Error::Internal {
                        reason: "signing it panicked; nothing was written".to_string(),
                    }),
                });
                continue;
            }
        };
        batch.notices.extend(issued.notices);
        batch.bundles.push(IssuedBundle {
            cluster: asked.clone(),
            bundle: CaCerts::new(issued.certificate, key, issued.chain, issued.trust_bundle),
        });
    }
    (batch, failures)
}

/// Verifies every bundle as istiod would, at `checked_at`. In parallel: each check signs
/// and path-validates a test workload certificate.
fn check_all(
    issuer: &dyn Issuer,
    params: &IntermediateParams,
    batch: &Batch,
    checked_at: OffsetDateTime,
) -> Result<()> {
    batch.bundles.par_iter().try_for_each(|b| {
        let report = verify_bundle(
            &b.bundle.bundle_files(params.format),
            &VerifyOptions::at(checked_at),
        );
        if report.accepted() {
            return Ok(());
        }
        Err(Error::Unverified {
            cluster: b.cluster.to_string(),
            issuer: issuer.describe(),
            findings: report.findings.iter().map(|f| f.message.clone()).collect(),
        })
    })
}
