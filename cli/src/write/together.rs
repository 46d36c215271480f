//! Files in one directory that must change together, such as a root's certificate and key.
//!
//! Two renames are never atomic together, so the files are written the way kubelet writes a
//! Secret volume (`AtomicWriter`): each generation of the set is a hidden directory
//! `..meshtrust-gen-XXXXXX`, the symlink `..meshtrust` names the current one, and every file
//! of the set is a symlink through it (`root-key.pem -> ..meshtrust/root-key.pem`). Switching
//! generations is one rename of the `..meshtrust` link, so a reader (and a process killed at
//! any point) sees the whole old set or the whole new one. A link whose generation does not
//! hold its file dangles, which a reader sees as no file at all: that is how a first write
//! makes every file appear at once.
//!
//! Files of the set that are plain files (written by hand, or by an older meshtrust) are
//! first adopted into a generation holding exactly their content, so that step changes
//! nothing a reader sees either.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::{DIR_MODE, ensure_dir, sweep_stale, sync_dir};

/// The symlink naming the current generation.
const CURRENT: &str = "..meshtrust";
/// Prefix of generation directories.
const GENERATION: &str = "..meshtrust-gen-";
/// Prefix of a link being made, renamed over [`CURRENT`].
const LINK: &str = "..meshtrust-link-";

/// One file of a set: its name in the directory, its bytes and its mode.
pub type SetFile<'a> = (&'a str, &'a [u8], u32);

