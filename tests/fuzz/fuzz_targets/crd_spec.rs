//! `MeshTrust` spec validation from JSON: any document gets `Ok` or the fields at fault,
//! never a panic; and after `Ok`, every accessor the controller relies on succeeds (the
//! promise `MeshTrustSpec::validate` makes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshtrust_controller::crd::{MeshTrustSpec, SelectedIssuer};

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = serde_json::from_slice::<MeshTrustSpec>(data) else {
        return;
    };
    let Ok(()) = spec.validate() else {
        return;
    };
    if let SelectedIssuer::Local(local) = spec.issuer.selected().expect("valid spec: issuer") {
        local.key_type().expect("valid spec: root key type");
    }
    spec.intermediate.key_type().expect("valid spec: key type");
    spec.intermediate.duration().expect("valid spec: duration");
    spec.intermediate
        .renewal_policy()
        .expect("valid spec: renewal");
    for cluster in &spec.clusters {
        let name = cluster.cluster_name().expect("valid spec: cluster name");
        cluster.access().expect("valid spec: cluster access");
        spec.intermediate_params(name)
            .expect("valid spec: intermediate params");
    }
    if let Some(rotation) = &spec.root_rotation {
        rotation.hold().expect("valid spec: hold");
    }
});
