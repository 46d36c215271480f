//! Table tests of bundle verification, at a fixed `now`.

use meshtrust_ca::*;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

struct Mesh {
    root: RootCa,
    other_root: RootCa,
    bundle: CaCerts,
    other_key: PrivateKey,
}

fn mesh() -> Mesh {
    let root = RootParams::default().self_signed(NOW).unwrap();
    let other_root = RootParams::default().self_signed(NOW).unwrap();
    let params = IntermediateParams::new(ClusterName::new("c1").unwrap());
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let signed = root
        .sign_intermediate(&params.csr(&key).unwrap(), &params.profile(), NOW)
        .unwrap();
    let bundle = root.cacerts(signed.certificate, key);
    Mesh {
        root,
        other_root,
        bundle,
        other_key: PrivateKey::generate(KeyType::EcdsaP256).unwrap(),
    }
}

fn problems(report: &BundleReport) -> Vec<(Severity, Problem)> {
    report
        .findings
        .iter()
        .map(|f| (f.severity, f.problem))
        .collect()
}

/// (case, files, now, expected findings)
type VerifyCase<'a> = (
    &'a str,
    BundleFiles,
    OffsetDateTime,
    Vec<(Severity, Problem)>,
);

#[test]
fn verification_table() {
    let m = mesh();
    let ca = m.bundle.certificate().to_pem();
    let root = m.root.certificate().to_pem();
    let other_root = m.other_root.certificate().to_pem();
    // The istio-layout bundle with `name` replaced by `contents`, or removed when `None`.
    let edit = |name: &str, contents: Option<String>| {
        let all = m.bundle.bundle_files(BundleFormat::Istio);
        let mut f = BundleFiles::new();
        for n in all.names().filter(|n| *n != name) {
            f.insert(n, all.get(n).unwrap().to_vec());
        }
        if let Some(c) = contents {
            f.insert(name, c.into_bytes());
        }
        f
    };
    use Problem::*;
    use Severity::{Error as E, Warning as W};
    let cases: Vec<VerifyCase> = vec![
        (
            "a complete bundle is accepted",
            m.bundle.bundle_files(BundleFormat::Istio),
            NOW,
            vec![],
        ),
        (
            "the tls layout is accepted",
            m.bundle.bundle_files(BundleFormat::Tls),
            NOW,
            vec![],
        ),
        (
            "a missing root-cert.pem is fatal",
            edit("root-cert.pem", None),
            NOW,
            vec![(E, MissingFile)],
        ),
        (
            "a missing ca-key.pem is fatal",
            edit("ca-key.pem", None),
            NOW,
            vec![(E, MissingFile)],
        ),
        (
            "a missing cert-chain.pem is fatal",
            edit("cert-chain.pem", None),
            NOW,
            vec![(E, MissingFile)],
        ),
        (
            "a key of another cluster is refused",
            edit("ca-key.pem", Some(m.other_key.to_pem().to_string())),
            NOW,
            vec![(E, KeyMismatch)],
        ),
        (
            "garbage in cert-chain.pem is malformed",
            edit(
                "cert-chain.pem",
                Some("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n".into()),
            ),
            NOW,
            vec![(E, MalformedPem)],
        ),
        (
            "a chain with the root first is out of order",
            edit("cert-chain.pem", Some(format!("{root}{ca}"))),
            NOW,
            vec![(E, ChainOrder)],
        ),
        (
            "a chain that stops at the intermediate is fine when the root is trusted",
            edit("cert-chain.pem", Some(ca.clone())),
            NOW,
            vec![],
        ),
        (
            "a trust bundle without the issuing root does not chain",
            edit("root-cert.pem", Some(other_root.clone())),
            NOW,
            vec![(E, UntrustedChain)],
        ),
        (
            "a rotation bundle holding the old and new roots is accepted",
            edit("root-cert.pem", Some(format!("{other_root}{root}"))),
            NOW,
            vec![],
        ),
        (
            "a bundle checked before it is valid is refused",
            m.bundle.bundle_files(BundleFormat::Istio),
            NOW - Duration::days(1),
            vec![(E, NotYetValid), (E, NotYetValid)],
        ),
        (
            "an expired intermediate is refused",
            m.bundle.bundle_files(BundleFormat::Istio),
            NOW + Duration::days(731),
            vec![(E, Expired)],
        ),
        (
            "an intermediate expiring within 30 days warns but is accepted",
            m.bundle.bundle_files(BundleFormat::Istio),
            NOW + Duration::days(710),
            vec![(W, ExpiresSoon)],
        ),
        (
            "every problem is reported, not just the first",
            {
                let mut f = edit("root-cert.pem", None);
                f.insert("ca-key.pem", m.other_key.to_pem().as_bytes().to_vec());
                f
            },
            NOW + Duration::days(731),
            vec![(E, MissingFile), (E, Expired), (E, KeyMismatch)],
        ),
        (
            "an empty directory is not a bundle",
            BundleFiles::new(),
            NOW,
            vec![(E, MissingFile)],
        ),
    ];
    for (case, files, now, want) in cases {
        let report = verify_bundle(&files, &VerifyOptions::at(now));
        let mut got = problems(&report);
        let mut want = want;
        got.sort_by_key(|p| format!("{p:?}"));
        want.sort_by_key(|p| format!("{p:?}"));
        assert_eq!(got, want, "{case}: {:#?}", report.findings);
        assert_eq!(
            report.accepted(),
            !want.iter().any(|(s, _)| *s == E),
            "{case}"
        );
    }
}

#[test]
fn a_tls_bundle_without_ca_crt_is_partial() {
    let m = mesh();
    let all = m.bundle.bundle_files(BundleFormat::Tls);
    let mut f = BundleFiles::new();
    for n in ["tls.crt", "tls.key"] {
        f.insert(n, all.get(n).unwrap().to_vec());
    }
    let report = verify_bundle(&f, &VerifyOptions::at(NOW));
    assert_eq!(report.format, BundleFormat::Tls);
    assert_eq!(
        problems(&report),
        vec![(Severity::Error, Problem::MissingFile)]
    );
    assert!(report.findings[0].message.contains("ca.crt"));
}

#[test]
fn the_report_names_the_anchor_root() {
    let m = mesh();
    let report = verify_bundle(
        &m.bundle.bundle_files(BundleFormat::Istio),
        &VerifyOptions::at(NOW),
    );
    assert_eq!(
        report.anchor_fingerprint,
        Some(m.root.certificate().fingerprint())
    );
    assert_eq!(
        report.root_fingerprints,
        vec![m.root.certificate().fingerprint()]
    );
}

#[test]
fn trust_bundles_grow_as_byte_supersets() {
    let m = mesh();
    let old = m.root.trust_bundle();
    let both = old.with_root(m.other_root.certificate().clone());
    assert!(is_byte_superset(
        both.to_pem().as_bytes(),
        old.to_pem().as_bytes()
    ));
    assert_eq!(
        both.common_roots(&old),
        vec![m.root.certificate().fingerprint()]
    );
    assert_eq!(
        both.with_root(m.root.certificate().clone()),
        both,
        "adding a present root changes nothing"
    );
    let unrelated = m.other_root.trust_bundle();
    assert!(!is_byte_superset(
        unrelated.to_pem().as_bytes(),
        old.to_pem().as_bytes()
    ));
}
