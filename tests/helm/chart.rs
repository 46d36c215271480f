//! The Helm chart `deploy/helm/meshtrust` through the real Helm engine: Helm v4's Go SDK,
//! which PyPI's `helm-python-sdk` bundles as a native library, driven by
//! `tests/helm/chart.py` from the virtualenv `./tests/run-all.sh` creates (or the Python
//! named by `MESHTRUST_PYTHON`). Lint, render with defaults and with value sets, schema
//! validation, and the chart as the one source of the manifests in `deploy/`: the objects
//! `kubectl apply -k deploy/` applies, and each optional manifest, are what the chart renders.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;
use serde_json::{Value, json};

const RELEASE: &str = "meshtrust";
const NAMESPACE: &str = "meshtrust-system";
/// Labels Helm's conventions put on every object, which the files of `deploy/` do not carry.
const HELM_LABELS: [&str; 4] = [
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/version",
    "helm.sh/chart",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn chart_dir() -> PathBuf {
    repo().join("deploy/helm/meshtrust")
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("MESHTRUST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = repo().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run ./tests/run-all.sh once (it creates the virtualenv with \
         helm-python-sdk), or set MESHTRUST_PYTHON",
        venv.display()
    );
    venv
}

/// Runs `requests` through tests/helm/chart.py; one result per request.
fn helm(requests: &[Value]) -> Vec<Value> {
    let mut child = Command::new(python())
        .arg(repo().join("tests/helm/chart.py"))
        .arg(chart_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the test virtualenv's python runs");
    let body = serde_json::to_vec(requests).unwrap();
    child.stdin.take().unwrap().write_all(&body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "tests/helm/chart.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results.len(), requests.len());
    results
}

fn render_request(values: &Value) -> Value {
    json!({"op": "render", "values": values, "name": RELEASE, "namespace": NAMESPACE})
}

/// What `helm install` would create with `values`: the CRDs of crds/ and every rendered
/// object, parsed; and the rendered NOTES.txt.
struct Render {
    objects: Vec<Value>,
    notes: String,
}

impl Render {
    fn from_result(result: &Value) -> Render {
        if let Some(e) = result.get("error") {
            panic!(
                "the chart does not render: {}",
                e.as_str().unwrap_or_default()
            );
        }
        let mut objects = Vec::new();
        for crd in result["crds"].as_array().unwrap() {
            objects.extend(documents(crd["data"].as_str().unwrap()));
        }
        let mut notes = String::new();
        for (path, text) in result["manifests"].as_object().unwrap() {
            let text = text.as_str().unwrap();
            if path.ends_with("NOTES.txt") {
                notes = text.to_string();
            } else {
                objects.extend(documents(text));
            }
        }
        Render { objects, notes }
    }

    fn get(&self, kind: &str, name: &str) -> &Value {
        self.find(kind, name)
            .unwrap_or_else(|| panic!("the chart renders no {kind} {name}"))
    }

    fn find(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }

    fn deployment(&self) -> &Value {
        self.get("Deployment", "meshtrust-controller")
    }

    fn kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self.objects.iter().map(identity).collect();
        kinds.sort();
        kinds
    }
}

fn render(values: Value) -> Render {
    Render::from_result(&helm(&[render_request(&values)])[0])
}

/// Every non-empty YAML document of `text`.
fn documents(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{e} in\n{text}")))
        .filter(|v| !v.is_null())
        .collect()
}

fn file_objects(rel: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    documents(&text)
}

/// `Kind namespace/name`.
fn identity(o: &Value) -> String {
    let m = &o["metadata"];
    match m["namespace"].as_str() {
        Some(ns) => format!("{} {ns}/{}", o["kind"].as_str().unwrap_or("?"), m["name"]),
        None => format!("{} {}", o["kind"].as_str().unwrap_or("?"), m["name"]),
    }
    .replace('"', "")
}

/// `o` without the labels only Helm adds.
fn without_helm_labels(o: &Value) -> Value {
    let mut o = o.clone();
    let meta = o["metadata"].as_object_mut().unwrap();
    if let Some(labels) = meta.get_mut("labels").and_then(Value::as_object_mut) {
        labels.retain(|k, _| !HELM_LABELS.contains(&k.as_str()));
        if labels.is_empty() {
            meta.remove("labels");
        }
    }
    o
}

/// Every path where `got` and `want` differ, as `path: chart X, file Y`.
fn differences(path: &str, got: &Value, want: &Value, out: &mut Vec<String>) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            let keys: std::collections::BTreeSet<&String> = g.keys().chain(w.keys()).collect();
            for k in keys {
                let (a, b) = (
                    g.get(k).unwrap_or(&Value::Null),
                    w.get(k).unwrap_or(&Value::Null),
                );
                let at = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                differences(&at, a, b, out);
            }
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => {
            for (i, (a, b)) in g.iter().zip(w).enumerate() {
                differences(&format!("{path}[{i}]"), a, b, out);
            }
        }
        _ if got != want => out.push(format!("{path}: the chart has {got}, the file {want}")),
        _ => {}
    }
}

