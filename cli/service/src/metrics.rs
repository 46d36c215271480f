//! The service's Prometheus metrics (prometheus-client, OpenMetrics text, prefix
//! `meshtrust_serve`): requests by route and status code, signing latency, issuances by kind,
//! refusals by reason, each cluster's intermediate expiry, and store batches.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use time::OffsetDateTime;

/// Upper bounds (seconds) of the signing latency buckets: a local ECDSA signature takes
/// tens of microseconds, an AWS Private CA round trip up to seconds.
const SIGNING_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabels {
    cluster: String,
}

/// Every metric and the registry they are exposed from.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    signing: Histogram,
    issued: Family<KindLabels, Counter>,
    refused: Family<ReasonLabels, Counter>,
    expiry: Family<ClusterLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("meshtrust_serve");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "HTTP requests answered, by route template and status code",
            requests.clone(),
        );
        let signing = Histogram::new(SIGNING_BUCKETS);
        registry.register_with_unit(
            "signing_duration",
            "Time the issuer took to sign one intermediate",
            Unit::Seconds,
            signing.clone(),
        );
        let issued = Family::<KindLabels, Counter>::default();
        registry.register(
            "issued",
            "Intermediates issued and durably recorded, by kind (enroll, renew)",
            issued.clone(),
        );
        let refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "refused",
            "Requests refused, by reason code (the `error` of the response)",
            refused.clone(),
        );
        let expiry = Family::<ClusterLabels, Gauge>::default();
        registry.register_with_unit(
            "certificate_expiration_timestamp",
            "notAfter of each cluster's current intermediate, in Unix seconds",
            Unit::Seconds,
            expiry.clone(),
        );
        Metrics {
            registry,
            requests,
            signing,
            issued,
            refused,
            expiry,
        }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn request(&self, route: &str, code: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                code,
            })
            .inc();
    }

    /// Records how long one signature took.
    pub fn signed(&self, took: std::time::Duration) {
        self.signing.observe(took.as_secs_f64());
    }

    /// Counts a recorded issuance and sets the cluster's expiry.
    pub fn issued(&self, kind: &str, cluster: &str, not_after: OffsetDateTime) {
        self.issued
            .get_or_create(&KindLabels {
                kind: kind.to_string(),
            })
            .inc();
        self.set_expiry(cluster, not_after);
    }

    /// Sets a cluster's expiry (at start-up, from the store).
    pub fn set_expiry(&self, cluster: &str, not_after: OffsetDateTime) {
        self.expiry
            .get_or_create(&ClusterLabels {
                cluster: cluster.to_string(),
            })
            .set(not_after.unix_timestamp());
    }

    /// Forgets a revoked cluster's expiry.
    pub fn forget(&self, cluster: &str) {
        self.expiry.remove(&ClusterLabels {
            cluster: cluster.to_string(),
        });
    }

    /// Counts a refusal.
    pub fn refused(&self, reason: &str) {
        self.refused
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
