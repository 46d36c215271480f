//! The serving certificate: from files the user gives (cert-manager's `tls.crt`/`tls.key`,
//! reloaded when they change), or issued by the service's own local root for the names
//! given, so that clients can pin the root's fingerprint (`step ca bootstrap` style). The
//! chain served is leaf, then root. The rustls provider is ring, passed explicitly.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use axum_server::tls_rustls::RustlsConfig;
use meshtrust_ca::{KeyType, PrivateKey, RootCa};
use meshtrust_issuer::{Clock, LocalIssuer};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::Duration;

use crate::error::{Error, Result};

/// Lifetime of a self-issued serving certificate; it is reissued at two thirds of it.
pub const SELF_ISSUED_VALIDITY: Duration = Duration::days(30);

/// How often certificate files are checked for a change.
const FILE_POLL: std::time::Duration = std::time::Duration::from_secs(30);

/// Where the serving certificate comes from, resolved.
#[derive(Debug)]
pub enum Serving {
    /// PEM files, reloaded when their modification time changes.
    Files {
        /// The chain, leaf first.
        cert: PathBuf,
        /// The leaf's key.
        key: PathBuf,
    },
    /// Issued by `root` for `names`.
    SelfIssued {
        /// The local root's issuer.
        root: Arc<LocalIssuer>,
        /// DNS names and IP addresses.
        names: Vec<String>,
    },
}

fn config_error(location: &Path, reason: impl Into<String>) -> Error {
    Error::Config {
        location: location.display().to_string(),
        reason: reason.into(),
    }
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| Error::Config {
            location: "tls".to_string(),
            reason: format!("the serving certificate and key cannot be used: {e}"),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn from_files(cert: &Path, key: &Path) -> Result<ServerConfig> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| config_error(cert, format!("is not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(config_error(cert, "holds no certificate"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| config_error(key, format!("is not a PEM private key: {e}")))?;
    server_config(chain, key_der)
}

fn self_issued(root: &RootCa, names: &[String], now: time::OffsetDateTime) -> Result<ServerConfig> {
    let key = PrivateKey::generate(KeyType::EcdsaP256).map_err(|cause| Error::Ca {
        context: "generating the serving key".to_string(),
        cause,
    })?;
    let leaf = root
        .sign_server_certificate(&key, names, SELF_ISSUED_VALIDITY, now)
        .map_err(|cause| Error::Ca {
            context: "tls.self_issued".to_string(),
            cause,
        })?;
    let chain = vec![leaf.der().clone(), root.certificate().der().clone()];
    let key_der =
        PrivateKeyDer::from_pem_slice(key.to_pem().as_bytes()).map_err(|e| Error::Internal {
            reason: format!("a generated key does not read back: {e}"),
        })?;
    server_config(chain, key_der)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Serving {
    /// The rustls configuration to serve with now, and a task that keeps it current
    /// (reloading changed files, or reissuing a self-issued certificate before it expires).
    pub fn start(self, clock: Clock) -> Result<RustlsConfig> {
        let initial = match &self {
            Serving::Files { cert, key } => from_files(cert, key)?,
            Serving::SelfIssued { root, names } => self_issued(root.root(), names, clock.now())?,
        };
        let config = RustlsConfig::from_config(Arc::new(initial));
        let handle = config.clone();
        tokio::spawn(async move { self.keep_current(handle, clock).await });
        Ok(config)
    }

    async fn keep_current(self, config: RustlsConfig, clock: Clock) {
        match self {
            Serving::Files { cert, key } => {
                let mut seen = (modified(&cert), modified(&key));
                loop {
                    tokio::time::sleep(FILE_POLL).await;
                    let now = (modified(&cert), modified(&key));
                    if now == seen {
                        continue;
                    }
                    match from_files(&cert, &key) {
                        Ok(c) => {
                            config.reload_from_config(Arc::new(c));
                            tracing::info!(
                                "reloaded the serving certificate from {}",
                                cert.display()
                            );
                            seen = now;
                        }
                        Err(e) => tracing::warn!("kept the previous serving certificate: {e}"),
                    }
                }
            }
            Serving::SelfIssued { root, names } => loop {
                let every = SELF_ISSUED_VALIDITY.unsigned_abs().mul_f64(2.0 / 3.0);
                tokio::time::sleep(every).await;
                match self_issued(root.root(), &names, clock.now()) {
                    Ok(c) => config.reload_from_config(Arc::new(c)),
                    Err(e) => tracing::error!("could not reissue the serving certificate: {e}"),
                }
            },
        }
    }
}