/// Asserts that the chart's objects (without Helm's labels) are exactly `want`, naming each
/// missing or extra object and each differing field.
fn assert_same_objects(chart: &[Value], want: &[Value], source: &str) {
    let by_id = |objs: &[Value]| -> BTreeMap<String, Value> {
        objs.iter()
            .map(|o| (identity(o), without_helm_labels(o)))
            .collect()
    };
    let (got, want) = (by_id(chart), by_id(want));
    let mut problems = Vec::new();
    for (id, w) in &want {
        match got.get(id) {
            None => problems.push(format!("{id}: in {source}, not rendered by the chart")),
            Some(g) => {
                let mut d = Vec::new();
                differences("", g, w, &mut d);
                problems.extend(d.into_iter().map(|d| format!("{id}: {d}")));
            }
        }
    }
    for id in got.keys().filter(|id| !want.contains_key(*id)) {
        problems.push(format!("{id}: rendered by the chart, not in {source}"));
    }
    assert!(
        problems.is_empty(),
        "the Helm chart (the source of truth, docs/install.md) and {source} differ; change \
         both together:\n  {}",
        problems.join("\n  ")
    );
}

/// The objects `kubectl apply -k deploy/` applies: every file of `resources:`.
fn kustomize_objects() -> Vec<Value> {
    let k = &file_objects("deploy/kustomization.yaml")[0];
    let fields: Vec<&String> = k.as_object().unwrap().keys().collect();
    assert!(
        fields
            .iter()
            .all(|f| ["apiVersion", "kind", "resources"].contains(&f.as_str())),
        "deploy/kustomization.yaml uses {fields:?}: this comparison applies only `resources:`; \
         teach tests/helm/chart.rs the new field (namespace, labels, patches …) before using it"
    );
    k["resources"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| file_objects(&format!("deploy/{}", r.as_str().unwrap())))
        .collect()
}

mod values;

#[test]
fn the_default_render_is_what_kubectl_apply_k_deploy_applies() {
    let chart = render(json!({}));
    let mut want = kustomize_objects();
    // Helm keeps its release record in the release namespace, so the namespace exists before
    // the chart is installed (`kubectl apply -f deploy/namespace.yaml`, docs/install.md): the
    // chart renders everything else, into that namespace.
    let namespace = want.iter().position(|o| o["kind"] == "Namespace").unwrap();
    let namespace = want.remove(namespace);
    assert_eq!(namespace["metadata"]["name"], NAMESPACE);
    assert_same_objects(
        &chart.objects,
        &want,
        "deploy/kustomization.yaml's resources",
    );
}

