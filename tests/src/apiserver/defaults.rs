//! What the server fills in and checks on every object it stores: apiVersion and kind,
//! name and namespace against the URL, uid and timestamps, a Namespace's label, finalizer
//! and phase, a Secret's type and `stringData`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use super::meta;
use super::resources::Resource;
use super::status::ApiError;

/// A core-group (`v1`) kind.
pub(crate) fn is_core(r: &Resource, kind: &str) -> bool {
    r.group.is_empty() && r.kind == kind
}

/// Fills what the server sets on a new object, keeping anything already there (used as is
/// by `seed`): apiVersion, kind, uid, creationTimestamp, generation; a namespace's
/// `kubernetes.io/metadata.name` label, finalizer and `Active` phase; a Secret's type.
pub(crate) fn fill_new(resource: &Resource, mut obj: Value) -> Value {
    let map = obj.as_object_mut().expect("objects are maps");
    map.entry("apiVersion")
        .or_insert(json!(resource.api_version()));
    map.entry("kind").or_insert(json!(resource.kind));
    if is_core(resource, "Secret") {
        map.entry("type").or_insert(json!("Opaque"));
    }
    let name = meta::name(&obj).to_string();
    let m = meta::metadata_mut(&mut obj);
    m.entry("uid").or_insert_with(|| json!(meta::new_uid()));
    m.entry("creationTimestamp")
        .or_insert_with(|| json!(meta::now()));
    m.entry("generation").or_insert(json!(1));
    if is_core(resource, "Namespace") {
        normalise_namespace(&mut obj, &name);
        obj.as_object_mut()
            .expect("a map")
            .entry("status")
            .or_insert(json!({"phase": "Active"}));
    }
    obj
}

/// The `kubernetes.io/metadata.name` label and the `kubernetes` finalizer the server
/// keeps on every Namespace.
pub(crate) fn normalise_namespace(obj: &mut Value, name: &str) {
    let m = meta::metadata_mut(obj);
    let labels = m.entry("labels").or_insert(json!({}));
    labels["kubernetes.io/metadata.name"] = json!(name);
    if obj["spec"]["finalizers"].is_null() {
        obj["spec"] = json!({"finalizers": ["kubernetes"]});
    }
}

/// A Secret's `stringData` folded into `data`, and `data` checked to be base64.
pub(crate) fn normalise_secret(obj: &mut Value) -> Result<(), ApiError> {
    let Some(map) = obj.as_object_mut() else {
        return Ok(());
    };
    if let Some(Value::Object(string_data)) = map.remove("stringData") {
        let data = map.entry("data").or_insert(json!({}));
        for (k, v) in string_data {
            data[k.as_str()] = json!(BASE64.encode(v.as_str().unwrap_or_default()));
        }
    }
    for (k, v) in map
        .get("data")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let ok = v.as_str().is_some_and(|s| BASE64.decode(s).is_ok());
        if !ok {
            return Err(ApiError::bad_request(format!(
                "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data in data[{k:?}]"
            )));
        }
    }
    Ok(())
}

/// Checks `apiVersion`/`kind` (when given) and name/namespace against the URL, filling
/// them in when absent.
pub(crate) fn check_identity(
    resource: &Resource,
    obj: &mut Value,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Result<(), ApiError> {
    for (field, want) in [
        ("apiVersion", resource.api_version()),
        ("kind", resource.kind.clone()),
    ] {
        match obj.get(field).and_then(Value::as_str) {
            Some(got) if got != want => {
                return Err(ApiError::bad_request(format!(
                    "the {field} of the object ({got}) does not match the expected {field} ({want})"
                )));
            }
            _ => obj[field] = json!(want),
        }
    }
    let m = meta::metadata_mut(obj);
    if resource.namespaced {
        let url_ns = namespace.unwrap_or("");
        match m.get("namespace").and_then(Value::as_str).unwrap_or("") {
            "" => {
                m.insert("namespace".into(), json!(url_ns));
            }
            got if got != url_ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {}
        }
    } else {
        m.remove("namespace");
    }
    if let Some(url_name) = name {
        match m.get("name").and_then(Value::as_str).unwrap_or("") {
            "" => {
                m.insert("name".into(), json!(url_name));
            }
            got if got != url_name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({got}) does not match the name on the URL ({url_name})"
                )));
            }
            _ => {}
        }
    }
    Ok(())
}
