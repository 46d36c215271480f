//! The controller's Prometheus metrics (prometheus-client, OpenMetrics text).
//!
//! One [`Metrics`] value owns the registry; the reconciler records per-cluster certificate
//! times and readiness, counts reconciles and their failures and times each with a
//! [`ReconcileTimer`]; the server encodes it for `GET /metrics`. Names follow cert-manager's
//! (`certificate_expiration_timestamp_seconds`, `certificate_ready_status`), with the
//! `meshtrust_` prefix.

use meshtrust_issuer::Clock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
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
    reconcile_duration: Histogram,
    is_leader: Gauge,
}

impl Default for Metrics {
    /// Every metric registered, none with a value yet (`is_leader` is 0).
    fn default() -> Self {
        let mut registry = Registry::with_prefix("meshtrust");
        let expiration = Family::<ClusterLabels, Gauge>::default();
        registry.register_with_unit(
            "certificate_expiration_timestamp",
            "The date after which the cluster's intermediate CA certificate expires (notAfter), in Unix seconds",
            Unit::Seconds,
            expiration.clone(),
        );
        let renewal = Family::<ClusterLabels, Gauge>::default();
        registry.register_with_unit(
            "certificate_renewal_timestamp",
            "The date after which the controller renews the cluster's intermediate CA certificate, in Unix seconds",
            Unit::Seconds,
            renewal.clone(),
        );
        let ready = Family::<ReadyLabels, Gauge>::default();
        registry.register(
            "certificate_ready_status",
            "The status of the cluster's Ready condition: 1 for the condition status that holds, 0 for the others",
            ready.clone(),
        );
        let reconciles = Counter::default();
        registry.register("reconcile", "Reconciliations started", reconciles.clone());
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciliations that failed, by reason",
            reconcile_errors.clone(),
        );
        let reconcile_duration = Histogram::new(DURATION_BUCKETS);
        registry.register_with_unit(
            "reconcile_duration",
            "How long reconciliations took",
            Unit::Seconds,
            reconcile_duration.clone(),
        );
        let is_leader = Gauge::default();
        registry.register(
            "is_leader",
            "1 while this replica holds the leader Lease, 0 otherwise",
            is_leader.clone(),
        );
        Metrics {
            registry,
            expiration,
            renewal,
            ready,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            is_leader,
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

    /// Records whether this replica holds the leader Lease.
    pub fn set_leader(&self, leading: bool) {
        self.is_leader.set(i64::from(leading));
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

fn ready_labels(cluster: &str, condition: &str) -> ReadyLabels {
    ReadyLabels {
        cluster: cluster.to_string(),
        condition: condition.to_string(),
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
