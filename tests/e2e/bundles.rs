//! End to end: the real binary writes bundles, and independent verifiers (openssl and
//! rustls-webpki) accept them — including trust across clusters.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use meshtrust_testkit::{
    assert_bundle_independently_valid, openssl, openssl_key_matches_cert, openssl_verify,
    sign_workload_cert, snapshot, text, webpki_verify,
};

fn meshtrust(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = meshtrust(args);
    assert!(
        out.status.success(),
        "meshtrust {args:?} failed:\n{}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every check a bundle in the istio layout must pass.
fn assert_istio_bundle(dir: &Path) {
    assert_bundle_independently_valid(dir);
    let key = dir.join("ca-key.pem");
    let (is_pkcs8, _) = openssl(&["pkey", "-in", &key.display().to_string(), "-noout"]);
    assert!(is_pkcs8, "openssl reads the key");
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----"),
        "PKCS#8"
    );
    assert_eq!(mode(&key), 0o600, "key file mode");
    assert_eq!(mode(dir), 0o700, "bundle directory mode");
    let verified = ok(&["verify", &dir.display().to_string(), "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&verified).unwrap();
    assert_eq!(v["accepted"], true, "{verified}");
    assert_eq!(v["findings"].as_array().unwrap().len(), 0, "{verified}");
}

#[test]
fn demo_writes_bundles_that_openssl_and_webpki_accept_for_every_key_type() {
    for key_type in [
        "ecdsa-p256",
        "ecdsa-p384",
        "rsa-2048",
        "rsa-3072",
        "rsa-4096",
    ] {
        let out = tempfile::tempdir().unwrap();
        let dir = out.path().join("certs");
        let d = dir.display().to_string();
        let stdout = ok(&[
            "demo",
            "--clusters",
            "east,west",
            "--out",
            &d,
            "--key-type",
            key_type,
        ]);
        assert!(
            stdout.contains("kubectl --context=east create secret generic cacerts -n istio-system"),
            "{stdout}"
        );
        assert_eq!(mode(&dir.join("root-key.pem")), 0o600);
        for c in ["east", "west"] {
            assert_istio_bundle(&dir.join(c));
        }
        let info = ok(&[
            "inspect",
            &dir.join("east/ca-cert.pem").display().to_string(),
            "-o",
            "json",
        ]);
        let v: serde_json::Value = serde_json::from_str(&info).unwrap();
        let kind = &v[0]["certificates"][0]["key"]["kind"];
        assert_eq!(
            kind,
            if key_type.starts_with("rsa") {
                "rsa"
            } else {
                "ecdsa"
            },
            "{key_type}"
        );
    }
}

#[test]
fn a_workload_of_one_cluster_is_trusted_by_every_other_cluster() {
    let out = tempfile::tempdir().unwrap();
    let d = out.path().display().to_string();
    ok(&["demo", "--clusters", "a,b,c", "--out", &d]);
    for (from, to) in [("a", "b"), ("b", "c"), ("c", "a")] {
        let src = out.path().join(from);
        let leaf = sign_workload_cert(&src.join("ca-cert.pem"), &src.join("ca-key.pem"));
        let dst_root = out.path().join(to).join("root-cert.pem");
        webpki_verify(&leaf, &[&src.join("cert-chain.pem")], &dst_root)
            .unwrap_or_else(|e| panic!("{from} → {to}: {e}"));
        let leaf_path = out.path().join(format!("leaf-{from}.pem"));
        std::fs::write(&leaf_path, &leaf).unwrap();
        openssl_verify(&dst_root, &src.join("cert-chain.pem"), &leaf_path)
            .unwrap_or_else(|e| panic!("openssl {from} → {to}: {e}"));
    }
}

#[test]
fn a_workload_of_an_unrelated_mesh_is_not_trusted() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    ok(&[
        "demo",
        "--clusters",
        "a",
        "--out",
        &one.path().display().to_string(),
    ]);
    ok(&[
        "demo",
        "--clusters",
        "b",
        "--out",
        &two.path().display().to_string(),
    ]);
    let a = one.path().join("a");
    let leaf = sign_workload_cert(&a.join("ca-cert.pem"), &a.join("ca-key.pem"));
    let err = webpki_verify(
        &leaf,
        &[&a.join("cert-chain.pem")],
        &two.path().join("b/root-cert.pem"),
    );
    let err = err.expect_err("a foreign root must not validate");
    assert!(
        err.contains("UnknownIssuer") || err.contains("InvalidSignature"),
        "{err}"
    );
}

#[test]
fn cacerts_issues_from_an_existing_root_and_replaces_only_when_forced() {
    let out = tempfile::tempdir().unwrap();
    let root = out.path().join("root").display().to_string();
    let certs = out.path().join("certs");
    let c = certs.display().to_string();
    ok(&[
        "root",
        "create",
        "--out",
        &root,
        "--org",
        "Acme",
        "--common-name",
        "Acme Root",
    ]);
    ok(&[
        "cacerts",
        "--root",
        &root,
        "--cluster",
        "c1,c2",
        "--out",
        &c,
        "--path-len",
        "1",
        "--validity",
        "90d",
    ]);
    for cluster in ["c1", "c2"] {
        assert_istio_bundle(&certs.join(cluster));
    }
    let info = ok(&[
        "inspect",
        &certs.join("c1/ca-cert.pem").display().to_string(),
        "-o",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&info).unwrap();
    let cert = &v[0]["certificates"][0];
    assert_eq!(cert["path_len"], 1);
    assert_eq!(cert["issuer"], "O=Acme, CN=Acme Root");
    let days = cert["seconds_left"].as_i64().unwrap() / 86400;
    assert!((89..=90).contains(&days), "{days}");

    let before = snapshot(&certs);
    let refused = meshtrust(&[
        "cacerts",
        "--root",
        &root,
        "--cluster",
        "c2,c3",
        "--out",
        &c,
    ]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("--force"), "{}", text(&refused));
    assert_eq!(
        snapshot(&certs),
        before,
        "a refused run writes nothing, not even c3"
    );
    assert!(!certs.join("c3").exists());

    ok(&[
        "cacerts",
        "--root",
        &root,
        "--cluster",
        "c2",
        "--out",
        &c,
        "--force",
        "--backup",
    ]);
    assert_istio_bundle(&certs.join("c2"));
    let backups: Vec<_> = std::fs::read_dir(&certs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("c2.backup-"))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    let old = std::fs::read(certs.join(&backups[0]).join("ca-key.pem")).unwrap();
    let new = std::fs::read(certs.join("c2/ca-key.pem")).unwrap();
    assert_ne!(old, new, "the backup holds the previous key");
}

#[test]
fn the_tls_layout_is_what_istiod_reads_from_a_kubernetes_tls_secret() {
    let out = tempfile::tempdir().unwrap();
    let d = out.path().display().to_string();
    let stdout = ok(&["demo", "--clusters", "c1", "--out", &d, "--format", "tls"]);
    assert!(stdout.contains("--type=kubernetes.io/tls"), "{stdout}");
    let dir = out.path().join("c1");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["ca.crt", "tls.crt", "tls.key"]);
    // istiod uses tls.crt as the signing certificate and tls.crt + ca.crt as the chain.
    openssl_verify(
        &dir.join("ca.crt"),
        &dir.join("tls.crt"),
        &dir.join("tls.crt"),
    )
    .unwrap();
    assert!(openssl_key_matches_cert(
        &dir.join("tls.key"),
        &dir.join("tls.crt")
    ));
    let leaf = sign_workload_cert(&dir.join("tls.crt"), &dir.join("tls.key"));
    webpki_verify(&leaf, &[&dir.join("tls.crt")], &dir.join("ca.crt")).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["verify", &dir.display().to_string(), "-o", "json"])).unwrap();
    assert_eq!(v["format"], "tls");
    assert_eq!(v["accepted"], true);
}

