//! Command-line advice: the library crates say what is wrong; only the binary knows its own
//! flags and how a person reruns a command, so the advice is added here.

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
        _ => "",
    }
}

/// `e` with its advice.
pub fn render_kube(e: &meshtrust_kube::Error) -> String {
    format!("{e}{}", kube(e))
}

/// The advice for the first error in `e`'s chain that has some.
pub fn for_chain(e: &anyhow::Error) -> &'static str {
    e.chain()
        .find_map(|cause| {
            let error = cause.downcast_ref::<meshtrust_kube::Error>().or_else(|| {
                match cause.downcast_ref::<meshtrust_controller::Error>() {
                    Some(meshtrust_controller::Error::Kube(k)) => Some(k),
                    _ => None,
                }
            })?;
            Some(kube(error)).filter(|a| !a.is_empty())
        })
        .unwrap_or("")
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
}
