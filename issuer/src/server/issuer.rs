//! `meshtrust serve` as a signing backend: issuing an intermediate is enrolling its cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use async_trait::async_trait;
use meshtrust_ca::{Certificate, ClusterName, IntermediateParams, PrivateKey, TrustBundle};
use zeroize::Zeroizing;

use crate::check::check_issued;
use crate::error::{Error, Result};
use crate::server::api::{IssuedResponse, RenewRequest, TrustBundleResponse};
use crate::server::client::ServiceClient;
use crate::server::policy::apply_policy;
use crate::server::trust::normalize_fingerprint;
use crate::{IssueRequest, IssueResponse, Issuer};

/// Signs through a `meshtrust serve`: each intermediate is the answer to enrolling its
/// cluster with the CSR and that cluster's credential, checked like every backend's answer
/// ([`check_issued`]). The service applies its own policy, so the request's profile must be
/// the service's (see [`api::PolicyInfo`](crate::server::api::PolicyInfo)) or the answer is
/// refused. `Debug` shows which clusters have a credential, never a credential.
pub struct ServerIssuer {
    client: ServiceClient,
    tokens: BTreeMap<ClusterName, Zeroizing<String>>,
    default_token: Option<Zeroizing<String>>,
}

impl ServerIssuer {
    /// Enrolls through `client`: each cluster with its token in `tokens`, or else with
    /// `default_token` (a credential any cluster may use, such as a ServiceAccount token).
    pub fn new(
        client: ServiceClient,
        tokens: BTreeMap<ClusterName, Zeroizing<String>>,
        default_token: Option<Zeroizing<String>>,
    ) -> ServerIssuer {
        ServerIssuer {
            client,
            tokens,
            default_token,
        }
    }

    /// The client this issuer enrolls through.
    pub fn client(&self) -> &ServiceClient {
        &self.client
    }

    /// Checks that every cluster of `clusters` has a credential, naming all that have none,
    /// so that a batch can be refused before any request is made.
    pub fn check_credentials(&self, clusters: &[ClusterName]) -> Result<()> {
        let missing: Vec<String> = clusters
            .iter()
            .filter(|c| self.credential(c).is_none())
            .map(ToString::to_string)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::NoCredential {
            service: self.describe(),
            clusters: missing,
        })
    }

    /// `params` with the service's policy applied (what its answers will carry), read from
    /// its trust-bundle route; the notices say what changed. Needs no credential.
    pub async fn params(
        &self,
        params: &IntermediateParams,
    ) -> Result<(IntermediateParams, Vec<String>)> {
        let answer = self.client.trust_bundle().await?;
        apply_policy(&self.describe(), params, &answer.policy)
    }

    /// Enrolls `request.cluster` with `credential` (read afresh by the caller: a projected
    /// ServiceAccount token changes), whatever credentials this issuer was built with.
    pub async fn enroll_with(
        &self,
        request: &IssueRequest,
        credential: &Zeroizing<String>,
    ) -> Result<IssueResponse> {
        let issued = self
            .client
            .enroll(&request.cluster, &request.csr.to_pem(), credential)
            .await?;
        issue_response(&self.describe(), request, &issued)
    }

    /// Renews `request.cluster`'s intermediate: a new one for `request.csr`, on the strength
    /// of a proof (made at `request.now`) that the cluster holds `current_key`, the key of
    /// `current`, its intermediate now. The answer is checked like an enrollment's.
    pub async fn renew(
        &self,
        request: &IssueRequest,
        current: &Certificate,
        current_key: &PrivateKey,
    ) -> Result<IssueResponse> {
        let proof = RenewRequest::signed(
            &request.cluster,
            &request.csr,
            current,
            current_key,
            request.now,
        )?;
        let issued = self.client.renew(&request.cluster, &proof).await?;
        issue_response(&self.describe(), request, &issued)
    }

    fn credential(&self, cluster: &ClusterName) -> Option<&Zeroizing<String>> {
        self.tokens.get(cluster).or(self.default_token.as_ref())
    }
}

