//! The agent's Prometheus metrics, and its health as `/readyz` reports it.
//!
//! - `meshtrust_agent_intermediate_not_after_seconds`: `cacerts`' intermediate's notAfter
//!   (unix seconds); `meshtrust_agent_intermediate_expires_in_seconds`: the time left,
//!   computed at each scrape by the agent's clock, so an alert on it keeps working while
//!   the service is down (the cluster keeps serving its bundle meanwhile).
//! - `meshtrust_agent_service_reachable` (0/1) and
//!   `meshtrust_agent_last_contact_seconds` (unix seconds of the last answer).
//! - `meshtrust_agent_issuances_total{kind="enroll|renew",result="ok|error"}`,
//!   `meshtrust_agent_reports_total{result}`, `meshtrust_agent_rounds_total{result}`.
//! - `meshtrust_agent_leader` (0/1): whether this replica holds the Lease.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::AtomicU64;

use meshtrust_issuer::Clock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use time::OffsetDateTime;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IssuanceLabels {
    kind: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

/// Every metric of one agent.
pub struct Metrics {
    registry: Registry,
    clock: Clock,
    not_after: Mutex<Option<OffsetDateTime>>,
    not_after_gauge: Gauge<f64, AtomicU64>,
    expires_in: Gauge<f64, AtomicU64>,
    reachable: Gauge,
    last_contact: Gauge<f64, AtomicU64>,
    leader: Gauge,
    issuances: Family<IssuanceLabels, Counter>,
    reports: Family<ResultLabels, Counter>,
    rounds: Family<ResultLabels, Counter>,
    health: Mutex<Result<(), String>>,
}

impl Metrics {
    /// Registers every metric; time left is read from `clock`.
    pub fn new(clock: Clock) -> Metrics {
        let mut registry = Registry::with_prefix("meshtrust_agent");
        let m = Metrics {
            registry: Registry::default(),
            clock,
            not_after: Mutex::new(None),
            not_after_gauge: Gauge::default(),
            expires_in: Gauge::default(),
            reachable: Gauge::default(),
            last_contact: Gauge::default(),
            leader: Gauge::default(),
            issuances: Family::default(),
            reports: Family::default(),
            rounds: Family::default(),
            health: Mutex::new(Err("no round has run yet".to_string())),
        };
        registry.register_with_unit(
            "intermediate_not_after",
            "notAfter of the intermediate in cacerts (unix time)",
            Unit::Seconds,
            m.not_after_gauge.clone(),
        );
        registry.register_with_unit(
            "intermediate_expires_in",
            "Time until the intermediate in cacerts expires",
            Unit::Seconds,
            m.expires_in.clone(),
        );
        registry.register(
            "service_reachable",
            "Whether the last call to meshtrust serve got an answer",
            m.reachable.clone(),
        );
        registry.register_with_unit(
            "last_contact",
            "When meshtrust serve last answered (unix time)",
            Unit::Seconds,
            m.last_contact.clone(),
        );
        registry.register(
            "leader",
            "Whether this replica holds the Lease",
            m.leader.clone(),
        );
        registry.register("issuances", "Enrollments and renewals", m.issuances.clone());
        registry.register("reports", "Reports to the service", m.reports.clone());
        registry.register("rounds", "Rounds of the agent", m.rounds.clone());
        Metrics { registry, ..m }
    }

    /// `cacerts` holds an intermediate valid until `not_after`.
    pub fn held(&self, not_after: Option<OffsetDateTime>) {
        *self
            .not_after
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = not_after;
        self.not_after_gauge
            .set(not_after.map_or(0.0, |t| t.unix_timestamp() as f64));
    }

    /// The service answered (`true`) or could not be reached (`false`).
    pub fn contact(&self, answered: bool) {
        self.reachable.set(i64::from(answered));
        if answered {
            self.last_contact
                .set(self.clock.now().unix_timestamp() as f64);
        }
    }

    /// An enrollment or renewal ended.
    pub fn issuance(&self, kind: &str, ok: bool) {
        let labels = IssuanceLabels {
            kind: kind.to_string(),
            result: outcome(ok).to_string(),
        };
        self.issuances.get_or_create(&labels).inc();
    }

    /// A report ended.
    pub fn report(&self, ok: bool) {
        let labels = ResultLabels {
            result: outcome(ok).to_string(),
        };
        self.reports.get_or_create(&labels).inc();
    }

    /// A round ended: with `Err(reason)`, `/readyz` says why until a round succeeds.
    pub fn round(&self, result: Result<(), String>) {
        let labels = ResultLabels {
            result: outcome(result.is_ok()).to_string(),
        };
        self.rounds.get_or_create(&labels).inc();
        *self.health.lock().unwrap_or_else(PoisonError::into_inner) = result;
    }

    /// This replica leads (or follows: then it is ready without running rounds).
    pub fn leading(&self, leading: bool) {
        self.leader.set(i64::from(leading));
        if !leading {
            *self.health.lock().unwrap_or_else(PoisonError::into_inner) = Ok(());
        }
    }

    /// Ready, or why not.
    pub fn readiness(&self) -> Result<(), String> {
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The metrics in the OpenMetrics text format, time left computed now.
    pub fn encode(&self) -> String {
        let not_after = *self
            .not_after
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let left = not_after.map_or(0.0, |t| (t - self.clock.now()).as_seconds_f64());
        self.expires_in.set(left);
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

fn outcome(ok: bool) -> &'static str {
    if ok { "ok" } else { "error" }
}
