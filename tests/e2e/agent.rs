//! End to end: `meshtrust agent` processes, one per member cluster of the loopback
//! multi-cluster API server, enrolling with a `meshtrust serve` over real TLS, as they would
//! run in-cluster (here each reaches its cluster through a kubeconfig context).
//!
//! Every `cacerts` an agent writes is checked by openssl, rustls-webpki and `meshtrust
//! verify`. Time moves only through the clock offset file the service and the agents share
//! (test-clock builds); waits are for "eventually" conditions under a generous timeout.
#![allow(clippy::disallowed_methods)] // Tests poll with the wall clock.

#[path = "service/harness.rs"]
#[allow(dead_code)] // This suite uses part of the harness.
mod harness;
#[path = "service/sa_issuer.rs"]
#[allow(dead_code)] // Each suite uses part of the issuer.
mod sa_issuer;

#[path = "agent/fleet.rs"]
mod fleet;

use std::process::Command;
use std::time::Duration;

use fleet::*;
use meshtrust_testkit::apiserver::{Fault, FaultRule};
use meshtrust_testkit::{assert_bundle_independently_valid, export_secret, text};
use serde_json::{Value, json};

/// The audit log's successful enrollments.
fn enrollments(fleet: &Fleet) -> Vec<Value> {
    fleet
        .setup
        .audit()
        .into_iter()
        .filter(|l| l["action"] == "enroll" && l["result"] == "ok")
        .collect()
}

#[test]
fn three_agents_enroll_their_clusters_from_one_root_and_no_key_reaches_the_service() {
    let fleet = Fleet::new(&["c1", "c2", "c3"]);
    let agents: Vec<Agent> = ["c1", "c2", "c3"]
        .iter()
        .map(|c| fleet.agent(c, &[]))
        .collect();
    let mut anchors = Vec::new();
    for name in ["c1", "c2", "c3"] {
        let secret = fleet.written(name, "");
        assert_eq!(
            secret["metadata"]["labels"]["app.kubernetes.io/managed-by"], "meshtrust",
            "{name}"
        );
        anchors.push(fleet.verified(name));
        // The service lists the serial the cluster holds.
        assert_eq!(
            fleet.entry(name)["serial"].as_str(),
            Some(serial(&secret).as_str())
        );
    }
    assert!(!anchors[0].is_empty());
    assert!(
        anchors.iter().all(|a| *a == anchors[0]),
        "one root: {anchors:?}"
    );
    // No intermediate key ever reached the service: not in any request it received (its
    // request log holds every body), its audit log, its own log, nor printed by an agent.
    let audit = std::fs::read_to_string(fleet.setup.path("audit.log")).unwrap();
    let service_log = fleet.service.as_ref().unwrap().log();
    let requests = std::fs::read_to_string(fleet.setup.path("requests.log")).unwrap();
    let lines: Vec<Value> = requests
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for route in ["/enroll", "/report"] {
        assert!(
            lines
                .iter()
                .any(|l| l["path"].as_str().unwrap().ends_with(route)
                    && l["status"] == 200
                    && !l["body"].as_str().unwrap().is_empty()),
            "the request log holds the {route} bodies"
        );
    }
    assert!(
        !requests.contains("mtenroll_"),
        "no credential in the request log"
    );
    assert!(!requests.contains("PRIVATE KEY"), "no private key sent");
    for (name, agent) in ["c1", "c2", "c3"].iter().zip(&agents) {
        let key = decoded(&cacerts(&fleet.cluster(name)).unwrap(), "ca-key.pem");
        let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(body.len() > 40, "{name}: a key");
        for (what, text) in [
            ("request log", &requests),
            ("audit log", &audit),
            ("service log", &service_log),
        ] {
            assert!(!text.contains(&body[..40]), "{name}'s key in the {what}");
        }
        assert!(
            !agent.log().contains(&body[..40]),
            "{name}'s key in its agent's log"
        );
    }
    // The audit log has one enrollment per cluster, by token.
    let enrolled = enrollments(&fleet);
    assert_eq!(enrolled.len(), 3, "{enrolled:?}");
    // Metrics: leading, reachable, and time left until the intermediate expires.
    for agent in &agents {
        eventually("the agent's metrics", 30, || {
            let left = agent.metric("meshtrust_agent_intermediate_expires_in_seconds")?;
            (left > 86_400.0
                && agent.metric("meshtrust_agent_leader") == Some(1.0)
                && agent.metric("meshtrust_agent_service_reachable") == Some(1.0))
            .then_some(())
        });
        assert_eq!(agent.get("/readyz").0, 200, "{}", agent.log());
        assert_eq!(agent.get("/healthz").0, 200);
    }
}

