//! Per-cluster Helm values for an ambient multicluster mesh (istiod, ztunnel, istio-cni),
//! as the seed guide writes them by hand — pure: inputs in, values out.

use serde_json::{Value, json};

/// The trust domain Istio uses when none is set.
pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";

/// Where the mesh runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Platform {
    /// Any conformant Kubernetes.
    #[default]
    Kubernetes,
    /// OpenShift: `global.platform=openshift`, istio-cni and ztunnel in kube-system.
    Openshift,
}

/// What one cluster's values are made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValuesInput {
    /// `global.multiCluster.clusterName` (never istiod's default `Kubernetes`).
    pub cluster: String,
    /// `global.network`, also the `topology.istio.io/network` label.
    pub network: String,
    /// `meshConfig.trustDomain`; `<cluster>.local` unless given.
    pub trust_domain: String,
    /// Platform differences.
    pub platform: Platform,
    /// `license.secretRef` as (namespace, name), when the license is kept in a Secret.
    pub license_secret: Option<(String, String)>,
    /// `global.hub` and `global.tag`, when pinned.
    pub hub: Option<String>,
    /// See `hub`.
    pub tag: Option<String>,
}

impl ValuesInput {
    /// Namespace of the istio-cni and ztunnel releases.
    pub fn node_agent_namespace(&self) -> &'static str {
        match self.platform {
            Platform::Kubernetes => "istio-system",
            Platform::Openshift => "kube-system",
        }
    }
}

fn global(input: &ValuesInput) -> Value {
    let mut g = json!({});
    if input.platform == Platform::Openshift {
        g["platform"] = "openshift".into();
    }
    if let Some(hub) = &input.hub {
        g["hub"] = hub.as_str().into();
    }
    if let Some(tag) = &input.tag {
        g["tag"] = tag.as_str().into();
    }
    g
}

/// Values of the `istiod` chart.
pub fn istiod(input: &ValuesInput) -> Value {
    let mut env = json!({
        // Assign IP addresses to multicluster services.
        "PILOT_ENABLE_IP_AUTOALLOCATE": "true",
        // Peering replaces remote secrets: never watch other clusters' API servers.
        "DISABLE_LEGACY_MULTICLUSTER": "true",
        // Root rotation: reload a cacerts whose root-cert.pem gains or loses a root.
        "ISTIO_MULTIROOT_MESH": "true",
    });
    if input.trust_domain != DEFAULT_TRUST_DOMAIN {
        // Clusters have their own trust domains: accept peers' identities.
        env["PILOT_SKIP_VALIDATE_TRUST_DOMAIN"] = "true".into();
    }
    let mut global = global(input);
    global["multiCluster"] = json!({ "clusterName": input.cluster });
    global["network"] = input.network.as_str().into();
    let mut values = json!({
        "profile": "ambient",
        "env": env,
        "global": global,
        "meshConfig": {
            "trustDomain": input.trust_domain,
            "defaultConfig": {
                "proxyMetadata": {
                    "ISTIO_META_DNS_AUTO_ALLOCATE": "true",
                    "ISTIO_META_DNS_CAPTURE": "true",
                    // Proxies pick up new roots without a restart (root rotation).
                    "PROXY_CONFIG_XDS_AGENT": "true",
                }
            }
        },
        "pilot": { "cni": { "enabled": true, "namespace": input.node_agent_namespace() } },
        "platforms": { "peering": { "enabled": true } },
    });
    if let Some((namespace, name)) = &input.license_secret {
        values["license"] = json!({ "secretRef": { "name": name, "namespace": namespace } });
    }
    values
}

/// Values of the `ztunnel` chart.
pub fn ztunnel(input: &ValuesInput) -> Value {
    let mut values = json!({
        "profile": "ambient",
        "multiCluster": { "clusterName": input.cluster },
        "network": input.network,
    });
    let global = global(input);
    if global.as_object().is_some_and(|g| !g.is_empty()) {
        values["global"] = global;
    }
    values
}

/// Values of the `cni` chart (istio-cni).
pub fn cni(input: &ValuesInput) -> Value {
    let mut values = json!({ "profile": "ambient" });
    let global = global(input);
    if global.as_object().is_some_and(|g| !g.is_empty()) {
        values["global"] = global;
    }
    values
}

