//! Certificate lifetimes on the command line: `90d`, `2y`, `8760h`.
//!
//! Written here rather than taken from `humantime` because certificate tooling means
//! 365-day years (openssl `-days 3650` is "10 years"), where humantime uses 365.25.

use time::Duration;

/// Parses `<number><unit>` with unit `ms`, `s`, `m` (minutes), `h`, `d`, `w` or `y` (365
/// days).
pub fn parse(text: &str) -> Result<Duration, String> {
    let fail = || {
        format!(
            "invalid duration `{text}`: use a whole number followed by ms, s, m, h, d, w or y (e.g. 90d, 2y, 8760h, 30s)"
        )
    };
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(fail)?;
    let (digits, unit) = t.split_at(split);
    let n: i64 = digits.parse().map_err(|_| fail())?;
    if n > 0 && unit == "ms" {
        return Ok(Duration::milliseconds(n));
    }
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        "w" => 86400 * 7,
        "y" => 86400 * 365,
        _ => return Err(fail()),
    };
    if n == 0 {
        return Err(format!(
            "invalid duration `{text}`: it must be greater than zero"
        ));
    }
    n.checked_mul(seconds)
        .filter(|s| *s <= 86400 * 365 * 1000)
        .map(Duration::seconds)
        .ok_or_else(|| format!("invalid duration `{text}`: longer than 1000 years"))
}

/// [`parse`] for timeouts (`std::time::Duration`).
pub fn parse_std(text: &str) -> Result<std::time::Duration, String> {
    parse(text).map(|d| d.unsigned_abs())
}

/// Formats a remaining lifetime compactly: `1y 214d`, `29d 3h`, `5h 12m`, `expired 3d ago`.
pub fn human(d: Duration) -> String {
    if d.is_negative() {
        return format!("expired {} ago", human(-d));
    }
    let days = d.whole_days();
    let (years, days) = (days / 365, days % 365);
    let hours = d.whole_hours() % 24;
    let minutes = d.whole_minutes() % 60;
    match (years, days) {
        (y, d) if y > 0 => format!("{y}y {d}d"),
        (_, d) if d > 0 => format!("{d}d {hours}h"),
        _ => format!("{hours}h {minutes}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_certificate_tools_count_them() {
        let cases = [
            ("days are 24 hours", "90d", Ok(Duration::days(90))),
            ("years are 365 days", "2y", Ok(Duration::days(730))),
            ("hours are accepted", "8760h", Ok(Duration::days(365))),
            ("weeks are accepted", "2w", Ok(Duration::days(14))),
            ("seconds are accepted", "30s", Ok(Duration::seconds(30))),
            ("minutes are accepted", "5m", Ok(Duration::minutes(5))),
            (
                "surrounding spaces are ignored",
                " 10y ",
                Ok(Duration::days(3650)),
            ),
        ];
        for (case, text, want) in cases {
            assert_eq!(parse(text), want, "{case}");
        }
        for (case, text) in [
            ("an unknown unit is refused", "2x"),
            ("a missing unit is refused", "90"),
            ("a missing number is refused", "d"),
            ("zero is refused", "0d"),
            ("a fraction is refused", "1.5y"),
            ("a negative number is refused", "-1d"),
            ("absurd lengths are refused", "99999999y"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(
                e.contains("duration") && e.contains(text.trim()),
                "{case}: {e}"
            );
        }
    }

    #[test]
    fn remaining_lifetimes_read_compactly() {
        assert_eq!(
            human(Duration::days(365 + 214) + Duration::hours(3)),
            "1y 214d"
        );
        assert_eq!(human(Duration::days(29) + Duration::hours(3)), "29d 3h");
        assert_eq!(human(Duration::minutes(312)), "5h 12m");
        assert_eq!(human(-Duration::days(3)), "expired 3d 0h ago");
    }
}
