//! What to do with one member cluster in steady state, decided purely from
//! `(spec, what the cluster holds, trusted roots, policy, backoff state, now)`; and the
//! status each outcome leaves behind. The reconciler only carries decisions out: it issues
//! and delivers when told to, then asks [`issued`] or [`failed`] for the status.

use kube::runtime::events::EventType;
use meshtrust_ca::{
    Backoff, BundleFiles, IntermediateParams, RenewalPolicy, TrustBundle, VerifyOptions,
    reissue_reason, verify_bundle,
};
use time::OffsetDateTime;

pub use crate::cause::Cause;
use crate::crd::{
    ClusterStatus, Condition, ConditionStatus, RenewalRequest, find_condition, parse_timestamp,
    set_condition, timestamp,
};
use crate::reason::Reason;
use crate::request::{Requested, requested};

/// What is known about one cluster at the start of a round.
pub struct Inputs<'a> {
    /// The cluster's name in the spec.
    pub name: &'a str,
    /// Its `cacerts` files (`Ok(None)`: it has none), or why it could not be read.
    pub held: Result<Option<&'a BundleFiles>, String>,
    /// What its intermediate must be.
    pub params: &'a IntermediateParams,
    /// The roots intermediates are issued from.
    pub roots: &'a TrustBundle,
    /// When to renew.
    pub policy: &'a RenewalPolicy,
    /// Its status from the last round (the backoff state lives there).
    pub previous: Option<&'a ClusterStatus>,
    /// Delay between failed attempts.
    pub backoff: &'a Backoff,
    /// The time of the round.
    pub now: OffsetDateTime,
    /// The MeshTrust's generation, for conditions.
    pub generation: Option<i64>,
    /// The MeshTrust's renewal request (`meshtrust renew`), if any.
    pub request: Option<&'a RenewalRequest>,
}

/// Something to tell about a cluster: an Event, and whether it counts as a failed
/// reconcile in the metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// Normal or Warning.
    pub type_: EventType,
    /// The Event's reason.
    pub reason: Reason,
    /// The Event's note.
    pub note: String,
}

/// A cluster's state after a round: its status, when to look at it again, and what to tell.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Its status.
    pub status: ClusterStatus,
    /// When this cluster next needs attention (`None`: only at the resync).
    pub next: Option<OffsetDateTime>,
    /// The status of the `certificate_ready_status` metric (`None`: leave it as it is).
    pub ready: Option<ConditionStatus>,
    /// A failed reconcile to count under this reason.
    pub failure: Option<Reason>,
    /// Events to publish.
    pub events: Vec<Notice>,
}

/// The decision for one cluster.
#[derive(Clone, Debug)]
pub enum Decision {
    /// Nothing to do now (unreachable, up to date, or backing off): this is the outcome.
    Done(Outcome),
    /// Issue a new intermediate; `status` is the starting point for [`issued`] or [`failed`].
    Issue {
        /// Why.
        cause: Cause,
        /// The status carried over from the last round.
        status: ClusterStatus,
    },
}

