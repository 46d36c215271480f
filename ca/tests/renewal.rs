//! Table tests of the reissue policy, renewal times and retry backoff, at fixed times.

use meshtrust_ca::*;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

fn cluster(name: &str) -> ClusterName {
    ClusterName::new(name).unwrap()
}

/// An intermediate for `params` issued by `root` at NOW, in the bundle of that root.
fn bundle(root: &RootCa, params: &IntermediateParams) -> CaCerts {
    let key = PrivateKey::generate(params.key_type).unwrap();
    let signed = root
        .sign_intermediate(&params.csr(&key).unwrap(), &params.profile(), NOW)
        .unwrap();
    root.cacerts(signed.certificate, key)
}

/// `files` with `name` replaced by `contents`, or removed when `None`.
fn edit(files: &BundleFiles, name: &str, contents: Option<&[u8]>) -> BundleFiles {
    let mut out = BundleFiles::new();
    for n in files.names().filter(|n| *n != name) {
        out.insert(n, files.get(n).unwrap().to_vec());
    }
    if let Some(c) = contents {
        out.insert(name, c.to_vec());
    }
    out
}

/// A cluster intermediate issued by a subordinate CA of `root` (root → sub → cluster1).
fn through_subordinate(root: &RootCa) -> CaCerts {
    let sub_params = IntermediateParams::new(cluster("sub"));
    let sub_key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let sub = root
        .sign_intermediate(
            &sub_params.csr(&sub_key).unwrap(),
            &IntermediateProfile::new(1, Duration::days(1000)),
            NOW,
        )
        .unwrap()
        .certificate;
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Istio");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Intermediate CA");
    params
        .distinguished_name
        .push(rcgen::DnType::LocalityName, "cluster1");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.not_before = NOW;
    params.not_after = NOW + Duration::days(730);
    let issuer = rcgen::Issuer::from_ca_cert_der(sub.der(), &sub_key).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let cert = Certificate::from_der("ca-cert.pem", 1, cert.der().to_vec()).unwrap();
    CaCerts::new(
        cert,
        key,
        vec![sub, root.certificate().clone()],
        root.trust_bundle(),
    )
}

/// (case, bundle, spec, issuing roots, now, expected reason, text the message must hold)
type ReissueCase<'a> = (
    &'a str,
    Option<BundleFiles>,
    IntermediateParams,
    TrustBundle,
    OffsetDateTime,
    Option<ReissueReason>,
    &'a str,
);

