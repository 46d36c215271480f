//! The CA certificate itself, and the key that goes with it: what istiod checks on load.

use super::{Checker, Names, Problem};
use crate::cert::Certificate;
use crate::error::Error;
use crate::key::PrivateKey;

/// The CA certificate: an RSA or ECDSA key, a CA that may sign certificates, valid now,
/// not SHA-1-signed, without an extendedKeyUsage that Go rejects.
pub(super) fn check_ca_cert(c: &mut Checker, names: &Names, ca: &Certificate) {
    let reissue = "reissue it";
    let alg = ca.key_algorithm();
    if !alg.accepted_by_istiod() && !c.has(Problem::UnsupportedKey) {
        c.error(
            Problem::UnsupportedKey,
            names.cert,
            format!("{} has an {alg} public key; istiod accepts RSA or ECDSA CA keys only: reissue it with an ECDSA P-256 key", names.cert),
        );
    }
    if !ca.is_ca() {
        c.error(
            Problem::NotCa,
            names.cert,
            format!("{} is not a CA certificate (basicConstraints CA:TRUE is missing): istiod cannot sign workload certificates with it; {reissue}", names.cert),
        );
    } else if !ca.may_sign_certificates() {
        c.error(
            Problem::NotCa,
            names.cert,
            format!("{} is not a CA allowed to sign certificates (keyUsage lacks keyCertSign); {reissue}", names.cert),
        );
    }
    c.validity(names.cert, names.cert, ca, reissue);
    if ca.signed_with_sha1() {
        c.error(
            Problem::WeakSignature,
            names.cert,
            format!("{} is signed with SHA-1 ({}), which Go's x509 (istiod) and rustls refuse; {reissue}", names.cert, ca.signature_algorithm()),
        );
    }
    c.eku(names.cert, names.cert, ca);
}

/// The private key, when it could be read, belongs to the CA certificate.
pub(super) fn check_key_pair(
    c: &mut Checker,
    names: &Names,
    ca: &Certificate,
    key: Option<&PrivateKey>,
) {
    if let Some(key) = key
        && key.public_key_raw() != ca.public_key_raw().as_slice()
    {
        let e = Error::KeyMismatch {
            key: names.key.to_string(),
            cert: names.cert.to_string(),
        };
        c.error(Problem::KeyMismatch, names.key, e.to_string());
    }
}