/// Decides what to do with one cluster: unreachable → report and retry after the backoff
/// base; nothing to reissue and no renewal request for the intermediate it holds → Ready; a
/// reissue within the backoff delay of the last failure → wait; otherwise → issue. A bundle
/// that is only due for renewal (or whose renewal was requested) still serves, so it stays
/// Ready while its renewal is pending.
pub fn decide(i: &Inputs<'_>) -> Decision {
    let mut status = carried_over(i.name, i.previous);
    let held = match &i.held {
        Ok(h) => *h,
        Err(message) => return Decision::Done(unreachable(status, message, i)),
    };
    let reissue = reissue_reason(held, i.params, i.roots, i.policy, i.now);
    let held_serial = held.and_then(|f| verify_bundle(f, &VerifyOptions::at(i.now)).ca_cert);
    let held_serial = held_serial.map(|c| c.serial);
    let recorded = status.renewal_request.as_ref();
    let cause = match requested(i.request, i.name, held_serial.as_deref(), recorded, i.now) {
        Requested::Reissue(record) => Some(Cause::with_request(reissue, record, i.name)),
        Requested::AlreadyDone(record) => {
            status.renewal_request = Some(record);
            reissue.map(Cause::reissue)
        }
        Requested::Nothing => reissue.map(Cause::reissue),
    };
    let Some(cause) = cause else {
        describe(&mut status, held, i.policy, i.now);
        status.failed_issuance_attempts = 0;
        status.last_error = None;
        // Keep the record of the last issuance ("Issued: Renewing …") while nothing changes.
        let last_issued = find_condition(&status.conditions, Condition::ISSUING)
            .is_some_and(|c| c.status == ConditionStatus::False);
        if !last_issued {
            set_condition(
                &mut status.conditions,
                Condition::issuing(
                    false,
                    Reason::UpToDate.as_str(),
                    "the intermediate is current",
                    i.now,
                    i.generation,
                ),
            );
        }
        return Decision::Done(up_to_date(status, i.now, i.generation, Vec::new()));
    };
    let attempts = status.failed_issuance_attempts;
    if attempts > 0
        && let Some(last) = parse_timestamp(status.last_failure_time.as_deref())
    {
        let retry = i.backoff.retry_at(last, attempts);
        if i.now < retry {
            describe(&mut status, held, i.policy, i.now);
            let message = format!(
                "{}; retrying after {} (attempt {})",
                cause.message,
                timestamp(retry),
                attempts + 1
            );
            return Decision::Done(pending(status, &cause, message, retry, i, None, vec![]));
        }
    }
    Decision::Issue { cause, status }
}

/// The outcome of a successful issuance and delivery of `files`.
pub fn issued(
    mut status: ClusterStatus,
    cause: &Cause,
    files: &BundleFiles,
    i: &Inputs<'_>,
) -> Outcome {
    let message = format!(
        "cluster {}: issued a new intermediate ({}: {})",
        i.name,
        cause.reason.as_str(),
        cause.message
    );
    describe(&mut status, Some(files), i.policy, i.now);
    let mut events = Vec::new();
    if let Some(mut record) = cause.request.clone() {
        record.serial = status.serial.clone();
        events.push(Notice {
            type_: EventType::Normal,
            reason: Reason::RenewalRequested,
            note: format!(
                "cluster {}: renewal request {} carried out: serial {} replaced by {}",
                i.name,
                record.id,
                record.replaced_serial,
                record.serial.as_deref().unwrap_or("-")
            ),
        });
        status.renewal_request = Some(record);
    }
    status.failed_issuance_attempts = 0;
    status.last_error = None;
    set_condition(
        &mut status.conditions,
        Condition::issuing(
            false,
            Reason::Issued.as_str(),
            message.clone(),
            i.now,
            i.generation,
        ),
    );
    events.insert(
        0,
        Notice {
            type_: EventType::Normal,
            reason: Reason::Issued,
            note: message,
        },
    );
    up_to_date(status, i.now, i.generation, events)
}

/// The outcome of a failed issuance or delivery (`message` says why): counted, retried
/// after the backoff, Ready only while the old bundle still serves.
pub fn failed(
    mut status: ClusterStatus,
    cause: &Cause,
    message: String,
    i: &Inputs<'_>,
) -> Outcome {
    let held = i.held.as_ref().ok().copied().flatten();
    describe(&mut status, held, i.policy, i.now);
    status.failed_issuance_attempts = status.failed_issuance_attempts.saturating_add(1);
    status.last_failure_time = Some(timestamp(i.now));
    status.last_error = Some(message.clone());
    let retry = i.backoff.retry_at(i.now, status.failed_issuance_attempts);
    let event = Notice {
        type_: EventType::Warning,
        reason: Reason::IssuanceFailed,
        note: format!("cluster {}: {message}", i.name),
    };
    pending(
        status,
        cause,
        message,
        retry,
        i,
        Some(Reason::IssuanceFailed),
        vec![event],
    )
}