#[test]
fn reissue_reasons() {
    let root = RootParams::default().self_signed(NOW).unwrap();
    let other_root = RootParams::default().self_signed(NOW).unwrap();
    let params = IntermediateParams::new(cluster("cluster1"));
    let good = bundle(&root, &params);
    let istio = good.bundle_files(BundleFormat::Istio);
    let tls = good.bundle_files(BundleFormat::Tls);
    let foreign = bundle(&other_root, &params).bundle_files(BundleFormat::Istio);
    let cluster2 = bundle(&root, &IntermediateParams::new(cluster("cluster2")));
    let other_key = PrivateKey::generate(KeyType::EcdsaP256).unwrap().to_pem();
    let sub = through_subordinate(&root);
    let sub_files = sub.bundle_files(BundleFormat::Istio);
    let sub_without_link = edit(
        &sub_files,
        "cert-chain.pem",
        Some(
            [sub.certificate().to_pem(), root.certificate().to_pem()]
                .concat()
                .as_bytes(),
        ),
    );
    let garbage = b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n";

    let spec = IntermediateParams::new(cluster("cluster1"));
    let spec_with = |change: &dyn Fn(&mut IntermediateParams)| {
        let mut s = spec.clone();
        change(&mut s);
        s
    };
    let tls_spec = spec_with(&|s| s.format = BundleFormat::Tls);
    let roots = root.trust_bundle();
    let rotating = root
        .trust_bundle()
        .with_root(other_root.certificate().clone());
    // Issued at NOW − 5 min for 730 days + 5 min: due at notAfter − lifetime/3.
    let due = datetime!(2027-05-02 15:58:20 UTC);

    use ReissueReason::*;
    let cases: Vec<ReissueCase> = vec![
        (
            "a fresh bundle needs nothing",
            Some(istio.clone()),
            spec.clone(),
            roots.clone(),
            NOW,
            None,
            "",
        ),
        (
            "a fresh tls bundle asked for in the tls form needs nothing",
            Some(tls.clone()),
            tls_spec.clone(),
            roots.clone(),
            NOW,
            None,
            "",
        ),
        (
            "a bundle issued by the old root is fine while both roots may issue",
            Some(istio.clone()),
            spec.clone(),
            rotating.clone(),
            NOW,
            None,
            "",
        ),
        (
            "a cluster without cacerts gets one",
            None,
            spec.clone(),
            roots.clone(),
            NOW,
            Some(DoesNotExist),
            "cluster1 has no cacerts bundle yet",
        ),
        (
            "an empty cacerts is the same as none",
            Some(BundleFiles::new()),
            spec.clone(),
            roots.clone(),
            NOW,
            Some(DoesNotExist),
            "cluster1 has no cacerts bundle yet",
        ),
        (
            "a missing key is missing data",
            Some(edit(&istio, "ca-key.pem", None)),
            spec.clone(),
            roots.clone(),
            NOW,
            Some(MissingData),
            "cluster1: cacerts lacks ca-key.pem",
        ),
        (
            "an empty root-cert.pem is missing data",
            Some(edit(&istio, "root-cert.pem", Some(b"\n"))),
            spec.clone(),
            roots.clone(),
            NOW,
            Some(MissingData),
            "lacks root-cert.pem",
        ),
        (
            "an unreadable cert-chain.pem is missing data",
            Some(edit(&istio, "cert-chain.pem", Some(garbage))),
            spec.clone(),
            roots.clone(),
            NOW,
            Some(MissingData),
            "cluster1/cert-chain.pem: not a valid PEM certificate",
        ),
        (
            "an incomplete bundle of the other form is missing data",
            Some(edit(&tls, "tls.key", None)),
            spec.clone(),
            roots.clone(),
            NOW,
            Some(MissingData),
            "incomplete tls bundle (lacks tls.key), and the spec asks for the istio form",
        ),
        (
            "a complete bundle of the other form is a spec change",
            Some(tls.clone()),
            spec.clone(),
            roots.clone(),
            NOW,
            Some(SpecChanged),
            "cluster1/tls.crt is delivered in the tls form, the spec asks for the istio form",
        ),
        (
            "a key of another certificate is an invalid key pair",
            Some(edit(&istio, "ca-key.pem", Some(other_key.as_bytes()))),
            spec.clone(),
            roots.clone(),
            NOW,
            Some(InvalidKeyPair),
            "cluster1/ca-key.pem does not match ca-cert.pem",
        ),
        (
            "an unreadable ca-cert.pem is an invalid key pair",
            Some(edit(&istio, "ca-cert.pem", Some(garbage))),
            spec.clone(),
            roots.clone(),
            NOW,
            Some(InvalidKeyPair),
            "cluster1/ca-cert.pem: not a valid PEM certificate",
        ),
        (
            "an unreadable key is an invalid key pair",
            Some(edit(&istio, "ca-key.pem", Some(b"hello"))),
            spec.clone(),
            roots.clone(),
            NOW,
            Some(InvalidKeyPair),
            "cluster1/ca-key.pem",
        ),
        (
            "an intermediate from another root is the incorrect issuer",
            Some(foreign.clone()),
            spec.clone(),
            roots.clone(),
            NOW,
            Some(IncorrectIssuer),
            "cluster1/ca-cert.pem (O=Istio, CN=Intermediate CA, L=cluster1, issued by O=Istio, CN=Root CA) does not chain to the mesh's issuing root",
        ),
        (
            "an intermediate below a subordinate CA chains to the root through cert-chain.pem",
            Some(sub_files.clone()),
            spec.clone(),
            roots.clone(),
            NOW,
            None,
            "",
        ),
        (
            "without the subordinate CA in cert-chain.pem the issuer is unknown",
            Some(sub_without_link),
            spec.clone(),
            roots.clone(),
            NOW,
            Some(IncorrectIssuer),
            "does not chain",
        ),
        (
            "another key type is a spec change",
            Some(istio.clone()),
            spec_with(&|s| s.key_type = KeyType::EcdsaP384),
            roots.clone(),
            NOW,
            Some(SpecChanged),
            "cluster1/ca-cert.pem has key type ecdsa-p256, the spec asks for ecdsa-p384",
        ),
        (
            "another path length is a spec change",
            Some(istio.clone()),
            spec_with(&|s| s.path_len = 1),
            roots.clone(),
            NOW,
            Some(SpecChanged),
            "has pathLen 0, the spec asks for 1",
        ),
        (
            "another organization is a spec change",
            Some(istio.clone()),
            spec_with(&|s| s.organization = "Acme".into()),
            roots.clone(),
            NOW,
            Some(SpecChanged),
            "has organization (O) [Istio], the spec asks for Acme",
        ),
        (
            "another cluster's intermediate is a spec change",
            Some(cluster2.bundle_files(BundleFormat::Istio)),
            spec.clone(),
            roots.clone(),
            NOW,
            Some(SpecChanged),
            "names cluster (L) [cluster2], the spec asks for cluster1",
        ),
        (
            "every difference is named at once",
            Some(istio.clone()),
            spec_with(&|s| {
                s.path_len = 2;
                s.organization = "Acme".into();
            }),
            roots.clone(),
            NOW,
            Some(SpecChanged),
            "has pathLen 0, the spec asks for 2; has organization (O) [Istio], the spec asks for Acme",
        ),
        (
            "an intermediate at its notAfter has expired",
            Some(istio.clone()),
            spec.clone(),
            roots.clone(),
            NOW + Duration::days(730),
            Some(Expired),
            "cluster1/ca-cert.pem expired at 2028-01-01 00:00:00 UTC",
        ),
        (
            "an intermediate at its renewal time is renewed",
            Some(istio.clone()),
            spec.clone(),
            roots.clone(),
            due,
            Some(Renewing),
            "expires at 2028-01-01 00:00:00 UTC and was due for renewal at 2027-05-02 15:58:20 UTC",
        ),
        (
            "an intermediate a second before its renewal time is left alone",
            Some(istio.clone()),
            spec.clone(),
            roots.clone(),
            due - Duration::seconds(1),
            None,
            "",
        ),
        (
            "a broken key pair wins over an expired certificate",
            Some(edit(&istio, "ca-key.pem", Some(other_key.as_bytes()))),
            spec.clone(),
            roots.clone(),
            NOW + Duration::days(800),
            Some(InvalidKeyPair),
            "does not match",
        ),
        (
            "the wrong issuer wins over a spec change",
            Some(foreign),
            spec_with(&|s| s.path_len = 1),
            roots.clone(),
            NOW,
            Some(IncorrectIssuer),
            "does not chain",
        ),
        (
            "a spec change wins over expiry",
            Some(istio.clone()),
            spec_with(&|s| s.path_len = 1),
            roots.clone(),
            NOW + Duration::days(800),
            Some(SpecChanged),
            "pathLen",
        ),
    ];
    for (case, files, desired, issuing, now, reason, needle) in cases {
        let got = reissue_reason(
            files.as_ref(),
            &desired,
            &issuing,
            &RenewalPolicy::Default,
            now,
        );
        assert_eq!(got.as_ref().map(|r| r.reason), reason, "{case}: {got:?}");
        if let Some(r) = got {
            assert!(r.message.contains(needle), "{case}: {}", r.message);
        }
    }
}

