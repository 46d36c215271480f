//! openssl as an independent peer: it verifies the serving certificates and the proofs of
//! possession that meshtrust makes, makes requests and signatures that meshtrust must read,
//! and agrees with meshtrust on which requests are tampered with.
//!
//! The tests write files for openssl, in a temporary directory: `ca` itself never does I/O.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::process::Command;

use meshtrust_ca::*;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

/// Runs openssl in `dir`; whether it succeeded, and what it printed.
fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl must be installed for these tests (apt-get install openssl)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap()
}

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

#[test]
fn openssl_verifies_serving_certificates_for_sslserver_by_name_and_ip() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = RootParams::default().self_signed(NOW).unwrap();
    let other = RootParams::default().self_signed(NOW).unwrap();
    write(d, "root.pem", root.certificate().to_pem());
    write(d, "other.pem", other.certificate().to_pem());
    let at = (NOW + Duration::hours(1)).unix_timestamp().to_string();
    for key_type in [KeyType::EcdsaP256, KeyType::Rsa2048] {
        let key = PrivateKey::generate(key_type).unwrap();
        let leaf = root
            .sign_server_certificate(
                &key,
                &names(&["signer.meshtrust.svc", "127.0.0.1"]),
                Duration::days(90),
                NOW,
            )
            .unwrap();
        write(d, "leaf.pem", leaf.to_pem());
        let verify = |ca: &str, check: &[&str]| {
            let mut args = vec!["verify", "-CAfile", ca, "-purpose", "sslserver"];
            args.extend(["-attime", at.as_str()]);
            args.extend(check);
            args.push("leaf.pem");
            openssl(d, &args)
        };
        let cases: [(&str, &str, &[&str], bool); 6] = [
            ("the leaf", "root.pem", &[], true),
            (
                "its DNS name",
                "root.pem",
                &["-verify_hostname", "signer.meshtrust.svc"],
                true,
            ),
            (
                "its IP address",
                "root.pem",
                &["-verify_ip", "127.0.0.1"],
                true,
            ),
            (
                "another DNS name",
                "root.pem",
                &["-verify_hostname", "other.meshtrust.svc"],
                false,
            ),
            (
                "another IP address",
                "root.pem",
                &["-verify_ip", "127.0.0.2"],
                false,
            ),
            ("another root", "other.pem", &[], false),
        ];
        for (case, ca, check, accepted) in cases {
            let (ok, text) = verify(ca, check);
            assert_eq!(ok, accepted, "{key_type}, {case}: {text}");
            if accepted {
                assert!(text.contains("leaf.pem: OK"), "{key_type}, {case}: {text}");
            }
        }
    }
}

#[test]
fn openssl_refuses_a_serving_certificate_as_an_issuer_or_a_client() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = RootParams::default().self_signed(NOW).unwrap();
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let leaf = root
        .sign_server_certificate(&key, &names(&["a.example"]), Duration::days(1), NOW)
        .unwrap();
    write(d, "root.pem", root.certificate().to_pem());
    write(d, "leaf.pem", leaf.to_pem());
    write(d, "leaf-key.pem", key.to_pem().as_bytes());
    let (ok, text) = openssl(d, &["x509", "-in", "leaf.pem", "-noout", "-text"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("X509v3 Basic Constraints: critical"),
        "{text}"
    );
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(text.contains("TLS Web Server Authentication"), "{text}");

    // A certificate that openssl signs with the leaf's key, as if the leaf were a CA.
    let steps: [&[&str]; 2] = [
        &[
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-keyout",
            "child-key.pem",
            "-subj",
            "/CN=child",
            "-out",
            "child.csr",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "child.csr",
            "-CA",
            "leaf.pem",
            "-CAkey",
            "leaf-key.pem",
            "-set_serial",
            "7",
            "-days",
            "1",
            "-out",
            "child.pem",
        ],
    ];
    for step in steps {
        let (ok, text) = openssl(d, step);
        assert!(ok, "{step:?}: {text}");
    }
    let verify = |purpose: &str, untrusted: &[&str], cert: &str| {
        let mut args = vec![
            "verify",
            "-no_check_time",
            "-CAfile",
            "root.pem",
            "-purpose",
            purpose,
        ];
        args.extend(untrusted);
        args.push(cert);
        openssl(d, &args)
    };
    let (ok, text) = verify("sslserver", &[], "leaf.pem");
    assert!(ok, "the leaf itself is fine: {text}");
    let (ok, text) = verify("sslserver", &["-untrusted", "leaf.pem"], "child.pem");
    assert!(!ok, "a CA:FALSE certificate cannot issue: {text}");
    let (ok, text) = verify("sslclient", &[], "leaf.pem");
    assert!(
        !ok,
        "a serverAuth-only certificate is no client certificate: {text}"
    );
}

