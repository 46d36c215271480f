//! Lease decisions at fixed times, and elections against the loopback API server. Time is
//! a `ManualClock` shared by every elector of a test: it moves only when the test advances
//! it, so no outcome depends on how fast the machine is. Real waiting is only for
//! "eventually" conditions, under a generous timeout that never decides the outcome.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use meshtrust_issuer::{Clock, ManualClock};
use meshtrust_testkit::apiserver::{Fault, FaultRule, Harness, Method};
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::sync::watch;

use super::lease::offset_date_time;
use super::*;

const T0: OffsetDateTime = datetime!(2026-11-02 10:00:00 UTC);

fn lease(holder: Option<&str>, renewed: Option<OffsetDateTime>, seconds: Option<i32>) -> Lease {
    Lease {
        metadata: ObjectMeta::default(),
        spec: Some(LeaseSpec {
            holder_identity: holder.map(str::to_string),
            renew_time: renewed.map(|t| micro_time(t).unwrap()),
            lease_duration_seconds: seconds,
            ..LeaseSpec::default()
        }),
    }
}

fn at(seconds: i64) -> OffsetDateTime {
    T0 + time::Duration::seconds(seconds)
}

const FIFTEEN: Duration = Duration::from_secs(15);

#[test]
fn decisions_at_fixed_times() {
    let follow = |holder: &str, expires| Decision::Follow {
        holder: holder.into(),
        expires,
    };
    let theirs = lease(Some("b"), Some(T0), Some(10));
    let cases: [(&str, Option<Lease>, OffsetDateTime, Decision); 9] = [
        ("a missing Lease is acquired", None, T0, Decision::Acquire),
        (
            "a Lease without a holder is acquired",
            Some(lease(None, Some(T0), Some(10))),
            T0,
            Decision::Acquire,
        ),
        (
            "a released Lease (empty holder) is acquired",
            Some(lease(Some(""), Some(T0), Some(10))),
            T0,
            Decision::Acquire,
        ),
        (
            "our own live Lease is renewed",
            Some(lease(Some("a"), Some(T0), Some(10))),
            at(5),
            Decision::Renew,
        ),
        (
            "our own expired Lease is renewed, not taken over",
            Some(lease(Some("a"), Some(T0), Some(10))),
            at(60),
            Decision::Renew,
        ),
        (
            "another holder's live Lease is followed",
            Some(theirs.clone()),
            at(5),
            follow("b", at(10)),
        ),
        (
            "a Lease is still held at exactly its expiry",
            Some(theirs.clone()),
            at(10),
            follow("b", at(10)),
        ),
        (
            "another holder's expired Lease is acquired",
            Some(theirs),
            at(11),
            Decision::Acquire,
        ),
        (
            "a held Lease without renewTime is acquired",
            Some(lease(Some("b"), None, Some(10))),
            T0,
            Decision::Acquire,
        ),
    ];
    for (name, lease, now, want) in cases {
        assert_eq!(decide(lease.as_ref(), "a", now, FIFTEEN), want, "{name}");
    }
}

#[test]
fn a_lease_without_a_duration_lasts_our_lease_duration() {
    let theirs = lease(Some("b"), Some(T0), None);
    assert_eq!(
        decide(Some(&theirs), "a", at(12), FIFTEEN),
        Decision::Follow {
            holder: "b".into(),
            expires: at(15)
        }
    );
    assert_eq!(
        decide(Some(&theirs), "a", at(16), FIFTEEN),
        Decision::Acquire
    );
}

