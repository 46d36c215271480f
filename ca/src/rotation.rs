//! Zero-downtime root rotation, old → old+new → signed by new → new, decided from what the
//! clusters hold and nothing else, so a restarted controller resumes where it stopped.
//!
//! Every cluster is at one of four stages: trusts the old root only; trusts both and is
//! issued by the old root; trusts both and is issued by the new root; trusts the new root
//! only. Any two *adjacent* stages trust each other's workloads, any two others do not, so
//! the plan only ever moves clusters one stage forward, and only once no cluster lags behind.

use std::fmt;

use time::{Duration, OffsetDateTime};

use serde::Serialize;

use crate::bundle::{BundleFiles, BundleFormat};
use crate::cert::Certificate;
use crate::cluster::ClusterName;
use crate::error::{Error, Result};
use crate::fingerprint::sha256_hex;
use crate::renewal::chains_to;
use crate::root::BACKDATE;
use crate::trust::TrustBundle;

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

/// What a cluster's `cacerts` holds, as far as rotation cares: its trust file, byte for byte,
/// and the CA certificate with its chain.
#[derive(Clone)]
pub struct ClusterTrust {
    cluster: ClusterName,
    format: BundleFormat,
    trust_pem: Vec<u8>,
    trust: TrustBundle,
    ca_cert: Certificate,
    chain: Vec<Certificate>,
}

impl ClusterTrust {
    /// Reads a cluster's bundle in the form istiod would read (see [`BundleFormat::detect`]).
    /// The trust file and CA certificate are required; a missing `cert-chain.pem` is read as
    /// an empty chain.
    pub fn from_bundle(cluster: ClusterName, files: &BundleFiles) -> Result<ClusterTrust> {
        let format = BundleFormat::detect(files.names());
        let name = |file: &str| format!("{cluster}/{file}");
        let read = |file: &str| {
            files.get(file).ok_or_else(|| Error::Pem {
                name: name(file),
                expected: "certificate",
                reason: "the file is missing; reissue the bundle with `meshtrust cacerts --force`"
                    .to_string(),
            })
        };
        let trust_pem = read(format.trust_file())?.to_vec();
        let trust = TrustBundle::from_pem(&name(format.trust_file()), &trust_pem)?;
        let certs =
            Certificate::all_from_pem(&name(format.cert_file()), read(format.cert_file())?)?;
        let chain = match (format, files.get(format.chain_file())) {
            (BundleFormat::Istio, Some(pem)) => {
                Certificate::all_from_pem(&name(format.chain_file()), pem)?
            }
            (BundleFormat::Istio, None) => Vec::new(),
            (BundleFormat::Tls, _) => certs.clone(),
        };
        Ok(ClusterTrust {
            cluster,
            format,
            trust_pem,
            trust,
            ca_cert: certs[0].clone(),
            chain,
        })
    }

    /// The cluster.
    pub fn cluster(&self) -> &ClusterName {
        &self.cluster
    }

    /// The form the bundle is in.
    pub fn format(&self) -> BundleFormat {
        self.format
    }

    /// The trust file (`root-cert.pem` or `ca.crt`) exactly as held.
    pub fn trust_pem(&self) -> &[u8] {
        &self.trust_pem
    }

    /// The roots of the trust file.
    pub fn trust(&self) -> &TrustBundle {
        &self.trust
    }

    /// The CA certificate (`ca-cert.pem` or the first of `tls.crt`).
    pub fn ca_cert(&self) -> &Certificate {
        &self.ca_cert
    }

    /// Whether the CA certificate leads to `root`, directly or through the bundle's chain.
    pub fn chains_to(&self, root: &Certificate) -> bool {
        chains_to(&self.ca_cert, &self.chain, root)
    }
}

impl fmt::Debug for ClusterTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterTrust")
            .field("cluster", &self.cluster.as_str())
            .field("format", &self.format)
            .field("trust", &self.trust.roots())
            .field("ca_cert", &self.ca_cert)
            .finish_non_exhaustive()
    }
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

/// The stages a cluster passes through, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    OldOnly,
    BothIssuedByOld,
    BothIssuedByNew,
    NewOnly,
}

