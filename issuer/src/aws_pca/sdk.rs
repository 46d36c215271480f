//! [`PcaApi`] over the AWS SDK (`aws-sdk-acmpca`, credentials from the default chain).

use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_acmpca::Client;
use aws_sdk_acmpca::client::Waiters;
use aws_sdk_acmpca::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_acmpca::primitives::Blob;
use aws_sdk_acmpca::types::{SigningAlgorithm, Validity, ValidityPeriodType};
use time::OffsetDateTime;

use super::api::{ApiError, CaDescription, IssueInput, IssuedPem, PcaApi};
use crate::error::{Error, Result};

/// Where and as whom to reach AWS. Unset fields come from the environment and profile files
/// (`AWS_REGION`, `AWS_PROFILE`, `AWS_ENDPOINT_URL`, …), as with the AWS CLI.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AwsOptions {
    /// Region (`--region`).
    pub region: Option<String>,
    /// Named profile (`--profile`).
    pub profile: Option<String>,
    /// Endpoint override (`--endpoint-url`), e.g. a VPC endpoint or a local emulator.
    pub endpoint_url: Option<String>,
}

impl AwsOptions {
    /// Options with the given overrides.
    pub fn new(
        region: Option<String>,
        profile: Option<String>,
        endpoint_url: Option<String>,
    ) -> AwsOptions {
        AwsOptions {
            region,
            profile,
            endpoint_url,
        }
    }
}

/// AWS Private CA through the SDK. The SDK's own retries are off: [`super::RetryPolicy`]
/// is the one retry policy, and also covers `RequestInProgressException`.
#[derive(Clone, Debug)]
pub struct SdkPca {
    client: Client,
}

impl SdkPca {
    /// Loads credentials and region (default chain, with `options` on top).
    pub async fn connect(options: &AwsOptions) -> Result<SdkPca> {
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).retry_config(RetryConfig::disabled());
        if let Some(region) = &options.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(profile) = &options.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(url) = &options.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let config = loader.load().await;
        if config.region().is_none() {
            return Err(Error::NoRegion);
        }
        Ok(SdkPca {
            client: Client::new(&config),
        })
    }
}

/// Sorts an SDK error: AWS's error code when it answered, transport otherwise.
fn classify<E>(err: SdkError<E>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            match e.code() {
                Some(code) => ApiError::from_code(code, e.message().unwrap_or("")),
                None if service.raw().status().is_server_error() => ApiError::Transport(format!(
                    "HTTP {} without an AWS error code",
                    service.raw().status().as_u16()
                )),
                None => ApiError::Other(DisplayErrorContext(&err).to_string()),
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            ApiError::Transport(DisplayErrorContext(&err).to_string())
        }
        _ => ApiError::Other(DisplayErrorContext(&err).to_string()),
    }
}

fn pem(certificate: Option<&str>, chain: Option<&str>) -> IssuedPem {
    IssuedPem {
        certificate: certificate.unwrap_or_default().to_string(),
        chain: chain.map(str::to_string),
    }
}

fn time_of(t: Option<&aws_sdk_acmpca::primitives::DateTime>) -> Option<OffsetDateTime> {
    t.and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok())
}

#[async_trait]
impl PcaApi for SdkPca {
    async fn describe_ca(&self, ca_arn: &str) -> Result<CaDescription, ApiError> {
        let out = self
            .client
            .describe_certificate_authority()
            .certificate_authority_arn(ca_arn)
            .send()
            .await
            .map_err(classify)?;
        let ca = out.certificate_authority().ok_or_else(|| {
            ApiError::Other("DescribeCertificateAuthority returned no CA".to_string())
        })?;
        Ok(CaDescription {
            status: ca
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            ca_type: ca
                .r#type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
            key_algorithm: ca
                .certificate_authority_configuration()
                .map(|c| c.key_algorithm().as_str().to_string())
                .unwrap_or_default(),
            usage_mode: ca.usage_mode().map(|u| u.as_str().to_string()),
            not_before: time_of(ca.not_before()),
            not_after: time_of(ca.not_after()),
        })
    }

    async fn ca_certificate(&self, ca_arn: &str) -> Result<IssuedPem, ApiError> {
        let out = self
            .client
            .get_certificate_authority_certificate()
            .certificate_authority_arn(ca_arn)
            .send()
            .await
            .map_err(classify)?;
        Ok(pem(out.certificate(), out.certificate_chain()))
    }

    async fn issue_certificate(&self, input: &IssueInput) -> Result<String, ApiError> {
        let validity = Validity::builder()
            .value(input.validity_days)
            .r#type(ValidityPeriodType::Days)
            .build()
            .map_err(|e| ApiError::Other(e.to_string()))?;
        let not_before = match input.not_before {
            Some(t) => Some(
                Validity::builder()
                    .value(t.unix_timestamp())
                    .r#type(ValidityPeriodType::Absolute)
                    .build()
                    .map_err(|e| ApiError::Other(e.to_string()))?,
            ),
            None => None,
        };
        let out = self
            .client
            .issue_certificate()
            .set_validity_not_before(not_before)
            .certificate_authority_arn(&input.ca_arn)
            .csr(Blob::new(input.csr_pem.as_bytes()))
            .signing_algorithm(SigningAlgorithm::from(input.signing_algorithm.as_str()))
            .template_arn(&input.template_arn)
            .validity(validity)
            .idempotency_token(&input.idempotency_token)
            .send()
            .await
            .map_err(classify)?;
        out.certificate_arn().map(str::to_string).ok_or_else(|| {
            ApiError::Other("IssueCertificate returned no certificate ARN".to_string())
        })
    }

    async fn wait_issued(
        &self,
        ca_arn: &str,
        cert_arn: &str,
        max_wait: Duration,
    ) -> Result<(), ApiError> {
        use aws_sdk_acmpca::waiters::certificate_issued::WaitUntilCertificateIssuedError as W;
        match self
            .client
            .wait_until_certificate_issued()
            .certificate_authority_arn(ca_arn)
            .certificate_arn(cert_arn)
            .wait(max_wait)
            .await
        {
            Ok(_) => Ok(()),
            Err(W::ExceededMaxWait(_)) => Err(ApiError::WaiterTimeout(max_wait)),
            Err(W::OperationFailed(f)) => {
                let e = f.into_error();
                Err(ApiError::from_code(
                    e.code().unwrap_or("Unknown"),
                    e.message().unwrap_or(""),
                ))
            }
            Err(other) => Err(ApiError::Other(DisplayErrorContext(&other).to_string())),
        }
    }

    async fn get_certificate(&self, ca_arn: &str, cert_arn: &str) -> Result<IssuedPem, ApiError> {
        let out = self
            .client
            .get_certificate()
            .certificate_authority_arn(ca_arn)
            .certificate_arn(cert_arn)
            .send()
            .await
            .map_err(classify)?;
        Ok(pem(out.certificate(), out.certificate_chain()))
    }
}
