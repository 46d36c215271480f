//! The AWS Private CA backend against a faithful fake of the five API calls: real
//! certificates signed by a real CA key, with scripted faults.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use meshtrust_ca::*;
use meshtrust_issuer::aws_pca::{
    ApiError, AwsPcaIssuer, CaDescription, IssueInput, IssuedPem, PcaApi, RetryPolicy,
};
use meshtrust_issuer::{IssueRequest, Issuer};
use time::Duration;

const ARN: &str = "arn:aws:acm-pca:eu-west-1:111122223333:certificate-authority/11111111-2222-3333-4444-555555555555";

#[derive(Default)]
struct Faults {
    throttle_issue: u32,
    deny_issue: bool,
    status: Option<&'static str>,
    waiter_timeout: bool,
    wrong_key: bool,
    foreign_chain: bool,
    hang_describe: bool,
    not_found: bool,
}

/// Signs like AWS does: honours the path-length template and the validity, signs with the
/// CA's own key, returns the CA certificate as the chain, and remembers idempotency tokens.
struct FakePca {
    ca: RootCa,
    other: RootCa,
    faults: Mutex<Faults>,
    calls: Mutex<Vec<(String, Option<IssueInput>)>>,
    by_token: Mutex<HashMap<String, String>>,
    certs: Mutex<HashMap<String, String>>,
}

impl FakePca {
    fn new(faults: Faults) -> Arc<FakePca> {
        let now = meshtrust_issuer::Clock::system().now();
        let mut params = RootParams::default();
        params.common_name = "Acme PCA Root".into();
        params.validity = Duration::days(365);
        Arc::new(FakePca {
            ca: params.self_signed(now).unwrap(),
            other: RootParams::default().self_signed(now).unwrap(),
            faults: Mutex::new(faults),
            calls: Mutex::new(Vec::new()),
            by_token: Mutex::new(HashMap::new()),
            certs: Mutex::new(HashMap::new()),
        })
    }

    fn record(&self, call: &str, input: Option<&IssueInput>) {
        self.calls
            .lock()
            .unwrap()
            .push((call.to_string(), input.cloned()));
    }

    fn calls(&self, name: &str) -> Vec<Option<IssueInput>> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _)| c == name)
            .map(|(_, i)| i.clone())
            .collect()
    }
}

#[async_trait]
impl PcaApi for FakePca {
    async fn describe_ca(&self, _arn: &str) -> Result<CaDescription, ApiError> {
        self.record("DescribeCertificateAuthority", None);
        let (hang, not_found, status) = {
            let f = self.faults.lock().unwrap();
            (f.hang_describe, f.not_found, f.status)
        };
        if hang {
            std::future::pending::<()>().await;
        }
        if not_found {
            return Err(ApiError::NotFound(format!("Resource {ARN} not found")));
        }
        let mut d = CaDescription::new(status.unwrap_or("ACTIVE"), "EC_prime256v1");
        d.not_before = Some(self.ca.certificate().not_before());
        d.not_after = Some(self.ca.certificate().not_after());
        d.usage_mode = Some("GENERAL_PURPOSE".into());
        Ok(d)
    }

    async fn ca_certificate(&self, _arn: &str) -> Result<IssuedPem, ApiError> {
        self.record("GetCertificateAuthorityCertificate", None);
        Ok(IssuedPem {
            certificate: self.ca.certificate().to_pem(),
            chain: None,
        })
    }

