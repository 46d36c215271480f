//! Wiring of `meshtrust controller`: the HTTP server, leader election, and — on the leader
//! only — the kube-runtime controller over `MeshTrust` resources.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use futures::StreamExt;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{Controller, watcher};
use kube::{Api, Client};
use tokio::sync::watch;

use super::crd::MeshTrust;
use super::leader::{Elector, LeaseConfig};
use super::metrics::Metrics;
use super::reconcile::{Context, error_policy, reconcile};
use crate::server::{Health, serve};

/// Everything the controller is started with.
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

/// Builds the reconcile context's shared parts.
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
    let metrics: Arc<Metrics> = Arc::clone(&context.metrics);
    let health: Arc<Health> = Arc::clone(&context.health);
    let context = Arc::new(context);

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(address = %listener.local_addr()?, "serving /healthz, /readyz, /metrics");
    let server = tokio::spawn(serve(
        listener,
        Arc::clone(&metrics),
        Arc::clone(&health),
        stopped(stop_rx.clone()),
    ));

    let (leading_tx, mut leading_rx) = watch::channel(false);
    let elector = Elector::new(client.clone(), lease)?;
    let election = tokio::spawn(elector.run(leading_tx, stopped(stop_rx.clone())));
    // Every replica that serves and takes part in the election is ready: a follower is
    // ready to take over. The last reconcile's outcome is shown by /readyz.
    health.set_ready();

    let shutting = Arc::clone(&health);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        shutting.set_not_ready("shutting down");
        let _ = stop_tx.send(true);
    });

    let api: Api<MeshTrust> = Api::all(client.clone());
    let mut stop = stop_rx.clone();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            r = leading_rx.wait_for(|l| *l) => { if r.is_err() { break; } }
        }
        metrics.set_leader(true);
        tracing::info!("leading: reconciling MeshTrust resources");
        let mut lost = leading_rx.clone();
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
    let _ = election.await;
    let _ = server.await;
    Ok(())
}

async fn shutdown_signal() {
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
