//! The monitoring pieces of `deploy/monitoring/`: the alert rules checked and unit-tested by
//! Prometheus' own `promtool` (Debian's `prometheus` package, which `./tests/run-all.sh`
//! installs), the Grafana dashboard, and every metric name either of them reads checked
//! against what a `meshtrust controller` running on the loopback harness exposes.

// The suite waits on a real process: wall-clock deadlines are the point here.
#![allow(clippy::disallowed_methods)]

#[path = "monitoring/promql.rs"]
mod promql;

#[allow(dead_code)] // Each suite uses part of the fleet.
mod fleet;
use fleet::*;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use meshtrust_testkit::apiserver::{Fault, FaultRule};
use meshtrust_testkit::text;
use serde::Deserialize;
use serde_json::Value;

const RULES: &str = "deploy/monitoring/meshtrust-alerts.yaml";
const RULE_TESTS: &str = "deploy/monitoring/meshtrust-alerts.test.yaml";
const DASHBOARD: &str = "deploy/monitoring/grafana-dashboard.json";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn yaml(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    Value::deserialize(serde_yaml_ng::Deserializer::from_str(&text)).unwrap()
}

fn dashboard() -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo().join(DASHBOARD)).unwrap())
        .unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"))
}

fn promtool(args: &[&str]) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(repo())
        .output()
        .expect("promtool runs (./tests/run-all.sh installs Debian's prometheus package, which ships it)");
    (out.status.success(), text(&out))
}

/// Every alert rule of the rules file: (alert name, expression).
fn alerts() -> Vec<(String, String)> {
    yaml(RULES)["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .map(|r| {
            let name = r["alert"].as_str().expect("alerting rules only");
            (name.to_string(), r["expr"].as_str().unwrap().to_string())
        })
        .collect()
}

/// Every PromQL query of the dashboard: panel targets and variable queries, with where
/// each is.
fn dashboard_queries(d: &Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("every target has an expr");
            queries.push((format!("panel {:?}", p["title"]), expr.to_string()));
        }
    }
    for v in d["templating"]["list"].as_array().unwrap() {
        if v["type"] == "query" {
            let q = v["query"].as_str().expect("variable queries are strings");
            queries.push((format!("variable {}", v["name"]), q.to_string()));
        }
    }
    queries
}

#[test]
fn promtool_accepts_the_rules() {
    let (ok, out) = promtool(&["check", "rules", RULES]);
    assert!(ok, "promtool check rules {RULES}:\n{out}");
    let n = alerts().len();
    assert!(out.contains(&format!("SUCCESS: {n} rules found")), "{out}");
}

#[test]
fn promtool_unit_tests_fire_and_do_not_fire_every_alert() {
    let (ok, out) = promtool(&["test", "rules", RULE_TESTS]);
    assert!(ok, "promtool test rules {RULE_TESTS}:\n{out}");
    // Each alert is expected firing somewhere and expected silent somewhere.
    let tests = yaml(RULE_TESTS);
    let mut fires = BTreeSet::new();
    let mut silent = BTreeSet::new();
    for t in tests["tests"].as_array().unwrap() {
        for a in t["alert_rule_test"].as_array().unwrap() {
            let name = a["alertname"].as_str().unwrap().to_string();
            match a["exp_alerts"].as_array().map(Vec::len) {
                Some(0) | None => silent.insert(name),
                Some(_) => fires.insert(name),
            };
        }
    }
    for (name, _) in alerts() {
        assert!(
            fires.contains(&name),
            "{RULE_TESTS} never expects {name} to fire"
        );
        assert!(
            silent.contains(&name),
            "{RULE_TESTS} never expects {name} to stay silent"
        );
    }
}

#[test]
fn the_dashboard_is_one_grafana_dashboard_on_one_prometheus_data_source() {
    let d = dashboard();
    assert_eq!(d["uid"], "meshtrust");
    let panels = d["panels"].as_array().unwrap();
    let ids: BTreeSet<i64> = panels.iter().map(|p| p["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    for p in panels.iter().filter(|p| p["type"] != "row") {
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        for t in p["targets"].as_array().unwrap() {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        }
        let g = &p["gridPos"];
        assert!(
            g["w"].as_i64().unwrap() > 0
                && g["x"].as_i64().unwrap() + g["w"].as_i64().unwrap() <= 24
        );
    }
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for wanted in [
        "Expiry timeline",
        "Ready",
        "Rotation phase",
        "Reconciles and errors",
    ] {
        assert!(
            titles.contains(&wanted),
            "no panel {wanted:?} in {titles:?}"
        );
    }
    for (place, q) in dashboard_queries(&d) {
        promql::grafana_metric_names(&q).unwrap_or_else(|e| panic!("{DASHBOARD}, {place}: {e}"));
    }
}

/// The exposition of replica `identity`'s `/metrics` (the body of a 200).
fn exposition(fleet: &Fleet, identity: &str) -> String {
    let response = fleet.metrics(identity);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response.split_once("\r\n\r\n").unwrap().1.to_string()
}

fn ready(mt: &Value, cluster: &str) -> Value {
    condition(&cluster_status(mt, cluster)["conditions"], "Ready")["status"].clone()
}

/// The names of the samples of an exposition (what Prometheus stores: `_total`, `_bucket`,
/// `_seconds` and all), without comments.
fn exposed_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect()
}