    async fn issue_certificate(&self, input: &IssueInput) -> Result<String, ApiError> {
        self.record("IssueCertificate", Some(input));
        {
            let mut f = self.faults.lock().unwrap();
            if f.deny_issue {
                return Err(ApiError::AccessDenied(
                    "User is not authorized to perform: acm-pca:IssueCertificate".into(),
                ));
            }
            if f.throttle_issue > 0 {
                f.throttle_issue -= 1;
                return Err(ApiError::Throttled("Rate exceeded".into()));
            }
        }
        if let Some(arn) = self.by_token.lock().unwrap().get(&input.idempotency_token) {
            return Ok(arn.clone());
        }
        let path_len: u8 = input
            .template_arn
            .strip_prefix("arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen")
            .and_then(|s| s.strip_suffix("/V1"))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                ApiError::InvalidRequest(format!("unknown template {}", input.template_arn))
            })?;
        let der = rustls_pki_types::CertificateSigningRequestDer::from_pem_slice(
            input.csr_pem.as_bytes(),
        )
        .map_err(|e| ApiError::MalformedCsr(e.to_string()))?;
        let csr = if self.faults.lock().unwrap().wrong_key {
            let params = IntermediateParams::new(ClusterName::new("impostor").unwrap());
            params
                .csr(&PrivateKey::generate(KeyType::EcdsaP256).unwrap())
                .unwrap()
        } else {
            Csr::from_der(der.as_ref().to_vec())
        };
        let profile = IntermediateProfile::new(path_len, Duration::days(input.validity_days));
        let signed = self
            .ca
            .sign_intermediate(&csr, &profile, meshtrust_issuer::Clock::system().now())
            .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
        let arn = format!("{ARN}/certificate/{}", self.certs.lock().unwrap().len() + 1);
        self.certs
            .lock()
            .unwrap()
            .insert(arn.clone(), signed.certificate.to_pem());
        self.by_token
            .lock()
            .unwrap()
            .insert(input.idempotency_token.clone(), arn.clone());
        Ok(arn)
    }

    async fn wait_issued(
        &self,
        _ca: &str,
        _cert: &str,
        max_wait: StdDuration,
    ) -> Result<(), ApiError> {
        self.record("WaitCertificateIssued", None);
        if self.faults.lock().unwrap().waiter_timeout {
            return Err(ApiError::WaiterTimeout(max_wait));
        }
        Ok(())
    }

    async fn get_certificate(&self, _ca: &str, cert_arn: &str) -> Result<IssuedPem, ApiError> {
        self.record("GetCertificate", None);
        let certificate = self
            .certs
            .lock()
            .unwrap()
            .get(cert_arn)
            .cloned()
            .ok_or_else(|| ApiError::NotFound(cert_arn.into()))?;
        let chain = if self.faults.lock().unwrap().foreign_chain {
            &self.other
        } else {
            &self.ca
        };
        Ok(IssuedPem {
            certificate,
            chain: Some(chain.certificate().to_pem()),
        })
    }
}

use rustls_pki_types::pem::PemObject;

fn fast() -> RetryPolicy {
    RetryPolicy::new(4, StdDuration::from_millis(1), StdDuration::from_millis(5))
        .with_timeouts(StdDuration::from_millis(200), StdDuration::from_millis(200))
}

fn request(cluster: &str, path_len: u8, validity: Duration) -> (PrivateKey, IssueRequest) {
    let mut params = IntermediateParams::new(ClusterName::new(cluster).unwrap());
    params.path_len = path_len;
    params.validity = validity;
    let key = PrivateKey::generate(params.key_type).unwrap();
    let req = IssueRequest::new(
        params.cluster.clone(),
        params.csr(&key).unwrap(),
        params.profile(),
        meshtrust_issuer::Clock::system().now(),
    );
    (key, req)
}

