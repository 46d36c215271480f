//! Why an intermediate is (re)issued: a reason of `meshtrust_ca::reissue_reason`, or a
//! renewal request (`meshtrust renew`) for the intermediate a cluster holds.

use meshtrust_ca::{Reissue, ReissueReason};

use crate::crd::RenewalRecord;
use crate::reason::Reason;

/// Why an intermediate is (re)issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// A reason of `meshtrust_ca::reissue_reason`, or [`Reason::RenewalRequested`].
    pub reason: Reason,
    /// What is wrong or who asked, naming the cluster.
    pub message: String,
    /// The held bundle still serves (a renewal): the cluster stays Ready while it is pending.
    pub serving: bool,
    /// The renewal request this issuance carries out (recorded once it is delivered).
    pub request: Option<RenewalRecord>,
}

impl Cause {
    /// The reason found by `meshtrust_ca::reissue_reason`; a bundle only due for renewal
    /// still serves.
    pub(crate) fn reissue(r: Reissue) -> Cause {
        Cause {
            reason: r.reason.into(),
            serving: r.reason == ReissueReason::Renewing,
            message: r.message,
            request: None,
        }
    }

    /// The reissue `requested` asks for, instead of a mere renewal (or of nothing to do). A
    /// bundle that needs reissuing for a stronger reason (DoesNotExist … Expired) keeps that
    /// reason; the request is carried out by that issuance all the same.
    pub(crate) fn with_request(
        reissue: Option<Reissue>,
        record: RenewalRecord,
        name: &str,
    ) -> Cause {
        match reissue {
            Some(r) if r.reason != ReissueReason::Renewing => Cause {
                request: Some(record),
                ..Cause::reissue(r)
            },
            _ => Cause {
                reason: Reason::RenewalRequested,
                message: format!(
                    "{name}: renewal request {} asks to replace the intermediate with serial {}",
                    record.id, record.replaced_serial
                ),
                serving: true,
                request: Some(record),
            },
        }
    }
}
