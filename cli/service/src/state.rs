//! One service replica's state: the issuer, the store, the credential verifiers, the policy,
//! the clock, metrics, audit log and rate limiter. Built once at start-up; every handler
//! reads it through an `Arc`.

use std::sync::Arc;

use meshtrust_ca::RenewalPolicy;
use meshtrust_issuer::{Clock, Issuer};
use time::Duration;

use crate::audit::AuditLog;
use crate::config::{CheckedLimits, CheckedPolicy, ServeConfig};
use crate::error::{Error, Result};
use crate::limits::RateLimiter;
use crate::metrics::Metrics;
use crate::request_log::RequestLog;
use crate::sa_token::Verifier;
use crate::store::{AuditEvent, Store};
use crate::tokens::AdminToken;

/// Everything a request may need.
pub struct Service {
    /// Signs intermediates.
    pub issuer: Arc<dyn Issuer>,
    /// Durable state.
    pub store: Store,
    /// Verifies ServiceAccount tokens, per cluster.
    pub accounts: Verifier,
    /// The intermediate profile.
    pub policy: CheckedPolicy,
    /// Request limits.
    pub limits: CheckedLimits,
    /// The admin credential (admin routes answer 403 without one configured).
    pub admin: Option<AdminToken>,
    /// The one clock.
    pub clock: Clock,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// The audit log's line sink.
    pub audit: AuditLog,
    /// Per-principal rate limits.
    pub rate: RateLimiter,
    /// When clusters are told to renew.
    pub renewal: RenewalPolicy,
    /// Every request received, if asked for (`--request-log`).
    pub requests: Option<RequestLog>,
    /// The root rotation the configuration asks for, if any.
    pub rotation: Option<Rotation>,
    /// This replica's last decision of the rotation's gate.
    pub rotation_gate: crate::gate::GateCache,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("issuer", &self.issuer.describe())
            .field("store", &self.store)
            .field("policy", &self.policy)
            .field("rotation", &self.rotation)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Builds the state from a checked configuration and what the binary opened (the
    /// issuer, the store, the audit sink).
    pub async fn new(
        config: &ServeConfig,
        issuer: Arc<dyn Issuer>,
        store: Store,
        audit: AuditLog,
        clock: Clock,
    ) -> Result<Service> {
        let policy = config.checked_policy()?;
        let limits = config.checked_limits()?;
        let admin = config
            .admin_token_file
            .as_deref()
            .map(AdminToken::from_file)
            .transpose()?;
        let accounts = Verifier::new(
            config
                .clusters
                .iter()
                .filter_map(|(name, auth)| {
                    auth.service_account.clone().map(|sa| (name.clone(), sa))
                })
                .collect::<Vec<_>>(),
            clock.clone(),
        )
        .await?;
        let metrics = Metrics::default();
        for cluster in store.clusters().await? {
            if cluster.state == meshtrust_issuer::server::api::ClusterState::Enrolled {
                metrics.set_expiry(&cluster.name, cluster.not_after);
            }
        }
        issuer.trust_bundle().await.map_err(Error::Issuer)?;
        Ok(Service {
            issuer,
            store,
            accounts,
            rate: RateLimiter::new(limits.requests_per_minute, clock.clone()),
            policy,
            limits,
            admin,
            clock,
            metrics,
            audit,
            renewal: RenewalPolicy::default(),
            requests: None,
            rotation: None,
            rotation_gate: Default::default(),
        })
    }

    /// Records an event that is not part of an issuance (a refusal, an admin action): one
    /// audit line, and a row of the store (a store that is down is logged, not fatal to the
    /// answer, which already says what happened).
    pub async fn record(&self, event: AuditEvent) {
        self.audit.write(&event);
        if let Err(e) = self.store.record(event).await {
            tracing::error!("the audit event could not be stored: {e}");
        }
    }
}

/// The rotation the configuration asks for.
pub struct Rotation {
    /// The issuer of the new root.
    pub to: Arc<dyn Issuer>,
    /// How long the old root stays trusted after the newest intermediate from the new one.
    pub hold: Duration,
}

impl std::fmt::Debug for Rotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rotation")
            .field("to", &self.to.describe())
            .field("hold", &self.hold)
            .finish()
    }
}
