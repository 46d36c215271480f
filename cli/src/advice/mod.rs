//! Command-line advice: the library crates say what is wrong; only the binary knows its own
//! flags and how a person reruns a command, so the advice is added here.

pub mod peering;

/// Appended to a plan's conflict: how to force the replacement.
pub const FORCE_REPLACE: &str = "; pass --force to replace it (with --backup to keep a copy)";

/// What to do about a Kubernetes delivery error on the command line, as text appended to
/// its message; empty when the message says it all.
pub fn kube(e: &meshtrust_kube::Error) -> &'static str {
    match e {
        meshtrust_kube::Error::Raced { .. } => " — rerun to plan again",
        meshtrust_kube::Error::Access {
            no_kubeconfig: true,
            ..
        } => "; pass --kubeconfig",
        meshtrust_kube::Error::OutOfTime { .. } => " (--cluster-timeout sets the budget)",
        _ => "",
    }
}

/// What to do about an issuer error on the command line (empty when nothing to add).
pub fn issuer(e: &meshtrust_issuer::Error) -> String {
    use meshtrust_issuer::Error;
    match e {
        Error::Issuance { cause, .. } => issuer(cause),
        Error::NoRootDir { dir } => {
            format!("; create a root there with `meshtrust root create --out {dir}`")
        }
        Error::NoRootFile { dir, .. } => {
            format!(" (create one with `meshtrust root create --out {dir}`)")
        }
        Error::NoRegion => "; pass --region".to_string(),
        Error::CaNotFound { .. } => {
            " (the region comes from --region, AWS_REGION or your AWS profile)".to_string()
        }
        _ => String::new(),
    }
}

/// Appended after the findings of a bundle istiod would refuse.
pub const REISSUE: &str = "reissue it with `meshtrust cacerts --force` (or `meshtrust bootstrap --force` for a cluster's cacerts; the controller renews what it manages)";

/// `e` with its advice.
pub fn render_kube(e: &meshtrust_kube::Error) -> String {
    format!("{e}{}", kube(e))
}

/// The advice for the first error in `e`'s chain that has some.
pub fn for_chain(e: &anyhow::Error) -> String {
    e.chain()
        .find_map(|cause| {
            if let Some(i) = cause.downcast_ref::<meshtrust_issuer::Error>() {
                return Some(issuer(i)).filter(|a| !a.is_empty());
            }
            let error = cause.downcast_ref::<meshtrust_kube::Error>().or_else(|| {
                match cause.downcast_ref::<meshtrust_controller::Error>() {
                    Some(meshtrust_controller::Error::Kube(k)) => Some(k),
                    _ => None,
                }
            })?;
            Some(kube(error).to_string()).filter(|a| !a.is_empty())
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshtrust_ca::{BundleFiles, VerifyOptions};
    use meshtrust_kube::{Action, Desired, Existing, plan};
    use time::macros::datetime;

    #[test]
    fn a_conflict_is_shown_with_how_to_force_it() {
        let mut partial = BundleFiles::new();
        partial.insert("ca-cert.pem", b"not a certificate".to_vec());
        let action = plan(
            &Existing::Present { files: partial },
            &Desired::ChainsTo(&["AB:CD".to_string()]),
            false,
            false,
            &VerifyOptions::at(datetime!(2026-01-01 00:00 UTC)),
        );
        let Action::Conflict { reason } = action else {
            panic!("{action:?}")
        };
        let shown = format!("{reason}{FORCE_REPLACE}");
        assert!(shown.contains("--force"), "{shown}");
    }

    #[test]
    fn a_race_is_shown_with_how_to_retry() {
        let e = meshtrust_kube::Error::Raced {
            object: "istio-system/cacerts".into(),
            what: "changed since it was read",
        };
        let shown = render_kube(&e);
        assert!(shown.contains("nothing was overwritten"), "{shown}");
        assert!(shown.ends_with("rerun to plan again"), "{shown}");
        assert_eq!(for_chain(&anyhow::Error::new(e)), " — rerun to plan again");
    }

    #[test]
    fn a_missing_root_is_shown_with_how_to_create_one() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let e =
            meshtrust_issuer::LocalIssuer::from_dir(std::path::Path::new("nope"), now).unwrap_err();
        let shown = format!("{e}{}", issuer(&e));
        assert!(
            shown.contains("nope") && shown.contains("meshtrust root create"),
            "{shown}"
        );
        let dir = tempfile::tempdir().unwrap();
        let e = meshtrust_issuer::LocalIssuer::from_dir(dir.path(), now).unwrap_err();
        let text = e.to_string();
        let shown = format!("{text}{}", for_chain(&anyhow::Error::new(e)));
        assert!(
            shown.contains("root-cert.pem") && shown.contains("meshtrust root create --out"),
            "{shown}"
        );
    }

    #[test]
    fn aws_errors_name_the_region_flag() {
        let not_found = meshtrust_issuer::Error::CaNotFound {
            arn: "arn:aws:acm-pca:eu-west-1:1:certificate-authority/x".into(),
            message: "no such CA".into(),
        };
        let shown = format!("{not_found}{}", issuer(&not_found));
        assert!(
            shown.contains("was not found") && shown.contains("--region"),
            "{shown}"
        );
        let shown = format!(
            "{}{}",
            meshtrust_issuer::Error::NoRegion,
            issuer(&meshtrust_issuer::Error::NoRegion)
        );
        assert!(shown.contains("--region"), "{shown}");
    }
}
