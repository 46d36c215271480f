//! Fault injection and the request log.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::PostParams;
use kube::{Api, Client};
use meshtrust_testkit::apiserver::{Fault, FaultRule, Harness, Method};

use crate::{client, cm, config, status};

#[tokio::test]
async fn the_second_matching_request_gets_a_500_and_changes_nothing() {
    let h = Harness::start(&["c1"]);
    let c1 = h.cluster("c1");
    c1.fail(FaultRule {
        method: Some(Method::POST),
        path_contains: "/configmaps".into(),
        nth: 2,
        ..FaultRule::new(Fault::Status(500))
    });
    let cms: Api<ConfigMap> = Api::namespaced(client(&h, "c1").await, "default");
    let pp = PostParams::default();
    cms.get_opt("a").await.unwrap();
    cms.create(&pp, &cm("a")).await.unwrap();
    let s = status(cms.create(&pp, &cm("b")).await);
    assert_eq!((s.code, s.reason.as_str()), (500, "InternalError"));
    assert!(c1.get("v1", "ConfigMap", Some("default"), "b").is_none());
    cms.create(&pp, &cm("c")).await.unwrap();

    let writes: Vec<String> = c1.writes().iter().map(|r| r.to_string()).collect();
    assert_eq!(writes.len(), 3, "{writes:?}");
    assert!(
        writes
            .iter()
            .all(|w| w.starts_with("POST /api/v1/namespaces/default/configmaps"))
    );
    assert_eq!(c1.requests().len(), 4, "the GET is logged too");
    c1.clear_requests();
    assert!(c1.requests().is_empty());
}

#[tokio::test]
async fn every_matching_request_from_the_nth_on_fails_with_always() {
    let h = Harness::start(&["c1"]);
    h.cluster("c1").fail(
        FaultRule::new(Fault::Status(409))
            .path_contains("/secrets/cacerts")
            .nth(2)
            .always(),
    );
    let secrets: Api<Secret> = Api::namespaced(client(&h, "c1").await, "default");
    assert!(secrets.get_opt("cacerts").await.unwrap().is_none());
    for _ in 0..3 {
        let s = status(secrets.get("cacerts").await);
        assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    }
    assert!(
        secrets.get_opt("other").await.unwrap().is_none(),
        "other paths are spared"
    );
    h.cluster("c1").clear_faults();
    assert_eq!(status(secrets.get("cacerts").await).code, 404);
}

#[tokio::test]
async fn a_hanging_request_makes_a_client_with_a_short_timeout_fail() {
    let h = Harness::start(&["c1"]);
    h.cluster("c1").fail(
        FaultRule::new(Fault::Hang)
            .method(Method::GET)
            .path_contains("/configmaps/slow"),
    );
    let mut config = config(&h, "c1").await;
    config.read_timeout = Some(Duration::from_millis(300));
    let cms: Api<ConfigMap> = Api::namespaced(Client::try_from(config).unwrap(), "default");
    let started = Instant::now();
    let err = cms.get("slow").await.unwrap_err();
    assert!(
        !matches!(err, kube::Error::Api(_)),
        "no answer at all, got {err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        status(cms.get("slow").await).code,
        404,
        "the rule fired once"
    );
}

#[tokio::test]
async fn a_delay_answers_late_but_normally() {
    let h = Harness::start(&["c1"]);
    h.cluster("c1")
        .fail(FaultRule::new(Fault::Delay(Duration::from_millis(400))).method(Method::POST));
    let cms: Api<ConfigMap> = Api::namespaced(client(&h, "c1").await, "default");
    let started = Instant::now();
    cms.create(&PostParams::default(), &cm("late"))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(
        h.cluster("c1")
            .get("v1", "ConfigMap", Some("default"), "late")
            .is_some()
    );
}
