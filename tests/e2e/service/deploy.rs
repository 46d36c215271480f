//! `deploy/serve/` is true: the service starts from its manifests. The ConfigMap's
//! configuration, the Deployment's arguments and environment (the embedded overlay's store)
//! are run by the built binary, with each mounted path (`/etc/meshtrust/…`,
//! `/var/lib/meshtrust`) mapped into a temporary directory holding the Secrets' keys as the
//! kubelet would mount them; the probes and the container port are then asked over TLS.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use meshtrust_testkit::repo_root;
use serde_json::Value;

use super::harness::serving_certificate;
use super::harness::{ADMIN_TOKEN, Setup, curl, path_str};

/// Every document of a manifest file, as JSON values.
fn documents(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo_root().join(path)).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn one(path: &str) -> Value {
    documents(path).remove(0)
}

/// The mount paths of the serve container, by volume name.
fn mounts(container: &Value) -> Vec<(String, String)> {
    container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["mountPath"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_kustomizations_list_every_manifest_of_their_directory() {
    for (dir, extra) in [("deploy/serve", "embedded"), ("deploy/serve/embedded", "")] {
        let k = one(&format!("{dir}/kustomization.yaml"));
        let listed: BTreeSet<String> = k["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .filter(|r| r != "../")
            .collect();
        let patched: BTreeSet<String> = k["patches"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["path"].as_str().map(str::to_string))
            .collect();
        let present: BTreeSet<String> = std::fs::read_dir(repo_root().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "kustomization.yaml" && n != extra)
            .collect();
        let used: BTreeSet<String> = listed.union(&patched).cloned().collect();
        assert_eq!(used, present, "{dir}: resources and patches vs files");
    }
}

#[test]
fn the_service_starts_from_its_manifests_and_answers_its_probes_over_tls() {
    let setup = Setup::new(None, "");
    let config = one("deploy/serve/config.yaml");
    let deployment = one("deploy/serve/deployment.yaml");
    let overlay = one("deploy/serve/embedded/deployment.yaml");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(
        pod["automountServiceAccountToken"], false,
        "the service calls no API"
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);

    // The kubelet's view: each volume at its mount path, under a temporary root.
    let fs = tempfile::tempdir().unwrap();
    let at = |mount: &str| fs.path().join(mount.trim_start_matches('/'));
    let mut all_mounts = mounts(container);
    all_mounts.extend(mounts(
        &overlay["spec"]["template"]["spec"]["containers"][0],
    ));
    let (cert, key) = serving_certificate(&setup);
    for (volume, mount) in &all_mounts {
        let dir = at(mount);
        std::fs::create_dir_all(&dir).unwrap();
        match volume.as_str() {
            "config" => {
                let text = config["data"]["serve.yaml"].as_str().unwrap();
                // The container listens on its containerPort; here on a free loopback port.
                let port = container["ports"][0]["containerPort"].as_u64().unwrap();
                assert!(text.contains(&format!("listen: 0.0.0.0:{port}")), "{text}");
                let text = text
                    .replace(&format!("0.0.0.0:{port}"), "127.0.0.1:0")
                    .replace(
                        "/etc/meshtrust/",
                        &format!("{}/etc/meshtrust/", path_str(fs.path())),
                    );
                std::fs::write(dir.join("serve.yaml"), text).unwrap();
            }
            "tls" => {
                std::fs::copy(&cert, dir.join("tls.crt")).unwrap();
                std::fs::copy(&key, dir.join("tls.key")).unwrap();
            }
            "root" => {
                for f in ["root-cert.pem", "root-key.pem"] {
                    std::fs::copy(setup.path("root").join(f), dir.join(f)).unwrap();
                }
            }
            "admin" => std::fs::write(dir.join("token"), ADMIN_TOKEN).unwrap(),
            "store" => {}
            other => panic!("a volume this test does not know: {other}"),
        }
    }
    // The embedded overlay's store, under its volume's mount path.
    let env = &overlay["spec"]["template"]["spec"]["containers"][0]["env"][0];
    assert_eq!(env["name"], "MESHTRUST_STORE");
    let store = env["value"].as_str().unwrap();
    let file = store.strip_prefix("sqlite://").unwrap();
    assert!(file.starts_with("/var/lib/meshtrust/"), "{store}");
    let store = format!("sqlite://{}", path_str(&at(file)));

    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let a = a.as_str().unwrap();
            a.replace(
                "=/etc/meshtrust/",
                &format!("={}/etc/meshtrust/", path_str(fs.path())),
            )
        })
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args(&args)
        .env("MESHTRUST_STORE", &store)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut log = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            log.push_str(&line);
            log.push('\n');
            if let Some(rest) = line.split("listening on ").nth(1) {
                let url = rest.split(['"', ' ']).next().unwrap_or_default();
                let _ = tx.send(Ok(url.to_string()));
            }
        }
        let _ = tx.send(Err(log));
    });
    let url = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(url)) => url,
        other => {
            let _ = child.kill();
            panic!("meshtrust serve did not start from deploy/serve: {other:?}");
        }
    };
    let probe = |path: &str| curl(&setup, &[&format!("{url}{path}")]);
    for probe_of in ["livenessProbe", "readinessProbe"] {
        let http = &container[probe_of]["httpGet"];
        assert_eq!(http["scheme"], "HTTPS", "{probe_of}");
        assert_eq!(http["port"], container["ports"][0]["name"], "{probe_of}");
        let (code, body) = probe(http["path"].as_str().unwrap());
        assert_eq!(code, 200, "{probe_of}: {body}");
    }
    let (code, body) = probe("/v1/trust-bundle");
    assert_eq!(code, 200, "{body}");
    let (code, body) = curl(
        &setup,
        &[
            "-H",
            &format!("Authorization: Bearer {ADMIN_TOKEN}"),
            &format!("{url}/v1/admin/clusters"),
        ],
    );
    assert_eq!(
        code, 200,
        "the admin token mounted from its Secret works: {body}"
    );
    assert!(Path::new(&at(file)).exists(), "the store is on the volume");
    let _ = child.kill();
    let _ = child.wait();
}
