//! The agent's decision as a table of named cases, on bundles issued at fixed times.

use meshtrust_ca::{
    BundleFormat, CaCerts, ClusterName, IntermediateParams, PrivateKey, RootCa, RootParams,
    VerifyOptions, verify_bundle,
};
use meshtrust_issuer::server::wire;
use meshtrust_kube::{MANAGED_BY, ObservedSecret, cacerts_secret};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;

const T0: OffsetDateTime = datetime!(2026-12-01 10:00:00 UTC);

fn root() -> RootCa {
    RootParams::default().self_signed(T0).expect("a root")
}

/// An intermediate of 30 days issued by `root` at T0.
fn bundle(root: &RootCa) -> CaCerts {
    let mut params = IntermediateParams::new(ClusterName::new("east").expect("a name"));
    params.validity = Duration::days(30);
    let key = PrivateKey::generate(params.key_type).expect("a key");
    let csr = params.csr(&key).expect("a CSR");
    let signed = root
        .sign_intermediate(&csr, &params.profile(), T0)
        .expect("an intermediate");
    root.cacerts(signed.certificate, key)
}

fn secret(bundle: &CaCerts, managed: bool) -> ObservedSecret {
    let files = bundle.bundle_files(BundleFormat::Istio);
    let report = verify_bundle(&files, &VerifyOptions::at(T0));
    let mut secret = cacerts_secret("istio-system", &files, &report);
    if !managed {
        secret
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .remove(MANAGED_BY.0);
    }
    ObservedSecret::from_secret(secret)
}

fn held(bundle: &CaCerts, managed: bool) -> Held {
    Held::read(Some(&secret(bundle, managed)), T0 + Duration::hours(1))
}

fn facts<'a>(held: &'a Held, now: OffsetDateTime) -> Facts<'a> {
    Facts {
        held,
        pending: None,
        expected: None,
        unknown_to_service: false,
        foreign: ForeignCacerts::Backup,
        jitter_percent: 10,
        now,
    }
}

fn expected(bundle: &CaCerts, renew_at: OffsetDateTime, root: &RootCa) -> Expected {
    let files = bundle.bundle_files(BundleFormat::Istio);
    Expected {
        serial: wire::serial(bundle.certificate()),
        renew_at,
        roots: wire::fingerprints(&root.trust_bundle()),
        desired: DesiredCacerts {
            trust_bundle_pem: String::from_utf8(files.get("root-cert.pem").unwrap().to_vec())
                .unwrap(),
            reissue: false,
        },
    }
}

fn is_enroll(step: &Step) -> bool {
    matches!(step, Step::Enroll { .. })
}

#[test]
fn a_cluster_without_cacerts_enrolls() {
    let step = decide(&facts(&Held::Absent, T0));
    assert!(is_enroll(&step), "{step:?}");
}

#[test]
fn a_foreign_cacerts_is_replaced_with_backup_or_refused_by_flag() {
    let root = root();
    let held = held(&bundle(&root), false);
    assert!(is_enroll(&decide(&facts(&held, T0))));
    let refuse = Facts {
        foreign: ForeignCacerts::Refuse,
        ..facts(&held, T0)
    };
    assert!(
        matches!(decide(&refuse), Step::Refuse { reason } if reason.contains("not written by meshtrust"))
    );
}

#[test]
fn an_expired_cacerts_enrolls_again() {
    let root = root();
    let bundle = bundle(&root);
    let held = Held::read(Some(&secret(&bundle, true)), T0 + Duration::days(31));
    assert!(
        matches!(held, Held::Unusable { managed: true, .. }),
        "{held:?}"
    );
    assert!(is_enroll(&decide(&facts(&held, T0 + Duration::days(31)))));
}

#[test]
fn before_the_service_answers_renewal_is_due_a_third_before_expiry_plus_jitter() {
    let root = root();
    let bundle = bundle(&root);
    let held = held(&bundle, true);
    let nominal = T0 + Duration::days(20);
    let Step::Wait { until } = decide(&facts(&held, T0 + Duration::days(1))) else {
        panic!("a fresh intermediate waits");
    };
    assert!(
        until >= nominal && until < nominal + Duration::HOUR,
        "{until}"
    );
    assert!(matches!(decide(&facts(&held, until)), Step::Renew { .. }));
    assert!(matches!(
        decide(&facts(&held, until - Duration::SECOND)),
        Step::Wait { .. }
    ));
}

