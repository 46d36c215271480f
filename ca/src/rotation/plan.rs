//! What [`plan_rotation`](super::plan_rotation) returns: the phase and one step per cluster,
//! or why the rotation is blocked.

use std::fmt;

use serde::Serialize;

use crate::fingerprint::sha256_hex;

/// Where a rotation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum RotationPhase {
    /// Phase 1: every cluster's trust becomes old+new; intermediates are unchanged.
    AddNewRoot,
    /// Phase 2: intermediates are reissued by the new root; trust stays old+new.
    ReissueIntermediates,
    /// Phase 3: every cluster's trust becomes the new root alone.
    RemoveOldRoot,
    /// Done: every cluster trusts only the new root and is issued by it.
    Complete,
}

impl RotationPhase {
    /// The PascalCase name, for conditions, events and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            RotationPhase::AddNewRoot => "AddNewRoot",
            RotationPhase::ReissueIntermediates => "ReissueIntermediates",
            RotationPhase::RemoveOldRoot => "RemoveOldRoot",
            RotationPhase::Complete => "Complete",
        }
    }

    /// The phase number: 1 to 3, and 4 for [`RotationPhase::Complete`] (so that it orders
    /// after the phases, e.g. as a gauge value).
    pub fn number(self) -> u8 {
        match self {
            RotationPhase::AddNewRoot => 1,
            RotationPhase::ReissueIntermediates => 2,
            RotationPhase::RemoveOldRoot => 3,
            RotationPhase::Complete => 4,
        }
    }
}

impl fmt::Display for RotationPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One of the two roots of a rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum RotationRoot {
    /// The root being retired.
    Old,
    /// The root being introduced.
    New,
}

/// What happens to a cluster's intermediate in a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum IntermediateAction {
    /// Keep `ca-cert.pem`, the key and the chain as they are.
    Keep,
    /// Issue a new intermediate (new key) from this root; its chain ends at that root.
    Issue(RotationRoot),
}

/// The new contents of one cluster's `cacerts`.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterWrite {
    /// The trust file to write, byte for byte (do not re-serialize it: istiod reloads a new
    /// root bundle only when one byte-contains the other).
    pub trust_pem: Vec<u8>,
    /// Whether the intermediate stays or is reissued, and by which root.
    pub intermediate: IntermediateAction,
}

impl fmt::Debug for ClusterWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterWrite")
            .field("trust_pem_bytes", &self.trust_pem.len())
            .field("trust_pem_sha256", &sha256_hex(&self.trust_pem))
            .field("intermediate", &self.intermediate)
            .finish()
    }
}

/// What to do with one cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterStep {
    /// Already where the current phase wants it.
    Unchanged,
    /// Write this.
    Write(ClusterWrite),
}

/// The current phase and, per cluster (in input order), what to write now. Write one
/// cluster at a time and plan again after each write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationPlan {
    /// Where the rotation stands.
    pub phase: RotationPhase,
    /// One step per cluster, in the order given.
    pub steps: Vec<ClusterStep>,
}

impl RotationPlan {
    /// Complete, and nothing left to write.
    pub fn is_finished(&self) -> bool {
        self.phase == RotationPhase::Complete && self.writes().next().is_none()
    }

    /// The clusters to write, by index, with what to write.
    pub fn writes(&self) -> impl Iterator<Item = (usize, &ClusterWrite)> {
        self.steps.iter().enumerate().filter_map(|(i, s)| match s {
            ClusterStep::Write(w) => Some((i, w)),
            ClusterStep::Unchanged => None,
        })
    }
}

/// Why a rotation cannot go on by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum BlockReason {
    /// The old and the new root are the same certificate.
    SameRoot,
    /// A cluster's trust holds neither root.
    TrustsNeitherRoot,
    /// A cluster's intermediate chains to neither root.
    IssuedByNeitherRoot,
    /// A cluster's intermediate is issued by a root its own trust file lacks.
    DoesNotTrustItsIssuer,
    /// An intermediate was issued by the new root before every cluster trusted it.
    NewRootUsedEarly,
    /// A cluster dropped the old root while another is still issued by it.
    OldRootRemovedEarly,
}

impl BlockReason {
    /// The PascalCase name, for conditions, events and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockReason::SameRoot => "SameRoot",
            BlockReason::TrustsNeitherRoot => "TrustsNeitherRoot",
            BlockReason::IssuedByNeitherRoot => "IssuedByNeitherRoot",
            BlockReason::DoesNotTrustItsIssuer => "DoesNotTrustItsIssuer",
            BlockReason::NewRootUsedEarly => "NewRootUsedEarly",
            BlockReason::OldRootRemovedEarly => "OldRootRemovedEarly",
        }
    }
}

/// A state the rotation does not guess its way out of: which cluster, why, and what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RotationBlocked {
    /// The index of the cluster at fault, when one is.
    pub cluster: Option<usize>,
    /// Why.
    pub reason: BlockReason,
    /// What is wrong and how to fix it, naming clusters and files.
    pub message: String,
}

impl fmt::Display for RotationBlocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.as_str(), self.message)
    }
}
