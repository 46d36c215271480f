//! End to end: the operator verbs — `meshtrust renew` and `meshtrust rotate start|status` —
//! run from a workstation against the management cluster of the loopback harness, with
//! `meshtrust controller` processes carrying them out (the fleet of `controller.rs`, its
//! clock moved by the offset file). Every bundle the tests see is checked by openssl and
//! rustls-webpki, every root by openssl.

// The suite waits on real processes: wall-clock deadlines are the point here.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::Command;

use meshtrust_testkit::{
    assert_bundle_independently_valid, debug_text, openssl, openssl_key_matches_cert, text,
};
use serde_json::{Value, json};

#[allow(dead_code)] // Each suite uses part of the fleet.
mod fleet;
use fleet::*;

/// The renewal record of `cluster` in `mt`'s status.
fn record<'a>(mt: &'a Value, cluster: &str) -> &'a Value {
    &cluster_status(mt, cluster)["renewalRequest"]
}

/// A new root made by the CLI in the fleet's work directory.
fn make_root(fleet: &Fleet, name: &str, common_name: &str) -> PathBuf {
    let dir = fleet.work.path().join(name);
    let out = Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args(["root", "create", "--out", &dir.display().to_string()])
        .args(["--common-name", common_name])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    dir
}

/// openssl accepts `dir`'s root as a self-signed CA whose key matches.
fn assert_root_independently_valid(dir: &Path) {
    let cert = dir.join("root-cert.pem").display().to_string();
    let (ok, out) = openssl(&["verify", "-x509_strict", "-CAfile", &cert, &cert]);
    assert!(ok, "openssl does not accept the root {cert}: {out}");
    assert!(openssl_key_matches_cert(
        &dir.join("root-key.pem"),
        &dir.join("root-cert.pem")
    ));
}

