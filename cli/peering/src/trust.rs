//! Which roots a cluster trusts, and whether clusters trust each other — pure. This is the
//! gate `link` applies before connecting two clusters and the mesh-wide check of `check`:
//! `istioctl multicluster check` never looks at certificates at all.

use meshtrust_ca::{BundleReport, TrustBundle, VerifyOptions, verify_bundle};
use serde::Serialize;

use meshtrust_kube::CACERTS;

use crate::error::Error;
use crate::observe::{ClusterFacts, ROOT_CONFIGMAP};

/// The roots one cluster trusts, from both places they can be seen.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TrustView {
    /// Roots in `cacerts` (`root-cert.pem`, or `ca.crt`), SHA-256 fingerprints; empty without
    /// `cacerts`.
    pub cacerts_roots: Vec<String>,
    /// The root the `cacerts` intermediate chains to.
    pub issuing_root: Option<String>,
    /// Roots istiod publishes to workloads (`istio-ca-root-cert`), when published.
    pub published_roots: Option<Vec<String>>,
    /// What could not be read, as sentences.
    pub problems: Vec<String>,
}

impl TrustView {
    /// Reads the trust of a cluster from its facts; `report` is `cacerts` verified at the
    /// time of the check (computed by the caller, which also shows its findings).
    pub fn new(facts: &ClusterFacts, report: Option<&BundleReport>) -> TrustView {
        let mut view = TrustView::default();
        if let Some(r) = report {
            view.cacerts_roots = r.root_fingerprints.clone();
            view.issuing_root = r.anchor_fingerprint.clone();
        }
        if let Some(pem) = &facts.published_roots {
            match TrustBundle::from_pem(ROOT_CONFIGMAP, pem) {
                Ok(b) => view.published_roots = Some(b.fingerprints()),
                Err(e) => view.problems.push(format!("{ROOT_CONFIGMAP}: {e}")),
            }
        }
        view
    }

    /// The roots workloads trust: what istiod publishes, or, before istiod has published
    /// anything, what `cacerts` will make it publish.
    pub fn effective(&self) -> &[String] {
        match &self.published_roots {
            Some(p) => p,
            None => &self.cacerts_roots,
        }
    }

    /// Whether istiod publishes the roots of `cacerts` (false: istiod runs a self-signed CA,
    /// or has not reloaded `cacerts` yet).
    pub fn published_agrees(&self) -> Option<bool> {
        let published = self.published_roots.as_ref()?;
        if self.cacerts_roots.is_empty() {
            return None;
        }
        let mut a = published.clone();
        let mut b = self.cacerts_roots.clone();
        a.sort();
        b.sort();
        Some(a == b)
    }
}

/// `cacerts` of a cluster, verified at `verify`'s time; `None` without the Secret.
pub fn cacerts_report(facts: &ClusterFacts, verify: &VerifyOptions) -> Option<BundleReport> {
    facts.cacerts.as_ref().map(|f| verify_bundle(f, verify))
}

/// Roots in both lists.
pub(crate) fn common(a: &[String], b: &[String]) -> Vec<String> {
    a.iter().filter(|f| b.contains(f)).cloned().collect()
}

/// Why two clusters may not be linked ([`Error::NoSharedRoot`]), or `None` when they share
/// a root.
pub fn link_refusal((a, va): (&str, &TrustView), (b, vb): (&str, &TrustView)) -> Option<Error> {
    let (ea, eb) = (va.effective(), vb.effective());
    if !common(ea, eb).is_empty() {
        return None;
    }
    let describe = |name: &str, v: &TrustView| -> String {
        if v.effective().is_empty() {
            format!("{name} trusts no root yet (no {CACERTS} and no {ROOT_CONFIGMAP})")
        } else if v.cacerts_roots.is_empty() {
            format!(
                "{name} has no {CACERTS}: istiod runs its own self-signed CA ({})",
                short_list(v.effective())
            )
        } else {
            format!("{name} trusts {}", short_list(v.effective()))
        }
    };
    Some(Error::NoSharedRoot {
        a: a.to_string(),
        b: b.to_string(),
        a_trusts: describe(a, va),
        b_trusts: describe(b, vb),
    })
}

/// Fingerprints shortened for a sentence (`AB:CD:EF:…`, 17 characters each), comma-separated.
pub(crate) fn short_list(fps: &[String]) -> String {
    fps.iter()
        .map(|f| f.chars().take(17).collect::<String>())
        .collect::<Vec<_>>()
        .join(", ")
}

/// How the clusters' trusted roots relate, mesh-wide.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum Agreement {
    /// Every cluster trusts exactly the same roots.
    Same {
        /// The roots.
        roots: Vec<String>,
    },
    /// The sets differ but every pair shares a root: a root rotation looks under way.
    Rotating {
        /// Roots every cluster trusts.
        common: Vec<String>,
        /// Which phase it looks like, as a sentence.
        phase: String,
    },
    /// Some pair of clusters shares no root.
    Split {
        /// The first pair found, by cluster name.
        pair: (String, String),
    },
    /// Some cluster trusts nothing yet.
    Unknown {
        /// Clusters whose roots could not be seen.
        clusters: Vec<String>,
    },
}