#[test]
fn the_agent_reports_what_istiod_loaded_and_its_settings() {
    let fleet = Fleet::new(&["c1"]);
    let _agent = fleet.agent("c1", &[]);
    fleet.written("c1", "");
    // Before istiod publishes, the report says so (no istiod roots).
    let entry = eventually("a first report", 30, || {
        let e = fleet.entry("c1");
        e["reported"].is_object().then_some(e)
    });
    assert_eq!(
        entry["reported"]["report"]["istiod"]["multiroot_mesh"],
        "true"
    );
    istiod_publishes(&fleet.cluster("c1"));
    let entry = eventually("a report of istiod's roots", 30, || {
        let e = fleet.entry("c1");
        e["reported"]["report"]["istiod_roots"]
            .is_array()
            .then_some(e)
    });
    let report = &entry["reported"]["report"];
    assert_eq!(report["istiod_roots"], report["cacerts_roots"], "{entry}");
    assert_eq!(report["cacerts_serial"], entry["serial"]);
}

#[test]
fn renewal_comes_when_the_clock_reaches_its_time_and_keeps_the_cluster_on_one_root() {
    let fleet = Fleet::new(&["c1"]);
    let _agent = fleet.agent("c1", &[]);
    let first = fleet.written("c1", "");
    let anchor = fleet.verified("c1");
    // Nothing renews before its time: a few report rounds go by with the same serial.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        serial(&cacerts(&fleet.cluster("c1")).unwrap()),
        serial(&first)
    );
    fleet.move_clock_to_renewal_of(&first);
    let second = fleet.written("c1", &serial(&first));
    assert_eq!(fleet.verified("c1"), anchor, "renewed under the same root");
    assert_ne!(
        decoded(&second, "ca-key.pem"),
        decoded(&first, "ca-key.pem"),
        "a new key"
    );
    let renewed: Vec<Value> = fleet
        .setup
        .audit()
        .into_iter()
        .filter(|l| l["action"] == "renew" && l["result"] == "ok")
        .collect();
    assert_eq!(renewed.len(), 1, "{renewed:?}");
}

#[test]
fn while_the_service_is_down_the_cluster_keeps_its_bundle_and_the_metrics_say_how_long_is_left() {
    let mut fleet = Fleet::new(&["c1"]);
    let agent = fleet.agent("c1", &[]);
    let held = fleet.written("c1", "");
    eventually("reachable", 30, || {
        (agent.metric("meshtrust_agent_service_reachable") == Some(1.0)).then_some(())
    });
    fleet.stop_service();
    eventually("unreachable", 30, || {
        (agent.metric("meshtrust_agent_service_reachable") == Some(0.0)).then_some(())
    });
    let (code, body) = agent.get("/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("meshtrust serve"),
        "/readyz names the service: {body}"
    );
    let left = agent
        .metric("meshtrust_agent_intermediate_expires_in_seconds")
        .unwrap();
    assert!(left > 86_400.0, "time left is still shown: {left}");
    assert_eq!(
        cacerts(&fleet.cluster("c1")).unwrap()["data"],
        held["data"],
        "bundle kept"
    );
    fleet.start_service();
    eventually("reachable again", 30, || {
        (agent.metric("meshtrust_agent_service_reachable") == Some(1.0)
            && agent.get("/readyz").0 == 200)
            .then_some(())
    });
    assert_eq!(
        serial(&cacerts(&fleet.cluster("c1")).unwrap()),
        serial(&held)
    );
}

