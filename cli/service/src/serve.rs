//! Starting and stopping one replica: the issuer and the store from the configuration, the
//! TLS listener (or, only when explicitly asked, plain HTTP for development), and a
//! graceful shutdown in which in-flight signings finish within the grace period.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use meshtrust_issuer::aws_pca::AwsOptions;
use meshtrust_issuer::server::api::TokenResponse;
use meshtrust_issuer::{AwsPcaConfig, Clock, Issuer, IssuerConfig, LocalIssuer};

use crate::api;
use crate::audit::AuditLog;
use crate::config::{IssuerSource, RotationSource, ServeConfig};
use crate::error::{Error, Result};
use crate::request_log::RequestLog;
use crate::state::Rotation;
use crate::state::Service;
use crate::store::{AuditEvent, NewToken, Store};
use crate::tls::Serving;
use crate::tokens;

/// A replica ready to serve.
#[derive(Debug)]
pub struct Server {
    service: Arc<Service>,
    serving: Option<Serving>,
    listen: SocketAddr,
}

/// The signing backend the configuration names, and the local issuer when there is one
/// (a self-issued serving certificate is signed by it).
async fn issuer_of(
    source: &IssuerSource,
    clock: &Clock,
) -> Result<(Arc<dyn Issuer>, Option<Arc<LocalIssuer>>)> {
    match (&source.root_dir, &source.aws_pca_arn) {
        (Some(dir), None) => {
            let local = Arc::new(LocalIssuer::from_dir(dir, clock.now())?);
            Ok((local.clone(), Some(local)))
        }
        (None, Some(arn)) => {
            let options = AwsOptions::new(
                source.aws_region.clone(),
                source.aws_profile.clone(),
                source.aws_endpoint_url.clone(),
            );
            let config = IssuerConfig::AwsPca(AwsPcaConfig::new(arn, options));
            Ok((meshtrust_issuer::connect(config, clock).await?, None))
        }
        _ => Err(Error::Config {
            location: "issuer".to_string(),
            reason: "name exactly one signing backend: root_dir (a local root) or aws_pca_arn"
                .to_string(),
        }),
    }
}

/// The new root's issuer, reachable, and the hold, checked. (A new root that is the
/// current one shows as a blocked rotation, `SameRoot`, naming the fix.)
async fn rotation_of(source: &RotationSource, clock: &Clock) -> Result<Rotation> {
    let hold = source.checked_hold()?;
    let (to, _) = issuer_of(&source.to, clock).await.map_err(|e| match e {
        Error::Config { reason, .. } => Error::Config {
            location: "rotation.to".to_string(),
            reason,
        },
        other => other,
    })?;
    to.trust_bundle().await.map_err(Error::Issuer)?;
    Ok(Rotation { to, hold })
}

fn serving_of(config: &ServeConfig, local: Option<Arc<LocalIssuer>>) -> Result<Option<Serving>> {
    let tls = &config.tls;
    let error = |reason: &str| Error::Config {
        location: "tls".to_string(),
        reason: reason.to_string(),
    };
    match (&tls.cert_file, &tls.key_file, tls.self_issued.is_empty()) {
        _ if config.insecure_plaintext_for_development_only => Ok(None),
        (Some(cert), Some(key), true) => Ok(Some(Serving::Files {
            cert: cert.clone(),
            key: key.clone(),
        })),
        (None, None, false) => {
            let root = local.ok_or_else(|| {
                error("self_issued needs a local root (issuer.root_dir); with AWS Private CA give cert_file and key_file (e.g. from cert-manager)")
            })?;
            Ok(Some(Serving::SelfIssued {
                root,
                names: tls.self_issued.clone(),
            }))
        }
        (None, None, true) => Err(error(
            "no serving certificate: give cert_file and key_file, or self_issued names",
        )),
        _ => Err(error(
            "give either cert_file and key_file together, or self_issued names, not both",
        )),
    }
}

impl Server {
    /// Opens everything the configuration names and checks it, without listening yet.
    pub async fn build(config: &ServeConfig, clock: Clock, audit: AuditLog) -> Result<Server> {
        let (issuer, local) = issuer_of(&config.issuer, &clock).await?;
        let serving = serving_of(config, local)?;
        let store = Store::open(&config.store).await?;
        let mut service = Service::new(config, issuer, store, audit, clock.clone()).await?;
        if let Some(rotation) = &config.rotation {
            service.rotation = Some(rotation_of(rotation, &clock).await?);
        }
        Ok(Server {
            service: Arc::new(service),
            serving,
            listen: config.listen,
        })
    }

