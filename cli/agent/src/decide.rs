//! The agent's one decision, pure: given what `cacerts` and the pending Secret hold, what
//! the service last said the cluster should hold, and the time, what to do now.

use meshtrust_ca::{RenewalPolicy, sha256_hex, short_fingerprints};
use meshtrust_issuer::server::api::DesiredCacerts;
use time::{Duration, OffsetDateTime};

use crate::config::ForeignCacerts;
use crate::held::{Bundle, Held, Pending, Purpose, same_key};

/// What the service said, in its last answer to a report, the cluster should hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// The cluster's current serial at the service.
    pub serial: String,
    /// When to renew it.
    pub renew_at: OffsetDateTime,
    /// The roots this cluster must trust now.
    pub roots: Vec<String>,
    /// What this cluster's `cacerts` should hold (for the serial above).
    pub desired: DesiredCacerts,
}

/// What a round does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing is due before `until`.
    Wait {
        /// When the renewal is due.
        until: OffsetDateTime,
    },
    /// Enroll with a new key (or the pending one), replacing what `cacerts` holds.
    Enroll {
        /// Why.
        reason: String,
    },
    /// Renew the intermediate `cacerts` holds.
    Renew {
        /// Why.
        reason: String,
    },
    /// Keep the intermediate; write this trust file (a root rotation's phase 1 or 3).
    UpdateTrust {
        /// The trust file, byte for byte.
        trust_pem: String,
        /// Why.
        reason: String,
    },
    /// The pending Secret is done with (`cacerts` holds its key, or changed under it).
    DropPending,
    /// `cacerts` holds a bundle meshtrust did not write and may not be replaced.
    Refuse {
        /// What it holds.
        reason: String,
    },
}

/// What the decision is made from.
#[derive(Debug)]
pub struct Facts<'a> {
    /// `cacerts`.
    pub held: &'a Held,
    /// The pending key, if any.
    pub pending: Option<&'a Pending>,
    /// The service's last word, if it has answered a report.
    pub expected: Option<&'a Expected>,
    /// The service refused to renew `cacerts`' intermediate as not its own: enroll.
    pub unknown_to_service: bool,
    /// What to do with a `cacerts` meshtrust did not write.
    pub foreign: ForeignCacerts,
    /// The renewal jitter, percent.
    pub jitter_percent: u8,
    /// Now.
    pub now: OffsetDateTime,
}

/// Decides the next step.
pub fn decide(facts: &Facts<'_>) -> Step {
    if let Some(pending) = facts.pending {
        return resume(facts.held, pending);
    }
    let bundle = match facts.held {
        Held::Absent => {
            return Step::Enroll {
                reason: "the cluster has no cacerts".to_string(),
            };
        }
        Held::Unusable { managed, reason } => {
            return foreign_or(facts, *managed, format!("cacerts is not usable: {reason}"));
        }
        Held::Usable(bundle) => bundle,
    };
    if !bundle.managed {
        return foreign_or(facts, false, "cacerts was not written by meshtrust".into());
    }
    if facts.unknown_to_service {
        return Step::Enroll {
            reason: format!(
                "the service did not issue cacerts' intermediate (serial {})",
                bundle.serial()
            ),
        };
    }
    if let Some(expected) = facts.expected.filter(|e| e.serial == bundle.serial())
        && let Some(step) = follow(bundle, expected)
    {
        return step;
    }
    let due = due(bundle, facts.expected, facts.jitter_percent);
    if facts.now >= due {
        return Step::Renew {
            reason: format!("the renewal was due at {due}"),
        };
    }
    Step::Wait { until: due }
}

/// What the service's word on the intermediate `cacerts` holds asks for, if anything.
fn follow(bundle: &Bundle, expected: &Expected) -> Option<Step> {
    let desired = &expected.desired;
    if desired.reissue {
        return Some(Step::Renew {
            reason: format!(
                "the service reissues the intermediate under the roots [{}] (cacerts holds [{}])",
                short_fingerprints(&expected.roots),
                short_fingerprints(&bundle.roots)
            ),
        });
    }
    if desired.trust_bundle_pem.as_bytes() != bundle.trust_pem() {
        return Some(Step::UpdateTrust {
            trust_pem: desired.trust_bundle_pem.clone(),
            reason: format!(
                "the service's trust file holds the roots [{}]; cacerts holds [{}]",
                short_fingerprints(&expected.roots),
                short_fingerprints(&bundle.roots)
            ),
        });
    }
    None
}

/// A pending key is used again for what it was made for, as long as `cacerts` is still
/// what it was made against.
fn resume(held: &Held, pending: &Pending) -> Step {
    let bundle = held.bundle();
    if bundle.is_some_and(|b| same_key(&b.certificate, &pending.key)) {
        return Step::DropPending;
    }
    match (&pending.purpose, bundle) {
        (Purpose::Enroll, _) => Step::Enroll {
            reason: "an enrollment was interrupted; it is resumed with the same key".to_string(),
        },
        (Purpose::Renew { replaces }, Some(b)) if b.serial() == *replaces => Step::Renew {
            reason: "a renewal was interrupted; it is resumed with the same key".to_string(),
        },
        (Purpose::Renew { .. }, _) => Step::DropPending,
    }
}

fn foreign_or(facts: &Facts<'_>, managed: bool, reason: String) -> Step {
    if !managed && facts.foreign == ForeignCacerts::Refuse {
        return Step::Refuse { reason };
    }
    Step::Enroll { reason }
}

/// When `bundle` is due for renewal: at the time the service gave for it (or, before the
/// service has said, by the default policy: a third of the lifetime before expiry), plus
/// this intermediate's share of the jitter window.
pub fn due(bundle: &Bundle, expected: Option<&Expected>, jitter_percent: u8) -> OffsetDateTime {
    let (not_before, not_after) = (
        bundle.certificate.not_before(),
        bundle.certificate.not_after(),
    );
    let serial = bundle.serial();
    let at = match expected {
        Some(e) if e.serial == serial => e.renew_at,
        _ => RenewalPolicy::Default.renewal_time(not_before, not_after),
    };
    at + jitter(&serial, at, not_after, jitter_percent)
}

/// A delay in `[0, min(percent of (not_after - at), 1 h))`, the same every time for one
/// serial: restarts do not move the renewal, and clusters enrolled together spread out.
pub fn jitter(
    serial: &str,
    at: OffsetDateTime,
    not_after: OffsetDateTime,
    percent: u8,
) -> Duration {
    let lifetime: Duration = not_after - at;
    let share: Duration = lifetime * i32::from(percent.min(100)) / 100_i32;
    let window = share.min(Duration::HOUR);
    let seconds = window.whole_seconds();
    if seconds <= 0 {
        return Duration::ZERO;
    }
    let digest = sha256_hex(serial.as_bytes());
    let draw = u64::from_str_radix(&digest[..15], 16).unwrap_or(0);
    Duration::seconds((draw % seconds as u64) as i64)
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