#[test]
fn every_reissue_reason_is_covered_by_the_table() {
    // The table above asserts each reason; this one keeps the list and the names in step.
    assert_eq!(ReissueReason::ALL.len(), 7);
    for r in ReissueReason::ALL {
        assert_eq!(r.as_str(), format!("{r:?}"));
        assert_eq!(r.to_string(), r.as_str());
        assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
    }
    let reissue = Reissue {
        reason: ReissueReason::SpecChanged,
        message: "m".into(),
    };
    assert_eq!(
        serde_json::to_value(&reissue).unwrap(),
        serde_json::json!({"reason": "SpecChanged", "message": "m"})
    );
}

#[test]
fn renewal_times() {
    let nb = datetime!(2026-01-01 00:00 UTC);
    let na = datetime!(2026-01-31 00:00 UTC);
    let two_thirds = datetime!(2026-01-21 00:00 UTC);
    use RenewalPolicy::*;
    let cases = [
        (
            "the default renews at two thirds of the lifetime",
            Default,
            nb,
            na,
            two_thirds,
        ),
        (
            "Before renews that long before notAfter",
            Before(Duration::days(5)),
            nb,
            na,
            datetime!(2026-01-26 00:00 UTC),
        ),
        (
            "Before just under the lifetime is honoured",
            Before(Duration::days(30) - Duration::seconds(1)),
            nb,
            na,
            datetime!(2026-01-01 00:00:01 UTC),
        ),
        (
            "Before as long as the lifetime falls back to two thirds",
            Before(Duration::days(30)),
            nb,
            na,
            two_thirds,
        ),
        (
            "Before longer than the lifetime falls back to two thirds",
            Before(Duration::days(90)),
            nb,
            na,
            two_thirds,
        ),
        (
            "a zero Before falls back to two thirds",
            Before(Duration::ZERO),
            nb,
            na,
            two_thirds,
        ),
        (
            "a negative Before falls back to two thirds",
            Before(Duration::days(-1)),
            nb,
            na,
            two_thirds,
        ),
        (
            "BeforePercentage 50 renews halfway",
            BeforePercentage(50),
            nb,
            na,
            datetime!(2026-01-16 00:00 UTC),
        ),
        (
            "BeforePercentage 10 renews three days of thirty before",
            BeforePercentage(10),
            nb,
            na,
            datetime!(2026-01-28 00:00 UTC),
        ),
        (
            "BeforePercentage 99 renews almost at once",
            BeforePercentage(99),
            nb,
            na,
            datetime!(2026-01-01 07:12 UTC),
        ),
        (
            "BeforePercentage 0 falls back to two thirds",
            BeforePercentage(0),
            nb,
            na,
            two_thirds,
        ),
        (
            "BeforePercentage 100 falls back to two thirds",
            BeforePercentage(100),
            nb,
            na,
            two_thirds,
        ),
        (
            "fractions of a second are truncated",
            Default,
            nb,
            nb + Duration::seconds(10),
            datetime!(2026-01-01 00:00:06 UTC),
        ),
        (
            "a certificate without lifetime renews at notAfter",
            Default,
            na,
            na,
            na,
        ),
        (
            "an inverted validity renews at notAfter",
            Before(Duration::days(1)),
            na,
            nb,
            nb,
        ),
    ];
    for (case, policy, not_before, not_after, expected) in cases {
        assert_eq!(
            policy.renewal_time(not_before, not_after),
            expected,
            "{case}"
        );
    }
}

