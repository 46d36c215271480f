//! The status page as text: what each cluster's row says, escaping, the admin credential.

use meshtrust_issuer::server::api::{ClusterReport, Reported};
use time::macros::datetime;

use super::*;

const NOW: OffsetDateTime = datetime!(2026-12-01 10:00:00 UTC);

fn facts<'a>(
    roots: &'a [String],
    waiting: &'a [Waiting],
    errors: &'a HashMap<String, AuditEvent>,
) -> Facts<'a> {
    Facts {
        roots,
        phase: "steady",
        waiting,
        errors,
    }
}

fn event(cluster: &str, minutes_ago: i64, result: &str, reason: &str) -> AuditEvent {
    AuditEvent {
        at: NOW - time::Duration::minutes(minutes_ago),
        principal: format!("cluster {cluster}"),
        action: "renew".to_string(),
        cluster: Some(cluster.to_string()),
        serial: None,
        result: result.to_string(),
        reason: reason.to_string(),
    }
}

fn entry(name: &str, not_after: &str, istiod_roots: Option<Vec<String>>) -> ClusterEntry {
    ClusterEntry {
        name: name.to_string(),
        state: ClusterState::Enrolled,
        serial: "0a1b".to_string(),
        not_after: not_after.to_string(),
        last_seen: "2026-12-01T09:00:00Z".to_string(),
        roots: vec!["aa".repeat(32)],
        key_fingerprint: "00".repeat(32),
        reported: istiod_roots.map(|roots| Reported {
            at: "2026-12-01T09:58:00Z".to_string(),
            report: ClusterReport {
                cacerts_serial: "0a1b".to_string(),
                cacerts_roots: vec!["aa".repeat(32)],
                istiod_roots: Some(roots),
                istiod: None,
                cacerts_files: Default::default(),
                agent_version: "0.1.0".to_string(),
                observed_at: "2026-12-01T09:58:00Z".to_string(),
            },
        }),
    }
}

#[test]
fn each_cluster_shows_its_expiry_on_one_timeline_and_whether_istiod_loaded_the_roots() {
    let roots = vec!["aa".repeat(32)];
    let list = ClusterList {
        clusters: vec![
            entry("east", "2027-12-01T10:00:00Z", Some(roots.clone())),
            entry("west", "2027-06-01T10:00:00Z", Some(vec!["bb".repeat(32)])),
            entry("north", "2026-11-30T10:00:00Z", None),
        ],
    };
    let html = render(&list, &facts(&roots, &[], &HashMap::new()), NOW);
    let row = |name: &str| {
        let start = html.find(&format!("<tr data-cluster=\"{name}\"")).unwrap();
        html[start..start + html[start..].find("</tr>").unwrap()].to_string()
    };
    assert!(html.contains("3 clusters"), "{html}");
    assert!(
        row("east").contains("width:100.0%") && row("east").contains("class=\"istiod loaded\"")
    );
    let west = row("west");
    assert!(west.contains("class=\"istiod pending\""), "{west}");
    let width: f64 = west
        .split("width:")
        .nth(1)
        .unwrap()
        .split('%')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((45.0..55.0).contains(&width), "half the horizon: {width}");
    let north = row("north");
    assert!(north.contains("expired") && north.contains("unknown") && north.contains("never"));
    assert!(
        row("east").contains("2 min ago") || row("east").contains("ago"),
        "{}",
        row("east")
    );
}

#[test]
fn text_is_escaped_and_an_empty_inventory_says_so() {
    let list = ClusterList {
        clusters: vec![entry("<script>", "soon\"", None)],
    };
    let html = render(&list, &facts(&[], &[], &HashMap::new()), NOW);
    assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"));
    assert!(html.contains("soon&quot;"));
    let empty = render(
        &ClusterList { clusters: vec![] },
        &facts(&[], &[], &HashMap::new()),
        NOW,
    );
    assert!(empty.contains("No cluster has enrolled yet."));
}

#[test]
fn the_admin_token_comes_as_bearer_or_as_a_basic_password() {
    assert_eq!(credential(Some("Bearer t0k")).as_deref(), Some("t0k"));
    let basic = format!("Basic {}", STANDARD.encode("admin:t0k:with:colons"));
    assert_eq!(credential(Some(&basic)).as_deref(), Some("t0k:with:colons"));
    assert_eq!(credential(Some("Basic !!!")), None);
    assert_eq!(credential(Some("Digest x")), None);
    assert_eq!(credential(None), None);
}

#[test]
fn a_cluster_shows_its_last_error_until_it_succeeds_and_the_rotation_what_it_waits_for() {
    // Newest first, as the store gives them.
    let errors = last_errors(vec![
        event("east", 1, AuditEvent::REFUSED, "the proof is stale"),
        event("east", 5, AuditEvent::OK, ""),
        event("west", 2, AuditEvent::OK, ""),
        event("west", 9, AuditEvent::REFUSED, "an old refusal"),
    ]);
    assert_eq!(errors.keys().collect::<Vec<_>>(), ["east"]);
    let waiting = [Waiting {
        cluster: Some("west".to_string()),
        reason: "istiod_not_loaded".to_string(),
        message: "cluster west: istiod <publishes> no istio-ca-root-cert".to_string(),
    }];
    let roots = vec!["aa".repeat(32)];
    let list = ClusterList {
        clusters: vec![
            entry("east", "2027-12-01T10:00:00Z", Some(roots.clone())),
            entry("west", "2027-12-01T10:00:00Z", None),
        ],
    };
    let html = render(&list, &facts(&roots, &waiting, &errors), NOW);
    let east = &html[html.find("data-cluster=\"east\"").unwrap()..];
    let east = &east[..east.find("</tr>").unwrap()];
    assert!(
        east.contains("<td class=\"error\">renew refused (0h 1m ago): the proof is stale</td>"),
        "{east}"
    );
    assert!(
        html.contains("<td class=\"error\"></td>"),
        "west has no error: {html}"
    );
    assert!(
        html.contains("<li data-reason=\"istiod_not_loaded\">cluster west: istiod &lt;publishes&gt; no istio-ca-root-cert</li>"),
        "{html}"
    );
}