/// The agent killed (SIGKILL) at each point of its first enrollment: after each write was
/// carried out (the pending key, `cacerts`, the pending key's removal), and after the
/// service signed while the write of `cacerts` had not reached the API server. Each time,
/// the cluster never holds a partial Secret, and a restarted agent converges on one
/// enrollment with one key, nothing refused.
#[test]
fn an_agent_killed_at_each_point_of_an_enrollment_converges_on_restart() {
    let points = [
        (Fault::HoldAfterApplying, 1),
        (Fault::Hang, 2),
        (Fault::HoldAfterApplying, 2),
        (Fault::HoldAfterApplying, 3),
    ];
    for (fault, nth) in points {
        let point = format!("{fault:?} at write {nth}");
        let fleet = Fleet::new(&["c1"]);
        let c1 = fleet.cluster("c1");
        c1.fail(
            FaultRule::new(fault.clone())
                .path_contains("/secrets")
                .writes()
                .nth(nth),
        );
        let agent = fleet.agent("c1", &[]);
        eventually(&point, 60, || match fault {
            Fault::Hang => fleet
                .setup
                .audit()
                .iter()
                .any(|l| l["action"] == "enroll" && l["result"] == "ok")
                .then_some(()),
            _ => (c1.held() == 1).then_some(()),
        });
        agent.kill();
        if let Some(secret) = cacerts(&c1) {
            let dir = fleet.work.path().join("killed");
            export_secret(&secret, &dir);
            assert_bundle_independently_valid(&dir);
        }
        c1.clear_faults();
        let restarted = fleet.agent("c1", &[]);
        let secret = fleet.written("c1", "");
        fleet.verified("c1");
        assert_eq!(
            fleet.entry("c1")["serial"].as_str(),
            Some(serial(&secret).as_str()),
            "{point}: the service's current serial is the one the cluster holds"
        );
        let audit = fleet.setup.audit();
        let serials: std::collections::BTreeSet<&str> = audit
            .iter()
            .filter(|l| l["action"] == "enroll" && l["result"] == "ok")
            .filter_map(|l| l["serial"].as_str())
            .collect();
        assert_eq!(
            serials.into_iter().collect::<Vec<_>>(),
            [serial(&secret).as_str()],
            "{point}: one enrollment (a retry answers with the same certificate): {audit:?}"
        );
        let refused: Vec<&Value> = audit.iter().filter(|l| l["result"] != "ok").collect();
        assert!(
            refused.is_empty(),
            "{point}: nothing refused: {refused:?}\n{}",
            restarted.log()
        );
    }
}

/// One request as RBAC sees it: (API group, resource, verb, name).
fn rbac_request(method: &str, path: &str) -> (String, String, String, Option<String>) {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] => (String::new(), rest),
        ["apis", group, _version, rest @ ..] => (group.to_string(), rest),
        _ => panic!("not an API path: {path}"),
    };
    let (resource, name) = match rest {
        ["namespaces", ns, resource, name @ ..] => {
            assert_eq!(*ns, NS, "the agent stays in {NS}: {method} {path}");
            (resource.to_string(), name.first().map(|n| n.to_string()))
        }
        _ => panic!("a cluster-wide request: {method} {path}"),
    };
    let verb = match (method, &name) {
        ("GET", Some(_)) => "get",
        ("GET", None) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", _) => "delete",
        _ => panic!("{method} {path}"),
    };
    (group, resource, verb.to_string(), name)
}

/// The rules of deploy/agent/rbac.yaml's Role.
fn agent_role() -> Vec<Value> {
    let text =
        std::fs::read_to_string(meshtrust_testkit::repo_root().join("deploy/agent/rbac.yaml"))
            .unwrap();
    let role = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
        .find(|d| d["kind"] == "Role")
        .expect("a Role");
    assert_eq!(role["metadata"]["namespace"], NS);
    role["rules"].as_array().unwrap().clone()
}

fn allows(
    rule: &Value,
    (group, resource, verb, name): &(String, String, String, Option<String>),
) -> bool {
    let has = |field: &str, value: &str| {
        rule[field]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == value))
    };
    let names_ok = match rule["resourceNames"].as_array() {
        None => true,
        Some(names) => name
            .as_ref()
            .is_some_and(|n| names.iter().any(|v| v == n.as_str())),
    };
    has("apiGroups", group) && has("resources", resource) && has("verbs", verb) && names_ok
}

