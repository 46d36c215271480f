//! What every backend's answer must satisfy before it is written anywhere.

use meshtrust_ca::{Certificate, Csr, IntermediateProfile, TrustBundle};

/// Checks a signed intermediate against its request: CA:TRUE with the requested path
/// length, keyUsage keyCertSign, the CSR's public key, no extendedKeyUsage that Go's
/// verifier would refuse, and a chain in which each certificate is issued by the next,
/// ending at (or issued by) a root of `trust`. Returns every mismatch found.
pub fn check_issued(
    csr: &Csr,
    profile: &IntermediateProfile,
    certificate: &Certificate,
    chain: &[Certificate],
    trust: &TrustBundle,
) -> Vec<String> {
    let mut problems = check_certificate(csr, profile, certificate);
    problems.extend(check_chain(certificate, chain, trust));
    problems
}

/// The checks of [`check_issued`] on the certificate alone: what it certifies and may do.
/// A backend that signed in this process with a root key matched to its certificate when
/// loaded (the local issuer) needs no more: verifying its own signature again could only
/// repeat the signing it just did, at the cost of an ECDSA verification per issuance.
pub fn check_certificate(
    csr: &Csr,
    profile: &IntermediateProfile,
    certificate: &Certificate,
) -> Vec<String> {
    let mut problems = Vec::new();
    if !certificate.is_ca() {
        problems
            .push("the certificate is not a CA (basicConstraints CA:TRUE is missing)".to_string());
    } else if certificate.path_len() != Some(u32::from(profile.path_len)) {
        problems.push(format!(
            "the path length is {} instead of {}",
            certificate
                .path_len()
                .map_or("unlimited".to_string(), |p| p.to_string()),
            profile.path_len
        ));
    }
    if !certificate.may_sign_certificates() {
        problems.push("keyUsage lacks keyCertSign".to_string());
    }
    if let Some(eku) = certificate.eku_without_server_auth() {
        problems.push(format!(
            "it carries extendedKeyUsage [{}] without serverAuth, which istiod's verifier refuses",
            eku.join(", ")
        ));
    }
    match csr.public_key_raw() {
        Ok(key) if key != certificate.public_key_raw() => problems
            .push("its public key is not the one in the certificate signing request".to_string()),
        Ok(_) => {}
        Err(e) => problems.push(format!("the request could not be read back: {e}")),
    }
    problems
}

/// The chain part of [`check_issued`]: each certificate issued by the next (signatures
/// verified), ending at or issued by a root of `trust`.
fn check_chain(
    certificate: &Certificate,
    chain: &[Certificate],
    trust: &TrustBundle,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut path = vec![certificate];
    path.extend(chain);
    if let Some(i) = path.windows(2).position(|p| !p[0].is_issued_by(p[1])) {
        problems.push(format!(
            "the chain is broken: {} is not issued by {}",
            path[i].subject(),
            path[i + 1].subject()
        ));
    } else {
        let last = path.last().expect("non-empty");
        let anchored = trust.contains(last) || trust.roots().iter().any(|r| last.is_issued_by(r));
        if !anchored {
            problems.push(format!(
                "the chain ends at {} which is not a root of the trust bundle [{}]",
                last.subject(),
                trust.fingerprints().join(", ")
            ));
        }
    }
    problems
}