/// The sample of `name` whose labels include every `label=value` pair of `labels`.
fn sample(exposition: &str, name: &str, labels: &[&str]) -> Option<f64> {
    exposition
        .lines()
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .find(|l| labels.iter().all(|kv| l.contains(kv)))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn every_metric_the_rules_and_the_dashboard_read_is_one_a_running_controller_exposes() {
    // The fleet's MeshTrust over c1, c2 and c3; c3 refuses everything: it is not Ready, and
    // its failures are counted.
    let mut fleet = Fleet::new();
    fleet
        .harness
        .cluster("c3")
        .fail(FaultRule::new(Fault::Status(503)).always());
    fleet.start("replica-a");
    fleet.wait_for("c1 and c2 Ready, c3 not Ready", |mt| {
        ready(mt, "c1") == "True" && ready(mt, "c2") == "True" && ready(mt, "c3") == "False"
    });
    // A rotation cannot take a step while c3 cannot be read: phase Blocked.
    fleet.seed_root_secret("mesh-root-2");
    fleet.start_rotation("mesh-root-2", Some("1h"));
    fleet.wait_for("the rotation blocked by c3", |mt| {
        mt["status"]["rotation"]["phase"] == "Blocked"
    });
    let blocked = exposition(&fleet, "replica-a");

    let mut used = BTreeSet::new();
    for (name, expr) in alerts() {
        let names = promql::metric_names(&expr).unwrap_or_else(|e| panic!("{RULES}, {name}: {e}"));
        assert!(!names.is_empty(), "{name} reads no metric");
        used.extend(names.into_iter().map(|n| (n, format!("alert {name}"))));
    }
    for (place, q) in dashboard_queries(&dashboard()) {
        let names = promql::grafana_metric_names(&q).unwrap();
        used.extend(
            names
                .into_iter()
                .map(|n| (n, format!("{DASHBOARD} {place}"))),
        );
    }
    let exposed = exposed_names(&blocked);
    let unknown: Vec<String> = used
        .iter()
        .filter(|(n, _)| !exposed.contains(n))
        .map(|(n, place)| format!("{n} ({place})"))
        .collect();
    assert!(
        unknown.is_empty(),
        "metrics read by the monitoring pieces that the controller does not expose:\n  {}\n\
         exposed:\n{blocked}",
        unknown.join("\n  ")
    );
    let used_names: BTreeSet<&String> = used.iter().map(|(n, _)| n).collect();
    assert!(used_names.len() >= 8, "{used_names:?}");

    // The values the alerts read mean what the rules assume.
    assert_eq!(sample(&blocked, "meshtrust_is_leader", &[]), Some(1.0));
    let true_of = |c: &str| {
        let label = format!("cluster=\"{c}\"");
        sample(
            &blocked,
            "meshtrust_certificate_ready_status",
            &[&label, "condition=\"True\""],
        )
    };
    assert_eq!(
        (true_of("c1"), true_of("c3")),
        (Some(1.0), Some(0.0)),
        "{blocked}"
    );
    let errors = sample(&blocked, "meshtrust_reconcile_errors_total", &[]).unwrap_or(0.0);
    assert!(errors > 0.0, "c3's failures are counted: {blocked}");
    let in_days = sample(
        &blocked,
        "meshtrust_certificate_expiration_timestamp_seconds",
        &["cluster=\"c1\""],
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        ((in_days - now) / 86_400.0 - 90.0).abs() < 1.0,
        "a 90-day intermediate: {in_days}"
    );
    let since = sample(
        &blocked,
        "meshtrust_rotation_phase_started_timestamp_seconds",
        &["meshtrust=\"mesh\"", "phase=\"Blocked\""],
    )
    .unwrap_or_else(|| panic!("the Blocked phase is exposed:\n{blocked}"));
    assert!((now - since).abs() < 120.0, "{since} is about now ({now})");

    // Once c3 answers, the rotation moves on to the hold, and the phase series with it.
    fleet.harness.cluster("c3").clear_faults();
    fleet.wait_for("the hold before phase 3", |mt| {
        mt["status"]["rotation"]["phase"] == "HoldingOldRoot"
    });
    let holding = exposition(&fleet, "replica-a");
    let series = |m: &str| {
        m.lines()
            .filter(|l| l.starts_with("meshtrust_rotation_phase_started_timestamp_seconds{"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let now_series = series(&holding);
    assert_eq!(
        now_series.len(),
        1,
        "one series per rotation: {now_series:?}"
    );
    assert!(
        now_series[0].contains("phase=\"HoldingOldRoot\""),
        "{now_series:?}"
    );
}
