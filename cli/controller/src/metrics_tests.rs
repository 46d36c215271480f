//! The metrics as Prometheus reads them.

use time::macros::datetime;

use super::*;

fn lines(metrics: &Metrics) -> Vec<String> {
    metrics.encode().lines().map(str::to_string).collect()
}

fn has(metrics: &Metrics, line: &str) -> bool {
    lines(metrics).iter().any(|l| l == line)
}

#[test]
fn a_fresh_registry_has_the_plain_metrics_at_zero_and_ends_with_eof() {
    let text = Metrics::default().encode();
    assert!(text.contains("meshtrust_reconcile_total 0\n"), "{text}");
    assert!(
        text.contains("meshtrust_reconcile_duration_seconds_count 0\n"),
        "{text}"
    );
    assert!(text.contains("meshtrust_is_leader 0\n"), "{text}");
    assert!(
        !text.contains("certificate"),
        "families without series are left out: {text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[test]
fn every_metric_is_described_with_its_type_and_unit() {
    let m = Metrics::default();
    let t = datetime!(2027-01-01 00:00:00 UTC);
    m.record_cluster("east", t, t);
    m.set_ready("east", "True");
    m.reconcile_failed(Reason::IssuerUnavailable);
    let text = m.encode();
    for name in [
        "meshtrust_certificate_expiration_timestamp_seconds gauge",
        "meshtrust_certificate_renewal_timestamp_seconds gauge",
        "meshtrust_certificate_ready_status gauge",
        "meshtrust_reconcile counter",
        "meshtrust_reconcile_errors counter",
        "meshtrust_reconcile_duration_seconds histogram",
        "meshtrust_is_leader gauge",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name}\n")),
            "{name} in\n{text}"
        );
    }
    for name in [
        "meshtrust_certificate_expiration_timestamp_seconds",
        "meshtrust_certificate_renewal_timestamp_seconds",
        "meshtrust_reconcile_duration_seconds",
    ] {
        assert!(
            text.contains(&format!("# UNIT {name} seconds\n")),
            "{name} in\n{text}"
        );
    }
}

#[test]
fn cluster_times_are_unix_seconds_labelled_by_cluster() {
    let m = Metrics::default();
    m.record_cluster(
        "east",
        datetime!(2027-01-01 00:00:00 UTC),
        datetime!(2026-09-01 00:00:00 UTC),
    );
    m.record_cluster(
        "west",
        datetime!(2027-02-01 00:00:00 UTC),
        datetime!(2026-10-01 00:00:00 UTC),
    );
    assert!(has(
        &m,
        r#"meshtrust_certificate_expiration_timestamp_seconds{cluster="east"} 1798761600"#
    ));
    assert!(has(
        &m,
        r#"meshtrust_certificate_renewal_timestamp_seconds{cluster="east"} 1788220800"#
    ));
    assert!(has(
        &m,
        r#"meshtrust_certificate_expiration_timestamp_seconds{cluster="west"} 1801440000"#
    ));
}

#[test]
fn exactly_the_condition_status_that_holds_is_one() {
    let m = Metrics::default();
    m.set_ready("east", "True");
    assert!(has(
        &m,
        r#"meshtrust_certificate_ready_status{cluster="east",condition="True"} 1"#
    ));
    assert!(has(
        &m,
        r#"meshtrust_certificate_ready_status{cluster="east",condition="False"} 0"#
    ));
    assert!(has(
        &m,
        r#"meshtrust_certificate_ready_status{cluster="east",condition="Unknown"} 0"#
    ));
    m.set_ready("east", "False");
    assert!(has(
        &m,
        r#"meshtrust_certificate_ready_status{cluster="east",condition="True"} 0"#
    ));
    assert!(has(
        &m,
        r#"meshtrust_certificate_ready_status{cluster="east",condition="False"} 1"#
    ));
}

#[test]
fn an_unrecognised_status_counts_as_unknown() {
    let m = Metrics::default();
    m.set_ready("east", "Maybe");
    assert!(has(
        &m,
        r#"meshtrust_certificate_ready_status{cluster="east",condition="Unknown"} 1"#
    ));
    assert!(!m.encode().contains("Maybe"));
}

