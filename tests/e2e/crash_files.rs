//! Crash consistency of the file writers: `root create`, `cacerts` and `demo` are killed
//! with SIGKILL at every file-changing system call in turn, and what they leave is checked.
//!
//! The kill comes from outside the product: `strace -e inject=SYSCALL:signal=KILL:when=N`
//! delivers SIGKILL as the process enters its Nth call of SYSCALL (before the call runs),
//! for every SYSCALL in [`KILL_POINTS`] and every N until a run completes untouched. So
//! every write, flush, rename, link, unlink, mkdir and open the command makes is, in turn,
//! the moment it dies. After each kill:
//! - each unit (a root's key and certificate; one cluster's bundle directory) is either
//!   exactly as before or completely new and valid (openssl verifies the chain and matches
//!   the key), never a mix, a half-written file or a key without its certificate;
//! - a rerun (`--force`) converges: every unit valid, and nothing a killed run left behind
//!   (temporary files may hold keys) survives it.

use std::path::{Path, PathBuf};
use std::process::Command;

use meshtrust_testkit::{
    assert_bundle_independently_valid, copy_tree, openssl_key_matches_cert, openssl_verify, text,
};

/// The system calls that change a file or a directory: each is, in turn, where the process
/// is killed. (`openat` creating a file is not among them: the state it leaves is the one
/// the next call on the list is killed in.)
const KILL_POINTS: &[&str] = &[
    "write",
    "fsync",
    "fdatasync",
    "syncfs",
    "fchmod",
    "mkdir",
    "mkdirat",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "unlink",
    "unlinkat",
    "rmdir",
];

const CLUSTERS: [&str; 2] = ["east", "west"];

/// Runs `meshtrust ARGS`, killed as it enters its `n`th `syscall` (see
/// [`meshtrust_testkit::crash::run_killed_at`]).
fn run_killed_at(args: &[String], syscall: &str, n: usize, log: &Path) -> Option<String> {
    let bin = Path::new(env!("CARGO_BIN_EXE_meshtrust"));
    meshtrust_testkit::crash::run_killed_at(Command::new(bin).args(args), syscall, n, log)
}

/// A scenario: the state before (`prepare` fills the directory), the command, the checks of
/// what a kill left, and the checks of a converged rerun.
struct Scenario<'a> {
    prepare: &'a dyn Fn(&Path),
    command: &'a dyn Fn(&Path) -> Vec<String>,
    after_kill: &'a dyn Fn(&Path, &Path),
    rerun: &'a dyn Fn(&Path) -> Vec<String>,
    converged: &'a dyn Fn(&Path),
}

/// Kills the scenario's command at every point, checks after each, and returns the points.
fn kill_everywhere(s: &Scenario<'_>) -> Vec<String> {
    let template = tempfile::tempdir().unwrap();
    (s.prepare)(template.path());
    let mut points = Vec::new();
    for syscall in KILL_POINTS {
        for n in 1.. {
            let run = tempfile::tempdir().unwrap();
            let dir = run.path().join("work");
            copy_tree(template.path(), &dir);
            let log = run.path().join("strace.log");
            let Some(point) = run_killed_at(&(s.command)(&dir), syscall, n, &log) else {
                break;
            };
            (s.after_kill)(template.path(), &dir);
            let rerun = meshtrust(&(s.rerun)(&dir));
            assert!(
                rerun.status.success(),
                "the rerun after a kill at {point} fails: {}",
                text(&rerun)
            );
            (s.converged)(&dir);
            assert_nothing_stale(&dir);
            points.push(point);
        }
    }
    assert!(points.len() > 20, "kill points: {points:?}");
    points
}

fn meshtrust(args: &[String]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_meshtrust"))
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap()
}

fn args(parts: &[&str], dir: &Path) -> Vec<String> {
    parts
        .iter()
        .map(|p| p.replace("DIR", &dir.display().to_string()))
        .collect()
}

/// What a unit holds: nothing, or its files' bytes.
fn unit_bytes(dir: &Path, names: &[&str]) -> Option<Vec<Vec<u8>>> {
    let found: Vec<Option<Vec<u8>>> = names
        .iter()
        .map(|n| std::fs::read(dir.join(n)).ok())
        .collect();
    if found.iter().all(Option::is_none) {
        return None;
    }
    Some(
        found
            .into_iter()
            .zip(names)
            .map(|(bytes, n)| {
                bytes.unwrap_or_else(|| {
                    panic!("{} is missing beside its set", dir.join(n).display())
                })
            })
            .collect(),
    )
}

