//! Root rotation, step by step over several clusters, at fixed times.

use meshtrust_ca::*;
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);
const LATER: OffsetDateTime = datetime!(2026-06-01 00:00 UTC);

struct Roots {
    old: RootCa,
    new: RootCa,
}

impl Roots {
    fn new() -> Roots {
        Roots {
            old: RootParams::default().self_signed(NOW).unwrap(),
            new: RootParams::default().self_signed(NOW).unwrap(),
        }
    }

    fn get(&self, which: RotationRoot) -> &RootCa {
        match which {
            RotationRoot::Old => &self.old,
            RotationRoot::New => &self.new,
        }
    }

    fn plan(&self, clusters: &[Cluster]) -> Result<RotationPlan, RotationBlocked> {
        let states: Vec<Option<ClusterTrust>> = clusters.iter().map(Cluster::trust).collect();
        plan_rotation(self.old.certificate(), self.new.certificate(), &states)
    }
}

struct Cluster {
    name: ClusterName,
    format: BundleFormat,
    files: Option<BundleFiles>,
}

impl Cluster {
    fn trust(&self) -> Option<ClusterTrust> {
        self.files
            .as_ref()
            .map(|f| ClusterTrust::from_bundle(self.name.clone(), f).unwrap())
    }

    fn trust_pem(&self) -> Option<Vec<u8>> {
        let files = self.files.as_ref()?;
        Some(files.get(self.format.trust_file())?.to_vec())
    }
}

fn pem(roots: &[&RootCa]) -> Vec<u8> {
    roots
        .iter()
        .map(|r| r.certificate().to_pem())
        .collect::<String>()
        .into_bytes()
}

/// A bundle for `name` whose intermediate `issuer` signs at `now`, trusting `trust_pem`
/// byte for byte.
fn issue(
    issuer: &RootCa,
    name: &ClusterName,
    format: BundleFormat,
    trust_pem: &[u8],
    now: OffsetDateTime,
) -> BundleFiles {
    let params = IntermediateParams::new(name.clone());
    let key = PrivateKey::generate(params.key_type).unwrap();
    let signed = issuer
        .sign_intermediate(&params.csr(&key).unwrap(), &params.profile(), now)
        .unwrap();
    let trust = TrustBundle::from_pem(format.trust_file(), trust_pem).unwrap();
    let bundle = CaCerts::new(
        signed.certificate,
        key,
        vec![issuer.certificate().clone()],
        trust,
    );
    let mut files = bundle.bundle_files(format);
    files.insert(format.trust_file(), trust_pem.to_vec());
    files
}

fn cluster(name: &str, format: BundleFormat, issuer: Option<&RootCa>, trust_pem: &[u8]) -> Cluster {
    let name = ClusterName::new(name).unwrap();
    let files = issuer.map(|i| issue(i, &name, format, trust_pem, NOW));
    Cluster {
        name,
        format,
        files,
    }
}

