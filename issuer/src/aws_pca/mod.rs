//! The AWS Private CA backend: each cluster's intermediate is signed by a CA in AWS, from a
//! CSR whose key never leaves this machine.

mod api;
mod issue;
mod retry;
mod sdk;

pub use api::{ApiError, CaDescription, IssueInput, IssuedPem, PcaApi};
pub use retry::RetryPolicy;
pub use sdk::{AwsOptions, SdkPca};

use std::sync::Arc;

use async_trait::async_trait;
use meshtrust_ca::{Certificate, TrustBundle, fmt_time, sha256_hex};
use time::{Duration, OffsetDateTime};
use tokio::sync::OnceCell;

use crate::error::{Error, Result};
use crate::{IssueRequest, IssueResponse, Issuer};

/// Longest validity a CA in short-lived certificate mode issues.
pub const SHORT_LIVED_MAX_DAYS: i64 = 7;

/// Highest path length AWS offers a template for (`SubordinateCACertificate_PathLen3/V1`).
pub const MAX_PATH_LEN: u8 = 3;

/// The template AWS applies for an intermediate with this path length.
pub fn template_arn(path_len: u8) -> Result<String> {
    if path_len > MAX_PATH_LEN {
        return Err(Error::Config {
            location: "the intermediate's path length".to_string(),
            reason: format!(
                "AWS Private CA has subordinate CA templates for path lengths 0 to {MAX_PATH_LEN}, not {path_len}"
            ),
        });
    }
    Ok(format!(
        "arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen{path_len}/V1"
    ))
}

/// The signing algorithm matching a CA's key algorithm.
pub fn signing_algorithm(key_algorithm: &str) -> Option<&'static str> {
    match key_algorithm {
        "RSA_2048" | "RSA_3072" | "RSA_4096" => Some("SHA256WITHRSA"),
        "EC_prime256v1" => Some("SHA256WITHECDSA"),
        "EC_secp384r1" => Some("SHA384WITHECDSA"),
        "EC_secp521r1" => Some("SHA512WITHECDSA"),
        _ => None,
    }
}

/// Same cluster and same CSR → same token, so a retried or re-run request returns the
/// certificate already minted instead of a second one. (AWS keeps a token for 5 minutes;
/// the CSR — hence the key — changes on every run, so distinct runs never collide.)
pub fn idempotency_token(cluster: &str, csr_der: &[u8]) -> String {
    let mut input = cluster.as_bytes().to_vec();
    input.push(0);
    input.extend_from_slice(csr_der);
    // AWS allows at most 36 characters.
    sha256_hex(&input)[..36].to_string()
}

/// Validity in whole days for a request at `now`, never past the CA's own expiry.
/// Returns the days and whether they were shortened.
pub fn validity_days(
    now: OffsetDateTime,
    requested: Duration,
    ca_not_after: Option<OffsetDateTime>,
) -> std::result::Result<(i64, bool), String> {
    let wanted = requested.whole_days().max(1);
    let Some(end) = ca_not_after else {
        return Ok((wanted, false));
    };
    let available = (end - now).whole_days();
    if available < 1 {
        return Err(format!(
            "the CA expires at {} — less than a day from now; renew the CA before issuing",
            fmt_time(end)
        ));
    }
    Ok(if wanted > available {
        (available, true)
    } else {
        (wanted, false)
    })
}

/// How far issued certificates are backdated, as the local issuer does.
pub const BACKDATE: Duration = Duration::minutes(5);

/// `ValidityNotBefore` for a request at `now`: backdated by [`BACKDATE`], never before the CA.
pub fn backdated(now: OffsetDateTime, ca_not_before: Option<OffsetDateTime>) -> OffsetDateTime {
    let t = now - BACKDATE;
    match ca_not_before {
        Some(ca) if ca > t => ca,
        _ => t,
    }
}

/// What is read from the CA once per run.
#[derive(Debug)]
struct CaFacts {
    signing_algorithm: &'static str,
    not_before: Option<OffsetDateTime>,
    not_after: Option<OffsetDateTime>,
    usage_mode: Option<String>,
    /// The root at the top of the CA's own chain.
    root: Certificate,
}

