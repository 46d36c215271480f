//! `meshtrust root create`

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use meshtrust_ca::{RootCa, RootParams, fmt_time};
use meshtrust_issuer::Clock;
use serde::Serialize;
use time::OffsetDateTime;

use crate::args::{Output, RootCreateArgs};
use crate::output;
use crate::write::{self, CERT_MODE, KEY_MODE};

/// What `root create` reports.
#[derive(Serialize)]
pub struct RootSummary {
    /// Directory written.
    pub dir: String,
    /// Subject of the root.
    pub subject: String,
    /// Key algorithm.
    pub key: String,
    /// End of validity (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// SHA-256 fingerprint.
    pub sha256_fingerprint: String,
}

pub fn create(args: RootCreateArgs, clock: &Clock) -> Result<ExitCode> {
    let key_path = args.out.join("root-key.pem");
    if key_path.exists() && !args.write.force {
        anyhow::bail!(
            "{} already exists; refusing to replace a root key (every cluster's trust depends on it). Pass --force to replace it, with --backup to keep the old one",
            key_path.display()
        );
    }
    let mut params = RootParams::default();
    params.organization = args.org;
    params.common_name = args.common_name;
    params.key_type = args.key_type;
    params.validity = args.validity;
    params.path_len = args.path_len;
    let now = clock.now();
    let root = params.self_signed(now)?;
    let summary = write_root(
        &args.out,
        &root,
        args.write.force,
        args.write.backup.then_some(now),
    )?;
    match args.output {
        Output::Json => output::json(&summary)?,
        Output::Text => {
            println!("Created root CA in {}", summary.dir);
            println!("  subject      {}", summary.subject);
            println!("  key          {}", summary.key);
            println!("  not after    {}", fmt_time(summary.not_after));
            println!("  sha256       {}", summary.sha256_fingerprint);
            println!(
                "root-key.pem is written 0600: keep it offline; anyone holding it can mint CAs every cluster trusts."
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `root-cert.pem` and `root-key.pem` into `dir` as one set ([`write::write_together`]);
/// existing files are replaced only with `replace`, and kept as backups named after
/// `backup`'s time if given.
pub fn write_root(
    dir: &Path,
    root: &RootCa,
    replace: bool,
    backup: Option<OffsetDateTime>,
) -> Result<RootSummary> {
    write::ensure_dir(dir)?;
    let key_path = dir.join("root-key.pem");
    let cert_path = dir.join("root-cert.pem");
    if let Some(now) = backup {
        for path in [&key_path, &cert_path] {
            if path.exists() {
                let to = write::backup_path(path, now);
                let bytes =
                    zeroize::Zeroizing::new(std::fs::read(path).with_context(|| {
                        format!("cannot read {} to back it up", path.display())
                    })?);
                let mode = if path == &key_path {
                    KEY_MODE
                } else {
                    CERT_MODE
                };
                write::write_file(&to, &bytes, mode, false)?;
                eprintln!("kept the old {} as {}", path.display(), to.display());
            }
        }
    }
    // One set: a process killed at any point leaves the old pair or the new one.
    let key_pem = root.key().to_pem();
    let cert_pem = root.certificate().to_pem();
    write::write_together(
        dir,
        &[
            ("root-key.pem", key_pem.as_bytes(), KEY_MODE),
            ("root-cert.pem", cert_pem.as_bytes(), CERT_MODE),
        ],
        replace,
    )?;
    let cert = root.certificate();
    Ok(RootSummary {
        dir: dir.display().to_string(),
        subject: cert.subject(),
        key: cert.key_algorithm().to_string(),
        not_after: cert.not_after(),
        sha256_fingerprint: cert.fingerprint(),
    })
}
