//! One retry policy for every Kubernetes request meshtrust makes, in place of kube's
//! default one (`Config::default_retry`: 15 retries of 429, 503 and 504 with delays
//! doubling up to 1000 s, so that one request to an unhealthy API server could wait for
//! minutes and hold its whole command up).
//!
//! Retried: 429 (after its `Retry-After` when that fits the budget), 500, 502, 503, 504,
//! and transport failures that say nothing about the request (a connection reset or
//! aborted, a timed-out read, a connection closed before the answer). Nothing else: a 4xx
//! is the request's own fault, and a refused connection is a wrong address far more often
//! than a restarting server. The delays double from [`RetrySettings::base_delay`] up to
//! [`RetrySettings::max_delay`], each one jittered (a random point in its upper half), and
//! no delay starts that would end past the request's budget.
//!
//! A retried write stays correct because every write meshtrust makes is either a create
//! (a repeat of one whose answer was lost comes back 409, and the caller recognises its own
//! object) or a replace that carries the resourceVersion it read (a repeat comes back 409
//! rather than overwriting).

use std::time::Duration;

use http::{Request, Response, StatusCode};
use kube::client::Body;
use meshtrust_issuer::Clock;
use tokio::time::Instant;
use tower::BoxError;
use tower::retry::Policy;

/// How requests are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetrySettings {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The first delay; each next one is twice the last, up to `max_delay`.
    pub base_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// The time one request may take, every attempt and delay included.
    pub budget: Duration,
}

/// Retries after the first attempt, by default.
pub(crate) const MAX_RETRIES: u32 = 4;

impl RetrySettings {
    /// Four retries, delays from 250 ms doubling up to 4 s, within `budget`.
    pub fn within(budget: Duration) -> RetrySettings {
        RetrySettings {
            max_retries: MAX_RETRIES,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
            budget,
        }
    }

    /// The delay before retry `retry` (1-based), before jitter.
    fn delay(&self, retry: u32) -> Duration {
        let doubled = self.base_delay.saturating_mul(
            1u32.checked_shl(retry.saturating_sub(1))
                .unwrap_or(u32::MAX),
        );
        doubled.min(self.max_delay)
    }
}

/// The policy of one request: [`RetrySettings`] and what has happened so far. Cloned for
/// every request (tower's `Retry` does so), so each keeps its own count and start.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    settings: RetrySettings,
    retries: u32,
    clock: Clock,
    started: Instant,
    rng: fastrand::Rng,
}

impl RetryPolicy {
    /// A policy with `settings`, timing each request's budget on `clock`.
    pub fn new(settings: RetrySettings, clock: Clock) -> RetryPolicy {
        RetryPolicy {
            settings,
            retries: 0,
            started: clock.instant(),
            clock,
            rng: fastrand::Rng::new(),
        }
    }

    /// The wait before the next attempt after `result`, if there is to be one.
    fn next_delay<B>(&mut self, result: &Result<Response<B>, BoxError>) -> Option<Duration> {
        if self.retries >= self.settings.max_retries {
            return None;
        }
        let at_least = match result {
            Ok(response) if !is_retried_status(response.status().as_u16()) => return None,
            Ok(response) if response.status() == StatusCode::TOO_MANY_REQUESTS => {
                retry_after(response)
            }
            Ok(_) => None,
            Err(e) if is_transient(e.as_ref()) => None,
            Err(_) => return None,
        };
        let full = self.settings.delay(self.retries + 1);
        let half = full / 2;
        let jittered = half + half.mul_f64(self.rng.f64());
        let delay = at_least.map_or(jittered, |server| server.max(jittered));
        let ends = self.clock.elapsed(self.started) + delay;
        (ends < self.settings.budget).then_some(delay)
    }
}

/// Whether an answer with HTTP status `code` is retried: 429 and 500, 502, 503, 504.
pub(crate) fn is_retried_status(code: u16) -> bool {
    matches!(code, 429 | 500 | 502 | 503 | 504)
}

/// The `Retry-After` of a 429, in seconds (the form the API server sends).
fn retry_after<B>(response: &Response<B>) -> Option<Duration> {
    let value = response.headers().get(http::header::RETRY_AFTER)?;
    let seconds: u64 = value.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

/// Whether a transport failure is one that another attempt may not meet: a connection
/// reset, aborted or closed before the answer, or a read that timed out.
fn is_transient(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::UnexpectedEof
            )
        {
            return true;
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>()
            && (h.is_incomplete_message() || h.is_timeout())
        {
            return true;
        }
        source = e.source();
    }
    false
}

impl<B> Policy<Request<Body>, Response<B>, BoxError> for RetryPolicy {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        _request: &mut Request<Body>,
        result: &mut Result<Response<B>, BoxError>,
    ) -> Option<Self::Future> {
        let delay = self.next_delay(result)?;
        self.retries += 1;
        let reason = match result {
            Ok(response) => format!("HTTP {}", response.status().as_u16()),
            Err(e) => e.to_string(),
        };
        tracing::debug!(
            retry = self.retries,
            delay_ms = delay.as_millis() as u64,
            %reason,
            "retrying a Kubernetes request"
        );
        Some(tokio::time::sleep(delay))
    }

    fn clone_request(&mut self, request: &Request<Body>) -> Option<Request<Body>> {
        if self.retries == 0 {
            // The first attempt of a request: its budget starts now (tower asks before
            // the first call, on the policy that is then cloned for this request).
            self.started = self.clock.instant();
            self.rng = fastrand::Rng::new();
        }
        let body = request.body().try_clone()?;
        let mut copy = Request::builder()
            .method(request.method().clone())
            .uri(request.uri().clone())
            .version(request.version())
            .body(body)
            .ok()?;
        *copy.headers_mut() = request.headers().clone();
        *copy.extensions_mut() = request.extensions().clone();
        Some(copy)
    }
}

#[cfg(test)]
#[path = "retry_tests.rs"]
mod tests;
