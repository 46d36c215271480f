//! The test playing istiod in a loopback cluster: its Deployment (with or without
//! `ISTIO_MULTIROOT_MESH=true`), and what it does once it has loaded `cacerts` — publish the
//! roots in `istio-ca-root-cert`, some time after `cacerts` changes, unless held back.
//! Shared by the agent's and the controller's rotation suites.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::apiserver::Cluster;

/// istiod's namespace, where `cacerts` lives.
pub const ISTIO_NS: &str = "istio-system";

/// istio-system with an istiod Deployment (ready, with or without ISTIO_MULTIROOT_MESH).
pub fn install_istio(cluster: &Cluster, multiroot: bool) {
    cluster.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ISTIO_NS}}));
    install_istiod(cluster, multiroot);
}

/// An istiod Deployment in istio-system, which must exist (ready, with or without
/// ISTIO_MULTIROOT_MESH).
pub fn install_istiod(cluster: &Cluster, multiroot: bool) {
    let env = if multiroot {
        json!([{"name": "ISTIO_MULTIROOT_MESH", "value": "true"},
               {"name": "PROXY_CONFIG_XDS_AGENT", "value": "true"}])
    } else {
        json!([])
    };
    cluster.seed(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "istiod", "namespace": ISTIO_NS},
        "spec": {"selector": {"matchLabels": {"app": "istiod"}},
                 "template": {"metadata": {"labels": {"app": "istiod"}},
                              "spec": {"containers": [{"name": "discovery", "image": "istio/pilot", "env": env}]}}},
        "status": {"replicas": 1, "readyReplicas": 1}
    }));
}

/// istiod's Deployment with ISTIO_MULTIROOT_MESH=true, unless one is there already.
fn install_unless_installed(cluster: &Cluster) {
    if cluster
        .get("apps/v1", "Deployment", Some(ISTIO_NS), "istiod")
        .is_none()
    {
        install_istiod(cluster, true);
    }
}

/// The `cacerts` Secret of `cluster`, if any.
pub fn cacerts(cluster: &Cluster) -> Option<Value> {
    cluster.get("v1", "Secret", Some(ISTIO_NS), "cacerts")
}

/// The text of `key` in a Secret (base64-decoded).
pub fn decoded(secret: &Value, key: &str) -> String {
    let b64 = secret["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in the Secret"));
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}

/// The roots istiod publishes in `cluster` (`root-cert.pem` of `istio-ca-root-cert`).
pub fn published(cluster: &Cluster) -> Option<String> {
    cluster
        .get("v1", "ConfigMap", Some(ISTIO_NS), "istio-ca-root-cert")
        .and_then(|c| c["data"]["root-cert.pem"].as_str().map(str::to_string))
}

/// What istiod does once it loaded `cacerts`: publish its roots in `istio-ca-root-cert`.
pub fn istiod_publishes(cluster: &Cluster) {
    let secret = cacerts(cluster).expect("cacerts to publish");
    publish(cluster, &decoded(&secret, "root-cert.pem"));
}

fn publish(cluster: &Cluster, roots: &str) {
    cluster.seed(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "istio-ca-root-cert", "namespace": ISTIO_NS},
        "data": {"root-cert.pem": roots}
    }));
}

/// The test's istiod in one cluster: once `cacerts` exists, its Deployment (with
/// ISTIO_MULTIROOT_MESH=true, unless one is installed already); then it publishes `cacerts`'
/// roots in `istio-ca-root-cert` `delay` after it sees them change, unless held. Stops on
/// drop.
pub struct Istiod {
    held: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Istiod {
    /// Starts playing istiod in `cluster`: when it holds `cacerts` already, its Deployment
    /// is there when this returns.
    pub fn start(cluster: Cluster, delay: Duration) -> Istiod {
        if cacerts(&cluster).is_some() {
            install_unless_installed(&cluster);
        }
        let held = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (held.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seen: Option<(String, Instant)> = None;
            while !s.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
                let Some(secret) = cacerts(&cluster) else {
                    continue;
                };
                // Installed once cacerts exists (as Istio's plug-in CA install goes).
                install_unless_installed(&cluster);
                let root = decoded(&secret, "root-cert.pem");
                if published(&cluster).as_deref() == Some(root.as_str()) {
                    seen = None;
                    continue;
                }
                match &seen {
                    Some((r, at)) if *r == root => {
                        if at.elapsed() >= delay && !h.load(Ordering::SeqCst) {
                            publish(&cluster, &root);
                        }
                    }
                    _ => seen = Some((root, Instant::now())),
                }
            }
        });
        Istiod { held, stop }
    }

    /// Holds back (or releases) what it publishes.
    pub fn hold(&self, held: bool) {
        self.held.store(held, Ordering::SeqCst);
    }
}

impl Drop for Istiod {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
