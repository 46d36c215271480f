//! What the cluster's `cacerts` and pending Secrets hold, read into keys and certificates.

use std::collections::BTreeMap;

use meshtrust_ca::{
    BundleFiles, BundleFormat, Certificate, PrivateKey, TrustBundle, VerifyOptions, sha256_hex,
    verify_bundle,
};
use meshtrust_issuer::server::wire;
use meshtrust_kube::ObservedSecret;
use time::OffsetDateTime;

/// Annotation of the pending Secret: `enroll`, or `renew:<serial it replaces>`.
pub const PENDING_FOR: &str = "meshtrust.io/pending-for";

/// What `cacerts` holds.
#[derive(Debug)]
pub enum Held {
    /// No `cacerts`.
    Absent,
    /// A bundle istiod accepts now, with its key.
    Usable(Box<Bundle>),
    /// A `cacerts` that cannot be renewed from: partial, invalid, expired.
    Unusable {
        /// Whether meshtrust wrote it.
        managed: bool,
        /// What is wrong with it.
        reason: String,
    },
}

/// A usable bundle. (`Debug` shows the key's fingerprint only.)
#[derive(Debug)]
pub struct Bundle {
    /// The intermediate.
    pub certificate: Certificate,
    /// Its key.
    pub key: PrivateKey,
    /// Fingerprints of the roots in `root-cert.pem` (lowercase hex, as the service's).
    pub roots: Vec<String>,
    /// Whether meshtrust wrote it.
    pub managed: bool,
    /// Its layout.
    pub format: BundleFormat,
    /// Every file, as the Secret holds it (zeroized on drop; `Debug` shows names only).
    pub files: BundleFiles,
}

impl Bundle {
    /// The intermediate's serial, lowercase hex.
    pub fn serial(&self) -> String {
        wire::serial(&self.certificate)
    }

    /// The trust file, byte for byte.
    pub fn trust_pem(&self) -> &[u8] {
        self.files.get(self.format.trust_file()).unwrap_or_default()
    }

    /// Every file but the key, as text: what the report shows the service.
    pub fn public_files(&self) -> BTreeMap<String, String> {
        self.files
            .names()
            .filter(|name| *name != self.format.key_file())
            .filter_map(|name| {
                let text = std::str::from_utf8(self.files.get(name)?).ok()?;
                Some((name.to_string(), text.to_string()))
            })
            .collect()
    }
}

impl Held {
    /// Reads `cacerts` as checked at `now`.
    pub fn read(secret: Option<&ObservedSecret>, now: OffsetDateTime) -> Held {
        let Some(secret) = secret else {
            return Held::Absent;
        };
        let managed = secret.is_managed();
        let files = secret.files();
        match usable(&files, now) {
            Ok((certificate, key, roots, format)) => Held::Usable(Box::new(Bundle {
                certificate,
                key,
                roots,
                managed,
                format,
                files,
            })),
            Err(reason) => Held::Unusable { managed, reason },
        }
    }

    /// The usable bundle, if any.
    pub fn bundle(&self) -> Option<&Bundle> {
        match self {
            Held::Usable(bundle) => Some(bundle),
            Held::Absent | Held::Unusable { .. } => None,
        }
    }
}

type Parts = (Certificate, PrivateKey, Vec<String>, BundleFormat);

fn usable(files: &BundleFiles, now: OffsetDateTime) -> Result<Parts, String> {
    let report = verify_bundle(files, &VerifyOptions::at(now));
    if let Some(first) = report
        .findings
        .iter()
        .find(|f| f.severity == meshtrust_ca::Severity::Error)
    {
        return Err(first.message.clone());
    }
    let format = report.format;
    let part = |name: &str| files.get(name).ok_or_else(|| format!("{name} is missing"));
    let certificate = Certificate::all_from_pem(format.cert_file(), part(format.cert_file())?)
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or_else(|| format!("{} holds no certificate", format.cert_file()))?;
    let key = PrivateKey::from_pem(format.key_file(), part(format.key_file())?)
        .map_err(|e| e.to_string())?;
    let trust = TrustBundle::from_pem(format.trust_file(), part(format.trust_file())?)
        .map_err(|e| e.to_string())?;
    Ok((certificate, key, wire::fingerprints(&trust), format))
}

/// A key kept between its making and `cacerts` holding it.
#[derive(Debug)]
pub struct Pending {
    /// The key.
    pub key: PrivateKey,
    /// What it was made for.
    pub purpose: Purpose,
}

/// Why a new key was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A first enrollment (or a new one, replacing what `cacerts` holds).
    Enroll,
    /// The renewal of the intermediate with this serial.
    Renew {
        /// The serial it replaces.
        replaces: String,
    },
}

impl Purpose {
    /// The value of [`PENDING_FOR`].
    pub fn annotation(&self) -> String {
        match self {
            Purpose::Enroll => "enroll".to_string(),
            Purpose::Renew { replaces } => format!("renew:{replaces}"),
        }
    }

    fn parse(text: &str) -> Option<Purpose> {
        match text.split_once(':') {
            None if text == "enroll" => Some(Purpose::Enroll),
            Some(("renew", serial)) if !serial.is_empty() => Some(Purpose::Renew {
                replaces: serial.to_string(),
            }),
            _ => None,
        }
    }
}

impl Pending {
    /// Reads the pending Secret; `None` if it holds no key or no purpose the agent wrote
    /// (it is then dropped and a new key made).
    pub fn read(secret: &ObservedSecret) -> Option<Pending> {
        let purpose = Purpose::parse(secret.annotation(PENDING_FOR)?)?;
        let files = secret.files();
        let key = PrivateKey::from_pem("pending key", files.get("ca-key.pem")?).ok()?;
        Some(Pending { key, purpose })
    }
}

/// Whether `certificate` is for `key`.
pub fn same_key(certificate: &Certificate, key: &PrivateKey) -> bool {
    sha256_hex(&certificate.public_key_raw()) == key.fingerprint()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_purpose_reads_back_as_written_and_anything_else_is_no_purpose() {
        for purpose in [
            Purpose::Enroll,
            Purpose::Renew {
                replaces: "0a1b".into(),
            },
        ] {
            assert_eq!(Purpose::parse(&purpose.annotation()), Some(purpose));
        }
        for text in ["", "renew:", "renew", "enroll:x", "other:1"] {
            assert_eq!(Purpose::parse(text), None, "{text:?}");
        }
    }
}
