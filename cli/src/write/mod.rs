//! Writing files so that nothing is ever half-written or silently replaced.
//!
//! Every file is written to a temporary file in the same directory, flushed to disk, given
//! its final mode (0600 for keys), and renamed into place. A cluster's bundle is staged as a
//! whole directory and renamed into place, so a reader sees the old bundle or the new one.
//!
//! Staged directories are made durable in one batch: the caller stages every bundle, calls
//! [`sync_filesystem`] once (one journal commit instead of an fsync per file, which
//! dominated the time of a 100-cluster run), then commits each directory and finally
//! [`sync_dir`]s their parent so the renames themselves are durable.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use time::OffsetDateTime;

mod together;
pub use together::write_together;

/// Mode of files holding private keys.
pub const KEY_MODE: u32 = 0o600;
/// Mode of certificate files.
pub const CERT_MODE: u32 = 0o644;
/// Mode of directories that hold keys.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` (and parents) with mode 0700 when missing.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))
}

/// Writes `path` atomically and durably with `mode`. Without `replace`, an existing file is
/// an error (checked atomically: the rename refuses to clobber).
pub fn write_file(path: &Path, contents: &[u8], mode: u32, replace: bool) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".meshtrust-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    tmp.write_all(contents)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    let result = if replace {
        tmp.persist(path).map(drop)
    } else {
        tmp.persist_noclobber(path).map(drop)
    };
    result.map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} already exists; pass --force to replace it",
                path.display()
            )
        } else {
            anyhow::Error::new(e.error).context(format!("cannot write {}", path.display()))
        }
    })?;
    sync_dir(dir)
}

/// Flushes every pending write of the filesystem holding `dir` (Linux `syncfs`).
pub fn sync_filesystem(dir: &Path) -> Result<()> {
    let d = fs::File::open(dir).with_context(|| format!("cannot open {}", dir.display()))?;
    rustix::fs::syncfs(&d)
        .with_context(|| format!("cannot flush the filesystem of {}", dir.display()))
}

/// Makes the entries of `dir` (new names, renames) durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot flush directory {}", dir.display()))
}

/// `<name>.backup-<UTC stamp>` next to `path` (the stamp of [`meshtrust_ca::backup_suffix`],
/// shared with `cacerts` Secret backups).
pub fn backup_path(path: &Path, now: OffsetDateTime) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}", meshtrust_ca::backup_suffix(now)));
    path.with_file_name(name)
}

/// A directory being filled next to its final place, renamed into place by [`Self::commit`].
pub struct StagedDir {
    temp: tempfile::TempDir,
    target: PathBuf,
}

impl StagedDir {
    /// Stages a directory that will become `target`.
    pub fn new(target: &Path) -> Result<StagedDir> {
        let parent = target.parent().unwrap_or(Path::new("."));
        ensure_dir(parent)?;
        let name = target.file_name().unwrap_or_default().to_string_lossy();
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}.meshtrust-"))
            .permissions(fs::Permissions::from_mode(DIR_MODE))
            .tempdir_in(parent)
            .with_context(|| {
                format!(
                    "cannot create a temporary directory in {}",
                    parent.display()
                )
            })?;
        Ok(StagedDir {
            temp,
            target: target.to_path_buf(),
        })
    }

    /// Adds a file to the staged directory. The directory is private until committed, so
    /// the file is created in place (exclusively) rather than through a temporary name.
    /// Not flushed: call [`sync_filesystem`] before [`Self::commit`].
    pub fn write(&self, name: &str, contents: &[u8], mode: u32) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.temp.path().join(name);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .with_context(|| format!("staging {}", self.target.join(name).display()))?;
        // The umask may have narrowed `mode`; set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .and_then(|()| f.write_all(contents))
            .with_context(|| format!("staging {}", self.target.join(name).display()))
    }

    /// Moves the staged directory into place (call [`sync_filesystem`] first, and
    /// [`sync_dir`] on the parent afterwards). An existing target is refused unless
    /// `replace`; when replaced it is kept as a backup named after `backup`'s time if given,
    /// else removed. Returns the backup path, if one was made.
    ///
    /// An existing target is swapped with the staged directory in one `renameat2`
    /// (`RENAME_EXCHANGE`), so a process killed at any point leaves the old bundle or the new
    /// one at `target`, never neither; the backup is made (staged, then renamed) before the
    /// swap, so it is whole whenever it exists.
    pub fn commit(self, replace: bool, backup: Option<OffsetDateTime>) -> Result<Option<PathBuf>> {
        let target = self.target.clone();
        if fs::symlink_metadata(&target).is_err() {
            let staged = self.temp.keep();
            return rename_noreplace(&staged, &target)
                .inspect_err(|_| drop(fs::remove_dir_all(&staged)))
                .map(|()| None);
        }
        if !replace {
            bail!(
                "{} already exists; pass --force to replace it",
                target.display()
            );
        }
        let kept = match backup {
            Some(now) => Some(copy_aside(&target, &backup_path(&target, now))?),
            None => None,
        };
        let staged = self.temp.keep();
        if let Err(e) = exchange(&staged, &target) {
            let _ = fs::remove_dir_all(&staged);
            return Err(e)
                .with_context(|| format!("cannot move the new bundle to {}", target.display()));
        }
        // `staged` now holds the old bundle.
        fs::remove_dir_all(&staged).with_context(|| {
            format!(
                "cannot remove the replaced bundle (moved to {})",
                staged.display()
            )
        })?;
        Ok(kept)
    }
}