async fn issue(
    fake: &Arc<FakePca>,
    req: &IssueRequest,
) -> Result<meshtrust_issuer::IssueResponse, String> {
    let issuer = AwsPcaIssuer::new(fake.clone(), ARN, fast());
    issuer
        .issue_intermediate(req)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_correct_answer_becomes_a_bundle_istiod_accepts() {
    let fake = FakePca::new(Faults::default());
    let (key, req) = request("east", 1, Duration::days(30));
    let issued = issue(&fake, &req).await.unwrap();
    let input = fake.calls("IssueCertificate")[0].clone().unwrap();
    assert_eq!(
        input.template_arn,
        "arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen1/V1"
    );
    assert_eq!(input.signing_algorithm, "SHA256WITHECDSA");
    assert_eq!(input.validity_days, 30);
    assert_eq!(input.idempotency_token.len(), 36);
    let backdated = req.now - input.not_before.expect("ValidityNotBefore is set");
    assert!(
        backdated >= Duration::minutes(4)
            || input.not_before == Some(fake.ca.certificate().not_before()),
        "{backdated}"
    );
    assert_eq!(issued.certificate.path_len(), Some(1));
    assert!(issued.notices.is_empty(), "{:?}", issued.notices);
    let bundle = CaCerts::new(issued.certificate, key, issued.chain, issued.trust_bundle);
    let report = verify_bundle(
        &bundle.bundle_files(BundleFormat::Istio),
        &VerifyOptions::at(meshtrust_issuer::Clock::system().now()),
    );
    assert!(report.accepted(), "{:?}", report.findings);
    assert_eq!(fake.calls("DescribeCertificateAuthority").len(), 1);
}

#[tokio::test]
async fn the_validity_never_passes_the_ca_expiry() {
    let fake = FakePca::new(Faults::default());
    let (_, req) = request("east", 0, Duration::days(730));
    let issued = issue(&fake, &req).await.unwrap();
    let days = fake.calls("IssueCertificate")[0]
        .clone()
        .unwrap()
        .validity_days;
    assert!((363..=365).contains(&days), "{days}");
    assert!(
        issued.notices[0].contains("validity shortened"),
        "{:?}",
        issued.notices
    );
}

#[tokio::test]
async fn throttling_is_retried_with_the_same_token_and_mints_one_certificate() {
    let fake = FakePca::new(Faults {
        throttle_issue: 2,
        ..Faults::default()
    });
    let (_, req) = request("east", 0, Duration::days(30));
    issue(&fake, &req).await.unwrap();
    let calls = fake.calls("IssueCertificate");
    assert_eq!(calls.len(), 3, "two throttled attempts, then success");
    let tokens: Vec<_> = calls
        .iter()
        .map(|c| c.as_ref().unwrap().idempotency_token.clone())
        .collect();
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
    assert_eq!(fake.certs.lock().unwrap().len(), 1);
    // A rerun of the same request (same CSR) gets the same certificate back.
    issue(&fake, &req).await.unwrap();
    assert_eq!(fake.certs.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn failures_give_messages_a_user_can_act_on() {
    let cases: Vec<(&str, Faults, u8, Vec<&str>)> = vec![
        (
            "access denied names the permission",
            Faults {
                deny_issue: true,
                ..Faults::default()
            },
            0,
            vec!["acm-pca:IssueCertificate", ARN, "docs/aws.md"],
        ),
        (
            "a CA that is not ACTIVE is refused before issuing",
            Faults {
                status: Some("DISABLED"),
                ..Faults::default()
            },
            0,
            vec!["DISABLED, not ACTIVE", ARN],
        ),
        (
            "an unknown ARN is named",
            Faults {
                not_found: true,
                ..Faults::default()
            },
            0,
            // The --region flag is the binary's advice (cli/src/advice.rs).
            vec!["was not found", ARN, "the region"],
        ),
        (
            "the waiter gives up clearly",
            Faults {
                waiter_timeout: true,
                ..Faults::default()
            },
            0,
            vec!["was not issued within", "idempotency token"],
        ),
        (
            "a certificate for another key is refused",
            Faults {
                wrong_key: true,
                ..Faults::default()
            },
            0,
            vec!["SubordinateCACertificate_PathLen0/V1", ARN, "public key"],
        ),
        (
            "a chain to another root is refused",
            Faults {
                foreign_chain: true,
                ..Faults::default()
            },
            0,
            vec![ARN, "GetCertificateAuthorityCertificate leads to root"],
        ),
        (
            "a call that hangs times out",
            Faults {
                hang_describe: true,
                ..Faults::default()
            },
            0,
            vec![
                "DescribeCertificateAuthority",
                "after 4 attempts",
                "timed out",
            ],
        ),
        (
            "path lengths beyond AWS templates are refused",
            Faults::default(),
            4,
            vec!["path lengths 0 to 3"],
        ),
    ];
    for (case, faults, path_len, wants) in cases {
        let fake = FakePca::new(faults);
        let (_, req) = request("east", path_len, Duration::days(30));
        let err = issue(&fake, &req).await.expect_err(case);
        for want in wants {
            assert!(err.contains(want), "{case}: `{want}` not in: {err}");
        }
        if case.contains("not ACTIVE") || case.contains("beyond AWS") {
            assert!(
                fake.calls("IssueCertificate").is_empty(),
                "{case}: nothing is issued"
            );
        }
    }
}
