//! The per-cluster decision and the status each outcome leaves, by table.

use meshtrust_ca::{
    Backoff, BundleFiles, BundleFormat, ClusterName, IntermediateParams, PrivateKey, ReissueReason,
    RenewalPolicy, RootCa, RootParams, VerifyOptions, verify_bundle,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::crd::{
    ClusterStatus, Condition, ConditionStatus, RenewalRecord, RenewalRequest, find_condition,
    timestamp,
};

const T0: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

fn root() -> RootCa {
    RootParams::default()
        .self_signed(T0 - Duration::days(400))
        .unwrap()
}

/// A 90-day intermediate for `cluster1` issued by `root` at `at`.
/// What the table tests' cluster may hold: bundles from the mesh root, and from another.
struct Held {
    /// Issued a day before T0.
    fresh: BundleFiles,
    /// 90 days issued 5 min backdated at T0 − 70 d: due at two thirds, i.e. T0 − 10 d.
    due: BundleFiles,
    /// From another root.
    foreign: BundleFiles,
    params: IntermediateParams,
    roots: TrustBundle,
}

fn held() -> Held {
    let root = root();
    let other = RootParams::default()
        .self_signed(T0 - Duration::days(400))
        .unwrap();
    Held {
        fresh: bundle(&root, T0 - Duration::days(1)),
        due: bundle(&root, T0 - Duration::days(70)),
        foreign: bundle(&other, T0 - Duration::days(1)),
        params: IntermediateParams::new(ClusterName::new("cluster1").unwrap()),
        roots: root.trust_bundle(),
    }
}

fn bundle(root: &RootCa, at: OffsetDateTime) -> BundleFiles {
    let mut params = IntermediateParams::new(ClusterName::new("cluster1").unwrap());
    params.validity = Duration::days(90);
    let key = PrivateKey::generate(params.key_type).unwrap();
    let signed = root
        .sign_intermediate(&params.csr(&key).unwrap(), &params.profile(), at)
        .unwrap();
    root.cacerts(signed.certificate, key)
        .bundle_files(BundleFormat::Istio)
}

/// A status whose last issuance attempt failed `attempts` times, the last at `at`.
fn failing(attempts: u32, at: OffsetDateTime) -> ClusterStatus {
    ClusterStatus {
        name: "cluster1".into(),
        failed_issuance_attempts: attempts,
        last_failure_time: Some(timestamp(at)),
        last_error: Some("etcdserver: request timed out".into()),
        ..ClusterStatus::default()
    }
}

const BACKOFF: Backoff = Backoff {
    base: Duration::seconds(10),
    cap: Duration::minutes(5),
};

/// (case, what the cluster holds or why it cannot be read, last round's status, expected).
type Case<'a> = (
    &'a str,
    Result<Option<&'a BundleFiles>, String>,
    Option<ClusterStatus>,
    Want,
);

/// What a case expects.
enum Want {
    /// Issue, for this reason.
    Issue(ReissueReason),
    /// Done: Ready condition (status, reason), when to look again, the metric.
    Done(
        ConditionStatus,
        &'static str,
        Option<OffsetDateTime>,
        ConditionStatus,
    ),
}

