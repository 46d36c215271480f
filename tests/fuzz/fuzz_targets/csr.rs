//! CSR parsing as the service does it: PEM, then PKCS#10 with its self-signature checked,
//! then the policy comparison. Any bytes (as PEM text when they are UTF-8, else as DER)
//! get `Ok` or `Err`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshtrust_ca::{ClusterName, Csr, IntermediateParams, KeyType, csr_matches};

fuzz_target!(|data: &[u8]| {
    let der = std::str::from_utf8(data)
        .ok()
        .and_then(|text| pem::parse(text).ok())
        .map_or_else(|| data.to_vec(), |p| p.into_contents());
    let csr = Csr::from_der(der);
    let _ = csr.public_key_raw();
    if let Ok(info) = csr.inspect() {
        let params = IntermediateParams::new(ClusterName::new("east").expect("valid name"));
        let _ = csr_matches(&info, &params, &[KeyType::EcdsaP256, KeyType::Rsa2048]);
        // A request whose signature verified has a public key to read.
        assert!(csr.public_key_raw().is_ok(), "inspected but no public key");
        let _ = csr.to_pem();
    }
});