const ROOT_FILES: [&str; 2] = ["root-cert.pem", "root-key.pem"];
const BUNDLE_FILES: [&str; 4] = [
    "ca-cert.pem",
    "ca-key.pem",
    "cert-chain.pem",
    "root-cert.pem",
];

/// The root in `dir` is as it was in `before`, or a complete pair whose key is the
/// certificate's; returns whether it is new.
fn assert_root_old_or_new(before: &Path, dir: &Path) -> bool {
    let old = unit_bytes(before, &ROOT_FILES);
    let now = unit_bytes(dir, &ROOT_FILES);
    match now {
        None => {
            assert!(old.is_none(), "{}: the root was lost", dir.display());
            false
        }
        Some(now) if Some(&now) == old.as_ref() => false,
        Some(_) => {
            assert_root_whole(dir);
            true
        }
    }
}

/// `dir` holds a root whose key is its certificate's (openssl), both files present.
fn assert_root_whole(dir: &Path) {
    assert!(
        openssl_key_matches_cert(&dir.join("root-key.pem"), &dir.join("root-cert.pem")),
        "{}: root-key.pem is not root-cert.pem's key",
        dir.display()
    );
}

/// Runs `meshtrust PARTS` (DIR replaced by `d`), which must succeed: a scenario's setup.
fn ok(parts: &[&str], d: &Path) {
    let out = meshtrust(&args(parts, d));
    assert!(out.status.success(), "meshtrust {parts:?}: {}", text(&out));
}

/// `meshtrust cacerts` for both clusters from DIR/root into DIR/certs, then `extra`.
fn cacerts(extra: &[&str], d: &Path) -> Vec<String> {
    let mut parts = vec![
        "cacerts",
        "--root",
        "DIR/root",
        "--cluster",
        "east",
        "--cluster",
        "west",
        "--out",
        "DIR/certs",
    ];
    parts.extend_from_slice(extra);
    args(&parts, d)
}

/// Each cluster's bundle under `dir` is as it was under `before`, or complete and valid
/// (chain verified by openssl to the root it carries, key matching).
fn assert_bundles_old_or_new(before: &Path, dir: &Path) {
    for c in CLUSTERS {
        let now = unit_bytes(&dir.join(c), &BUNDLE_FILES);
        let old = unit_bytes(&before.join(c), &BUNDLE_FILES);
        assert!(
            now.is_some() || old.is_none(),
            "{}: the bundle was lost",
            dir.join(c).display()
        );
        if now.is_none() || now == old {
            continue;
        }
        let b = dir.join(c);
        openssl_verify(
            &b.join("root-cert.pem"),
            &b.join("cert-chain.pem"),
            &b.join("ca-cert.pem"),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", b.display()));
        assert!(
            openssl_key_matches_cert(&b.join("ca-key.pem"), &b.join("ca-cert.pem")),
            "{}",
            b.display()
        );
    }
}

/// Nothing named like meshtrust's temporary files is left, but each directory's current
/// file-set generation.
fn assert_nothing_stale(dir: &Path) {
    for entry in walk(dir) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        let parent = entry.parent().unwrap();
        let current = std::fs::read_link(parent.join("..meshtrust")).ok();
        assert!(
            !name.contains(".meshtrust-") || current.is_some_and(|c| c == Path::new(&name)),
            "{} is left over by a killed run",
            entry.display()
        );
    }
}