/// Writes `files` into `dir` as one set (see the module docs). Without `replace`, a file of
/// the set that exists already is refused, naming it; nothing is written then.
pub fn write_together(dir: &Path, files: &[SetFile<'_>], replace: bool) -> Result<()> {
    ensure_dir(dir)?;
    sweep_stale(dir)?;
    if !replace && let Some((name, ..)) = files.iter().find(|(name, ..)| dir.join(name).exists()) {
        bail!(
            "{} already exists; pass --force to replace it",
            dir.join(name).display()
        );
    }
    let names: Vec<&str> = files.iter().map(|(name, ..)| *name).collect();
    adopt(dir, &names)?;
    let generation = new_generation(dir)?;
    for (name, contents, mode) in files {
        write_new(&generation.join(name), contents, *mode)?;
    }
    sync_dir(&generation)?;
    let old = current_generation(dir);
    point_current_at(dir, &generation)?;
    if let Some(old) = old {
        remove_generation(&dir.join(old))?;
    }
    sync_dir(dir)
}

/// Removes a generation no longer current (already gone is fine: a link can outlive it).
fn remove_generation(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// The name of the current generation's directory in `dir`, if the set was ever written.
pub(super) fn current_generation(dir: &Path) -> Option<String> {
    let target = fs::read_link(dir.join(CURRENT)).ok()?;
    Some(target.to_string_lossy().into_owned())
}

/// Makes every name of the set a link through [`CURRENT`], keeping what readers see: plain
/// files (and links elsewhere) are first copied, as hard links, into a generation of their
/// own made current. Names with nothing behind them get a link that dangles until written.
fn adopt(dir: &Path, names: &[&str]) -> Result<()> {
    let through = |name: &str| Path::new(CURRENT).join(name);
    let foreign: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| {
            fs::read_link(dir.join(name)).map_or_else(
                |_| fs::symlink_metadata(dir.join(name)).is_ok(),
                |t| t != through(name),
            )
        })
        .collect();
    if !foreign.is_empty() {
        let generation = new_generation(dir)?;
        for name in names {
            let seen = dir.join(name);
            if seen.is_dir() {
                bail!(
                    "{} is a directory; move it away, it is where meshtrust writes a file",
                    seen.display()
                );
            }
            if seen.exists() {
                let real = fs::canonicalize(&seen)
                    .with_context(|| format!("cannot read {}", seen.display()))?;
                fs::hard_link(&real, generation.join(name))
                    .with_context(|| format!("cannot take over {}", seen.display()))?;
            }
        }
        sync_dir(&generation)?;
        let old = current_generation(dir);
        point_current_at(dir, &generation)?;
        if let Some(old) = old {
            remove_generation(&dir.join(old))?;
        }
    }
    for name in names {
        let path = dir.join(name);
        if foreign.contains(name) || fs::symlink_metadata(&path).is_err() {
            replace_with_link(dir, &through(name), &path)?;
        }
    }
    sync_dir(dir)
}

/// A new, empty generation directory in `dir` (mode 0700).
fn new_generation(dir: &Path) -> Result<PathBuf> {
    let generation = tempfile::Builder::new()
        .prefix(GENERATION)
        .permissions(fs::Permissions::from_mode(DIR_MODE))
        .tempdir_in(dir)
        .with_context(|| format!("cannot create a directory in {}", dir.display()))?;
    Ok(generation.keep())
}

/// Creates `path` (which must not exist) with `contents` and `mode`, flushed to disk.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|()| f.write_all(contents))
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Points [`CURRENT`] at `generation` in one rename.
fn point_current_at(dir: &Path, generation: &Path) -> Result<()> {
    let name = generation.file_name().unwrap_or_default();
    replace_with_link(dir, Path::new(name), &dir.join(CURRENT))?;
    sync_dir(dir)
}

/// Makes `path` a symlink to `target`, atomically replacing whatever file or link is there.
fn replace_with_link(dir: &Path, target: &Path, path: &Path) -> Result<()> {
    let temp = tempfile::Builder::new()
        .prefix(LINK)
        .make_in(dir, |p| std::os::unix::fs::symlink(target, p))
        .with_context(|| format!("cannot create a link in {}", dir.display()))?;
    temp.persist(path)
        .map(drop)
        .map_err(|e| anyhow::Error::new(e.error))
        .with_context(|| format!("cannot link {} into place", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_set_is_written_then_replaced_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_together(d, &[("k", b"k1", 0o600), ("c", b"c1", 0o644)], false).unwrap();
        assert_eq!(fs::read(d.join("k")).unwrap(), b"k1");
        assert_eq!(fs::read(d.join("c")).unwrap(), b"c1");
        assert_eq!(
            fs::metadata(d.join("k")).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let err = write_together(d, &[("k", b"k2", 0o600), ("c", b"c2", 0o644)], false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("already exists") && err.contains("--force"),
            "{err}"
        );
        assert_eq!(fs::read(d.join("k")).unwrap(), b"k1");
        write_together(d, &[("k", b"k2", 0o600), ("c", b"c2", 0o644)], true).unwrap();
        assert_eq!(fs::read(d.join("k")).unwrap(), b"k2");
        assert_eq!(fs::read(d.join("c")).unwrap(), b"c2");
        let left = names(d);
        assert_eq!(
            left.len(),
            4,
            "two links, the current link and one generation: {left:?}"
        );
    }

    #[test]
    fn plain_files_are_adopted_then_replaced_and_unrelated_files_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("k"), b"old key").unwrap();
        fs::write(d.join("notes.txt"), b"mine").unwrap();
        write_together(
            d,
            &[("k", b"new key", 0o600), ("c", b"new cert", 0o644)],
            true,
        )
        .unwrap();
        assert_eq!(fs::read(d.join("k")).unwrap(), b"new key");
        assert_eq!(fs::read(d.join("c")).unwrap(), b"new cert");
        assert_eq!(fs::read(d.join("notes.txt")).unwrap(), b"mine");
        assert!(
            fs::symlink_metadata(d.join("k"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn a_dangling_link_left_by_a_killed_first_write_reads_as_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::os::unix::fs::symlink(Path::new(CURRENT).join("k"), d.join("k")).unwrap();
        fs::create_dir(d.join("..meshtrust-gen-stale")).unwrap();
        fs::write(d.join("..meshtrust-gen-stale/k"), b"half").unwrap();
        assert!(!d.join("k").exists());
        write_together(d, &[("k", b"k1", 0o600)], false).unwrap();
        assert_eq!(fs::read(d.join("k")).unwrap(), b"k1");
        assert!(
            !names(d).contains(&"..meshtrust-gen-stale".to_string()),
            "the stale generation is swept: {:?}",
            names(d)
        );
    }
}
