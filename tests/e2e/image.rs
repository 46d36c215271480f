//! End to end: the container image of `deploy/Containerfile`.
//!
//! No base image can be pulled on the machines this is built on, so the test builds the
//! Containerfile's final stage — unchanged — from a prepared context: `deploy/image/rootfs.sh`
//! (the script the builder stage runs on the release binary) stages the filesystem from the
//! binary these tests built, and `buildah bud --build-arg ROOTFS=prebuilt` takes it from the
//! context instead of the builder stage. Then the image is inspected (user, entrypoint,
//! labels, ports), its filesystem listed and compared with what the binary needs (`ldd`, the
//! ELF interpreter read from the binary itself), and the binary is started from the image's
//! filesystem alone as the image's user — a chroot, since running containers fails here.
//! buildah keeps its storage in a temporary directory (vfs driver: no fuse, no overlay).

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use meshtrust_testkit::{repo_root, text};

const IMAGE: &str = "ghcr.io/meshtrust/meshtrust";
const BINARY: &str = "usr/local/bin/meshtrust";
const CA_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";

/// The `version` of `[workspace.package]` in Cargo.toml.
fn workspace_version() -> String {
    let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    workspace_field(&manifest, "version")
}

fn workspace_field(manifest: &str, key: &str) -> String {
    manifest
        .lines()
        .skip_while(|l| l.trim() != "[workspace.package]")
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| panic!("Cargo.toml has no workspace.package.{key}"))
}

/// buildah with its own storage in a temporary directory, removed afterwards.
struct Buildah {
    storage: tempfile::TempDir,
}

