//! Leader election over a `coordination.k8s.io/v1` Lease, after client-go's
//! `leaderelection`: only the replica holding the Lease writes.
//!
//! [`decide`] is the pure rule (acquire, renew or follow, given the Lease and the clock);
//! [`Elector::try_acquire_or_renew`] carries one decision out with resourceVersion
//! preconditions, so of two replicas racing for the Lease exactly one wins;
//! [`Elector::run`] repeats that every `retry_period`, publishes leadership on a watch
//! channel, steps down when it cannot renew within `renew_deadline`, and releases the Lease
//! on shutdown so that another replica takes over at once.
//!
//! A Lease expires `leaseDurationSeconds` after its `renewTime`, compared with this
//! replica's clock (client-go compares with the time it observed the last change, which
//! tolerates clock skew between replicas; keep the clocks in sync, as Kubernetes nodes are).

use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};
use time::OffsetDateTime;
use tokio::sync::watch;

/// The Lease's default name.
pub const DEFAULT_LEASE_NAME: &str = "meshtrust-controller";

/// Where the Lease lives, who we are, and the timings (client-go's defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseConfig {
    /// Namespace of the Lease (usually the controller's own, `POD_NAMESPACE`).
    pub namespace: String,
    /// Name of the Lease; default [`DEFAULT_LEASE_NAME`].
    pub name: String,
    /// This replica's identity, unique among the replicas (e.g. `POD_NAME`).
    pub identity: String,
    /// How long a Lease holds without renewal before others may take it; whole seconds,
    /// rounded up. Default 15 s.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it steps down; shorter than
    /// `lease_duration`, so it stops acting before anyone else may start. Default 10 s.
    pub renew_deadline: Duration,
    /// The pause between two attempts to acquire or renew. Default 2 s.
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// The Lease [`DEFAULT_LEASE_NAME`] in `namespace`, held as `identity`, with the
    /// default timings (15 s lease, 10 s renew deadline, 2 s retry period).
    pub fn new(namespace: impl Into<String>, identity: impl Into<String>) -> Self {
        LeaseConfig {
            namespace: namespace.into(),
            name: DEFAULT_LEASE_NAME.to_string(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.identity.is_empty() {
            bail!("the leader election identity is empty: set it to the pod name (POD_NAME)");
        }
        if self.name.is_empty() || self.namespace.is_empty() {
            bail!("the leader Lease needs a name and a namespace");
        }
        if self.lease_duration < Duration::from_secs(1) {
            bail!(
                "the lease duration ({:?}) must be at least 1s: Leases count whole seconds",
                self.lease_duration
            );
        }
        if self.renew_deadline >= self.lease_duration {
            bail!(
                "the renew deadline ({:?}) must be shorter than the lease duration ({:?}), or two replicas may lead at once",
                self.renew_deadline,
                self.lease_duration
            );
        }
        if self.retry_period.is_zero() || self.retry_period >= self.renew_deadline {
            bail!(
                "the retry period ({:?}) must be above zero and shorter than the renew deadline ({:?})",
                self.retry_period,
                self.renew_deadline
            );
        }
        Ok(())
    }

    fn lease_seconds(&self) -> i32 {
        let whole =
            self.lease_duration.as_secs() + u64::from(self.lease_duration.subsec_nanos() > 0);
        i32::try_from(whole).unwrap_or(i32::MAX)
    }

    fn lease(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// What a replica should do about the Lease, as [`decide`] sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nobody holds it (absent, released, or expired): take it over.
    Acquire,
    /// We hold it: renew it.
    Renew,
    /// Someone else holds it until `expires`: wait.
    Follow {
        /// The holder's identity.
        holder: String,
        /// When the holder's Lease runs out unless renewed.
        expires: OffsetDateTime,
    },
}

/// Whether `identity` may acquire or renew `lease` at `now`. A Lease without
/// `leaseDurationSeconds` is taken to last `lease_duration`; one without a holder or a
/// `renewTime` is free. A Lease is held up to and including `renewTime +
/// leaseDurationSeconds`.
pub fn decide(
    lease: Option<&Lease>,
    identity: &str,
    now: OffsetDateTime,
    lease_duration: Duration,
) -> Decision {
    let Some(spec) = lease.and_then(|l| l.spec.as_ref()) else {
        return Decision::Acquire;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder.is_empty() {
        return Decision::Acquire;
    }
    if holder == identity {
        return Decision::Renew;
    }
    let Some(renewed) = spec.renew_time.as_ref().and_then(offset_date_time) else {
        return Decision::Acquire;
    };
    let duration = match spec.lease_duration_seconds {
        Some(seconds) if seconds > 0 => time::Duration::seconds(i64::from(seconds)),
        _ => time::Duration::try_from(lease_duration).unwrap_or(time::Duration::MAX),
    };
    // A renewTime so close to the end of time that adding overflows is far in the future.
    let expires = renewed.checked_add(duration).unwrap_or(renewed);
    if now > expires {
        Decision::Acquire
    } else {
        Decision::Follow {
            holder: holder.to_string(),
            expires,
        }
    }
}

/// `current` (absent when the Lease does not exist yet) claimed by `identity` at `now`:
/// a renewal keeps `acquireTime` and `leaseTransitions`, a takeover sets `acquireTime`
/// and counts one more transition. Everything else of `current` (metadata with its
/// resourceVersion, other spec fields) is kept.
fn claim(
    current: Option<Lease>,
    config: &LeaseConfig,
    decision: &Decision,
    now: MicroTime,
) -> Lease {
    let existed = current.is_some();
    let mut lease = current.unwrap_or_else(|| Lease {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            namespace: Some(config.namespace.clone()),
            ..ObjectMeta::default()
        },
        spec: None,
    });
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if *decision == Decision::Renew {
        spec.acquire_time.get_or_insert_with(|| now.clone());
    } else {
        spec.acquire_time = Some(now.clone());
        spec.lease_transitions = Some(if existed {
            spec.lease_transitions.unwrap_or(0).saturating_add(1)
        } else {
            0
        });
    }
    spec.holder_identity = Some(config.identity.clone());
    spec.renew_time = Some(now);
    spec.lease_duration_seconds = Some(config.lease_seconds());
    lease
}

/// Takes part in the election for one Lease.
#[derive(Debug)]
pub struct Elector {
    api: Api<Lease>,
    config: LeaseConfig,
    /// The other holder last seen (none while we hold it), to log each change of leader
    /// once.
    observed_holder: Mutex<Option<String>>,
}

impl Elector {
    /// An elector for `config`'s Lease. Fails when the identity is empty or the timings
    /// cannot work (`retry_period < renew_deadline < lease_duration`, lease ≥ 1 s).
    pub fn new(client: Client, config: LeaseConfig) -> anyhow::Result<Elector> {
        config.validate()?;
        Ok(Elector {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed_holder: Mutex::new(None),
        })
    }

    /// One round: reads the Lease and, when [`decide`] allows, creates, takes over or
    /// renews it with a resourceVersion precondition. `Ok(true)` when we hold the Lease
    /// afterwards; `Ok(false)` when someone else holds it or won a race for it (409);
    /// `Err` when the API server could not be asked (the outcome is unknown).
    pub async fn try_acquire_or_renew(&self) -> anyhow::Result<bool> {
        let lease_name = self.config.lease();
        let now = OffsetDateTime::now_utc();
        let current = self
            .api
            .get_opt(&self.config.name)
            .await
            .with_context(|| format!("cannot read the leader Lease {lease_name}"))?;
        let decision = decide(
            current.as_ref(),
            &self.config.identity,
            now,
            self.config.lease_duration,
        );
        if let Decision::Follow { holder, expires } = &decision {
            self.observe(holder, *expires);
            return Ok(false);
        }
        let previous = current
            .as_ref()
            .and_then(|l| l.spec.as_ref())
            .and_then(|s| s.holder_identity.clone())
            .unwrap_or_default();
        let exists = current.is_some();
        let lease = claim(current, &self.config, &decision, micro_time(now)?);
        let written = if exists {
            self.api
                .replace(&self.config.name, &PostParams::default(), &lease)
                .await
        } else {
            self.api.create(&PostParams::default(), &lease).await
        };
        match written {
            Ok(lease) => {
                *self
                    .observed_holder
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = None;
                if decision == Decision::Acquire {
                    let transitions = lease.spec.and_then(|s| s.lease_transitions).unwrap_or(0);
                    tracing::info!(
                        lease = %lease_name,
                        identity = %self.config.identity,
                        previous = %previous,
                        transitions,
                        "acquired the leader Lease"
                    );
                } else {
                    tracing::debug!(lease = %lease_name, "renewed the leader Lease");
                }
                Ok(true)
            }
            // 409: another replica wrote first (created it, or changed it since we read);
            // 404: it was deleted since we read. Either way, look again next round.
            Err(kube::Error::Api(status)) if status.code == 409 || status.code == 404 => {
                tracing::debug!(
                    lease = %lease_name,
                    code = status.code,
                    "another replica changed the leader Lease first"
                );
                Ok(false)
            }
            Err(e) => Err(e).with_context(|| {
                format!(
                    "cannot {} the leader Lease {lease_name}",
                    if exists { "update" } else { "create" }
                )
            }),
        }
    }

    /// Gives the Lease up if we hold it: clears the holder and shortens it to 1 s, so
    /// another replica takes over at its next attempt instead of waiting for expiry.
    /// `Ok(true)` when released; `Ok(false)` when we did not hold it (or lost a race).
    pub async fn release(&self) -> anyhow::Result<bool> {
        let lease_name = self.config.lease();
        let current = self
            .api
            .get_opt(&self.config.name)
            .await
            .with_context(|| format!("cannot read the leader Lease {lease_name}"))?;
        let Some(mut lease) = current else {
            return Ok(false);
        };
        let Some(spec) = lease
            .spec
            .as_mut()
            .filter(|s| s.holder_identity.as_deref() == Some(self.config.identity.as_str()))
        else {
            return Ok(false);
        };
        spec.holder_identity = None;
        spec.renew_time = Some(micro_time(OffsetDateTime::now_utc())?);
        spec.lease_duration_seconds = Some(1);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                tracing::info!(lease = %lease_name, identity = %self.config.identity, "released the leader Lease");
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.code == 409 || status.code == 404 => Ok(false),
            Err(e) => {
                Err(e).with_context(|| format!("cannot release the leader Lease {lease_name}"))
            }
        }
    }

    /// Campaigns until `shutdown` completes: every `retry_period` one
    /// [`try_acquire_or_renew`](Elector::try_acquire_or_renew). Publishes `true` on
    /// `leading` when this replica becomes leader and `false` when it loses the Lease or
    /// cannot renew it within `renew_deadline`. On shutdown publishes `false` and
    /// releases the Lease if it holds it.
    pub async fn run(self, leading: watch::Sender<bool>, shutdown: impl Future<Output = ()>) {
        let lease_name = self.config.lease();
        let identity = self.config.identity.clone();
        tokio::pin!(shutdown);
        let mut is_leader = false;
        let mut last_renewal = Instant::now();
        loop {
            let started = Instant::now();
            let budget = if is_leader {
                self.config
                    .renew_deadline
                    .saturating_sub(last_renewal.elapsed())
            } else {
                self.config.renew_deadline
            };
            let attempt = tokio::select! {
                () = &mut shutdown => break,
                attempt = tokio::time::timeout(budget, self.try_acquire_or_renew()) => attempt,
            };
            match attempt {
                Ok(Ok(true)) => {
                    last_renewal = started;
                    if !is_leader {
                        is_leader = true;
                        tracing::info!(lease = %lease_name, %identity, "became leader");
                        leading.send_replace(true);
                    }
                }
                Ok(Ok(false)) => {
                    if is_leader {
                        is_leader = false;
                        tracing::warn!(lease = %lease_name, %identity, "another replica holds the leader Lease; stepping down");
                        leading.send_replace(false);
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(lease = %lease_name, error = %format!("{e:#}"), "leader election attempt failed");
                }
                Err(_) => {
                    tracing::warn!(lease = %lease_name, timeout = ?budget, "leader election attempt timed out");
                }
            }
            if is_leader && last_renewal.elapsed() >= self.config.renew_deadline {
                is_leader = false;
                tracing::warn!(
                    lease = %lease_name,
                    %identity,
                    renew_deadline = ?self.config.renew_deadline,
                    "could not renew the leader Lease in time; stepping down"
                );
                leading.send_replace(false);
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(self.config.retry_period) => {}
            }
        }
        if is_leader {
            leading.send_replace(false);
            tracing::info!(lease = %lease_name, %identity, "shutting down; no longer leader");
        }
        // Also when not (known to be) leader: an attempt cut short by the shutdown may
        // have taken the Lease. `release` leaves a Lease held by someone else alone.
        match tokio::time::timeout(self.config.renew_deadline, self.release()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(lease = %lease_name, error = %format!("{e:#}"), "could not release the leader Lease; others take over when it expires");
            }
            Err(_) => {
                tracing::warn!(lease = %lease_name, "releasing the leader Lease timed out; others take over when it expires");
            }
        }
    }

    /// Logs a change of leader once.
    fn observe(&self, holder: &str, expires: OffsetDateTime) {
        let mut observed = self
            .observed_holder
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if observed.as_deref() != Some(holder) {
            tracing::info!(lease = %self.config.lease(), leader = %holder, %expires, "following the current leader");
            *observed = Some(holder.to_string());
        }
    }
}

/// A Lease time (jiff, microseconds on the wire) as `time`'s type.
fn offset_date_time(t: &MicroTime) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(t.0.as_nanosecond()).ok()
}

/// `time`'s type as a Lease time.
fn micro_time(t: OffsetDateTime) -> anyhow::Result<MicroTime> {
    Timestamp::from_nanosecond(t.unix_timestamp_nanos())
        .map(MicroTime)
        .with_context(|| format!("{t} is outside the range of a Kubernetes MicroTime"))
}

#[cfg(test)]
mod tests;
