//! The `cacerts` Secret: how a bundle is laid out in Kubernetes, and read back.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use meshtrust_ca::{BundleFiles, BundleFormat, BundleReport};
use zeroize::{Zeroize, Zeroizing};

/// Name of the Secret istiod reads its signing CA from.
pub const CACERTS: &str = "cacerts";
/// Label marking what meshtrust manages.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "meshtrust");
/// Annotation: SHA-256 fingerprints of the roots in the bundle, comma-separated.
pub const ROOT_FINGERPRINTS: &str = "meshtrust.io/root-fingerprints";
/// Label: the first 32 hex digits of the anchor root's SHA-256, for selectors.
pub const ROOT_LABEL: &str = "meshtrust.io/root-sha256";
/// Annotation: serial of the intermediate.
pub const SERIAL: &str = "meshtrust.io/intermediate-serial";
/// Annotation: the intermediate's notAfter (RFC 3339).
pub const NOT_AFTER: &str = "meshtrust.io/not-after";

/// The Secret for a bundle (as files, with its verification report): Opaque with the four
/// istio files, or kubernetes.io/tls with `tls.crt`, `tls.key`, `ca.crt`. Never the
/// `istio-generated` key (it marks a self-signed CA secret).
pub fn cacerts_secret(namespace: &str, files: &BundleFiles, report: &BundleReport) -> Secret {
    let data: BTreeMap<String, ByteString> = files
        .names()
        .filter_map(|n| {
            files
                .get(n)
                .map(|v| (n.to_string(), ByteString(v.to_vec())))
        })
        .collect();
    let mut labels = BTreeMap::from([(MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string())]);
    if let Some(anchor) = &report.anchor_fingerprint {
        labels.insert(ROOT_LABEL.to_string(), root_label(anchor));
    }
    let mut annotations = BTreeMap::from([(
        ROOT_FINGERPRINTS.to_string(),
        report.root_fingerprints.join(","),
    )]);
    if let Some(ca) = &report.ca_cert {
        annotations.insert(SERIAL.to_string(), ca.serial.clone());
        annotations.insert(
            NOT_AFTER.to_string(),
            ca.not_after
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        );
    }
    Secret {
        metadata: ObjectMeta {
            name: Some(CACERTS.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        type_: Some(
            match report.format {
                BundleFormat::Istio => "Opaque",
                BundleFormat::Tls => "kubernetes.io/tls",
            }
            .to_string(),
        ),
        data: Some(data),
        ..Secret::default()
    }
}

/// A label value for a root fingerprint (`AB:CD:…` → `abcd…`, 32 hex digits).
pub fn root_label(fingerprint: &str) -> String {
    fingerprint
        .replace(':', "")
        .to_lowercase()
        .chars()
        .take(32)
        .collect()
}

/// A `cacerts` Secret as read from a cluster: its values moved into buffers zeroized on drop
/// (no copy stays in Kubernetes types), and the metadata a replace (its resourceVersion)
/// and a backup (type, labels, annotations) need. `Debug` shows the data's keys only.
pub struct ObservedSecret {
    type_: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    namespace: Option<String>,
    resource_version: Option<String>,
    data: BTreeMap<String, Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for ObservedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObservedSecret")
            .field("type", &self.type_)
            .field("data", &self.data.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ObservedSecret {
    /// Takes `secret` apart: its values are moved (not copied) into zeroizing buffers.
    pub fn from_secret(secret: Secret) -> ObservedSecret {
        let Secret {
            metadata,
            type_,
            data,
            ..
        } = secret;
        ObservedSecret {
            type_,
            labels: metadata.labels.unwrap_or_default(),
            annotations: metadata.annotations.unwrap_or_default(),
            namespace: metadata.namespace,
            resource_version: metadata.resource_version,
            data: data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, Zeroizing::new(v.0)))
                .collect(),
        }
    }

    /// The bundle files it holds (only the keys istiod reads).
    pub fn files(&self) -> BundleFiles {
        let mut files = BundleFiles::new();
        for (k, v) in &self.data {
            if is_bundle_file(k) {
                files.insert(k.clone(), v.to_vec());
            }
        }
        files
    }

    /// Whether meshtrust wrote it (it carries the managed-by label). A Secret someone else
    /// wrote is backed up before meshtrust replaces it.
    pub fn is_managed(&self) -> bool {
        self.labels.get(MANAGED_BY.0).map(String::as_str) == Some(MANAGED_BY.1)
    }

    /// One of its annotations.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }

    /// The resourceVersion it was read at: a replace is conditioned on it.
    pub fn resource_version(&self) -> Option<String> {
        self.resource_version.clone()
    }

    /// A copy under another name, for `--backup`: data, type, labels and annotations kept,
    /// server-set metadata dropped, and marked as a backup so nothing mistakes it for
    /// `cacerts`. The copy holds the key: scrub it ([`scrub`]) once written.
    pub fn backup(&self, name: &str) -> Secret {
        let mut labels = self.labels.clone();
        labels.insert("meshtrust.io/backup-of".to_string(), CACERTS.to_string());
        Secret {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: self.namespace.clone(),
                labels: Some(labels),
                annotations: Some(self.annotations.clone()).filter(|a| !a.is_empty()),
                ..ObjectMeta::default()
            },
            type_: self.type_.clone(),
            data: Some(
                self.data
                    .iter()
                    .map(|(k, v)| (k.clone(), ByteString(v.to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        }
    }
}

/// Whether `key` is one istiod reads (either layout).
fn is_bundle_file(key: &str) -> bool {
    [BundleFormat::Istio, BundleFormat::Tls]
        .iter()
        .any(|f| f.file_names().contains(&key))
}

/// The bundle files a Secret holds (only the keys istiod reads).
pub fn bundle_files(secret: &Secret) -> BundleFiles {
    let mut files = BundleFiles::new();
    for (k, v) in secret.data.iter().flatten() {
        if is_bundle_file(k) {
            files.insert(k.clone(), v.0.clone());
        }
    }
    files
}

/// Whether meshtrust wrote `secret` (it carries the managed-by label). A Secret someone else
/// wrote is backed up before meshtrust replaces it.
pub fn is_managed(secret: &Secret) -> bool {
    secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY.0))
        .map(String::as_str)
        == Some(MANAGED_BY.1)
}

/// Zeroizes every value of `secret`'s data (a private key, a kubeconfig's credentials)
/// before it is dropped: `ByteString` does not do that by itself.
pub fn scrub(secret: &mut Secret) {
    for value in secret.data.iter_mut().flat_map(|d| d.values_mut()) {
        value.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observed_secret_keeps_what_a_replace_and_a_backup_need() {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(CACERTS.into()),
                namespace: Some("istio-system".into()),
                resource_version: Some("42".into()),
                uid: Some("u-1".into()),
                labels: Some(BTreeMap::from([("team".into(), "mesh".into())])),
                annotations: Some(BTreeMap::from([("note".into(), "by hand".into())])),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".into()),
            data: Some(BTreeMap::from([
                ("ca-key.pem".to_string(), ByteString(b"KEY".to_vec())),
                ("extra".to_string(), ByteString(b"x".to_vec())),
            ])),
            ..Secret::default()
        };
        let observed = ObservedSecret::from_secret(secret.clone());
        assert!(!observed.is_managed());
        assert_eq!(observed.resource_version().as_deref(), Some("42"));
        let files = observed.files();
        assert_eq!(files.names().collect::<Vec<_>>(), ["ca-key.pem"]);
        assert_eq!(files.get("ca-key.pem"), Some(&b"KEY"[..]));
        let backup = observed.backup("cacerts-backup-1");
        assert_eq!(
            backup.data, secret.data,
            "every value, not only the bundle's"
        );
        assert_eq!(backup.type_, secret.type_);
        assert_eq!(backup.metadata.annotations, secret.metadata.annotations);
        let labels = backup.metadata.labels.unwrap();
        assert_eq!(labels["team"], "mesh");
        assert_eq!(labels["meshtrust.io/backup-of"], CACERTS);
        assert_eq!(backup.metadata.name.as_deref(), Some("cacerts-backup-1"));
        assert_eq!(backup.metadata.namespace.as_deref(), Some("istio-system"));
        assert_eq!(
            backup.metadata.resource_version, None,
            "server-set fields dropped"
        );
        assert_eq!(backup.metadata.uid, None);
        assert!(!format!("{observed:?}").contains("KEY"), "{observed:?}");
    }

    #[test]
    fn scrub_zeroizes_every_value_and_keeps_the_keys() {
        let mut secret = Secret {
            data: Some(BTreeMap::from([
                ("ca-key.pem".to_string(), ByteString(b"-----BEGIN".to_vec())),
                ("kubeconfig".to_string(), ByteString(b"token: x".to_vec())),
            ])),
            ..Secret::default()
        };
        scrub(&mut secret);
        let data = secret.data.unwrap();
        assert_eq!(data.len(), 2);
        assert!(data.values().all(|v| v.0.is_empty()), "{data:?}");
    }
}
