//! Cluster names: the identity of one member of the mesh.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A cluster name: a DNS-1123 label (lowercase alphanumerics and `-`, starting and ending
/// alphanumeric, at most 63 characters), because it becomes a directory, a label value
/// and part of Gateway names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClusterName(String);

impl ClusterName {
    /// Checks `name` and wraps it.
    pub fn new(name: &str) -> Result<ClusterName> {
        if ClusterName::is_dns_label(name) {
            Ok(ClusterName(name.to_string()))
        } else {
            Err(Error::InvalidParameter {
                field: "cluster name",
                reason: format!(
                    "`{name}` is not a DNS-1123 label: use 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. `cluster-1`)"
                ),
            })
        }
    }

    /// Whether `s` is a DNS-1123 label: 1-63 lowercase letters, digits and `-`, starting
    /// and ending with a letter or digit (what a cluster name, and many Kubernetes names,
    /// must be).
    pub fn is_dns_label(s: &str) -> bool {
        (1..=63).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ClusterName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        ClusterName::new(s)
    }
}

impl TryFrom<String> for ClusterName {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        ClusterName::new(&s)
    }
}

impl From<ClusterName> for String {
    fn from(c: ClusterName) -> String {
        c.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names_must_be_dns_1123_labels() {
        let cases = [
            ("a lowercase name is accepted", "cluster1", true),
            ("dashes inside are accepted", "east-1", true),
            ("a single character is accepted", "a", true),
            ("63 characters are accepted", &"a".repeat(63), true),
            ("64 characters are refused", &"a".repeat(64), false),
            ("upper case is refused", "Cluster1", false),
            ("underscores are refused", "bad_name", false),
            ("a leading dash is refused", "-a", false),
            ("a trailing dash is refused", "a-", false),
            ("dots are refused", "a.b", false),
            ("the empty name is refused", "", false),
        ];
        for (case, name, ok) in cases {
            assert_eq!(ClusterName::new(name).is_ok(), ok, "{case}");
        }
    }

    #[test]
    fn the_error_names_the_value_and_the_rule() {
        let msg = ClusterName::new("Bad_Name").unwrap_err().to_string();
        assert!(
            msg.contains("Bad_Name") && msg.contains("DNS-1123"),
            "{msg}"
        );
    }
}
