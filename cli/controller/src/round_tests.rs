//! The round planner, by table.

use std::time::Duration as StdDuration;

use meshtrust_ca::Backoff;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::crd::{ClusterStatus, Condition, ConditionStatus};
use crate::decide::Outcome;

const T0: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
const HOUR: StdDuration = StdDuration::from_secs(3600);

fn cluster(name: &str, ready: Option<bool>, next: Option<OffsetDateTime>) -> Outcome {
    let conditions = ready
        .map(|r| vec![Condition::ready(r, "Ready", "", T0, Some(1))])
        .unwrap_or_default();
    Outcome {
        status: ClusterStatus {
            name: name.into(),
            conditions,
            ..ClusterStatus::default()
        },
        next,
        ready: None,
        failure: None,
        events: Vec::new(),
    }
}

#[test]
fn the_kind_of_round() {
    let cases = [
        (
            "an invalid spec wins over everything",
            Some("spec.clusters: list at least one cluster".to_string()),
            Err("no root".to_string()),
            RoundKind::InvalidSpec("spec.clusters: list at least one cluster".into()),
        ),
        (
            "an unavailable issuer stops the round",
            None,
            Err("no root".to_string()),
            RoundKind::IssuerUnavailable("no root".into()),
        ),
        (
            "a configured rotation is a rotation round",
            None,
            Ok(true),
            RoundKind::Rotation,
        ),
        (
            "otherwise the round renews",
            None,
            Ok(false),
            RoundKind::Steady,
        ),
    ];
    for (case, invalid, issuer, want) in cases {
        assert_eq!(kind(invalid, issuer), want, "{case}");
    }
}

#[test]
fn the_overall_condition() {
    let cases = [
        (
            "every ready cluster makes the resource ready",
            vec![Some(true), Some(true)],
            true,
            "Ready",
            "every cluster (2)",
        ),
        (
            "one cluster not ready is named",
            vec![Some(true), Some(false)],
            false,
            "ClustersNotReady",
            "not ready: c2",
        ),
        (
            "a cluster without a Ready condition is not ready",
            vec![None],
            false,
            "ClustersNotReady",
            "not ready: c1",
        ),
    ];
    for (case, readiness, ready, reason, message) in cases {
        let outcomes: Vec<Outcome> = readiness
            .iter()
            .enumerate()
            .map(|(i, r)| cluster(&format!("c{}", i + 1), *r, None))
            .collect();
        let status = finish(&MeshTrustStatus::default(), Some(1), None, &outcomes, T0);
        let c = find_condition(&status.conditions, Condition::READY).unwrap();
        assert_eq!(c.status, ConditionStatus::from(ready), "{case}");
        assert_eq!(c.reason, reason, "{case}");
        assert!(c.message.contains(message), "{case}: {}", c.message);
        assert_eq!(status.clusters.len(), outcomes.len(), "{case}");
    }
}

/// (case, outcomes, what the rotation asks for, when the status was written, expected).
type RequeueCase = (
    &'static str,
    Vec<Outcome>,
    Option<RotationNext>,
    OffsetDateTime,
    Requeue,
);

#[test]
fn when_to_look_again() {
    let soon = T0 + Duration::minutes(10);
    let cases: Vec<RequeueCase> = vec![
        (
            "nothing due: at the resync",
            vec![cluster("c1", Some(true), None)],
            None,
            T0,
            Requeue::After(HOUR),
        ),
        (
            "the earliest cluster wins",
            vec![
                cluster("c1", Some(true), Some(T0 + Duration::minutes(30))),
                cluster("c2", Some(true), Some(soon)),
            ],
            None,
            T0,
            Requeue::After(StdDuration::from_secs(600)),
        ),
        (
            "the time spent writing is taken off",
            vec![cluster("c1", Some(true), Some(soon))],
            None,
            T0 + Duration::minutes(1),
            Requeue::After(StdDuration::from_secs(540)),
        ),
        (
            "a time already past waits a second, never zero",
            vec![cluster("c1", Some(false), Some(T0 - Duration::minutes(1)))],
            None,
            T0,
            Requeue::After(StdDuration::from_secs(1)),
        ),
        (
            "a rotation that wrote reads back at once",
            vec![cluster("c1", Some(true), Some(soon))],
            Some(RotationNext::ReadBack),
            T0,
            Requeue::After(MIN_REQUEUE),
        ),
        (
            "a rotation holding the old root looks again at the end of the hold",
            vec![cluster("c1", Some(true), None)],
            Some(RotationNext::At(T0 + Duration::minutes(5))),
            T0,
            Requeue::After(StdDuration::from_secs(300)),
        ),
    ];
    for (case, outcomes, rotation, written, want) in cases {
        assert_eq!(
            requeue(&outcomes, rotation, HOUR, T0, written),
            want,
            "{case}"
        );
    }
}

#[test]
fn a_round_that_stops_early_keeps_the_clusters_and_says_why() {
    let previous = MeshTrustStatus {
        clusters: vec![cluster("c1", Some(true), None).status],
        ..MeshTrustStatus::default()
    };
    let s = stopped(
        &previous,
        Some(2),
        Reason::IssuerUnavailable,
        "no root".into(),
        T0,
    );
    assert_eq!(s.clusters, previous.clusters);
    assert_eq!(s.observed_generation, Some(2));
    let c = find_condition(&s.conditions, Condition::READY).unwrap();
    assert_eq!(
        (c.status, c.reason.as_str()),
        (ConditionStatus::False, "IssuerUnavailable")
    );
    let backoff = Backoff::default();
    assert_eq!(
        issuer_retry(&backoff, HOUR),
        Requeue::After(StdDuration::from_secs(360)),
        "no more often than a tenth of the resync"
    );
}

#[test]
fn the_record_of_the_last_renewal_request_outlives_rounds_that_do_not_set_it() {
    let record = |id: &str| crate::crd::RenewalRecord {
        id: id.into(),
        replaced_serial: "0a".into(),
        completed_at: timestamp(T0),
        reissued: true,
        ..crate::crd::RenewalRecord::default()
    };
    let mut east = cluster("east", Some(true), None).status;
    east.renewal_request = Some(record("r-1"));
    let mut west = cluster("west", Some(true), None).status;
    west.renewal_request = Some(record("r-1"));
    let previous = MeshTrustStatus {
        clusters: vec![east, west],
        ..MeshTrustStatus::default()
    };
    // A rotation round reports every cluster afresh (no record); a steady round may have
    // recorded a newer request for one of them.
    let mut newer = cluster("west", Some(true), None);
    newer.status.renewal_request = Some(record("r-2"));
    let outcomes = [
        cluster("east", Some(true), None),
        newer,
        cluster("north", Some(true), None),
    ];
    let status = finish(&previous, Some(1), None, &outcomes, T0);
    let ids: Vec<Option<&str>> = status
        .clusters
        .iter()
        .map(|c| c.renewal_request.as_ref().map(|r| r.id.as_str()))
        .collect();
    assert_eq!(ids, [Some("r-1"), Some("r-2"), None]);
}
