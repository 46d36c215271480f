//! Object metadata: reading names and labels, stamping uid and timestamps, validating names.

use serde_json::{Map, Value};

use super::resources::Resource;
use super::status::ApiError;

/// `metadata.name`, or `""`.
pub(crate) fn name(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or("")
}

/// `metadata.namespace`, or `""`.
pub(crate) fn namespace(obj: &Value) -> &str {
    obj["metadata"]["namespace"].as_str().unwrap_or("")
}

/// `metadata.resourceVersion`, or `""`.
pub(crate) fn resource_version(obj: &Value) -> &str {
    obj["metadata"]["resourceVersion"].as_str().unwrap_or("")
}

/// `metadata.labels` (empty when absent).
pub(crate) fn labels(obj: &Value) -> Map<String, Value> {
    obj["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default()
}

/// `metadata`, created as an empty map when missing or not a map.
pub(crate) fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let meta = obj
        .as_object_mut()
        .expect("an object")
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().expect("a map")
}

/// The current time as the API server writes timestamps (RFC 3339, whole seconds, UTC).
pub(crate) fn now() -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc()
        .format(format)
        .expect("formatting a UTC time cannot fail")
}

/// A random version-4 UUID, as `metadata.uid`.
pub(crate) fn new_uid() -> String {
    let (a, b) = (fastrand::u64(..), fastrand::u64(..));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

/// `generateName` plus five random characters from the server's alphabet.
pub(crate) fn generated_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let suffix: String = (0..5)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

/// Checks `name` as the server does: a DNS-1123 label for namespaces, a DNS-1123
/// subdomain for everything else.
pub(crate) fn validate_name(resource: &Resource, name: &str) -> Result<(), ApiError> {
    let is_namespace = resource.group.is_empty() && resource.plural == "namespaces";
    let (max, dots, what) = if is_namespace {
        (63, false, "a lowercase RFC 1123 label")
    } else {
        (253, true, "a lowercase RFC 1123 subdomain")
    };
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let ok = !name.is_empty()
        && name.len() <= max
        && name.starts_with(alnum)
        && name.ends_with(alnum)
        && name
            .chars()
            .all(|c| alnum(c) || c == '-' || (dots && c == '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            resource,
            name,
            "metadata.name",
            &format!(
                "Invalid value: \"{name}\": must be {what} (lowercase alphanumerics and '-'{}, \
                 starting and ending with an alphanumeric, at most {max} characters)",
                if dots { ", '.'" } else { "" }
            ),
        ))
    }
}

/// Removes `metadata.resourceVersion` and every `managedFields[].time`: what two versions of
/// an object are compared without, to tell a no-op write.
pub(crate) fn without_volatile_fields(obj: &Value) -> Value {
    let mut obj = obj.clone();
    let meta = metadata_mut(&mut obj);
    meta.remove("resourceVersion");
    if let Some(Value::Array(entries)) = meta.get_mut("managedFields") {
        for entry in entries {
            if let Some(e) = entry.as_object_mut() {
                e.remove("time");
            }
        }
    }
    obj
}

/// Everything but `metadata` and `status`: a change here bumps `metadata.generation`.
pub(crate) fn generation_relevant(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(map) = obj.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::Registry;

    #[test]
    fn names_are_validated_like_dns_names() {
        let registry = Registry::default();
        let secret = registry.get(registry.by_kind("v1", "Secret").unwrap());
        let ns = registry.get(registry.by_kind("v1", "Namespace").unwrap());
        assert!(validate_name(secret, "cacerts.v1-backup").is_ok());
        assert!(validate_name(ns, "istio-system").is_ok());
        for bad in ["", "Caps", "-lead", "trail-", "under_score"] {
            let e = validate_name(secret, bad).unwrap_err();
            assert_eq!((e.code, e.reason), (422, "Invalid"), "{bad}");
        }
        assert!(validate_name(ns, "with.dot").is_err());
    }

    #[test]
    fn uids_and_timestamps_have_the_servers_shape() {
        let uid = new_uid();
        assert_eq!(uid.len(), 36);
        assert_eq!(uid.as_bytes()[14], b'4');
        assert_ne!(uid, new_uid());
        let t = now();
        assert_eq!((t.len(), &t[10..11], &t[19..]), (20, "T", "Z"), "{t}");
        assert!(generated_name("backup-").starts_with("backup-"));
        assert_eq!(generated_name("x-").len(), 7);
    }
}