/// An agent enrolls, reports, renews and releases its Lease: every request it made is one
/// deploy/agent/rbac.yaml allows, and every rule there was needed.
#[test]
fn the_agents_role_allows_every_request_it_makes_and_nothing_it_does_not_need() {
    let fleet = Fleet::new(&["c1"]);
    let agent = fleet.agent("c1", &[]);
    let first = fleet.written("c1", "");
    istiod_publishes(&fleet.cluster("c1"));
    fleet.move_clock_to_renewal_of(&first);
    fleet.written("c1", &serial(&first));
    // A few more Lease renewals and reports, then the Lease is released on shutdown.
    std::thread::sleep(Duration::from_secs(1));
    agent.kill();
    let rules = agent_role();
    let requests: Vec<_> = fleet
        .cluster("c1")
        .requests()
        .iter()
        .map(|r| rbac_request(r.method.as_str(), &r.path))
        .collect();
    for request in &requests {
        assert!(
            rules.iter().any(|rule| allows(rule, request)),
            "the Role does not allow {request:?}"
        );
    }
    for rule in &rules {
        for verb in rule["verbs"].as_array().unwrap() {
            let used = requests.iter().any(|r| {
                allows(
                    &json!({"apiGroups": rule["apiGroups"], "resources": rule["resources"],
                            "verbs": [verb], "resourceNames": rule["resourceNames"]}),
                    r,
                )
            });
            assert!(
                used,
                "the Role grants {verb} in {rule} which the agent never used"
            );
        }
    }
}

/// A `cacerts` another tool wrote: backed up, then replaced (the default); or, with
/// `--foreign-cacerts refuse`, left exactly as it was, the refusal named on /readyz.
#[test]
fn a_foreign_cacerts_is_backed_up_and_replaced_or_left_alone_when_told() {
    for refuse in [false, true] {
        let fleet = Fleet::new(&["c1"]);
        let c1 = fleet.cluster("c1");
        let foreign = c1.seed(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "cacerts", "namespace": NS},
            "stringData": {"ca-cert.pem": "not a certificate", "ca-key.pem": "not a key",
                           "cert-chain.pem": "x", "root-cert.pem": "y"}
        }));
        let extra: &[&str] = if refuse {
            &["--foreign-cacerts", "refuse"]
        } else {
            &[]
        };
        let agent = fleet.agent("c1", extra);
        if refuse {
            let body = eventually("the refusal on /readyz", 30, || {
                let (code, body) = agent.get("/readyz");
                (code == 503 && body.contains("did not write")).then_some(body)
            });
            assert!(
                body.contains("--foreign-cacerts backup"),
                "says how: {body}"
            );
            assert_eq!(
                cacerts(&c1).unwrap()["data"],
                foreign["data"],
                "left as it was"
            );
            assert!(
                fleet.setup.audit().is_empty(),
                "nothing was asked of the service"
            );
            continue;
        }
        fleet.written("c1", "");
        fleet.verified("c1");
        let backups: Vec<Value> = c1
            .list("v1", "Secret", Some(NS))
            .into_iter()
            .filter(|s| {
                s["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("cacerts-backup-"))
            })
            .collect();
        assert_eq!(backups.len(), 1, "one backup");
        assert_eq!(
            backups[0]["data"], foreign["data"],
            "the backup holds the old bundle"
        );
    }
}

/// The agent killed during a renewal: after the service signed but before `cacerts` was
/// replaced (the replace hangs), and after the replace was carried out (its answer held).
/// Restarted, it converges on the renewal the service recorded: one renewal, its serial in
/// `cacerts`, nothing refused.
#[test]
fn an_agent_killed_during_a_renewal_converges_on_restart() {
    for fault in [Fault::Hang, Fault::HoldAfterApplying] {
        let fleet = Fleet::new(&["c1"]);
        let c1 = fleet.cluster("c1");
        let agent = fleet.agent("c1", &[]);
        let first = fleet.written("c1", "");
        c1.fail(
            FaultRule::new(fault.clone())
                .method(axum::http::Method::PUT)
                .path_contains("/secrets/cacerts"),
        );
        fleet.move_clock_to_renewal_of(&first);
        eventually(&format!("{fault:?}: the renewal signed"), 60, || {
            let renewed = fleet
                .setup
                .audit()
                .iter()
                .any(|l| l["action"] == "renew" && l["result"] == "ok");
            let reached = fault == Fault::Hang || c1.held() == 1;
            (renewed && reached).then_some(())
        });
        agent.kill();
        c1.clear_faults();
        let restarted = fleet.agent("c1", &[]);
        let second = fleet.written("c1", &serial(&first));
        fleet.verified("c1");
        let audit = fleet.setup.audit();
        let renewals: std::collections::BTreeSet<&str> = audit
            .iter()
            .filter(|l| l["action"] == "renew" && l["result"] == "ok")
            .filter_map(|l| l["serial"].as_str())
            .collect();
        assert_eq!(
            renewals.into_iter().collect::<Vec<_>>(),
            [serial(&second).as_str()],
            "{fault:?}: one renewal, in cacerts: {audit:?}\n{}",
            restarted.log()
        );
        let refused: Vec<&Value> = audit.iter().filter(|l| l["result"] != "ok").collect();
        assert!(
            refused.is_empty(),
            "{fault:?}: nothing refused: {refused:?}"
        );
    }
}

