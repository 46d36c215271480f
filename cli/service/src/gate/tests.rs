//! The rotation's gate as named cases: the preflight, what istiod loaded, reports missing
//! the hold, what a new cluster gets meanwhile, and each cluster routed from what it holds.

use meshtrust_ca::{
    BundleFormat, CaCerts, IntermediateParams, KeyType, PrivateKey, RootCa, RootParams,
};
use meshtrust_issuer::server::api::IstiodSettings;
use time::macros::datetime;

use std::collections::HashMap;

use super::*;

/// The rotation as a whole: the gate, and each reporting cluster's route (for tests and
/// views of the whole fleet).
#[derive(Clone, Debug)]
struct View {
    /// Where it stands.
    status: RotationStatus,
    /// Per enrolled cluster that reported a usable `cacerts`.
    routes: HashMap<String, Route>,
    /// For a cluster that holds no bundle (a new enrollment).
    newcomer: Route,
}

/// The whole view: the gate, and every member's route.
fn plan(roots: &Roots, hold: Duration, members: &[Member], now: OffsetDateTime) -> View {
    let gate = gate(roots, hold, members, now);
    let routes = members
        .iter()
        .filter_map(|m| Some((m.name.to_string(), trust_of(m)?)))
        .map(|(name, trust)| (name, route(&gate, roots, Some(&trust))))
        .collect();
    View {
        newcomer: route(&gate, roots, None),
        status: gate.status,
        routes,
    }
}

const T0: OffsetDateTime = datetime!(2026-12-01 10:00:00 UTC);

struct Mesh {
    old: RootCa,
    new: RootCa,
}

impl Mesh {
    fn new() -> Mesh {
        let root = |cn: &str| {
            let mut params = RootParams::default();
            params.common_name = cn.to_string();
            params.self_signed(T0).expect("a root")
        };
        Mesh {
            old: root("old root"),
            new: root("new root"),
        }
    }

    fn roots(&self) -> Roots {
        Roots {
            old: self.old.certificate().clone(),
            new: self.new.certificate().clone(),
        }
    }

    fn fp(root: &RootCa) -> String {
        wire::fingerprint(root.certificate())
    }

    /// `name` before the rotation: issued by and trusting the old root, its istiod having
    /// loaded it, ISTIO_MULTIROOT_MESH `multiroot`.
    fn on_old(&self, name: &str, multiroot: Option<&str>) -> Member {
        let pem = self.old.certificate().to_pem();
        let loaded = [Mesh::fp(&self.old)];
        member(name, &bundle(name, &self.old, &pem, T0), &loaded, multiroot)
    }
}

/// A cluster's `cacerts`: an intermediate from `by`, trusting `trust` (PEM).
fn bundle<'t>(name: &str, by: &RootCa, trust: &'t str, at: OffsetDateTime) -> (CaCerts, &'t str) {
    let params = IntermediateParams::new(ClusterName::new(name).expect("a name"));
    let key = PrivateKey::generate(KeyType::EcdsaP256).expect("a key");
    let csr = params.csr(&key).expect("a CSR");
    let signed = by
        .sign_intermediate(&csr, &params.profile(), at)
        .expect("an intermediate");
    (by.cacerts(signed.certificate, key), trust)
}

/// What `name`'s agent reports of `bundle` (trust file `trust`), istiod publishing
/// `loaded` with ISTIO_MULTIROOT_MESH `multiroot`.
fn member(
    name: &str,
    (bundle, trust): &(CaCerts, &str),
    loaded: &[String],
    multiroot: Option<&str>,
) -> Member {
    let files = bundle.bundle_files(BundleFormat::Istio);
    let mut cacerts_files: std::collections::BTreeMap<String, String> = files
        .names()
        .filter(|n| *n != "ca-key.pem")
        .map(|n| {
            let text = String::from_utf8(files.get(n).unwrap().to_vec()).unwrap();
            (n.to_string(), text)
        })
        .collect();
    cacerts_files.insert("root-cert.pem".to_string(), trust.to_string());
    let roots = meshtrust_ca::TrustBundle::from_pem("t", trust.as_bytes()).unwrap();
    Member {
        name: ClusterName::new(name).unwrap(),
        report: Some(ClusterReport {
            cacerts_serial: wire::serial(bundle.certificate()),
            cacerts_roots: wire::fingerprints(&roots),
            istiod_roots: Some(loaded.to_vec()),
            istiod: Some(IstiodSettings {
                multiroot_mesh: multiroot.map(str::to_string),
                proxy_config_xds_agent: None,
            }),
            cacerts_files,
            agent_version: "test".to_string(),
            observed_at: wire::time(T0),
        }),
        reported_at: Some(T0),
    }
}

