//! The gate on istiod, pure and shared by the controller and the service: a root
//! rotation's phase starts from what each cluster's istiod runs with and has *loaded*, not
//! from what its `cacerts` holds (the Secret being written is not istiod trusting it).
//!
//! - Before **AddNewRoot** (the preflight): istiod runs with `ISTIO_MULTIROOT_MESH=true`,
//!   without which it cannot trust the old and the new root at once.
//! - Before **ReissueIntermediates**, **RemoveOldRoot** and **Complete**: istiod publishes in
//!   `istio-ca-root-cert` exactly the roots its `cacerts` holds.
//!
//! Roots are named by their SHA-256 fingerprint, lowercase hex ([`crate::sha256_hex`] of
//! the DER).

use std::collections::BTreeSet;
use std::fmt;

use super::RotationPhase;
use crate::cluster::ClusterName;
use crate::fingerprint::short_fingerprints;

/// The istiod setting a rotation needs.
pub const MULTIROOT_MESH: &str = "ISTIO_MULTIROOT_MESH";

/// The Helm values that set it, as the preflight's message gives them.
pub const MULTIROOT_MESH_HELM: &str =
    "pilot.env.ISTIO_MULTIROOT_MESH=true (chart istiod: env.ISTIO_MULTIROOT_MESH=true)";

/// What one cluster's istiod was found to run with and to publish.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IstiodState {
    /// `ISTIO_MULTIROOT_MESH` as istiod's Deployment sets it: outer `None` when no istiod
    /// Deployment was found, inner `None` when the Deployment does not set it.
    pub multiroot_mesh: Option<Option<String>>,
    /// Fingerprints of the roots istiod publishes in its `istio-ca-root-cert` ConfigMap (the
    /// roots it has loaded); `None` when that ConfigMap is absent.
    pub published_roots: Option<Vec<String>>,
}

/// What holds a rotation's next step on one cluster's istiod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IstiodWait {
    /// The preflight: istiod does not run with `ISTIO_MULTIROOT_MESH=true`.
    MultirootMeshOff {
        /// The cluster.
        cluster: ClusterName,
        /// What was found, as in [`IstiodState::multiroot_mesh`].
        found: Option<Option<String>>,
    },
    /// istiod does not (yet) publish exactly the roots its `cacerts` holds.
    NotLoaded {
        /// The cluster.
        cluster: ClusterName,
        /// The roots it publishes (`None`: no `istio-ca-root-cert`).
        published: Option<Vec<String>>,
        /// The roots its `cacerts` holds.
        held: Vec<String>,
    },
}

impl IstiodWait {
    /// The cluster it names.
    pub fn cluster(&self) -> &ClusterName {
        match self {
            IstiodWait::MultirootMeshOff { cluster, .. }
            | IstiodWait::NotLoaded { cluster, .. } => cluster,
        }
    }

    /// A stable code: `multiroot_mesh_off` or `istiod_not_loaded`.
    pub fn reason(&self) -> &'static str {
        match self {
            IstiodWait::MultirootMeshOff { .. } => "multiroot_mesh_off",
            IstiodWait::NotLoaded { .. } => "istiod_not_loaded",
        }
    }
}

impl fmt::Display for IstiodWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IstiodWait::MultirootMeshOff { cluster, found } => {
                let found = match found {
                    None => "no istiod Deployment was found".to_string(),
                    Some(None) => format!("istiod does not set {MULTIROOT_MESH}"),
                    Some(Some(v)) => format!("istiod sets {MULTIROOT_MESH}={v}"),
                };
                write!(
                    f,
                    "cluster {cluster}: {found}; without {MULTIROOT_MESH}=true istiod cannot trust the old and the new root at once, so the rotation does not start. Set the Helm value {MULTIROOT_MESH_HELM} and let istiod restart"
                )
            }
            IstiodWait::NotLoaded {
                cluster,
                published,
                held,
            } => {
                let shown = match published {
                    None => "publishes no istio-ca-root-cert".to_string(),
                    Some(roots) => format!(
                        "publishes [{}] in istio-ca-root-cert",
                        short_fingerprints(roots)
                    ),
                };
                write!(
                    f,
                    "cluster {cluster}: istiod {shown}, not yet the roots its cacerts holds ([{}]); the next step waits until istiod has loaded them (cacerts being written is not enough). If this lasts, check istiod's log, or restart it",
                    short_fingerprints(held)
                )
            }
        }
    }
}

/// The phase a rotation is in while the gate of `phase` is shut: Complete is declared only
/// once every istiod has loaded the new root alone, so until then it is still RemoveOldRoot.
pub fn phase_while_held(phase: RotationPhase) -> RotationPhase {
    match phase {
        RotationPhase::Complete => RotationPhase::RemoveOldRoot,
        other => other,
    }
}

/// Whether istiod has loaded what `cacerts` holds: the roots it publishes are exactly
/// `held` (in any order). `None` when it publishes none.
pub fn istiod_loaded(published: Option<&[String]>, held: &[String]) -> Option<bool> {
    let published: BTreeSet<&String> = published?.iter().collect();
    Some(published == held.iter().collect::<BTreeSet<_>>())
}

