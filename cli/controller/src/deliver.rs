//! Issuing and writing one cluster's bundle — the same batch issuance and delivery code as
//! `meshtrust bootstrap`.

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use meshtrust_ca::{BundleFiles, IntermediateParams, VerifyOptions, verify_bundle};
use meshtrust_issuer::{Clock, Issuer, issue_batch};
use meshtrust_kube::{Action, Observed, apply, cacerts_secret};

use crate::error::{Error, Result};
use crate::members::Member;

/// Issues a new intermediate for `m` from `issuer` and writes it into `namespace`; returns
/// what was written.
pub async fn issue_and_deliver(
    clock: &Clock,
    budget: Duration,
    params: &IntermediateParams,
    namespace: &str,
    m: &Member<'_>,
    issuer: Arc<dyn Issuer>,
    reason: &str,
) -> Result<BundleFiles> {
    let files = issue_files(clock, params, m, issuer).await?;
    deliver(clock, budget, namespace, m, &files, reason).await?;
    Ok(files)
}

/// Issues a new intermediate for `m` from `issuer`, as `params.format` files (not written).
pub async fn issue_files(
    clock: &Clock,
    params: &IntermediateParams,
    m: &Member<'_>,
    issuer: Arc<dyn Issuer>,
) -> Result<BundleFiles> {
    let batch = issue_batch(issuer, params, std::slice::from_ref(&m.name), clock).await?;
    let bundle = batch
        .bundles
        .into_iter()
        .next()
        .ok_or(Error::Internal("nothing issued"))?;
    Ok(bundle.bundle.bundle_files(params.format))
}

/// Writes `files` as `m`'s `cacerts` in `namespace` (create, or replace with the observed resourceVersion;
/// a Secret meshtrust did not write is backed up first), within `budget`. Refuses a bundle
/// istiod would not accept.
pub async fn deliver(
    clock: &Clock,
    budget: Duration,
    namespace: &str,
    m: &Member<'_>,
    files: &BundleFiles,
    reason: &str,
) -> Result<()> {
    let (client, observed): &(Client, Observed) = m
        .read
        .as_ref()
        .map_err(|_| Error::Internal("delivering to a cluster that was not read"))?;
    let now = clock.now();
    let report = verify_bundle(files, &VerifyOptions::at(now));
    if !report.accepted() {
        return Err(Error::Unverified {
            cluster: m.spec.name.clone(),
            findings: report.findings.iter().map(|f| f.message.clone()).collect(),
        });
    }
    let secret = cacerts_secret(namespace, files, &report);
    let action = match &observed.secret {
        None => Action::Create,
        Some(s) => Action::Replace {
            reason: reason.to_string(),
            backup: !s.is_managed(),
        },
    };
    let doing = format!("writing {namespace}/cacerts");
    meshtrust_kube::within(budget, &doing, async {
        apply(
            client,
            &m.spec.name,
            namespace,
            observed,
            &action,
            Some(secret),
            m.spec.network.as_deref(),
            now,
        )
        .await
        .map_err(Error::from)
    })
    .await?;
    Ok(())
}
