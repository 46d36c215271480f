//! Istio's `cacerts` bundle, in its two on-disk / Secret forms.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::cert::Certificate;
use crate::error::{Error, Result};
use crate::key::PrivateKey;
use crate::trust::TrustBundle;

/// The two layouts istiod reads from the `cacerts` Secret.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BundleFormat {
    /// `ca-cert.pem`, `ca-key.pem`, `cert-chain.pem`, `root-cert.pem` (Secret type Opaque).
    #[default]
    Istio,
    /// `tls.crt`, `tls.key`, `ca.crt` (Secret type kubernetes.io/tls, as cert-manager writes).
    Tls,
}

impl BundleFormat {
    /// The files of this form, in the order they are listed to users.
    pub fn file_names(self) -> &'static [&'static str] {
        match self {
            BundleFormat::Istio => &[
                "ca-cert.pem",
                "ca-key.pem",
                "cert-chain.pem",
                "root-cert.pem",
            ],
            BundleFormat::Tls => &["tls.crt", "tls.key", "ca.crt"],
        }
    }

    /// The file that holds the private key.
    pub fn key_file(self) -> &'static str {
        match self {
            BundleFormat::Istio => "ca-key.pem",
            BundleFormat::Tls => "tls.key",
        }
    }

    /// The file that holds the CA certificate (first) and, in the tls form, its issuers.
    pub fn cert_file(self) -> &'static str {
        match self {
            BundleFormat::Istio => "ca-cert.pem",
            BundleFormat::Tls => "tls.crt",
        }
    }

    /// The file that holds the chain from the CA certificate upwards (`tls.crt` in the tls
    /// form, where it is also [`Self::cert_file`]).
    pub fn chain_file(self) -> &'static str {
        match self {
            BundleFormat::Istio => "cert-chain.pem",
            BundleFormat::Tls => "tls.crt",
        }
    }

    /// The file that holds the trusted roots.
    pub fn trust_file(self) -> &'static str {
        match self {
            BundleFormat::Istio => "root-cert.pem",
            BundleFormat::Tls => "ca.crt",
        }
    }

    /// The format istiod would pick for a set of file names: tls when `tls.crt` is present.
    pub fn detect<'a>(mut names: impl Iterator<Item = &'a str>) -> BundleFormat {
        if names.any(|n| n == "tls.crt") {
            BundleFormat::Tls
        } else {
            BundleFormat::Istio
        }
    }
}

impl fmt::Display for BundleFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BundleFormat::Istio => "istio",
            BundleFormat::Tls => "tls",
        })
    }
}

impl std::str::FromStr for BundleFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "istio" => Ok(BundleFormat::Istio),
            "tls" => Ok(BundleFormat::Tls),
            _ => Err(Error::InvalidParameter {
                field: "format",
                reason: format!("`{s}` is not one of istio, tls"),
            }),
        }
    }
}

/// The contents of a bundle as read from a directory or a Secret: file name → bytes.
/// Values are zeroized on drop, as one of them is a private key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct BundleFiles {
    files: BTreeMap<String, Zeroizing<Vec<u8>>>,
}

impl fmt::Debug for BundleFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.files.keys()).finish()
    }
}

impl BundleFiles {
    /// An empty set.
    pub fn new() -> BundleFiles {
        BundleFiles::default()
    }

    /// Adds (or replaces) a file.
    pub fn insert(&mut self, name: impl Into<String>, contents: Vec<u8>) {
        self.files.insert(name.into(), Zeroizing::new(contents));
    }

    /// A file's bytes.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(|v| v.as_slice())
    }

    /// File names present.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// No files at all.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// One file of a bundle, ready to be written.
pub struct BundleFile {
    /// File name (also the Secret data key).
    pub name: &'static str,
    /// Contents.
    pub contents: Zeroizing<Vec<u8>>,
    /// Holds a private key: write 0600, never print.
    pub secret: bool,
}

impl fmt::Debug for BundleFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BundleFile")
            .field("name", &self.name)
            .field("bytes", &self.contents.len())
            .field("secret", &self.secret)
            .finish()
    }
}

/// A cluster's signing CA for istiod: intermediate certificate and key, the chain above it up
/// to the root, and the roots the cluster trusts.
#[derive(Debug)]
pub struct CaCerts {
    ca_cert: Certificate,
    key: PrivateKey,
    chain: Vec<Certificate>,
    trust: TrustBundle,
}

impl CaCerts {
    /// Assembles a bundle. `chain` holds the issuers of `ca_cert` in order, ending with the
    /// root (or with a certificate issued by a root in `trust`).
    pub fn new(
        ca_cert: Certificate,
        key: PrivateKey,
        chain: Vec<Certificate>,
        trust: TrustBundle,
    ) -> CaCerts {
        CaCerts {
            ca_cert,
            key,
            chain,
            trust,
        }
    }

    /// The intermediate certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.ca_cert
    }

    /// The intermediate key.
    pub fn key(&self) -> &PrivateKey {
        &self.key
    }

    /// The issuers above the intermediate.
    pub fn chain(&self) -> &[Certificate] {
        &self.chain
    }

    /// The roots the cluster trusts.
    pub fn trust(&self) -> &TrustBundle {
        &self.trust
    }

    /// The bundle as [`BundleFiles`], the form [`crate::verify_bundle`] reads (the same as
    /// reading back a directory or Secret written from [`Self::files`]).
    pub fn bundle_files(&self, format: BundleFormat) -> BundleFiles {
        let mut out = BundleFiles::new();
        for f in self.files(format) {
            out.insert(f.name, f.contents.to_vec());
        }
        out
    }

    /// The files of the bundle in `format`.
    ///
    /// Istio form: `cert-chain.pem` is the intermediate followed by its chain up to the root,
    /// as Istio's Makefile writes it. TLS form: `tls.crt` is the intermediate followed by any
    /// non-root issuers (istiod appends `ca.crt` itself), `ca.crt` is the trust bundle.
    pub fn files(&self, format: BundleFormat) -> Vec<BundleFile> {
        let public = |name, text: String| BundleFile {
            name,
            contents: Zeroizing::new(text.into_bytes()),
            secret: false,
        };
        let key = |name| BundleFile {
            name,
            contents: Zeroizing::new(self.key.to_pem().as_bytes().to_vec()),
            secret: true,
        };
        let ca_pem = self.ca_cert.to_pem();
        match format {
            BundleFormat::Istio => {
                let mut chain = ca_pem.clone();
                chain.extend(self.chain.iter().map(Certificate::to_pem));
                vec![
                    public("ca-cert.pem", ca_pem),
                    key("ca-key.pem"),
                    public("cert-chain.pem", chain),
                    public("root-cert.pem", self.trust.to_pem()),
                ]
            }
            BundleFormat::Tls => {
                let mut crt = ca_pem;
                crt.extend(
                    self.chain
                        .iter()
                        .filter(|c| !c.is_self_signed())
                        .map(Certificate::to_pem),
                );
                vec![
                    public("tls.crt", crt),
                    key("tls.key"),
                    public("ca.crt", self.trust.to_pem()),
                ]
            }
        }
    }
}