/// The `helm upgrade --install` lines for one cluster, given where its values files are.
pub fn helm_lines(input: &ValuesInput, context: &str, dir: &str) -> Vec<String> {
    let agents = input.node_agent_namespace();
    let version = input.tag.as_deref().unwrap_or("${ISTIO_IMAGE}");
    let chart = |name: &str| format!("oci://${{HELM_REPO}}/{name}");
    vec![
        format!(
            "helm upgrade --install istio-base {} --namespace istio-system --create-namespace --kube-context {context} --version {version}",
            chart("base")
        ),
        format!(
            "helm upgrade --install istiod {} --namespace istio-system --kube-context {context} --version {version} -f {dir}/istiod.yaml --wait",
            chart("istiod")
        ),
        format!(
            "helm upgrade --install istio-cni {} --namespace {agents} --kube-context {context} --version {version} -f {dir}/istio-cni.yaml --wait",
            chart("cni")
        ),
        format!(
            "helm upgrade --install ztunnel {} --namespace {agents} --kube-context {context} --version {version} -f {dir}/ztunnel.yaml --wait",
            chart("ztunnel")
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(platform: Platform) -> ValuesInput {
        ValuesInput {
            cluster: "cluster1".into(),
            network: "net1".into(),
            trust_domain: "cluster1.local".into(),
            platform,
            license_secret: Some(("istio-system".into(), "solo-license".into())),
            hub: None,
            tag: None,
        }
    }

    /// Snapshot files in tests/fixtures/values/<platform>/; after a deliberate change,
    /// regenerate with `MESHTRUST_UPDATE_SNAPSHOTS=1 cargo test -p meshtrust-peering values`.
    fn check(platform: &str, name: &str, value: &Value) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/values")
            .join(platform)
            .join(name);
        let got = serde_yaml_ng::to_string(value).unwrap();
        if std::env::var_os("MESHTRUST_UPDATE_SNAPSHOTS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &got).unwrap();
        }
        let want =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(got, want, "{platform}/{name} differs from its snapshot");
    }

    #[test]
    fn values_match_their_snapshots_per_platform() {
        for (platform, dir) in [
            (Platform::Kubernetes, "kubernetes"),
            (Platform::Openshift, "openshift"),
        ] {
            let i = input(platform);
            check(dir, "istiod.yaml", &istiod(&i));
            check(dir, "ztunnel.yaml", &ztunnel(&i));
            check(dir, "istio-cni.yaml", &cni(&i));
        }
    }

    #[test]
    fn the_seed_guides_settings_are_there() {
        let k = istiod(&input(Platform::Kubernetes));
        let cases = [
            ("ambient profile", k["profile"] == "ambient"),
            (
                "cluster name",
                k["global"]["multiCluster"]["clusterName"] == "cluster1",
            ),
            ("network", k["global"]["network"] == "net1"),
            (
                "own trust domain",
                k["meshConfig"]["trustDomain"] == "cluster1.local",
            ),
            (
                "peers' trust domains accepted",
                k["env"]["PILOT_SKIP_VALIDATE_TRUST_DOMAIN"] == "true",
            ),
            (
                "no legacy multicluster",
                k["env"]["DISABLE_LEGACY_MULTICLUSTER"] == "true",
            ),
            (
                "IP auto-allocation",
                k["env"]["PILOT_ENABLE_IP_AUTOALLOCATE"] == "true",
            ),
            (
                "peering enabled",
                k["platforms"]["peering"]["enabled"] == true,
            ),
            (
                "multi-root reload for rotation",
                k["env"]["ISTIO_MULTIROOT_MESH"] == "true",
            ),
            (
                "proxies reload roots",
                k["meshConfig"]["defaultConfig"]["proxyMetadata"]["PROXY_CONFIG_XDS_AGENT"]
                    == "true",
            ),
            (
                "license from a Secret",
                k["license"]["secretRef"]["name"] == "solo-license",
            ),
            (
                "CNI beside istiod",
                k["pilot"]["cni"]["namespace"] == "istio-system",
            ),
            (
                "no platform on plain Kubernetes",
                k["global"].get("platform").is_none(),
            ),
        ];
        for (case, ok) in cases {
            assert!(ok, "{case}: {k:#}");
        }
        let o = istiod(&input(Platform::Openshift));
        assert_eq!(o["global"]["platform"], "openshift");
        assert_eq!(o["pilot"]["cni"]["namespace"], "kube-system");
        let mut shared = input(Platform::Kubernetes);
        shared.trust_domain = DEFAULT_TRUST_DOMAIN.into();
        assert!(
            istiod(&shared)["env"]
                .get("PILOT_SKIP_VALIDATE_TRUST_DOMAIN")
                .is_none()
        );
        let z = ztunnel(&input(Platform::Kubernetes));
        assert_eq!(z["multiCluster"]["clusterName"], "cluster1");
        assert_eq!(z["network"], "net1");
        let lines = helm_lines(&input(Platform::Openshift), "ctx1", "values/cluster1");
        assert!(
            lines[2].contains("istio-cni") && lines[2].contains("--namespace kube-system"),
            "{lines:?}"
        );
        assert!(
            lines[1].contains("--kube-context ctx1")
                && lines[1].contains("-f values/cluster1/istiod.yaml")
        );
    }
}