fn reasons(view: &View) -> Vec<(Option<String>, String)> {
    view.status
        .waiting_for
        .iter()
        .map(|w| (w.cluster.clone(), w.reason.clone()))
        .collect()
}

#[test]
fn the_rotation_does_not_start_while_an_istiod_lacks_multiroot_mesh_and_names_it() {
    let mesh = Mesh::new();
    let old_pem = mesh.old.certificate().to_pem();
    let members = [mesh.on_old("east", Some("true")), mesh.on_old("west", None)];
    let view = plan(&mesh.roots(), Duration::ZERO, &members, T0);
    assert_eq!(view.status.phase, RotationPhase::AddNewRoot);
    assert!(!view.status.open);
    assert_eq!(
        reasons(&view),
        [(Some("west".into()), "multiroot_mesh_off".into())]
    );
    let message = &view.status.waiting_for[0].message;
    assert!(
        message.contains("pilot.env.ISTIO_MULTIROOT_MESH=true"),
        "{message}"
    );
    // Every cluster holds what it holds; a newcomer gets the old root alone.
    assert_eq!(view.routes["east"].desired.trust_bundle_pem, old_pem);
    assert!(!view.routes["east"].desired.reissue);
    assert_eq!(view.newcomer.desired.trust_bundle_pem, old_pem);
}

#[test]
fn phase_one_appends_the_new_root_to_the_bytes_each_cluster_holds() {
    let mesh = Mesh::new();
    // A trust file with a trailing comment line: appended to, never re-serialized.
    let held = format!("{}# kept\n", mesh.old.certificate().to_pem());
    let old = [Mesh::fp(&mesh.old)];
    let members = [member(
        "east",
        &bundle("east", &mesh.old, &held, T0),
        &old,
        Some("true"),
    )];
    let view = plan(&mesh.roots(), Duration::ZERO, &members, T0);
    assert_eq!(view.status.phase, RotationPhase::AddNewRoot);
    assert!(view.status.open, "{:?}", view.status);
    let route = &view.routes["east"];
    assert!(route.desired.trust_bundle_pem.starts_with(&held));
    assert!(
        route
            .desired
            .trust_bundle_pem
            .ends_with(&mesh.new.certificate().to_pem())
    );
    assert!(!route.desired.reissue);
    assert_eq!(route.issue_from, RotationRoot::Old);
}

#[test]
fn phase_two_waits_until_every_istiod_publishes_both_roots() {
    let mesh = Mesh::new();
    let both_pem = [
        mesh.old.certificate().to_pem(),
        mesh.new.certificate().to_pem(),
    ]
    .concat();
    let both = [Mesh::fp(&mesh.old), Mesh::fp(&mesh.new)];
    let old = [Mesh::fp(&mesh.old)];
    let east = bundle("east", &mesh.old, &both_pem, T0);
    let west = bundle("west", &mesh.old, &both_pem, T0);
    // west's cacerts holds both roots; its istiod still publishes the old one only.
    let lagging = [
        member("east", &east, &both, Some("true")),
        member("west", &west, &old, Some("true")),
    ];
    let view = plan(&mesh.roots(), Duration::ZERO, &lagging, T0);
    assert_eq!(view.status.phase, RotationPhase::ReissueIntermediates);
    assert_eq!(
        reasons(&view),
        [(Some("west".into()), "istiod_not_loaded".into())]
    );
    assert!(view.routes.values().all(|r| !r.desired.reissue));
    // A cluster enrolling meanwhile gets phase 1's state: both roots, issued by the old.
    assert_eq!(view.newcomer.issue_from, RotationRoot::Old);
    assert_eq!(view.newcomer.desired.trust_bundle_pem, both_pem);

    let loaded = [
        member("east", &east, &both, Some("true")),
        member("west", &west, &both, Some("true")),
    ];
    let view = plan(
        &mesh.roots(),
        Duration::ZERO,
        &loaded,
        T0 + Duration::minutes(3),
    );
    assert!(view.status.open);
    // Open: what is left is each cluster's write, named with its last report's age, so a
    // cluster whose agent went silent is seen holding the phase.
    assert_eq!(
        reasons(&view),
        [
            (Some("east".into()), "to_write".into()),
            (Some("west".into()), "to_write".into())
        ]
    );
    let message = &view.status.waiting_for[0].message;
    assert!(
        message.contains("ReissueIntermediates") && message.contains("0h 3m ago"),
        "{message}"
    );
    for route in view.routes.values() {
        assert!(route.desired.reissue);
        assert_eq!(route.issue_from, RotationRoot::New);
        assert_eq!(route.desired.trust_bundle_pem, both_pem);
    }
}

