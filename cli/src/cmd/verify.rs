//! `meshtrust verify DIR`: would istiod accept this bundle?

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use meshtrust_ca::{
    BundleFiles, BundleFormat, BundleReport, Severity, VerifyOptions, fmt_time, verify_bundle,
};
use serde::Serialize;
use time::OffsetDateTime;

use crate::args::{Output, VerifyArgs};
use meshtrust_ca::duration;
use meshtrust_issuer::Clock;

use crate::output;

/// Reads whichever bundle files exist in `dir`.
pub fn read_bundle_dir(dir: &Path) -> Result<BundleFiles> {
    if !dir.exists() {
        bail!(
            "{} does not exist: pass the directory that holds ca-cert.pem, ca-key.pem, cert-chain.pem and root-cert.pem (e.g. certs/cluster1)",
            dir.display()
        );
    }
    if !dir.is_dir() {
        bail!(
            "{} is not a directory: pass a bundle directory (to look at a single file use `meshtrust inspect`)",
            dir.display()
        );
    }
    let mut files = BundleFiles::new();
    let layouts = [BundleFormat::Istio, BundleFormat::Tls];
    for name in layouts.iter().flat_map(|f| f.file_names().iter().copied()) {
        let path = dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => files.insert(name, bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
    Ok(files)
}

#[derive(Serialize)]
struct VerifyOutput<'a> {
    dir: String,
    accepted: bool,
    #[serde(flatten)]
    report: &'a BundleReport,
}

pub fn run(args: VerifyArgs, clock: &Clock) -> Result<ExitCode> {
    let now = args.at.unwrap_or_else(|| clock.now());
    let files = read_bundle_dir(&args.dir)?;
    let report = verify_bundle(
        &files,
        &VerifyOptions::at(now).warn_within(args.warn_within),
    );
    let failed = !report.accepted() || (args.strict && report.warnings().next().is_some());
    let dir = args.dir.display().to_string();
    if args.output == Output::Json {
        output::json(&VerifyOutput {
            dir,
            accepted: !failed,
            report: &report,
        })?;
    } else {
        print_findings(&dir, &report);
        print_summary(&dir, &report, now);
        print_verdict(&dir, &report, failed, args.strict);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Every error and warning, one a line on stderr.
fn print_findings(dir: &str, report: &BundleReport) {
    for f in &report.findings {
        let (mark, word) = match f.severity {
            Severity::Error => ("❌", "error"),
            Severity::Warning => ("⚠️ ", "warning"),
        };
        eprintln!("{mark} {word} [{:?}] {dir}: {}", f.problem, f.message);
    }
}

/// The bundle's CA certificate and the root it chains to, when they could be read.
fn print_summary(dir: &str, report: &BundleReport, now: OffsetDateTime) {
    if let Some(ca) = &report.ca_cert {
        let left = duration::human(ca.not_after - now);
        println!(
            "{dir}: {} format, CA {} ({}), not after {} ({left})",
            report.format,
            ca.subject,
            ca.key,
            fmt_time(ca.not_after)
        );
    }
    if let Some(anchor) = &report.anchor_fingerprint {
        println!(
            "{dir}: chains to root {} ({} root(s) trusted)",
            output::short(anchor, 23),
            report.root_fingerprints.len()
        );
    }
}

/// Accepted (stdout) or rejected with the error count (stderr).
fn print_verdict(dir: &str, report: &BundleReport, failed: bool, strict: bool) {
    if failed {
        let errors = report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count();
        eprintln!(
            "❌ {dir}: rejected ({errors} error(s){})",
            if strict {
                ", warnings count as errors with --strict"
            } else {
                ""
            }
        );
        eprintln!("   to fix: {}", crate::advice::REISSUE);
    } else {
        println!(
            "✅ {dir}: istiod would accept this bundle, and workload certificates it signs validate"
        );
    }
}