/// Carries out one write, as the controller would.
fn apply(roots: &Roots, c: &mut Cluster, write: &ClusterWrite) {
    let files = match (write.intermediate, &c.files) {
        (IntermediateAction::Keep, Some(files)) => {
            let mut files = files.clone();
            files.insert(c.format.trust_file(), write.trust_pem.clone());
            files
        }
        (IntermediateAction::Keep, None) => panic!("{}: keep, but nothing to keep", c.name),
        (IntermediateAction::Issue(r), _) => {
            issue(roots.get(r), &c.name, c.format, &write.trust_pem, LATER)
        }
    };
    c.files = Some(files);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every present cluster's bundle is accepted, they share roots pairwise and trust each
/// other's intermediates.
fn assert_mesh_works(clusters: &[Cluster], when: &str) {
    let states: Vec<ClusterTrust> = clusters.iter().filter_map(Cluster::trust).collect();
    let trusts: Vec<TrustBundle> = states.iter().map(|s| s.trust().clone()).collect();
    assert_eq!(shared_root_pairs_ok(&trusts), Ok(()), "{when}");
    assert_eq!(mutual_trust_ok(&states), Ok(()), "{when}");
    for c in clusters {
        if let Some(files) = &c.files {
            let report = verify_bundle(files, &VerifyOptions::at(LATER));
            assert!(
                report.accepted(),
                "{when}: {}: {:?}",
                c.name,
                report.findings
            );
        }
    }
}

#[test]
fn a_rotation_over_three_clusters_keeps_every_pair_talking() {
    let roots = Roots::new();
    let old = pem(&[&roots.old]);
    let mut clusters = vec![
        cluster("east", BundleFormat::Istio, Some(&roots.old), &old),
        cluster("west", BundleFormat::Istio, Some(&roots.old), &old),
        cluster("north", BundleFormat::Tls, Some(&roots.old), &old),
    ];
    assert_mesh_works(&clusters, "before the rotation");

    let mut phases: Vec<RotationPhase> = Vec::new();
    let mut writes = 0;
    loop {
        let plan = roots.plan(&clusters).unwrap();
        if let Some(&last) = phases.last() {
            let now = plan.phase;
            assert!(
                now.number() == last.number() || now.number() == last.number() + 1,
                "after write {writes} the phase went from {last} to {now}"
            );
        }
        if phases.last() != Some(&plan.phase) {
            phases.push(plan.phase);
        }
        if plan.is_finished() {
            break;
        }
        assert!(writes < 20, "the rotation does not converge: {plan:?}");
        // Each cluster's step alone, in the fleet's phase, is the whole plan's.
        for (c, whole) in clusters.iter().zip(&plan.steps) {
            let alone = plan_step(
                plan.phase,
                c.trust().as_ref(),
                roots.old.certificate(),
                roots.new.certificate(),
            );
            assert_eq!(alone.as_ref(), Ok(whole), "{} in {}", c.name, plan.phase);
        }
        // One cluster at a time, as a controller that may stop after any write.
        let (i, write) = plan.writes().next().expect("not finished, so a write");
        let before = clusters[i].trust_pem().expect("every cluster has a bundle");
        apply(&roots, &mut clusters[i], write);
        writes += 1;
        let after = clusters[i].trust_pem().unwrap();
        let when = format!("write {writes} ({}, {})", clusters[i].name, plan.phase);
        if plan.phase < RotationPhase::RemoveOldRoot {
            assert!(contains(&after, &before), "{when}: trust lost bytes");
        } else {
            assert!(contains(&before, &after), "{when}: trust gained bytes");
        }
        assert!(is_byte_superset(&after, &before), "{when}");
        assert_mesh_works(&clusters, &when);
    }

    assert_eq!(
        phases,
        [
            RotationPhase::AddNewRoot,
            RotationPhase::ReissueIntermediates,
            RotationPhase::RemoveOldRoot,
            RotationPhase::Complete
        ]
    );
    assert_eq!(writes, 9, "three writes per phase");
    for c in &clusters {
        assert_eq!(c.trust_pem().unwrap(), pem(&[&roots.new]), "{}", c.name);
        assert!(
            c.trust().unwrap().chains_to(roots.new.certificate()),
            "{}",
            c.name
        );
    }
}

#[test]
fn each_phase_writes_what_it_promises() {
    let roots = Roots::new();
    let (old, new) = (pem(&[&roots.old]), pem(&[&roots.new]));
    let both = pem(&[&roots.old, &roots.new]);
    let keep = IntermediateAction::Keep;
    let by_new = IntermediateAction::Issue(RotationRoot::New);
    let cases = [
        (
            "phase 1 appends the new root and keeps the intermediate",
            cluster("c1", BundleFormat::Istio, Some(&roots.old), &old),
            RotationPhase::AddNewRoot,
            Some((both.clone(), keep)),
        ),
        (
            "phase 2 keeps the trust bytes and reissues from the new root",
            cluster("c1", BundleFormat::Istio, Some(&roots.old), &both),
            RotationPhase::ReissueIntermediates,
            Some((both.clone(), by_new)),
        ),
        (
            "phase 3 leaves the new root alone and keeps the intermediate",
            cluster("c1", BundleFormat::Tls, Some(&roots.new), &both),
            RotationPhase::RemoveOldRoot,
            Some((new.clone(), keep)),
        ),
        (
            "a rotated cluster is complete",
            cluster("c1", BundleFormat::Istio, Some(&roots.new), &new),
            RotationPhase::Complete,
            None,
        ),
    ];
    for (case, c, phase, write) in cases {
        let plan = roots.plan(&[c]).unwrap();
        assert_eq!(plan.phase, phase, "{case}");
        let expected = match write {
            Some((trust_pem, intermediate)) => ClusterStep::Write(ClusterWrite {
                trust_pem,
                intermediate,
            }),
            None => ClusterStep::Unchanged,
        };
        assert_eq!(plan.steps, [expected], "{case}");
    }
}

#[test]
fn a_cluster_without_cacerts_gets_a_bundle_for_the_current_phase() {
    let roots = Roots::new();
    let (old, new) = (pem(&[&roots.old]), pem(&[&roots.new]));
    let both = pem(&[&roots.old, &roots.new]);
    let cases = [
        (
            "in phase 1 it trusts both and is issued by the old root",
            Some(cluster("c1", BundleFormat::Istio, Some(&roots.old), &old)),
            RotationPhase::AddNewRoot,
            both.clone(),
            RotationRoot::Old,
        ),
        (
            "in phase 2 it trusts both and is issued by the new root",
            Some(cluster("c1", BundleFormat::Istio, Some(&roots.old), &both)),
            RotationPhase::ReissueIntermediates,
            both.clone(),
            RotationRoot::New,
        ),
        (
            "in phase 3 it trusts the new root only",
            Some(cluster("c1", BundleFormat::Istio, Some(&roots.new), &both)),
            RotationPhase::RemoveOldRoot,
            new.clone(),
            RotationRoot::New,
        ),
        (
            "after the rotation it trusts the new root only",
            Some(cluster("c1", BundleFormat::Istio, Some(&roots.new), &new)),
            RotationPhase::Complete,
            new.clone(),
            RotationRoot::New,
        ),
        (
            "with no cluster holding anything, it starts from the new root",
            None,
            RotationPhase::Complete,
            new.clone(),
            RotationRoot::New,
        ),
    ];
    for (case, existing, phase, trust_pem, issuer) in cases {
        let mut clusters: Vec<Cluster> = existing.into_iter().collect();
        clusters.push(cluster("fresh", BundleFormat::Istio, None, b""));
        let plan = roots.plan(&clusters).unwrap();
        assert_eq!(plan.phase, phase, "{case}");
        let writes: Vec<(usize, ClusterWrite)> =
            plan.writes().map(|(i, w)| (i, w.clone())).collect();
        let (i, write) = writes.last().expect("the fresh cluster is written");
        assert_eq!(*i, clusters.len() - 1, "{case}");
        assert_eq!(write.trust_pem, trust_pem, "{case}");
        assert_eq!(
            write.intermediate,
            IntermediateAction::Issue(issuer),
            "{case}"
        );
        apply(&roots, &mut clusters[*i], write);
        assert_mesh_works(&clusters, case);
        assert!(!plan.is_finished(), "{case}");
    }
}

#[test]
fn trust_files_are_extended_and_cut_byte_for_byte() {
    // A trust file written by another tool: CRLF line endings and no final newline.
    let roots = Roots::new();
    let crlf = |p: Vec<u8>| String::from_utf8(p).unwrap().replace('\n', "\r\n");
    let old = crlf(pem(&[&roots.old]));
    let old = old.trim_end().as_bytes().to_vec();
    let c = cluster("c1", BundleFormat::Istio, Some(&roots.old), &old);
    let plan = roots.plan(&[c]).unwrap();
    let (_, write) = plan.writes().next().unwrap();
    assert!(
        write.trust_pem.starts_with(&old),
        "phase 1 keeps the held bytes first"
    );
    assert_eq!(
        TrustBundle::from_pem("root-cert.pem", &write.trust_pem)
            .unwrap()
            .roots(),
        [
            roots.old.certificate().clone(),
            roots.new.certificate().clone()
        ]
    );

    let both = crlf(pem(&[&roots.old, &roots.new])).into_bytes();
    let c = cluster("c1", BundleFormat::Istio, Some(&roots.new), &both);
    let plan = roots.plan(&[c]).unwrap();
    let (_, write) = plan.writes().next().unwrap();
    assert_eq!(plan.phase, RotationPhase::RemoveOldRoot);
    assert_eq!(write.trust_pem, crlf(pem(&[&roots.new])).into_bytes());
    assert!(
        contains(&both, &write.trust_pem),
        "phase 3 cuts the held bytes"
    );
}

#[test]
fn states_the_rotation_does_not_guess_its_way_out_of() {
    let roots = Roots::new();
    let stranger = RootParams::default().self_signed(NOW).unwrap();
    let (old, new) = (pem(&[&roots.old]), pem(&[&roots.new]));
    let both = pem(&[&roots.old, &roots.new]);
    let istio = BundleFormat::Istio;
    let cases = [
        (
            "a cluster trusting neither root",
            vec![
                cluster("c1", istio, Some(&roots.old), &old),
                cluster("c2", istio, Some(&stranger), &pem(&[&stranger])),
            ],
            Some(1),
            BlockReason::TrustsNeitherRoot,
            "c2/root-cert.pem trusts neither the old root",
        ),
        (
            "a cluster issued by neither root",
            vec![cluster(
                "c1",
                istio,
                Some(&stranger),
                &pem(&[&stranger, &roots.old]),
            )],
            Some(0),
            BlockReason::IssuedByNeitherRoot,
            "c1/ca-cert.pem (O=Istio, CN=Intermediate CA, L=c1) is issued by neither",
        ),
        (
            "a cluster issued by the new root it does not trust",
            vec![cluster("c1", istio, Some(&roots.new), &old)],
            Some(0),
            BlockReason::DoesNotTrustItsIssuer,
            "c1/ca-cert.pem is issued by the new root, which root-cert.pem does not hold",
        ),
        (
            "a cluster that dropped the old root before the others were reissued",
            vec![
                cluster("c1", istio, Some(&roots.new), &new),
                cluster("c2", istio, Some(&roots.old), &both),
            ],
            Some(0),
            BlockReason::OldRootRemovedEarly,
            "c1/root-cert.pem no longer holds the old root while c2/ca-cert.pem is still issued by it",
        ),
        (
            "an intermediate issued by the new root before every cluster trusts it",
            vec![
                cluster("c1", istio, Some(&roots.old), &old),
                cluster("c2", istio, Some(&roots.new), &both),
            ],
            Some(1),
            BlockReason::NewRootUsedEarly,
            "c2/ca-cert.pem is already issued by the new root while c1/root-cert.pem does not trust it yet",
        ),
    ];
    for (case, clusters, index, reason, needle) in cases {
        let blocked = roots.plan(&clusters).unwrap_err();
        assert_eq!(blocked.cluster, index, "{case}");
        assert_eq!(blocked.reason, reason, "{case}");
        assert!(
            blocked.message.contains(needle),
            "{case}: {}",
            blocked.message
        );
        assert!(blocked.to_string().starts_with(reason.as_str()), "{case}");
    }
    let same = plan_rotation(roots.old.certificate(), roots.old.certificate(), &[]).unwrap_err();
    assert_eq!((same.cluster, same.reason), (None, BlockReason::SameRoot));
}

#[test]
fn pairwise_checks_name_the_first_broken_pair() {
    let roots = Roots::new();
    let (old, new) = (roots.old.trust_bundle(), roots.new.trust_bundle());
    let both = old.with_root(roots.new.certificate().clone());
    let cases = [
        ("no clusters share nothing wrong", vec![], Ok(())),
        (
            "old and old+new share the old root",
            vec![old.clone(), both.clone()],
            Ok(()),
        ),
        (
            "old and new share nothing",
            vec![old.clone(), new.clone()],
            Err((0, 1)),
        ),
        (
            "the first pair without a common root is named",
            vec![both.clone(), new.clone(), old.clone()],
            Err((1, 2)),
        ),
    ];
    for (case, trusts, expected) in cases {
        assert_eq!(shared_root_pairs_ok(&trusts), expected, "{case}");
    }

    // Sharing a root is not enough: c1 trusts the old root only, c2 both but is issued by
    // the new one, so c1 cannot verify c2's workloads.
    let (old_pem, both_pem) = (pem(&[&roots.old]), pem(&[&roots.old, &roots.new]));
    let c1 = cluster("c1", BundleFormat::Istio, Some(&roots.old), &old_pem);
    let c2 = cluster("c2", BundleFormat::Istio, Some(&roots.new), &both_pem);
    let states = [c1.trust().unwrap(), c2.trust().unwrap()];
    let trusts = [states[0].trust().clone(), states[1].trust().clone()];
    assert_eq!(shared_root_pairs_ok(&trusts), Ok(()));
    assert_eq!(mutual_trust_ok(&states), Err((0, 1)));
}

#[test]
fn phases_have_stable_names_and_numbers() {
    let cases = [
        (RotationPhase::AddNewRoot, "AddNewRoot", 1),
        (
            RotationPhase::ReissueIntermediates,
            "ReissueIntermediates",
            2,
        ),
        (RotationPhase::RemoveOldRoot, "RemoveOldRoot", 3),
        (RotationPhase::Complete, "Complete", 4),
    ];
    for (phase, name, number) in cases {
        assert_eq!((phase.as_str(), phase.number()), (name, number));
        assert_eq!(phase.to_string(), name);
        assert_eq!(serde_json::to_value(phase).unwrap(), name);
    }
}

#[test]
fn the_old_root_is_held_from_the_newest_intermediates_issue_time() {
    let roots = Roots::new();
    let both = pem(&[&roots.old, &roots.new]);
    let earlier = cluster("east", BundleFormat::Istio, Some(&roots.new), &both);
    let mut newer = cluster("west", BundleFormat::Istio, Some(&roots.new), &both);
    newer.files = Some(issue(
        &roots.new,
        &newer.name,
        BundleFormat::Istio,
        &both,
        LATER,
    ));
    let states = vec![earlier.trust(), None, newer.trust()];
    let hold = time::Duration::hours(24);
    // Issued at LATER (notBefore backdated five minutes): held until LATER + 24h.
    assert_eq!(
        old_root_hold_until(&states, hold),
        Some(LATER + hold),
        "the newest intermediate sets the end of the hold"
    );
    assert_eq!(
        old_root_hold_until(&[None, None], hold),
        None,
        "no bundle, nothing to hold"
    );
}