/// Whether `multiroot_mesh` (as in [`IstiodState::multiroot_mesh`]) lets istiod trust two
/// roots.
pub fn multiroot_on(multiroot_mesh: &Option<Option<String>>) -> bool {
    matches!(multiroot_mesh, Some(Some(v)) if v.eq_ignore_ascii_case("true"))
}

/// What holds `phase` on `cluster`, whose istiod is in `istiod` and whose `cacerts` holds
/// the roots `held`: before AddNewRoot the preflight, before every later phase (and before
/// Complete is declared) istiod having loaded exactly `held`.
pub fn istiod_wait(
    phase: RotationPhase,
    cluster: &ClusterName,
    istiod: &IstiodState,
    held: &[String],
) -> Option<IstiodWait> {
    match phase {
        RotationPhase::AddNewRoot if multiroot_on(&istiod.multiroot_mesh) => None,
        RotationPhase::AddNewRoot => Some(IstiodWait::MultirootMeshOff {
            cluster: cluster.clone(),
            found: istiod.multiroot_mesh.clone(),
        }),
        _ if istiod_loaded(istiod.published_roots.as_deref(), held) == Some(true) => None,
        _ => Some(IstiodWait::NotLoaded {
            cluster: cluster.clone(),
            published: istiod.published_roots.clone(),
            held: held.to_vec(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c1() -> ClusterName {
        ClusterName::new("c1").unwrap()
    }

    fn state(multiroot: Option<Option<&str>>, published: Option<&[&str]>) -> IstiodState {
        IstiodState {
            multiroot_mesh: multiroot.map(|m| m.map(str::to_string)),
            published_roots: published.map(|p| p.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn the_preflight_passes_only_on_multiroot_mesh_true_and_names_what_was_found() {
        let held = ["a".to_string()];
        let on = state(Some(Some("TRUE")), None);
        assert_eq!(
            istiod_wait(RotationPhase::AddNewRoot, &c1(), &on, &held),
            None
        );
        for (found, says) in [
            (None, "no istiod Deployment was found"),
            (Some(None), "istiod does not set ISTIO_MULTIROOT_MESH;"),
            (
                Some(Some("false")),
                "istiod sets ISTIO_MULTIROOT_MESH=false;",
            ),
        ] {
            let wait = istiod_wait(
                RotationPhase::AddNewRoot,
                &c1(),
                &state(found, Some(&["a"])),
                &held,
            )
            .expect("the preflight fails");
            assert_eq!(wait.reason(), "multiroot_mesh_off");
            let text = wait.to_string();
            assert!(text.starts_with("cluster c1: "), "{text}");
            assert!(text.contains(says), "{text}");
            assert!(text.contains(MULTIROOT_MESH_HELM), "{text}");
        }
    }

    #[test]
    fn later_phases_wait_until_istiod_publishes_exactly_the_roots_cacerts_holds() {
        let held = ["aaaa".to_string(), "bbbb".to_string()];
        let on = Some(Some("true"));
        for phase in [
            RotationPhase::ReissueIntermediates,
            RotationPhase::RemoveOldRoot,
            RotationPhase::Complete,
        ] {
            let loaded = state(on, Some(&["bbbb", "aaaa"]));
            assert_eq!(istiod_wait(phase, &c1(), &loaded, &held), None);
            for published in [
                None,
                Some(&["aaaa"][..]),
                Some(&["aaaa", "bbbb", "cccc"][..]),
            ] {
                let wait = istiod_wait(phase, &c1(), &state(on, published), &held)
                    .expect("istiod has not loaded what cacerts holds");
                assert_eq!(wait.reason(), "istiod_not_loaded");
                assert_eq!(wait.cluster(), &c1());
                assert!(wait.to_string().contains("[aaaa, bbbb]"), "{wait}");
            }
        }
        // The preflight is not asked again after phase 1: the roots loaded are what counts.
        let off_but_loaded = state(Some(None), Some(&["aaaa", "bbbb"]));
        assert_eq!(
            istiod_wait(RotationPhase::RemoveOldRoot, &c1(), &off_but_loaded, &held),
            None
        );
    }

    #[test]
    fn a_held_complete_is_still_phase_3_and_other_phases_stay() {
        assert_eq!(
            phase_while_held(RotationPhase::Complete),
            RotationPhase::RemoveOldRoot
        );
        for p in [
            RotationPhase::AddNewRoot,
            RotationPhase::ReissueIntermediates,
            RotationPhase::RemoveOldRoot,
        ] {
            assert_eq!(phase_while_held(p), p);
        }
    }

    #[test]
    fn loaded_is_unknown_without_a_published_configmap() {
        assert_eq!(istiod_loaded(None, &["a".to_string()]), None);
        assert_eq!(istiod_loaded(Some(&[]), &["a".to_string()]), Some(false));
    }
}
