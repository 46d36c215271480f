//! The duration parser (`90d`, `2y`, `30s`): any text gets `Ok` or `Err`, never a panic
//! or an overflow, and what it accepts is positive.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshtrust_ca::duration;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = duration::parse(text) {
        assert!(d.is_positive(), "`{text}` parsed as {d}");
        let _ = duration::human(d);
    }
    if let Ok(d) = duration::parse_std(text) {
        assert!(!d.is_zero(), "`{text}` parsed as zero");
    }
});
