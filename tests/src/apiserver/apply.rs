//! A simplified server-side apply: field ownership per manager in `metadata.managedFields`.
//!
//! What it does like the real server:
//! - the fields an applied configuration sets are recorded, in the `FieldsV1` format
//!   (`{"f:metadata":{"f:labels":{"f:app":{}}}}`), in a `managedFields` entry with the
//!   manager's name, `operation: Apply` and the subresource;
//! - a field the manager applied before but omits now is removed, unless another applier
//!   also owns it;
//! - a field another applier owns with a different value is a 409 `Conflict` naming the
//!   field and manager, unless `force=true`, which takes the field over.
//!
//! Simplified: every list is atomic (owned and replaced whole; no merging of associative
//! lists by key), and only `Apply` operations own fields: creates, updates and non-apply
//! patches neither record nor take over ownership.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::meta;
use super::status::ApiError;

/// A field path (`["metadata", "labels", "app"]`).
type Path = Vec<String>;
/// The leaf fields a manager owns.
type FieldSet = BTreeSet<Path>;

/// `metadata` fields that identify or describe the object rather than configure it: never
/// owned.
const UNOWNED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "generateName",
];

fn collect(v: &Value, prefix: &mut Path, out: &mut FieldSet) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                let skip = match prefix.as_slice() {
                    [] => key == "apiVersion" || key == "kind",
                    [m] if m == "metadata" => UNOWNED_METADATA.contains(&key.as_str()),
                    _ => false,
                };
                if !skip {
                    prefix.push(key.clone());
                    collect(child, prefix, out);
                    prefix.pop();
                }
            }
        }
        Value::Null => {}
        _ if !prefix.is_empty() => {
            out.insert(prefix.clone());
        }
        _ => {}
    }
}

/// The leaf fields `applied` sets (maps are walked, lists and scalars are leaves, `null`
/// sets nothing).
fn field_set(applied: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    collect(applied, &mut Vec::new(), &mut out);
    out
}

/// `FieldsV1` JSON for a set of fields.
fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for key in path {
            node = node
                .entry(format!("f:{key}"))
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("built as maps");
        }
    }
    Value::Object(root)
}

fn from_fields_v1_into(v: &Value, prefix: &mut Path, out: &mut FieldSet) {
    let children: Vec<(&str, &Value)> = v
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, c)| k.strip_prefix("f:").map(|k| (k, c)))
        .collect();
    if children.is_empty() {
        if !prefix.is_empty() {
            out.insert(prefix.clone());
        }
        return;
    }
    for (key, child) in children {
        prefix.push(key.to_string());
        from_fields_v1_into(child, prefix, out);
        prefix.pop();
    }
}

/// The fields a `FieldsV1` document names (`k:`/`v:`/`i:` keys count as their atomic
/// parent).
fn from_fields_v1(v: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    from_fields_v1_into(v, &mut Vec::new(), &mut out);
    out
}

fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, k| v.get(k))
}

/// Removes the field at `path`, then any map the removal left empty (below the top level,
/// as Go's `omitempty` drops an empty `labels` map); returns whether `node` is now empty.
fn remove_at(node: &mut Value, path: &[String], depth: usize) -> bool {
    let Some(map) = node.as_object_mut() else {
        return false;
    };
    match path {
        [] => {}
        [last] => {
            map.remove(last);
        }
        [first, rest @ ..] => {
            if let Some(child) = map.get_mut(first)
                && remove_at(child, rest, depth + 1)
                && depth >= 1
            {
                map.remove(first);
            }
        }
    }
    map.is_empty()
}

/// Deep merge for apply: maps merge key by key, everything else (lists, scalars) replaces;
/// `null` in the applied configuration leaves the field alone.
fn merge_into(target: &mut Value, applied: &Value) {
    match (target, applied) {
        (Value::Object(t), Value::Object(a)) => {
            for (k, v) in a {
                if v.is_null() {
                    continue;
                }
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        merge_into(existing, v)
                    }
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, a) => *t = a.clone(),
    }
}

fn manager_of(entry: &Value) -> &str {
    entry["manager"].as_str().unwrap_or("")
}

fn is_apply_on(entry: &Value, subresource: &str) -> bool {
    entry["operation"] == "Apply" && entry["subresource"].as_str().unwrap_or("") == subresource
}

/// Who applies, how, where.
pub(crate) struct Applier<'a> {
    pub manager: &'a str,
    pub force: bool,
    /// `""` for the main resource, `"status"`.
    pub subresource: &'a str,
    pub api_version: String,
}

