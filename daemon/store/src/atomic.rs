//! Atomic small-file writes (temp file in the same directory, fsync, rename,
//! fsync the directory) and the start-up cleanup of temps a crash left.
//!
//! A crash at any point leaves either the old file or the new one, plus at
//! worst a temp file that [`remove_stale_temp_files`] deletes on the next
//! start.
//!
//! The directories written to may be group-writable (the image root), so
//! the temp is created with `O_CREAT | O_EXCL | O_NOFOLLOW` under a name
//! with 64 random bits: a planted name (a symlink to a host file) is never
//! opened, and nobody can guess the name to plant one in advance. The
//! rename replaces a planted entry at the destination, never what it
//! points at.

use std::fs::{self, File};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::create::{create_exclusive, effective_uid, random_u64};

/// Marker between the file name and the pid/random part in a temp name.
const TEMP_INFIX: &str = ".tmp-";
/// Upstream's sidecar temp (`<file>.sha256.tmp`).
const UPSTREAM_SIDECAR_TEMP_SUFFIX: &str = ".sha256.tmp";

/// Write `bytes` to `path` atomically: readers see the old content or the new
/// content, never a mix, and after a crash the file is old or new.
///
/// The temp file is `.<file name>.tmp-<pid>-<random>` next to `path`; it is
/// removed on any error.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, bytes, |_| Ok(()))
}

/// When the rename of an atomic write is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenameSync {
    /// The directory is fsynced before the write returns.
    Now,
    /// The caller fsyncs the directory later ([`fsync_dir`]), once for a
    /// burst of writes. The write is still atomic: a crash before that
    /// sync leaves the old file (or none), never a partial one.
    Deferred,
}

/// [`write_atomic`], calling `prepare` on the written temp file before it
/// is renamed into place (e.g. to set its mtime on the descriptor instead
/// of reopening the destination by name afterwards).
pub fn write_atomic_with(
    path: &Path,
    bytes: &[u8],
    prepare: impl FnOnce(&File) -> io::Result<()>,
) -> io::Result<()> {
    write_atomic_synced(path, bytes, prepare, RenameSync::Now)
}

/// [`write_atomic_with`], with the rename made durable now or later.
pub fn write_atomic_synced(
    path: &Path,
    bytes: &[u8],
    prepare: impl FnOnce(&File) -> io::Result<()>,
    rename_sync: RenameSync,
) -> io::Result<()> {
    let temp = temp_path(path)?;
    let written = write_and_sync(&temp, bytes, prepare).and_then(|()| fs::rename(&temp, path));
    if let Err(e) = written {
        // The temp is garbage now; failing to remove it is not worth
        // hiding the original error for.
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    match rename_sync {
        RenameSync::Now => fsync_dir(parent_dir(path)),
        RenameSync::Deferred => Ok(()),
    }
}

/// `.<file name>.tmp-<pid>-<random>` next to `path`.
pub fn temp_path(path: &Path) -> io::Result<PathBuf> {
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            ErrorKind::InvalidInput,
            format!("{} has no file name", path.display()),
        )
    })?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(
        "{TEMP_INFIX}{}-{}",
        std::process::id(),
        random_u64()?
    ));
    Ok(parent_dir(path).join(temp_name))
}

/// Create `temp` (never clobbering, never through a link), write `bytes`,
/// let `prepare` finish it, flush it to disk.
fn write_and_sync(
    temp: &Path,
    bytes: &[u8],
    prepare: impl FnOnce(&File) -> io::Result<()>,
) -> io::Result<()> {
    let mut file = create_exclusive(temp)?;
    file.write_all(bytes)?;
    prepare(&file)?;
    file.sync_all()
}

/// The directory holding `path` (`.` for a bare relative name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// fsync a directory so a rename or unlink inside it is durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Whether `name` is a temp file that an interrupted write leaves behind:
/// ours (`.<name>.tmp-<pid>-<number>`) or upstream's `<file>.sha256.tmp`.
pub fn is_temp_file_name(name: &str) -> bool {
    if name.ends_with(UPSTREAM_SIDECAR_TEMP_SUFFIX)
        && name.len() > UPSTREAM_SIDECAR_TEMP_SUFFIX.len()
    {
        return true;
    }
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    let Some((base, tail)) = rest.rsplit_once(TEMP_INFIX) else {
        return false;
    };
    let Some((pid, counter)) = tail.split_once('-') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    !base.is_empty() && digits(pid) && digits(counter)
}

