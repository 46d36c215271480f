//! One `reconcile` per test against a mocked API server (see [`super::fixtures`]): the
//! verifier checks every request in order and records what was written; the tests check
//! the written bundle, the status and the returned action.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use meshtrust_ca::{BundleFiles, BundleFormat, VerifyOptions, verify_bundle};
use meshtrust_kube::bundle_files;
use time::{Duration, OffsetDateTime};

use crate::context::Context;
use crate::crd::{ClusterStatus, Condition, ConditionStatus, MeshTrust, ROOT_CERT};
use crate::error::Error;
use crate::fixtures::{
    CLUSTER, Scenario, Written, bundle_issued_at, foreign, held_cacerts, root_at, root_secret,
    test_now, verified,
};
use crate::reconcile::reconcile_round;
use crate::requeue::Requeue;

/// What one reconcile against a scenario produced.
struct Run {
    result: Result<Requeue, Error>,
    written: Written,
    metrics: String,
    /// The context's backoff base and resync, for bounds on the requeue.
    backoff_base: StdDuration,
    resync: StdDuration,
}

/// Reconciles `mt` once at `now` while the mock API server plays `scenario`, then drops
/// every client so that the verifier can tell a finished scenario from a missing request.
async fn reconcile_against(mt: MeshTrust, scenario: Scenario, now: OffsetDateTime) -> Run {
    let (ctx, _clock, server) = Context::test(now);
    let verifier = server.run(mt.clone(), scenario);
    let result = reconcile_round(&mt, &ctx).await;
    let metrics = Arc::clone(&ctx.metrics);
    let (backoff_base, resync) = (ctx.backoff.base.unsigned_abs(), ctx.resync);
    drop(ctx);
    let written = verified(verifier).await;
    Run {
        result,
        written,
        metrics: metrics.encode(),
        backoff_base,
        resync,
    }
}

impl Run {
    fn requeue(&self) -> Requeue {
        *self
            .result
            .as_ref()
            .unwrap_or_else(|e| panic!("reconcile failed: {e}"))
    }

    fn status(&self) -> &super::crd::MeshTrustStatus {
        self.written.status.as_ref().expect("a status patch")
    }

    fn cluster(&self) -> &ClusterStatus {
        let clusters = &self.status().clusters;
        assert_eq!(clusters.len(), 1, "one cluster in {clusters:?}");
        assert_eq!(clusters[0].name, CLUSTER);
        &clusters[0]
    }

    fn written_files(&self) -> BundleFiles {
        bundle_files(self.written.cacerts.as_ref().expect("a cacerts write"))
    }

