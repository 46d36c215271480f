//! Where the leader Lease lives, who we are, and the election's timings.

use std::time::Duration;

use crate::error::{Error, Result};

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

    /// Refuses an empty identity, name or namespace, and timings that could let two
    /// replicas lead at once (`retry_period < renew_deadline < lease_duration`, lease ≥ 1 s).
    pub(super) fn validate(&self) -> Result<()> {
        let bail = |reason: String| Err(Error::Lease { reason });
        if self.identity.is_empty() {
            return bail(
                "the leader election identity is empty: set it to the pod name (POD_NAME)"
                    .to_string(),
            );
        }
        if self.name.is_empty() || self.namespace.is_empty() {
            return bail("the leader Lease needs a name and a namespace".to_string());
        }
        if self.lease_duration < Duration::from_secs(1) {
            return bail(format!(
                "the lease duration ({:?}) must be at least 1s: Leases count whole seconds",
                self.lease_duration
            ));
        }
        if self.renew_deadline >= self.lease_duration {
            return bail(format!(
                "the renew deadline ({:?}) must be shorter than the lease duration ({:?}), or two replicas may lead at once",
                self.renew_deadline, self.lease_duration
            ));
        }
        if self.retry_period.is_zero() || self.retry_period >= self.renew_deadline {
            return bail(format!(
                "the retry period ({:?}) must be above zero and shorter than the renew deadline ({:?})",
                self.retry_period, self.renew_deadline
            ));
        }
        Ok(())
    }

    /// `lease_duration` in whole seconds, rounded up, as `leaseDurationSeconds`.
    pub(super) fn lease_seconds(&self) -> i32 {
        let whole =
            self.lease_duration.as_secs() + u64::from(self.lease_duration.subsec_nanos() > 0);
        i32::try_from(whole).unwrap_or(i32::MAX)
    }

    /// `namespace/name`, for messages.
    pub(super) fn lease(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}