impl fmt::Debug for ServerIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerIssuer")
            .field("url", &self.client.url())
            .field("tokens_for", &self.tokens.keys().collect::<Vec<_>>())
            .field(
                "default_token",
                &self.default_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[async_trait]
impl Issuer for ServerIssuer {
    fn describe(&self) -> String {
        self.client.describe()
    }

    async fn prepare(
        &self,
        params: &IntermediateParams,
        clusters: &[ClusterName],
    ) -> Result<(IntermediateParams, Vec<String>)> {
        self.check_credentials(clusters)?;
        self.params(params).await
    }

    fn issuance_is_final(&self) -> bool {
        true
    }

    async fn issue_intermediate(&self, request: &IssueRequest) -> Result<IssueResponse> {
        let Some(credential) = self.credential(&request.cluster) else {
            return Err(Error::NoCredential {
                service: self.describe(),
                clusters: vec![request.cluster.to_string()],
            });
        };
        let issued = self
            .client
            .enroll(&request.cluster, &request.csr.to_pem(), credential)
            .await?;
        issue_response(&self.describe(), request, &issued)
    }

    async fn trust_bundle(&self) -> Result<TrustBundle> {
        let answer = self.client.trust_bundle().await?;
        trust_bundle_of(&self.describe(), &answer)
    }
}

/// The roots of a trust-bundle answer, refused unless they are the roots it lists.
pub(crate) fn trust_bundle_of(service: &str, answer: &TrustBundleResponse) -> Result<TrustBundle> {
    let bad = |reason: String| Error::BadAnswer {
        service: service.to_string(),
        action: "fetching the trust bundle".to_string(),
        reason,
    };
    let bundle = TrustBundle::from_pem("the trust bundle", answer.trust_bundle_pem.as_bytes())
        .map_err(|e| bad(e.to_string()))?;
    let listed: Vec<&str> = answer
        .roots
        .iter()
        .map(|r| r.fingerprint_sha256.as_str())
        .collect();
    if !same_roots(&bundle, &listed) {
        return Err(bad(format!(
            "its PEM holds the roots [{}] but it lists the fingerprints [{}]",
            crate::server::wire::fingerprints(&bundle).join(", "),
            listed.join(", ")
        )));
    }
    Ok(bundle)
}

/// An enrollment or renewal answer as the crate's response, refused unless it is a
/// certificate for `request` that passes [`check_issued`].
pub(crate) fn issue_response(
    issuer: &str,
    request: &IssueRequest,
    issued: &IssuedResponse,
) -> Result<IssueResponse> {
    let rejected = |reason: String| Error::Rejected {
        issuer: issuer.to_string(),
        cluster: request.cluster.to_string(),
        reason,
    };
    if issued.cluster != request.cluster.as_str() {
        return Err(rejected(format!(
            "the answer is for cluster {}",
            issued.cluster
        )));
    }
    let pem = |name: &str, text: &str| {
        Certificate::all_from_pem(name, text.as_bytes()).map_err(|e| rejected(e.to_string()))
    };
    let mut certificates = pem("the certificate", &issued.certificate)?;
    if certificates.len() != 1 {
        return Err(rejected(format!(
            "the certificate field holds {} certificates instead of one",
            certificates.len()
        )));
    }
    let certificate = certificates.remove(0);
    let chain = pem("the chain", &issued.chain)?;
    let trust = TrustBundle::from_pem("the trust bundle", issued.trust_bundle.as_bytes())
        .map_err(|e| rejected(e.to_string()))?;
    let listed: Vec<&str> = issued
        .root_fingerprints
        .iter()
        .map(String::as_str)
        .collect();
    if !same_roots(&trust, &listed) {
        return Err(rejected(format!(
            "the trust bundle holds the roots [{}] but the answer lists [{}]",
            crate::server::wire::fingerprints(&trust).join(", "),
            listed.join(", ")
        )));
    }
    let problems = check_issued(&request.csr, &request.profile, &certificate, &chain, &trust);
    if !problems.is_empty() {
        return Err(rejected(problems.join("; ")));
    }
    Ok(IssueResponse {
        certificate,
        chain,
        trust_bundle: trust,
        notices: issued.notices.clone(),
    })
}

/// Whether `listed` names exactly the roots of `bundle` (in any order and any spelling of
/// the hex).
fn same_roots(bundle: &TrustBundle, listed: &[&str]) -> bool {
    let held: BTreeSet<String> = crate::server::wire::fingerprints(bundle)
        .into_iter()
        .collect();
    let named: Option<BTreeSet<String>> = listed
        .iter()
        .map(|f| normalize_fingerprint(f).ok())
        .collect();
    named.is_some_and(|named| named == held && listed.len() == bundle.roots().len())
}

/// The roots' SHA-256, lowercase hex: the API's spelling.
#[cfg(test)]
#[path = "issuer_tests.rs"]
mod tests;
