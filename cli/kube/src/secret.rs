//! The `cacerts` Secret: how a bundle is laid out in Kubernetes, and read back.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use meshtrust_ca::{BundleFiles, BundleFormat, BundleReport};
use zeroize::Zeroize;

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

/// The bundle files a Secret holds (only the keys istiod reads).
pub fn bundle_files(secret: &Secret) -> BundleFiles {
    let mut files = BundleFiles::new();
    let layouts = [BundleFormat::Istio, BundleFormat::Tls];
    let names: Vec<&str> = layouts
        .iter()
        .flat_map(|f| f.file_names().iter().copied())
        .collect();
    for (k, v) in secret.data.iter().flatten() {
        if names.contains(&k.as_str()) {
            files.insert(k.clone(), v.0.clone());
        }
    }
    files
}

/// A copy of `secret` under another name, for `--backup`: data, type and labels kept,
/// server-set metadata dropped, and marked as a backup so nothing mistakes it for `cacerts`.
pub fn backup_of(secret: &Secret, name: &str) -> Secret {
    let mut labels = secret.metadata.labels.clone().unwrap_or_default();
    labels.insert("meshtrust.io/backup-of".to_string(), CACERTS.to_string());
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: secret.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: secret.metadata.annotations.clone(),
            ..ObjectMeta::default()
        },
        type_: secret.type_.clone(),
        data: secret.data.clone(),
        ..Secret::default()
    }
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
