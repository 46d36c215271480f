//! What a cluster holds, as far as rotation cares, and the pairwise trust checks over it.

use std::fmt;

use crate::bundle::{BundleFiles, BundleFormat};
use crate::cert::{Certificate, chains_to};
use crate::cluster::ClusterName;
use crate::error::{Error, Result};
use crate::trust::TrustBundle;

/// What a cluster's `cacerts` holds, as far as rotation cares: its trust file, byte for byte,
/// and the CA certificate with its chain.
#[derive(Clone)]
pub struct ClusterTrust {
    cluster: ClusterName,
    format: BundleFormat,
    trust_pem: Vec<u8>,
    trust: TrustBundle,
    ca_cert: Certificate,
    chain: Vec<Certificate>,
}

impl ClusterTrust {
    /// Reads a cluster's bundle in the form istiod would read (see [`BundleFormat::detect`]).
    /// The trust file and CA certificate are required; a missing `cert-chain.pem` is read as
    /// an empty chain.
    pub fn from_bundle(cluster: ClusterName, files: &BundleFiles) -> Result<ClusterTrust> {
        let format = BundleFormat::detect(files.names());
        let name = |file: &str| format!("{cluster}/{file}");
        let read = |file: &str| {
            files.get(file).ok_or_else(|| Error::Pem {
                name: name(file),
                expected: "certificate",
                reason: "the file is missing; reissue the bundle".to_string(),
            })
        };
        let trust_pem = read(format.trust_file())?.to_vec();
        let trust = TrustBundle::from_pem(&name(format.trust_file()), &trust_pem)?;
        let certs =
            Certificate::all_from_pem(&name(format.cert_file()), read(format.cert_file())?)?;
        let chain = match (format, files.get(format.chain_file())) {
            (BundleFormat::Istio, Some(pem)) => {
                Certificate::all_from_pem(&name(format.chain_file()), pem)?
            }
            (BundleFormat::Istio, None) => Vec::new(),
            (BundleFormat::Tls, _) => certs.clone(),
        };
        Ok(ClusterTrust {
            cluster,
            format,
            trust_pem,
            trust,
            ca_cert: certs[0].clone(),
            chain,
        })
    }

    /// The cluster.
    pub fn cluster(&self) -> &ClusterName {
        &self.cluster
    }

    /// The form the bundle is in.
    pub fn format(&self) -> BundleFormat {
        self.format
    }

    /// The trust file (`root-cert.pem` or `ca.crt`) exactly as held.
    pub fn trust_pem(&self) -> &[u8] {
        &self.trust_pem
    }

    /// The roots of the trust file.
    pub fn trust(&self) -> &TrustBundle {
        &self.trust
    }

    /// The CA certificate (`ca-cert.pem` or the first of `tls.crt`).
    pub fn ca_cert(&self) -> &Certificate {
        &self.ca_cert
    }

    /// Whether the CA certificate leads to `root`, directly or through the bundle's chain.
    pub fn chains_to(&self, root: &Certificate) -> bool {
        chains_to(&self.ca_cert, &self.chain, root)
    }
}

impl fmt::Debug for ClusterTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterTrust")
            .field("cluster", &self.cluster.as_str())
            .field("format", &self.format)
            .field("trust", &self.trust.roots())
            .field("ca_cert", &self.ca_cert)
            .finish_non_exhaustive()
    }
}

/// Every pair of trust bundles shares at least one root; otherwise the first pair `(i, j)`,
/// `i < j`, that does not.
pub fn shared_root_pairs_ok(trusts: &[TrustBundle]) -> std::result::Result<(), (usize, usize)> {
    for (i, a) in trusts.iter().enumerate() {
        for (j, b) in trusts.iter().enumerate().skip(i + 1) {
            if !a.roots().iter().any(|r| b.contains(r)) {
                return Err((i, j));
            }
        }
    }
    Ok(())
}

/// Every cluster trusts the root every cluster's intermediate (its own included) chains to,
/// so all workloads verify each other; otherwise the first `(i, j)` where cluster `i`
/// cannot verify cluster `j`'s workloads.
pub fn mutual_trust_ok(clusters: &[ClusterTrust]) -> std::result::Result<(), (usize, usize)> {
    let mut roots: Vec<&Certificate> = Vec::new();
    for r in clusters.iter().flat_map(|c| c.trust.roots()) {
        if !roots.contains(&r) {
            roots.push(r);
        }
    }
    // Signatures are checked once per (cluster, distinct root), not per pair.
    let anchors: Vec<Vec<&Certificate>> = clusters
        .iter()
        .map(|c| roots.iter().copied().filter(|r| c.chains_to(r)).collect())
        .collect();
    for (i, verifier) in clusters.iter().enumerate() {
        for (j, anchored) in anchors.iter().enumerate() {
            if !anchored.iter().any(|r| verifier.trust.contains(r)) {
                return Err((i, j));
            }
        }
    }
    Ok(())
}
