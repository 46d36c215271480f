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
//! And in every phase: a cluster that never reported, or has not reported since its last
//! issuance, holds the next step, named. While a gate is shut every cluster is told to hold
//! what it holds; a cluster that enrolls meanwhile gets the previous phase's state.

use std::collections::{BTreeSet, HashMap};

use meshtrust_ca::{
    BundleFiles, BundleFormat, Certificate, ClusterName, ClusterStep, ClusterTrust,
    IntermediateAction, RotationPhase as Phase, RotationRoot, old_root_hold_until, plan_rotation,
};
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
    /// The serial the service last issued it.
    pub current_serial: String,
    /// Its last report, if any.
    pub report: Option<ClusterReport>,
}

/// What one cluster is told: what to hold, and the root its next intermediate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// What its `cacerts` should hold.
    pub desired: DesiredCacerts,
    /// Which root signs its next intermediate.
    pub issue_from: RotationRoot,
}

/// The rotation as a whole.
#[derive(Clone, Debug)]
pub struct View {
    /// Where it stands, for the admin API and the status page.
    pub status: RotationStatus,
    /// Per enrolled cluster that reported a usable `cacerts`.
    pub routes: HashMap<String, Route>,
    /// For a cluster that holds no bundle (a new enrollment).
    pub newcomer: Route,
}

/// The two roots.
#[derive(Clone, Debug)]
pub struct Roots {
    /// The root being retired.
    pub old: Certificate,
    /// The root being introduced.
    pub new: Certificate,
}

/// Plans the rotation from `members` at `now`, holding the old root `hold` after the newest
/// intermediate before phase 3.
pub fn plan(roots: &Roots, hold: Duration, members: &[Member], now: OffsetDateTime) -> View {
    let trusts: Vec<Option<ClusterTrust>> = members.iter().map(trust_of).collect();
    let mut waiting = freshness(members, &trusts);
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
            return View {
                status: status(RotationPhase::Blocked, false, waiting, None),
                routes: hold_all(members, &trusts, roots),
                newcomer: newcomer(roots, Phase::AddNewRoot, false),
            };
        }
    };
    let hold_until = (planned.phase == Phase::RemoveOldRoot)
        .then(|| old_root_hold_until(&trusts, hold))
        .flatten();
    waiting.extend(gate(planned.phase, members, hold_until, now));
    let open = waiting.is_empty();
    let phase = match planned.phase {
        Phase::Complete if !open => RotationPhase::RemoveOldRoot,
        other => wire_phase(other),
    };
    let routes = if open {
        members
            .iter()
            .zip(&trusts)
            .zip(&planned.steps)
            .filter_map(|((m, t), step)| {
                Some((m.name.to_string(), route(t.as_ref()?, step, roots)))
            })
            .collect()
    } else {
        hold_all(members, &trusts, roots)
    };
    View {
        status: status(phase, open, waiting, hold_until.map(wire::time)),
        routes,
        newcomer: newcomer(roots, planned.phase, open),
    }
}

/// The cluster's `cacerts` as its report shows it (its public files), if usable.
fn trust_of(member: &Member) -> Option<ClusterTrust> {
    let files = files_of(member.report.as_ref()?);
    ClusterTrust::from_bundle(member.name.clone(), &files).ok()
}

fn files_of(report: &ClusterReport) -> BundleFiles {
    let mut files = BundleFiles::new();
    for (name, text) in &report.cacerts_files {
        files.insert(name.clone(), text.as_bytes().to_vec());
    }
    files
}

/// The trust file a report shows, byte for byte.
pub fn held_trust_pem(report: &ClusterReport) -> Option<String> {
    let files = files_of(report);
    let format = BundleFormat::detect(files.names());
    report.cacerts_files.get(format.trust_file()).cloned()
}

/// Clusters the service cannot plan from: never reported, reported no usable bundle, or
/// issued an intermediate since they last reported.
fn freshness(members: &[Member], trusts: &[Option<ClusterTrust>]) -> Vec<Waiting> {
    let wait = |m: &Member, reason: &str, message: String| Waiting {
        cluster: Some(m.name.to_string()),
        reason: reason.to_string(),
        message,
    };
    members
        .iter()
        .zip(trusts)
        .filter_map(|(m, t)| match (&m.report, t) {
            (None, _) => Some(wait(
                m,
                "not_reported",
                format!("cluster {}: its agent has never reported what the cluster holds; is `meshtrust agent` running there?", m.name),
            )),
            (Some(_), None) => Some(wait(
                m,
                "not_reported",
                format!("cluster {}: its last report carries no usable cacerts (an agent older than this service, or a bundle being replaced); waiting for the next report", m.name),
            )),
            (Some(r), Some(_)) if r.cacerts_serial != m.current_serial => Some(wait(
                m,
                "report_stale",
                format!("cluster {}: it was issued serial {} but its last report shows serial {}; waiting for it to report again (is its agent running?)", m.name, m.current_serial, r.cacerts_serial),
            )),
            _ => None,
        })
        .collect()
}

