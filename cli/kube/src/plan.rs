//! What must happen to one cluster's `cacerts`, decided before anything is written.

use meshtrust_ca::{BundleFiles, VerifyOptions, verify_bundle};
use serde::Serialize;

/// What the cluster holds now.
#[derive(Debug)]
pub enum Existing {
    /// No `cacerts` Secret.
    Absent,
    /// A `cacerts` Secret with these files.
    Present {
        /// Its data, by key.
        files: BundleFiles,
    },
}

/// What the cluster should end up with.
#[derive(Debug)]
pub enum Desired<'a> {
    /// Any valid bundle chaining to one of these roots (`bootstrap`: a cluster already trusting
    /// the mesh root is left alone; a new intermediate would change nothing for peers).
    ChainsTo(&'a [String]),
    /// Exactly these files (`push`: the user hands over one bundle).
    Exactly(&'a BundleFiles),
}

/// The decision for one cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Action {
    /// No `cacerts` yet: create it.
    Create,
    /// Nothing to write.
    Unchanged,
    /// Replace the existing Secret (with `--force`), keeping a backup copy first if asked.
    Replace {
        /// Why it is being replaced.
        reason: String,
        /// Keep the old Secret as `cacerts-backup-<timestamp>`.
        backup: bool,
    },
    /// Refused: the existing `cacerts` would be lost; only a forced plan replaces it.
    Conflict {
        /// Why it conflicts.
        reason: String,
    },
}

impl Action {
    /// Whether carrying the action out writes to the cluster.
    pub fn writes(&self) -> bool {
        matches!(self, Action::Create | Action::Replace { .. })
    }

    /// Short name for tables.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Unchanged => "unchanged",
            Action::Replace { .. } => "replace",
            Action::Conflict { .. } => "conflict",
        }
    }
}

/// Decides what to do with one cluster's `cacerts`.
///
/// - absent → create;
/// - present, valid now, and matching what is desired → unchanged;
/// - anything else (another root, a partial or invalid bundle, another bundle) → conflict,
///   or replace with `force` (backing up first with `backup`). A conflict's reason says what
///   would be lost; the caller says how to force it.
pub fn plan(
    existing: &Existing,
    desired: &Desired<'_>,
    force: bool,
    backup: bool,
    verify: &VerifyOptions,
) -> Action {
    let Existing::Present { files, .. } = existing else {
        return Action::Create;
    };
    let report = verify_bundle(files, verify);
    let mismatch = match desired {
        Desired::Exactly(wanted) => {
            (*wanted != files).then(|| "it holds a different bundle".to_string())
        }
        Desired::ChainsTo(roots) => {
            if !report.accepted() {
                let first = report
                    .findings
                    .iter()
                    .find(|f| f.severity == meshtrust_ca::Severity::Error)
                    .map(|f| f.message.clone())
                    .unwrap_or_default();
                Some(format!("it is not a bundle istiod accepts ({first})"))
            } else {
                match &report.anchor_fingerprint {
                    Some(anchor) if roots.contains(anchor) => None,
                    Some(anchor) => Some(format!(
                        "it chains to another root ({}); replacing it splits this cluster from its current peers until they trust the new root",
                        &anchor[..23.min(anchor.len())]
                    )),
                    None => Some("its chain leads to no root".to_string()),
                }
            }
        }
    };
    match (mismatch, force) {
        (None, _) => Action::Unchanged,
        (Some(reason), true) => Action::Replace { reason, backup },
        (Some(reason), false) => Action::Conflict { reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshtrust_ca::*;
    use time::macros::datetime;

    fn bundle(root: &RootCa) -> BundleFiles {
        let now = datetime!(2026-01-01 00:00 UTC);
        let params = IntermediateParams::new(ClusterName::new("c1").unwrap());
        let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
        let signed = root
            .sign_intermediate(&params.csr(&key).unwrap(), &params.profile(), now)
            .unwrap();
        root.cacerts(signed.certificate, key)
            .bundle_files(BundleFormat::Istio)
    }

    fn present(files: BundleFiles) -> Existing {
        Existing::Present { files }
    }

    #[test]
    fn planning_table() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let opts = VerifyOptions::at(now);
        let root = RootParams::default().self_signed(now).unwrap();
        let other = RootParams::default().self_signed(now).unwrap();
        let ours = vec![root.certificate().fingerprint()];
        let mine = bundle(&root);
        let same_root_other_bundle = bundle(&root);
        let mut partial = BundleFiles::new();
        partial.insert("ca-cert.pem", mine.get("ca-cert.pem").unwrap().to_vec());

        let cases: Vec<(&str, Existing, Desired<'_>, bool, bool, &str)> = vec![
            (
                "a cluster without cacerts gets one",
                Existing::Absent,
                Desired::ChainsTo(&ours),
                false,
                false,
                "create",
            ),
            (
                "a valid cacerts from the same root is left alone",
                present(bundle(&root)),
                Desired::ChainsTo(&ours),
                false,
                false,
                "unchanged",
            ),
            (
                "a cacerts from another root is refused",
                present(bundle(&other)),
                Desired::ChainsTo(&ours),
                false,
                false,
                "conflict",
            ),
            (
                "a cacerts from another root is replaced with --force",
                present(bundle(&other)),
                Desired::ChainsTo(&ours),
                true,
                true,
                "replace",
            ),
            (
                "a partial cacerts is refused",
                present(partial),
                Desired::ChainsTo(&ours),
                false,
                false,
                "conflict",
            ),
            (
                "pushing the same bundle again writes nothing",
                present(mine.clone()),
                Desired::Exactly(&mine),
                false,
                false,
                "unchanged",
            ),
            (
                "pushing another bundle over one is refused",
                present(same_root_other_bundle),
                Desired::Exactly(&mine),
                false,
                false,
                "conflict",
            ),
        ];
        for (case, existing, desired, force, backup, want) in cases {
            let action = plan(&existing, &desired, force, backup, &opts);
            assert_eq!(action.name(), want, "{case}: {action:?}");
            if let Action::Replace { backup: b, .. } = &action {
                assert_eq!(*b, backup, "{case}");
            }
        }
    }

    #[test]
    fn the_reason_for_a_conflict_names_the_other_root() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let root = RootParams::default().self_signed(now).unwrap();
        let other = RootParams::default().self_signed(now).unwrap();
        let ours = vec![root.certificate().fingerprint()];
        let action = plan(
            &present(bundle(&other)),
            &Desired::ChainsTo(&ours),
            false,
            false,
            &VerifyOptions::at(now),
        );
        let Action::Conflict { reason } = action else {
            panic!("{action:?}")
        };
        assert!(
            reason.contains(&other.certificate().fingerprint()[..23]),
            "{reason}"
        );
    }
}
