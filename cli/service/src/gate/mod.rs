//! The service's root rotation, pure: from what every enrolled cluster last reported, the
//! phase (the `ca` planner's, from the `cacerts` the clusters hold), whether its writes are
//! handed out (the gate: what istiod has *loaded*, not what was written), and what each
//! cluster should hold now.
//!
//! The gate of each phase:
//! - **AddNewRoot** starts only when every cluster's istiod runs with
//!   `ISTIO_MULTIROOT_MESH=true` (the preflight): without it istiod cannot trust two roots.
//! - **ReissueIntermediates**, **RemoveOldRoot** and **Complete**: only when every cluster's
//!   istiod publishes in `istio-ca-root-cert` exactly the roots its `cacerts` holds — at the
//!   start of phase 2 and 3 both roots everywhere, at Complete the new root alone.
//!   RemoveOldRoot also waits for the hold. (Within a phase, a cluster whose istiod lags
//!   behind its own write pauses the phase's other writes until it catches up.)
//!
//! And in every phase: a cluster that never reported holds the next step, named. While a
//! gate is shut every cluster is told to hold what it holds; a cluster that enrolls
//! meanwhile gets the previous phase's state.
//!
//! The gate is decided for the whole fleet ([`gate`]), each cluster's step from what that
//! cluster reported last ([`route`]): a service may decide the gate now and then and route
//! each report as it comes.

use std::sync::Arc;

use meshtrust_ca::{
    BundleFiles, Certificate, ClusterName, ClusterStep, ClusterTrust, IntermediateAction,
    RotationPhase as Phase, RotationRoot, old_root_hold_until, phase_while_held, plan_rotation,
    plan_step,
};
use meshtrust_issuer::Clock;
use meshtrust_issuer::server::api::{
    ClusterReport, DesiredCacerts, RotationPhase, RotationStatus, Waiting,
};
use meshtrust_issuer::server::wire;
use time::{Duration, OffsetDateTime};

/// One enrolled cluster, as the store knows it.
#[derive(Clone, Debug)]
pub struct Member {
    /// Its name.
    pub name: ClusterName,
    /// Its last report, if any.
    pub report: Option<ClusterReport>,
    /// When that report was received.
    pub reported_at: Option<OffsetDateTime>,
}

/// What one cluster is told: what to hold, and the root its next intermediate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// What its `cacerts` should hold.
    pub desired: DesiredCacerts,
    /// Which root signs its next intermediate.
    pub issue_from: RotationRoot,
}

/// How long a replica plans from one decision of the gate: deciding it reads every
/// cluster's report, so it is decided at most this often, not at each report (each
/// cluster's own step is still routed from what it reported last).
pub const GATE_TTL: std::time::Duration = std::time::Duration::from_millis(500);

/// The gate, decided at most every [`GATE_TTL`], with the roots it was decided for.
#[derive(Debug)]
pub struct Decided {
    /// The two roots.
    pub roots: Roots,
    /// The fleet-wide decision.
    pub gate: Gate,
}

/// A replica's last decision of the gate and when it was made; one request at a time
/// decides it anew, the others wait for that decision.
#[derive(Debug, Default)]
pub struct GateCache {
    last: std::sync::Mutex<Option<(tokio::time::Instant, Arc<Decided>)>>,
    deciding: tokio::sync::Mutex<()>,
}

impl GateCache {
    /// The last decision, if made less than [`GATE_TTL`] ago.
    pub fn fresh(&self, clock: &Clock) -> Option<Arc<Decided>> {
        let last = self.last.lock().ok()?.clone()?;
        (clock.elapsed(last.0) < GATE_TTL).then_some(last.1)
    }

    /// The right to decide anew (one request at a time).
    pub async fn deciding(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.deciding.lock().await
    }

    /// Keeps `decided`, made at `at`.
    pub fn keep(&self, at: tokio::time::Instant, decided: Arc<Decided>) {
        if let Ok(mut last) = self.last.lock() {
            *last = Some((at, decided));
        }
    }
}

/// The fleet-wide decision: the phase, and whether its writes are handed out. Each
/// cluster's own step is then [`route`]d from what that cluster holds now.
#[derive(Clone, Debug)]
pub struct Gate {
    /// Where the rotation stands, for the admin API and the status page.
    pub status: RotationStatus,
    /// The planner's phase; `None` while the rotation is blocked.
    phase: Option<Phase>,
}

/// The two roots.
#[derive(Clone, Debug)]
pub struct Roots {
    /// The root being retired.
    pub old: Certificate,
    /// The root being introduced.
    pub new: Certificate,
}

