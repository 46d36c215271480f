//! Test harness for meshtrust's end-to-end suites (`tests/e2e/`).
//!
//! Everything here checks meshtrust's output with verifiers that are *not* meshtrust's own
//! parser: `openssl` as a separate process, and rustls-webpki path validation of a workload
//! certificate signed with the bundle's key.
#![forbid(unsafe_code)]

pub mod apiserver;
pub mod aws;
pub mod crash;
pub mod istiod;
pub mod leaks;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, Issuer, KeyPair, SanType};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};

/// Runs `openssl` with `args`; returns (success, stdout+stderr).
pub fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed (the README test command installs it)");
    (out.status.success(), text(&out))
}

/// stdout and stderr of a finished process, as one string.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `openssl verify -CAfile root -untrusted chain cert` — exactly the check Istio's docs use.
pub fn openssl_verify(root: &Path, chain: &Path, cert: &Path) -> Result<(), String> {
    openssl_verify_at(root, chain, cert, None)
}

/// [`openssl_verify`] at `at` (`-attime`; `None`: now), for certificates issued under a
/// moved test clock.
pub fn openssl_verify_at(
    root: &Path,
    chain: &Path,
    cert: &Path,
    at: Option<SystemTime>,
) -> Result<(), String> {
    let attime = at.map(|t| unix_seconds(t).to_string());
    let mut args = vec![
        "verify".to_string(),
        "-CAfile".to_string(),
        root.display().to_string(),
        "-untrusted".to_string(),
        chain.display().to_string(),
    ];
    if let Some(t) = attime {
        args.extend(["-attime".to_string(), t]);
    }
    args.push(cert.display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out) = openssl(&args);
    if ok { Ok(()) } else { Err(out) }
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The public key of a private key file and of a certificate, as openssl prints them.
pub fn openssl_key_matches_cert(key: &Path, cert: &Path) -> bool {
    let (ok1, from_key) = openssl(&["pkey", "-in", &key.display().to_string(), "-pubout"]);
    let (ok2, from_cert) = openssl(&[
        "x509",
        "-in",
        &cert.display().to_string(),
        "-noout",
        "-pubkey",
    ]);
    ok1 && ok2 && from_key == from_cert
}

/// A workload-style certificate (SPIFFE URI SAN, serverAuth + clientAuth) signed by the CA
/// in `ca_cert`/`ca_key`, as PEM.
pub fn sign_workload_cert(ca_cert: &Path, ca_key: &Path) -> String {
    sign_workload_cert_at(ca_cert, ca_key, SystemTime::now())
}

/// [`sign_workload_cert`], valid around `now`.
pub fn sign_workload_cert_at(ca_cert: &Path, ca_key: &Path, now: SystemTime) -> String {
    let ca_pem = std::fs::read_to_string(ca_cert).unwrap();
    let key_pem = std::fs::read_to_string(ca_key).unwrap();
    let ca_key = KeyPair::from_pem(&key_pem).expect("the CA key loads");
    let first = CertificateDer::pem_slice_iter(ca_pem.as_bytes())
        .next()
        .expect("a certificate")
        .unwrap();
    let issuer = Issuer::from_ca_cert_der(&first, ca_key).expect("the CA certificate loads");
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::default();
    params.subject_alt_names = vec![SanType::URI(
        "spiffe://cluster.local/ns/default/sa/sleep"
            .try_into()
            .unwrap(),
    )];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    params.not_before = (now - std::time::Duration::from_secs(60)).into();
    params.not_after = (now + std::time::Duration::from_secs(3600)).into();
    params.signed_by(&leaf_key, &issuer).unwrap().pem()
}

fn certs_of(path: &Path) -> Vec<CertificateDer<'static>> {
    let pem = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// rustls-webpki path validation of `leaf_pem` through the certificates in `chain` files
/// to the roots in `roots`, for client and server use, at the current time.
pub fn webpki_verify(leaf_pem: &str, chain: &[&Path], roots: &Path) -> Result<(), String> {
    webpki_verify_at(leaf_pem, chain, roots, SystemTime::now())
}

/// [`webpki_verify`] at `at`.
pub fn webpki_verify_at(
    leaf_pem: &str,
    chain: &[&Path],
    roots: &Path,
    at: SystemTime,
) -> Result<(), String> {
    let leaf = CertificateDer::from_pem_slice(leaf_pem.as_bytes()).map_err(|e| e.to_string())?;
    let root_ders = certs_of(roots);
    let anchors: Vec<_> = root_ders
        .iter()
        .map(|r| webpki::anchor_from_trusted_cert(r).map(|a| a.to_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{e:?}"))?;
    let intermediates: Vec<_> = chain.iter().flat_map(|p| certs_of(p)).collect();
    let ee = webpki::EndEntityCert::try_from(&leaf).map_err(|e| format!("{e:?}"))?;
    for usage in [
        webpki::KeyUsage::server_auth(),
        webpki::KeyUsage::client_auth(),
    ] {
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(unix_seconds(at))),
            usage,
            None,
            None,
        )
        .map_err(|e| format!("{e:?}"))?;
    }
    Ok(())
}

/// The checks every istio-layout bundle directory must pass with verifiers that are not
/// meshtrust's: `openssl verify -CAfile root-cert.pem -untrusted cert-chain.pem ca-cert.pem`,
/// openssl's view of key and certificate agreeing, and rustls-webpki path-validating a
/// workload certificate signed with `ca-key.pem` through `cert-chain.pem` to `root-cert.pem`.
///
/// # Panics
/// On the first check that fails, naming the directory.
pub fn assert_bundle_independently_valid(dir: &Path) {
    assert_bundle_independently_valid_at(dir, None);
}

/// [`assert_bundle_independently_valid`] at `at` (`None`: now): for bundles issued under a
/// moved test clock.
///
/// # Panics
/// On the first check that fails, naming the directory.
pub fn assert_bundle_independently_valid_at(dir: &Path, at: Option<SystemTime>) {
    let (cert, key, chain, root) = (
        dir.join("ca-cert.pem"),
        dir.join("ca-key.pem"),
        dir.join("cert-chain.pem"),
        dir.join("root-cert.pem"),
    );
    openssl_verify_at(&root, &chain, &cert, at)
        .unwrap_or_else(|e| panic!("openssl verify {}: {e}", dir.display()));
    assert!(
        openssl_key_matches_cert(&key, &cert),
        "{}: key and certificate differ (openssl)",
        dir.display()
    );
    let when = at.unwrap_or_else(SystemTime::now);
    let leaf = sign_workload_cert_at(&cert, &key, when);
    webpki_verify_at(&leaf, &[&chain], &root, when)
        .unwrap_or_else(|e| panic!("webpki {}: {e}", dir.display()));
}

/// Writes the data of a Secret (as JSON, e.g. from the loopback harness) to `dir`, one file
/// per key, for `meshtrust verify`, openssl and [`assert_bundle_independently_valid`].
///
/// # Panics
/// If the Secret has no data or a value is not base64.
pub fn export_secret(secret: &serde_json::Value, dir: &Path) {
    use base64::Engine as _;
    std::fs::create_dir_all(dir).unwrap();
    for (k, v) in secret["data"].as_object().expect("a Secret with data") {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("a base64 string"))
            .expect("base64");
        std::fs::write(dir.join(k), bytes).unwrap();
    }
}

/// Every file and directory under `dir` with its bytes and mode (a symlink with its target
/// and mode 0), sorted: a snapshot to prove that a failed command changed nothing.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                // A link of a file set (e.g. `root-key.pem -> ..meshtrust/root-key.pem`):
                // its target is its content.
                let target = std::fs::read_link(&path).unwrap();
                out.push((
                    path.clone(),
                    target.into_os_string().into_encoded_bytes(),
                    0,
                ));
            } else if meta.is_dir() {
                out.push((path.clone(), Vec::new(), meta.permissions().mode()));
                stack.push(path);
            } else {
                out.push((
                    path.clone(),
                    std::fs::read(&path).unwrap(),
                    meta.permissions().mode(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// Copies a directory tree (files, directories, and symlinks as symlinks).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The repository root (for fixtures).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The first piece of Rust `Debug` formatting in `message`, if any: a message meant for a
/// person never shows `Some(…)`, a `Status { … }` struct or kube's `ListMeta` (issue 13,
/// "errors a person can act on").
pub fn debug_text(message: &str) -> Option<&'static str> {
    [
        "Some(", "None,", "Status {", "ListMeta", "Error {", "Kind(", "Os {",
    ]
    .into_iter()
    .find(|d| message.contains(d))
}
