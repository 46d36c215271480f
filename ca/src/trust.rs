//! Trust bundles: the set of roots a cluster trusts (`root-cert.pem`, `ca.crt`).

use crate::cert::Certificate;
use crate::error::{Error, Result};

/// One or more root certificates, in file order. During a root rotation a bundle holds the
/// old and the new root; istiod only hot-reloads a new bundle that byte-contains the old one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustBundle {
    roots: Vec<Certificate>,
}

impl TrustBundle {
    /// A bundle of the given roots (at least one).
    pub fn new(roots: Vec<Certificate>) -> Result<TrustBundle> {
        if roots.is_empty() {
            return Err(Error::InvalidParameter {
                field: "trust bundle",
                reason: "a trust bundle needs at least one root certificate".to_string(),
            });
        }
        Ok(TrustBundle { roots })
    }

    /// A bundle of one root (cannot be empty, so cannot fail).
    pub fn of(root: Certificate) -> TrustBundle {
        TrustBundle { roots: vec![root] }
    }

    /// Parses a PEM file of roots; `name` is used in error messages.
    pub fn from_pem(name: &str, pem: &[u8]) -> Result<TrustBundle> {
        TrustBundle::new(Certificate::all_from_pem(name, pem)?)
    }

    /// The roots, in order.
    pub fn roots(&self) -> &[Certificate] {
        &self.roots
    }

    /// Concatenated PEM of the roots, in order.
    pub fn to_pem(&self) -> String {
        self.roots.iter().map(Certificate::to_pem).collect()
    }

    /// SHA-256 fingerprints of the roots, in order.
    pub fn fingerprints(&self) -> Vec<String> {
        self.roots.iter().map(Certificate::fingerprint).collect()
    }

    /// Whether the bundle holds a root with this DER.
    pub fn contains(&self, root: &Certificate) -> bool {
        self.roots.iter().any(|r| r == root)
    }

    /// Fingerprints of the roots both bundles trust.
    pub fn common_roots(&self, other: &TrustBundle) -> Vec<String> {
        self.roots
            .iter()
            .filter(|r| other.contains(r))
            .map(Certificate::fingerprint)
            .collect()
    }

    /// This bundle with `root` appended (unchanged if already present), so that the new PEM
    /// byte-contains the old one — the form istiod's multi-root reload accepts.
    pub fn with_root(&self, root: Certificate) -> TrustBundle {
        let mut roots = self.roots.clone();
        if !roots.contains(&root) {
            roots.push(root);
        }
        TrustBundle { roots }
    }
}

/// Whether one PEM text byte-contains the other, in either direction: istiod applies a
/// changed root bundle without restart only when this holds.
pub fn is_byte_superset(new_pem: &[u8], old_pem: &[u8]) -> bool {
    contains_slice(new_pem, old_pem) || contains_slice(old_pem, new_pem)
}

fn contains_slice(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}