/// The status of `name` carried over from the last round: conditions and backoff state.
fn carried_over(name: &str, prev: Option<&ClusterStatus>) -> ClusterStatus {
    ClusterStatus {
        name: name.to_string(),
        failed_issuance_attempts: prev.map_or(0, |p| p.failed_issuance_attempts),
        last_failure_time: prev.and_then(|p| p.last_failure_time.clone()),
        last_error: prev.and_then(|p| p.last_error.clone()),
        conditions: prev.map(|p| p.conditions.clone()).unwrap_or_default(),
        renewal_request: prev.and_then(|p| p.renewal_request.clone()),
        ..ClusterStatus::default()
    }
}

fn unreachable(mut status: ClusterStatus, message: &str, i: &Inputs<'_>) -> Outcome {
    status.last_error = Some(message.to_string());
    set_condition(
        &mut status.conditions,
        Condition::ready(
            false,
            Reason::ClusterUnreachable.as_str(),
            message,
            i.now,
            i.generation,
        ),
    );
    Outcome {
        status,
        next: Some(i.now + i.backoff.base),
        ready: Some(ConditionStatus::Unknown),
        failure: Some(Reason::ClusterUnreachable),
        events: Vec::new(),
    }
}

/// A cluster holding a valid, current bundle: Ready, and next looked at when it is due.
fn up_to_date(
    mut status: ClusterStatus,
    now: OffsetDateTime,
    generation: Option<i64>,
    events: Vec<Notice>,
) -> Outcome {
    set_condition(
        &mut status.conditions,
        Condition::ready(
            true,
            Reason::Ready.as_str(),
            "cacerts is valid and current",
            now,
            generation,
        ),
    );
    let next = parse_timestamp(status.renewal_time.as_deref());
    Outcome {
        status,
        next,
        ready: Some(ConditionStatus::True),
        failure: None,
        events,
    }
}

/// A reissue that has not happened yet (waiting for the backoff, or just failed).
fn pending(
    mut status: ClusterStatus,
    cause: &Cause,
    issuing_message: String,
    retry: OffsetDateTime,
    i: &Inputs<'_>,
    failure: Option<Reason>,
    events: Vec<Notice>,
) -> Outcome {
    set_condition(
        &mut status.conditions,
        Condition::issuing(
            true,
            cause.reason.as_str(),
            issuing_message,
            i.now,
            i.generation,
        ),
    );
    // Still serving while renewing: Ready stays True until the bundle is actually bad.
    let serving = cause.serving;
    let ready = if serving {
        Condition::ready(
            true,
            Reason::Ready.as_str(),
            format!(
                "cacerts is valid; its renewal is pending ({} failed attempt(s))",
                status.failed_issuance_attempts
            ),
            i.now,
            i.generation,
        )
    } else {
        Condition::ready(
            false,
            cause.reason.as_str(),
            cause.message.clone(),
            i.now,
            i.generation,
        )
    };
    set_condition(&mut status.conditions, ready);
    Outcome {
        status,
        next: Some(retry),
        ready: Some(serving.into()),
        failure,
        events,
    }
}

/// Fills the certificate fields of a cluster's status from its bundle.
pub fn describe(
    status: &mut ClusterStatus,
    files: Option<&BundleFiles>,
    policy: &RenewalPolicy,
    now: OffsetDateTime,
) {
    let Some(files) = files else { return };
    let report = verify_bundle(files, &VerifyOptions::at(now));
    status.trusted_roots = report.root_fingerprints.clone();
    status.issuing_root = report.anchor_fingerprint.clone();
    if let Some(c) = &report.ca_cert {
        status.not_before = Some(timestamp(c.not_before));
        status.not_after = Some(timestamp(c.not_after));
        status.renewal_time = Some(timestamp(policy.renewal_time(c.not_before, c.not_after)));
        status.serial = Some(c.serial.clone());
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