/// What keeps `phase`'s writes from being handed out (or, for Complete, from being
/// declared): the preflight; for the later phases, every istiod having loaded exactly the
/// roots its `cacerts` holds (so the previous phase's roots everywhere); the hold.
fn gate(
    phase: Phase,
    members: &[Member],
    hold_until: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Vec<Waiting> {
    let mut waiting: Vec<Waiting> = members
        .iter()
        .filter_map(|m| Some((m, m.report.as_ref()?)))
        .filter_map(|(m, report)| match phase {
            Phase::AddNewRoot => preflight(&m.name, report),
            _ => not_loaded(&m.name, report),
        })
        .collect();
    if let Some(until) = hold_until.filter(|until| now < *until) {
        waiting.push(Waiting {
            cluster: None,
            reason: "hold".to_string(),
            message: format!(
                "every intermediate is issued by the new root; the old root stays trusted until {} (rotation.hold after the newest intermediate), so workload certificates signed under it expire first",
                wire::time(until)
            ),
        });
    }
    waiting
}

fn preflight(cluster: &ClusterName, report: &ClusterReport) -> Option<Waiting> {
    let setting = report
        .istiod
        .as_ref()
        .and_then(|s| s.multiroot_mesh.as_deref());
    if setting.is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    let found = match (&report.istiod, setting) {
        (None, _) => "its agent found no istiod Deployment".to_string(),
        (Some(_), None) => "istiod does not set ISTIO_MULTIROOT_MESH".to_string(),
        (Some(_), Some(v)) => format!("istiod sets ISTIO_MULTIROOT_MESH={v}"),
    };
    Some(Waiting {
        cluster: Some(cluster.to_string()),
        reason: "multiroot_mesh_off".to_string(),
        message: format!(
            "cluster {cluster}: {found}; without ISTIO_MULTIROOT_MESH=true istiod cannot trust the old and the new root at once, so the rotation does not start. Set the Helm value pilot.env.ISTIO_MULTIROOT_MESH=true (chart istiod: env.ISTIO_MULTIROOT_MESH=true) and let istiod restart"
        ),
    })
}

/// Whether istiod publishes exactly the roots `cacerts` holds.
fn not_loaded(cluster: &ClusterName, report: &ClusterReport) -> Option<Waiting> {
    let held: BTreeSet<&String> = report.cacerts_roots.iter().collect();
    if report
        .istiod_roots
        .as_ref()
        .is_some_and(|published| published.iter().collect::<BTreeSet<_>>() == held)
    {
        return None;
    }
    let list = |roots: &[String]| {
        roots
            .iter()
            .map(|r| short(r))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let shown = match &report.istiod_roots {
        None => "publishes no istio-ca-root-cert".to_string(),
        Some(roots) => format!("publishes [{}] in istio-ca-root-cert", list(roots)),
    };
    Some(Waiting {
        cluster: Some(cluster.to_string()),
        reason: "istiod_not_loaded".to_string(),
        message: format!(
            "cluster {cluster}: istiod {shown}, not yet the roots its cacerts holds ([{}]); the next step waits until istiod has loaded them (cacerts being written is not enough). If this lasts, check istiod's log, or restart it",
            list(&report.cacerts_roots)
        ),
    })
}

/// The first 16 hex digits of a fingerprint, as the inventory shows them.
fn short(fingerprint: &str) -> &str {
    &fingerprint[..fingerprint.len().min(16)]
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

fn hold_all(
    members: &[Member],
    trusts: &[Option<ClusterTrust>],
    roots: &Roots,
) -> HashMap<String, Route> {
    members
        .iter()
        .zip(trusts)
        .filter_map(|(m, t)| Some((m.name.to_string(), stay(t.as_ref()?, roots))))
        .collect()
}

fn route(trust: &ClusterTrust, step: &ClusterStep, roots: &Roots) -> Route {
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

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
