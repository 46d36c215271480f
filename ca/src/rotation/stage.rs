//! Where one cluster stands in a rotation, from its trust file and its issuer.

use super::{BlockReason, ClusterTrust, RotationBlocked};
use crate::cert::Certificate;

/// The stages a cluster passes through, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Stage {
    /// Trusts the old root only.
    OldOnly,
    /// Trusts both roots, issued by the old one.
    BothIssuedByOld,
    /// Trusts both roots, issued by the new one.
    BothIssuedByNew,
    /// Trusts the new root only.
    NewOnly,
}

/// A root, for messages: its subject and the start of its fingerprint.
pub(super) fn describe(root: &Certificate) -> String {
    format!("{}, sha256 {}…", root.subject(), &root.fingerprint()[..23])
}

/// The stage of cluster `i`, or why it fits none.
pub(super) fn stage_of(
    i: usize,
    c: &ClusterTrust,
    old: &Certificate,
    new: &Certificate,
) -> std::result::Result<Stage, RotationBlocked> {
    let blocked = |reason, message| RotationBlocked {
        cluster: Some(i),
        reason,
        message,
    };
    let (name, trust_file, cert_file) =
        (c.cluster(), c.format().trust_file(), c.format().cert_file());
    let (has_old, has_new) = (c.trust().contains(old), c.trust().contains(new));
    if !has_old && !has_new {
        return Err(blocked(
            BlockReason::TrustsNeitherRoot,
            format!(
                "{name}/{trust_file} trusts neither the old root ({}) nor the new root ({}): it belongs to another mesh; fix its cacerts or delete them so the rotation issues fresh ones",
                describe(old),
                describe(new)
            ),
        ));
    }
    let by_new = c.chains_to(new);
    if !by_new && !c.chains_to(old) {
        return Err(blocked(
            BlockReason::IssuedByNeitherRoot,
            format!(
                "{name}/{cert_file} ({}) is issued by neither the old nor the new root: delete its cacerts so the rotation issues fresh ones",
                c.ca_cert().subject()
            ),
        ));
    }
    match (has_old, has_new, by_new) {
        (true, false, false) => Ok(Stage::OldOnly),
        (true, true, false) => Ok(Stage::BothIssuedByOld),
        (true, true, true) => Ok(Stage::BothIssuedByNew),
        (false, true, true) => Ok(Stage::NewOnly),
        _ => Err(blocked(
            BlockReason::DoesNotTrustItsIssuer,
            format!(
                "{name}/{cert_file} is issued by the {} root, which {trust_file} does not hold: istiod refuses this bundle; delete its cacerts so the rotation issues fresh ones",
                if by_new { "new" } else { "old" }
            ),
        )),
    }
}

/// Cluster `a` lags two or more stages behind cluster `b`.
pub(super) fn out_of_order(
    clusters: &[Option<ClusterTrust>],
    a: usize,
    b: usize,
    lead: Stage,
) -> RotationBlocked {
    let (ca, cb) = (
        clusters[a].as_ref().expect("a staged cluster"),
        clusters[b].as_ref().expect("a staged cluster"),
    );
    let (an, bn) = (ca.cluster(), cb.cluster());
    let (a_trust, b_trust) = (ca.format().trust_file(), cb.format().trust_file());
    if lead == Stage::NewOnly {
        RotationBlocked {
            cluster: Some(b),
            reason: BlockReason::OldRootRemovedEarly,
            message: format!(
                "{bn}/{b_trust} no longer holds the old root while {an}/{} is still issued by it, so {bn} rejects {an}'s workloads: append the old root to {bn}/{b_trust} again, then resume the rotation",
                ca.format().cert_file()
            ),
        }
    } else {
        RotationBlocked {
            cluster: Some(b),
            reason: BlockReason::NewRootUsedEarly,
            message: format!(
                "{bn}/{} is already issued by the new root while {an}/{a_trust} does not trust it yet, so {an} rejects {bn}'s workloads: append the new root to {an}/{a_trust}, then resume the rotation",
                cb.format().cert_file()
            ),
        }
    }
}
