//! The chain from the CA to a root: order, anchor, path length, lifetimes.

use super::{BundleReport, Checker, Names, Problem};
use crate::bundle::BundleFormat;
use crate::cert::Certificate;
use crate::fmt_time;

fn describe(file: &str, index: usize, cert: &Certificate) -> String {
    format!("{file} certificate #{index} ({})", cert.subject())
}

pub(super) fn check_chain(
    c: &mut Checker,
    names: &Names,
    format: BundleFormat,
    ca: &Certificate,
    chain: &[Certificate],
    roots: &[Certificate],
    report: &mut BundleReport,
) {
    if !check_order(c, names, format, ca, chain) {
        return;
    }
    let Some(path) = path_to_anchor(c, names, chain, roots) else {
        return;
    };
    let anchor = *path.last().expect("chain starts with the CA");
    report.anchor_fingerprint = Some(anchor.fingerprint());
    check_issuers(c, names, &path);
    check_lifetimes(c, names, ca, &path);
    check_roots(c, names, anchor, roots);
}

/// The chain starts with the CA (istio layout) and lists each certificate right before its
/// issuer. Reports the first break and returns whether there was none.
fn check_order(
    c: &mut Checker,
    names: &Names,
    format: BundleFormat,
    ca: &Certificate,
    chain: &[Certificate],
) -> bool {
    if format == BundleFormat::Istio && chain.first() != Some(ca) {
        let first = chain.first().map(Certificate::subject).unwrap_or_default();
        c.error(
            Problem::ChainOrder,
            names.chain,
            format!(
                "{} is out of order: it must start with {} (the intermediate), but starts with {first}; workloads receive this chain verbatim — write the intermediate first, then each issuer up to the root",
                names.chain, names.cert
            ),
        );
        return false;
    }
    for (i, pair) in chain.windows(2).enumerate() {
        if !pair[0].is_issued_by(&pair[1]) {
            c.error(
                Problem::ChainOrder,
                names.chain,
                format!(
                    "{} is out of order or broken: {} is not issued by {}; list each certificate right before its issuer",
                    names.chain,
                    describe(names.chain, i + 1, &pair[0]),
                    describe(names.chain, i + 2, &pair[1])
                ),
            );
            return false;
        }
    }
    true
}

/// The path a workload certificate takes: its issuer (the CA) first, up to the anchor, a
/// root of the trust bundle, which is last. `None`, reported, when no root anchors it.
fn path_to_anchor<'a>(
    c: &mut Checker,
    names: &Names,
    chain: &'a [Certificate],
    roots: &'a [Certificate],
) -> Option<Vec<&'a Certificate>> {
    let mut path: Vec<&Certificate> = chain.iter().collect();
    let last = *path.last().expect("chain starts with the CA");
    if roots.contains(last) {
        return Some(path);
    }
    if let Some(root) = roots.iter().find(|r| last.is_issued_by(r)) {
        path.push(root);
        return Some(path);
    }
    let held: Vec<String> = roots.iter().map(Certificate::subject).collect();
    let end = if last.is_self_signed() {
        format!(
            "the self-signed root {} (sha256 {})",
            last.subject(),
            &last.fingerprint()[..23]
        )
    } else {
        format!("{} (issued by {})", last.subject(), last.x509().issuer())
    };
    c.error(
        Problem::UntrustedChain,
        names.roots,
        format!(
            "{} does not chain to any root in {}: the chain ends at {end}, while {} holds [{}]; put the root that issued the chain into {}, or reissue the intermediate from your root",
            names.cert,
            names.roots,
            names.roots,
            held.join("; "),
            names.roots
        ),
    );
    None
}

/// Every issuer above the CA on the path: a CA, within its path length, not SHA-1-signed,
/// without an extendedKeyUsage that Go rejects.
fn check_issuers(c: &mut Checker, names: &Names, path: &[&Certificate]) {
    for (k, cert) in path.iter().enumerate().skip(1) {
        if !cert.is_ca() {
            c.error(
                Problem::NotCa,
                names.chain,
                format!(
                    "{} is not a CA certificate but issues {}; the chain is unusable",
                    cert.subject(),
                    path[k - 1].subject()
                ),
            );
        }
        if let Some(limit) = cert.path_len()
            && k as u32 > limit
        {
            c.error(
                Problem::PathLength,
                names.chain,
                format!(
                    "path length constraint violated: {} has pathlen:{limit} but sits {k} CA level(s) above the workload certificates {} signs; istiod starts, yet every workload certificate fails validation — reissue the chain so that each pathlen allows the CAs below it",
                    cert.subject(),
                    names.cert
                ),
            );
        }
        // A trust anchor's self-signature is never checked, so only issued certificates count.
        if cert.signed_with_sha1() && !cert.is_self_signed() {
            c.error(
                Problem::WeakSignature,
                names.chain,
                format!("{} is signed with SHA-1, which Go's x509 (istiod) and rustls refuse; reissue it", cert.subject()),
            );
        }
        c.eku(names.chain, &cert.subject(), cert);
    }
}

/// No certificate on the path outlives its issuer.
fn check_lifetimes(c: &mut Checker, names: &Names, ca: &Certificate, path: &[&Certificate]) {
    for pair in path.windows(2) {
        let (child, issuer) = (pair[0], pair[1]);
        if child.not_after() > issuer.not_after() {
            let file = if child == ca { names.cert } else { names.chain };
            c.warn(
                Problem::OutlivesIssuer,
                file,
                format!(
                    "{} (expires {}) outlives its issuer {} (expires {}): it stops validating when the issuer expires; reissue it within the issuer's lifetime",
                    if child == ca { names.cert.to_string() } else { child.subject() },
                    fmt_time(child.not_after()),
                    issuer.subject(),
                    fmt_time(issuer.not_after())
                ),
            );
        }
    }
}

/// The anchor is valid now and for a while; other roots of the bundle have not expired.
fn check_roots(c: &mut Checker, names: &Names, anchor: &Certificate, roots: &[Certificate]) {
    for (i, root) in roots.iter().enumerate() {
        let what = format!("{} root #{} ({})", names.roots, i + 1, root.subject());
        if root == anchor {
            c.validity(
                names.roots,
                &what,
                root,
                "create a new root and rotate to it (docs/rotation.md)",
            );
        } else if c.opts.now > root.not_after() {
            c.warn(
                Problem::Expired,
                names.roots,
                format!(
                    "{what} expired at {}; remove it from the trust bundle",
                    fmt_time(root.not_after())
                ),
            );
        }
    }
}
