//! The resource table: which kinds the server serves, under which URL names, with which scope.
//!
//! The built-in table is data: adding a kind is one line in [`BUILTIN`]. Creating a
//! `CustomResourceDefinition` also registers its resources, as the real server does.

use serde_json::Value;

/// Cluster-scoped (no `/namespaces/{ns}/` in the URL).
const CLUSTER: bool = false;
/// Namespaced.
const NAMESPACED: bool = true;
/// Has a `/status` subresource: writes to the main resource leave `.status` alone, writes
/// to `/status` change only `.status`.
const STATUS: bool = true;
/// No `/status` subresource.
const NO_STATUS: bool = false;

/// `(apiVersion, plural, Kind, namespaced, status subresource)` of every kind served from the
/// start.
const BUILTIN: &[(&str, &str, &str, bool, bool)] = &[
    ("v1", "namespaces", "Namespace", CLUSTER, STATUS),
    ("v1", "secrets", "Secret", NAMESPACED, NO_STATUS),
    ("v1", "configmaps", "ConfigMap", NAMESPACED, NO_STATUS),
    ("v1", "services", "Service", NAMESPACED, STATUS),
    ("v1", "pods", "Pod", NAMESPACED, STATUS),
    (
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        NAMESPACED,
        NO_STATUS,
    ),
    ("v1", "events", "Event", NAMESPACED, NO_STATUS),
    ("events.k8s.io/v1", "events", "Event", NAMESPACED, NO_STATUS),
    ("apps/v1", "deployments", "Deployment", NAMESPACED, STATUS),
    (
        "gateway.networking.k8s.io/v1",
        "gateways",
        "Gateway",
        NAMESPACED,
        STATUS,
    ),
    (
        "coordination.k8s.io/v1",
        "leases",
        "Lease",
        NAMESPACED,
        NO_STATUS,
    ),
    (
        "meshtrust.io/v1alpha1",
        "meshtrusts",
        "MeshTrust",
        CLUSTER,
        STATUS,
    ),
    (
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        CLUSTER,
        STATUS,
    ),
];

/// The verbs every resource supports, as discovery lists them.
pub(crate) const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One kind of object the server serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resource {
    /// API group, `""` for the core group.
    pub group: String,
    pub version: String,
    /// Lower-case plural used in URLs (`secrets`).
    pub plural: String,
    pub kind: String,
    pub namespaced: bool,
    /// Whether a `/status` subresource exists.
    pub status: bool,
}

impl Resource {
    fn new(api_version: &str, plural: &str, kind: &str, namespaced: bool, status: bool) -> Self {
        let (group, version) = split_api_version(api_version);
        Resource {
            group: group.to_string(),
            version: version.to_string(),
            plural: plural.to_string(),
            kind: kind.to_string(),
            namespaced,
            status,
        }
    }

    /// `v1`, `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `secrets`, `deployments.apps`: how error messages name the resource.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// Index of a resource in a [`Registry`]; stable for the registry's lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ResourceId(pub usize);

/// The resources one cluster serves.
#[derive(Debug)]
pub(crate) struct Registry {
    resources: Vec<Resource>,
}

impl Default for Registry {
    fn default() -> Self {
        let resources = BUILTIN
            .iter()
            .map(|&(av, plural, kind, namespaced, status)| {
                Resource::new(av, plural, kind, namespaced, status)
            })
            .collect();
        Registry { resources }
    }
}

impl Registry {
    pub fn get(&self, id: ResourceId) -> &Resource {
        &self.resources[id.0]
    }

    pub fn all(&self) -> impl Iterator<Item = (ResourceId, &Resource)> {
        self.resources
            .iter()
            .enumerate()
            .map(|(i, r)| (ResourceId(i), r))
    }

    /// The resource served at `/apis/{group}/{version}/{plural}`.
    pub fn by_plural(&self, group: &str, version: &str, plural: &str) -> Option<ResourceId> {
        self.all()
            .find(|(_, r)| r.group == group && r.version == version && r.plural == plural)
            .map(|(id, _)| id)
    }

    /// The resource of objects with this `apiVersion` and `kind`.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<ResourceId> {
        let (group, version) = split_api_version(api_version);
        self.all()
            .find(|(_, r)| r.group == group && r.version == version && r.kind == kind)
            .map(|(id, _)| id)
    }

    /// Every served `group/version`, core first, in registration order.
    pub fn group_versions(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for r in &self.resources {
            let gv = (r.group.clone(), r.version.clone());
            if !out.contains(&gv) {
                out.push(gv);
            }
        }
        out
    }

    /// Registers the resources a `CustomResourceDefinition` defines (every served version),
    /// unless already present. Deleting the CRD leaves them registered (a simplification).
    pub fn register_crd(&mut self, crd: &Value) {
        let spec = &crd["spec"];
        let (Some(group), Some(plural), Some(kind)) = (
            spec["group"].as_str(),
            spec["names"]["plural"].as_str(),
            spec["names"]["kind"].as_str(),
        ) else {
            return;
        };
        let namespaced = spec["scope"].as_str() != Some("Cluster");
        for version in spec["versions"].as_array().into_iter().flatten() {
            let Some(name) = version["name"].as_str() else {
                continue;
            };
            if version["served"] == Value::Bool(false)
                || self.by_plural(group, name, plural).is_some()
            {
                continue;
            }
            let status = version["subresources"]["status"].is_object();
            self.resources.push(Resource::new(
                &format!("{group}/{name}"),
                plural,
                kind,
                namespaced,
                status,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builtin_kinds_are_found_by_url_and_by_kind() {
        let r = Registry::default();
        let id = r.by_plural("apps", "v1", "deployments").unwrap();
        assert_eq!(r.by_kind("apps/v1", "Deployment"), Some(id));
        assert_eq!(r.get(id).qualified_plural(), "deployments.apps");
        let secrets = r.by_kind("v1", "Secret").unwrap();
        assert_eq!(r.get(secrets).api_version(), "v1");
        assert!(r.by_kind("v1", "Deployment").is_none());
    }

    #[test]
    fn a_crd_registers_its_served_versions_once() {
        let mut r = Registry::default();
        let crd = json!({"spec": {"group": "networking.solo.io", "scope": "Namespaced",
            "names": {"plural": "links", "kind": "Link"},
            "versions": [{"name": "v1", "served": true, "subresources": {"status": {}}},
                         {"name": "v0", "served": false}]}});
        r.register_crd(&crd);
        r.register_crd(&crd);
        let id = r.by_kind("networking.solo.io/v1", "Link").unwrap();
        assert!(r.get(id).namespaced && r.get(id).status);
        assert!(r.by_kind("networking.solo.io/v0", "Link").is_none());
        assert_eq!(r.all().filter(|(_, r)| r.plural == "links").count(), 1);
    }
}
