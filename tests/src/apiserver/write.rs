//! Writes — create, replace, patch, apply, delete — with the real server's checks and
//! bookkeeping: preconditions, immutable metadata, `generation`, the `/status` split,
//! finalizers, no-op detection, `dryRun`.

use serde_json::{Value, json};

use super::apply::{Applier, merge_applied};
use super::defaults::{check_identity, fill_new, is_core, normalise_namespace, normalise_secret};
use super::meta;
use super::patch::{PatchKind, apply_patch};
use super::resources::{Resource, ResourceId};
use super::status::ApiError;
use super::store::Store;

/// Query parameters every write accepts.
#[derive(Clone, Debug, Default)]
pub(crate) struct WriteOptions {
    /// `dryRun=All`: validate and answer, store nothing.
    pub dry_run: bool,
    pub field_manager: Option<String>,
    pub force: bool,
}

/// Which object a write addresses.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target<'a> {
    pub id: ResourceId,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    /// The `/status` subresource.
    pub status: bool,
}

/// POST: a new object (201), or AlreadyExists / namespace NotFound / Invalid.
pub(crate) fn create(
    store: &mut Store,
    id: ResourceId,
    namespace: Option<&str>,
    mut obj: Value,
    opts: &WriteOptions,
) -> Result<Value, ApiError> {
    let resource = store.registry.get(id).clone();
    check_identity(&resource, &mut obj, namespace, None)?;
    let m = meta::metadata_mut(&mut obj);
    if m.get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        match m.get("generateName").and_then(Value::as_str) {
            Some(prefix) if !prefix.is_empty() => {
                let name = meta::generated_name(prefix);
                m.insert("name".into(), json!(name));
            }
            _ => {
                return Err(ApiError::invalid(
                    &resource,
                    "",
                    "metadata.name",
                    "Required value: name or generateName is required",
                ));
            }
        }
    }
    if !m
        .get("resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        return Err(ApiError::new(
            500,
            "resourceVersion should not be set on objects to be created",
        ));
    }
    for server_set in [
        "uid",
        "creationTimestamp",
        "generation",
        "deletionTimestamp",
        "selfLink",
    ] {
        m.remove(server_set);
    }
    let name = meta::name(&obj).to_string();
    meta::validate_name(&resource, &name)?;
    store.require_namespace(id, namespace.unwrap_or(""))?;
    if store.get(id, namespace, &name).is_some() {
        return Err(ApiError::already_exists(&resource, &name));
    }
    if resource.status
        && let Some(map) = obj.as_object_mut()
    {
        map.remove("status");
    }
    if is_core(&resource, "Secret") {
        normalise_secret(&mut obj)?;
    }
    let obj = fill_new(&resource, obj);
    Ok(if opts.dry_run {
        obj
    } else {
        store.insert(id, obj)
    })
}

/// The stored object a write addresses, or 404.
fn existing(store: &Store, t: &Target<'_>) -> Result<Value, ApiError> {
    store
        .get(t.id, t.namespace, t.name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(store.registry.get(t.id), t.name))
}

/// `new` as the next version of `old` for a write to the main resource or `/status`.
fn split_status(resource: &Resource, old: &Value, new: Value, status: bool) -> Value {
    if status {
        let mut out = old.clone();
        out["status"] = new.get("status").cloned().unwrap_or(Value::Null);
        if out["status"].is_null() {
            out.as_object_mut().expect("a map").remove("status");
        }
        out
    } else if resource.status {
        let mut out = new;
        match old.get("status") {
            Some(s) => out["status"] = s.clone(),
            None => {
                out.as_object_mut().map(|m| m.remove("status"));
            }
        }
        out
    } else {
        new
    }
}

/// Stores `new` as the successor of `old`: immutable metadata kept, generation bumped when
/// anything outside metadata and status changed, nothing written for a no-op, the object
/// deleted once a pending deletion has no finalizers left.
fn finish_update(
    store: &mut Store,
    t: &Target<'_>,
    old: &Value,
    mut new: Value,
    opts: &WriteOptions,
) -> Result<Value, ApiError> {
    let resource = store.registry.get(t.id).clone();
    let kept = |key: &str| old["metadata"].get(key).cloned();
    let had_managed_fields = new["metadata"].get("managedFields").is_some();
    let m = meta::metadata_mut(&mut new);
    for key in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "generation",
        "name",
        "namespace",
    ] {
        match kept(key) {
            Some(v) => m.insert(key.into(), v),
            None => m.remove(key),
        };
    }
    if !had_managed_fields && let Some(v) = kept("managedFields") {
        m.insert("managedFields".into(), v);
    }
    if is_core(&resource, "Secret") {
        normalise_secret(&mut new)?;
    }
    if is_core(&resource, "Namespace") {
        normalise_namespace(&mut new, t.name);
    }
    if meta::generation_relevant(&new) != meta::generation_relevant(old) {
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
        meta::metadata_mut(&mut new).insert("generation".into(), json!(generation));
    }
    let deleting = !new["metadata"]["deletionTimestamp"].is_null();
    let finalizers_left = new["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty());
    if opts.dry_run {
        return Ok(new);
    }
    if deleting && !finalizers_left {
        store.insert(t.id, new);
        return Ok(store
            .remove(t.id, t.namespace, t.name)
            .expect("just stored"));
    }
    if meta::without_volatile_fields(&new) == meta::without_volatile_fields(old) {
        return Ok(old.clone());
    }
    Ok(store.insert(t.id, new))
}

