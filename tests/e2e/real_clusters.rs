//! Opt-in: the cluster-delivery scenarios against real clusters (kind, k3d, a cloud).
//!
//! ```sh
//! MESHTRUST_E2E_CONTEXTS=kind-a,kind-b cargo test -p meshtrust-cli --test e2e_real_clusters -- --ignored
//! ```
//!
//! Everything happens in a namespace of its own (`meshtrust-e2e-<random>`), never in
//! istio-system, and the namespace is deleted afterwards. See docs/testing.md.

// The suite waits on real processes: wall-clock deadlines are the point here.
#![allow(clippy::disallowed_methods)]

use std::process::Command;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use serde_json::Value;

fn contexts() -> Vec<String> {
    let raw = std::env::var("MESHTRUST_E2E_CONTEXTS").expect(
        "set MESHTRUST_E2E_CONTEXTS=ctx1,ctx2,… (kubeconfig contexts of disposable clusters)",
    );
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

async fn client(context: &str) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options = kube::config::KubeConfigOptions {
        context: Some(context.to_string()),
        ..Default::default()
    };
    let config = kube::Config::from_kubeconfig(&options)
        .await
        .expect("the context loads");
    kube::Client::try_from(config).unwrap()
}

#[tokio::test]
#[ignore = "needs real clusters: set MESHTRUST_E2E_CONTEXTS and run with --ignored"]
async fn bootstrap_real_clusters_converges_and_shares_one_root() {
    let contexts = contexts();
    let namespace = format!("meshtrust-e2e-{}", fastrand_suffix());
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root").display().to_string();
    let names: Vec<String> = (1..=contexts.len()).map(|i| format!("e2e{i}")).collect();
    let run = |expect_ok: bool| {
        let out = Command::new(env!("CARGO_BIN_EXE_meshtrust"))
            .args([
                "bootstrap",
                "--contexts",
                &contexts.join(","),
                "--cluster-names",
                &names.join(","),
            ])
            .args([
                "--namespace",
                &namespace,
                "--root-out",
                &root,
                "--network-from-cluster-name",
                "-o",
                "json",
            ])
            .output()
            .unwrap();
        assert_eq!(
            out.status.success(),
            expect_ok,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
    };
    let first = run(true);
    assert!(first.iter().all(|r| r["action"] == "create"), "{first:?}");
    let second = run(true);
    assert!(
        second.iter().all(|r| r["action"] == "unchanged"),
        "{second:?}"
    );
    let mut roots = Vec::new();
    for ctx in &contexts {
        let client = client(ctx).await;
        let secret = Api::<Secret>::namespaced(client.clone(), &namespace)
            .get("cacerts")
            .await
            .unwrap();
        let fp = secret.metadata.annotations.unwrap()["meshtrust.io/root-fingerprints"].clone();
        roots.push(fp);
        Api::<Namespace>::all(client)
            .delete(&namespace, &Default::default())
            .await
            .unwrap();
    }
    assert!(roots.iter().all(|r| *r == roots[0]), "{roots:?}");
}

fn fastrand_suffix() -> String {
    format!(
        "{:08x}",
        std::process::id()
            ^ (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos())
    )
}