#[test]
fn a_takeover_counts_a_transition_and_a_renewal_keeps_the_acquire_time() {
    let config = LeaseConfig::new("default", "a");
    let mut old = lease(Some("b"), Some(T0), Some(15));
    old.spec.as_mut().unwrap().lease_transitions = Some(3);
    old.spec.as_mut().unwrap().acquire_time = Some(micro_time(T0).unwrap());

    let taken = claim(
        Some(old),
        &config,
        &Decision::Acquire,
        micro_time(at(20)).unwrap(),
    );
    let spec = taken.spec.clone().unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(spec.lease_transitions, Some(4));
    assert_eq!(spec.acquire_time, Some(micro_time(at(20)).unwrap()));
    assert_eq!(spec.renew_time, Some(micro_time(at(20)).unwrap()));
    assert_eq!(spec.lease_duration_seconds, Some(15));

    let renewed = claim(
        Some(taken),
        &config,
        &Decision::Renew,
        micro_time(at(22)).unwrap(),
    );
    let spec = renewed.spec.unwrap();
    assert_eq!(spec.lease_transitions, Some(4));
    assert_eq!(spec.acquire_time, Some(micro_time(at(20)).unwrap()));
    assert_eq!(spec.renew_time, Some(micro_time(at(22)).unwrap()));

    let created = claim(None, &config, &Decision::Acquire, micro_time(T0).unwrap());
    assert_eq!(created.metadata.name.as_deref(), Some(DEFAULT_LEASE_NAME));
    assert_eq!(created.spec.unwrap().lease_transitions, Some(0));
}

#[test]
fn micro_time_round_trips_through_the_wire_format() {
    let t = datetime!(2026-11-02 10:00:00.123456 UTC);
    let json = serde_json::to_value(micro_time(t).unwrap()).unwrap();
    assert_eq!(json, "2026-11-02T10:00:00.123456Z");
    let back: MicroTime = serde_json::from_value(json).unwrap();
    assert_eq!(offset_date_time(&back), Some(t));
}

#[test]
fn timings_that_could_let_two_replicas_lead_are_refused() {
    let base = LeaseConfig::new("default", "a");
    assert!(base.validate().is_ok());
    assert_eq!(base.lease_seconds(), 15);
    let bad = [
        LeaseConfig {
            identity: String::new(),
            ..base.clone()
        },
        LeaseConfig {
            renew_deadline: FIFTEEN,
            ..base.clone()
        },
        LeaseConfig {
            retry_period: Duration::from_secs(10),
            ..base.clone()
        },
        LeaseConfig {
            retry_period: Duration::ZERO,
            ..base.clone()
        },
        LeaseConfig {
            lease_duration: Duration::from_millis(900),
            renew_deadline: Duration::from_millis(500),
            ..base.clone()
        },
    ];
    for config in bad {
        assert!(config.validate().is_err(), "{config:?}");
    }
    let rounded = LeaseConfig {
        lease_duration: Duration::from_millis(1500),
        ..base
    };
    assert_eq!(rounded.lease_seconds(), 2);
}

// Against the loopback API server.

fn short(identity: &str) -> LeaseConfig {
    LeaseConfig {
        lease_duration: Duration::from_secs(1),
        renew_deadline: Duration::from_millis(500),
        retry_period: Duration::from_millis(100),
        ..LeaseConfig::new("default", identity)
    }
}

/// A clock standing at `T0` until the test moves it; hand it to every elector of a test.
fn manual_clock() -> (Clock, ManualClock) {
    ManualClock::at(T0)
}

async fn elector(h: &Harness, config: LeaseConfig, clock: &Clock) -> Elector {
    Elector::new(h.kube_client("c1").await, config, clock.clone()).expect("a valid configuration")
}

async fn stored(h: &Harness) -> LeaseSpec {
    let api: Api<Lease> = Api::namespaced(h.kube_client("c1").await, "default");
    api.get(DEFAULT_LEASE_NAME)
        .await
        .expect("the Lease exists")
        .spec
        .expect("a spec")
}

/// Waits until `rx` shows a value for which `condition` holds; the timeout only keeps a
/// broken test from hanging.
async fn eventually<T>(rx: &mut watch::Receiver<T>, what: &str, condition: impl FnMut(&T) -> bool) {
    tokio::time::timeout(Duration::from_secs(20), rx.wait_for(condition))
        .await
        .unwrap_or_else(|_| panic!("{what} never happened"))
        .expect("the elector is running");
}

/// Waits until `rx` shows `want`.
async fn wait_for(rx: &mut watch::Receiver<bool>, want: bool) {
    eventually(rx, &format!("leadership becoming {want}"), |l| *l == want).await;
}