    fn event_types(&self) -> Vec<(&str, &str)> {
        self.written
            .events
            .iter()
            .map(|e| {
                (
                    e.reason.as_deref().unwrap_or_default(),
                    e.type_.as_deref().unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// Checks the condition of `type_` and returns it.
fn condition<'a>(
    conditions: &'a [Condition],
    type_: &str,
    status: ConditionStatus,
    reason: &str,
) -> &'a Condition {
    let c = conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {conditions:?}"));
    assert_eq!(
        (c.status, c.reason.as_str()),
        (status, reason),
        "{type_}: {}",
        c.message
    );
    assert_eq!(c.observed_generation, Some(1));
    c
}

/// The serial of the CA certificate in `files`, as status writes it.
fn serial(files: &BundleFiles, now: OffsetDateTime) -> String {
    verify_bundle(files, &VerifyOptions::at(now))
        .ca_cert
        .expect("a CA certificate")
        .serial
}

/// `files` as istiod reads them, checked by meshtrust and by openssl and rustls-webpki.
fn assert_valid_istio_bundle(files: &BundleFiles, now: OffsetDateTime) {
    assert_eq!(
        files.names().collect::<Vec<_>>(),
        BundleFormat::Istio.file_names(),
        "the four istio files"
    );
    let report = verify_bundle(files, &VerifyOptions::at(now));
    assert!(report.accepted(), "{:?}", report.findings);
    let dir = tempfile::tempdir().expect("a temporary directory");
    for name in files.names() {
        std::fs::write(dir.path().join(name), files.get(name).unwrap_or_default())
            .expect("write a bundle file");
    }
    meshtrust_testkit::assert_bundle_independently_valid(dir.path());
}

#[tokio::test]
async fn a_fresh_cluster_gets_a_generated_root_its_namespace_and_a_valid_cacerts() {
    let now = test_now();
    let run = reconcile_against(MeshTrust::test(), Scenario::FreshCluster, now).await;

    let files = run.written_files();
    assert_valid_istio_bundle(&files, now);
    let root = run.written.root.as_ref().expect("a root Secret");
    assert_eq!(
        files.get(ROOT_CERT),
        root.data
            .as_ref()
            .and_then(|d| d.get(ROOT_CERT))
            .map(|b| b.0.as_slice()),
        "cacerts trusts the root that was generated"
    );
    assert_eq!(
        run.event_types(),
        [("RootGenerated", "Normal"), ("Issued", "Normal")]
    );

    let status = run.status();
    assert_eq!(status.observed_generation, Some(1));
    condition(&status.conditions, "Ready", ConditionStatus::True, "Ready");
    let cluster = run.cluster();
    condition(&cluster.conditions, "Ready", ConditionStatus::True, "Ready");
    let issuing = condition(
        &cluster.conditions,
        "Issuing",
        ConditionStatus::False,
        "Issued",
    );
    assert!(
        issuing.message.contains("DoesNotExist"),
        "{}",
        issuing.message
    );
    assert_eq!(cluster.failed_issuance_attempts, 0);
    assert_eq!(cluster.last_error, None);
    assert_eq!(
        cluster.serial.as_deref(),
        Some(serial(&files, now).as_str())
    );
    assert!(cluster.renewal_time.is_some() && cluster.not_after.is_some());

    let wait = run.requeue().after().expect("a requeue, not await_change");
    assert!(wait <= run.resync, "{wait:?}");
    assert!(
        run.metrics.contains(
            r#"meshtrust_certificate_ready_status{cluster="cluster1",condition="True"} 1"#
        ),
        "{}",
        run.metrics
    );
}

#[tokio::test]
async fn an_up_to_date_cluster_gets_nothing_written_but_its_status() {
    let now = test_now();
    let root = root_at(now - Duration::days(1));
    let bundle = bundle_issued_at(&root, now - Duration::hours(1), Duration::days(365));
    let held = held_cacerts(&bundle, now);
    let run = reconcile_against(
        MeshTrust::test(),
        Scenario::UpToDate {
            root: root_secret(&root),
            cacerts: held.clone(),
        },
        now,
    )
    .await;

    let w = &run.written;
    assert!(
        w.root.is_none() && w.cacerts.is_none() && w.backup.is_none() && w.events.is_empty(),
        "nothing but the status is written"
    );
    let status = run.status();
    condition(&status.conditions, "Ready", ConditionStatus::True, "Ready");
    let cluster = run.cluster();
    condition(&cluster.conditions, "Ready", ConditionStatus::True, "Ready");
    condition(
        &cluster.conditions,
        "Issuing",
        ConditionStatus::False,
        "UpToDate",
    );
    let held_serial = serial(&bundle_files(&held), now);
    assert_eq!(cluster.serial.as_deref(), Some(held_serial.as_str()));
    assert_eq!(cluster.failed_issuance_attempts, 0);
    let wait = run.requeue().after().expect("a requeue, not await_change");
    assert!(wait <= run.resync, "{wait:?}");
}

/// A root from 40 days ago and an intermediate of 30 days issued 25 days ago: past its
/// renewal time (20 days in), not yet expired.
fn due_for_renewal(now: OffsetDateTime) -> (meshtrust_ca::RootCa, meshtrust_ca::CaCerts) {
    let root = root_at(now - Duration::days(40));
    let bundle = bundle_issued_at(&root, now - Duration::days(25), Duration::days(30));
    (root, bundle)
}

#[tokio::test]
async fn an_intermediate_past_its_renewal_time_is_replaced_with_the_observed_resource_version() {
    let now = test_now();
    let (root, old) = due_for_renewal(now);
    let held = held_cacerts(&old, now);
    let old_serial = serial(&bundle_files(&held), now);
    let run = reconcile_against(
        MeshTrust::test(),
        Scenario::Renewing {
            root: root_secret(&root),
            cacerts: held,
        },
        now,
    )
    .await;

    assert!(
        run.written.backup.is_none(),
        "meshtrust wrote cacerts: no backup"
    );
    let files = run.written_files();
    assert_valid_istio_bundle(&files, now);
    let new_serial = serial(&files, now);
    assert_ne!(new_serial, old_serial, "a new intermediate");
    assert_eq!(
        files.get(ROOT_CERT),
        Some(root.certificate().to_pem().as_bytes()),
        "the same root"
    );
    assert_eq!(run.event_types(), [("Issued", "Normal")]);

    let cluster = run.cluster();
    assert_eq!(cluster.serial.as_deref(), Some(new_serial.as_str()));
    condition(&cluster.conditions, "Ready", ConditionStatus::True, "Ready");
    let issuing = condition(
        &cluster.conditions,
        "Issuing",
        ConditionStatus::False,
        "Issued",
    );
    assert!(issuing.message.contains("Renewing"), "{}", issuing.message);
    condition(
        &run.status().conditions,
        "Ready",
        ConditionStatus::True,
        "Ready",
    );
}

#[tokio::test]
async fn a_cacerts_meshtrust_did_not_write_is_backed_up_before_it_is_renewed() {
    let now = test_now();
    let (root, old) = due_for_renewal(now);
    let run = reconcile_against(
        MeshTrust::test(),
        Scenario::Renewing {
            root: root_secret(&root),
            cacerts: foreign(held_cacerts(&old, now)),
        },
        now,
    )
    .await;

    assert!(run.written.backup.is_some(), "a backup before the replace");
    assert_valid_istio_bundle(&run.written_files(), now);
    condition(
        &run.cluster().conditions,
        "Issuing",
        ConditionStatus::False,
        "Issued",
    );
}

#[tokio::test]
async fn a_failed_cacerts_write_is_recorded_and_retried_after_the_backoff() {
    let now = test_now();
    let root = root_at(now - Duration::days(1));
    let run = reconcile_against(
        MeshTrust::test(),
        Scenario::CacertsCreateFails {
            root: root_secret(&root),
        },
        now,
    )
    .await;

    assert_eq!(
        run.written_files().names().count(),
        4,
        "the refused write was a whole bundle"
    );
    assert_eq!(run.event_types(), [("IssuanceFailed", "Warning")]);
    let cluster = run.cluster();
    assert_eq!(cluster.failed_issuance_attempts, 1);
    let error = cluster.last_error.as_deref().expect("lastError");
    assert!(
        error.contains("cannot create istio-system/cacerts")
            && error.contains("etcdserver: request timed out"),
        "{error}"
    );
    assert!(cluster.last_failure_time.is_some(), "lastFailureTime");
    assert_eq!(cluster.serial, None, "nothing was delivered");
    condition(
        &cluster.conditions,
        "Ready",
        ConditionStatus::False,
        "DoesNotExist",
    );
    condition(
        &cluster.conditions,
        "Issuing",
        ConditionStatus::True,
        "DoesNotExist",
    );
    condition(
        &run.status().conditions,
        "Ready",
        ConditionStatus::False,
        "ClustersNotReady",
    );

    let wait = run.requeue().after().expect("a requeue, not await_change");
    assert!(wait <= run.backoff_base, "{wait:?}");
    assert!(
        run.metrics
            .contains(r#"meshtrust_reconcile_errors_total{reason="IssuanceFailed"} 1"#),
        "{}",
        run.metrics
    );
}

#[tokio::test]
async fn an_invalid_spec_touches_no_cluster_and_waits_for_a_change() {
    let now = test_now();
    let run = reconcile_against(
        MeshTrust::test().with_cluster_name("Bad_Name"),
        Scenario::InvalidSpec,
        now,
    )
    .await;

    assert_eq!(run.requeue(), Requeue::AwaitChange);
    let status = run.status();
    let ready = condition(
        &status.conditions,
        "Ready",
        ConditionStatus::False,
        "InvalidSpec",
    );
    assert!(
        ready.message.contains("spec.clusters[0].name"),
        "{}",
        ready.message
    );
    assert!(status.clusters.is_empty(), "{:?}", status.clusters);
    assert!(
        run.metrics
            .contains(r#"meshtrust_reconcile_errors_total{reason="InvalidSpec"} 1"#),
        "{}",
        run.metrics
    );
}

#[tokio::test]
async fn a_second_round_at_the_same_generation_reuses_the_issuer() {
    let now = test_now();
    let root = root_at(now - Duration::days(1));
    let bundle = bundle_issued_at(&root, now - Duration::hours(1), Duration::days(365));
    let mt = MeshTrust::test();
    let (ctx, clock, server) = Context::test(now);
    let verifier = server.run(
        mt.clone(),
        Scenario::UpToDateTwice {
            root: root_secret(&root),
            cacerts: held_cacerts(&bundle, now),
        },
    );
    let first = reconcile_round(&mt, &ctx).await.expect("the first round");
    clock.advance(StdDuration::from_secs(30));
    let second = reconcile_round(&mt, &ctx).await.expect("the second round");
    drop(ctx);
    let written = verified(verifier).await;
    assert!(first.after().is_some() && second.after().is_some());
    let status = written.status.expect("a status");
    condition(&status.conditions, "Ready", ConditionStatus::True, "Ready");
    assert!(written.root.is_none() && written.events.is_empty());
}