/// Every backup of a bundle under `dir` is whole: exactly the bundle it backs up.
fn assert_backups_whole(before: &Path, dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // Hidden names are a backup being staged, swept by the next run.
        if let Some((cluster, _)) = name
            .split_once(".backup-")
            .filter(|_| !name.starts_with('.'))
        {
            assert!(
                unit_bytes(&path, &BUNDLE_FILES)
                    == unit_bytes(&before.join(cluster), &BUNDLE_FILES),
                "{} is not the bundle it backs up",
                path.display()
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if std::fs::symlink_metadata(&path).unwrap().is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

fn report(what: &str, points: &[String]) {
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for p in points {
        *kinds.entry(p.split('(').next().unwrap_or(p)).or_default() += 1;
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
    eprintln!(
        "{what}: killed at {} points: {}",
        points.len(),
        kinds.join(", ")
    );
}

#[test]
fn root_create_killed_anywhere_leaves_no_root_or_a_whole_one() {
    let points = kill_everywhere(&Scenario {
        prepare: &|_| {},
        command: &|d| args(&["root", "create", "--out", "DIR/root"], d),
        after_kill: &|before, d| {
            let new = assert_root_old_or_new(&before.join("root"), &d.join("root"));
            if new {
                // A whole new root is never replaced silently by a plain rerun.
                let refused = meshtrust(&args(&["root", "create", "--out", "DIR/root"], d));
                assert!(!refused.status.success(), "{}", text(&refused));
            }
        },
        rerun: &|d| args(&["root", "create", "--out", "DIR/root", "--force"], d),
        converged: &|d| assert_root_whole(&d.join("root")),
    });
    report("root create", &points);
}

#[test]
fn root_create_forced_over_plain_files_killed_anywhere_keeps_the_old_pair_or_the_new() {
    let points = kill_everywhere(&Scenario {
        prepare: &|d| {
            // A root written as plain files, as openssl or an older meshtrust leaves it.
            ok(&["root", "create", "--out", "DIR/made"], d);
            std::fs::create_dir(d.join("root")).unwrap();
            for f in ROOT_FILES {
                std::fs::write(
                    d.join("root").join(f),
                    std::fs::read(d.join("made").join(f)).unwrap(),
                )
                .unwrap();
            }
        },
        command: &|d| {
            args(
                &["root", "create", "--out", "DIR/root", "--force", "--backup"],
                d,
            )
        },
        after_kill: &|before, d| {
            assert_root_old_or_new(&before.join("root"), &d.join("root"));
        },
        rerun: &|d| args(&["root", "create", "--out", "DIR/root", "--force"], d),
        converged: &|d| {
            let before = std::fs::read(d.join("made/root-key.pem")).unwrap();
            let now = std::fs::read(d.join("root/root-key.pem")).unwrap();
            assert!(before != now, "the rerun made a new root");
            assert_root_whole(&d.join("root"));
        },
    });
    report("root create --force --backup over plain files", &points);
}

#[test]
fn cacerts_killed_anywhere_leaves_each_bundle_old_or_new_and_the_root_untouched() {
    let points = kill_everywhere(&Scenario {
        prepare: &|d| {
            ok(&["root", "create", "--out", "DIR/root"], d);
            let first = meshtrust(&cacerts(&[], d));
            assert!(first.status.success(), "{}", text(&first));
        },
        command: &|d| cacerts(&["--force", "--backup"], d),
        after_kill: &|before, d| {
            assert!(
                !assert_root_old_or_new(&before.join("root"), &d.join("root")),
                "cacerts never writes the root"
            );
            assert_bundles_old_or_new(&before.join("certs"), &d.join("certs"));
            assert_backups_whole(&before.join("certs"), &d.join("certs"));
        },
        rerun: &|d| cacerts(&["--force"], d),
        converged: &|d| {
            for c in CLUSTERS {
                assert_bundle_independently_valid(&d.join("certs").join(c));
            }
        },
    });
    report("cacerts --force --backup", &points);
}

#[test]
fn demo_killed_anywhere_leaves_each_unit_old_or_new_and_a_rerun_converges() {
    let points = kill_everywhere(&Scenario {
        prepare: &|_| {},
        command: &|d| args(&["demo", "--clusters", "east,west", "--out", "DIR/demo"], d),
        after_kill: &|before, d| {
            assert_root_old_or_new(&before.join("demo"), &d.join("demo"));
            assert_bundles_old_or_new(&before.join("demo"), &d.join("demo"));
        },
        rerun: &|d| {
            args(
                &[
                    "demo",
                    "--clusters",
                    "east,west",
                    "--out",
                    "DIR/demo",
                    "--force",
                ],
                d,
            )
        },
        converged: &|d| {
            let root = std::fs::read(d.join("demo/root-cert.pem")).unwrap();
            for c in CLUSTERS {
                assert_bundle_independently_valid(&d.join("demo").join(c));
                assert!(
                    std::fs::read(d.join("demo").join(c).join("root-cert.pem")).unwrap() == root,
                    "{c} chains to the demo's root"
                );
            }
        },
    });
    report("demo", &points);
}