/// `existing` (or an empty object) with `applied` merged in, fields the manager dropped
/// removed, and `metadata.managedFields` updated; or 409 Conflict.
pub(crate) fn merge_applied(
    existing: Option<&Value>,
    applied: &Value,
    who: &Applier<'_>,
) -> Result<Value, ApiError> {
    let mut applied = applied.clone();
    meta::metadata_mut(&mut applied).remove("managedFields");
    let applied_set = field_set(&applied);
    let mut obj = existing.cloned().unwrap_or_else(|| json!({}));
    let mut entries: Vec<Value> = obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();

    let mut conflicts = Vec::new();
    for entry in entries.iter_mut() {
        if manager_of(entry) == who.manager || !is_apply_on(entry, who.subresource) {
            continue;
        }
        let mut theirs = from_fields_v1(&entry["fieldsV1"]);
        let clashing: Vec<Path> = theirs
            .intersection(&applied_set)
            .filter(|p| value_at(&obj, p) != value_at(&applied, p))
            .cloned()
            .collect();
        if who.force {
            clashing.iter().for_each(|p| {
                theirs.remove(p);
            });
            entry["fieldsV1"] = to_fields_v1(&theirs);
        } else {
            conflicts.extend(
                clashing
                    .into_iter()
                    .map(|p| (manager_of(entry).to_string(), p)),
            );
        }
    }
    if !conflicts.is_empty() {
        return Err(conflict_error(&conflicts, &who.api_version));
    }
    entries.retain(|e| !(e["operation"] == "Apply" && from_fields_v1(&e["fieldsV1"]).is_empty()));

    let (mine, others): (Vec<&Value>, Vec<&Value>) = entries
        .iter()
        .filter(|e| e["subresource"].as_str().unwrap_or("") == who.subresource)
        .partition(|e| manager_of(e) == who.manager && e["operation"] == "Apply");
    let owned_by_others: FieldSet = others
        .iter()
        .flat_map(|e| from_fields_v1(&e["fieldsV1"]))
        .collect();
    let previously: FieldSet = mine
        .iter()
        .flat_map(|e| from_fields_v1(&e["fieldsV1"]))
        .collect();
    for path in previously
        .difference(&applied_set)
        .filter(|p| !owned_by_others.contains(*p))
    {
        remove_at(&mut obj, path, 0);
    }
    merge_into(&mut obj, &applied);

    entries.retain(|e| !(manager_of(e) == who.manager && is_apply_on(e, who.subresource)));
    let mut entry = json!({
        "manager": who.manager,
        "operation": "Apply",
        "apiVersion": who.api_version,
        "time": meta::now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": to_fields_v1(&applied_set),
    });
    if !who.subresource.is_empty() {
        entry["subresource"] = json!(who.subresource);
    }
    entries.push(entry);
    meta::metadata_mut(&mut obj).insert("managedFields".into(), Value::Array(entries));
    Ok(obj)
}

fn conflict_error(conflicts: &[(String, Path)], api_version: &str) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(manager, path)| {
            json!({"reason": "FieldManagerConflict",
                   "message": format!("conflict with \"{manager}\" using {api_version}"),
                   "field": format!(".{}", path.join("."))})
        })
        .collect();
    let listed: Vec<String> = causes
        .iter()
        .map(|c| {
            format!(
                "{}: {}",
                c["message"].as_str().unwrap_or(""),
                c["field"].as_str().unwrap_or("")
            )
        })
        .collect();
    let n = conflicts.len();
    ApiError {
        details: json!({"causes": causes}),
        ..ApiError::new(
            409,
            format!(
                "Apply failed with {n} conflict{}: {}",
                if n == 1 { "" } else { "s" },
                listed.join("\n")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applier(manager: &str, force: bool) -> Applier<'_> {
        Applier {
            manager,
            force,
            subresource: "",
            api_version: "v1".into(),
        }
    }

    fn cm(labels: Value, data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "x", "namespace": "default", "labels": labels}, "data": data})
    }

    #[test]
    fn owned_fields_are_recorded_in_fields_v1() {
        let obj = merge_applied(
            None,
            &cm(json!({"a": "1"}), json!({"k": "v"})),
            &applier("m", false),
        )
        .unwrap();
        let entry = &obj["metadata"]["managedFields"][0];
        assert_eq!(entry["manager"], "m");
        assert_eq!(entry["operation"], "Apply");
        assert_eq!(
            entry["fieldsV1"],
            json!({"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:a": {}}}})
        );
        assert_eq!(from_fields_v1(&entry["fieldsV1"]).len(), 2);
    }

    #[test]
    fn a_field_the_manager_drops_is_removed_unless_another_applier_owns_it() {
        let first = cm(json!({"a": "1", "b": "2"}), json!({"k": "v"}));
        let obj = merge_applied(None, &first, &applier("one", false)).unwrap();
        let obj = merge_applied(
            Some(&obj),
            &cm(json!({"b": "2"}), json!(null)),
            &applier("two", false),
        )
        .unwrap();
        let obj = merge_applied(
            Some(&obj),
            &cm(json!(null), json!({"k": "v"})),
            &applier("one", false),
        )
        .unwrap();
        assert_eq!(
            obj["metadata"]["labels"],
            json!({"b": "2"}),
            "a dropped, b kept by two"
        );
        assert_eq!(obj["data"], json!({"k": "v"}));
        let obj = merge_applied(
            Some(&obj),
            &cm(json!(null), json!({"k": "v"})),
            &applier("two", false),
        )
        .unwrap();
        assert!(obj["metadata"].get("labels").is_none(), "{obj}");
    }

    #[test]
    fn a_different_value_owned_by_another_applier_conflicts_unless_forced() {
        let obj = merge_applied(
            None,
            &cm(json!({"a": "1"}), json!(null)),
            &applier("one", false),
        )
        .unwrap();
        let same = merge_applied(
            Some(&obj),
            &cm(json!({"a": "1"}), json!(null)),
            &applier("two", false),
        );
        assert!(same.is_ok(), "same value: shared ownership");
        let e = merge_applied(
            Some(&obj),
            &cm(json!({"a": "2"}), json!(null)),
            &applier("two", false),
        )
        .unwrap_err();
        assert_eq!((e.code, e.reason), (409, "Conflict"));
        assert!(e.message.contains("conflict with \"one\""), "{}", e.message);
        assert_eq!(e.details["causes"][0]["field"], ".metadata.labels.a");
        let forced = merge_applied(
            Some(&obj),
            &cm(json!({"a": "2"}), json!(null)),
            &applier("two", true),
        )
        .unwrap();
        assert_eq!(forced["metadata"]["labels"]["a"], "2");
        let managers: Vec<&str> = forced["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(manager_of)
            .collect();
        assert_eq!(managers, ["two"], "one lost its only field");
    }
}
