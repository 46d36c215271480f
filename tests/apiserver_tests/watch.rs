//! Watches: kube-runtime's watcher, raw watch events, selectors, 410 Expired, timeouts.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher::{self, Event};
use kube::{Api, ResourceExt};
use meshtrust_testkit::apiserver::{Fault, FaultRule, Harness, Method};
use serde_json::json;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::time::timeout;

use crate::{client, cm};

const WAIT: Duration = Duration::from_secs(10);

/// A readable summary of a watcher event.
fn summary(e: &Event<ConfigMap>) -> String {
    match e {
        Event::Init => "Init".into(),
        Event::InitApply(o) => format!("InitApply {}", o.name_any()),
        Event::InitDone => "InitDone".into(),
        Event::Apply(o) => format!(
            "Apply {} {}",
            o.name_any(),
            o.data
                .as_ref()
                .and_then(|d| d.get("k"))
                .map_or("-", String::as_str)
        ),
        Event::Delete(o) => format!("Delete {}", o.name_any()),
    }
}

/// Drives a watcher on its own task; its events arrive as summaries.
fn spawn_watcher(api: Api<ConfigMap>, config: watcher::Config) -> UnboundedReceiver<String> {
    let (tx, rx) = unbounded_channel();
    tokio::spawn(async move {
        let mut events = watcher::watcher(api, config).boxed();
        while let Some(event) = events.next().await {
            let line = match event {
                Ok(e) => summary(&e),
                Err(watcher::Error::WatchError(s)) => format!("Error {}", s.code),
                Err(other) => format!("Error {other}"),
            };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

async fn next(rx: &mut UnboundedReceiver<String>) -> String {
    timeout(WAIT, rx.recv())
        .await
        .expect("an event in time")
        .expect("the watcher runs")
}

#[tokio::test]
async fn the_kube_runtime_watcher_sees_adds_modifications_and_deletes() {
    let h = Harness::start(&["c1"]);
    h.cluster("c1")
        .seed(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "before", "namespace": "default"}}));
    let cms: Api<ConfigMap> = Api::namespaced(client(&h, "c1").await, "default");
    let mut rx = spawn_watcher(cms.clone(), watcher::Config::default());
    assert_eq!(next(&mut rx).await, "Init");
    assert_eq!(next(&mut rx).await, "InitApply before");
    assert_eq!(next(&mut rx).await, "InitDone");

    cms.create(&PostParams::default(), &cm("x")).await.unwrap();
    assert_eq!(next(&mut rx).await, "Apply x -");
    let patch = json!({"data": {"k": "v"}});
    cms.patch("x", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await, "Apply x v");
    cms.delete("x", &DeleteParams::default()).await.unwrap();
    assert_eq!(next(&mut rx).await, "Delete x");
}

#[tokio::test]
async fn a_streaming_list_watcher_gets_the_initial_objects_then_changes() {
    let h = Harness::start(&["c1"]);
    h.cluster("c1")
        .seed(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "before", "namespace": "default"}}));
    let cms: Api<ConfigMap> = Api::namespaced(client(&h, "c1").await, "default");
    let mut rx = spawn_watcher(cms.clone(), watcher::Config::default().streaming_lists());
    assert_eq!(next(&mut rx).await, "Init");
    assert_eq!(next(&mut rx).await, "InitApply before");
    assert_eq!(
        next(&mut rx).await,
        "InitDone",
        "the initial-events-end bookmark"
    );
    cms.create(&PostParams::default(), &cm("after"))
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await, "Apply after -");
    let lists = h
        .cluster("c1")
        .requests()
        .iter()
        .filter(|r| !r.is_watch())
        .count();
    assert_eq!(
        lists,
        1,
        "no LIST, only the create: {:?}",
        h.cluster("c1").requests()
    );
}

