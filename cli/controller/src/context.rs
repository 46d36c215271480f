//! What every reconcile shares.

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::runtime::events::Recorder;
use meshtrust_ca::Backoff;
use meshtrust_issuer::Clock;

use crate::health::Health;
use crate::metrics::Metrics;
use crate::signers::SignerCache;

/// Member clusters worked on at once.
pub const CONCURRENCY: usize = 8;

/// How long a status write may take before the reconcile gives up and retries.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(10);

/// What every reconcile shares.
#[non_exhaustive]
pub struct Context {
    /// The management cluster.
    pub client: Client,
    /// The controller's namespace (kubeconfig Secrets, the Lease).
    pub namespace: String,
    /// Where "now" comes from.
    pub clock: Clock,
    /// Delay between failed issuance attempts.
    pub backoff: Backoff,
    /// Longest time between two reconciles of one resource.
    pub resync: Duration,
    /// Timeout of each request to a member cluster.
    pub member_timeout: Duration,
    /// The most time reading one member, and then writing to it, may take, every request
    /// and retry together (2 minutes unless set): a member past it fails alone.
    pub member_budget: Duration,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Health and readiness.
    pub health: Arc<Health>,
    /// Kubernetes Events.
    pub recorder: Recorder,
    /// Issuers built for each MeshTrust generation, reused until the spec changes.
    pub signers: SignerCache,
}

impl Context {
    /// A context over `client` (the management cluster) for the controller in `namespace`,
    /// reading time from `clock`; fresh metrics, health and issuer cache.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Client,
        namespace: impl Into<String>,
        clock: Clock,
        backoff: Backoff,
        resync: Duration,
        member_timeout: Duration,
        recorder: Recorder,
    ) -> Context {
        Context {
            client,
            namespace: namespace.into(),
            clock,
            backoff,
            resync,
            member_timeout,
            member_budget: meshtrust_kube::DEFAULT_CLUSTER_BUDGET,
            metrics: Arc::new(Metrics::default()),
            health: Arc::new(Health::default()),
            recorder,
            signers: SignerCache::default(),
        }
    }
}