/// Waits until the elector behind `seen` has finished `more` attempts beyond those it had
/// finished when called, and returns what it saw then.
async fn attempts(seen: &mut watch::Receiver<Observation>, more: u64) -> Observation {
    let target = seen.borrow().attempts + more;
    eventually(seen, &format!("attempt {target}"), |o| o.attempts >= target).await;
    seen.borrow().clone()
}

#[tokio::test]
async fn of_two_candidates_exactly_one_leads() {
    let h = Harness::start(&["c1"]);
    let (clock, _manual) = manual_clock();
    let a = elector(&h, LeaseConfig::new("default", "a"), &clock).await;
    let b = elector(&h, LeaseConfig::new("default", "b"), &clock).await;
    assert!(a.try_acquire_or_renew().await.unwrap());
    assert!(!b.try_acquire_or_renew().await.unwrap());
    assert!(a.try_acquire_or_renew().await.unwrap(), "the leader renews");
    assert!(!b.try_acquire_or_renew().await.unwrap());
    let spec = stored(&h).await;
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(spec.lease_transitions, Some(0));
    assert_eq!(spec.lease_duration_seconds, Some(15));
    let seen = b.observations().borrow().clone();
    assert_eq!((seen.attempts, seen.leader.as_deref()), (2, Some("a")));
}

#[tokio::test]
async fn the_follower_waits_while_the_leader_renews_and_takes_over_once_it_expires() {
    let h = Harness::start(&["c1"]);
    let (clock, manual) = manual_clock();
    let a = elector(&h, short("a"), &clock).await;
    let b = elector(&h, short("b"), &clock).await;
    assert!(a.try_acquire_or_renew().await.unwrap());
    // Renewing every 0.6 s keeps a 1 s Lease alive past its first expiry.
    for _ in 0..3 {
        manual.advance(Duration::from_millis(600));
        assert!(a.try_acquire_or_renew().await.unwrap());
        assert!(
            !b.try_acquire_or_renew().await.unwrap(),
            "b does not take a renewed Lease"
        );
    }
    assert_eq!(stored(&h).await.holder_identity.as_deref(), Some("a"));

    // a stops renewing: its Lease holds up to its expiry, 1 s after the last renewal …
    manual.advance(Duration::from_millis(1000));
    assert!(
        !b.try_acquire_or_renew().await.unwrap(),
        "a Lease is still held at exactly its expiry"
    );
    // … and once it has expired, b takes it over.
    manual.advance(Duration::from_millis(500));
    assert!(b.try_acquire_or_renew().await.unwrap());
    assert!(!a.try_acquire_or_renew().await.unwrap(), "a lost the Lease");
    let spec = stored(&h).await;
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
}

#[tokio::test]
async fn a_conflict_on_create_or_replace_means_someone_else_won() {
    let h = Harness::start(&["c1"]);
    let c1 = h.cluster("c1");
    let (clock, _manual) = manual_clock();
    let a = elector(&h, LeaseConfig::new("default", "a"), &clock).await;
    c1.fail(
        FaultRule::new(Fault::Status(409))
            .method(Method::POST)
            .path_contains("/leases"),
    );
    assert!(!a.try_acquire_or_renew().await.unwrap(), "409 on create");
    assert!(a.try_acquire_or_renew().await.unwrap());
    c1.fail(
        FaultRule::new(Fault::Status(409))
            .method(Method::PUT)
            .path_contains("/leases/"),
    );
    assert!(!a.try_acquire_or_renew().await.unwrap(), "409 on replace");
    assert!(
        a.try_acquire_or_renew().await.unwrap(),
        "the next round renews"
    );
}

#[tokio::test]
async fn other_api_errors_are_errors_not_lost_elections() {
    let h = Harness::start(&["c1"]);
    let (clock, _manual) = manual_clock();
    let a = elector(&h, LeaseConfig::new("default", "a"), &clock).await;
    h.cluster("c1").fail(
        FaultRule::new(Fault::Status(500))
            .method(Method::GET)
            .path_contains("/leases/"),
    );
    let e = a.try_acquire_or_renew().await.unwrap_err();
    assert!(
        format!("{e:#}").contains("default/meshtrust-controller"),
        "{e:#}"
    );
}

