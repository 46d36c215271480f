//! Leader election over a `coordination.k8s.io/v1` Lease, after client-go's
//! `leaderelection`: only the replica holding the Lease writes.
//!
//! [`decide`] is the pure rule (acquire, renew or follow, given the Lease and the clock);
//! [`Elector::try_acquire_or_renew`] carries one decision out with resourceVersion
//! preconditions, so of two replicas racing for the Lease exactly one wins;
//! [`Elector::run`] repeats that every `retry_period`, publishes leadership on a watch
//! channel, steps down when it cannot renew within `renew_deadline`, and releases the Lease
//! on shutdown so that another replica takes over at once. Every attempt also updates an
//! [`Observation`] (how many attempts, who was last seen leading), published on
//! [`Elector::observations`].
//!
//! All time comes from the elector's [`Clock`]: the Lease's `renewTime` is stamped with
//! [`Clock::now`], and the renew deadline is measured with [`Clock::instant`]. Only the pause
//! between attempts and the time limit of one attempt run on tokio's timer.
//!
//! A Lease expires `leaseDurationSeconds` after its `renewTime`, compared with this
//! replica's clock (client-go compares with the time it observed the last change, which
//! tolerates clock skew between replicas; keep the clocks in sync, as Kubernetes nodes are).

mod config;
mod lease;

use std::future::Future;
use std::time::Duration;

use crate::error::{is_conflict, is_not_found};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::PostParams;
use kube::{Api, Client};
use meshtrust_issuer::Clock;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio::time::error::Elapsed;

pub use config::{DEFAULT_LEASE_NAME, LeaseConfig};
pub use lease::{Decision, decide};
use lease::{claim, holder, micro_time};

use crate::error::Result;

/// What an elector has seen of the election so far, published on
/// [`Elector::observations`] after every attempt: to log or show who leads, or to wait
/// until a number of attempts has been made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Observation {
    /// Attempts to acquire or renew finished so far, whatever they came to: the Lease
    /// held, followed, lost to a faster replica, an error, or (in [`Elector::run`]) a
    /// timeout.
    pub attempts: u64,
    /// The leader as last seen: this replica's identity once it acquired or renewed the
    /// Lease, another replica's once it found that one holding it; `None` until then.
    /// Failed attempts and lost races leave it as it was.
    pub leader: Option<String>,
}

/// What one attempt came to, when the API server answered.
#[derive(Debug)]
enum Outcome {
    /// We acquired or renewed the Lease.
    Held,
    /// Another replica holds it until `expires`.
    Followed {
        holder: String,
        expires: OffsetDateTime,
    },
    /// Another replica changed the Lease between our read and our write (409), or it was
    /// deleted (404).
    Outraced,
}

/// This replica's standing while [`Elector::run`] campaigns.
struct Standing {
    /// Where leadership is published.
    published: watch::Sender<bool>,
    /// Whether this replica leads, as last published.
    leading: bool,
    /// When the last successful attempt began, in the elector's monotonic time.
    last_renewal: Instant,
}

impl Standing {
    fn set(&mut self, leading: bool) {
        self.leading = leading;
        self.published.send_replace(leading);
    }
}

/// Takes part in the election for one Lease.
#[derive(Debug)]
pub struct Elector {
    api: Api<Lease>,
    config: LeaseConfig,
    clock: Clock,
    /// What this elector has seen; the leader last seen also decides whether a change of
    /// leader is logged (once per change).
    observation: watch::Sender<Observation>,
}

impl Elector {
    /// An elector for `config`'s Lease, reading time from `clock`. Fails when the identity
    /// is empty or the timings cannot work (`retry_period < renew_deadline <
    /// lease_duration`, lease ≥ 1 s).
    pub fn new(client: Client, config: LeaseConfig, clock: Clock) -> Result<Elector> {
        config.validate()?;
        Ok(Elector {
            api: Api::namespaced(client, &config.namespace),
            config,
            clock,
            observation: watch::Sender::new(Observation::default()),
        })
    }

    /// What this elector sees, updated after every attempt (by
    /// [`try_acquire_or_renew`](Elector::try_acquire_or_renew) or by [`run`](Elector::run));
    /// take it before `run` consumes the elector. In `run`, an attempt's observation is
    /// published after the leadership it leads to.
    pub fn observations(&self) -> watch::Receiver<Observation> {
        self.observation.subscribe()
    }

