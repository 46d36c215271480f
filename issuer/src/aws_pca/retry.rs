//! Retrying AWS calls: capped exponential backoff with full jitter, a timeout on every call.

use std::future::Future;
use std::time::Duration;

use super::api::ApiError;

/// How calls to AWS are bounded and retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time.
    pub base_delay: Duration,
    /// Ceiling of one backoff.
    pub max_delay: Duration,
    /// Timeout of one attempt.
    pub call_timeout: Duration,
    /// How long the certificate-issued waiter may wait.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
            call_timeout: Duration::from_secs(30),
            max_wait: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// A policy with the given attempts and delays (timeouts stay at their defaults).
    pub fn new(max_attempts: u32, base_delay: Duration, max_delay: Duration) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base_delay,
            max_delay,
            ..RetryPolicy::default()
        }
    }

    /// Sets the per-call timeout and the waiter's limit.
    pub fn with_timeouts(mut self, call_timeout: Duration, max_wait: Duration) -> RetryPolicy {
        self.call_timeout = call_timeout;
        self.max_wait = max_wait;
        self
    }

    /// The ceiling of the backoff after attempt `attempt` (1-based): base·2^(attempt-1),
    /// capped. The actual sleep is uniform in [0, ceiling] ("full jitter").
    pub fn backoff_ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// Runs `call` with a timeout per attempt, retrying retryable errors. Returns the last
    /// error, and how many attempts were made.
    pub async fn run<T, F, Fut>(&self, mut call: F) -> Result<T, (ApiError, u32)>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let mut attempt = 1;
        loop {
            let result = match tokio::time::timeout(self.call_timeout, call()).await {
                Ok(r) => r,
                Err(_) => Err(ApiError::Timeout(self.call_timeout)),
            };
            match result {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && attempt < self.max_attempts => {
                    let ceiling = self.backoff_ceiling(attempt);
                    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
                    tokio::time::sleep(Duration::from_nanos(fastrand::u64(0..=nanos))).await;
                    attempt += 1;
                }
                Err(e) => return Err((e, attempt)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let p = RetryPolicy::new(10, Duration::from_millis(100), Duration::from_secs(1));
        let got: Vec<_> = (1..=6).map(|a| p.backoff_ceiling(a).as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(
            p.backoff_ceiling(200),
            Duration::from_secs(1),
            "no overflow"
        );
    }

    #[tokio::test]
    async fn only_retryable_errors_are_retried_and_attempts_are_bounded() {
        let p = RetryPolicy::new(3, Duration::from_millis(1), Duration::from_millis(2));
        let mut calls = 0;
        let r: Result<(), _> = p
            .run(|| {
                calls += 1;
                async { Err(ApiError::Throttled("slow down".into())) }
            })
            .await;
        assert_eq!(r.unwrap_err().1, 3);
        assert_eq!(calls, 3);

        let mut calls = 0;
        let r: Result<(), _> = p
            .run(|| {
                calls += 1;
                async { Err(ApiError::AccessDenied("no".into())) }
            })
            .await;
        assert_eq!(r.unwrap_err().1, 1);
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn a_call_that_hangs_times_out() {
        let p = RetryPolicy::new(2, Duration::from_millis(1), Duration::from_millis(1))
            .with_timeouts(Duration::from_millis(20), Duration::from_millis(20));
        let r: Result<(), _> = p.run(std::future::pending).await;
        let (e, attempts) = r.unwrap_err();
        assert_eq!(e, ApiError::Timeout(Duration::from_millis(20)));
        assert_eq!(attempts, 2);
    }
}