#[tokio::test]
async fn a_released_lease_is_taken_over_at_once() {
    let h = Harness::start(&["c1"]);
    let (clock, _manual) = manual_clock();
    let a = elector(&h, LeaseConfig::new("default", "a"), &clock).await;
    let b = elector(&h, LeaseConfig::new("default", "b"), &clock).await;
    assert!(a.try_acquire_or_renew().await.unwrap());
    assert!(!b.release().await.unwrap(), "b cannot release a's Lease");
    assert!(a.release().await.unwrap());
    assert_eq!(stored(&h).await.holder_identity, None);
    assert!(
        b.try_acquire_or_renew().await.unwrap(),
        "no need to wait 15 s"
    );
    assert_eq!(stored(&h).await.lease_transitions, Some(1));
}

#[tokio::test]
async fn run_publishes_leadership_and_hands_over_on_shutdown() {
    let h = Harness::start(&["c1"]);
    // The clock stands still, so a's Lease never expires: b can only take over because a
    // releases it.
    let (clock, _manual) = manual_clock();
    let long = |id: &str| LeaseConfig {
        lease_duration: Duration::from_secs(30),
        renew_deadline: Duration::from_secs(20),
        retry_period: Duration::from_millis(100),
        ..LeaseConfig::new("default", id)
    };
    let (a_tx, mut a_rx) = watch::channel(false);
    let (a_stop, a_stopped) = tokio::sync::oneshot::channel::<()>();
    let a = elector(&h, long("a"), &clock).await;
    let mut a_seen = a.observations();
    let a = tokio::spawn(a.run(a_tx, async move {
        let _ = a_stopped.await;
    }));
    wait_for(&mut a_rx, true).await;

    let (b_tx, mut b_rx) = watch::channel(false);
    let (_b_stop, b_stopped) = tokio::sync::oneshot::channel::<()>();
    let b = elector(&h, long("b"), &clock).await;
    let mut b_seen = b.observations();
    let b = tokio::spawn(b.run(b_tx, async move {
        let _ = b_stopped.await;
    }));
    // b has looked at the Lease three times and found a leading (had it taken the Lease
    // at any of them, it would have seen itself as leader since: a cannot take a live
    // Lease back); `run` publishes an attempt's observation after its leadership.
    let seen = attempts(&mut b_seen, 3).await;
    assert_eq!(seen.leader.as_deref(), Some("a"));
    assert!(!*b_rx.borrow(), "b follows while a renews");
    let seen = attempts(&mut a_seen, 1).await;
    assert_eq!(seen.leader.as_deref(), Some("a"), "a renews");

    a_stop.send(()).unwrap();
    a.await.expect("a's elector ends");
    assert!(!*a_rx.borrow(), "a published that it no longer leads");
    wait_for(&mut b_rx, true).await;
    let spec = stored(&h).await;
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
    b.abort();
}

#[tokio::test]
async fn run_steps_down_when_it_cannot_renew_and_leads_again_once_it_can() {
    let h = Harness::start(&["c1"]);
    let c1 = h.cluster("c1");
    let (clock, manual) = manual_clock();
    let (tx, mut rx) = watch::channel(false);
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = LeaseConfig {
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_secs(1),
        retry_period: Duration::from_millis(100),
        ..LeaseConfig::new("default", "a")
    };
    let a = elector(&h, config, &clock).await;
    let mut seen = a.observations();
    let task = tokio::spawn(a.run(tx, async move {
        let _ = stopped.await;
    }));
    wait_for(&mut rx, true).await;
    c1.fail(
        FaultRule::new(Fault::Status(500))
            .method(Method::PUT)
            .path_contains("/leases/")
            .always(),
    );
    // Failed renewals alone do not end leadership while the clock stands still …
    attempts(&mut seen, 3).await;
    assert!(*rx.borrow(), "a leads until its renew deadline has passed");
    // … the renew deadline passing since the last renewal does.
    manual.advance(Duration::from_secs(1));
    wait_for(&mut rx, false).await;
    c1.clear_faults();
    wait_for(&mut rx, true).await;
    task.abort();
}