/// Signs intermediates with an AWS Private CA.
pub struct AwsPcaIssuer {
    api: Arc<dyn PcaApi>,
    ca_arn: String,
    policy: RetryPolicy,
    facts: OnceCell<CaFacts>,
}

impl std::fmt::Debug for AwsPcaIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsPcaIssuer")
            .field("ca_arn", &self.ca_arn)
            .finish_non_exhaustive()
    }
}

impl AwsPcaIssuer {
    /// An issuer for the CA `ca_arn`, reached through `api`.
    pub fn new(
        api: Arc<dyn PcaApi>,
        ca_arn: impl Into<String>,
        policy: RetryPolicy,
    ) -> AwsPcaIssuer {
        AwsPcaIssuer {
            api,
            ca_arn: ca_arn.into(),
            policy,
            facts: OnceCell::new(),
        }
    }

    /// Turns an AWS error into a message naming the call, the CA and what to do.
    fn aws_error(&self, action: &str, (error, attempts): (ApiError, u32)) -> Error {
        let arn = &self.ca_arn;
        let reason = match &error {
            ApiError::AccessDenied(m) => format!(
                "AWS denied acm-pca:{action} on {arn} ({m}); grant acm-pca:{action} on this CA to the caller (see docs/aws.md for the policy)"
            ),
            ApiError::NotFound(m) => {
                return Error::CaNotFound {
                    arn: arn.clone(),
                    message: m.clone(),
                };
            }
            ApiError::InvalidState(m) => format!(
                "certificate authority {arn} is not in a state that allows {action} ({m}); it must be ACTIVE"
            ),
            ApiError::LimitExceeded(m) => format!(
                "an AWS Private CA quota was hit during {action} on {arn} ({m}); raise the quota in Service Quotas or issue fewer clusters at once"
            ),
            ApiError::MalformedCsr(m) => format!(
                "AWS Private CA rejected the certificate signing request as malformed ({m}); this is a meshtrust bug, please report it"
            ),
            ApiError::InvalidRequest(m) => {
                format!("AWS Private CA rejected {action} on {arn}: {m}")
            }
            ApiError::WaiterTimeout(d) => format!(
                "the certificate from {arn} was not issued within {d:?}; run the command again — the idempotency token returns the same certificate rather than minting a second"
            ),
            e if e.is_retryable() => {
                format!("{action} on {arn} still failing after {attempts} attempts: {e}")
            }
            e => format!("{action} on {arn} failed: {e}"),
        };
        Error::Aws {
            action: action.to_string(),
            reason,
        }
    }

    async fn facts(&self) -> Result<&CaFacts> {
        self.facts.get_or_try_init(|| self.read_facts()).await
    }

    async fn read_facts(&self) -> Result<CaFacts> {
        let arn = self.ca_arn.as_str();
        let desc = self
            .policy
            .run(|| self.api.describe_ca(arn))
            .await
            .map_err(|e| self.aws_error("DescribeCertificateAuthority", e))?;
        if desc.status != "ACTIVE" {
            return Err(Error::Config {
                location: arn.to_string(),
                reason: format!(
                    "the certificate authority is {}, not ACTIVE; {}",
                    desc.status,
                    match desc.status.as_str() {
                        "PENDING_CERTIFICATE" =>
                            "install its CA certificate first (ImportCertificateAuthorityCertificate)",
                        "DISABLED" =>
                            "enable it (aws acm-pca update-certificate-authority --status ACTIVE)",
                        "EXPIRED" => "its certificate has expired: renew the CA",
                        _ => "use an ACTIVE CA",
                    }
                ),
            });
        }
        let signing_algorithm = signing_algorithm(&desc.key_algorithm).ok_or_else(|| Error::Config {
            location: arn.to_string(),
            reason: format!(
                "the CA's key algorithm {} cannot sign certificates istiod accepts; use an RSA or ECDSA (P-256/P-384) CA",
                desc.key_algorithm
            ),
        })?;
        let own = self
            .policy
            .run(|| self.api.ca_certificate(arn))
            .await
            .map_err(|e| self.aws_error("GetCertificateAuthorityCertificate", e))?;
        let mut chain = parse(arn, "the CA certificate", &own.certificate)?;
        if let Some(rest) = own.chain.as_deref().filter(|c| !c.trim().is_empty()) {
            chain.extend(parse(arn, "the CA certificate chain", rest)?);
        }
        let root = chain.last().expect("parse returns at least one").clone();
        if !root.is_self_signed() {
            return Err(Error::Config {
                location: arn.to_string(),
                reason: format!(
                    "the CA's certificate chain ends at {}, which is not a self-signed root; import the full chain into the CA",
                    root.subject()
                ),
            });
        }
        Ok(CaFacts {
            signing_algorithm,
            not_before: desc.not_before,
            not_after: desc.not_after,
            usage_mode: desc.usage_mode,
            root,
        })
    }