#[test]
fn per_cluster_decisions() {
    let Held {
        fresh,
        due,
        foreign,
        params,
        roots,
    } = held();
    let policy = RenewalPolicy::Default;
    let fresh_due = meshtrust_ca::next_check(&fresh, &policy).unwrap();
    let issued_before = ClusterStatus {
        name: "cluster1".into(),
        conditions: vec![Condition::issuing(false, "Issued", "issued", T0, Some(1))],
        ..ClusterStatus::default()
    };
    let last_failure = T0 - Duration::seconds(5);

    use ReissueReason::*;
    let cases: Vec<Case<'_>> = vec![
        (
            "a cluster that cannot be read is not ready and is retried after the backoff base",
            Err("cluster cluster1: connection refused".into()),
            None,
            Want::Done(
                ConditionStatus::False,
                "ClusterUnreachable",
                Some(T0 + BACKOFF.base),
                ConditionStatus::Unknown,
            ),
        ),
        (
            "a cluster without cacerts is issued one",
            Ok(None),
            None,
            Want::Issue(DoesNotExist),
        ),
        (
            "a current bundle needs nothing and is looked at again when it is due",
            Ok(Some(&fresh)),
            None,
            Want::Done(
                ConditionStatus::True,
                "Ready",
                Some(fresh_due),
                ConditionStatus::True,
            ),
        ),
        (
            "a current bundle whose last issuance is on record keeps that record",
            Ok(Some(&fresh)),
            Some(issued_before.clone()),
            Want::Done(
                ConditionStatus::True,
                "Ready",
                Some(fresh_due),
                ConditionStatus::True,
            ),
        ),
        (
            "a bundle past its renewal time is reissued",
            Ok(Some(&due)),
            None,
            Want::Issue(Renewing),
        ),
        (
            "a bundle from another root is reissued",
            Ok(Some(&foreign)),
            None,
            Want::Issue(IncorrectIssuer),
        ),
        (
            "a renewal within the backoff delay of the last failure waits and stays ready",
            Ok(Some(&due)),
            Some(failing(1, last_failure)),
            Want::Done(
                ConditionStatus::True,
                "Ready",
                Some(last_failure + BACKOFF.base),
                ConditionStatus::True,
            ),
        ),
        (
            "a first issuance within the backoff delay waits and is not ready",
            Ok(None),
            Some(failing(2, last_failure)),
            Want::Done(
                ConditionStatus::False,
                "DoesNotExist",
                Some(last_failure + BACKOFF.base * 2),
                ConditionStatus::False,
            ),
        ),
        (
            "a reissue once the backoff delay has passed is tried again",
            Ok(None),
            Some(failing(1, T0 - Duration::minutes(1))),
            Want::Issue(DoesNotExist),
        ),
    ];
    for (case, held, previous, want) in cases {
        let inputs = Inputs {
            name: "cluster1",
            held,
            params: &params,
            roots: &roots,
            policy: &policy,
            previous: previous.as_ref(),
            backoff: &BACKOFF,
            now: T0,
            generation: Some(1),
            request: None,
        };
        match (decide(&inputs), want) {
            (Decision::Issue { cause, status }, Want::Issue(reason)) => {
                assert_eq!(cause.reason, Reason::from(reason), "{case}");
                assert_eq!(
                    status.failed_issuance_attempts,
                    previous.map_or(0, |p| p.failed_issuance_attempts),
                    "{case}: the backoff state is carried over"
                );
            }
            (Decision::Done(o), Want::Done(ready, reason, next, metric)) => {
                let c = find_condition(&o.status.conditions, Condition::READY)
                    .unwrap_or_else(|| panic!("{case}: no Ready condition"));
                assert_eq!((c.status, c.reason.as_str()), (ready, reason), "{case}");
                assert_eq!(o.next, next, "{case}");
                assert_eq!(o.ready, Some(metric), "{case}");
                assert!(o.events.is_empty(), "{case}: nothing happened to tell");
            }
            (d, _) => panic!("{case}: unexpected decision {d:?}"),
        }
    }
}

#[test]
fn nothing_to_do_keeps_the_record_of_the_last_issuance_or_says_up_to_date() {
    let root = root();
    let fresh = bundle(&root, T0 - Duration::days(1));
    let params = IntermediateParams::new(ClusterName::new("cluster1").unwrap());
    let roots = root.trust_bundle();
    let issued_before = ClusterStatus {
        name: "cluster1".into(),
        conditions: vec![Condition::issuing(false, "Issued", "issued", T0, Some(1))],
        ..ClusterStatus::default()
    };
    for (previous, want) in [(None, "UpToDate"), (Some(issued_before), "Issued")] {
        let inputs = Inputs {
            name: "cluster1",
            held: Ok(Some(&fresh)),
            params: &params,
            roots: &roots,
            policy: &RenewalPolicy::Default,
            previous: previous.as_ref(),
            backoff: &BACKOFF,
            now: T0,
            generation: Some(1),
            request: None,
        };
        let Decision::Done(o) = decide(&inputs) else {
            panic!("nothing to issue")
        };
        let issuing = find_condition(&o.status.conditions, Condition::ISSUING).unwrap();
        assert_eq!(issuing.reason, want);
        assert!(o.status.serial.is_some() && o.status.renewal_time.is_some());
    }
}

