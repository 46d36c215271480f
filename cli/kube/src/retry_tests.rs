use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tower::retry::RetryLayer;
use tower::{Layer, Service, ServiceExt};

use super::*;

fn settings() -> RetrySettings {
    RetrySettings::within(Duration::from_secs(30))
}

fn answer(status: u16) -> Result<Response<()>, BoxError> {
    Ok(Response::builder().status(status).body(()).unwrap())
}

fn failure(kind: std::io::ErrorKind) -> Result<Response<()>, BoxError> {
    Err(Box::new(std::io::Error::new(kind, "test")))
}

#[test]
fn delays_double_from_the_base_up_to_the_cap() {
    let s = settings();
    let ms: Vec<u128> = (1..=7).map(|r| s.delay(r).as_millis()).collect();
    assert_eq!(ms, [250, 500, 1000, 2000, 4000, 4000, 4000]);
    assert_eq!(s.delay(u32::MAX), s.max_delay);
}

#[tokio::test(start_paused = true)]
async fn server_errors_and_broken_connections_are_retried_and_nothing_else() {
    for status in [500, 502, 503, 504, 429] {
        let mut p = RetryPolicy::new(settings(), Clock::system());
        let d = p.next_delay(&answer(status)).expect("retried");
        assert!(
            d >= Duration::from_millis(125) && d <= Duration::from_millis(250),
            "{status}: {d:?}"
        );
    }
    for status in [200, 201, 400, 401, 403, 404, 409, 410, 422, 501] {
        let mut p = RetryPolicy::new(settings(), Clock::system());
        assert_eq!(p.next_delay(&answer(status)), None, "{status}");
    }
    use std::io::ErrorKind::*;
    for kind in [
        ConnectionReset,
        ConnectionAborted,
        BrokenPipe,
        TimedOut,
        UnexpectedEof,
    ] {
        let mut p = RetryPolicy::new(settings(), Clock::system());
        assert!(p.next_delay(&failure(kind)).is_some(), "{kind:?}");
    }
    for kind in [ConnectionRefused, PermissionDenied, InvalidData] {
        let mut p = RetryPolicy::new(settings(), Clock::system());
        assert_eq!(p.next_delay(&failure(kind)), None, "{kind:?}");
    }
    // The io error is found below other errors too.
    let wrapped: BoxError = Box::new(kube::Error::Service(Box::new(std::io::Error::new(
        ConnectionReset,
        "reset",
    ))));
    assert!(is_transient(wrapped.as_ref()));
}

#[tokio::test(start_paused = true)]
async fn a_429_waits_its_retry_after_unless_that_ends_past_the_budget() {
    let limited = |seconds: &str| -> Result<Response<()>, BoxError> {
        Ok(Response::builder()
            .status(429)
            .header("Retry-After", seconds)
            .body(())
            .unwrap())
    };
    let mut p = RetryPolicy::new(settings(), Clock::system());
    assert_eq!(p.next_delay(&limited("3")), Some(Duration::from_secs(3)));
    let mut p = RetryPolicy::new(settings(), Clock::system());
    assert_eq!(p.next_delay(&limited("30")), None);
    // An unreadable Retry-After is the usual backoff.
    let mut p = RetryPolicy::new(settings(), Clock::system());
    assert!(p.next_delay(&limited("soon")).unwrap() <= Duration::from_millis(250));
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_the_count_and_at_the_budget() {
    let mut p = RetryPolicy::new(settings(), Clock::system());
    for _ in 0..4 {
        assert!(p.next_delay(&answer(503)).is_some());
        p.retries += 1;
    }
    assert_eq!(p.next_delay(&answer(503)), None, "a fifth retry");

    let mut p = RetryPolicy::new(
        RetrySettings::within(Duration::from_secs(2)),
        Clock::system(),
    );
    tokio::time::advance(Duration::from_millis(1_800)).await;
    // 1.8 s spent of 2 s: a delay of at least 125 ms could still fit, 250 ms could not.
    let d = p.next_delay(&answer(503));
    assert!(d.is_none_or(|d| d < Duration::from_millis(200)), "{d:?}");
    tokio::time::advance(Duration::from_millis(200)).await;
    assert_eq!(p.next_delay(&answer(503)), None, "budget spent");
}

/// A service answering `statuses` in turn (then 200), counting its calls and checking
/// that every attempt carries the request's body.
fn scripted(
    statuses: Vec<u16>,
    calls: Arc<AtomicU32>,
) -> impl Service<
    Request<Body>,
    Response = Response<()>,
    Error = BoxError,
    Future = impl Future<Output = Result<Response<()>, BoxError>> + Send,
> + Clone {
    tower::service_fn(move |request: Request<Body>| {
        let n = calls.fetch_add(1, Ordering::SeqCst) as usize;
        let status = statuses.get(n).copied().unwrap_or(200);
        async move {
            let body = request.into_body().collect_bytes().await.unwrap();
            assert_eq!(&body[..], b"{\"kind\":\"Secret\"}");
            answer(status)
        }
    })
}

fn post() -> Request<Body> {
    Request::post("/api/v1/namespaces/istio-system/secrets")
        .body(Body::from(b"{\"kind\":\"Secret\"}".to_vec()))
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_request_is_sent_again_with_its_body_until_it_succeeds() {
    let calls = Arc::new(AtomicU32::new(0));
    let layer = RetryLayer::new(RetryPolicy::new(settings(), Clock::system()));
    let service = layer.layer(scripted(vec![503, 500], calls.clone()));
    let started = Clock::system().instant();
    let response = service.oneshot(post()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // Two delays: 125–250 ms, then 250–500 ms.
    let waited = Clock::system().elapsed(started);
    assert!(
        waited >= Duration::from_millis(375) && waited <= Duration::from_millis(750),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_api_server_that_always_fails_is_given_up_on_within_the_budget() {
    let calls = Arc::new(AtomicU32::new(0));
    let layer = RetryLayer::new(RetryPolicy::new(settings(), Clock::system()));
    let mut service = layer.layer(scripted(vec![503; 100], calls.clone()));
    let started = Clock::system().instant();
    let response = service.ready().await.unwrap().call(post()).await.unwrap();
    assert_eq!(response.status(), 503, "the last answer is the caller's");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        5,
        "the first attempt and 4 retries"
    );
    assert!(
        Clock::system().elapsed(started) <= Duration::from_millis(7_500),
        "{:?}",
        Clock::system().elapsed(started)
    );

    // The next request through the same service has a count and a budget of its own.
    calls.store(99, Ordering::SeqCst);
    let response = service.ready().await.unwrap().call(post()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        101,
        "one 503 left, then a 200"
    );
}
