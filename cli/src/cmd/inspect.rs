//! `meshtrust inspect PATH…`: what is inside certificates, keys and bundle directories.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use meshtrust_ca::{CertInfo, Certificate, PrivateKey, fmt_time};
use serde::Serialize;
use time::OffsetDateTime;

use crate::args::{InspectArgs, Output};
use meshtrust_ca::duration;
use meshtrust_issuer::Clock;

use crate::output;

#[derive(Serialize)]
struct Inspected {
    file: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    certificates: Vec<InspectedCert>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<KeySummary>,
}

#[derive(Serialize)]
struct InspectedCert {
    /// 1-based position in the file.
    position: usize,
    /// Where it sits in the chain the file forms.
    role: String,
    #[serde(flatten)]
    info: CertInfo,
    seconds_left: i64,
    expired: bool,
}

#[derive(Serialize)]
struct KeySummary {
    algorithm: String,
    public_key_sha256: String,
}

/// Where certificate `i` of a file sits: root, CA, leaf, and which neighbour issued it.
fn role(certs: &[Certificate], i: usize) -> String {
    let c = &certs[i];
    let kind = if c.is_self_signed() {
        "root CA (self-signed)"
    } else if c.is_ca() {
        "intermediate CA"
    } else {
        "end entity"
    };
    let issuer = certs
        .iter()
        .enumerate()
        .find(|(j, p)| *j != i && c.is_issued_by(p))
        .map(|(j, _)| format!(", issued by #{}", j + 1))
        .unwrap_or_default();
    format!("{kind}{issuer}")
}

fn files_of(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.exists() {
        bail!("{} does not exist", path.display());
    }
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot read directory {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("pem" | "crt" | "key")
                )
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{} holds no .pem, .crt or .key files", path.display());
    }
    Ok(files)
}

fn inspect_file(path: &Path, now: OffsetDateTime) -> Result<Inspected> {
    let bytes = zeroize::Zeroizing::new(
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
    );
    let name = path.display().to_string();
    let text = String::from_utf8_lossy(&bytes);
    if text.contains("PRIVATE KEY-----") {
        let key = PrivateKey::from_pem(&name, &bytes)?;
        return Ok(Inspected {
            file: name,
            certificates: Vec::new(),
            key: Some(KeySummary {
                algorithm: key.algorithm().to_string(),
                public_key_sha256: key.fingerprint(),
            }),
        });
    }
    let certs = Certificate::all_from_pem(&name, &bytes)?;
    let certificates = certs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let info = c.info();
            let left = info.not_after - now;
            InspectedCert {
                position: i + 1,
                role: role(&certs, i),
                expired: left.is_negative(),
                seconds_left: left.whole_seconds(),
                info,
            }
        })
        .collect();
    Ok(Inspected {
        file: name,
        certificates,
        key: None,
    })
}

pub fn run(args: InspectArgs, clock: &Clock) -> Result<ExitCode> {
    let now = clock.now();
    let mut all = Vec::new();
    for path in &args.paths {
        for file in files_of(path)? {
            all.push(inspect_file(&file, now)?);
        }
    }
    if args.output == Output::Json {
        output::json(&all)?;
        return Ok(ExitCode::SUCCESS);
    }
    print_text(&all, now);
    Ok(ExitCode::SUCCESS)
}

/// Each file in turn, a blank line between them: a key in one line, certificates as tables.
fn print_text(all: &[Inspected], now: OffsetDateTime) {
    for (n, f) in all.iter().enumerate() {
        if n > 0 {
            println!();
        }
        if let Some(k) = &f.key {
            println!(
                "{}: private key, {} (public key sha256 {})",
                f.file, k.algorithm, k.public_key_sha256
            );
            continue;
        }
        let count = f.certificates.len();
        for c in &f.certificates {
            println!("{} [{}/{count}] {}", f.file, c.position, c.role);
            for (k, v) in cert_rows(&c.info, now) {
                println!("  {k:<14}{v}");
            }
        }
    }
}

/// The labelled fields shown for one certificate, empty ones left out.
fn cert_rows(i: &CertInfo, now: OffsetDateTime) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("subject", i.subject.clone()),
        ("issuer", i.issuer.clone()),
        ("serial", i.serial.clone()),
        ("not before", fmt_time(i.not_before)),
        (
            "not after",
            format!(
                "{} ({})",
                fmt_time(i.not_after),
                duration::human(i.not_after - now)
            ),
        ),
        ("key", i.key.to_string()),
        ("signature", i.signature_algorithm.clone()),
        (
            "CA",
            match (i.is_ca, i.path_len) {
                (true, Some(p)) => format!("yes, pathlen {p}"),
                (true, None) => "yes, no pathlen".to_string(),
                (false, _) => "no".to_string(),
            },
        ),
        ("key usage", list(&i.key_usage)),
        ("ext key usage", list(&i.extended_key_usage)),
        ("SANs", list(&i.subject_alt_names)),
        ("sha256", i.sha256_fingerprint.clone()),
    ];
    rows.retain(|(_, v)| !v.is_empty());
    rows
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "-".to_string()
    } else {
        v.join(", ")
    }
}
