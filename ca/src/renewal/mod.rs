//! Does a cluster's intermediate need reissuing, and when should the controller look again?
//!
//! The renewal time ([`RenewalPolicy`]), when to look again ([`next_check`]) and how long to
//! wait after a failure ([`Backoff`]) are here; the chain of checks that decides whether to
//! reissue ([`reissue_reason`]) is in `reissue.rs`.

use time::{Duration, OffsetDateTime};

use crate::bundle::{BundleFiles, BundleFormat};
use crate::cert::Certificate;
use crate::error::{Error, Result};

mod reissue;

pub use reissue::{Reissue, ReissueReason, reissue_reason};

/// When an intermediate is renewed, relative to its validity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RenewalPolicy {
    /// Renew this long before notAfter. A duration that is not shorter than the lifetime (or
    /// not positive) would renew at once and forever, so it falls back to [`Self::Default`],
    /// as cert-manager does with a renewBefore longer than the certificate's duration.
    Before(Duration),
    /// Renew this percentage of the lifetime before notAfter (cert-manager's
    /// `renewBeforePercentage`). Values outside 1..=99 fall back to [`Self::Default`]; build
    /// it with [`RenewalPolicy::before_percentage`] to have them refused instead.
    BeforePercentage(u8),
    /// Renew at two thirds of the lifetime (notAfter − lifetime/3), cert-manager's default.
    #[default]
    Default,
}

impl RenewalPolicy {
    /// `BeforePercentage(percent)`, refusing values outside 1..=99.
    pub fn before_percentage(percent: u8) -> Result<RenewalPolicy> {
        if (1..=99).contains(&percent) {
            Ok(RenewalPolicy::BeforePercentage(percent))
        } else {
            Err(Error::InvalidParameter {
                field: "renew before percentage",
                reason: format!("{percent} is not between 1 and 99 (e.g. 33)"),
            })
        }
    }

    /// The instant a certificate valid from `not_before` to `not_after` is due for renewal,
    /// truncated to the second (Kubernetes timestamps have no fraction). A certificate with
    /// no positive lifetime is due at its notAfter.
    pub fn renewal_time(
        &self,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> OffsetDateTime {
        let lifetime = not_after - not_before;
        if lifetime <= Duration::ZERO {
            return not_after;
        }
        let before = match *self {
            RenewalPolicy::Before(d) if d > Duration::ZERO && d < lifetime => d,
            RenewalPolicy::BeforePercentage(p) if (1..=99).contains(&p) => {
                lifetime * i32::from(p) / 100
            }
            _ => lifetime / 3,
        };
        let due = not_after - before;
        due.replace_nanosecond(0).unwrap_or(due)
    }
}

/// When the controller should look at a cluster again: the renewal time of the CA
/// certificate in `current` (either form), or `None` when it cannot be read — then
/// [`reissue_reason`] has a reason already.
pub fn next_check(current: &BundleFiles, policy: &RenewalPolicy) -> Option<OffsetDateTime> {
    let format = BundleFormat::detect(current.names());
    let certs =
        Certificate::all_from_pem(format.cert_file(), current.get(format.cert_file())?).ok()?;
    let ca = certs.first()?;
    Some(policy.renewal_time(ca.not_before(), ca.not_after()))
}

/// How long to wait after failed attempts: `base · 2^(attempts − 1)`, at most `cap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after the first failure.
    pub base: Duration,
    /// The longest delay.
    pub cap: Duration,
}

impl Default for Backoff {
    /// 5 seconds, doubling up to 5 minutes.
    fn default() -> Self {
        Backoff {
            base: Duration::seconds(5),
            cap: Duration::minutes(5),
        }
    }
}

impl Backoff {
    /// The delay after `failed_attempts` consecutive failures: zero after none, then
    /// `base`, `2·base`, `4·base`, … up to `cap`, for any count without overflowing. A
    /// non-positive `base` or `cap` gives zero.
    pub fn delay(&self, failed_attempts: u32) -> Duration {
        let cap = self.cap.max(Duration::ZERO);
        if failed_attempts == 0 || self.base <= Duration::ZERO {
            return Duration::ZERO;
        }
        // 2^100 ns exceeds Duration::MAX, so a larger shift would be capped anyway.
        let shift = (failed_attempts - 1).min(100);
        match self.base.whole_nanoseconds().checked_mul(1i128 << shift) {
            Some(ns) if ns < cap.whole_nanoseconds() => {
                // Below `cap`, so both parts fit.
                Duration::new((ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as i32)
            }
            _ => cap,
        }
    }

    /// When to try again after the `failed_attempts`-th failure, which happened at
    /// `last_failure`.
    pub fn retry_at(&self, last_failure: OffsetDateTime, failed_attempts: u32) -> OffsetDateTime {
        last_failure.saturating_add(self.delay(failed_attempts))
    }
}