#[test]
fn phase_three_waits_for_the_hold_then_complete_for_istiod_to_drop_the_old_root() {
    let mesh = Mesh::new();
    let both_pem = [
        mesh.old.certificate().to_pem(),
        mesh.new.certificate().to_pem(),
    ]
    .concat();
    let new_pem = mesh.new.certificate().to_pem();
    let both = [Mesh::fp(&mesh.old), Mesh::fp(&mesh.new)];
    let new = [Mesh::fp(&mesh.new)];
    let issued = T0 + Duration::hours(1);
    let east = bundle("east", &mesh.new, &both_pem, issued);
    let members = [member("east", &east, &both, Some("true"))];
    let hold = Duration::hours(2);
    let during = plan(&mesh.roots(), hold, &members, issued + Duration::hours(1));
    assert_eq!(during.status.phase, RotationPhase::RemoveOldRoot);
    assert_eq!(reasons(&during), [(None, "hold".into())]);
    assert!(during.status.hold_until.is_some());
    assert_eq!(during.routes["east"].desired.trust_bundle_pem, both_pem);
    let after = plan(&mesh.roots(), hold, &members, issued + Duration::hours(3));
    assert!(after.status.open);
    assert_eq!(after.routes["east"].desired.trust_bundle_pem, new_pem);

    // Written, but istiod still publishes both: not Complete yet.
    let written = (east.0, new_pem.as_str());
    let members = [member("east", &written, &both, Some("true"))];
    let view = plan(&mesh.roots(), hold, &members, issued + Duration::hours(3));
    assert_eq!(view.status.phase, RotationPhase::RemoveOldRoot);
    assert_eq!(
        reasons(&view),
        [(Some("east".into()), "istiod_not_loaded".into())]
    );
    let members = [member("east", &written, &new, Some("true"))];
    let view = plan(&mesh.roots(), hold, &members, issued + Duration::hours(3));
    assert_eq!(view.status.phase, RotationPhase::Complete);
    assert!(view.status.open);
    assert_eq!(view.newcomer.desired.trust_bundle_pem, new_pem);
}

#[test]
fn a_cluster_that_never_reported_holds_the_rotation_and_is_named() {
    let mesh = Mesh::new();
    let old_pem = mesh.old.certificate().to_pem();
    let members = [
        mesh.on_old("east", Some("true")),
        Member {
            name: ClusterName::new("north").unwrap(),
            report: None,
            reported_at: None,
        },
    ];
    let view = plan(&mesh.roots(), Duration::ZERO, &members, T0);
    assert!(!view.status.open);
    assert_eq!(
        reasons(&view),
        [(Some("north".into()), "not_reported".into())]
    );
    assert!(!view.routes.contains_key("north"));
    assert_eq!(
        view.routes["east"].desired.trust_bundle_pem, old_pem,
        "east holds"
    );
}

#[test]
fn each_cluster_is_routed_from_what_it_holds_now_under_the_fleets_gate() {
    let mesh = Mesh::new();
    let roots = mesh.roots();
    let old_pem = mesh.old.certificate().to_pem();
    let both_pem = [old_pem.clone(), mesh.new.certificate().to_pem()].concat();
    let old = [Mesh::fp(&mesh.old)];
    let east = bundle("east", &mesh.old, &old_pem, T0);
    let gate = gate(
        &roots,
        Duration::ZERO,
        &[member("east", &east, &old, Some("true"))],
        T0,
    );
    // The gate (phase 1, open) was decided while east held the old root; east has written
    // phase 1 since: routed from what it holds now, it is told to hold that.
    let written = member("east", &(east.0, both_pem.as_str()), &old, Some("true"));
    let now = trust_in(&written.name, written.report.as_ref().unwrap()).unwrap();
    let route = route(&gate, &roots, Some(&now));
    assert_eq!(route.desired.trust_bundle_pem, both_pem);
    assert!(!route.desired.reissue);
}

#[test]
fn a_cluster_trusting_neither_root_blocks_the_rotation_by_name() {
    let mesh = Mesh::new();
    let stranger = RootParams::default().self_signed(T0).unwrap();
    let pem = stranger.certificate().to_pem();
    let members = [member(
        "east",
        &bundle("east", &stranger, &pem, T0),
        &[Mesh::fp(&stranger)],
        Some("true"),
    )];
    let view = plan(&mesh.roots(), Duration::ZERO, &members, T0);
    assert_eq!(view.status.phase, RotationPhase::Blocked);
    assert_eq!(reasons(&view), [(Some("east".into()), "blocked".into())]);
    assert!(
        view.status.waiting_for[0]
            .message
            .contains("TrustsNeitherRoot")
    );
}
