//! docs/api.md is true: every `sh` example in it runs, in order, with curl (and openssl,
//! jq) against a live `meshtrust serve`, and succeeds.

#[path = "service/harness.rs"]
#[allow(dead_code)] // Each suite uses part of the harness.
mod harness;

use harness::{ADMIN_TOKEN, Service, Setup};
use meshtrust_testkit::repo_root;

/// The fenced `sh` blocks of a Markdown text, in order.
fn sh_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn the_markdown_reader_finds_sh_blocks_only() {
    let text = "a\n```sh\necho 1\n```\n```\nnot sh\n```\n```sh\necho 2\necho 3\n```\n";
    assert_eq!(sh_blocks(text), vec!["echo 1\n", "echo 2\necho 3\n"]);
}

#[test]
fn every_example_of_docs_api_md_runs_with_curl_against_a_live_service() {
    let doc = std::fs::read_to_string(repo_root().join("docs/api.md")).unwrap();
    let blocks = sh_blocks(&doc);
    assert!(
        blocks.len() >= 7,
        "docs/api.md has its examples: {}",
        blocks.len()
    );
    assert!(
        blocks
            .iter()
            .filter(|b| b.contains("curl"))
            .all(|b| b.contains("--fail-with-body"))
    );
    let setup = Setup::new(None, "");
    let service = Service::start(&setup);
    let work = tempfile::tempdir().unwrap();
    let mut script = String::from("set -euo pipefail\n");
    for (i, block) in blocks.iter().enumerate() {
        script.push_str(&format!("echo '--- example {}' >&2\n{block}", i + 1));
    }
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(work.path())
        .env("MESHTRUST", &service.url)
        .env("CA", setup.root_cert())
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap();
    let shown = format!(
        "stdout:\n{}\nstderr:\n{}\nservice log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        service.log()
    );
    assert!(out.status.success(), "{shown}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "\"rotation_phase\": \"steady\"",
        "ca-cert.pem: OK",
        "\"state\": \"revoked\"",
        "/v1/clusters/{name}/renew",
    ] {
        assert!(stdout.contains(expected), "missing {expected}: {shown}");
    }
    let audit = setup.audit();
    for action in ["create-token", "enroll", "renew", "revoke"] {
        assert!(
            audit
                .iter()
                .any(|l| l["action"] == action && l["result"] == "ok"),
            "{action}: {audit:?}"
        );
    }
}