/// Writes the root Secret `name` of the management cluster into a directory.
fn root_dir(fleet: &Fleet, name: &str) -> PathBuf {
    let s = fleet
        .mgmt()
        .get("v1", "Secret", Some(NS), name)
        .expect("root Secret");
    let dir = fleet
        .work
        .path()
        .join(format!("secret-{name}-{}", fastrand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["root-cert.pem", "root-key.pem"] {
        std::fs::write(dir.join(f), unb64(&s["data"][f])).unwrap();
    }
    dir
}

/// Events whose reason is `reason`, as (note, reportingInstance).
fn events_with(fleet: &Fleet, reason: &str) -> Vec<String> {
    events(fleet)
        .iter()
        .filter(|e| e["reason"] == reason)
        .map(|e| {
            e["note"]
                .as_str()
                .or(e["message"].as_str())
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

/// Waits until replica `identity` has started `n` more reconciles than now.
fn wait_reconciles(fleet: &Fleet, identity: &str, n: u64) {
    let seen = fleet.reconciles(identity);
    fleet.wait_until(&format!("{n} more reconciles by {identity}"), || {
        fleet.reconciles(identity) >= seen + n
    });
}

#[test]
fn renew_one_cluster_reissues_it_alone_once_and_records_it() {
    let mut fleet = Fleet::new();
    fleet.start("replica-a");
    fleet.wait_for("every cluster Ready", all_ready);
    let root = root_fingerprint(&fleet, "mesh-root");
    let before = fleet.serials();
    let writes: Vec<usize> = MEMBERS.iter().map(|c| fleet.cacerts_writes(c)).collect();

    let out = fleet.cli(&["renew", "mesh", "--cluster", "c2"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("c2") && said.contains(&before[1]), "{said}");
    let request = fleet.meshtrust()["metadata"]["annotations"]["meshtrust.io/renewal-request"]
        .as_str()
        .map(|s| serde_json::from_str::<Value>(s).unwrap())
        .expect("the request annotation");
    assert_eq!(request["clusters"], json!({"c2": before[1]}), "{request}");
    let id = request["id"].as_str().unwrap().to_string();

    let mt = fleet.wait_for("c2 renewed on request", |mt| {
        record(mt, "c2")["id"] == id.as_str()
    });
    let after = fleet.serials();
    assert_ne!(after[1], before[1], "c2 got a new intermediate");
    assert_eq!(
        (&after[0], &after[2]),
        (&before[0], &before[2]),
        "c1 and c3 are untouched"
    );
    let r = record(&mt, "c2");
    assert_eq!(r["replacedSerial"], before[1].as_str(), "{r}");
    assert_eq!(r["serial"], after[1].as_str(), "{r}");
    assert_eq!(r["reissued"], true, "{r}");
    assert!(
        record(&mt, "c1").is_null() && record(&mt, "c3").is_null(),
        "{mt}"
    );
    let issuing = condition(&cluster_status(&mt, "c2")["conditions"], "Issuing");
    assert!(
        issuing["message"]
            .as_str()
            .unwrap_or("")
            .contains("RenewalRequested"),
        "{issuing}"
    );
    // The new intermediate chains to the signing root, as openssl and webpki check.
    let s = cluster_status(&mt, "c2");
    assert_eq!(
        (&s["issuingRoot"], &s["trustedRoots"]),
        (&json!(root), &json!([root])),
        "{s}"
    );
    assert_bundle_independently_valid(&fleet.bundle_dir("c2"));
    let notes = events_with(&fleet, "RenewalRequested");
    assert!(
        notes
            .iter()
            .any(|n| n.contains("cluster c2") && n.contains(&id)),
        "{notes:?}"
    );
    let metrics = fleet.metrics("replica-a");
    assert!(
        metrics.contains("meshtrust_intermediates_issued_total{reason=\"RenewalRequested\"} 1"),
        "{metrics}"
    );

    // Carried out once: more rounds, then a restarted controller, write nothing more.
    wait_reconciles(&fleet, "replica-a", 3);
    fleet.stop("replica-a");
    fleet.start("replica-b");
    wait_reconciles(&fleet, "replica-b", 3);
    for (i, c) in MEMBERS.iter().enumerate() {
        let want = writes[i] + usize::from(*c == "c2");
        assert_eq!(fleet.cacerts_writes(c), want, "{c}: cacerts writes");
    }
    assert_eq!(fleet.serials(), after);
    assert_eq!(record(&fleet.meshtrust(), "c2")["id"], id.as_str());
}

/// `meshtrust status -o json` rows, as values.
fn status_rows(fleet: &Fleet) -> Vec<Value> {
    let out = fleet.cli(&["status", "-o", "json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

#[test]
fn status_shows_a_renewal_request_until_the_controller_carries_it_out() {
    let mut fleet = Fleet::new();
    fleet.start("replica-a");
    fleet.wait_for("every cluster Ready", all_ready);
    // With no controller running, the request stays pending.
    fleet.stop("replica-a");
    let before = fleet.serials();
    let out = fleet.cli(&["renew", "mesh", "--cluster", "c2"]);
    assert!(out.status.success(), "{}", text(&out));
    let id = serde_json::from_str::<Value>(
        fleet.meshtrust()["metadata"]["annotations"]["meshtrust.io/renewal-request"]
            .as_str()
            .unwrap(),
    )
    .unwrap()["id"]
        .clone();
    let rows = status_rows(&fleet);
    for r in &rows {
        let expected = if r["cluster"] == "c2" {
            id.clone()
        } else {
            Value::Null
        };
        assert_eq!(
            r.get("renewal_requested").cloned().unwrap_or(Value::Null),
            expected,
            "{r}"
        );
    }
    let table = text(&fleet.cli(&["status"]));
    let c2 = table
        .lines()
        .find(|l| l.contains(" c2 "))
        .unwrap_or_default();
    assert!(c2.contains("requested"), "{table}");

    fleet.start("replica-b");
    fleet.wait_for("c2 renewed on request", |mt| record(mt, "c2")["id"] == id);
    assert_ne!(fleet.serials()[1], before[1]);
    assert!(
        status_rows(&fleet)
            .iter()
            .all(|r| r.get("renewal_requested").is_none()),
        "carried out, no longer pending"
    );
}

#[test]
fn renew_all_reissues_every_cluster_and_waits_for_it() {
    let mut fleet = Fleet::new();
    fleet.start("replica-a");
    fleet.wait_for("every cluster Ready", all_ready);
    let before = fleet.serials();
    let out = fleet.cli(&["renew", "mesh", "--all", "--wait", "60s", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(v["carried_out"], json!(MEMBERS), "{v}");
    let mt = fleet.meshtrust();
    let after = fleet.serials();
    for (i, c) in MEMBERS.iter().enumerate() {
        assert_eq!(v["clusters"][c], before[i].as_str(), "{v}");
        assert_ne!(after[i], before[i], "{c}");
        assert_eq!(record(&mt, c)["id"], v["id"], "{c}");
        assert_bundle_independently_valid(&fleet.bundle_dir(c));
    }
    // The recorder folds repeated Events into one with a series count, as Kubernetes' do.
    let told: u64 = events(&fleet)
        .iter()
        .filter(|e| e["reason"] == "RenewalRequested")
        .map(|e| e["series"]["count"].as_u64().unwrap_or(1))
        .sum();
    assert_eq!(told, 3, "{:?}", events(&fleet));
}

#[test]
fn renew_refuses_unknown_clusters_bad_flags_and_rotations() {
    let mut fleet = Fleet::new();
    fleet.start("replica-a");
    fleet.wait_for("every cluster Ready", all_ready);
    let annotation = |f: &Fleet| {
        f.meshtrust()["metadata"]["annotations"]["meshtrust.io/renewal-request"].clone()
    };

    let out = fleet.cli(&["renew", "mesh", "--cluster", "c9"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let e = text(&out);
    assert!(
        e.contains("no member cluster \"c9\"") && e.contains("c1, c2, c3"),
        "{e}"
    );
    assert_eq!(debug_text(&e), None, "{e}");
    for args in [
        &["renew", "mesh"][..],
        &["renew", "mesh", "--all", "--cluster", "c1"],
    ] {
        let out = fleet.cli(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let e = text(&out);
        assert!(
            e.contains("--cluster") && e.contains("--all"),
            "{args:?}: {e}"
        );
    }
    let out = fleet.cli(&["renew", "nomesh", "--all"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("MeshTrust nomesh does not exist"),
        "{}",
        text(&out)
    );
    assert!(
        annotation(&fleet).is_null(),
        "a refused renewal writes nothing"
    );

    // A request annotation that does not parse (written by hand) renews nothing and is
    // reported in a Warning Event.
    let serials = fleet.serials();
    let mut mt = fleet.meshtrust();
    mt["metadata"]["annotations"] = json!({"meshtrust.io/renewal-request": "c1, please"});
    fleet.mgmt().seed(mt);
    fleet.wait_until("a Warning about the annotation", || {
        events(&fleet).iter().any(|e| {
            e["reason"] == "RenewalRequested"
                && e["type"] == "Warning"
                && e["note"]
                    .as_str()
                    .is_some_and(|n| n.contains("is not a renewal request"))
        })
    });
    wait_reconciles(&fleet, "replica-a", 2);
    assert_eq!(fleet.serials(), serials, "nothing was reissued");

    // During a rotation (here stopped before its first step: the new root's Secret is
    // missing), renewal is refused naming the rotation.
    let mut mt = fleet.meshtrust();
    mt["metadata"]["annotations"] = json!({});
    mt["spec"]["rootRotation"] = json!({"newRootSecretRef": {"name": "missing", "namespace": NS}});
    mt["status"]["rotation"] = json!({"phase": "AddNewRoot"});
    fleet.stop("replica-a");
    fleet.mgmt().seed(mt);
    let out = fleet.cli(&["renew", "mesh", "--cluster", "c1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let e = text(&out);
    assert!(
        e.contains("root rotation (phase AddNewRoot)")
            && e.contains("meshtrust rotate status mesh"),
        "{e}"
    );
    assert!(
        annotation(&fleet).is_null(),
        "a refused renewal writes nothing"
    );
}

#[test]
fn rotate_start_hands_the_new_root_over_and_the_rotation_completes() {
    let mut fleet = Fleet::new();
    fleet.start("replica-a");
    fleet.wait_for("every cluster Ready", all_ready);
    fleet.play_istiod();
    let dir = make_root(&fleet, "new-root", "Root CA 2");
    assert_root_independently_valid(&dir);
    let old_root = root_fingerprint(&fleet, "mesh-root");

    let out = fleet.cli(&[
        "rotate",
        "start",
        "mesh",
        "--new-root",
        &dir.display().to_string(),
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(v["secret"], "created", "{v}");
    let secret = v["new_root_secret"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    assert!(secret.starts_with("mesh-root-"), "{secret}");
    // The Secret holds the two files byte for byte, as `kubectl create secret` would.
    let s = fleet
        .mgmt()
        .get("v1", "Secret", Some(NS), &secret)
        .expect("the new root's Secret");
    assert_eq!(s["type"], "Opaque");
    for f in ["root-cert.pem", "root-key.pem"] {
        assert_eq!(
            unb64(&s["data"][f]),
            std::fs::read(dir.join(f)).unwrap(),
            "{f}"
        );
    }
    assert_root_independently_valid(&root_dir(&fleet, &secret));
    let new_root = root_fingerprint(&fleet, &secret);
    assert_eq!(
        fleet.meshtrust()["spec"]["rootRotation"]["newRootSecretRef"],
        json!({"name": secret, "namespace": NS})
    );

    // At the hold: `rotate status` shows the phase, what it waits for, and every cluster
    // issued by the new root, trusting both, at the phase's stage.
    fleet.wait_for("the hold before phase 3", |mt| {
        mt["status"]["rotation"]["phase"] == "HoldingOldRoot"
    });
    let out = fleet.cli(&["rotate", "status", "mesh", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let st: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&st["phase"], &st["old_root"], &st["new_root"]),
        (&json!("HoldingOldRoot"), &json!(old_root), &json!(new_root)),
        "{st}"
    );
    assert!(
        st["waiting_for"]
            .as_str()
            .unwrap_or("")
            .contains("holdBeforeRemovingOldRoot"),
        "{st}"
    );
    for c in st["clusters"].as_array().unwrap() {
        assert_eq!(
            (&c["issued_by"], &c["trusts"], &c["stage"], &c["reached"]),
            (
                &json!("new"),
                &json!(["old", "new"]),
                &json!("both-issued-by-new"),
                &json!(true)
            ),
            "{c}"
        );
    }
    let out = fleet.cli(&["rotate", "status", "mesh"]);
    let t = text(&out);
    assert!(
        t.contains("phase HoldingOldRoot") && t.contains("waiting for"),
        "{t}"
    );
    for c in MEMBERS {
        let row = t
            .lines()
            .find(|l| l.split_whitespace().next() == Some(c))
            .unwrap_or_else(|| panic!("no row for {c}:\n{t}"));
        assert!(
            row.contains("new") && row.contains("old+new") && row.contains("yes"),
            "{row}"
        );
    }
    for c in MEMBERS {
        assert_bundle_independently_valid(&fleet.bundle_dir(c));
    }

    // One rotation at a time; and no renewal on request in the middle of one.
    let other = make_root(&fleet, "other-root", "Root CA 3");
    let out = fleet.cli(&[
        "rotate",
        "start",
        "mesh",
        "--new-root",
        &other.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("already rotating its root (phase HoldingOldRoot)"),
        "{}",
        text(&out)
    );
    let out = fleet.cli(&["renew", "mesh", "--all"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("phase HoldingOldRoot"),
        "{}",
        text(&out)
    );

    let out = fleet.cli(&["rotate", "finish", "mesh"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("is in phase HoldingOldRoot, not Complete"),
        "{}",
        text(&out)
    );
    assert!(fleet.meshtrust()["spec"]["rootRotation"].is_object());

    fleet.advance_to(2);
    fleet.wait_rotated_to(&new_root);
    let st: Value = serde_json::from_slice(
        &fleet
            .cli(&["rotate", "status", "mesh", "-o", "json"])
            .stdout,
    )
    .unwrap();
    assert!(
        st["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["stage"] == "new-only" && c["reached"] == true),
        "{st}"
    );

    // Closing it: the issuer becomes the new root's Secret and the rotation goes, in one
    // patch, and the controller reissues nothing for it.
    let new_secret = fleet.meshtrust()["spec"]["rootRotation"]["newRootSecretRef"].clone();
    let serials = fleet.serials();
    let out = fleet.cli(&["rotate", "finish", "mesh", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let finished: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        finished["issuer_secret"],
        format!(
            "{}/{}",
            new_secret["namespace"].as_str().unwrap(),
            new_secret["name"].as_str().unwrap()
        ),
        "{finished}"
    );
    let spec = fleet.meshtrust()["spec"].clone();
    assert_eq!(spec["issuer"]["local"]["secretRef"], new_secret, "{spec}");
    assert!(
        spec.get("rootRotation").is_none_or(Value::is_null),
        "{spec}"
    );
    wait_reconciles(&fleet, "replica-a", 3);
    let mt = fleet.wait_for("Ready after the rotation is closed", all_ready);
    assert!(mt["status"]["rotation"].is_null(), "{}", mt["status"]);
    assert_eq!(
        fleet.serials(),
        serials,
        "closing the rotation reissued nothing"
    );
    let out = fleet.cli(&["rotate", "finish", "mesh"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("has no root rotation"),
        "{}",
        text(&out)
    );

    // Once Complete, a requested renewal issues from the new root. (The clock goes back to
    // real time first, so that openssl, on the real clock, sees the new intermediate valid.)
    fleet.advance_to(0);
    let out = fleet.cli(&["renew", "mesh", "--cluster", "c1", "--wait", "60s"]);
    assert!(out.status.success(), "{}", text(&out));
    let s = cluster_status(&fleet.meshtrust(), "c1").clone();
    assert_eq!(s["issuingRoot"], new_root.as_str(), "{s}");
    assert_bundle_independently_valid(&fleet.bundle_dir("c1"));
}

#[test]
fn rotate_start_refuses_bad_roots_the_current_root_and_foreign_secrets() {
    let fleet = Fleet::new();
    // The current root, in the issuer's Secret (no controller runs: refusals touch nothing).
    let current = make_root(&fleet, "current", "Root CA");
    let read = |d: &Path, f: &str| b64(&std::fs::read_to_string(d.join(f)).unwrap());
    fleet.mgmt().seed(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mesh-root", "namespace": NS},
        "data": {"root-cert.pem": read(&current, "root-cert.pem"), "root-key.pem": read(&current, "root-key.pem")}
    }));
    let start = |dir: &Path, extra: &[&str]| {
        let mut args = vec!["rotate", "start", "mesh"];
        let d = dir.display().to_string();
        args.extend(["--new-root", d.as_str()]);
        args.extend(extra);
        fleet.cli(&args)
    };
    let refused = |out: std::process::Output, needles: &[&str]| {
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let e = text(&out);
        for n in needles {
            assert!(e.contains(n), "no `{n}` in: {e}");
        }
        assert_eq!(debug_text(&e), None, "{e}");
    };
    let new = make_root(&fleet, "new", "Root CA 2");
    assert_root_independently_valid(&new);

    refused(
        start(&fleet.work.path().join("nowhere"), &[]),
        &["root-cert.pem", "meshtrust root create"],
    );
    // A key that belongs to another root.
    let mismatched = fleet.work.path().join("mismatched");
    std::fs::create_dir_all(&mismatched).unwrap();
    std::fs::copy(new.join("root-cert.pem"), mismatched.join("root-cert.pem")).unwrap();
    std::fs::copy(
        current.join("root-key.pem"),
        mismatched.join("root-key.pem"),
    )
    .unwrap();
    refused(
        start(&mismatched, &[]),
        &["root-key.pem", "does not match", "meshtrust root create"],
    );
    // A self-signed certificate that is not a CA (made by openssl).
    let leaf = fleet.work.path().join("not-a-ca");
    std::fs::create_dir_all(&leaf).unwrap();
    let (ok, out) = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &leaf.join("root-key.pem").display().to_string(),
        "-out",
        &leaf.join("root-cert.pem").display().to_string(),
        "-subj",
        "/CN=not a CA",
        "-days",
        "30",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
    ]);
    assert!(ok, "{out}");
    refused(
        start(&leaf, &[]),
        &["root-cert.pem", "CA:TRUE", "meshtrust root create"],
    );
    refused(
        start(&current, &[]),
        &["already uses", "Secret meshtrust-system/mesh-root"],
    );

    // A Secret of that name holding something else is never overwritten without --force.
    fleet.mgmt().seed(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mesh-root-2", "namespace": NS},
        "data": {"root-cert.pem": b64("not a root"), "other": b64("x")}
    }));
    let held = fleet
        .mgmt()
        .get("v1", "Secret", Some(NS), "mesh-root-2")
        .unwrap();
    refused(
        start(&new, &["--secret", "mesh-root-2"]),
        &["mesh-root-2 already exists", "--force"],
    );
    assert_eq!(
        fleet
            .mgmt()
            .get("v1", "Secret", Some(NS), "mesh-root-2")
            .unwrap()["data"],
        held["data"]
    );
    assert!(
        fleet.meshtrust()["spec"]["rootRotation"].is_null(),
        "nothing set"
    );
    refused(
        start(&new, &["--secret", "mesh-root"]),
        &["current root's", "--secret"],
    );

    let out = start(
        &new,
        &["--secret", "mesh-root-2", "--force", "--hold", "1h"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("replaced"), "{}", text(&out));
    assert_root_independently_valid(&root_dir(&fleet, "mesh-root-2"));
    let rotation = &fleet.meshtrust()["spec"]["rootRotation"];
    assert_eq!(
        rotation["newRootSecretRef"]["name"], "mesh-root-2",
        "{rotation}"
    );
    assert_eq!(rotation["holdBeforeRemovingOldRoot"], "1h", "{rotation}");
    // …and a second start is refused while this one is in progress.
    let third = make_root(&fleet, "third", "Root CA 3");
    refused(start(&third, &[]), &["already rotating its root"]);
}