/// Compares every cluster's effective roots. `views` are (cluster name, view).
pub fn agreement(views: &[(String, TrustView)]) -> Agreement {
    let blind: Vec<String> = views
        .iter()
        .filter(|(_, v)| v.effective().is_empty())
        .map(|(n, _)| n.clone())
        .collect();
    if !blind.is_empty() {
        return Agreement::Unknown { clusters: blind };
    }
    for (i, (a, va)) in views.iter().enumerate() {
        for (b, vb) in &views[i + 1..] {
            if common(va.effective(), vb.effective()).is_empty() {
                return Agreement::Split {
                    pair: (a.clone(), b.clone()),
                };
            }
        }
    }
    let sorted = |v: &TrustView| {
        let mut s = v.effective().to_vec();
        s.sort();
        s
    };
    let first = views.first().map(|(_, v)| sorted(v)).unwrap_or_default();
    let all_same = views.iter().all(|(_, v)| sorted(v) == first);
    let issuers: std::collections::BTreeSet<&str> = views
        .iter()
        .filter_map(|(_, v)| v.issuing_root.as_deref())
        .collect();
    if all_same && first.len() == 1 {
        return Agreement::Same { roots: first };
    }
    let mut common_roots = first.clone();
    for (_, v) in views {
        common_roots = common(&common_roots, v.effective());
    }
    let phase = if all_same && issuers.len() <= 1 {
        "every cluster trusts the same roots and all intermediates chain to one of them: phase 1 of a root rotation is done (or phase 3 has not started)".to_string()
    } else if all_same {
        "every cluster trusts both roots and intermediates chain to different roots: phase 2 of a root rotation (reissuing intermediates)".to_string()
    } else if issuers.iter().all(|i| common_roots.iter().any(|c| c == i)) {
        let larger = views
            .iter()
            .filter(|(_, v)| v.effective().len() > common_roots.len())
            .count();
        format!(
            "{larger} of {} cluster(s) trust an extra root no intermediate chains to: phase 1 (adding the new root) or phase 3 (removing the old root) of a rotation",
            views.len()
        )
    } else {
        "trusted roots differ between clusters, yet every pair shares one".to_string()
    };
    Agreement::Rotating {
        common: common_roots,
        phase,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(roots: &[&str], issuer: &str) -> TrustView {
        TrustView {
            cacerts_roots: roots.iter().map(|s| s.to_string()).collect(),
            issuing_root: Some(issuer.to_string()),
            published_roots: Some(roots.iter().map(|s| s.to_string()).collect()),
            problems: vec![],
        }
    }

    fn named(views: Vec<TrustView>) -> Vec<(String, TrustView)> {
        views
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("c{}", i + 1), v))
            .collect()
    }

    #[test]
    fn clusters_with_one_shared_root_agree() {
        let a = agreement(&named(vec![view(&["A"], "A"), view(&["A"], "A")]));
        assert_eq!(
            a,
            Agreement::Same {
                roots: vec!["A".into()]
            }
        );
    }

    #[test]
    fn clusters_without_a_common_root_are_split_and_named() {
        let a = agreement(&named(vec![
            view(&["A"], "A"),
            view(&["A"], "A"),
            view(&["B"], "B"),
        ]));
        assert_eq!(
            a,
            Agreement::Split {
                pair: ("c1".into(), "c3".into())
            }
        );
    }

    #[test]
    fn a_cluster_adding_a_root_is_a_rotation_in_progress() {
        let a = agreement(&named(vec![view(&["A", "B"], "A"), view(&["A"], "A")]));
        let Agreement::Rotating { common, phase } = a else {
            panic!("expected a rotation, got {a:?}")
        };
        assert_eq!(common, vec!["A".to_string()]);
        assert!(phase.contains("1 of 2"), "{phase}");
    }

    #[test]
    fn mixed_issuers_under_both_roots_are_phase_two() {
        let a = agreement(&named(vec![view(&["A", "B"], "A"), view(&["A", "B"], "B")]));
        let Agreement::Rotating { phase, .. } = a else {
            panic!("expected a rotation, got {a:?}")
        };
        assert!(phase.contains("phase 2"), "{phase}");
    }

    #[test]
    fn a_cluster_without_roots_is_unknown() {
        let mut blind = view(&[], "A");
        blind.published_roots = None;
        let a = agreement(&named(vec![view(&["A"], "A"), blind]));
        assert_eq!(
            a,
            Agreement::Unknown {
                clusters: vec!["c2".into()]
            }
        );
    }

    #[test]
    fn linking_is_refused_without_a_common_root_naming_both_clusters() {
        let mut selfsigned = view(&["S"], "S");
        selfsigned.cacerts_roots.clear();
        let why = link_refusal(("east", &view(&["A"], "A")), ("west", &selfsigned))
            .unwrap()
            .to_string();
        assert!(why.contains("east and west share no root"), "{why}");
        assert!(why.contains("west has no cacerts"), "{why}");
        assert!(link_refusal(("a", &view(&["A", "B"], "A")), ("b", &view(&["B"], "B"))).is_none());
    }

    #[test]
    fn published_roots_that_differ_from_cacerts_are_noticed() {
        let mut v = view(&["A"], "A");
        assert_eq!(v.published_agrees(), Some(true));
        v.published_roots = Some(vec!["S".into()]);
        assert_eq!(v.published_agrees(), Some(false));
    }
}