/// `chromium --headless` with `args`, its stdout.
fn chromium(args: &[&str]) -> String {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            // The service's certificate is issued by the test's root, which Chromium's
            // store does not hold; loopback only.
            "--ignore-certificate-errors",
        ])
        .args(args)
        .output()
        .expect("chromium (apt-get install chromium; tests/run-all.sh does)");
    assert!(out.status.success(), "chromium {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The inventory page in a real browser: every cluster, its expiry, whether its istiod has
/// loaded the service's roots, and no page without the admin token.
#[test]
fn the_status_page_shows_every_cluster_to_a_real_browser() {
    let fleet = Fleet::new(&["c1", "c2", "c3"]);
    let _agents: Vec<Agent> = ["c1", "c2", "c3"]
        .iter()
        .map(|c| fleet.agent(c, &[]))
        .collect();
    for name in ["c1", "c2", "c3"] {
        fleet.written(name, "");
    }
    istiod_publishes(&fleet.cluster("c1"));
    eventually("c1's report of istiod's roots", 30, || {
        fleet.entry("c1")["reported"]["report"]["istiod_roots"]
            .is_array()
            .then_some(())
    });
    let token = std::fs::read_to_string(fleet.setup.path("admin-token")).unwrap();
    let authority = fleet.url.trim_start_matches("https://");
    let page = format!("https://admin:{}@{authority}/status", token.trim());
    let dom = chromium(&["--dump-dom", &page]);
    for name in ["c1", "c2", "c3"] {
        let start = dom
            .find(&format!("data-cluster=\"{name}\""))
            .unwrap_or_else(|| panic!("{name} on the page:\n{dom}"));
        let row = &dom[start..start + dom[start..].find("</tr>").unwrap()];
        assert!(row.contains("expires in"), "{row}");
        let loaded = if name == "c1" { "loaded" } else { "unknown" };
        assert!(
            row.contains(&format!("class=\"istiod {loaded}\"")),
            "{name}: {row}"
        );
        let serial = serial(&cacerts(&fleet.cluster(name)).unwrap());
        assert!(row.contains(&serial), "{name}'s serial: {row}");
    }
    assert!(dom.contains("3 clusters"), "{dom}");
    // Without the token: no inventory.
    let refused = chromium(&["--dump-dom", &format!("https://{authority}/status")]);
    assert!(!refused.contains("data-cluster"), "{refused}");
    // A screenshot renders (docs/status-page.png is one of these).
    let shot = fleet.work.path().join("status.png");
    chromium(&[
        "--window-size=1200,520",
        &format!("--screenshot={}", shot.display()),
        &page,
    ]);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    if let Ok(to) = std::env::var("MESHTRUST_STATUS_SCREENSHOT") {
        std::fs::copy(&shot, to).unwrap();
    }
}

/// Two replicas of one cluster's agent: only the holder of the Lease works; killed, the other
/// takes the Lease over and renews when the time comes. One enrollment and one renewal in all.
#[test]
fn of_two_replicas_only_the_leader_works_and_the_other_takes_over_when_it_is_killed() {
    let fleet = Fleet::new(&["c1"]);
    let a = fleet.agent_as("c1", "agent-c1-a", &[]);
    let first = fleet.written("c1", "");
    let b = fleet.agent_as("c1", "agent-c1-b", &[]);
    let leader = |agent: &Agent| agent.metric("meshtrust_agent_leader");
    eventually("b serving its metrics as the follower", 30, || {
        (leader(&b) == Some(0.0)).then_some(())
    });
    assert_eq!(leader(&a), Some(1.0), "a enrolled, so a leads");
    assert_eq!(
        b.get("/readyz").0,
        200,
        "the follower is ready: it has nothing to do"
    );
    a.kill();
    eventually("b to take the Lease over", 30, || {
        (leader(&b) == Some(1.0)).then_some(())
    });
    let lease = fleet
        .cluster("c1")
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            Some(NS),
            "meshtrust-agent",
        )
        .expect("the agents' Lease");
    assert_eq!(lease["spec"]["holderIdentity"], "agent-c1-b", "{lease}");
    fleet.move_clock_to_renewal_of(&first);
    fleet.written("c1", &serial(&first));
    fleet.verified("c1");
    assert!(b.log().contains("\"renewing\""), "b renewed:\n{}", b.log());
    let ok = |action: &str| {
        fleet
            .setup
            .audit()
            .iter()
            .filter(|l| l["action"] == action && l["result"] == "ok")
            .count()
    };
    assert_eq!(
        (ok("enroll"), ok("renew")),
        (1, 1),
        "one enrollment, one renewal"
    );
}