/// Decides the phase from `members` at `now` and whether its writes are handed out,
/// holding the old root `hold` after the newest intermediate before phase 3.
pub fn gate(roots: &Roots, hold: Duration, members: &[Member], now: OffsetDateTime) -> Gate {
    let trusts: Vec<Option<ClusterTrust>> = members.iter().map(trust_of).collect();
    let mut waiting = unreported(members, &trusts);
    let status = |phase, open, waiting_for, hold_until| RotationStatus {
        phase,
        from_root: wire::fingerprint(&roots.old),
        to_root: wire::fingerprint(&roots.new),
        open,
        waiting_for,
        hold_until,
    };
    let planned = match plan_rotation(&roots.old, &roots.new, &trusts) {
        Ok(planned) => planned,
        Err(blocked) => {
            waiting.push(Waiting {
                cluster: blocked.cluster.map(|i| members[i].name.to_string()),
                reason: "blocked".to_string(),
                message: blocked.to_string(),
            });
            return Gate {
                status: status(RotationPhase::Blocked, false, waiting, None),
                phase: None,
            };
        }
    };
    let hold_until = (planned.phase == Phase::RemoveOldRoot)
        .then(|| old_root_hold_until(&trusts, hold))
        .flatten();
    waiting.extend(gate_waits(planned.phase, members, hold_until, now));
    let open = waiting.is_empty();
    if open {
        waiting.extend(yet_to_write(
            members,
            &planned.steps,
            &trusts,
            planned.phase,
            now,
        ));
    }
    let phase = wire_phase(match open {
        true => planned.phase,
        false => phase_while_held(planned.phase),
    });
    Gate {
        status: status(phase, open, waiting, hold_until.map(wire::time)),
        phase: Some(planned.phase),
    }
}

/// What a cluster holding `trust` (`None`: no bundle) is told under `gate`: its step of the
/// gate's phase when the gate is open, else to hold what it holds; a cluster without a
/// bundle gets the phase's state, or the previous phase's while the gate is shut.
pub fn route(gate: &Gate, roots: &Roots, trust: Option<&ClusterTrust>) -> Route {
    let open = gate.status.open;
    match (gate.phase, trust) {
        (None, Some(t)) => stay(t, roots),
        (None, None) => newcomer(roots, Phase::AddNewRoot, false),
        (Some(phase), None) => newcomer(roots, phase, open),
        (Some(_), Some(t)) if !open => stay(t, roots),
        (Some(phase), Some(t)) => match plan_step(phase, Some(t), &roots.old, &roots.new) {
            Ok(step) => write_route(t, &step, roots),
            Err(_) => stay(t, roots),
        },
    }
}

/// The cluster's `cacerts` as its report shows it (its public files), if usable.
pub(crate) fn trust_of(member: &Member) -> Option<ClusterTrust> {
    trust_in(&member.name, member.report.as_ref()?)
}

/// The `cacerts` of `cluster` as `report` shows it (its public files), if usable.
pub fn trust_in(cluster: &ClusterName, report: &ClusterReport) -> Option<ClusterTrust> {
    ClusterTrust::from_bundle(cluster.clone(), &files_of(report)).ok()
}

fn files_of(report: &ClusterReport) -> BundleFiles {
    let mut files = BundleFiles::new();
    for (name, text) in &report.cacerts_files {
        files.insert(name.clone(), text.as_bytes().to_vec());
    }
    files
}

fn wire_phase(phase: Phase) -> RotationPhase {
    match phase {
        Phase::AddNewRoot => RotationPhase::AddNewRoot,
        Phase::ReissueIntermediates => RotationPhase::ReissueIntermediates,
        Phase::RemoveOldRoot => RotationPhase::RemoveOldRoot,
        Phase::Complete => RotationPhase::Complete,
    }
}

/// The root `trust`'s intermediate chains to (the new one when it chains to both).
fn issuing_root(trust: &ClusterTrust, roots: &Roots) -> RotationRoot {
    if trust.chains_to(&roots.new) {
        RotationRoot::New
    } else {
        RotationRoot::Old
    }
}

/// Hold what it holds; renew from the root it is issued by.
fn stay(trust: &ClusterTrust, roots: &Roots) -> Route {
    Route {
        desired: DesiredCacerts {
            trust_bundle_pem: String::from_utf8_lossy(trust.trust_pem()).into_owned(),
            reissue: false,
        },
        issue_from: issuing_root(trust, roots),
    }
}

fn write_route(trust: &ClusterTrust, step: &ClusterStep, roots: &Roots) -> Route {
    let ClusterStep::Write(write) = step else {
        return stay(trust, roots);
    };
    let trust_bundle_pem = String::from_utf8_lossy(&write.trust_pem).into_owned();
    match write.intermediate {
        IntermediateAction::Keep => Route {
            desired: DesiredCacerts {
                trust_bundle_pem,
                reissue: false,
            },
            issue_from: issuing_root(trust, roots),
        },
        IntermediateAction::Issue(root) => Route {
            desired: DesiredCacerts {
                trust_bundle_pem,
                reissue: true,
            },
            issue_from: root,
        },
    }
}

/// What a cluster without a bundle gets: the state of `phase` when its gate is open, else
/// that of the phase before (the state every cluster holds while the gate is shut).
fn newcomer(roots: &Roots, phase: Phase, open: bool) -> Route {
    let both = [roots.old.to_pem(), roots.new.to_pem()].concat();
    let (trust_bundle_pem, issue_from) = match (phase, open) {
        (Phase::AddNewRoot, false) => (roots.old.to_pem(), RotationRoot::Old),
        (Phase::AddNewRoot, true) | (Phase::ReissueIntermediates, false) => {
            (both, RotationRoot::Old)
        }
        (Phase::ReissueIntermediates, true) | (Phase::RemoveOldRoot, false) => {
            (both, RotationRoot::New)
        }
        (Phase::RemoveOldRoot | Phase::Complete, true) | (Phase::Complete, false) => {
            (roots.new.to_pem(), RotationRoot::New)
        }
    };
    Route {
        desired: DesiredCacerts {
            trust_bundle_pem,
            reissue: false,
        },
        issue_from,
    }
}

mod waits;
use waits::{gate_waits, unreported, yet_to_write};

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