/// Swaps `a` and `b` atomically. On a filesystem without `RENAME_EXCHANGE` (NFS, some
/// FUSE), `b` is moved aside then `a` into place: a process killed between the two renames
/// leaves `b`'s old content at `a`, and nothing at `b` until a rerun.
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
            let aside = a.with_extension("meshtrust-swap");
            fs::rename(b, &aside)?;
            fs::rename(a, b)?;
            fs::rename(&aside, a)
        }
        other => other.map_err(std::io::Error::from),
    }
}

/// Renames `from` to `to`, refusing (atomically where the filesystem can) when `to` exists.
fn rename_noreplace(from: &Path, to: &Path) -> Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    let renamed = match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) if !to.exists() => {
            fs::rename(from, to)
        }
        other => other.map_err(std::io::Error::from),
    };
    renamed.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} already exists; pass --force to replace it",
                to.display()
            )
        } else {
            anyhow::Error::new(e).context(format!("cannot move {} into place", to.display()))
        }
    })
}

/// Copies the files of directory `from` to a new directory `to` (hard links: the bundle
/// files are never written in place, so a link keeps the old content), through a staged
/// directory, so `to` is whole whenever it exists. Returns `to`.
fn copy_aside(from: &Path, to: &Path) -> Result<PathBuf> {
    let staged = StagedDir::new(to)?;
    let entries = fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", from.display()))?;
        let dest = staged.temp.path().join(entry.file_name());
        fs::hard_link(entry.path(), &dest).with_context(|| {
            format!(
                "cannot keep {} in the backup {}",
                entry.path().display(),
                to.display()
            )
        })?;
    }
    sync_dir(staged.temp.path())?;
    let temp = staged.temp.keep();
    rename_noreplace(&temp, to).inspect_err(|_| drop(fs::remove_dir_all(&temp)))?;
    Ok(to.to_path_buf())
}

/// Removes what a killed meshtrust left in `dir`: temporary files and staged directories
/// (hidden names holding `.meshtrust-`, which may hold key material) and generations of a
/// file set that are no longer current (see [`write_together`]). Call it once per command
/// and directory, before writing: a meshtrust writing to the same directory at the same
/// time would lose its staged files (and fail, writing nothing).
pub fn sweep_stale(dir: &Path) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    let current = together::current_generation(dir);
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with('.') || !name.contains(".meshtrust-") {
            continue;
        }
        if current.as_deref() == Some(name.as_ref()) {
            continue;
        }
        let path = entry.path();
        let removed = match entry.file_type() {
            Ok(t) if t.is_dir() => fs::remove_dir_all(&path),
            _ => fs::remove_file(&path),
        };
        removed.with_context(|| {
            format!(
                "cannot remove {}, left by an interrupted meshtrust",
                path.display()
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_written_with_its_mode_and_never_clobbered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca-key.pem");
        write_file(&path, b"one", KEY_MODE, false).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let err = write_file(&path, b"two", KEY_MODE, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("already exists") && err.contains("--force"),
            "{err}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"one");
        write_file(&path, b"two", KEY_MODE, true).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary files are left behind");
    }

    #[test]
    fn a_staged_directory_replaces_the_old_one_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("c1");
        let first = StagedDir::new(&target).unwrap();
        first.write("a", b"1", CERT_MODE).unwrap();
        assert!(!target.exists(), "nothing is visible before commit");
        first.commit(false, None).unwrap();
        assert_eq!(
            fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            0o700
        );

        let second = StagedDir::new(&target).unwrap();
        second.write("a", b"2", CERT_MODE).unwrap();
        assert!(second.commit(false, None).is_err());
        assert_eq!(fs::read(target.join("a")).unwrap(), b"1");

        let third = StagedDir::new(&target).unwrap();
        third.write("a", b"3", CERT_MODE).unwrap();
        let backup = third
            .commit(true, Some(meshtrust_issuer::Clock::system().now()))
            .unwrap()
            .expect("a backup");
        assert_eq!(fs::read(target.join("a")).unwrap(), b"3");
        assert_eq!(fs::read(backup.join("a")).unwrap(), b"1");
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names.len(),
            2,
            "only the bundle and its backup remain: {names:?}"
        );
    }
}
