//! PEM and bundle parsing, then `verify_bundle`: any bytes, split into the four files of
//! an Istio `cacerts` bundle, must give a report (never a panic), and every parser of a
//! single file must answer `Ok` or `Err`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshtrust_ca::{
    BundleFiles, Certificate, PrivateKey, TrustBundle, VerifyOptions, verify_bundle,
};
use time::macros::datetime;

/// Separates the files in an input (a byte no PEM text holds).
const SEPARATOR: u8 = 0xff;

const FILES: [&str; 4] = [
    "ca-cert.pem",
    "ca-key.pem",
    "cert-chain.pem",
    "root-cert.pem",
];

fuzz_target!(|data: &[u8]| {
    let _ = Certificate::all_from_pem("input", data);
    let _ = TrustBundle::from_pem("input", data);
    let _ = PrivateKey::from_pem("input", data);
    let mut files = BundleFiles::new();
    for (name, part) in FILES.iter().zip(data.split(|b| *b == SEPARATOR)) {
        files.insert(*name, part.to_vec());
    }
    let options = VerifyOptions::at(datetime!(2027-03-01 00:00 UTC));
    let report = verify_bundle(&files, &options);
    // A bundle istiod would load has a certificate and a key that parse on their own.
    if report.accepted() {
        assert!(
            Certificate::all_from_pem("ca-cert.pem", files.get("ca-cert.pem").unwrap_or_default())
                .is_ok()
        );
        assert!(
            PrivateKey::from_pem("ca-key.pem", files.get("ca-key.pem").unwrap_or_default()).is_ok()
        );
    }
});
