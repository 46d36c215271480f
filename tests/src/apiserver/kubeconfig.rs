//! The kubeconfig file: one context per cluster, named after it.

use std::path::Path;

/// The user every context uses; its token is accepted but not checked.
pub(crate) const USER: &str = "meshtrust-test";

/// A YAML string (JSON quoting is valid YAML).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

/// A kubeconfig with one cluster and one context per `(name, url)`, current-context the
/// first.
pub(crate) fn render(clusters: &[(String, String)]) -> String {
    let mut out = String::from("apiVersion: v1\nkind: Config\npreferences: {}\n");
    if let Some((first, _)) = clusters.first() {
        out += &format!("current-context: {}\n", quoted(first));
    }
    out += "clusters:\n";
    for (name, url) in clusters {
        out += &format!(
            "- name: {}\n  cluster:\n    server: {}\n",
            quoted(name),
            quoted(url)
        );
    }
    out += "contexts:\n";
    for (name, _) in clusters {
        out += &format!(
            "- name: {n}\n  context:\n    cluster: {n}\n    user: {u}\n",
            n = quoted(name),
            u = quoted(USER)
        );
    }
    out += &format!(
        "users:\n- name: {}\n  user:\n    token: {}\n",
        quoted(USER),
        quoted("meshtrust-test-token")
    );
    out
}

/// Writes the kubeconfig to `path`.
pub(crate) fn write(path: &Path, clusters: &[(String, String)]) -> std::io::Result<()> {
    std::fs::write(path, render(clusters))
}
