//! How results are shown: plain tables for people, one JSON document for scripts.

use comfy_table::{Table, presets};
use serde::Serialize;

/// A borderless table with a header row, like `kubectl get`.
pub fn table<I, S>(header: I) -> Table
where
    I: IntoIterator<Item = S>,
    S: Into<comfy_table::Cell>,
{
    let mut t = Table::new();
    t.load_preset(presets::NOTHING).set_header(header);
    t
}

/// Prints `value` as pretty JSON on stdout.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The first `n` characters of a fingerprint, for tables.
pub fn short(fingerprint: &str, n: usize) -> String {
    fingerprint.chars().take(n).collect()
}