    /// One round: reads the Lease and, when [`decide`] allows, creates, takes over or
    /// renews it with a resourceVersion precondition. `Ok(true)` when we hold the Lease
    /// afterwards; `Ok(false)` when someone else holds it or won a race for it (409);
    /// `Err` when the API server could not be asked (the outcome is unknown).
    pub async fn try_acquire_or_renew(&self) -> Result<bool> {
        let outcome = self.attempt().await;
        self.record(outcome.as_ref().ok());
        outcome.map(|o| matches!(o, Outcome::Held))
    }

    /// Gives the Lease up if we hold it: clears the holder and shortens it to 1 s, so
    /// another replica takes over at its next attempt instead of waiting for expiry.
    /// `Ok(true)` when released; `Ok(false)` when we did not hold it (or lost a race).
    pub async fn release(&self) -> Result<bool> {
        let Some(mut lease) = self.read().await? else {
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
        spec.renew_time = Some(micro_time(self.clock.now())?);
        spec.lease_duration_seconds = Some(1);
        match self.write(&lease, true).await {
            Ok(_) => {
                tracing::info!(lease = %self.config.lease(), identity = %self.config.identity, "released the leader Lease");
                Ok(true)
            }
            Err(e) if is_conflict(&e) || is_not_found(&e) => Ok(false),
            Err(e) => Err(self.api_error("release", e)),
        }
    }

    /// Campaigns until `shutdown` completes: every `retry_period` one
    /// [`try_acquire_or_renew`](Elector::try_acquire_or_renew). Publishes `true` on
    /// `leading` when this replica becomes leader and `false` when it loses the Lease or
    /// cannot renew it within `renew_deadline` (measured with the elector's clock). On
    /// shutdown publishes `false` and releases the Lease if it holds it.
    pub async fn run(self, leading: watch::Sender<bool>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut standing = Standing {
            published: leading,
            leading: false,
            last_renewal: self.clock.instant(),
        };
        loop {
            let started = self.clock.instant();
            let budget = self.budget(&standing);
            let attempt = tokio::select! {
                () = &mut shutdown => break,
                attempt = tokio::time::timeout(budget, self.attempt()) => attempt,
            };
            self.settle(&mut standing, started, budget, &attempt);
            self.record(attempt.as_ref().ok().and_then(|a| a.as_ref().ok()));
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(self.config.retry_period) => {}
            }
        }
        self.resign(standing).await;
    }

    /// One round, not yet recorded in the observation.
    async fn attempt(&self) -> Result<Outcome> {
        let now = self.clock.now();
        let current = self.read().await?;
        let decision = decide(
            current.as_ref(),
            &self.config.identity,
            now,
            self.config.lease_duration,
        );
        if let Decision::Follow { holder, expires } = decision {
            return Ok(Outcome::Followed { holder, expires });
        }
        let previous = holder(current.as_ref()).to_string();
        let exists = current.is_some();
        let lease = claim(current, &self.config, &decision, micro_time(now)?);
        match self.write(&lease, exists).await {
            Ok(written) => {
                self.log_claim(&decision, &previous, &written);
                Ok(Outcome::Held)
            }
            // 409: another replica wrote first (created it, or changed it since we read);
            // 404: it was deleted since we read. Either way, look again next round.
            Err(e) if is_conflict(&e) || is_not_found(&e) => {
                tracing::debug!(lease = %self.config.lease(), error = %e, "another replica changed the leader Lease first");
                Ok(Outcome::Outraced)
            }
            Err(e) => Err(self.api_error(if exists { "update" } else { "create" }, e)),
        }
    }

    /// The Lease, `None` when it does not exist.
    async fn read(&self) -> Result<Option<Lease>> {
        self.api
            .get_opt(&self.config.name)
            .await
            .map_err(|e| self.api_error("read", e))
    }

    /// Creates `lease`, or replaces it under the resourceVersion it was read with.
    async fn write(&self, lease: &Lease, exists: bool) -> kube::Result<Lease> {
        let params = PostParams::default();
        if exists {
            self.api.replace(&self.config.name, &params, lease).await
        } else {
            self.api.create(&params, lease).await
        }
    }

