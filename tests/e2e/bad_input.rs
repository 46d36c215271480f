//! The bad-input corpus (tests/fixtures/bad/): every case fails with a message that names
//! the file at fault and the fix, exits non-zero, and changes nothing on disk.

use std::path::Path;
use std::process::Command;

use meshtrust_testkit::{copy_tree, repo_root, snapshot};

#[test]
fn every_bad_input_is_refused_clearly_and_changes_nothing() {
    let corpus = repo_root().join("tests/fixtures/bad");
    let mut cases: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 20, "the corpus is present: {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(why) = run_case(case) {
            failures.push(format!(
                "{}: {why}",
                case.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

fn run_case(case: &Path) -> Result<(), String> {
    let work = tempfile::tempdir().unwrap();
    copy_tree(case, work.path());
    let before = snapshot(work.path());
    let cmd = std::fs::read_to_string(case.join("cmd")).unwrap();
    let args: Vec<String> = cmd
        .split_whitespace()
        .map(|a| a.replace("{dir}", &work.path().display().to_string()))
        .collect();
    let out = Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args(&args)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stderr);
    let stderr = shown.to_lowercase();
    if out.status.success() {
        return Err(format!("exited 0 for `{}`", cmd.trim()));
    }
    if let Some(debug) = meshtrust_testkit::debug_text(&shown) {
        return Err(format!("Rust Debug text `{debug}` in:\n{shown}"));
    }
    for want in std::fs::read_to_string(case.join("expect"))
        .unwrap()
        .lines()
    {
        if !want.trim().is_empty() && !stderr.contains(&want.trim().to_lowercase()) {
            return Err(format!("stderr lacks `{want}`:\n{stderr}"));
        }
    }
    if snapshot(work.path()) != before {
        return Err("the command changed files although it failed".to_string());
    }
    Ok(())
}

/// The test-only clock offset exists only in builds with the `test-clock` feature (the
/// end-to-end controller suite); the binary everyone else builds refuses it, and its help
/// never mentions it.
#[cfg(not(feature = "test-clock"))]
#[test]
fn the_release_binary_has_no_clock_offset() {
    let help = Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args(["controller", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("--lease-duration"),
        "the controller's help: {text}"
    );
    assert!(!text.contains("clock"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let offset = dir.path().join("offset");
    std::fs::write(&offset, "864000").unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args(["controller", "--clock-offset-file"])
        .arg(&offset)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--clock-offset-file"), "{stderr}");
}
