//! The narrow seam between meshtrust and AWS Private CA: the five calls the issuer makes.
//! [`super::SdkPca`] implements it with the AWS SDK; tests swap in a fake.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

/// What `DescribeCertificateAuthority` tells about a CA.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CaDescription {
    /// `ACTIVE`, `PENDING_CERTIFICATE`, `DISABLED`, `EXPIRED`, …
    pub status: String,
    /// `ROOT` or `SUBORDINATE`.
    pub ca_type: String,
    /// `RSA_2048`, `EC_prime256v1`, `EC_secp384r1`, …
    pub key_algorithm: String,
    /// `GENERAL_PURPOSE` or `SHORT_LIVED_CERTIFICATE`, when reported.
    pub usage_mode: Option<String>,
    /// Start of the CA certificate's validity, once it has one.
    pub not_before: Option<OffsetDateTime>,
    /// End of the CA certificate's validity, once it has one.
    pub not_after: Option<OffsetDateTime>,
}

impl CaDescription {
    /// A description with the given status and key algorithm (other fields empty).
    pub fn new(status: &str, key_algorithm: &str) -> CaDescription {
        CaDescription {
            status: status.to_string(),
            ca_type: "ROOT".to_string(),
            key_algorithm: key_algorithm.to_string(),
            usage_mode: None,
            not_before: None,
            not_after: None,
        }
    }
}

/// `IssueCertificate` input, as meshtrust fills it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssueInput {
    /// The CA that signs.
    pub ca_arn: String,
    /// The CSR, PEM.
    pub csr_pem: String,
    /// `SHA256WITHECDSA`, `SHA384WITHECDSA`, `SHA256WITHRSA`, …
    pub signing_algorithm: String,
    /// `arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen{N}/V1`.
    pub template_arn: String,
    /// Validity in days (type `DAYS`).
    pub validity_days: i64,
    /// `ValidityNotBefore` (type `ABSOLUTE`): backdated a little, so that a clock running
    /// behind AWS's does not see a certificate that is not valid yet.
    pub not_before: Option<OffsetDateTime>,
    /// Deterministic token: a retry returns the same certificate instead of a second one.
    pub idempotency_token: String,
}

/// A certificate and its chain as AWS returns them (PEM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedPem {
    /// The certificate.
    pub certificate: String,
    /// Its issuers, up to the root; absent for a root CA's own certificate.
    pub chain: Option<String>,
}

/// AWS errors, sorted by what meshtrust does about them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// Throttled (`ThrottlingException`, `TooManyRequests…`): retried with backoff.
    #[error("throttled: {0}")]
    Throttled(String),
    /// `RequestInProgressException`: the certificate is not ready yet; retried.
    #[error("request in progress: {0}")]
    InProgress(String),
    /// The network or the SDK failed before AWS answered: retried.
    #[error("transport error: {0}")]
    Transport(String),
    /// The call did not finish within its timeout: retried.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// `AccessDeniedException`.
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// `ResourceNotFoundException` / `InvalidArnException`.
    #[error("not found: {0}")]
    NotFound(String),
    /// `InvalidStateException`: the CA is not in a state that allows the call.
    #[error("invalid state: {0}")]
    InvalidState(String),
    /// `LimitExceededException`: an account quota.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// `MalformedCSRException`.
    #[error("malformed CSR: {0}")]
    MalformedCsr(String),
    /// `InvalidArgsException`, `ValidationException`, `InvalidParameterException`, …
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The certificate-issued waiter gave up.
    #[error("not issued within {0:?}")]
    WaiterTimeout(Duration),
    /// Anything else, with AWS's code and message.
    #[error("{0}")]
    Other(String),
}

impl ApiError {
    /// Whether trying again later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ApiError::Throttled(_)
                | ApiError::InProgress(_)
                | ApiError::Transport(_)
                | ApiError::Timeout(_)
        )
    }

    /// Sorts an AWS error code (`AccessDeniedException`, …) with its message.
    pub fn from_code(code: &str, message: &str) -> ApiError {
        let m = message.to_string();
        match code {
            "ThrottlingException"
            | "Throttling"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "SlowDown" => ApiError::Throttled(m),
            "RequestInProgressException" => ApiError::InProgress(m),
            "AccessDeniedException"
            | "AccessDenied"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "ExpiredTokenException" => ApiError::AccessDenied(format!("{code}: {m}")),
            "ResourceNotFoundException" | "InvalidArnException" => ApiError::NotFound(m),
            "InvalidStateException" => ApiError::InvalidState(m),
            "LimitExceededException" => ApiError::LimitExceeded(m),
            "MalformedCSRException" => ApiError::MalformedCsr(m),
            "InvalidArgsException"
            | "ValidationException"
            | "InvalidParameterException"
            | "InvalidRequestException" => ApiError::InvalidRequest(format!("{code}: {m}")),
            _ => ApiError::Other(format!("{code}: {m}")),
        }
    }
}

/// The calls meshtrust makes to AWS Private CA.
#[async_trait]
pub trait PcaApi: Send + Sync {
    /// `DescribeCertificateAuthority`.
    async fn describe_ca(&self, ca_arn: &str) -> Result<CaDescription, ApiError>;
    /// `GetCertificateAuthorityCertificate`: the CA's own certificate and its chain.
    async fn ca_certificate(&self, ca_arn: &str) -> Result<IssuedPem, ApiError>;
    /// `IssueCertificate`; returns the certificate ARN.
    async fn issue_certificate(&self, input: &IssueInput) -> Result<String, ApiError>;
    /// The SDK's `CertificateIssued` waiter, giving up after `max_wait`.
    async fn wait_issued(
        &self,
        ca_arn: &str,
        cert_arn: &str,
        max_wait: Duration,
    ) -> Result<(), ApiError>;
    /// `GetCertificate`.
    async fn get_certificate(&self, ca_arn: &str, cert_arn: &str) -> Result<IssuedPem, ApiError>;
}
