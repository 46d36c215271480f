//! What `meshtrust renew` asks for, by table: the clusters, their serials, the refusals.

use serde_json::json;
use time::macros::datetime;

use super::*;

const NOW: OffsetDateTime = datetime!(2026-12-02 16:00 UTC);

/// A MeshTrust over c1, c2, c3, where `serials` lists the clusters with an intermediate on
/// record; `extra` is merged into the object.
fn meshtrust(serials: &[(&str, &str)], extra: serde_json::Value) -> MeshTrust {
    let clusters: Vec<serde_json::Value> = ["c1", "c2", "c3"]
        .iter()
        .map(|c| json!({"name": c, "local": *c == "c1"}))
        .collect();
    let mut v = json!({
        "apiVersion": "meshtrust.io/v1alpha1", "kind": "MeshTrust",
        "metadata": {"name": "mesh", "resourceVersion": "7"},
        "spec": {
            "issuer": {"local": {"secretRef": {"name": "mesh-root", "namespace": "meshtrust-system"}}},
            "clusters": clusters,
        },
        "status": {"clusters": serials.iter().map(|(c, s)| json!({"name": c, "serial": s})).collect::<Vec<_>>()},
    });
    json_patch_merge(&mut v, extra);
    serde_json::from_value(v).unwrap()
}

fn json_patch_merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                json_patch_merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn asked(mt: &MeshTrust, which: &Which<'_>) -> Result<Vec<(String, String)>> {
    plan(mt, which, "renew-1".into(), NOW).map(|(r, _, _)| r.clusters.into_iter().collect())
}

#[test]
fn what_a_renewal_asks_for() {
    let all3 = [("c1", "01"), ("c2", "02"), ("c3", "03")];
    let c2_only = names(&["c2"]);
    let c1_c3 = names(&["c1", "c3"]);
    let pair = |c: &str, s: &str| (c.to_string(), s.to_string());
    let earlier = |c: &str, s: &str| {
        json!({"metadata": {"annotations": {RENEWAL_REQUEST_ANNOTATION:
            json!({"id": "renew-0", "requestedAt": "2026-12-02T15:00:00Z", "clusters": {c: s}}).to_string()}}})
    };
    /// (case, the MeshTrust, which clusters, what the request asks: cluster → serial).
    type Case<'a> = (&'a str, MeshTrust, Which<'a>, Vec<(String, String)>);
    let cases: Vec<Case<'_>> = vec![
        (
            "one named cluster is asked with the serial status reports",
            meshtrust(&all3, json!({})),
            Which::Named(&c2_only),
            vec![pair("c2", "02")],
        ),
        (
            "several named clusters are asked",
            meshtrust(&all3, json!({})),
            Which::Named(&c1_c3),
            vec![pair("c1", "01"), pair("c3", "03")],
        ),
        (
            "all asks every member with an intermediate",
            meshtrust(&all3, json!({})),
            Which::All,
            vec![pair("c1", "01"), pair("c2", "02"), pair("c3", "03")],
        ),
        (
            "all skips a member with no intermediate on record",
            meshtrust(&[("c1", "01"), ("c3", "03")], json!({})),
            Which::All,
            vec![pair("c1", "01"), pair("c3", "03")],
        ),
        (
            "an earlier request still pending is kept",
            meshtrust(&all3, earlier("c1", "01")),
            Which::Named(&c2_only),
            vec![pair("c1", "01"), pair("c2", "02")],
        ),
        (
            "an earlier request already carried out is dropped",
            meshtrust(&all3, earlier("c1", "00")),
            Which::Named(&c2_only),
            vec![pair("c2", "02")],
        ),
        (
            "an earlier request for a cluster no longer a member is dropped",
            meshtrust(&all3, earlier("c9", "09")),
            Which::Named(&c2_only),
            vec![pair("c2", "02")],
        ),
    ];
    for (case, mt, which, want) in cases {
        assert_eq!(asked(&mt, &which).unwrap(), want, "{case}");
    }
}

#[test]
fn a_renewal_that_cannot_be_carried_out_is_refused_naming_why() {
    let all3 = [("c1", "01"), ("c2", "02"), ("c3", "03")];
    let c9 = names(&["c9"]);
    let c2 = names(&["c2"]);
    let rotating = |phase: Option<&str>| {
        let mut extra = json!({"spec": {"rootRotation": {"newRootSecretRef": {"name": "mesh-root-2", "namespace": "meshtrust-system"}}}});
        if let Some(p) = phase {
            let clusters: Vec<serde_json::Value> = all3
                .iter()
                .map(|(c, s)| json!({"name": c, "serial": s}))
                .collect();
            extra["status"] = json!({"rotation": {"phase": p}, "clusters": clusters});
        }
        meshtrust(&all3, extra)
    };
    let cases: Vec<(&str, MeshTrust, Which<'_>, &[&str])> = vec![
        (
            "an unknown cluster is refused, listing the members",
            meshtrust(&all3, json!({})),
            Which::Named(&c9),
            &["no member cluster \"c9\"", "c1, c2, c3"],
        ),
        (
            "a cluster with no intermediate on record is refused",
            meshtrust(&[("c1", "01")], json!({})),
            Which::Named(&c2),
            &[
                "cluster c2",
                "status.clusters[c2].serial",
                "meshtrust status mesh",
            ],
        ),
        (
            "all with no intermediate anywhere is refused",
            meshtrust(&[], json!({})),
            Which::All,
            &["no member cluster", "c1, c2, c3"],
        ),
        (
            "a renewal in phase 2 of a rotation is refused, naming the phase",
            rotating(Some("ReissueIntermediates")),
            Which::All,
            &[
                "phase ReissueIntermediates",
                "meshtrust rotate status mesh",
                "Complete",
            ],
        ),
        (
            "a renewal while a blocked rotation waits is refused",
            rotating(Some("Blocked")),
            Which::Named(&c2),
            &["phase Blocked"],
        ),
        (
            "a renewal before the controller reports the rotation is refused",
            rotating(None),
            Which::Named(&c2),
            &["not started yet"],
        ),
    ];
    for (case, mt, which, needles) in cases {
        let e = asked(&mt, &which).map(|_| ()).unwrap_err().to_string();
        for n in needles {
            assert!(e.contains(n), "{case}: no `{n}` in: {e}");
        }
        assert_eq!(meshtrust_testkit::debug_text(&e), None, "{case}: {e}");
    }
    // Once the rotation is Complete, renewal is allowed again (from the new root).
    assert!(asked(&rotating(Some("Complete")), &Which::Named(&c2)).is_ok());
}

#[test]
fn a_request_id_names_the_time() {
    let id = request_id(NOW);
    assert!(id.starts_with("renew-20261202t160000z-"), "{id}");
    assert!(
        id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
        "{id}"
    );
}
