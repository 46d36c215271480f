//! How one agent is set up: which cluster it is, where `cacerts` and istiod live, how it
//! enrolls, and its timing.

use std::path::PathBuf;
use std::time::Duration;

use meshtrust_ca::{Backoff, ClusterName, KeyType};

/// The Secret the agent keeps a new key in from the moment it is made until `cacerts`
/// holds it: a restart after the service signed but before `cacerts` was written finds the
/// key again and asks for the same certificate, instead of a second enrollment (refused:
/// the service holds the cluster to one key) or a lost renewal.
pub const PENDING: &str = "meshtrust-agent-pending";

/// The default name of the agent's leader-election Lease.
pub const DEFAULT_LEASE_NAME: &str = "meshtrust-agent";

/// What to do with a `cacerts` meshtrust did not write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ForeignCacerts {
    /// Keep a copy (`cacerts-backup-<stamp>`), then replace it.
    #[default]
    Backup,
    /// Leave it, and say so (the agent does nothing else until it is moved away).
    Refuse,
}

/// One agent's settings.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The cluster's name at the service.
    pub cluster: ClusterName,
    /// The namespace of `cacerts`, istiod and the agent's Lease (`istio-system`).
    pub namespace: String,
    /// The name of istiod's Deployment.
    pub istiod: String,
    /// A file holding the enrollment credential: a one-time token, or a projected
    /// ServiceAccount token (re-read at every enrollment: kubelet rotates it). Not needed
    /// once the cluster holds an intermediate the service issued.
    pub credential_file: Option<PathBuf>,
    /// What to do with a `cacerts` meshtrust did not write.
    pub foreign: ForeignCacerts,
    /// The key type of the intermediates the agent makes.
    pub key_type: KeyType,
    /// How often the agent reads the cluster and reports to the service when nothing is due.
    pub report_every: Duration,
    /// Delays after failed rounds.
    pub backoff: Backoff,
    /// Renewals are spread over this share (percent) of the time between the renewal time
    /// and the intermediate's expiry, at most an hour, so that clusters enrolled together do
    /// not all renew in the same second.
    pub jitter_percent: u8,
}

impl AgentConfig {
    /// The defaults for `cluster`: `istio-system`, istiod, backup of a foreign `cacerts`,
    /// P-256, a report a minute, backoff 5 s doubling up to 5 min, 10 % jitter.
    pub fn new(cluster: ClusterName) -> AgentConfig {
        AgentConfig {
            cluster,
            namespace: "istio-system".to_string(),
            istiod: meshtrust_kube::ISTIOD_DEPLOYMENT.to_string(),
            credential_file: None,
            foreign: ForeignCacerts::default(),
            key_type: KeyType::default(),
            report_every: Duration::from_secs(60),
            backoff: Backoff::default(),
            jitter_percent: 10,
        }
    }
}