#[test]
fn outcomes_of_an_issuance() {
    let root = root();
    let due = bundle(&root, T0 - Duration::days(70));
    let new = bundle(&root, T0);
    let params = IntermediateParams::new(ClusterName::new("cluster1").unwrap());
    let roots = root.trust_bundle();
    let previous = failing(3, T0 - Duration::minutes(10));
    let inputs = |held| Inputs {
        name: "cluster1",
        held: Ok(held),
        params: &params,
        roots: &roots,
        policy: &RenewalPolicy::Default,
        previous: Some(&previous),
        backoff: &BACKOFF,
        now: T0,
        generation: Some(1),
        request: None,
    };

    let renewing = inputs(Some(&due));
    let Decision::Issue { cause, status } = decide(&renewing) else {
        panic!("due for renewal")
    };
    let ok = issued(status.clone(), &cause, &new, &renewing);
    assert_eq!(
        ok.status.failed_issuance_attempts, 0,
        "a success resets the failures"
    );
    assert_eq!(ok.status.last_error, None);
    assert_eq!(ok.ready, Some(ConditionStatus::True));
    assert_eq!(ok.events.len(), 1);
    assert_eq!(ok.events[0].reason, Reason::Issued);
    assert!(
        ok.events[0].note.contains("Renewing"),
        "{}",
        ok.events[0].note
    );
    assert_eq!(ok.failure, None);

    let bad = failed(
        status,
        &cause,
        "cannot create istio-system/cacerts".into(),
        &renewing,
    );
    assert_eq!(
        bad.status.failed_issuance_attempts, 4,
        "the attempt is counted"
    );
    assert_eq!(bad.status.last_failure_time, Some(timestamp(T0)));
    assert_eq!(
        bad.next,
        Some(BACKOFF.retry_at(T0, 4)),
        "retried after the backoff"
    );
    assert_eq!(bad.failure, Some(Reason::IssuanceFailed));
    assert_eq!(bad.events[0].reason, Reason::IssuanceFailed);
    let ready = find_condition(&bad.status.conditions, Condition::READY).unwrap();
    assert_eq!(
        (ready.status, bad.ready),
        (ConditionStatus::True, Some(ConditionStatus::True)),
        "a failed renewal stays ready while the old bundle still serves"
    );

    let missing = inputs(None);
    let Decision::Issue { cause, status } = decide(&missing) else {
        panic!("no bundle")
    };
    let bad = failed(status, &cause, "refused".into(), &missing);
    let ready = find_condition(&bad.status.conditions, Condition::READY).unwrap();
    assert_eq!(
        (ready.status, ready.reason.as_str()),
        (ConditionStatus::False, "DoesNotExist"),
        "a failed first issuance is not ready"
    );
}

/// The serial of a bundle's CA certificate, as status reports it.
fn serial(files: &BundleFiles) -> String {
    verify_bundle(files, &VerifyOptions::at(T0))
        .ca_cert
        .unwrap()
        .serial
}

fn renewal_request(cluster: &str, serial: &str) -> RenewalRequest {
    RenewalRequest {
        id: "r-1".into(),
        requested_at: timestamp(T0 - Duration::minutes(1)),
        clusters: [(cluster.to_string(), serial.to_string())].into(),
    }
}