#[test]
fn each_optional_manifest_of_deploy_is_what_its_switch_renders() {
    let defaults = render(json!({}));
    for (kind, name) in [
        ("ServiceMonitor", "meshtrust-controller"),
        ("PrometheusRule", "meshtrust-controller"),
        ("MeshTrust", "mesh"),
    ] {
        assert!(
            defaults.find(kind, name).is_none(),
            "{kind} {name} is rendered by default; it must be opt-in"
        );
    }
    for (switch, kind, name, file) in [
        (
            "serviceMonitor",
            "ServiceMonitor",
            "meshtrust-controller",
            "deploy/servicemonitor.yaml",
        ),
        (
            "prometheusRule",
            "PrometheusRule",
            "meshtrust-controller",
            "deploy/monitoring/prometheusrule.yaml",
        ),
        (
            "example",
            "MeshTrust",
            "mesh",
            "deploy/examples/meshtrust.yaml",
        ),
    ] {
        let on = render(json!({ switch: {"enabled": true} }));
        assert_same_objects(
            std::slice::from_ref(on.get(kind, name)),
            &file_objects(file),
            file,
        );
        assert_eq!(
            on.objects.len(),
            defaults.objects.len() + 1,
            "{switch}.enabled adds exactly its {kind}"
        );
    }
}

#[test]
fn the_prometheus_rule_holds_the_alert_rules_file() {
    let rule = render(json!({"prometheusRule": {"enabled": true}}));
    let spec = &rule.get("PrometheusRule", "meshtrust-controller")["spec"];
    let rules = &file_objects("deploy/monitoring/meshtrust-alerts.yaml")[0];
    assert_eq!(
        spec, rules,
        "spec of the PrometheusRule = meshtrust-alerts.yaml"
    );
    let alerts = spec["groups"][0]["rules"].as_array().unwrap();
    assert!(alerts.len() >= 8, "{alerts:?}");
}

