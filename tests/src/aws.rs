//! AWS Private CA emulators for the end-to-end suites: moto (stock) and moto with
//! `tests/aws/faithful_moto.py`, each started on its own loopback port for one test.
//!
//! They run from the virtualenv `./tests/run-all.sh` creates in `.venv` (or the Python
//! named by `MESHTRUST_PYTHON`).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_acmpca::Client;
use aws_sdk_acmpca::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_acmpca::primitives::Blob;
use aws_sdk_acmpca::types::{
    CertificateAuthorityConfiguration, CertificateAuthorityType, KeyAlgorithm, SigningAlgorithm,
    Validity, ValidityPeriodType,
};

use crate::repo_root;

/// Environment that points the AWS SDK (in meshtrust or a test) at an emulator and away
/// from the developer's own AWS configuration.
pub const AWS_TEST_ENV: [(&str, &str); 6] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_SESSION_TOKEN", "testing"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_CONFIG_FILE", "/dev/null"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
];

/// Which emulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// moto as published: ignores templates and validity, signs with its own RSA key.
    Stock,
    /// moto patched to honour templates, validity, the CA's key and idempotency tokens.
    Faithful,
}

/// A running emulator; stopped when dropped.
pub struct Emulator {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("MESHTRUST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = repo_root().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run ./tests/run-all.sh once (it creates the virtualenv with moto[server]), or set MESHTRUST_PYTHON",
        venv.display()
    );
    venv
}

impl Emulator {
    /// Starts an emulator on a loopback port of the kernel's choosing (port 0, read back from
    /// the server's own "Running on" line, so parallel tests can never share one) and
    /// returns once it serves.
    pub fn start(flavor: Flavor) -> Emulator {
        let mut cmd = Command::new(python());
        match flavor {
            Flavor::Stock => cmd.args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"]),
            Flavor::Faithful => cmd
                .arg(repo_root().join("tests/aws/faithful_moto.py"))
                .args(["127.0.0.1", "0"]),
        };
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the emulator starts");
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("piped stderr");
        // Reads the port, then keeps draining the log so the server never blocks on it.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(port) = line
                    .split("Running on http://127.0.0.1:")
                    .nth(1)
                    .and_then(|rest| rest.trim().parse::<u16>().ok())
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(port);
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                panic!("the {flavor:?} emulator did not report its port within 30 s");
            }
        };
        let emulator = Emulator {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the {flavor:?} emulator did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        emulator
    }

    /// An SDK client for this emulator.
    pub fn client(&self) -> Client {
        let config = aws_sdk_acmpca::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "static"))
            .build();
        Client::from_conf(config)
    }

    /// `n` active P-256 root CAs, made from a synchronous test; their ARNs.
    pub fn p256_roots(&self, n: usize) -> Vec<String> {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        (0..n)
            .map(|_| runtime.block_on(self.root_ca("EC_prime256v1", true)))
            .collect()
    }

    /// Creates a root CA (`EC_prime256v1`, `RSA_2048`, …) and, when `activate`, installs
    /// its self-signed certificate the way AWS documents: GetCertificateAuthorityCsr →
    /// IssueCertificate with `RootCACertificate/V1` → GetCertificate →
    /// ImportCertificateAuthorityCertificate. Returns the CA's ARN.
    pub async fn root_ca(&self, key_algorithm: &str, activate: bool) -> String {
        let signing = if key_algorithm.starts_with("EC_secp384") {
            "SHA384WITHECDSA"
        } else if key_algorithm.starts_with("EC_") {
            "SHA256WITHECDSA"
        } else {
            "SHA256WITHRSA"
        };
        let client = self.client();
        let subject = aws_sdk_acmpca::types::Asn1Subject::builder()
            .organization("Acme")
            .common_name("Acme Mesh Root")
            .build();
        let config = CertificateAuthorityConfiguration::builder()
            .key_algorithm(KeyAlgorithm::from(key_algorithm))
            .signing_algorithm(SigningAlgorithm::from(signing))
            .subject(subject)
            .build()
            .unwrap();
        let arn = client
            .create_certificate_authority()
            .certificate_authority_configuration(config)
            .certificate_authority_type(CertificateAuthorityType::Root)
            .send()
            .await
            .unwrap()
            .certificate_authority_arn()
            .unwrap()
            .to_string();
        if !activate {
            return arn;
        }
        let csr = client
            .get_certificate_authority_csr()
            .certificate_authority_arn(&arn)
            .send()
            .await
            .unwrap()
            .csr()
            .unwrap()
            .to_string();
        let cert_arn = client
            .issue_certificate()
            .certificate_authority_arn(&arn)
            .csr(Blob::new(csr.into_bytes()))
            .signing_algorithm(SigningAlgorithm::from(signing))
            .template_arn("arn:aws:acm-pca:::template/RootCACertificate/V1")
            .validity(
                Validity::builder()
                    .value(3650)
                    .r#type(ValidityPeriodType::Days)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap()
            .certificate_arn()
            .unwrap()
            .to_string();
        let cert = client
            .get_certificate()
            .certificate_authority_arn(&arn)
            .certificate_arn(&cert_arn)
            .send()
            .await
            .unwrap()
            .certificate()
            .unwrap()
            .to_string();
        client
            .import_certificate_authority_certificate()
            .certificate_authority_arn(&arn)
            .certificate(Blob::new(cert.into_bytes()))
            .send()
            .await
            .unwrap();
        arn
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