/// A non-empty resourceVersion in the request that differs from the stored one: 409.
fn check_precondition(
    resource: &Resource,
    t: &Target<'_>,
    old: &Value,
    rv: &str,
) -> Result<(), ApiError> {
    if !rv.is_empty() && rv != meta::resource_version(old) {
        return Err(ApiError::stale(resource, t.name));
    }
    Ok(())
}

/// PUT: replace the object (or only its status).
pub(crate) fn replace(
    store: &mut Store,
    t: &Target<'_>,
    mut body: Value,
    opts: &WriteOptions,
) -> Result<Value, ApiError> {
    let resource = store.registry.get(t.id).clone();
    let old = existing(store, t)?;
    check_identity(&resource, &mut body, t.namespace, Some(t.name))?;
    check_precondition(&resource, t, &old, meta::resource_version(&body))?;
    let new = split_status(&resource, &old, body, t.status);
    finish_update(store, t, &old, new, opts)
}

/// PATCH: merge, strategic merge or JSON patch; apply goes to [`apply`]. Returns the object
/// and whether it was created.
pub(crate) fn patch(
    store: &mut Store,
    t: &Target<'_>,
    kind: PatchKind,
    patch: &Value,
    opts: &WriteOptions,
) -> Result<(Value, bool), ApiError> {
    if kind == PatchKind::Apply {
        return apply(store, t, patch, opts);
    }
    let resource = store.registry.get(t.id).clone();
    let old = existing(store, t)?;
    let mut patched = apply_patch(&old, kind, patch)?;
    if !patched.is_object() {
        return Err(ApiError::new(422, "the patch did not leave an object"));
    }
    if meta::name(&patched) != t.name || meta::namespace(&patched) != meta::namespace(&old) {
        return Err(ApiError::bad_request(
            "a patch cannot change metadata.name or metadata.namespace",
        ));
    }
    check_identity(&resource, &mut patched, t.namespace, Some(t.name))?;
    check_precondition(&resource, t, &old, meta::resource_version(&patched))?;
    let new = split_status(&resource, &old, patched, t.status);
    Ok((finish_update(store, t, &old, new, opts)?, false))
}

/// Server-side apply (see `apply.rs`): creates the object when missing.
fn apply(
    store: &mut Store,
    t: &Target<'_>,
    applied: &Value,
    opts: &WriteOptions,
) -> Result<(Value, bool), ApiError> {
    let resource = store.registry.get(t.id).clone();
    let manager = opts
        .field_manager
        .as_deref()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("PATCH, fieldManager is required for apply requests")
        })?;
    let mut applied = applied.clone();
    for field in ["apiVersion", "kind"] {
        if applied.get(field).and_then(Value::as_str).is_none() {
            return Err(ApiError::bad_request(format!(
                "{field} must be set in an applied configuration"
            )));
        }
    }
    check_identity(&resource, &mut applied, t.namespace, Some(t.name))?;
    let old = store.get(t.id, t.namespace, t.name).cloned();
    if let Some(old) = &old {
        check_precondition(&resource, t, old, meta::resource_version(&applied))?;
    }
    meta::metadata_mut(&mut applied).remove("resourceVersion");
    if t.status {
        let m = &applied["metadata"];
        applied = json!({"apiVersion": applied["apiVersion"], "kind": applied["kind"],
            "metadata": {"name": m["name"], "namespace": m["namespace"]}, "status": applied["status"]});
    } else if resource.status {
        applied.as_object_mut().map(|m| m.remove("status"));
    }
    let who = Applier {
        manager,
        force: opts.force,
        subresource: if t.status { "status" } else { "" },
        api_version: resource.api_version(),
    };
    let merged = merge_applied(old.as_ref(), &applied, &who)?;
    match old {
        None if t.status => Err(ApiError::not_found(&resource, t.name)),
        None => Ok((create(store, t.id, t.namespace, merged, opts)?, true)),
        Some(old) => Ok((finish_update(store, t, &old, merged, opts)?, false)),
    }
}

/// DELETE: returns the object and whether it is gone (false: waiting for finalizers).
pub(crate) fn delete(
    store: &mut Store,
    t: &Target<'_>,
    options: &Value,
    opts: &WriteOptions,
) -> Result<(Value, bool), ApiError> {
    let resource = store.registry.get(t.id).clone();
    let old = existing(store, t)?;
    let pre = &options["preconditions"];
    check_precondition(
        &resource,
        t,
        &old,
        pre["resourceVersion"].as_str().unwrap_or(""),
    )?;
    if let Some(uid) = pre["uid"].as_str()
        && uid != old["metadata"]["uid"].as_str().unwrap_or("")
    {
        return Err(ApiError::conflict(
            &resource,
            t.name,
            "Precondition failed: UID in precondition does not match the object",
        ));
    }
    if opts.dry_run {
        return Ok((old, true));
    }
    if is_core(&resource, "Namespace") {
        store.remove_namespace_contents(t.name);
    } else if old["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty())
    {
        if !old["metadata"]["deletionTimestamp"].is_null() {
            return Ok((old, false));
        }
        let mut pending = old.clone();
        let m = meta::metadata_mut(&mut pending);
        m.insert("deletionTimestamp".into(), json!(meta::now()));
        m.insert("deletionGracePeriodSeconds".into(), json!(0));
        return Ok((store.insert(t.id, pending), false));
    }
    Ok((
        store.remove(t.id, t.namespace, t.name).expect("exists"),
        true,
    ))
}