/// When phase 3 may drop the old root: `hold` after the newest intermediate was issued (its
/// notBefore is backdated by the issuers, so the backdating is added back). Workloads keep
/// certificates from their cluster's previous intermediate until they renew them; holding the
/// old root that long keeps those certificates trusted. `None` without any bundle.
pub fn old_root_hold_until(
    clusters: &[Option<ClusterTrust>],
    hold: Duration,
) -> Option<OffsetDateTime> {
    clusters
        .iter()
        .flatten()
        .map(|t| t.ca_cert().not_before())
        .max()
        .map(|issued| issued + BACKDATE + hold)
}

/// The phase of the rotation from `old` to `new` and what to write in each cluster.
///
/// The phase is set by the cluster furthest behind: phase 2 starts only once every cluster
/// trusts both roots, phase 3 only once every intermediate is issued by the new root. A
/// cluster without a bundle (`None`) gets one for the current phase. In phases 1 and 2 the
/// trust file written byte-contains the one held (the new root is appended to the held
/// bytes); in phase 3 it is the new root's PEM block as the cluster holds it, which the held
/// file byte-contains. With no bundle anywhere there is nothing to rotate from: the plan is
/// `Complete`, with a new-root bundle for each cluster.
pub fn plan_rotation(
    old: &Certificate,
    new: &Certificate,
    clusters: &[Option<ClusterTrust>],
) -> std::result::Result<RotationPlan, RotationBlocked> {
    if old == new {
        return Err(RotationBlocked {
            cluster: None,
            reason: BlockReason::SameRoot,
            message: format!(
                "the new root is the old root ({}): create a new root with `meshtrust root create` and rotate to it",
                describe(old)
            ),
        });
    }
    let stages = clusters
        .iter()
        .enumerate()
        .map(|(i, c)| c.as_ref().map(|c| stage(i, c, old, new)).transpose())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let present = || {
        stages
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.map(|s| (i, s)))
    };
    let behind = present().min_by_key(|(_, s)| *s);
    let ahead = present().max_by_key(|(_, s)| *s);
    if let (Some((a, lag)), Some((b, lead))) = (behind, ahead)
        && lead as u8 > lag as u8 + 1
    {
        return Err(out_of_order(clusters, a, b, lead));
    }
    let phase = match behind.map(|(_, s)| s) {
        Some(Stage::OldOnly) => RotationPhase::AddNewRoot,
        Some(Stage::BothIssuedByOld) => RotationPhase::ReissueIntermediates,
        Some(Stage::BothIssuedByNew) => RotationPhase::RemoveOldRoot,
        Some(Stage::NewOnly) | None => RotationPhase::Complete,
    };
    let both = || [old.to_pem(), new.to_pem()].concat().into_bytes();
    let steps = clusters
        .iter()
        .zip(&stages)
        .map(|(cluster, stage)| {
            let write = |trust_pem, intermediate| {
                ClusterStep::Write(ClusterWrite {
                    trust_pem,
                    intermediate,
                })
            };
            match (phase, cluster, stage) {
                (RotationPhase::AddNewRoot, Some(c), Some(Stage::OldOnly)) => {
                    write(append_root(&c.trust_pem, new), IntermediateAction::Keep)
                }
                (RotationPhase::ReissueIntermediates, Some(c), Some(Stage::BothIssuedByOld)) => {
                    write(
                        c.trust_pem.clone(),
                        IntermediateAction::Issue(RotationRoot::New),
                    )
                }
                (RotationPhase::RemoveOldRoot, Some(c), Some(Stage::BothIssuedByNew)) => {
                    let block = pem_block_of(&c.trust_pem, new)
                        .map_or_else(|| new.to_pem().into_bytes(), <[u8]>::to_vec);
                    write(block, IntermediateAction::Keep)
                }
                (RotationPhase::AddNewRoot, None, _) => {
                    write(both(), IntermediateAction::Issue(RotationRoot::Old))
                }
                (RotationPhase::ReissueIntermediates, None, _) => {
                    write(both(), IntermediateAction::Issue(RotationRoot::New))
                }
                (_, None, _) => write(
                    new.to_pem().into_bytes(),
                    IntermediateAction::Issue(RotationRoot::New),
                ),
                _ => ClusterStep::Unchanged,
            }
        })
        .collect();
    Ok(RotationPlan { phase, steps })
}