#[test]
fn the_chart_lints_clean_but_for_the_icon() {
    let sets = values::valid_sets();
    let requests: Vec<Value> = sets
        .iter()
        .map(|(_, v)| json!({"op": "lint", "values": v, "namespace": NAMESPACE}))
        .collect();
    for ((name, _), result) in sets.iter().zip(helm(&requests)) {
        let findings: Vec<String> = result["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["error"] != "icon is recommended")
            .map(|m| format!("severity {} {}: {}", m["severity"], m["path"], m["error"]))
            .collect();
        assert!(
            findings.is_empty() && result["errors"].as_array().unwrap().is_empty(),
            "helm lint with {name}: {findings:?} {}",
            result["errors"]
        );
    }
}

#[test]
fn the_chart_versions_and_the_default_image_follow_the_workspace_version() {
    let version = env!("CARGO_PKG_VERSION");
    let meta = &helm(&[json!({"op": "metadata"})])[0]["metadata"];
    assert_eq!(meta["name"], "meshtrust");
    assert_eq!(
        (meta["version"].as_str(), meta["appVersion"].as_str()),
        (Some(version), Some(version)),
        "deploy/helm/meshtrust/Chart.yaml: set version and appVersion to the workspace \
         version {version} (Cargo.toml)"
    );
    let image =
        render(json!({})).deployment()["spec"]["template"]["spec"]["containers"][0]["image"]
            .clone();
    assert_eq!(image, format!("ghcr.io/meshtrust/meshtrust:{version}"));
}

#[test]
fn the_chart_copies_are_byte_for_byte_the_files_they_copy() {
    for (copy, original) in [
        (
            "deploy/helm/meshtrust/crds/meshtrust.io_meshtrusts.yaml",
            "deploy/crd.yaml",
        ),
        (
            "deploy/helm/meshtrust/files/meshtrust-alerts.yaml",
            "deploy/monitoring/meshtrust-alerts.yaml",
        ),
    ] {
        let want = std::fs::read(repo().join(original)).unwrap();
        if std::env::var_os("MESHTRUST_UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(repo().join(copy), &want).unwrap();
        }
        let got = std::fs::read(repo().join(copy)).unwrap_or_default();
        assert!(
            got == want,
            "{copy} differs from {original} (a Helm chart cannot read files outside its \
             directory, so it keeps a copy): `cp {original} {copy}`"
        );
    }
    if std::env::var_os("MESHTRUST_UPDATE_SNAPSHOTS").is_some() {
        // deploy/monitoring/prometheusrule.yaml, from the chart (the test above checks it).
        let rule = render(json!({"prometheusRule": {"enabled": true}}));
        let rule = without_helm_labels(rule.get("PrometheusRule", "meshtrust-controller"));
        let text = format!(
            "{PROMETHEUS_RULE_HEADER}{}",
            serde_yaml_ng::to_string(&rule).unwrap()
        );
        std::fs::write(repo().join("deploy/monitoring/prometheusrule.yaml"), text).unwrap();
    }
}

/// The head of deploy/monitoring/prometheusrule.yaml.
const PROMETHEUS_RULE_HEADER: &str = "\
# Generated: the Helm chart's PrometheusRule (prometheusRule.enabled=true) without Helm's labels,
# for the Prometheus Operator without Helm: `kubectl apply -f deploy/monitoring/prometheusrule.yaml`.
# Edit meshtrust-alerts.yaml, not this file; tests/helm/chart.rs fails when the two differ.
# Regenerate: MESHTRUST_UPDATE_SNAPSHOTS=1 cargo test --workspace --test helm_chart
";

#[test]
fn the_notes_say_how_to_check_the_install() {
    let notes = render(json!({})).notes;
    for line in [
        "kubectl -n meshtrust-system rollout status deployment/meshtrust-controller",
        "kubectl -n meshtrust-system get lease meshtrust-controller",
        "kubectl get crd meshtrusts.meshtrust.io",
        "kubectl wait meshtrust/NAME --for=condition=Ready",
        "curl -s localhost:8080/metrics",
        "--set serviceMonitor.enabled=true",
        "kubectl apply --server-side -f deploy/helm/meshtrust/crds/",
    ] {
        assert!(notes.contains(line), "NOTES.txt lacks `{line}`:\n{notes}");
    }
    let monitored = render(json!({
        "serviceMonitor": {"enabled": true}, "prometheusRule": {"enabled": true}
    }))
    .notes;
    assert!(
        !monitored.contains("--set serviceMonitor.enabled=true"),
        "{monitored}"
    );
    assert!(
        !monitored.contains("--set prometheusRule.enabled=true"),
        "{monitored}"
    );
}

#[test]
fn the_packaged_chart_renders_what_the_directory_renders() {
    let values = json!({"prometheusRule": {"enabled": true}, "serviceMonitor": {"enabled": true}});
    let package =
        json!({"op": "package", "values": values, "name": RELEASE, "namespace": NAMESPACE});
    let results = helm(&[package, render_request(&values)]);
    let (packaged, directory) = (&results[0], &results[1]);
    assert_eq!(
        packaged["archive"],
        format!("meshtrust-{}.tgz", env!("CARGO_PKG_VERSION")),
        "{packaged}"
    );
    assert_eq!(
        packaged["crds"],
        json!(["meshtrust/crds/meshtrust.io_meshtrusts.yaml"])
    );
    assert!(
        packaged["files"]
            .as_array()
            .unwrap()
            .contains(&json!("files/meshtrust-alerts.yaml")),
        "the rules travel with the chart: {}",
        packaged["files"]
    );
    let objects = |r: &Value| -> Vec<Value> {
        let mut all: Vec<Value> = r["manifests"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(path, _)| !path.ends_with("NOTES.txt"))
            .flat_map(|(_, text)| documents(text.as_str().unwrap()))
            .collect();
        all.sort_by_key(identity);
        all
    };
    assert_eq!(objects(packaged), objects(directory));
}
