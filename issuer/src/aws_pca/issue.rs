//! The steps of issuing one intermediate with AWS Private CA: build the request, call AWS
//! with retries, read the answer, check it.

use meshtrust_ca::{Certificate, TrustBundle};

use super::{
    ApiError, AwsPcaIssuer, CaFacts, IssueInput, IssuedPem, SHORT_LIVED_MAX_DAYS, backdated,
    idempotency_token, parse, template_arn, validity_days,
};
use crate::IssueRequest;
use crate::check::check_issued;
use crate::error::{Error, Result};

/// What is asked of AWS for one request.
#[derive(Debug)]
pub(super) struct Plan {
    /// The subordinate CA template for the requested path length.
    pub(super) template: String,
    /// Validity in days, after the cuts below.
    pub(super) days: i64,
    /// Cut to the lifetime left to the CA.
    pub(super) clamped: bool,
    /// The CA is in short-lived certificate mode.
    pub(super) short_lived: bool,
}

impl AwsPcaIssuer {
    /// The template and validity for `request`: never past the CA, at most
    /// [`SHORT_LIVED_MAX_DAYS`] from a CA in short-lived certificate mode.
    pub(super) fn plan(&self, facts: &CaFacts, request: &IssueRequest) -> Result<Plan> {
        let template = template_arn(request.profile.path_len)?;
        let (mut days, clamped) =
            validity_days(request.now, request.profile.validity, facts.not_after).map_err(
                |reason| Error::Config {
                    location: self.ca_arn.clone(),
                    reason,
                },
            )?;
        let short_lived = facts.usage_mode.as_deref() == Some("SHORT_LIVED_CERTIFICATE");
        if short_lived && days > SHORT_LIVED_MAX_DAYS {
            days = SHORT_LIVED_MAX_DAYS;
        }
        Ok(Plan {
            template,
            days,
            clamped,
            short_lived,
        })
    }

    /// The `IssueCertificate` input for `request` as planned.
    pub(super) fn issue_input(
        &self,
        facts: &CaFacts,
        request: &IssueRequest,
        plan: &Plan,
    ) -> IssueInput {
        IssueInput {
            ca_arn: self.ca_arn.clone(),
            csr_pem: request.csr.to_pem(),
            signing_algorithm: facts.signing_algorithm.to_string(),
            template_arn: plan.template.clone(),
            validity_days: plan.days,
            not_before: Some(backdated(request.now, facts.not_before)),
            idempotency_token: idempotency_token(request.cluster.as_str(), request.csr.der()),
        }
    }

    /// `IssueCertificate`, the waiter until it is issued, and `GetCertificate`; each call
    /// retried by the policy, the waiter bounded by its `max_wait`.
    pub(super) async fn sign(&self, input: &IssueInput) -> Result<IssuedPem> {
        let arn = self.ca_arn.as_str();
        let cert_arn = self
            .policy
            .run(|| self.api.issue_certificate(input))
            .await
            .map_err(|e| self.aws_error("IssueCertificate", e))?;
        let max_wait = self.policy.max_wait;
        match tokio::time::timeout(max_wait, self.api.wait_issued(arn, &cert_arn, max_wait)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(self.aws_error("GetCertificate", (e, 1))),
            Err(_) => {
                return Err(
                    self.aws_error("GetCertificate", (ApiError::WaiterTimeout(max_wait), 1))
                );
            }
        }
        self.policy
            .run(|| self.api.get_certificate(arn, &cert_arn))
            .await
            .map_err(|e| self.aws_error("GetCertificate", e))
    }

    /// The certificate and its chain, parsed; an answer without a chain is rejected.
    pub(super) fn read_issued(
        &self,
        plan: &Plan,
        cluster: &str,
        issued: &IssuedPem,
    ) -> Result<(Certificate, Vec<Certificate>)> {
        let arn = self.ca_arn.as_str();
        let certificate = parse(arn, "a certificate", &issued.certificate)?
            .into_iter()
            .next()
            .expect("parse returns at least one");
        let chain = match issued.chain.as_deref().filter(|c| !c.trim().is_empty()) {
            Some(pem) => parse(arn, "a certificate chain", pem)?,
            None => {
                return Err(self.rejected(
                    &plan.template,
                    cluster,
                    "no CertificateChain came with the certificate".to_string(),
                ));
            }
        };
        Ok((certificate, chain))
    }

    /// The chain ends at the CA's own root and the certificate is what was asked for;
    /// returns the trust bundle of that root.
    pub(super) fn check_answer(
        &self,
        facts: &CaFacts,
        request: &IssueRequest,
        plan: &Plan,
        certificate: &Certificate,
        chain: &[Certificate],
    ) -> Result<TrustBundle> {
        let cluster = request.cluster.as_str();
        let top = chain.last().expect("parse returns at least one");
        if *top != facts.root {
            return Err(self.rejected(
                &plan.template,
                cluster,
                format!(
                    "the chain ends at {} ({}), but GetCertificateAuthorityCertificate leads to root {} ({})",
                    top.subject(),
                    &top.fingerprint()[..23],
                    facts.root.subject(),
                    &facts.root.fingerprint()[..23]
                ),
            ));
        }
        let trust = TrustBundle::of(facts.root.clone());
        let problems = check_issued(&request.csr, &request.profile, certificate, chain, &trust);
        if !problems.is_empty() {
            return Err(self.rejected(&plan.template, cluster, problems.join("; ")));
        }
        Ok(trust)
    }

    /// What the user must know about the validity the plan cut.
    pub(super) fn notices(&self, request: &IssueRequest, plan: &Plan) -> Vec<String> {
        let (arn, cluster, days) = (&self.ca_arn, request.cluster.as_str(), plan.days);
        let mut notices = Vec::new();
        if plan.clamped {
            notices.push(format!(
                "cluster {cluster}: validity shortened to {days} days, the lifetime left to CA {arn}"
            ));
        }
        if plan.short_lived
            && days == SHORT_LIVED_MAX_DAYS
            && request.profile.validity.whole_days() > SHORT_LIVED_MAX_DAYS
        {
            notices.push(format!(
                "cluster {cluster}: CA {arn} is in short-lived certificate mode, which issues for at most {SHORT_LIVED_MAX_DAYS} days; this intermediate must be renewed weekly (docs/aws.md)"
            ));
        }
        notices
    }
}
