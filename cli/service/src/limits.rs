//! Per-principal rate limiting: a token bucket per principal (a cluster, the admin, or a
//! client address), refilled continuously, read from the one clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use meshtrust_issuer::Clock;
use tokio::time::Instant;

/// Buckets kept before full ones are forgotten.
const MAX_BUCKETS: usize = 100_000;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// `per_minute` requests a minute per key, in bursts of up to `per_minute`.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    clock: Clock,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A limiter allowing `per_minute` requests a minute per key.
    pub fn new(per_minute: u32, clock: Clock) -> RateLimiter {
        RateLimiter {
            per_minute,
            clock,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `key`'s bucket, or says how long until one is available.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = self.clock.instant();
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * per_second < capacity
            });
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let refilled = now.duration_since(bucket.at).as_secs_f64() * per_second;
        bucket.tokens = (bucket.tokens + refilled).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshtrust_issuer::ManualClock;
    use time::macros::datetime;

    #[tokio::test]
    async fn a_key_gets_its_burst_then_waits_for_the_refill_while_others_are_unaffected() {
        let (clock, manual) = ManualClock::at(datetime!(2026-01-01 00:00 UTC));
        let limiter = RateLimiter::new(3, clock);
        for _ in 0..3 {
            assert!(limiter.check("east").is_ok());
        }
        let wait = limiter.check("east").unwrap_err();
        assert!(wait > Duration::from_secs(19) && wait <= Duration::from_secs(20));
        assert!(limiter.check("west").is_ok());
        manual.advance(Duration::from_secs(20));
        assert!(limiter.check("east").is_ok());
        assert!(limiter.check("east").is_err());
    }
}
