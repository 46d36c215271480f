//! The local backend: a root CA whose key is on this machine.

use std::path::Path;

use async_trait::async_trait;
use meshtrust_ca::{RootCa, TrustBundle, fmt_time};
use time::OffsetDateTime;

use crate::check::check_certificate;
use crate::error::{Error, Result};
use crate::{IssueRequest, IssueResponse, Issuer};

/// Signs with a root held in memory, loaded from `root-cert.pem` and `root-key.pem`.
#[derive(Debug)]
pub struct LocalIssuer {
    root: RootCa,
    location: String,
}

impl LocalIssuer {
    /// An issuer for a root already in memory.
    pub fn new(root: RootCa) -> LocalIssuer {
        LocalIssuer {
            root,
            location: "in-memory root".to_string(),
        }
    }

    /// An issuer for a root already in memory, named `location` in messages (e.g. the
    /// Secret it was read from).
    pub fn named(root: RootCa, location: impl Into<String>) -> LocalIssuer {
        LocalIssuer {
            root,
            location: location.into(),
        }
    }

    /// Loads `DIR/root-cert.pem` and `DIR/root-key.pem`, checking that the root can sign at `now`.
    pub fn from_dir(dir: &Path, now: OffsetDateTime) -> Result<LocalIssuer> {
        let shown = dir.display().to_string();
        if !dir.is_dir() {
            return Err(Error::NoRootDir { dir: shown });
        }
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Error::NoRootFile {
                        path: path.display().to_string(),
                        dir: shown.clone(),
                    }
                } else {
                    Error::Config {
                        location: path.display().to_string(),
                        reason: format!("cannot be read: {e}"),
                    }
                }
            })
        };
        let cert = read("root-cert.pem")?;
        let key = zeroize::Zeroizing::new(read("root-key.pem")?);
        let root = RootCa::from_pem(&cert, &key, now).map_err(|cause| Error::Ca {
            context: shown.clone(),
            cause,
        })?;
        Ok(LocalIssuer {
            root,
            location: shown,
        })
    }

    /// The root this issuer signs with.
    pub fn root(&self) -> &RootCa {
        &self.root
    }
}

#[async_trait]
impl Issuer for LocalIssuer {
    fn describe(&self) -> String {
        format!("local root {}", self.location)
    }

    async fn trust_bundle(&self) -> Result<TrustBundle> {
        Ok(self.root.trust_bundle())
    }

    fn signs_in_process(&self) -> bool {
        true
    }

    async fn issue_intermediate(&self, request: &IssueRequest) -> Result<IssueResponse> {
        let signed = self
            .root
            .sign_intermediate(&request.csr, &request.profile, request.now)
            .map_err(|cause| Error::Ca {
                context: format!("signing the intermediate for cluster {}", request.cluster),
                cause,
            })?;
        let chain = vec![self.root.certificate().clone()];
        let trust = self.root.trust_bundle();
        let problems = check_certificate(&request.csr, &request.profile, &signed.certificate);
        if !problems.is_empty() {
            return Err(Error::Rejected {
                issuer: self.describe(),
                cluster: request.cluster.to_string(),
                reason: problems.join("; "),
            });
        }
        let notices = signed
            .clamped_to
            .map(|t| {
                format!(
                    "cluster {}: validity shortened to the root's expiry ({}); rotate the root before then",
                    request.cluster,
                    fmt_time(t)
                )
            })
            .into_iter()
            .collect();
        Ok(IssueResponse {
            certificate: signed.certificate,
            chain,
            trust_bundle: trust,
            notices,
        })
    }
}
