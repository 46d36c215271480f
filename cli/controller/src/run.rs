//! Wiring of `meshtrust controller`: the HTTP server, leader election, and — on the leader
//! only — the kube-runtime controller over `MeshTrust` resources.

use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{Controller, watcher};
use kube::{Api, Client};
use tokio::sync::watch;

use crate::context::Context;
use crate::crd::MeshTrust;
use crate::error::{Error, Result};
use crate::health::Health;
use crate::leader::{Elector, LeaseConfig};
use crate::metrics::Metrics;
use crate::reconcile::{error_policy, reconcile};
use crate::server::serve;

/// Everything the controller is started with.
#[non_exhaustive]
pub struct Settings {
    /// The management cluster.
    pub client: Client,
    /// Address of the health and metrics server.
    pub listen: std::net::SocketAddr,
    /// Leader election.
    pub lease: LeaseConfig,
    /// Reconcile settings (the metrics and health in it are shared with the server).
    pub context: Context,
}

impl Settings {
    /// The controller over `client`, serving on `listen`, electing with `lease`.
    pub fn new(
        client: Client,
        listen: std::net::SocketAddr,
        lease: LeaseConfig,
        context: Context,
    ) -> Settings {
        Settings {
            client,
            listen,
            lease,
            context,
        }
    }
}

/// The Event recorder of this replica.
pub fn recorder(client: &Client, identity: &str) -> Recorder {
    Recorder::new(
        client.clone(),
        Reporter {
            controller: "meshtrust".into(),
            instance: Some(identity.to_string()),
        },
    )
}

/// Runs until SIGINT/SIGTERM: serves /healthz, /readyz and /metrics on every replica;
/// reconciles only while leading.
pub async fn run(settings: Settings) -> Result<()> {
    let Settings {
        client,
        listen,
        lease,
        context,
    } = settings;
    let health: Arc<Health> = Arc::clone(&context.health);
    let context = Arc::new(context);
    let (stop_tx, stop_rx) = watch::channel(false);

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Error::Serve {
            reason: format!("cannot listen on {listen}: {e}"),
        })?;
    let server = tokio::spawn(serve(
        listener,
        Arc::clone(&context.metrics),
        Arc::clone(&health),
        stopped(stop_rx.clone()),
    ));
    let (leading_tx, leading_rx) = watch::channel(false);
    let elector = Elector::new(client.clone(), lease, context.clock.clone())?;
    let election = tokio::spawn(elector.run(leading_tx, stopped(stop_rx.clone())));
    // Every replica that serves and takes part in the election is ready: a follower is
    // ready to take over. The last reconcile's outcome is shown by /readyz.
    health.set_ready();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        health.set_not_ready("shutting down");
        let _ = stop_tx.send(true);
    });

    reconcile_while_leading(client, context, leading_rx, stop_rx).await;
    let _ = election.await;
    let _ = server.await;
    Ok(())
}

/// Completes once `rx` says stop.
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Each time this replica becomes leader, runs the kube-runtime controller over
/// `MeshTrust` resources until leadership is lost or the process stops.
async fn reconcile_while_leading(
    client: Client,
    context: Arc<Context>,
    mut leading: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let api: Api<MeshTrust> = Api::all(client);
    let metrics: Arc<Metrics> = Arc::clone(&context.metrics);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            r = leading.wait_for(|l| *l) => { if r.is_err() { break; } }
        }
        metrics.set_leader(true);
        tracing::info!("leading: reconciling MeshTrust resources");
        let mut lost = leading.clone();
        let controller = Controller::new(api.clone(), watcher::Config::default())
            .graceful_shutdown_on(async move {
                let _ = lost.wait_for(|l| !*l).await;
            })
            .run(reconcile, error_policy, Arc::clone(&context))
            .for_each(|r| async move {
                match r {
                    Ok((obj, _)) => tracing::debug!(name = %obj.name, "reconciled"),
                    Err(e) => tracing::warn!(error = %e, "reconcile failed"),
                }
            });
        tokio::select! {
            _ = controller => {}
            _ = stop.wait_for(|s| *s) => {}
        }
        metrics.set_leader(false);
        if *stop.borrow() {
            break;
        }
        tracing::info!("lost leadership: stopped reconciling");
    }
}

/// Completes on SIGTERM or Ctrl-C (what a pod and a terminal send), for the controller
/// and the agent alike.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