    fn rejected(&self, template: &str, cluster: &str, reason: String) -> Error {
        Error::Rejected {
            issuer: format!("AWS Private CA {} (template {template})", self.ca_arn),
            cluster: cluster.to_string(),
            reason,
        }
    }
}

fn parse(arn: &str, what: &str, pem: &str) -> Result<Vec<Certificate>> {
    Certificate::all_from_pem(what, pem.as_bytes()).map_err(|cause| Error::Ca {
        context: format!("AWS Private CA {arn} returned {what} that cannot be read"),
        cause,
    })
}

#[async_trait]
impl Issuer for AwsPcaIssuer {
    fn describe(&self) -> String {
        format!("AWS Private CA {}", self.ca_arn)
    }

    async fn trust_bundle(&self) -> Result<TrustBundle> {
        Ok(TrustBundle::of(self.facts().await?.root.clone()))
    }

    async fn issue_intermediate(&self, request: &IssueRequest) -> Result<IssueResponse> {
        let facts = self.facts().await?;
        let plan = self.plan(facts, request)?;
        let issued = self.sign(&self.issue_input(facts, request, &plan)).await?;
        let (certificate, chain) = self.read_issued(&plan, request.cluster.as_str(), &issued)?;
        let trust = self.check_answer(facts, request, &plan, &certificate, &chain)?;
        Ok(IssueResponse {
            certificate,
            chain,
            trust_bundle: trust,
            notices: self.notices(request, &plan),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn requests_are_backdated_but_never_before_the_ca() {
        let now = datetime!(2026-06-01 12:00 UTC);
        assert_eq!(backdated(now, None), now - BACKDATE);
        assert_eq!(
            backdated(now, Some(now - Duration::days(1))),
            now - BACKDATE
        );
        assert_eq!(
            backdated(now, Some(now - Duration::minutes(1))),
            now - Duration::minutes(1)
        );
    }

    #[test]
    fn validity_is_cut_to_the_ca_and_refused_when_it_has_no_day_left() {
        let now = datetime!(2026-06-01 12:00 UTC);
        assert_eq!(
            validity_days(now, Duration::days(730), None),
            Ok((730, false))
        );
        assert_eq!(
            validity_days(now, Duration::days(730), Some(now + Duration::days(100))),
            Ok((100, true))
        );
        assert_eq!(
            validity_days(now, Duration::hours(3), None),
            Ok((1, false)),
            "at least one day"
        );
        assert!(validity_days(now, Duration::days(30), Some(now + Duration::hours(5))).is_err());
    }

    #[test]
    fn templates_and_signing_algorithms_follow_aws() {
        assert_eq!(
            template_arn(0).unwrap(),
            "arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1"
        );
        assert!(template_arn(4).is_err());
        assert_eq!(signing_algorithm("EC_prime256v1"), Some("SHA256WITHECDSA"));
        assert_eq!(signing_algorithm("EC_secp384r1"), Some("SHA384WITHECDSA"));
        assert_eq!(signing_algorithm("RSA_4096"), Some("SHA256WITHRSA"));
        assert_eq!(signing_algorithm("SM2"), None);
        let a = idempotency_token("east", b"csr");
        assert_eq!(a, idempotency_token("east", b"csr"));
        assert_ne!(a, idempotency_token("west", b"csr"));
        assert_ne!(a, idempotency_token("east", b"csr2"));
        assert_eq!(a.len(), 36);
    }
}
