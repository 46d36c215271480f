//! Which RSA key generator should meshtrust use? ring cannot generate RSA keys, so the
//! candidates are rcgen's aws-lc-rs backend and the pure-Rust `rsa` crate (whose PKCS#8
//! output rcgen can then load). Both run in this process, interleaved, same sizes.
//!
//! `cargo bench -p meshtrust-testkit --bench rsa_keygen` (RSA_BENCH_SAMPLES, default 20).
//! Prints the median per key size and the ratio rsa-crate / aws-lc-rs.

use std::time::{Duration, Instant};

use rsa::pkcs8::EncodePrivateKey;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let samples: usize = std::env::var("RSA_BENCH_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    println!("| key | aws-lc-rs (rcgen) median | rsa crate median | rsa crate / aws-lc-rs |");
    println!("|---|---|---|---|");
    for (bits, size) in [
        (2048, rcgen::RsaKeySize::_2048),
        (3072, rcgen::RsaKeySize::_3072),
        (4096, rcgen::RsaKeySize::_4096),
    ] {
        let (mut aws, mut pure) = (Vec::new(), Vec::new());
        for _ in 0..samples {
            let t = Instant::now();
            let k = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size).unwrap();
            aws.push(t.elapsed());
            std::hint::black_box(k);

            let t = Instant::now();
            let k = rsa::PrivateKey::new(&mut crypto_common::getrandom::SysRng, bits).unwrap();
            let der = k.to_pkcs8_der().unwrap();
            let k = rcgen::KeyPair::try_from(der.as_bytes()).unwrap();
            pure.push(t.elapsed());
            std::hint::black_box(k);
        }
        let (a, p) = (median(aws), median(pure));
        println!(
            "| rsa-{bits} | {:.0} ms | {:.0} ms | {:.2}× |",
            a.as_secs_f64() * 1e3,
            p.as_secs_f64() * 1e3,
            p.as_secs_f64() / a.as_secs_f64()
        );
    }
    println!(
        "\n{samples} samples per cell; RSA key generation time varies widely per key (prime search)."
    );
}