    fn api_error(&self, verb: &str, e: kube::Error) -> crate::error::Error {
        let action = format!("cannot {verb} the leader Lease {}", self.config.lease());
        crate::error::Error::api(action, e)
    }

    fn log_claim(&self, decision: &Decision, previous: &str, written: &Lease) {
        let lease = self.config.lease();
        if *decision == Decision::Acquire {
            let spec = written.spec.as_ref();
            let transitions = spec.and_then(|s| s.lease_transitions).unwrap_or(0);
            tracing::info!(
                lease = %lease,
                identity = %self.config.identity,
                previous = %previous,
                transitions,
                "acquired the leader Lease"
            );
        } else {
            tracing::debug!(lease = %lease, "renewed the leader Lease");
        }
    }

    /// Counts a finished attempt, with what it came to when the API server answered, and
    /// logs a change of leader once.
    fn record(&self, outcome: Option<&Outcome>) {
        self.observation.send_modify(|seen| {
            seen.attempts += 1;
            match outcome {
                Some(Outcome::Held) => seen.leader = Some(self.config.identity.clone()),
                Some(Outcome::Followed { holder, expires }) => {
                    if seen.leader.as_deref() != Some(holder.as_str()) {
                        tracing::info!(lease = %self.config.lease(), leader = %holder, %expires, "following the current leader");
                        seen.leader = Some(holder.clone());
                    }
                }
                Some(Outcome::Outraced) | None => {}
            }
        });
    }

    /// How long the next attempt may take: what is left of the renew deadline while
    /// leading, the whole renew deadline otherwise.
    fn budget(&self, standing: &Standing) -> Duration {
        if standing.leading {
            let since = self.clock.elapsed(standing.last_renewal);
            self.config.renew_deadline.saturating_sub(since)
        } else {
            self.config.renew_deadline
        }
    }

    /// Carries out what the attempt begun at `started` came to: leads after a success,
    /// steps down when another replica holds the Lease or when the last success began
    /// `renew_deadline` ago or more, by the elector's clock.
    fn settle(
        &self,
        standing: &mut Standing,
        started: Instant,
        budget: Duration,
        attempt: &std::result::Result<Result<Outcome>, Elapsed>,
    ) {
        let (lease, identity) = (self.config.lease(), &self.config.identity);
        match attempt {
            Ok(Ok(Outcome::Held)) => {
                standing.last_renewal = started;
                if !standing.leading {
                    tracing::info!(lease = %lease, %identity, "became leader");
                    standing.set(true);
                }
            }
            Ok(Ok(Outcome::Followed { .. } | Outcome::Outraced)) => {
                if standing.leading {
                    tracing::warn!(lease = %lease, %identity, "another replica holds the leader Lease; stepping down");
                    standing.set(false);
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(lease = %lease, error = %e, "leader election attempt failed");
            }
            Err(_) => {
                tracing::warn!(lease = %lease, timeout = ?budget, "leader election attempt timed out");
            }
        }
        let deadline = self.config.renew_deadline;
        if standing.leading && self.clock.elapsed(standing.last_renewal) >= deadline {
            tracing::warn!(lease = %lease, %identity, renew_deadline = ?deadline, "could not renew the leader Lease in time; stepping down");
            standing.set(false);
        }
    }

    /// On shutdown: publishes that we no longer lead, and releases the Lease.
    async fn resign(&self, mut standing: Standing) {
        let lease = self.config.lease();
        if standing.leading {
            standing.set(false);
            tracing::info!(lease = %lease, identity = %self.config.identity, "shutting down; no longer leader");
        }
        // Also when not (known to be) leader: an attempt cut short by the shutdown may
        // have taken the Lease. `release` leaves a Lease held by someone else alone.
        match tokio::time::timeout(self.config.renew_deadline, self.release()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(lease = %lease, error = %e, "could not release the leader Lease; others take over when it expires");
            }
            Err(_) => {
                tracing::warn!(lease = %lease, "releasing the leader Lease timed out; others take over when it expires");
            }
        }
    }
}

#[cfg(test)]
mod tests;
