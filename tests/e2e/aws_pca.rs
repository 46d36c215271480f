//! End to end: `meshtrust cacerts/demo --issuer aws-pca` over real HTTP against AWS Private
//! CA emulators (moto, and moto made faithful by tests/aws/faithful_moto.py).

use std::path::Path;
use std::process::{Command, Output};

use meshtrust_testkit::aws::{AWS_TEST_ENV, Emulator, Flavor};
use meshtrust_testkit::{
    assert_bundle_independently_valid, openssl, sign_workload_cert, snapshot, text, webpki_verify,
};

fn meshtrust(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args(args)
        .envs(AWS_TEST_ENV)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_REGION")
        .output()
        .unwrap()
}

/// `meshtrust CMD --issuer aws-pca --ca-arn ARN` against `pca`, then `rest`.
fn meshtrust_aws(cmd: &str, pca: &Emulator, arn: &str, rest: &[&str]) -> Output {
    let mut args = vec![
        cmd,
        "--issuer",
        "aws-pca",
        "--ca-arn",
        arn,
        "--endpoint-url",
        &pca.url,
        "--region",
        "us-east-1",
    ];
    args.extend_from_slice(rest);
    meshtrust(&args)
}

fn assert_bundle(dir: &Path) -> serde_json::Value {
    assert_bundle_independently_valid(dir);
    let cert = dir.join("ca-cert.pem");
    let out = meshtrust(&["verify", &dir.display().to_string(), "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let info = meshtrust(&["inspect", &cert.display().to_string(), "-o", "json"]);
    serde_json::from_slice::<serde_json::Value>(&info.stdout).unwrap()[0]["certificates"][0].clone()
}

#[tokio::test]
async fn intermediates_from_a_faithful_aws_private_ca_are_valid_istio_bundles() {
    let pca = Emulator::start(Flavor::Faithful);
    for (algorithm, key_kind) in [("EC_prime256v1", "ecdsa"), ("RSA_2048", "rsa")] {
        let arn = pca.root_ca(algorithm, true).await;
        let out = tempfile::tempdir().unwrap();
        let o = out.path().display().to_string();
        let run = meshtrust_aws(
            "cacerts",
            &pca,
            &arn,
            &[
                "--cluster",
                "east,west",
                "--out",
                &o,
                "--path-len",
                "1",
                "--validity",
                "90d",
            ],
        );
        assert!(run.status.success(), "{algorithm}: {}", text(&run));
        let mut roots = Vec::new();
        for c in ["east", "west"] {
            let cert = assert_bundle(&out.path().join(c));
            assert_eq!(
                cert["path_len"], 1,
                "{algorithm}: the PathLen1 template was applied"
            );
            assert_eq!(cert["issuer"], "O=Acme, CN=Acme Mesh Root");
            let days = cert["seconds_left"].as_i64().unwrap() / 86400;
            assert!(
                (89..=90).contains(&days),
                "{algorithm}: validity honoured: {days}"
            );
            assert_eq!(
                cert["key"]["kind"], "ecdsa",
                "the intermediate keeps meshtrust's key type"
            );
            roots.push(std::fs::read(out.path().join(c).join("root-cert.pem")).unwrap());
            let (_, text_out) = openssl(&[
                "x509",
                "-in",
                &out.path().join(c).join("ca-cert.pem").display().to_string(),
                "-noout",
                "-text",
            ]);
            let signed_by = if key_kind == "rsa" {
                "sha256WithRSAEncryption"
            } else {
                "ecdsa-with-SHA256"
            };
            assert!(
                text_out.contains(signed_by),
                "{algorithm}: signed by the CA's own key:\n{text_out}"
            );
        }
        assert_eq!(roots[0], roots[1], "both clusters trust the same AWS root");
        // Cross-cluster: east's workload validates against west's trust bundle.
        let east = out.path().join("east");
        let leaf = sign_workload_cert(&east.join("ca-cert.pem"), &east.join("ca-key.pem"));
        webpki_verify(
            &leaf,
            &[&east.join("cert-chain.pem")],
            &out.path().join("west/root-cert.pem"),
        )
        .unwrap();
    }
}

#[tokio::test]
async fn demo_accepts_the_aws_issuer_too() {
    let pca = Emulator::start(Flavor::Faithful);
    let arn = pca.root_ca("EC_prime256v1", true).await;
    let out = tempfile::tempdir().unwrap();
    let o = out.path().display().to_string();
    let run = meshtrust_aws("demo", &pca, &arn, &["--clusters", "c1", "--out", &o]);
    assert!(run.status.success(), "{}", text(&run));
    assert!(text(&run).contains(&arn));
    assert!(
        !out.path().join("root-key.pem").exists(),
        "no local root with an AWS issuer"
    );
    assert_bundle(&out.path().join("c1"));
}

#[tokio::test]
async fn stock_moto_returns_a_certificate_that_is_not_a_ca_and_nothing_is_written() {
    let pca = Emulator::start(Flavor::Stock);
    let arn = pca.root_ca("EC_prime256v1", true).await;
    let out = tempfile::tempdir().unwrap();
    let before = snapshot(out.path());
    let o = out.path().join("certs").display().to_string();
    let run = meshtrust_aws("cacerts", &pca, &arn, &["--cluster", "c1", "--out", &o]);
    assert!(!run.status.success());
    let msg = text(&run);
    for want in [
        "not a CA",
        "SubordinateCACertificate_PathLen0/V1",
        arn.as_str(),
    ] {
        assert!(msg.contains(want), "`{want}` not in: {msg}");
    }
    assert_eq!(snapshot(out.path()), before, "nothing was written");
}

#[tokio::test]
async fn a_ca_that_is_not_active_or_does_not_exist_is_refused_clearly() {
    let pca = Emulator::start(Flavor::Faithful);
    let pending = pca.root_ca("EC_prime256v1", false).await;
    let missing = pending.replace(&pending[pending.len() - 12..], "000000000000");
    let out = tempfile::tempdir().unwrap();
    let o = out.path().join("certs").display().to_string();
    for (arn, wants) in [
        (
            pending.as_str(),
            vec![
                "PENDING_CERTIFICATE, not ACTIVE",
                "ImportCertificateAuthorityCertificate",
            ],
        ),
        (missing.as_str(), vec!["was not found", "--region"]),
    ] {
        let run = meshtrust_aws("cacerts", &pca, arn, &["--cluster", "c1", "--out", &o]);
        assert!(!run.status.success());
        for want in wants {
            assert!(text(&run).contains(want), "`{want}` not in: {}", text(&run));
        }
        assert!(!out.path().join("certs").exists());
    }
}

#[test]
fn the_aws_issuer_needs_an_arn_and_no_local_root() {
    let run = meshtrust(&[
        "cacerts",
        "--issuer",
        "aws-pca",
        "--cluster",
        "c1",
        "--out",
        "/nonexistent",
    ]);
    assert_eq!(run.status.code(), Some(2));
    assert!(text(&run).contains("--ca-arn"), "{}", text(&run));
    let run = meshtrust(&["cacerts", "--cluster", "c1", "--out", "/nonexistent"]);
    assert!(!run.status.success());
    assert!(text(&run).contains("needs --root DIR"), "{}", text(&run));
    let run = meshtrust(&[
        "cacerts",
        "--issuer",
        "aws-pca",
        "--ca-arn",
        "arn:x",
        "--root",
        "/tmp",
        "--cluster",
        "c1",
        "--out",
        "/nonexistent",
    ]);
    assert!(!run.status.success());
    assert!(
        text(&run).contains("--root is for --issuer local"),
        "{}",
        text(&run)
    );
}