#[test]
fn renewal_percentages_are_checked_when_built() {
    assert_eq!(
        RenewalPolicy::before_percentage(33).unwrap(),
        RenewalPolicy::BeforePercentage(33)
    );
    for p in [0, 100, 255] {
        let msg = RenewalPolicy::before_percentage(p).unwrap_err().to_string();
        assert!(msg.contains("between 1 and 99"), "{p}: {msg}");
    }
    assert_eq!(RenewalPolicy::default(), RenewalPolicy::Default);
}

#[test]
fn the_next_check_is_the_renewal_time() {
    let root = RootParams::default().self_signed(NOW).unwrap();
    let b = bundle(&root, &IntermediateParams::new(cluster("cluster1")));
    let cases = [
        (
            "the istio form, default policy",
            b.bundle_files(BundleFormat::Istio),
            RenewalPolicy::Default,
            Some(datetime!(2027-05-02 15:58:20 UTC)),
        ),
        (
            "the tls form, 30 days before",
            b.bundle_files(BundleFormat::Tls),
            RenewalPolicy::Before(Duration::days(30)),
            Some(datetime!(2027-12-02 00:00 UTC)),
        ),
        (
            "no bundle, no time",
            BundleFiles::new(),
            RenewalPolicy::Default,
            None,
        ),
    ];
    for (case, files, policy, expected) in cases {
        assert_eq!(next_check(&files, &policy), expected, "{case}");
    }
}

