//! The agent's rounds, while this replica leads: read the cluster, decide, carry the step
//! out, report. A failed round is tried again after a backoff; in between, the cluster
//! keeps serving the bundle it holds.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use kube::Client;
use meshtrust_issuer::Clock;
use meshtrust_issuer::server::ServerIssuer;
use meshtrust_kube::leader::{Elector, LeaseConfig};
use time::{Duration, OffsetDateTime};
use tokio::sync::watch;

use crate::config::AgentConfig;
use crate::decide::{Expected, Facts, Step, decide};
use crate::error::{Error, Result};
use crate::held::{Held, Pending, Purpose};
use crate::issue::Issuance;
use crate::metrics::Metrics;
use crate::observe::observe;
use crate::report;

/// Issuances in a row (each followed at once by another round) before the agent backs off:
/// a service whose answers never satisfy the decision must not be asked in a tight loop.
const MAX_STREAK: u32 = 3;

/// One agent: its cluster, its service, its clock and metrics.
pub struct Agent {
    client: Client,
    issuer: ServerIssuer,
    config: AgentConfig,
    clock: Clock,
    metrics: Arc<Metrics>,
}

/// What the agent remembers between rounds (lost on restart, which costs one report).
#[derive(Debug, Default)]
pub struct Memory {
    /// The service's last answer to a report.
    pub expected: Option<Expected>,
    /// The service refused `cacerts`' intermediate as not its own.
    pub unknown_to_service: bool,
    /// Failed rounds in a row.
    pub failures: u32,
    /// Issuances in a row.
    pub streak: u32,
}

impl Agent {
    /// The agent of `config.cluster`, over `client` (its cluster) and `issuer` (the service).
    pub fn new(
        client: Client,
        issuer: ServerIssuer,
        config: AgentConfig,
        clock: Clock,
        metrics: Arc<Metrics>,
    ) -> Agent {
        Agent {
            client,
            issuer,
            config,
            clock,
            metrics,
        }
    }

    /// One round; returns when the next is due.
    pub async fn round(&self, memory: &mut Memory) -> Result<OffsetDateTime> {
        let now = self.clock.now();
        let view = observe(&self.client, &self.config).await?;
        let held = Held::read(view.cacerts.as_ref(), now);
        let pending = view.pending.as_ref().and_then(Pending::read);
        self.metrics
            .held(held.bundle().map(|b| b.certificate.not_after()));
        let step = decide(&Facts {
            held: &held,
            pending: pending.as_ref(),
            expected: memory.expected.as_ref(),
            unknown_to_service: memory.unknown_to_service,
            foreign: self.config.foreign,
            jitter_percent: self.config.jitter_percent,
            now,
        });
        let issuance = self.issuance(now);
        let purpose = match step {
            Step::Wait { until } => {
                memory.streak = 0;
                let Some(bundle) = held.bundle() else {
                    return Ok(until);
                };
                let report = report::cluster_report(&view, bundle, now);
                let sent = report::send(&self.issuer, &self.config, bundle, &report, now).await;
                let expected = self.answered("report", sent, memory)?;
                self.metrics.report(true);
                let changed = memory.expected.as_ref() != Some(&expected);
                memory.expected = Some(expected);
                // A new word from the service may make something due now.
                return Ok(if changed { now } else { until });
            }
            Step::DropPending => {
                issuance.drop_pending().await?;
                return Ok(now);
            }
            Step::Refuse { reason } => {
                return Err(Error::Foreign {
                    namespace: self.config.namespace.clone(),
                    reason,
                });
            }
            Step::Enroll { reason } => {
                tracing::info!(cluster = %self.config.cluster, %reason, "enrolling");
                Purpose::Enroll
            }
            Step::Renew { reason } => {
                tracing::info!(cluster = %self.config.cluster, %reason, "renewing");
                let replaces = held.bundle().map(|b| b.serial()).unwrap_or_default();
                Purpose::Renew { replaces }
            }
            Step::UpdateTrust { trust_pem, reason } => {
                self.update_trust(view, &trust_pem, &reason, memory).await?;
                return Ok(now);
            }
        };
        self.issue(view, purpose, memory).await?;
        Ok(now)
    }

    /// Writes the service's new trust file, keeping the intermediate.
    async fn update_trust(
        &self,
        view: crate::observe::ClusterView,
        trust_pem: &str,
        reason: &str,
        memory: &mut Memory,
    ) -> Result<()> {
        tracing::info!(cluster = %self.config.cluster, %reason, "writing the new trust file");
        // The service's word was about what cacerts held before this write.
        memory.expected = None;
        let done = self
            .issuance(self.clock.now())
            .update_trust(view, trust_pem)
            .await;
        self.metrics.issuance("trust", done.is_ok());
        let written = done?;
        tracing::info!(cluster = %self.config.cluster, serial = %written.serial, "cacerts written");
        Ok(())
    }