#[test]
fn forgetting_a_cluster_removes_its_series_and_keeps_the_others() {
    let m = Metrics::default();
    let t = datetime!(2027-01-01 00:00:00 UTC);
    for cluster in ["east", "west"] {
        m.record_cluster(cluster, t, t);
        m.set_ready(cluster, "True");
    }
    m.forget_cluster("east");
    let text = m.encode();
    assert!(!text.contains(r#"cluster="east""#), "{text}");
    assert_eq!(text.matches(r#"cluster="west""#).count(), 5, "{text}");
}

#[test]
fn a_dropped_timer_records_one_duration_and_counts_the_reconcile() {
    let m = Metrics::default();
    let clock = Clock::system();
    drop(m.reconcile_started(&clock));
    let timer = m.reconcile_started(&clock);
    assert!(has(&m, "meshtrust_reconcile_total 2"));
    assert!(
        has(&m, "meshtrust_reconcile_duration_seconds_count 1"),
        "only the dropped timer is recorded"
    );
    drop(timer);
    assert!(has(&m, "meshtrust_reconcile_duration_seconds_count 2"));
    assert!(has(
        &m,
        r#"meshtrust_reconcile_duration_seconds_bucket{le="+Inf"} 2"#
    ));
}

#[test]
fn failures_are_counted_by_reason() {
    let m = Metrics::default();
    m.reconcile_failed(Reason::IssuerUnavailable);
    m.reconcile_failed(Reason::IssuerUnavailable);
    m.reconcile_failed(Reason::ClusterUnreachable);
    assert!(has(
        &m,
        r#"meshtrust_reconcile_errors_total{reason="IssuerUnavailable"} 2"#
    ));
    assert!(has(
        &m,
        r#"meshtrust_reconcile_errors_total{reason="ClusterUnreachable"} 1"#
    ));
}

#[test]
fn issuances_are_counted_by_the_reason_they_were_issued_for() {
    let m = Metrics::default();
    m.intermediate_issued(Reason::RenewalRequested);
    m.intermediate_issued(Reason::Reissue(meshtrust_ca::ReissueReason::Renewing));
    m.intermediate_issued(Reason::RenewalRequested);
    assert!(has(
        &m,
        r#"meshtrust_intermediates_issued_total{reason="RenewalRequested"} 2"#
    ));
    assert!(has(
        &m,
        r#"meshtrust_intermediates_issued_total{reason="Renewing"} 1"#
    ));
}

#[test]
fn leadership_flips_the_is_leader_gauge() {
    let m = Metrics::default();
    m.set_leader(true);
    assert!(has(&m, "meshtrust_is_leader 1"));
    m.set_leader(false);
    assert!(has(&m, "meshtrust_is_leader 0"));
}

#[test]
fn a_rotation_phase_keeps_the_time_it_was_first_recorded() {
    let m = Metrics::default();
    let t0 = datetime!(2027-01-01 00:00:00 UTC);
    m.record_rotation("mesh", Some("AddNewRoot"), t0);
    m.record_rotation("mesh", Some("AddNewRoot"), t0 + time::Duration::hours(2));
    assert!(has(
        &m,
        r#"meshtrust_rotation_phase_started_timestamp_seconds{meshtrust="mesh",phase="AddNewRoot"} 1798761600"#
    ));
    let text = m.encode();
    assert!(
        text.contains("# TYPE meshtrust_rotation_phase_started_timestamp_seconds gauge\n")
            && text.contains("# UNIT meshtrust_rotation_phase_started_timestamp_seconds seconds\n"),
        "{text}"
    );
}

#[test]
fn a_new_rotation_phase_replaces_the_old_one_and_no_rotation_removes_it() {
    let m = Metrics::default();
    let t0 = datetime!(2027-01-01 00:00:00 UTC);
    m.record_rotation("mesh", Some("AddNewRoot"), t0);
    m.record_rotation("other", Some("Blocked"), t0);
    m.record_rotation(
        "mesh",
        Some("ReissueIntermediates"),
        t0 + time::Duration::hours(1),
    );
    let text = m.encode();
    assert!(!text.contains("AddNewRoot"), "{text}");
    assert!(has(
        &m,
        r#"meshtrust_rotation_phase_started_timestamp_seconds{meshtrust="mesh",phase="ReissueIntermediates"} 1798765200"#
    ));
    m.record_rotation("mesh", None, t0 + time::Duration::hours(2));
    let text = m.encode();
    assert!(!text.contains(r#"meshtrust="mesh""#), "{text}");
    assert!(
        has(
            &m,
            r#"meshtrust_rotation_phase_started_timestamp_seconds{meshtrust="other",phase="Blocked"} 1798761600"#
        ),
        "another MeshTrust's rotation is kept: {text}"
    );
    m.record_rotation("mesh", Some("AddNewRoot"), t0 + time::Duration::hours(3));
    assert!(has(
        &m,
        r#"meshtrust_rotation_phase_started_timestamp_seconds{meshtrust="mesh",phase="AddNewRoot"} 1798772400"#
    ));
}