#[test]
fn backoff_doubles_up_to_its_cap() {
    let d = Backoff::default();
    let huge = Backoff {
        base: Duration::MAX,
        cap: Duration::MAX,
    };
    let fine = Backoff {
        base: Duration::nanoseconds(1),
        cap: Duration::MAX,
    };
    let cases = [
        ("no failure, no delay", d, 0, Duration::ZERO),
        (
            "the first failure waits the base",
            d,
            1,
            Duration::seconds(5),
        ),
        (
            "the second failure waits twice the base",
            d,
            2,
            Duration::seconds(10),
        ),
        (
            "the third failure waits four times the base",
            d,
            3,
            Duration::seconds(20),
        ),
        (
            "the sixth failure waits 160 s",
            d,
            6,
            Duration::seconds(160),
        ),
        (
            "the seventh failure is capped at five minutes",
            d,
            7,
            Duration::minutes(5),
        ),
        (
            "a hundred failures stay at the cap",
            d,
            100,
            Duration::minutes(5),
        ),
        (
            "u32::MAX failures stay at the cap",
            d,
            u32::MAX,
            Duration::minutes(5),
        ),
        ("a huge base does not overflow", huge, 2, Duration::MAX),
        (
            "a huge base and count do not overflow",
            huge,
            u32::MAX,
            Duration::MAX,
        ),
        (
            "doubling to 2^64 ns is exact",
            fine,
            65,
            Duration::new(18_446_744_073, 709_551_616),
        ),
        (
            "doubling far past Duration::MAX is capped",
            fine,
            200,
            Duration::MAX,
        ),
        (
            "a cap below the base wins",
            Backoff {
                base: Duration::minutes(10),
                cap: Duration::minutes(1),
            },
            1,
            Duration::minutes(1),
        ),
        (
            "a zero base never waits",
            Backoff {
                base: Duration::ZERO,
                cap: Duration::minutes(1),
            },
            u32::MAX,
            Duration::ZERO,
        ),
    ];
    for (case, backoff, attempts, expected) in cases {
        assert_eq!(backoff.delay(attempts), expected, "{case}");
    }
}

#[test]
fn retries_are_scheduled_after_the_last_failure() {
    let d = Backoff::default();
    let failed = datetime!(2026-01-01 12:00 UTC);
    assert_eq!(d.retry_at(failed, 0), failed);
    assert_eq!(d.retry_at(failed, 3), datetime!(2026-01-01 12:00:20 UTC));
    assert_eq!(d.retry_at(failed, 50), datetime!(2026-01-01 12:05 UTC));
    let end_of_time = datetime!(9999-12-31 23:59:59 UTC);
    assert!(d.retry_at(end_of_time, 10) >= end_of_time);
}