#[test]
fn renewal_request_decisions() {
    let Held {
        fresh,
        due,
        foreign,
        params,
        roots,
    } = held();
    let for_fresh = renewal_request("cluster1", &serial(&fresh));
    let for_due = renewal_request("cluster1", &serial(&due));
    let for_foreign = renewal_request("cluster1", &serial(&foreign));
    let for_other_cluster = renewal_request("cluster2", &serial(&fresh));
    let on_record = ClusterStatus {
        name: "cluster1".into(),
        renewal_request: Some(RenewalRecord {
            id: "r-1".into(),
            replaced_serial: serial(&due),
            completed_at: timestamp(T0 - Duration::seconds(30)),
            ..RenewalRecord::default()
        }),
        ..ClusterStatus::default()
    };
    let last_failure = T0 - Duration::seconds(5);
    /// (case, held, request, previous status, the reason issued for (None: nothing issued),
    /// whether the request is on record afterwards, Ready).
    type Case<'a> = (
        &'a str,
        &'a BundleFiles,
        &'a RenewalRequest,
        Option<ClusterStatus>,
        Option<Reason>,
        bool,
        ConditionStatus,
    );
    use ConditionStatus::True;
    let cases: Vec<Case<'_>> = vec![
        (
            "a requested renewal of a current intermediate reissues it",
            &fresh,
            &for_fresh,
            None,
            Some(Reason::RenewalRequested),
            false,
            True,
        ),
        (
            "a requested renewal wins over a renewal that is merely due",
            &due,
            &for_due,
            None,
            Some(Reason::RenewalRequested),
            false,
            True,
        ),
        (
            "a stronger reason to reissue keeps its reason and carries the request out too",
            &foreign,
            &for_foreign,
            None,
            Some(Reason::Reissue(ReissueReason::IncorrectIssuer)),
            false,
            True,
        ),
        (
            "a request for another cluster issues nothing here",
            &fresh,
            &for_other_cluster,
            None,
            None,
            false,
            True,
        ),
        (
            "a request naming an intermediate no longer held issues nothing and is recorded as done",
            &fresh,
            &for_due,
            None,
            None,
            true,
            True,
        ),
        (
            "a request already on record issues nothing",
            &fresh,
            &for_due,
            Some(on_record),
            None,
            true,
            True,
        ),
        (
            "a requested renewal within the backoff delay of a failure waits and stays ready",
            &fresh,
            &for_fresh,
            Some(failing(1, last_failure)),
            None,
            false,
            True,
        ),
    ];
    for (case, held, request, previous, want, recorded, ready) in cases {
        let inputs = Inputs {
            name: "cluster1",
            held: Ok(Some(held)),
            params: &params,
            roots: &roots,
            policy: &RenewalPolicy::Default,
            previous: previous.as_ref(),
            backoff: &BACKOFF,
            now: T0,
            generation: Some(1),
            request: Some(request),
        };
        match (decide(&inputs), want) {
            (Decision::Issue { cause, status }, Some(reason)) => {
                assert_eq!(cause.reason, reason, "{case}");
                let r = cause
                    .request
                    .as_ref()
                    .expect("the request travels with the issuance");
                assert_eq!(r.replaced_serial, serial(held), "{case}");
                assert_eq!(status.renewal_request.is_some(), recorded, "{case}");
            }
            (Decision::Done(o), None) => {
                assert_eq!(o.status.renewal_request.is_some(), recorded, "{case}");
                let c = find_condition(&o.status.conditions, Condition::READY).unwrap();
                assert_eq!(c.status, ready, "{case}: {c:?}");
                assert!(o.events.is_empty(), "{case}: nothing happened to tell");
            }
            (d, _) => panic!("{case}: unexpected decision {d:?}"),
        }
    }
}

#[test]
fn a_requested_renewal_is_recorded_told_and_carried_out_once() {
    let root = root();
    let fresh = bundle(&root, T0 - Duration::days(1));
    let new = bundle(&root, T0);
    let params = IntermediateParams::new(ClusterName::new("cluster1").unwrap());
    let roots = root.trust_bundle();
    let request = renewal_request("cluster1", &serial(&fresh));
    let inputs = |held, previous| Inputs {
        name: "cluster1",
        held: Ok(Some(held)),
        params: &params,
        roots: &roots,
        policy: &RenewalPolicy::Default,
        previous,
        backoff: &BACKOFF,
        now: T0,
        generation: Some(1),
        request: Some(&request),
    };
    let first = inputs(&fresh, None);
    let Decision::Issue { cause, status } = decide(&first) else {
        panic!("the request asks for a reissue")
    };
    let done = issued(status.clone(), &cause, &new, &first);
    let record = done.status.renewal_request.clone().expect("recorded");
    assert_eq!(
        (
            record.id.as_str(),
            record.replaced_serial.clone(),
            record.serial.clone()
        ),
        ("r-1", serial(&fresh), Some(serial(&new)))
    );
    assert!(record.reissued);
    let reasons: Vec<Reason> = done.events.iter().map(|e| e.reason).collect();
    assert_eq!(reasons, [Reason::Issued, Reason::RenewalRequested]);
    assert!(
        done.events[1].note.contains("r-1"),
        "{}",
        done.events[1].note
    );
    let issuing = find_condition(&done.status.conditions, Condition::ISSUING).unwrap();
    assert!(issuing.message.contains("RenewalRequested"), "{issuing:?}");

    // The next round sees the new intermediate: nothing more to do, the record stays.
    let again = inputs(&new, Some(&done.status));
    let Decision::Done(o) = decide(&again) else {
        panic!("a request is carried out once")
    };
    assert_eq!(o.status.renewal_request, Some(record));

    // A failed attempt is retried after the backoff while the old bundle serves.
    let bad = failed(status, &cause, "refused".into(), &first);
    let ready = find_condition(&bad.status.conditions, Condition::READY).unwrap();
    assert_eq!(ready.status, ConditionStatus::True, "{ready:?}");
    let issuing = find_condition(&bad.status.conditions, Condition::ISSUING).unwrap();
    assert_eq!(
        (issuing.status, issuing.reason.as_str()),
        (ConditionStatus::True, "RenewalRequested")
    );
}
