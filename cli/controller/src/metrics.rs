//! The controller's Prometheus metrics (prometheus-client, OpenMetrics text).
//!
//! One [`Metrics`] value owns the registry; the reconciler records per-cluster certificate
//! times and readiness, counts reconciles and their failures and times each with a
//! [`ReconcileTimer`], and records the phase of each root rotation and since when; the
//! server encodes it for `GET /metrics`. Names follow cert-manager's
//! (`certificate_expiration_timestamp_seconds`, `certificate_ready_status`), with the
//! `meshtrust_` prefix.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use meshtrust_issuer::Clock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry, Unit};
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::reason::Reason;

/// The values of a condition's status, as the `condition` label of
/// `certificate_ready_status`.
pub const CONDITION_STATUSES: [&str; 3] = ["True", "False", "Unknown"];

/// Upper bounds (seconds) of the reconcile duration buckets: a reconcile reads and
/// writes a few objects in each member cluster, so from milliseconds to a minute.
const DURATION_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabels {
    cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReadyLabels {
    cluster: String,
    condition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RotationLabels {
    meshtrust: String,
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    reason: String,
}

/// The controller's metrics and the registry they are exposed from (prefix `meshtrust`).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    expiration: Family<ClusterLabels, Gauge>,
    renewal: Family<ClusterLabels, Gauge>,
    ready: Family<ReadyLabels, Gauge>,
    reconciles: Counter,
    reconcile_errors: Family<ErrorLabels, Counter>,
    issued: Family<ErrorLabels, Counter>,
    reconcile_duration: Histogram,
    is_leader: Gauge,
    rotation_phase_started: Family<RotationLabels, Gauge>,
    /// The phase each MeshTrust's series above is labelled with.
    rotation_phases: Mutex<HashMap<String, String>>,
}

/// A metric's name (without the `meshtrust_` prefix, the unit and `_total`) and its help.
type Described = (&'static str, &'static str);

const EXPIRATION: Described = (
    "certificate_expiration_timestamp",
    "The date after which the cluster's intermediate CA certificate expires (notAfter), in Unix seconds",
);
const RENEWAL: Described = (
    "certificate_renewal_timestamp",
    "The date after which the controller renews the cluster's intermediate CA certificate, in Unix seconds",
);
const READY: Described = (
    "certificate_ready_status",
    "The status of the cluster's Ready condition: 1 for the condition status that holds, 0 for the others",
);
const RECONCILES: Described = ("reconcile", "Reconciliations started");
const RECONCILE_ERRORS: Described = ("reconcile_errors", "Reconciliations that failed, by reason");
const ISSUED: Described = (
    "intermediates_issued",
    "Intermediates issued and delivered outside a root rotation, by the reason they were issued",
);
const RECONCILE_DURATION: Described = ("reconcile_duration", "How long reconciliations took");
const IS_LEADER: Described = (
    "is_leader",
    "1 while this replica holds the leader Lease, 0 otherwise",
);
const ROTATION_PHASE_STARTED: Described = (
    "rotation_phase_started_timestamp",
    "When this replica first saw the MeshTrust's root rotation in its current phase (the phase label), in Unix seconds",
);

/// `metric`, registered in `registry`.
fn plain<M: Metric + Clone>(registry: &mut Registry, (name, help): Described, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// `metric`, registered in `registry` in seconds (the name gets `_seconds`).
fn in_seconds<M: Metric + Clone>(registry: &mut Registry, (name, help): Described, metric: M) -> M {
    registry.register_with_unit(name, help, Unit::Seconds, metric.clone());
    metric
}

impl Default for Metrics {
    /// Every metric registered, none with a value yet (`is_leader` is 0).
    fn default() -> Self {
        let mut r = Registry::with_prefix("meshtrust");
        Metrics {
            expiration: in_seconds(&mut r, EXPIRATION, Family::default()),
            renewal: in_seconds(&mut r, RENEWAL, Family::default()),
            ready: plain(&mut r, READY, Family::default()),
            reconciles: plain(&mut r, RECONCILES, Counter::default()),
            reconcile_errors: plain(&mut r, RECONCILE_ERRORS, Family::default()),
            issued: plain(&mut r, ISSUED, Family::default()),
            reconcile_duration: in_seconds(
                &mut r,
                RECONCILE_DURATION,
                Histogram::new(DURATION_BUCKETS),
            ),
            is_leader: plain(&mut r, IS_LEADER, Gauge::default()),
            rotation_phase_started: in_seconds(&mut r, ROTATION_PHASE_STARTED, Family::default()),
            rotation_phases: Mutex::default(),
            registry: r,
        }
    }
}

impl Metrics {
    /// Records the notAfter of `cluster`'s intermediate CA certificate and when it is due
    /// for renewal.
    pub fn record_cluster(
        &self,
        cluster: &str,
        not_after: OffsetDateTime,
        renewal: OffsetDateTime,
    ) {
        let labels = cluster_labels(cluster);
        self.expiration
            .get_or_create(&labels)
            .set(not_after.unix_timestamp());
        self.renewal
            .get_or_create(&labels)
            .set(renewal.unix_timestamp());
    }

    /// Records the status of `cluster`'s Ready condition: the series of `status` becomes
    /// 1 and those of the other [`CONDITION_STATUSES`] 0. A status other than `True` or
    /// `False` counts as `Unknown`.
    pub fn set_ready(&self, cluster: &str, status: &str) {
        let holds = if CONDITION_STATUSES.contains(&status) {
            status
        } else {
            "Unknown"
        };
        for condition in CONDITION_STATUSES {
            self.ready
                .get_or_create(&ready_labels(cluster, condition))
                .set(i64::from(condition == holds));
        }
    }

    /// Removes every series of `cluster`, for a cluster no longer in the spec.
    pub fn forget_cluster(&self, cluster: &str) {
        let labels = cluster_labels(cluster);
        self.expiration.remove(&labels);
        self.renewal.remove(&labels);
        for condition in CONDITION_STATUSES {
            self.ready.remove(&ready_labels(cluster, condition));
        }
    }

    /// Counts a reconciliation and starts timing it; the duration is recorded when the
    /// returned timer is dropped.
    pub fn reconcile_started(&self, clock: &Clock) -> ReconcileTimer {
        self.reconciles.inc();
        ReconcileTimer {
            started: clock.instant(),
            clock: clock.clone(),
            histogram: self.reconcile_duration.clone(),
        }
    }

    /// Counts a failed reconciliation under `reason` (the reason also used in conditions
    /// and events).
    pub fn reconcile_failed(&self, reason: Reason) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels {
                reason: reason.as_str().to_string(),
            })
            .inc();
    }

    /// Counts an intermediate issued and delivered for `reason` (the reason also used in
    /// conditions and events).
    pub fn intermediate_issued(&self, reason: Reason) {
        self.issued
            .get_or_create(&ErrorLabels {
                reason: reason.as_str().to_string(),
            })
            .inc();
    }

    /// Records whether this replica holds the leader Lease.
    pub fn set_leader(&self, leading: bool) {
        self.is_leader.set(i64::from(leading));
    }

    /// Records the phase of `meshtrust`'s root rotation as of `now` (`None`: no rotation).
    /// The series keeps the time the phase was first recorded while the phase stays the
    /// same; a new phase replaces it, and no rotation removes it.
    pub fn record_rotation(&self, meshtrust: &str, phase: Option<&str>, now: OffsetDateTime) {
        let mut phases = self
            .rotation_phases
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let previous = phases.get(meshtrust).map(String::as_str);
        if previous == phase {
            return;
        }
        if let Some(old) = previous {
            self.rotation_phase_started
                .remove(&rotation_labels(meshtrust, old));
        }
        match phase {
            Some(new) => {
                self.rotation_phase_started
                    .get_or_create(&rotation_labels(meshtrust, new))
                    .set(now.unix_timestamp());
                phases.insert(meshtrust.to_string(), new.to_string());
            }
            None => {
                phases.remove(meshtrust);
            }
        }
    }

    /// Every metric in the OpenMetrics text format, ending with `# EOF`.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

/// Times one reconciliation; records the elapsed seconds in
/// `meshtrust_reconcile_duration_seconds` when dropped.
#[derive(Debug)]
#[must_use = "the duration is recorded when the timer is dropped"]
pub struct ReconcileTimer {
    started: Instant,
    clock: Clock,
    histogram: Histogram,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        let elapsed = self.clock.elapsed(self.started);
        self.histogram.observe(elapsed.as_secs_f64());
    }
}

fn cluster_labels(cluster: &str) -> ClusterLabels {
    ClusterLabels {
        cluster: cluster.to_string(),
    }
}

fn rotation_labels(meshtrust: &str, phase: &str) -> RotationLabels {
    RotationLabels {
        meshtrust: meshtrust.to_string(),
        phase: phase.to_string(),
    }
}

fn ready_labels(cluster: &str, condition: &str) -> ReadyLabels {
    ReadyLabels {
        cluster: cluster.to_string(),
        condition: condition.to_string(),
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
