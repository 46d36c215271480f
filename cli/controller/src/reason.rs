//! One vocabulary of reasons: every condition reason, Event reason and metric label the
//! controller writes is a [`Reason`], written in PascalCase by [`Reason::as_str`] — as
//! cert-manager reuses one reason for all three. The reasons of the pure decisions in
//! `meshtrust_ca` (why an intermediate is reissued, why a rotation is blocked) are part of
//! it.

use std::fmt;

use meshtrust_ca::{BlockReason, ReissueReason};

/// Why the controller did, or reports, something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// A cluster (or every cluster) holds a valid `cacerts`.
    Ready,
    /// Some clusters are not ready (the resource's Ready condition).
    ClustersNotReady,
    /// The spec is invalid; nothing is done until it changes.
    InvalidSpec,
    /// The issuer cannot be reached or read (root Secret, AWS Private CA).
    IssuerUnavailable,
    /// A member cluster could not be read.
    ClusterUnreachable,
    /// A new root was generated into the local issuer's Secret.
    RootGenerated,
    /// A new intermediate was issued and delivered.
    Issued,
    /// Issuing or delivering an intermediate failed.
    IssuanceFailed,
    /// The intermediate is current; nothing to issue.
    UpToDate,
    /// An operator asked for the intermediate to be replaced now (`meshtrust renew`).
    RenewalRequested,
    /// A rotation step was written.
    RootRotation,
    /// A rotation step failed in one cluster.
    RotationFailed,
    /// The rotation cannot go on (see the message).
    RotationBlocked,
    /// The rotation does not start: some istiod lacks `ISTIO_MULTIROOT_MESH=true`.
    MultirootMeshOff,
    /// istiod has not loaded the roots its `cacerts` holds: the rotation's next phase waits.
    IstiodNotLoaded,
    /// The status could not be written (the reconcile is retried).
    StatusNotWritten,
    /// Why an intermediate must be (re)issued.
    Reissue(ReissueReason),
    /// Why a rotation is blocked, in detail.
    Blocked(BlockReason),
}

impl Reason {
    /// The PascalCase name, used as condition reason, Event reason and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Ready => "Ready",
            Reason::ClustersNotReady => "ClustersNotReady",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::IssuerUnavailable => "IssuerUnavailable",
            Reason::ClusterUnreachable => "ClusterUnreachable",
            Reason::RootGenerated => "RootGenerated",
            Reason::Issued => "Issued",
            Reason::IssuanceFailed => "IssuanceFailed",
            Reason::UpToDate => "UpToDate",
            Reason::RenewalRequested => "RenewalRequested",
            Reason::RootRotation => "RootRotation",
            Reason::RotationFailed => "RotationFailed",
            Reason::RotationBlocked => "RotationBlocked",
            Reason::MultirootMeshOff => "MultirootMeshOff",
            Reason::IstiodNotLoaded => "IstiodNotLoaded",
            Reason::StatusNotWritten => "StatusNotWritten",
            Reason::Reissue(r) => r.as_str(),
            Reason::Blocked(b) => b.as_str(),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<ReissueReason> for Reason {
    fn from(r: ReissueReason) -> Reason {
        Reason::Reissue(r)
    }
}

impl From<BlockReason> for Reason {
    fn from(b: BlockReason) -> Reason {
        Reason::Blocked(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_pascal_case() {
        let mut all = vec![
            Reason::Ready,
            Reason::ClustersNotReady,
            Reason::InvalidSpec,
            Reason::IssuerUnavailable,
            Reason::ClusterUnreachable,
            Reason::RootGenerated,
            Reason::Issued,
            Reason::IssuanceFailed,
            Reason::UpToDate,
            Reason::RenewalRequested,
            Reason::RootRotation,
            Reason::RotationFailed,
            Reason::RotationBlocked,
            Reason::MultirootMeshOff,
            Reason::IstiodNotLoaded,
            Reason::StatusNotWritten,
        ];
        all.extend(ReissueReason::ALL.map(Reason::from));
        for r in all {
            let s = r.as_str();
            assert!(
                s.starts_with(|c: char| c.is_ascii_uppercase())
                    && s.chars().all(|c| c.is_ascii_alphanumeric()),
                "{s}"
            );
            assert_eq!(r.to_string(), s);
        }
    }
}