    async fn issue(
        &self,
        view: crate::observe::ClusterView,
        purpose: Purpose,
        memory: &mut Memory,
    ) -> Result<()> {
        memory.streak += 1;
        if memory.streak > MAX_STREAK {
            memory.streak = 0;
            return Err(Error::Config {
                reason: format!(
                    "{MAX_STREAK} issuances in a row did not leave cluster {} with what the service expects; backing off",
                    self.config.cluster
                ),
            });
        }
        let kind = match purpose {
            Purpose::Enroll => "enroll",
            Purpose::Renew { .. } => "renew",
        };
        let done = self.issuance(self.clock.now()).run(view, purpose).await;
        self.metrics.issuance(kind, done.is_ok());
        let issued = self.answered(kind, done, memory)?;
        memory.unknown_to_service = false;
        // The service's word was about the intermediate just replaced.
        memory.expected = None;
        tracing::info!(
            cluster = %self.config.cluster,
            serial = %issued.serial,
            not_after = %issued.not_after,
            backup = issued.backup.as_deref().unwrap_or("none"),
            "cacerts written"
        );
        for notice in &issued.notices {
            tracing::warn!(cluster = %self.config.cluster, "{notice}");
        }
        Ok(())
    }

    fn issuance(&self, now: OffsetDateTime) -> Issuance<'_> {
        Issuance {
            client: &self.client,
            issuer: &self.issuer,
            config: &self.config,
            now,
        }
    }

    /// Records whether the service answered `done`; a refusal of `cacerts`' intermediate as
    /// unknown makes the next round enroll.
    fn answered<T>(&self, what: &str, done: Result<T>, memory: &mut Memory) -> Result<T> {
        use meshtrust_issuer::Error as Issuer;
        match &done {
            Ok(_) | Err(Error::Issuer(_)) => self.metrics.contact(true),
            Err(_) => {}
        }
        match &done {
            Err(Error::Issuer(
                Issuer::ServiceUnreachable { .. } | Issuer::UntrustedService { .. },
            )) => self.metrics.contact(false),
            Err(Error::Issuer(Issuer::ServiceRefused { code, .. }))
                if code == "certificate_unknown" || code == "unknown_cluster" =>
            {
                memory.unknown_to_service = true;
            }
            _ => {}
        }
        if what == "report" && done.is_err() {
            self.metrics.report(false);
        }
        done
    }

    /// Runs rounds while `leading` says this replica leads, until `shutdown`.
    pub async fn run_while_leading(
        &self,
        mut leading: watch::Receiver<bool>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut memory = Memory::default();
        loop {
            if !*leading.borrow() {
                self.metrics.leading(false);
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    r = leading.wait_for(|l| *l) => if r.is_err() { return },
                }
            }
            self.metrics.leading(true);
            let pause = self.one(&mut memory).await;
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = leading.changed() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// A round and how long to pause after it.
    async fn one(&self, memory: &mut Memory) -> StdDuration {
        let every = Duration::try_from(self.config.report_every).unwrap_or(Duration::MINUTE);
        let now = self.clock.now();
        let next = match self.round(memory).await {
            Ok(next) => {
                memory.failures = 0;
                self.metrics.round(Ok(()));
                next
            }
            Err(e) => {
                memory.failures += 1;
                let delay = self.config.backoff.delay(memory.failures);
                tracing::warn!(cluster = %self.config.cluster, error = %e, retry_in = %delay, "round failed");
                self.metrics.round(Err(e.to_string()));
                now + delay
            }
        };
        let pause = (next - self.clock.now()).clamp(Duration::ZERO, every);
        StdDuration::try_from(pause).unwrap_or_default()
    }
}

/// How one agent process runs.
#[derive(Debug)]
pub struct Settings {
    /// Address of `/healthz`, `/readyz` and `/metrics`.
    pub listen: std::net::SocketAddr,
    /// The Lease of the replicas.
    pub lease: LeaseConfig,
}

/// Serves the endpoints, elects a leader among the replicas, and runs the agent's rounds on
/// the leader, until `shutdown` completes.
pub async fn run(
    agent: Arc<Agent>,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let listen = settings.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Error::Serve {
            reason: format!("cannot listen on {listen}: {e}"),
        })?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(crate::server::serve(
        listener,
        Arc::clone(&agent.metrics),
        stopped(stop_rx.clone()),
    ));
    let (leading_tx, leading_rx) = watch::channel(false);
    let elector = Elector::new(agent.client.clone(), settings.lease, agent.clock.clone())?;
    let election = tokio::spawn(elector.run(leading_tx, stopped(stop_rx.clone())));
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    agent.run_while_leading(leading_rx, stop_rx).await;
    let _ = election.await;
    let _ = server.await;
    Ok(())
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