/// Delete the temp files ([`is_temp_file_name`]) directly inside `dir` and
/// return their paths. Call at start-up, before anything writes to `dir`:
/// a temp of a live writer is indistinguishable from a stale one. Only
/// regular files owned by our effective uid go: those are the ones we
/// created (nobody else can make a file ours), and anything else with such
/// a name is left alone.
pub fn remove_stale_temp_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !is_temp_file_name(&name) {
            continue;
        }
        // Only plain files of ours: a directory, symlink or someone else's
        // file with such a name is not ours to delete.
        match entry.metadata() {
            Ok(m) if m.is_file() && std::os::unix::fs::MetadataExt::uid(&m) == effective_uid() => {}
            _ => continue,
        }
        match fs::remove_file(entry.path()) {
            Ok(()) => removed.push(entry.path()),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if !removed.is_empty() {
        fsync_dir(dir)?;
    }
    removed.sort();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_and_replaces_without_leaving_temps() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("catalog.toml");
        write_atomic(&path, b"one").expect("first write");
        write_atomic(&path, b"two").expect("second write");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        assert_eq!(names_in(dir.path()), ["catalog.toml"]);
    }

    #[test]
    fn failed_write_leaves_old_content_and_no_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Renaming a file over a non-empty directory fails after the temp
        // was written: the temp must be cleaned up.
        let target = dir.path().join("busy");
        fs::create_dir(&target).expect("mkdir");
        fs::write(target.join("inside"), b"x").expect("write");
        assert!(write_atomic(&target, b"new").is_err());
        assert_eq!(names_in(dir.path()), ["busy"]);
        assert!(write_atomic(&dir.path().join("missing-dir/x"), b"new").is_err());
        assert!(write_atomic(Path::new("/"), b"x").is_err());
    }

    #[test]
    fn temp_names_table() {
        for (name, want) in [
            (".x.img.sha256.tmp-123-0", true),
            (".catalog.toml.tmp-1-99", true),
            (".a.tmp-b.tmp-5-6", true),
            ("x.img.sha256.tmp", true),
            (".sha256.tmp", false),
            (".sha256.tmp-1-2", true),
            (".tmp-1-2", false),
            ("x.tmp-1-2", false),
            (".x.tmp-1", false),
            (".x.tmp-a-1", false),
            (".x.tmp-1-", false),
            (".bty-storage.json", false),
            ("x.img.partial", false),
            ("x.img", false),
            ("x.img.sha256", false),
        ] {
            assert_eq!(is_temp_file_name(name), want, "{name}");
        }
    }

    #[test]
    fn cleans_only_temp_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in [
            ".a.img.sha256.tmp-1-0",
            "b.img.sha256.tmp",
            "a.img",
            "a.img.partial",
        ] {
            fs::write(dir.path().join(name), b"x").expect("write");
        }
        fs::create_dir(dir.path().join(".d.tmp-1-1")).expect("mkdir");
        let removed = remove_stale_temp_files(dir.path()).expect("cleanup");
        assert_eq!(
            removed,
            [
                dir.path().join(".a.img.sha256.tmp-1-0"),
                dir.path().join("b.img.sha256.tmp")
            ]
        );
        assert_eq!(
            names_in(dir.path()),
            [".d.tmp-1-1", "a.img", "a.img.partial"]
        );
    }

    #[test]
    fn write_atomic_temp_names_are_recognised_and_unpredictable() {
        // The temp name grammar and the recogniser must agree, or crashes
        // would leave temps nobody cleans.
        let a = temp_path(Path::new("/r/x.img.sha256")).unwrap();
        let b = temp_path(Path::new("/r/x.img.sha256")).unwrap();
        assert_ne!(a, b);
        for temp in [a, b] {
            let name = temp.file_name().unwrap().to_str().unwrap();
            assert!(is_temp_file_name(name), "{name}");
        }
    }

    #[test]
    fn a_planted_link_at_the_destination_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"host file").unwrap();
        let dest = dir.path().join("x.img.sha256");
        std::os::unix::fs::symlink(&victim, &dest).unwrap();
        write_atomic(&dest, b"sidecar").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"host file");
        assert!(fs::symlink_metadata(&dest).unwrap().is_file());
        assert_eq!(fs::read(&dest).unwrap(), b"sidecar");
    }

    #[test]
    fn cleanup_leaves_other_users_files_alone() {
        assert_eq!(
            effective_uid(),
            0,
            "plays another user (chown): run as root"
        );
        let dir = tempfile::tempdir().unwrap();
        let foreign = dir.path().join(".x.img.sha256.tmp-1-2");
        fs::write(&foreign, b"x").unwrap();
        std::os::unix::fs::chown(&foreign, Some(4242), None).unwrap();
        assert!(remove_stale_temp_files(dir.path()).unwrap().is_empty());
        assert!(foreign.exists());
    }
}