#[test]
fn root_create_never_replaces_a_key_unless_forced_and_keeps_a_backup_when_asked() {
    let out = tempfile::tempdir().unwrap();
    let d = out.path().join("root");
    let s = d.display().to_string();
    ok(&[
        "root",
        "create",
        "--out",
        &s,
        "--key-type",
        "ecdsa-p384",
        "--validity",
        "5y",
    ]);
    assert_eq!(mode(&d), 0o700);
    assert_eq!(mode(&d.join("root-key.pem")), 0o600);
    assert_eq!(mode(&d.join("root-cert.pem")), 0o644);
    let first = std::fs::read(d.join("root-key.pem")).unwrap();
    let refused = meshtrust(&["root", "create", "--out", &s]);
    assert!(!refused.status.success());
    assert_eq!(std::fs::read(d.join("root-key.pem")).unwrap(), first);
    let json = ok(&[
        "root", "create", "--out", &s, "--force", "--backup", "-o", "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["key"], "ECDSA P-256");
    let backup = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("root-key.pem.backup-"))
        .expect("a key backup");
    assert_eq!(std::fs::read(backup).unwrap(), first);
    let (self_signed, out) = openssl(&[
        "verify",
        "-CAfile",
        &d.join("root-cert.pem").display().to_string(),
        &d.join("root-cert.pem").display().to_string(),
    ]);
    assert!(self_signed, "{out}");
}

#[test]
fn inspect_shows_the_chain_positions_and_never_key_bytes() {
    let out = tempfile::tempdir().unwrap();
    ok(&[
        "demo",
        "--clusters",
        "c1",
        "--out",
        &out.path().display().to_string(),
    ]);
    let dir = out.path().join("c1");
    let human = ok(&["inspect", &dir.display().to_string()]);
    assert!(
        human.contains("[1/2] intermediate CA, issued by #2"),
        "{human}"
    );
    assert!(human.contains("[2/2] root CA (self-signed)"), "{human}");
    assert!(human.contains("DNS:istiod.istio-system.svc"), "{human}");
    assert!(human.contains("private key, ECDSA P-256"), "{human}");
    let key = std::fs::read_to_string(dir.join("ca-key.pem")).unwrap();
    let body = key.lines().nth(1).unwrap();
    assert!(!human.contains(body), "inspect printed key material");
}