    /// Writes every request received to `log` (before serving).
    pub fn with_request_log(mut self, log: RequestLog) -> Server {
        if let Some(service) = Arc::get_mut(&mut self.service) {
            service.requests = Some(log);
        }
        self
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish within the
    /// grace period. `listening` is told the bound address (useful with port 0) and whether
    /// it is TLS.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        listening: impl FnOnce(SocketAddr, bool) + Send,
    ) -> Result<()> {
        let app =
            api::router(self.service.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let handle = axum_server::Handle::new();
        let grace = self.service.limits.shutdown_grace;
        tokio::spawn(stop_on(shutdown, handle.clone(), grace));
        let drained = handle.clone();
        let address = self.listen;
        let serve_error = |e: std::io::Error| Error::Serve {
            address: address.to_string(),
            reason: e.to_string(),
        };
        let tls = match self.serving {
            Some(serving) => Some(serving.start(self.service.clock.clone())?),
            None => None,
        };
        let watcher = handle.clone();
        let is_tls = tls.is_some();
        let announce = async move {
            if let Some(bound) = watcher.listening().await {
                listening(bound, is_tls);
            }
        };
        let listener = listen(address).map_err(serve_error)?;
        let served = async move {
            match tls {
                Some(tls) => {
                    axum_server::from_tcp_rustls(listener, tls)?
                        .handle(handle)
                        .serve(app)
                        .await
                }
                None => {
                    axum_server::from_tcp(listener)?
                        .handle(handle)
                        .serve(app)
                        .await
                }
            }
        };
        let (served, ()) = tokio::join!(served, announce);
        served.map_err(serve_error)?;
        report_drain(&drained, grace);
        Ok(())
    }
}

/// Connections the kernel queues for `accept` (capped by `net.core.somaxconn`). An
/// enrollment storm opens a connection per cluster at once; with tokio's default of 1,024,
/// 1,000 clusters overflowed the queue while the workers were busy with TLS handshakes, and
/// every dropped connection waited a second for its SYN to be retransmitted.
const LISTEN_BACKLOG: u32 = 4096;

/// The listening socket on `address`, with [`LISTEN_BACKLOG`].
fn listen(address: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)?.into_std()
}

/// Once `shutdown` completes: no new connections, and the open ones get `grace` to finish
/// the requests they carry.
async fn stop_on(
    shutdown: impl Future<Output = ()>,
    handle: axum_server::Handle<SocketAddr>,
    grace: std::time::Duration,
) {
    shutdown.await;
    tracing::info!(
        "shutting down: no new connections; {} open connection(s) have {} s to finish their requests",
        handle.connection_count(),
        grace.as_secs()
    );
    handle.graceful_shutdown(Some(grace));
}

/// Says whether every connection finished before the listener stopped, or the grace
/// period ran out and the rest were closed.
fn report_drain(handle: &axum_server::Handle<SocketAddr>, grace: std::time::Duration) {
    match handle.connection_count() {
        0 => tracing::info!("drained: every in-flight request finished"),
        open => tracing::warn!(
            "the shutdown grace of {} s ran out: {open} connection(s) were closed before they finished; raise limits.shutdown_grace",
            grace.as_secs()
        ),
    }
}

/// Creates a one-time enrollment token for `cluster` directly in the store at `store_url`
/// (no running service needed), audited as made by `by`.
pub async fn create_token(
    store_url: &str,
    cluster: &meshtrust_ca::ClusterName,
    ttl: time::Duration,
    clock: &Clock,
    by: &str,
) -> Result<TokenResponse> {
    if ttl <= time::Duration::ZERO || ttl > tokens::MAX_TOKEN_TTL {
        return Err(Error::Config {
            location: "ttl".to_string(),
            reason: format!(
                "{} is not between 1 second and 7 days",
                meshtrust_ca::duration::human(ttl)
            ),
        });
    }
    let store = Store::open(store_url).await?;
    let (token, hash) = tokens::generate()?;
    let now = clock.now();
    let new = NewToken {
        hash,
        cluster: cluster.to_string(),
        expires_at: now + ttl,
        created_at: now,
        created_by: by.to_string(),
    };
    store.create_token(&new).await?;
    store
        .record(AuditEvent {
            at: now,
            principal: by.to_string(),
            action: "create-token".to_string(),
            cluster: Some(cluster.to_string()),
            serial: None,
            result: "ok".to_string(),
            reason: format!(
                "enrollment token expiring {}",
                meshtrust_issuer::server::wire::time(new.expires_at)
            ),
        })
        .await?;
    Ok(TokenResponse {
        token: token.to_string(),
        cluster: cluster.to_string(),
        expires_at: meshtrust_issuer::server::wire::time(new.expires_at),
    })
}
