//! The one clock of meshtrust. Everything that reads time — issuance, delivery, the
//! controller's rounds, leader election, metrics timers — is handed a [`Clock`]; nothing
//! else reads the system clock (clippy's `disallowed-methods` keeps it so: this module is
//! the only one allowed to).
//!
//! A clock tells two times: [`Clock::now`], the wall-clock instant certificates, Leases and
//! status timestamps are stamped with, and [`Clock::instant`], a monotonic instant for
//! deadlines and durations (tokio's, so that tests with paused time control it too).
//!
//! With the `test-clock` feature, which only tests enable, two more sources exist: a
//! [`ManualClock`] that moves only when a test says so, and a clock offset by a number of
//! seconds read from a file (how the end-to-end suites move a running controller months
//! ahead). Release builds have neither.

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::time::Instant;

/// Where "now" comes from. Cheap to clone; clones share their source.
#[derive(Clone)]
pub struct Clock {
    source: Arc<Source>,
}

enum Source {
    System,
    #[cfg(feature = "test-clock")]
    Manual(ManualClock),
    #[cfg(feature = "test-clock")]
    OffsetFile(std::path::PathBuf),
}

impl Default for Clock {
    /// The system clock.
    fn default() -> Self {
        Clock::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.source {
            Source::System => f.write_str("Clock::System"),
            #[cfg(feature = "test-clock")]
            Source::Manual(_) => f.write_str("Clock::Manual"),
            #[cfg(feature = "test-clock")]
            Source::OffsetFile(p) => write!(f, "Clock::OffsetFile({})", p.display()),
        }
    }
}

impl Clock {
    /// The system clock (wall time from the OS, monotonic time from tokio).
    pub fn system() -> Clock {
        Clock {
            source: Arc::new(Source::System),
        }
    }

    /// The current wall-clock instant, in UTC.
    #[allow(clippy::disallowed_methods)] // The one place the system clock is read.
    pub fn now(&self) -> OffsetDateTime {
        match &*self.source {
            Source::System => OffsetDateTime::now_utc(),
            #[cfg(feature = "test-clock")]
            Source::Manual(m) => m.now(),
            #[cfg(feature = "test-clock")]
            Source::OffsetFile(path) => OffsetDateTime::now_utc() + file_offset(path),
        }
    }

    /// A monotonic instant, for deadlines and elapsed times.
    #[allow(clippy::disallowed_methods)] // The one place the monotonic clock is read.
    pub fn instant(&self) -> Instant {
        match &*self.source {
            Source::System => Instant::now(),
            #[cfg(feature = "test-clock")]
            Source::Manual(m) => m.instant(),
            #[cfg(feature = "test-clock")]
            Source::OffsetFile(_) => Instant::now(),
        }
    }

    /// Time elapsed since `earlier` (an instant of this clock), zero if it lies ahead.
    pub fn elapsed(&self, earlier: Instant) -> std::time::Duration {
        self.instant().saturating_duration_since(earlier)
    }
}

#[cfg(feature = "test-clock")]
pub use testing::ManualClock;

#[cfg(feature = "test-clock")]
mod testing {
    use std::sync::{Arc, Mutex, PoisonError};
    use std::time::Duration;

    use time::OffsetDateTime;
    use tokio::time::Instant;

    use super::{Clock, Source};

    /// A clock that moves only when told to (test-only, feature `test-clock`). Its wall time
    /// starts where the test says; its monotonic time starts at the instant it is made and
    /// moves by the same amounts.
    #[derive(Clone, Debug)]
    pub struct ManualClock {
        state: Arc<Mutex<State>>,
    }

    #[derive(Debug)]
    struct State {
        wall: OffsetDateTime,
        monotonic: Instant,
    }

    impl ManualClock {
        /// A clock standing at `start`; returns the [`Clock`] to hand to the code under test
        /// and this handle to move it.
        #[allow(clippy::disallowed_methods)] // The monotonic origin of a test clock.
        pub fn at(start: OffsetDateTime) -> (Clock, ManualClock) {
            let manual = ManualClock {
                state: Arc::new(Mutex::new(State {
                    wall: start,
                    monotonic: Instant::now(),
                })),
            };
            let clock = Clock {
                source: Arc::new(Source::Manual(manual.clone())),
            };
            (clock, manual)
        }

        /// Moves both times forward by `by`.
        pub fn advance(&self, by: Duration) {
            let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            s.wall += by;
            s.monotonic += by;
        }

        /// The wall time it shows.
        pub fn now(&self) -> OffsetDateTime {
            self.state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .wall
        }

        pub(super) fn instant(&self) -> Instant {
            self.state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .monotonic
        }
    }

    impl Clock {
        /// The system clock plus a number of seconds read from `path` at every call (a
        /// missing or malformed file is an offset of zero). Test-only, feature `test-clock`:
        /// the end-to-end suites move a running controller ahead through it.
        pub fn offset_file(path: impl Into<std::path::PathBuf>) -> Clock {
            Clock {
                source: Arc::new(Source::OffsetFile(path.into())),
            }
        }
    }
}

#[cfg(feature = "test-clock")]
#[allow(clippy::disallowed_methods)] // Reading the test-only offset file.
fn file_offset(path: &std::path::Path) -> time::Duration {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .map(time::Duration::seconds)
        .unwrap_or(time::Duration::ZERO)
}

#[cfg(all(test, feature = "test-clock"))]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_both_times_move_together() {
        let (clock, manual) = ManualClock::at(datetime!(2026-12-01 00:00 UTC));
        let mark = clock.instant();
        assert_eq!(clock.now(), datetime!(2026-12-01 00:00 UTC));
        assert_eq!(clock.elapsed(mark), std::time::Duration::ZERO);
        manual.advance(std::time::Duration::from_secs(90));
        assert_eq!(clock.now(), datetime!(2026-12-01 00:01:30 UTC));
        assert_eq!(clock.elapsed(mark), std::time::Duration::from_secs(90));
        assert_eq!(clock.clone().now(), manual.now(), "clones share the source");
    }

    #[test]
    fn an_offset_file_moves_time_forward_and_a_missing_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offset");
        let clock = Clock::offset_file(&path);
        let before = Clock::system().now();
        assert!(clock.now() - before < time::Duration::hours(1));
        std::fs::write(&path, "864000\n").unwrap();
        assert!(clock.now() - before >= time::Duration::days(10));
        std::fs::write(&path, "garbage").unwrap();
        assert!(clock.now() - before < time::Duration::hours(1));
    }
}
