//! The pure rules over a Lease: who may take it ([`decide`]), what it looks like once
//! claimed ([`claim`]), and its times on the wire.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use time::OffsetDateTime;

use super::LeaseConfig;
use crate::error::{Error, Result};

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
pub(super) fn claim(
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

/// The holder `lease` names, `""` for none.
pub(super) fn holder(lease: Option<&Lease>) -> &str {
    lease
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.holder_identity.as_deref())
        .unwrap_or_default()
}

/// A Lease time (jiff, microseconds on the wire) as `time`'s type.
pub(super) fn offset_date_time(t: &MicroTime) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(t.0.as_nanosecond()).ok()
}

/// `time`'s type as a Lease time.
pub(super) fn micro_time(t: OffsetDateTime) -> Result<MicroTime> {
    Timestamp::from_nanosecond(t.unix_timestamp_nanos())
        .map(MicroTime)
        .map_err(|_| Error::Lease {
            reason: format!("{t} is outside the range of a Kubernetes MicroTime"),
        })
}
