//! Request bodies and the non-apply patch types.
//!
//! - `application/merge-patch+json`: JSON merge patch (RFC 7386).
//! - `application/strategic-merge-patch+json`: treated as a JSON merge patch. Simplified:
//!   lists are replaced whole, never merged by key, and `$patch`/`$retainKeys`/
//!   `$setElementOrder` directives are dropped.
//! - `application/json-patch+json`: JSON patch (RFC 6902).
//! - `application/apply-patch+yaml`: server-side apply, see `apply.rs`. The body may be JSON
//!   (what kube-rs and kubectl send) or YAML.

use serde_json::Value;

use super::status::ApiError;

/// The kind of a PATCH request, from its `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatchKind {
    Merge,
    StrategicMerge,
    Json,
    Apply,
}

/// The media type without parameters, lower-cased.
fn media_type(content_type: Option<&str>) -> String {
    content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

impl PatchKind {
    /// 415 UnsupportedMediaType for anything else.
    pub fn from_content_type(content_type: Option<&str>) -> Result<Self, ApiError> {
        match media_type(content_type).as_str() {
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchKind::StrategicMerge),
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/apply-patch+yaml" => Ok(PatchKind::Apply),
            other => Err(ApiError::new(
                415,
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other:?})"
                ),
            )),
        }
    }
}

/// The JSON body of a POST or PUT: `application/json` only (no protobuf, no YAML).
pub(crate) fn object_body(content_type: Option<&str>, body: &[u8]) -> Result<Value, ApiError> {
    let media = media_type(content_type);
    if !(media.is_empty() || media == "application/json" || media == "*/*") {
        return Err(ApiError::new(
            415,
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json (got {media:?})"
            ),
        ));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    Ok(value)
}

/// The body of a PATCH: JSON, or for apply also YAML.
pub(crate) fn patch_body(kind: PatchKind, body: &[u8]) -> Result<Value, ApiError> {
    let parsed = serde_json::from_slice::<Value>(body);
    let value = match (parsed, kind) {
        (Ok(v), _) => v,
        (Err(_), PatchKind::Apply) => {
            let text = std::str::from_utf8(body)
                .map_err(|e| ApiError::bad_request(format!("the apply body is not UTF-8: {e}")))?;
            serde_saphyr::from_str::<Value>(text).map_err(|e| {
                ApiError::bad_request(format!("the apply body is neither JSON nor YAML: {e}"))
            })?
        }
        (Err(e), _) => {
            return Err(ApiError::bad_request(format!(
                "the patch is not valid JSON: {e}"
            )));
        }
    };
    let shape_ok = match kind {
        PatchKind::Json => value.is_array(),
        _ => value.is_object(),
    };
    if !shape_ok {
        return Err(ApiError::bad_request(
            "the patch has the wrong shape (a JSON patch is an array, other patches an object)",
        ));
    }
    Ok(value)
}

/// Drops strategic-merge directives (`$patch`, `$retainKeys`, `$setElementOrder/…`, …).
fn drop_directives(v: &mut Value) {
    if let Value::Object(map) = v {
        map.retain(|k, _| !k.starts_with('$'));
        map.values_mut().for_each(drop_directives);
    }
}

/// `target` with a merge, strategic-merge or JSON patch applied.
pub(crate) fn apply_patch(
    target: &Value,
    kind: PatchKind,
    patch: &Value,
) -> Result<Value, ApiError> {
    let mut out = target.clone();
    match kind {
        PatchKind::Merge => json_patch::merge(&mut out, patch),
        PatchKind::StrategicMerge => {
            let mut patch = patch.clone();
            drop_directives(&mut patch);
            json_patch::merge(&mut out, &patch);
        }
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut out, &ops).map_err(|e| {
                ApiError::new(422, format!("the JSON patch could not be applied: {e}"))
            })?;
        }
        PatchKind::Apply => unreachable!("server-side apply is handled by apply.rs"),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types_select_the_patch_kind() {
        for (ct, kind) in [
            ("application/merge-patch+json", PatchKind::Merge),
            (
                "application/strategic-merge-patch+json; charset=utf-8",
                PatchKind::StrategicMerge,
            ),
            ("application/json-patch+json", PatchKind::Json),
            ("application/apply-patch+yaml", PatchKind::Apply),
        ] {
            assert_eq!(PatchKind::from_content_type(Some(ct)).unwrap(), kind);
        }
        assert_eq!(
            PatchKind::from_content_type(Some("application/json"))
                .unwrap_err()
                .code,
            415
        );
    }

    #[test]
    fn merge_patches_follow_rfc_7386() {
        let target = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "data": {"k": "v"}});
        let patch = json!({"metadata": {"labels": {"a": null, "c": "3"}}, "data": ["x"]});
        let out = apply_patch(&target, PatchKind::Merge, &patch).unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "data": ["x"]})
        );
    }

    #[test]
    fn strategic_directives_are_dropped_and_json_patches_applied() {
        let target = json!({"spec": {"replicas": 1}});
        let smp = json!({"spec": {"replicas": 2, "$retainKeys": ["replicas"]}});
        let out = apply_patch(&target, PatchKind::StrategicMerge, &smp).unwrap();
        assert_eq!(out, json!({"spec": {"replicas": 2}}));
        let jp = json!([{"op": "test", "path": "/spec/replicas", "value": 1},
                        {"op": "replace", "path": "/spec/replicas", "value": 3}]);
        assert_eq!(
            apply_patch(&target, PatchKind::Json, &jp).unwrap()["spec"]["replicas"],
            3
        );
        let failing = json!([{"op": "test", "path": "/spec/replicas", "value": 9}]);
        assert_eq!(
            apply_patch(&target, PatchKind::Json, &failing)
                .unwrap_err()
                .code,
            422
        );
    }

    #[test]
    fn apply_bodies_may_be_yaml() {
        let yaml = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: \"1\"\n";
        let v = patch_body(PatchKind::Apply, yaml).unwrap();
        assert_eq!(v["data"]["a"], "1");
        assert_eq!(patch_body(PatchKind::Merge, yaml).unwrap_err().code, 400);
    }
}