#[test]
fn an_agent_enrolls_with_its_projected_service_account_token_read_afresh_after_a_refusal() {
    // c1's service-account issuer (EKS-like, RS256), its keys given to the service as a
    // JWKS file.
    let jwks = tempfile::tempdir().unwrap();
    let member = sa_issuer::Member {
        name: "c1",
        issuer: "https://oidc.eks.eu-west-1.amazonaws.com/id/7D2E9A1F0C3B",
        key: sa_issuer::SigningKey::rsa(),
    };
    let fleet = Fleet::configured(
        &["c1"],
        &format!("clusters:\n{}", member.config(jwks.path())),
    );
    // The kubelet's projection holds a token that expired an hour ago: refused, and the
    // agent retries, reading the file again each time.
    let token_file = fleet.work.path().join("c1.sa-token");
    let stale = sa_issuer::projected(
        member.issuer,
        sa_issuer::SUBJECT,
        sa_issuer::service_now(&fleet.setup) - time::Duration::hours(2),
    );
    std::fs::write(&token_file, member.key.sign(&stale)).unwrap();
    let path = token_file.display().to_string();
    let agent = fleet.agent_with(
        "c1",
        "agent-c1",
        ["--service-account-token-file", &path],
        &[],
    );
    let refused = eventually("the stale token refused", 30, || {
        fleet
            .setup
            .audit()
            .into_iter()
            .find(|l| l["action"] == "enroll" && l["result"] == "refused")
    });
    assert!(
        refused["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("sa_token_expired")),
        "{refused}"
    );
    assert!(cacerts(&fleet.cluster("c1")).is_none());
    eventually("the agent to say why", 30, || {
        agent
            .log()
            .contains("refused enrolling cluster c1 (401 sa_token_expired)")
            .then_some(())
    });
    // The kubelet rotates the projected token: the next attempt enrolls with it.
    let fresh = member.token(&fleet.setup);
    std::fs::write(&token_file, &fresh).unwrap();
    let secret = fleet.written("c1", "");
    let root = fleet.verified("c1");
    assert_eq!(root, fleet.setup.fingerprint());
    assert_eq!(
        fleet.entry("c1")["serial"].as_str(),
        Some(serial(&secret).as_str())
    );
    let enrolled = enrollments(&fleet);
    assert_eq!(enrolled.len(), 1, "{enrolled:?}");
    assert_eq!(
        enrolled[0]["principal"],
        format!("{} of cluster c1", sa_issuer::SUBJECT)
    );
    // The tokens are credentials: in no log, the service's or the agent's.
    let requests = std::fs::read_to_string(fleet.setup.path("requests.log")).unwrap();
    let audit = std::fs::read_to_string(fleet.setup.path("audit.log")).unwrap();
    for token in [member.key.sign(&stale), fresh] {
        let signature = token.rsplit('.').next().unwrap().to_string();
        for (what, text) in [
            ("request log", &requests),
            ("audit log", &audit),
            ("service log", &fleet.service.as_ref().unwrap().log()),
            ("agent log", &agent.log()),
        ] {
            assert!(!text.contains(&signature), "a token in the {what}");
        }
    }
}
