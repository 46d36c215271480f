//! End to end: `meshtrust completions SHELL` and `meshtrust man --out DIR`, through the built
//! binary. The list of subcommands each script and page set must cover is read from the
//! binary's own `--help` (every level), so a subcommand added later is covered without
//! touching this file. The scripts are checked by the shells themselves (bash, zsh and fish
//! parse them; bash and fish complete with them), the pages by mandoc and groff.

use std::path::Path;
use std::process::{Command, Output};

use meshtrust_testkit::{snapshot, text};

fn meshtrust(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = meshtrust(args);
    assert!(
        out.status.success(),
        "meshtrust {args:?} failed:\n{}",
        text(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a tool the README test command installs, failing loudly when it is missing.
fn tool(program: &str, args: &[&str], package: &str) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{program} is needed by this suite ({e}): ./tests/run-all.sh installs it \
             (apt-get install {package})"
            )
        })
}

/// The names under "Commands:" in `meshtrust <path> --help`, without `help`.
fn commands_in_help(path: &[&str]) -> Vec<String> {
    let mut args = path.to_vec();
    args.push("--help");
    let help = ok(&args);
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// Every subcommand path at any depth (`["root"]`, `["root", "create"]`, …), depth first.
fn every_subcommand() -> Vec<Vec<String>> {
    fn walk(path: Vec<String>, out: &mut Vec<Vec<String>>) {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        for name in commands_in_help(&args) {
            let mut sub = path.clone();
            sub.push(name);
            out.push(sub.clone());
            walk(sub, out);
        }
    }
    let mut out = Vec::new();
    walk(Vec::new(), &mut out);
    let top: Vec<&str> = out
        .iter()
        .filter(|p| p.len() == 1)
        .map(|p| p[0].as_str())
        .collect();
    for known in ["bootstrap", "cacerts", "controller", "completions", "man"] {
        assert!(top.contains(&known), "help lists {known}: {top:?}");
    }
    assert!(
        out.contains(&vec!["root".to_owned(), "create".to_owned()]),
        "nested subcommands are walked: {out:?}"
    );
    out
}

/// `word` occurs in `text` as a whole word (not inside `command` for `man`).
fn has_word(text: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '-';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

#[test]
fn every_shell_gets_a_script_that_names_every_subcommand() {
    let subcommands = every_subcommand();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = ok(&["completions", shell]);
        assert!(script.len() > 1000, "{shell}: a whole script:\n{script}");
        for path in &subcommands {
            let name = path.last().unwrap();
            assert!(
                has_word(&script, name),
                "the {shell} script completes `meshtrust {}`",
                path.join(" ")
            );
        }
    }
    let bad = meshtrust(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    let message = text(&bad);
    assert!(
        message.contains("tcsh") && message.contains("bash") && message.contains("powershell"),
        "an unknown shell is named along with the supported ones: {message}"
    );
}

/// What the bash completion function offers for the words typed so far (the last one is
/// the word being completed), called exactly as bash calls a `complete -F` function.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let driver = r#"
        source "$1"; shift
        spec=$(complete -p meshtrust) || { echo "no completion registered for meshtrust" >&2; exit 1; }
        fn=$(printf '%s\n' "$spec" | sed -n 's/.*-F \([^ ]*\).*/\1/p')
        COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
        COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMP_TYPE=9; COMPREPLY=()
        "$fn" meshtrust "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf '%s\n' "${COMPREPLY[@]}"
    "#;
    let mut args = vec!["-c", driver, "driver", script.to_str().unwrap()];
    args.extend_from_slice(words);
    let out = tool("bash", &args, "bash");
    assert!(
        out.status.success(),
        "bash completion failed:\n{}",
        text(&out)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn the_bash_script_parses_and_completes_subcommands_flags_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("meshtrust.bash");
    std::fs::write(&script, ok(&["completions", "bash"])).unwrap();
    let parsed = tool("bash", &["-n", script.to_str().unwrap()], "bash");
    assert!(parsed.status.success(), "bash -n: {}", text(&parsed));

    assert_eq!(bash_complete(&script, &["meshtrust", "boo"]), ["bootstrap"]);
    assert_eq!(
        bash_complete(&script, &["meshtrust", "root", "c"]),
        ["create"]
    );
    assert_eq!(
        bash_complete(&script, &["meshtrust", "completions", "f"]),
        ["fish"]
    );
    let flags = bash_complete(&script, &["meshtrust", "bootstrap", "--cont"]);
    assert_eq!(flags, ["--contexts"], "flags of the subcommand being typed");
    let all = bash_complete(&script, &["meshtrust", ""]);
    for name in commands_in_help(&[]) {
        assert!(
            all.contains(&name),
            "`meshtrust <TAB>` offers {name}: {all:?}"
        );
    }
}

#[test]
fn the_zsh_and_fish_scripts_parse_and_fish_completes_with_descriptions() {
    let dir = tempfile::tempdir().unwrap();
    let zsh = dir.path().join("_meshtrust");
    std::fs::write(&zsh, ok(&["completions", "zsh"])).unwrap();
    let parsed = tool("zsh", &["-n", zsh.to_str().unwrap()], "zsh");
    assert!(parsed.status.success(), "zsh -n: {}", text(&parsed));
    assert!(
        std::fs::read_to_string(&zsh)
            .unwrap()
            .starts_with("#compdef meshtrust"),
        "the zsh script is an autoloadable completion function"
    );

    let fish = dir.path().join("meshtrust.fish");
    std::fs::write(&fish, ok(&["completions", "fish"])).unwrap();
    let parsed = tool("fish", &["--no-execute", fish.to_str().unwrap()], "fish");
    assert!(
        parsed.status.success(),
        "fish --no-execute: {}",
        text(&parsed)
    );
    let command = format!(
        "source {}; complete --do-complete 'meshtrust boo'",
        fish.display()
    );
    let out = tool("fish", &["--no-config", "-c", &command], "fish");
    assert!(out.status.success(), "fish: {}", text(&out));
    let offered = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = offered.lines().collect();
    assert_eq!(lines.len(), 1, "one candidate: {offered}");
    let (word, description) = lines[0].split_once('\t').expect("a description");
    assert_eq!(word, "bootstrap");
    assert!(
        description.starts_with("Issue and deliver"),
        "{description}"
    );
}

/// A page as a person reads it: mandoc's text output with bold and underline removed.
fn rendered(page: &Path) -> String {
    let out = tool(
        "mandoc",
        &["-T", "utf8", "-O", "width=200", page.to_str().unwrap()],
        "mandoc",
    );
    assert!(
        out.status.success(),
        "mandoc {}: {}",
        page.display(),
        text(&out)
    );
    let raw = String::from_utf8(out.stdout).unwrap();
    let mut plain = String::new();
    for c in raw.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain
}

/// mandoc's and groff's warnings about a page, if any.
fn page_warnings(page: &Path) -> String {
    let p = page.to_str().unwrap();
    let lint = tool("mandoc", &["-T", "lint", "-W", "warning", p], "mandoc");
    let groff = tool("groff", &["-man", "-ww", "-z", p], "groff-base");
    let mut warnings = text(&lint);
    if !groff.status.success() || !groff.stderr.is_empty() {
        warnings.push_str(&text(&groff));
    }
    if !lint.status.success() && warnings.is_empty() {
        warnings.push_str("mandoc -T lint failed");
    }
    warnings
}

#[test]
fn man_writes_one_page_per_subcommand_that_renders_without_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let o = out.to_str().unwrap();
    let said = ok(&["man", "--out", o]);

    let mut expected: Vec<String> = every_subcommand()
        .iter()
        .map(|path| format!("meshtrust-{}.1", path.join("-")))
        .collect();
    expected.push("meshtrust.1".to_owned());
    expected.sort();
    let mut written: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    written.sort();
    assert_eq!(
        written, expected,
        "exactly one page per command, no temporary files"
    );
    assert!(
        said.contains(&format!("wrote {} manual pages", expected.len())),
        "{said}"
    );

    for name in &written {
        let page = out.join(name);
        let warnings = page_warnings(&page);
        assert!(
            warnings.is_empty(),
            "{name} renders with warnings:\n{warnings}"
        );
    }

    let top = rendered(&out.join("meshtrust.1"));
    for name in commands_in_help(&[]) {
        assert!(
            top.contains(&format!("meshtrust-{name}(1)")),
            "meshtrust(1) lists {name}:\n{top}"
        );
    }
    let bootstrap = rendered(&out.join("meshtrust-bootstrap.1"));
    assert!(bootstrap.contains("meshtrust-bootstrap"), "{bootstrap}");
    assert!(
        bootstrap.contains("Issue and deliver every cluster"),
        "{bootstrap}"
    );
    let help = ok(&["bootstrap", "--help"]);
    let flags: Vec<&str> = help
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .collect();
    assert!(flags.len() > 10, "bootstrap has many flags: {flags:?}");
    for flag in flags {
        assert!(
            has_word(&bootstrap, flag),
            "meshtrust-bootstrap(1) documents {flag}"
        );
    }
    let version = ok(&["--version"]);
    let version = version.trim().trim_start_matches("meshtrust ");
    assert!(
        bootstrap.contains(&format!("meshtrust {version}")),
        "the page names the version:\n{bootstrap}"
    );
}

#[test]
fn man_refuses_to_replace_pages_without_force_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let o = out.to_str().unwrap();
    ok(&["man", "--out", o]);
    let page = out.join("meshtrust-bootstrap.1");
    std::fs::write(&page, "edited by hand\n").unwrap();
    std::fs::remove_file(out.join("meshtrust-verify.1")).unwrap();
    let before = snapshot(&out);

    let refused = meshtrust(&["man", "--out", o]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let message = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(
        message.contains(&page.display().to_string())
            && message.contains("--force")
            && message.contains("nothing was written"),
        "{message}"
    );
    assert_eq!(
        snapshot(&out),
        before,
        "a refused run changes nothing, not even the missing page"
    );

    ok(&["man", "--out", o, "--force"]);
    let page_text = std::fs::read_to_string(&page).unwrap();
    assert!(
        page_text.starts_with(".ie \\n(.g .ds Aq") || page_text.contains(".TH meshtrust-bootstrap"),
        "--force replaced the edited page:\n{page_text}"
    );
    assert!(out.join("meshtrust-verify.1").is_file());
}