fn describe(root: &Certificate) -> String {
    format!("{}, sha256 {}…", root.subject(), &root.fingerprint()[..23])
}

fn stage(
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
    let (name, trust_file, cert_file) = (&c.cluster, c.format.trust_file(), c.format.cert_file());
    let (has_old, has_new) = (c.trust.contains(old), c.trust.contains(new));
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
                c.ca_cert.subject()
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
fn out_of_order(
    clusters: &[Option<ClusterTrust>],
    a: usize,
    b: usize,
    lead: Stage,
) -> RotationBlocked {
    let (ca, cb) = (
        clusters[a].as_ref().expect("a staged cluster"),
        clusters[b].as_ref().expect("a staged cluster"),
    );
    let (an, bn) = (&ca.cluster, &cb.cluster);
    let (a_trust, b_trust) = (ca.format.trust_file(), cb.format.trust_file());
    if lead == Stage::NewOnly {
        RotationBlocked {
            cluster: Some(b),
            reason: BlockReason::OldRootRemovedEarly,
            message: format!(
                "{bn}/{b_trust} no longer holds the old root while {an}/{} is still issued by it, so {bn} rejects {an}'s workloads: append the old root to {bn}/{b_trust} again, then resume the rotation",
                ca.format.cert_file()
            ),
        }
    } else {
        RotationBlocked {
            cluster: Some(b),
            reason: BlockReason::NewRootUsedEarly,
            message: format!(
                "{bn}/{} is already issued by the new root while {an}/{a_trust} does not trust it yet, so {an} rejects {bn}'s workloads: append the new root to {an}/{a_trust}, then resume the rotation",
                cb.format.cert_file()
            ),
        }
    }
}

/// `pem` with `root` appended, so that the result byte-contains `pem`.
fn append_root(pem: &[u8], root: &Certificate) -> Vec<u8> {
    let mut out = pem.to_vec();
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.extend_from_slice(root.to_pem().as_bytes());
    out
}

/// The bytes of `cert`'s PEM block in `pem`, with its line ending.
fn pem_block_of<'a>(pem: &'a [u8], cert: &Certificate) -> Option<&'a [u8]> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let find = |from: usize, needle: &[u8]| {
        pem[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|i| from + i)
    };
    let mut from = 0;
    while let Some(start) = find(from, BEGIN) {
        let mut end = find(start, END)? + END.len();
        if pem[end..].starts_with(b"\r\n") {
            end += 2;
        } else if pem[end..].starts_with(b"\n") {
            end += 1;
        }
        let block = &pem[start..end];
        if Certificate::all_from_pem("", block).is_ok_and(|c| c.as_slice() == [cert.clone()]) {
            return Some(block);
        }
        from = end;
    }
    None
}

/// Every pair of trust bundles shares at least one root; otherwise the first pair `(i, j)`,
/// `i < j`, that does not.
pub fn shared_root_pairs_ok(trusts: &[TrustBundle]) -> std::result::Result<(), (usize, usize)> {
    for (i, a) in trusts.iter().enumerate() {
        for (j, b) in trusts.iter().enumerate().skip(i + 1) {
            if !a.roots().iter().any(|r| b.contains(r)) {
                return Err((i, j));
            }
        }
    }
    Ok(())
}

/// Every cluster trusts the root every cluster's intermediate (its own included) chains to,
/// so all workloads verify each other; otherwise the first `(i, j)` where cluster `i`
/// cannot verify cluster `j`'s workloads.
pub fn mutual_trust_ok(clusters: &[ClusterTrust]) -> std::result::Result<(), (usize, usize)> {
    let mut roots: Vec<&Certificate> = Vec::new();
    for r in clusters.iter().flat_map(|c| c.trust.roots()) {
        if !roots.contains(&r) {
            roots.push(r);
        }
    }
    // Signatures are checked once per (cluster, distinct root), not per pair.
    let anchors: Vec<Vec<&Certificate>> = clusters
        .iter()
        .map(|c| roots.iter().copied().filter(|r| c.chains_to(r)).collect())
        .collect();
    for (i, verifier) in clusters.iter().enumerate() {
        for (j, anchored) in anchors.iter().enumerate() {
            if !anchored.iter().any(|r| verifier.trust.contains(r)) {
                return Err((i, j));
            }
        }
    }
    Ok(())
}