#[test]
fn openssl_verifies_proofs_of_possession_for_every_key_type() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cluster = ClusterName::new("cluster1").unwrap();
    let csr = IntermediateParams::new(cluster.clone())
        .csr(&PrivateKey::generate(KeyType::EcdsaP256).unwrap())
        .unwrap();
    let msg = possession_message("meshtrust-renewal-v1", &cluster, NOW, &csr);
    write(d, "msg", &msg);
    write(d, "changed", [&msg[..], b"x"].concat());
    for (key_type, digest) in [
        (KeyType::EcdsaP256, "-sha256"),
        (KeyType::EcdsaP384, "-sha384"),
        (KeyType::Rsa2048, "-sha256"),
    ] {
        let key = PrivateKey::generate(key_type).unwrap();
        let spki = pem::encode(&pem::Pem::new("PUBLIC KEY", key.public_key_der()));
        write(d, "pub.pem", spki);
        write(d, "sig", key.sign_message(&msg).unwrap());
        let check = |file: &str| {
            openssl(
                d,
                &[
                    "dgst",
                    digest,
                    "-verify",
                    "pub.pem",
                    "-signature",
                    "sig",
                    file,
                ],
            )
        };
        let (ok, text) = check("msg");
        assert!(ok && text.contains("Verified OK"), "{key_type}: {text}");
        let (ok, text) = check("changed");
        assert!(!ok, "{key_type}: a changed message must fail: {text}");
    }
}

#[test]
fn meshtrust_verifies_signatures_that_openssl_makes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "msg",
        b"meshtrust-renewal-v1\ncluster1\n2026-01-01T00:00:00Z\nab\n",
    );
    let keys: [(&str, &[&str], &str); 3] = [
        (
            "P-256",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "-sha256",
        ),
        (
            "P-384",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
            "-sha384",
        ),
        ("RSA-2048", &["-newkey", "rsa:2048"], "-sha256"),
    ];
    for (name, newkey, digest) in keys {
        let mut args = vec!["req", "-x509", "-nodes", "-subj", "/CN=peer", "-days", "1"];
        args.extend(newkey);
        args.extend(["-keyout", "key.pem", "-out", "cert.pem"]);
        let (ok, text) = openssl(d, &args);
        assert!(ok, "{name}: {text}");
        let (ok, text) = openssl(
            d,
            &["dgst", digest, "-sign", "key.pem", "-out", "sig", "msg"],
        );
        assert!(ok, "{name}: {text}");
        let cert = Certificate::all_from_pem("cert.pem", &read(d, "cert.pem")).unwrap();
        let (msg, sig) = (read(d, "msg"), read(d, "sig"));
        cert[0]
            .verify_message(&msg, &sig)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            cert[0].verify_message(b"another message", &sig).is_err(),
            "{name}"
        );
    }
}

#[test]
fn requests_that_openssl_makes_are_read_and_matched() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let params = IntermediateParams::new(ClusterName::new("c1").unwrap());
    let request = |newkey: &[&str], subj: &str, san: &str| {
        let mut args = vec!["req", "-new", "-nodes", "-keyout", "key.pem", "-subj", subj];
        args.extend(newkey);
        args.extend(["-addext", san, "-outform", "DER", "-out", "csr.der"]);
        let (ok, text) = openssl(d, &args);
        assert!(ok, "{text}");
        Csr::from_der(read(d, "csr.der")).inspect().unwrap()
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
    let istiod = "subjectAltName=DNS:istiod.istio-system.svc";
    let info = request(&ec, "/O=Istio/CN=Intermediate CA/L=c1", istiod);
    assert_eq!(info.subject, "O=Istio, CN=Intermediate CA, L=c1");
    assert_eq!(
        csr_matches(&info, &params, &[KeyType::EcdsaP256]),
        Vec::<String>::new()
    );

    let info = request(
        &["-newkey", "rsa:2048"],
        "/O=Istio/CN=Intermediate CA/L=c2",
        "subjectAltName=DNS:istiod.istio-system.svc,URI:spiffe://x/y",
    );
    assert_eq!(
        csr_matches(&info, &params, &[KeyType::EcdsaP256]),
        [
            "the CSR's key is RSA 2048, but only ecdsa-p256 keys are allowed",
            "the CSR's subject L is `c2`, but the parameters require `c1`",
            "the CSR asks for the SAN `URI:spiffe://x/y`; an intermediate carries DNS names only",
        ]
    );
}

#[test]
fn openssl_and_meshtrust_agree_on_which_requests_are_tampered_with() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let good = IntermediateParams::new(ClusterName::new("c1").unwrap())
        .csr(&key)
        .unwrap();
    let mut tampered = good.der().to_vec();
    let at = tampered
        .windows(15)
        .position(|w| w == b"Intermediate CA")
        .unwrap();
    tampered[at + 14] = b'B';
    for (case, der, intact) in [
        ("intact", good.der().to_vec(), true),
        ("tampered", tampered, false),
    ] {
        write(d, "csr.der", &der);
        let (ok, text) = openssl(
            d,
            &[
                "req", "-inform", "DER", "-in", "csr.der", "-verify", "-noout",
            ],
        );
        // openssl 3.0 exits 0 either way; its verdict is in the text.
        assert!(ok, "{text}");
        let verdict = text.contains("self-signature verify OK");
        assert_eq!(verdict, intact, "openssl on the {case} request: {text}");
        assert_eq!(
            Csr::from_der(der).inspect().is_ok(),
            intact,
            "meshtrust on the {case} request"
        );
    }
}
