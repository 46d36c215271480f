//! The controller's clock. Production reads the system clock; end-to-end tests move time
//! forward by writing an offset into a file (`--clock-offset-file`), so renewal and rotation
//! can be exercised without waiting months. Time keeps flowing either way, so backoff and
//! requeue delays behave as they would in production.

use std::path::PathBuf;

use time::{Duration, OffsetDateTime};

/// Where "now" comes from.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// The system clock plus a number of seconds read from this file at every call (a
    /// missing or empty file is an offset of zero). Test-only.
    OffsetFile(PathBuf),
}

impl Clock {
    /// The current instant.
    pub fn now(&self) -> OffsetDateTime {
        let real = OffsetDateTime::now_utc();
        match self {
            Clock::System => real,
            Clock::OffsetFile(path) => real + offset(path),
        }
    }
}

fn offset(path: &std::path::Path) -> Duration {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .map(Duration::seconds)
        .unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_file_moves_time_forward_and_a_missing_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offset");
        let clock = Clock::OffsetFile(path.clone());
        let before = clock.now();
        assert!(clock.now() - before < Duration::hours(1));
        std::fs::write(&path, "864000\n").unwrap();
        assert!(clock.now() - before >= Duration::days(10));
        std::fs::write(&path, "garbage").unwrap();
        assert!(clock.now() - before < Duration::hours(1));
    }
}
