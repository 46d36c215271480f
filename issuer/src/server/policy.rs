//! The template a batch through `meshtrust serve` must use: the service sets the subject,
//! the SANs, the path length and the validity by its own policy, refuses a CSR whose
//! subject or SANs differ, and accepts only the key types it lists. Taking them from the
//! service before any key is generated means a user's flags can never spend a one-time
//! token on a request the service refuses or an answer the client then rejects.

use meshtrust_ca::{IntermediateParams, duration};
use time::Duration;

use crate::error::{Error, Result};
use crate::server::api::PolicyInfo;

/// `params` with the service's policy applied, and a notice for each field that changed.
/// Refused when the service does not accept `params.key_type`.
pub(crate) fn apply_policy(
    service: &str,
    params: &IntermediateParams,
    policy: &PolicyInfo,
) -> Result<(IntermediateParams, Vec<String>)> {
    if !policy
        .key_types
        .iter()
        .any(|k| k == params.key_type.as_str())
    {
        return Err(Error::Config {
            location: service.to_string(),
            reason: format!(
                "it signs intermediates with keys of type {} only, not {}: choose one of those (--key-type)",
                policy.key_types.join(", "),
                params.key_type
            ),
        });
    }
    let validity = Duration::seconds(policy.validity_seconds);
    let notices = differences(params, policy, validity)
        .into_iter()
        .filter(|(_, asked, policy)| asked != policy)
        .map(|(field, asked, policy)| {
            format!(
                "{service} sets the intermediate's {field} by its policy: {policy} (asked: {asked})"
            )
        })
        .collect();
    let mut applied = params.clone();
    applied.organization.clone_from(&policy.organization);
    applied.common_name.clone_from(&policy.common_name);
    applied.dns_names.clone_from(&policy.dns_names);
    applied.path_len = policy.path_len;
    applied.validity = validity;
    Ok((applied, notices))
}

/// Each field the policy sets: its name, as asked, and as the policy has it.
fn differences(
    params: &IntermediateParams,
    policy: &PolicyInfo,
    validity: Duration,
) -> [(&'static str, String, String); 5] {
    [
        (
            "subject O",
            params.organization.clone(),
            policy.organization.clone(),
        ),
        (
            "subject CN",
            params.common_name.clone(),
            policy.common_name.clone(),
        ),
        (
            "DNS names",
            params.dns_names.join(","),
            policy.dns_names.join(","),
        ),
        (
            "path length",
            params.path_len.to_string(),
            policy.path_len.to_string(),
        ),
        (
            "validity",
            duration::human(params.validity),
            duration::human(validity),
        ),
    ]
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