#[tokio::test]
async fn raw_watch_events_carry_their_types_and_follow_the_selector() {
    let h = Harness::start(&["c1"]);
    let cms: Api<ConfigMap> = Api::namespaced(client(&h, "c1").await, "default");
    let from = h.cluster("c1").resource_version();
    let labelled = |v: &str| json!({"metadata": {"labels": {"app": v}}});
    cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    let pp = PatchParams::default();
    cms.patch("a", &pp, &Patch::Merge(labelled("mesh")))
        .await
        .unwrap();
    cms.patch("a", &pp, &Patch::Merge(json!({"data": {"k": "v"}})))
        .await
        .unwrap();
    cms.patch("a", &pp, &Patch::Merge(labelled("other")))
        .await
        .unwrap();
    cms.delete("a", &DeleteParams::default()).await.unwrap();

    let kinds = |wp: WatchParams| {
        let (cms, from) = (cms.clone(), from.clone());
        async move {
            let stream = cms.watch(&wp.timeout(1), &from).await.unwrap();
            let events: Vec<_> = timeout(WAIT, stream.try_collect::<Vec<_>>())
                .await
                .unwrap()
                .unwrap();
            events
                .iter()
                .map(|e| match e {
                    WatchEvent::Added(_) => "ADDED",
                    WatchEvent::Modified(_) => "MODIFIED",
                    WatchEvent::Deleted(_) => "DELETED",
                    WatchEvent::Bookmark(_) => "BOOKMARK",
                    WatchEvent::Error(_) => "ERROR",
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        kinds(WatchParams::default()).await,
        ["ADDED", "MODIFIED", "MODIFIED", "MODIFIED", "DELETED"]
    );
    assert_eq!(
        kinds(WatchParams::default().labels("app=mesh")).await,
        ["ADDED", "MODIFIED", "DELETED"],
        "entering the selection is ADDED, leaving it DELETED"
    );
    assert!(
        kinds(WatchParams::default().fields("metadata.name=b"))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_watch_from_a_compacted_resource_version_gets_410_expired() {
    let h = Harness::start(&["c1"]);
    let c1 = h.cluster("c1");
    let cms: Api<ConfigMap> = Api::namespaced(client(&h, "c1").await, "default");
    let old = c1.resource_version();
    cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    c1.compact();
    let mut stream = cms
        .watch(&WatchParams::default(), &old)
        .await
        .unwrap()
        .boxed();
    match timeout(WAIT, stream.try_next()).await.unwrap().unwrap() {
        Some(WatchEvent::Error(e)) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    assert!(
        timeout(WAIT, stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .is_none(),
        "then the stream ends"
    );
    let current = c1.resource_version();
    let fresh = cms
        .watch(&WatchParams::default().timeout(1), &current)
        .await
        .unwrap();
    let events: Vec<_> = timeout(WAIT, fresh.try_collect::<Vec<_>>())
        .await
        .unwrap()
        .unwrap();
    assert!(
        events.is_empty(),
        "a current resourceVersion still watches: {events:?}"
    );
}

#[tokio::test]
async fn the_watcher_relists_after_a_410() {
    let h = Harness::start(&["c1"]);
    let c1 = h.cluster("c1");
    let cms: Api<ConfigMap> = Api::namespaced(client(&h, "c1").await, "default");
    // Hold the watcher's first watch request back while the history moves on and is
    // compacted away, so that it starts from a resourceVersion that has expired.
    c1.fail(
        FaultRule::new(Fault::Delay(Duration::from_secs(2)))
            .method(Method::GET)
            .path_contains("watch=true"),
    );
    let mut rx = spawn_watcher(cms, watcher::Config::default());
    assert_eq!(next(&mut rx).await, "Init");
    assert_eq!(next(&mut rx).await, "InitDone");
    let deadline = Instant::now() + WAIT;
    while !c1.requests().iter().any(|r| r.is_watch()) {
        assert!(Instant::now() < deadline, "the watcher never watched");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    c1.seed(json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "missed", "namespace": "default"}}));
    c1.compact();
    assert_eq!(next(&mut rx).await, "Error 410");
    assert_eq!(
        next(&mut rx).await,
        "Init",
        "a 410 makes the watcher start over"
    );
    assert_eq!(next(&mut rx).await, "InitApply missed");
    assert_eq!(next(&mut rx).await, "InitDone");
}

#[tokio::test]
async fn timeout_seconds_ends_a_quiet_watch() {
    let h = Harness::start(&["c1"]);
    let cms: Api<ConfigMap> = Api::namespaced(client(&h, "c1").await, "default");
    let started = Instant::now();
    let rv = h.cluster("c1").resource_version();
    let stream = cms
        .watch(&WatchParams::default().timeout(1), &rv)
        .await
        .unwrap();
    let events: Vec<_> = timeout(WAIT, stream.try_collect::<Vec<_>>())
        .await
        .unwrap()
        .unwrap();
    assert!(events.is_empty());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
}