#[test]
fn the_services_renewal_time_wins_for_the_serial_it_was_given_for() {
    let root = root();
    let bundle = bundle(&root);
    let held = held(&bundle, true);
    let told = expected(&bundle, T0 + Duration::days(10), &root);
    let with = Facts {
        expected: Some(&told),
        ..facts(&held, T0 + Duration::days(1))
    };
    let Step::Wait { until } = decide(&with) else {
        panic!("waits")
    };
    assert!(until >= told.renew_at && until < told.renew_at + Duration::HOUR);
    // For another serial, the service's time says nothing about this intermediate.
    let other = Expected {
        serial: "01".into(),
        ..told.clone()
    };
    let with = Facts {
        expected: Some(&other),
        ..facts(&held, T0 + Duration::days(1))
    };
    assert!(matches!(decide(&with), Step::Wait { until } if until >= T0 + Duration::days(20)));
}

#[test]
fn a_reissue_asked_by_the_service_renews_now() {
    let root = root();
    let bundle = bundle(&root);
    let held = held(&bundle, true);
    let mut told = expected(&bundle, T0 + Duration::days(20), &root);
    told.roots.push("ab".repeat(32));
    told.desired.reissue = true;
    let with = Facts {
        expected: Some(&told),
        ..facts(&held, T0 + Duration::days(1))
    };
    assert!(matches!(decide(&with), Step::Renew { reason } if reason.contains("roots")));
}

#[test]
fn a_new_trust_file_from_the_service_is_written_as_given_keeping_the_intermediate() {
    let root = root();
    let other = RootParams::default()
        .self_signed(T0)
        .expect("a second root");
    let bundle = bundle(&root);
    let held = held(&bundle, true);
    let mut told = expected(&bundle, T0 + Duration::days(20), &root);
    told.desired
        .trust_bundle_pem
        .push_str(&other.certificate().to_pem());
    let with = Facts {
        expected: Some(&told),
        ..facts(&held, T0 + Duration::days(1))
    };
    let Step::UpdateTrust { trust_pem, .. } = decide(&with) else {
        panic!("a trust update: {:?}", decide(&with))
    };
    assert_eq!(trust_pem, told.desired.trust_bundle_pem);
    // The same trust file asks for nothing; a word given for another serial is not followed.
    let same = expected(&bundle, T0 + Duration::days(20), &root);
    let with = Facts {
        expected: Some(&same),
        ..facts(&held, T0 + Duration::days(1))
    };
    assert!(matches!(decide(&with), Step::Wait { .. }));
    let stale = Expected {
        serial: "01".into(),
        ..told.clone()
    };
    let with = Facts {
        expected: Some(&stale),
        ..facts(&held, T0 + Duration::days(1))
    };
    assert!(matches!(decide(&with), Step::Wait { .. }));
}

#[test]
fn an_intermediate_the_service_does_not_know_is_replaced_by_enrolling() {
    let root = root();
    let held = held(&bundle(&root), true);
    let with = Facts {
        unknown_to_service: true,
        ..facts(&held, T0 + Duration::days(1))
    };
    assert!(is_enroll(&decide(&with)));
}

#[test]
fn an_interrupted_issuance_resumes_with_its_key_or_is_dropped() {
    let root = root();
    let bundle = bundle(&root);
    let held = held(&bundle, true);
    let serial = wire::serial(bundle.certificate());
    let now = T0 + Duration::days(1);
    let fresh = |purpose| Pending {
        key: PrivateKey::generate(meshtrust_ca::KeyType::EcdsaP256).unwrap(),
        purpose,
    };
    let renew = fresh(Purpose::Renew {
        replaces: serial.clone(),
    });
    let with = |pending| Facts {
        pending: Some(pending),
        ..facts(&held, now)
    };
    assert!(matches!(decide(&with(&renew)), Step::Renew { .. }));
    let stale = fresh(Purpose::Renew {
        replaces: "01".into(),
    });
    assert_eq!(decide(&with(&stale)), Step::DropPending);
    let enroll = fresh(Purpose::Enroll);
    assert!(is_enroll(&decide(&with(&enroll))));
    // cacerts already holds the pending key: the write landed, only the cleanup did not.
    let landed = Pending {
        key: PrivateKey::from_pem("k", bundle.key().to_pem().as_bytes()).unwrap(),
        purpose: Purpose::Enroll,
    };
    assert_eq!(decide(&with(&landed)), Step::DropPending);
}

#[test]
fn jitter_stays_in_its_window_and_is_the_same_for_one_serial() {
    let at = T0;
    let window = Duration::days(10);
    let a = jitter("0a1b", at, at + window, 10);
    assert_eq!(a, jitter("0a1b", at, at + window, 10));
    assert!(a >= Duration::ZERO && a < Duration::HOUR);
    let spread: std::collections::BTreeSet<i64> = (0..50)
        .map(|i| jitter(&format!("{i:x}"), at, at + window, 10).whole_seconds())
        .collect();
    assert!(spread.len() > 40, "serials spread: {}", spread.len());
    // A short window bounds it by the percentage.
    let short = jitter("0a1b", at, at + Duration::seconds(100), 10);
    assert!(short < Duration::seconds(10));
    assert_eq!(jitter("0a1b", at, at, 10), Duration::ZERO);
}
