//! Decoding a `cacerts` Secret as read from a cluster: JSON → `Secret` → its bundle files
//! → `verify_bundle` and the plan's questions about it. Never a panic.
#![no_main]

use k8s_openapi::api::core::v1::Secret;
use libfuzzer_sys::fuzz_target;
use meshtrust_ca::{VerifyOptions, verify_bundle};
use meshtrust_kube::{Action, Desired, Existing, bundle_files, is_managed, plan};
use time::macros::datetime;

fuzz_target!(|data: &[u8]| {
    let Ok(secret) = serde_json::from_slice::<Secret>(data) else {
        return;
    };
    let _ = is_managed(&secret);
    let files = bundle_files(&secret);
    let options = VerifyOptions::at(datetime!(2027-03-01 00:00 UTC));
    let _ = verify_bundle(&files, &options);
    let roots = vec!["AB:CD".to_string()];
    let existing = Existing::Present { files };
    for (force, backup) in [(false, false), (true, true)] {
        let action = plan(
            &existing,
            &Desired::ChainsTo(&roots),
            force,
            backup,
            &options,
        );
        // Without --force, a Secret that is there is never written over.
        if !force {
            assert!(
                !matches!(action, Action::Replace { .. }),
                "replaced without --force"
            );
        }
    }
});