impl Buildah {
    fn new() -> Buildah {
        let found = Command::new("buildah").arg("--version").output();
        assert!(
            found.as_ref().is_ok_and(|o| o.status.success()),
            "buildah is needed to build deploy/Containerfile ({}): ./tests/run-all.sh installs it \
             (apt-get install buildah)",
            found.map_or_else(|e| e.to_string(), |o| text(&o))
        );
        Buildah {
            storage: tempfile::tempdir().unwrap(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let s = self.storage.path();
        let mut c = Command::new("buildah");
        c.arg("--root")
            .arg(s.join("root"))
            .arg("--runroot")
            .arg(s.join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .env_remove("STORAGE_DRIVER")
            .env_remove("BUILDAH_ISOLATION");
        c
    }

    /// Runs buildah; its stdout, or a panic with everything it said.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        assert!(
            out.status.success(),
            "buildah {args:?} failed:\n{}",
            text(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Buildah {
    fn drop(&mut self) {
        let _ = self.command(&["rm", "--all"]).output();
    }
}

/// The paths `ldd` lists for `bin`: libraries (`name => /path`) and the interpreter.
fn ldd_paths(bin: &Path) -> Vec<String> {
    let out = Command::new("ldd")
        .arg(bin)
        .output()
        .expect("ldd (libc-bin)");
    assert!(
        out.status.success(),
        "ldd {}: {}",
        bin.display(),
        text(&out)
    );
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(!listing.contains("not found"), "{listing}");
    listing
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            match words.as_slice() {
                [_, "=>", path, ..] if path.starts_with('/') => Some((*path).to_owned()),
                [path, ..] if path.starts_with('/') => Some((*path).to_owned()),
                _ => None,
            }
        })
        .collect()
}

/// The ELF interpreter (PT_INTERP) of a 64-bit little-endian executable, read from its
/// program headers — independent of ldd.
fn elf_interpreter(bin: &Path) -> Option<String> {
    let mut head = vec![0; 64 * 1024];
    let n = std::fs::File::open(bin).unwrap().read(&mut head).unwrap();
    let head = &head[..n];
    assert_eq!(&head[..4], b"\x7fELF", "{} is an ELF file", bin.display());
    assert_eq!((head[4], head[5]), (2, 1), "64-bit little-endian");
    let u16_at = |i: usize| u16::from_le_bytes(head[i..i + 2].try_into().unwrap()) as usize;
    let u64_at = |i: usize| u64::from_le_bytes(head[i..i + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    (0..phnum).map(|i| phoff + i * phentsize).find_map(|ph| {
        let p_type = u32::from_le_bytes(head[ph..ph + 4].try_into().unwrap());
        (p_type == 3).then(|| {
            let (offset, size) = (u64_at(ph + 8), u64_at(ph + 32));
            String::from_utf8(head[offset..offset + size - 1].to_vec()).unwrap()
        })
    })
}

/// Whether two files have the same bytes, read in chunks (the debug binary is large).
fn same_bytes(a: &Path, b: &Path) -> bool {
    let (mut fa, mut fb) = (
        std::fs::File::open(a).unwrap(),
        std::fs::File::open(b).unwrap(),
    );
    if fa.metadata().unwrap().len() != fb.metadata().unwrap().len() {
        return false;
    }
    let (mut ba, mut bb) = (vec![0; 1 << 20], vec![0; 1 << 20]);
    loop {
        let n = fa.read(&mut ba).unwrap();
        if n == 0 {
            return true;
        }
        fb.read_exact(&mut bb[..n]).unwrap();
        if ba[..n] != bb[..n] {
            return false;
        }
    }
}

/// Every entry under `root`, relative, with its metadata (not following symlinks).
fn listing(root: &Path) -> Vec<(String, std::fs::Metadata)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path.clone());
            }
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            out.push((rel, meta));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Builds the final stage from `bin`; returns the image reference.
fn build_final_stage(buildah: &Buildah, bin: &Path, context: &Path) -> String {
    let script = repo_root().join("deploy/image/rootfs.sh");
    let staged = Command::new("sh")
        .arg(&script)
        .arg(bin)
        .arg(context.join("rootfs"))
        .output()
        .unwrap();
    assert!(staged.status.success(), "rootfs.sh: {}", text(&staged));
    let reference = format!("{IMAGE}:{}", workspace_version());
    let containerfile = repo_root().join("deploy/Containerfile");
    buildah.ok(&[
        "bud",
        "--build-arg",
        "ROOTFS=prebuilt",
        "-f",
        containerfile.to_str().unwrap(),
        "-t",
        &reference,
        context.to_str().unwrap(),
    ]);
    reference
}

fn assert_image_config(buildah: &Buildah, reference: &str) {
    let inspected: serde_json::Value =
        serde_json::from_str(&buildah.ok(&["inspect", "--type", "image", reference])).unwrap();
    let config = &inspected["OCIv1"]["config"];
    assert_eq!(config["User"], "65532:65532", "non-root, numeric: {config}");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/meshtrust"])
    );
    assert_eq!(config["Cmd"], serde_json::json!(["--help"]));
    assert_eq!(config["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
    assert!(config["Volumes"].is_null(), "no volumes: {config}");
    let env: Vec<&str> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"),
        "{env:?}"
    );
    let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    let labels = &config["Labels"];
    let label = |k: &str| {
        labels[format!("org.opencontainers.image.{k}")]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(label("version"), workspace_version(), "{labels}");
    assert_eq!(label("title"), "meshtrust");
    assert_eq!(label("source"), workspace_field(&manifest, "repository"));
    assert_eq!(label("licenses"), workspace_field(&manifest, "license"));
    assert!(!label("description").is_empty() && label("documentation").ends_with("docs/image.md"));
    let layers = inspected["OCIv1"]["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "one layer on scratch: {layers:?}");
}

/// The image holds exactly the binary, what it loads, CA certificates, passwd/group and
/// /tmp; everything is root's and not writable by the image's user.
fn assert_image_contents(rootfs: &Path, bin: &Path) {
    let needed = ldd_paths(bin);
    let interpreter = elf_interpreter(bin).expect("the binary is dynamically linked");
    assert!(
        needed.contains(&interpreter),
        "ldd lists the interpreter {interpreter}: {needed:?}"
    );
    let mut expected: BTreeSet<String> = [
        BINARY,
        CA_BUNDLE,
        "etc/passwd",
        "etc/group",
        "etc/nsswitch.conf",
        "tmp",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    for lib in &needed {
        let inside = rootfs.join(lib.trim_start_matches('/'));
        let host = std::fs::canonicalize(lib).unwrap();
        assert!(
            inside.is_file(),
            "the image holds {lib}, which the binary loads"
        );
        assert!(
            same_bytes(&inside, &host),
            "{lib} in the image is the host's {}",
            host.display()
        );
        expected.insert(lib.trim_start_matches('/').to_owned());
    }
    let entries = listing(rootfs);
    let mut ancestors = BTreeSet::new();
    for path in &expected {
        let mut p = Path::new(path.as_str()).parent();
        while let Some(dir) = p.filter(|d| !d.as_os_str().is_empty()) {
            ancestors.insert(dir.display().to_string());
            p = dir.parent();
        }
    }
    for (path, meta) in &entries {
        let allowed = expected.contains(path) || (meta.is_dir() && ancestors.contains(path));
        assert!(allowed, "{path} is in the image but nothing needs it");
        assert!(!meta.file_type().is_symlink(), "{path}: files, not links");
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "{path} belongs to root");
        let mode = meta.permissions().mode();
        assert_eq!(mode & 0o6000, 0, "{path}: no setuid/setgid");
        if path != "tmp" {
            assert_eq!(
                mode & 0o022,
                0,
                "{path} is not writable by the image's user: {mode:o}"
            );
        }
    }
    let present: BTreeSet<&String> = entries.iter().map(|(p, _)| p).collect();
    for path in &expected {
        assert!(present.contains(path), "the image holds {path}");
    }
    assert!(
        same_bytes(&rootfs.join(BINARY), bin),
        "the binary in the image is the one built"
    );
    let tmp = std::fs::metadata(rootfs.join("tmp")).unwrap();
    assert!(
        tmp.is_dir() && tmp.permissions().mode() & 0o7777 == 0o1777,
        "/tmp is 1777"
    );
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd
            .lines()
            .any(|l| l.starts_with("meshtrust:x:65532:65532:")),
        "{passwd}"
    );
    let group = std::fs::read_to_string(rootfs.join("etc/group")).unwrap();
    assert!(
        group.lines().any(|l| l.starts_with("meshtrust:x:65532:")),
        "{group}"
    );
    let nss = std::fs::read_to_string(rootfs.join("etc/nsswitch.conf")).unwrap();
    assert!(
        nss.lines().any(|l| l == "hosts: files dns"),
        "/etc/hosts before DNS: {nss}"
    );
    let bundle = std::fs::read_to_string(rootfs.join(CA_BUNDLE)).unwrap();
    assert!(same_bytes(
        &rootfs.join(CA_BUNDLE),
        Path::new("/etc/ssl/certs/ca-certificates.crt")
    ));
    let certificates = bundle.matches("-----BEGIN CERTIFICATE-----").count();
    assert!(
        certificates > 50,
        "a full CA bundle for AWS endpoints: {certificates} certificates"
    );
}

/// Runs the image's binary from the image's filesystem alone, as the image's user, with
/// every symbol bound at start-up (a missing library or symbol version fails here).
fn in_image(rootfs: &Path, args: &[&str]) -> Output {
    Command::new("chroot")
        .arg("--userspec=65532:65532")
        .arg(rootfs)
        .arg("/usr/local/bin/meshtrust")
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LD_BIND_NOW", "1")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap()
}

fn assert_runs_from_the_image_alone(rootfs: &Path) {
    let uid = Command::new("id").arg("-u").output().unwrap();
    assert!(
        String::from_utf8_lossy(&uid.stdout).trim() == "0",
        "starting the image's binary needs chroot: run as root (CI and ./tests/run-all.sh \
         do), or inside `buildah unshare`"
    );
    let version = in_image(rootfs, &["--version"]);
    assert!(version.status.success(), "{}", text(&version));
    assert_eq!(
        text(&version).trim(),
        format!("meshtrust {}", workspace_version())
    );
    let demo = in_image(
        rootfs,
        &["demo", "--clusters", "east", "--out", "/tmp/certs"],
    );
    assert!(
        demo.status.success(),
        "the binary works with only /tmp writable: {}",
        text(&demo)
    );
    assert!(rootfs.join("tmp/certs/east/ca-cert.pem").is_file());
    let outside = in_image(rootfs, &["demo", "--clusters", "east", "--out", "/certs"]);
    assert!(
        !outside.status.success(),
        "the image's user cannot write outside /tmp"
    );
    assert!(text(&outside).contains("/certs"), "{}", text(&outside));
}

#[test]
fn the_final_stage_built_from_the_tested_binary_holds_only_what_it_runs_on() {
    let bin = Path::new(env!("CARGO_BIN_EXE_meshtrust"));
    let buildah = Buildah::new();
    let context = tempfile::tempdir().unwrap();
    let reference = build_final_stage(&buildah, bin, context.path());
    // The final stage, and the `prebuilt` stage it copies from (unnamed); no `rust:` base.
    let images = buildah.ok(&["images", "--all", "--format", "{{.Name}}:{{.Tag}}"]);
    let named: Vec<&str> = images.lines().filter(|l| *l != "<none>:<none>").collect();
    assert_eq!(named, [reference.as_str()], "{images}");
    assert!(
        !images.contains("library/rust"),
        "the builder stage was skipped, not pulled: {images}"
    );
    assert_image_config(&buildah, &reference);

    let container = buildah.ok(&["from", &reference]);
    let mounted = buildah.ok(&["mount", container.trim()]);
    let rootfs = Path::new(mounted.trim());
    assert_image_contents(rootfs, bin);
    assert_runs_from_the_image_alone(rootfs);
    buildah.ok(&["umount", container.trim()]);
}

#[test]
fn the_deployment_runs_the_documented_image_as_the_images_user() {
    let version = workspace_version();
    let reference = format!("{IMAGE}:{version}");
    let containerfile = std::fs::read_to_string(repo_root().join("deploy/Containerfile")).unwrap();
    assert!(
        containerfile
            .lines()
            .any(|l| l == format!("ARG VERSION={version}")),
        "deploy/Containerfile: set `ARG VERSION={version}` (the workspace version in Cargo.toml)"
    );
    assert!(containerfile.lines().any(|l| l == "USER 65532:65532"));
    // The builder stage is not built here (no base image can be pulled): at least check
    // that it stages the same filesystem and that its Rust is new enough for the workspace.
    assert!(
        containerfile.contains("deploy/image/rootfs.sh target/release/meshtrust /rootfs"),
        "deploy/Containerfile: the builder stage stages /rootfs with deploy/image/rootfs.sh"
    );
    let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    let minor = |v: &str| -> u32 {
        let digits: String = v
            .split('.')
            .nth(1)
            .unwrap_or("")
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits
            .parse()
            .unwrap_or_else(|_| panic!("no Rust minor version in {v}"))
    };
    let builder = containerfile
        .lines()
        .find_map(|l| l.strip_prefix("FROM docker.io/library/rust:"))
        .expect("deploy/Containerfile: a builder stage FROM docker.io/library/rust:");
    let msrv = workspace_field(&manifest, "rust-version");
    assert!(
        minor(builder) >= minor(&msrv),
        "deploy/Containerfile: the builder's Rust ({builder}) is older than rust-version {msrv}"
    );
    let deployment = std::fs::read_to_string(repo_root().join("deploy/deployment.yaml")).unwrap();
    assert!(
        deployment.contains(&format!("image: {reference}\n")),
        "deploy/deployment.yaml: the controller runs {reference}"
    );
    for line in [
        "runAsUser: 65532",
        "runAsGroup: 65532",
        "runAsNonRoot: true",
        "readOnlyRootFilesystem: true",
    ] {
        assert!(deployment.contains(line), "deploy/deployment.yaml: {line}");
    }
    assert!(
        deployment.contains("mountPath: /tmp"),
        "the only writable path is /tmp"
    );
    // The chart's defaults: the same repository (its tag defaults to the chart's appVersion,
    // which the chart's own test keeps equal to the workspace version) and the same user.
    let values =
        std::fs::read_to_string(repo_root().join("deploy/helm/meshtrust/values.yaml")).unwrap();
    for line in [
        format!("repository: {IMAGE}"),
        "runAsUser: 65532".to_owned(),
        "runAsGroup: 65532".to_owned(),
        "readOnlyRootFilesystem: true".to_owned(),
    ] {
        assert!(
            values.lines().any(|l| l.trim() == line),
            "deploy/helm/meshtrust/values.yaml: {line}"
        );
    }
    let doc = std::fs::read_to_string(repo_root().join("docs/image.md")).unwrap();
    assert!(doc.contains(&reference), "docs/image.md names {reference}");
}

#[test]
fn rootfs_sh_refuses_a_directory_in_use_and_a_missing_binary() {
    let script = repo_root().join("deploy/image/rootfs.sh");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("left-over"), "x").unwrap();
    let busy = Command::new("sh")
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_meshtrust"))
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!busy.status.success());
    assert!(text(&busy).contains("is not empty"), "{}", text(&busy));
    let missing = Command::new("sh")
        .arg(&script)
        .arg(dir.path().join("no-such-binary"))
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(
        text(&missing).contains("no-such-binary is not an executable"),
        "{}",
        text(&missing)
    );
    assert!(!dir.path().join("out").exists(), "nothing staged");
}
