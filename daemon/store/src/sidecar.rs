//! `<file>.sha256` sidecars: `<hex>  <basename>\n`, the `sha256sum` line
//! format, so an operator can run `sha256sum -c x.img.sha256`. A sidecar
//! older than its file is stale: the file changed after it was hashed.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, ErrorKind, Read};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::atomic::{RenameSync, write_atomic_synced};
use crate::digest::is_sha256_hex;
use crate::identity::open_nofollow;
use crate::names::SIDECAR_SUFFIX;

/// A sidecar is one short line; anything longer is not one of ours.
const MAX_SIDECAR_LEN: u64 = 4096;

/// Why a sidecar's text holds no sha256. Not an error anyone has to act on
/// (the file is simply hashed again), but it says what was wrong with a
/// hand-written sidecar, in the log and to fuzzers.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SidecarError {
    /// Nothing but whitespace.
    #[error("the sidecar is empty: a sidecar is `<sha256>  <file name>`")]
    Empty,
    /// The first word has a character that is not a hex digit.
    #[error("the sidecar's first word {word:?} is not a sha256: {bad:?} is not a hex digit")]
    NotHex {
        /// The word (its first 24 characters).
        word: String,
        /// The first character that is not a hex digit.
        bad: char,
    },
    /// The first word is hex, but not 64 digits.
    #[error("the sidecar's first word is {len} hex digits long, a sha256 is 64")]
    Length {
        /// How many digits it has.
        len: usize,
    },
}

/// What the sidecar of a file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sidecar {
    /// No sidecar.
    Missing,
    /// A valid sha256, written no earlier than the file's last change.
    Fresh(String),
    /// A valid sha256, but the file changed after it was written.
    Stale(String),
    /// A sidecar exists but holds no sha256 (typo, truncated, unreadable).
    Invalid,
}

impl Sidecar {
    /// The sha256 when it can be trusted (fresh), else `None`.
    pub fn fresh_sha256(&self) -> Option<&str> {
        match self {
            Self::Fresh(sha) => Some(sha),
            _ => None,
        }
    }
}

/// `<file>.sha256`, next to `file`.
pub fn sidecar_path(file: &Path) -> PathBuf {
    let mut s = OsString::from(file.as_os_str());
    s.push(SIDECAR_SUFFIX);
    PathBuf::from(s)
}

/// Read and judge the sidecar of `file`. Never fails: an unreadable sidecar
/// is [`Sidecar::Invalid`]; when the file itself cannot be stat'ed a valid
/// sidecar is [`Sidecar::Stale`], since freshness cannot be shown.
///
/// Neither name is followed if it is a symlink: a sidecar planted as a link
/// to a host file (a key that happens to be 64 hex digits) is invalid, not
/// read, and the file's mtime is its own, not a link target's.
pub fn read_sidecar(file: &Path) -> Sidecar {
    let path = sidecar_path(file);
    let opened = match open_nofollow(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Sidecar::Missing,
        Err(_) => return Sidecar::Invalid,
    };
    let sidecar_mtime = match opened.metadata() {
        Ok(m) if m.is_file() => m.modified().ok(),
        _ => return Sidecar::Invalid,
    };
    let Some(sha) = read_hex(opened, &path) else {
        return Sidecar::Invalid;
    };
    let file_mtime = fs::symlink_metadata(file)
        .ok()
        .filter(fs::Metadata::is_file)
        .and_then(|m| m.modified().ok());
    match (sidecar_mtime, file_mtime) {
        (Some(s), Some(f)) if s >= f => Sidecar::Fresh(sha),
        _ => Sidecar::Stale(sha),
    }
}

/// The sha256 in a sidecar's text, read by [`read_sidecar`] from disk.
fn read_hex(file: File, path: &Path) -> Option<String> {
    let mut text = String::new();
    file.take(MAX_SIDECAR_LEN).read_to_string(&mut text).ok()?;
    check_sidecar(&text)
        .inspect_err(|reason| {
            tracing::info!(sidecar = %path.display(), %reason, "ignoring a sidecar without a sha256; the file will be hashed again");
        })
        .ok()
}

/// The sha256 a sidecar's text holds: its first whitespace-separated token,
/// lowercased, when that is 64 hex digits. A `\` prefix (sha256sum's
/// escaped-name marker) is allowed. Pure, so fuzz targets can call it.
pub fn parse_sidecar(text: &str) -> Option<String> {
    check_sidecar(text).ok()
}

/// [`parse_sidecar`], saying why when there is no sha256.
pub fn check_sidecar(text: &str) -> Result<String, SidecarError> {
    let token = text.split_whitespace().next().ok_or(SidecarError::Empty)?;
    let token = token
        .strip_prefix('\\')
        .unwrap_or(token)
        .to_ascii_lowercase();
    if let Some(bad) = token.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(SidecarError::NotHex {
            word: token.chars().take(24).collect(),
            bad,
        });
    }
    if !is_sha256_hex(&token) {
        return Err(SidecarError::Length { len: token.len() });
    }
    Ok(token)
}

/// Write `<sha256>  <basename>\n` next to `file`, atomically. The sidecar
/// ends up no older than the file (a file with a future mtime gets a sidecar
/// with that mtime), so it reads back as [`Sidecar::Fresh`].
///
/// The caller must make sure the file did not change while it was hashed
/// (compare its mtime before and after), or a wrong hash would look fresh.
pub fn write_sidecar(file: &Path, sha256: &str) -> io::Result<()> {
    write_sidecar_synced(file, sha256, RenameSync::Now)
}

/// [`write_sidecar`] with the rename made durable now or by the caller's
/// later [`crate::atomic::fsync_dir`] (the hasher syncs the image root
/// once per burst of small files, not once per file).
pub fn write_sidecar_synced(file: &Path, sha256: &str, rename_sync: RenameSync) -> io::Result<()> {
    let sha = sha256.to_ascii_lowercase();
    if !is_sha256_hex(&sha) {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            format!("not a sha256: {sha256:?}"),
        ));
    }
    let name = file
        .file_name()
        .ok_or_else(|| {
            io::Error::new(
                ErrorKind::InvalidInput,
                format!("{} has no file name", file.display()),
            )
        })?
        .to_string_lossy();
    let path = sidecar_path(file);
    let file_mtime = fs::symlink_metadata(file).and_then(|m| m.modified()).ok();
    // The mtime is set on the temp before the rename: reopening the sidecar
    // by name afterwards could open whatever was planted there meanwhile.
    let line = sidecar_line(&sha, &name);
    let keep_fresh = |sidecar: &File| {
        if let Some(file_mtime) = file_mtime
            && sidecar.metadata()?.modified()? < file_mtime
        {
            sidecar.set_modified(file_mtime)?;
        }
        Ok(())
    };
    write_atomic_synced(&path, line.as_bytes(), keep_fresh, rename_sync)
}

/// One `sha256sum` line. Names with `\` or a newline are escaped the way GNU
/// sha256sum does it (leading `\`), so `sha256sum -c` still finds the file.
fn sidecar_line(sha: &str, name: &str) -> String {
    if name.contains(['\\', '\n', '\r']) {
        let escaped = name
            .replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('\r', "\\r");
        format!("\\{sha}  {escaped}\n")
    } else {
        format!("{sha}  {name}\n")
    }
}

/// Remove the sidecar of `file`; an absent sidecar is fine.
pub fn remove_sidecar(file: &Path) -> io::Result<()> {
    match fs::remove_file(sidecar_path(file)) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Remove `file` and its sidecar. The sidecar goes first: a crash between
/// the two leaves a file without a sidecar (hashed again at the next scan),
/// never a sidecar without its file. `Ok(false)` when the file was not
/// there (an orphaned sidecar is removed all the same).
pub fn remove_with_sidecar(file: &Path) -> io::Result<bool> {
    remove_sidecar(file)?;
    match fs::remove_file(file) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Move verified bytes at `staged` to `dest` with their sidecar. The old
/// sidecar goes first (never a fresh-looking sidecar with the wrong digest),
/// then the rename over the old file, the directory fsync, and the new
/// sidecar (newer than the file, so fresh).
pub fn install_with_sidecar(staged: &Path, dest: &Path, sha256: &str) -> io::Result<()> {
    remove_sidecar(dest)?;
    std::fs::rename(staged, dest)?;
    if let Some(dir) = dest.parent() {
        crate::atomic::fsync_dir(dir)?;
    }
    write_sidecar(dest, sha256)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256_bytes;
    use std::time::{Duration, SystemTime};

    const SHA: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn set_mtime(path: &Path, t: SystemTime) {
        File::options()
            .write(true)
            .open(path)
            .expect("open")
            .set_modified(t)
            .expect("set_modified");
    }

    fn image(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, b"abc").expect("write image");
        path
    }

    #[test]
    fn path_appends_suffix() {
        assert_eq!(
            sidecar_path(Path::new("/r/x.img.gz")),
            Path::new("/r/x.img.gz.sha256")
        );
    }

    #[test]
    fn write_then_read_is_fresh() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = image(dir.path(), "x.img");
        assert_eq!(read_sidecar(&file), Sidecar::Missing);
        write_sidecar(&file, &SHA.to_uppercase()).expect("write");
        assert_eq!(
            fs::read_to_string(sidecar_path(&file)).expect("read"),
            format!("{SHA}  x.img\n")
        );
        assert_eq!(read_sidecar(&file), Sidecar::Fresh(SHA.to_owned()));
        assert_eq!(read_sidecar(&file).fresh_sha256(), Some(SHA));
    }

    #[test]
    fn a_sidecar_whose_rename_waits_for_a_later_sync_is_the_same_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = image(dir.path(), "x.img");
        set_mtime(&file, SystemTime::now() + Duration::from_secs(3600));
        write_sidecar_synced(&file, SHA, RenameSync::Deferred).expect("write");
        assert_eq!(
            fs::read_to_string(sidecar_path(&file)).expect("read"),
            format!("{SHA}  x.img\n")
        );
        assert_eq!(read_sidecar(&file), Sidecar::Fresh(SHA.to_owned()));
        // No temp is left behind for the later sync to find.
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn older_sidecar_is_stale() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = image(dir.path(), "x.img");
        write_sidecar(&file, SHA).expect("write");
        let now = SystemTime::now();
        set_mtime(&sidecar_path(&file), now - Duration::from_secs(60));
        set_mtime(&file, now);
        assert_eq!(read_sidecar(&file), Sidecar::Stale(SHA.to_owned()));
        assert_eq!(read_sidecar(&file).fresh_sha256(), None);
    }

    #[test]
    fn sidecar_of_future_file_is_fresh() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = image(dir.path(), "x.img");
        set_mtime(&file, SystemTime::now() + Duration::from_secs(3600));
        write_sidecar(&file, SHA).expect("write");
        assert_eq!(read_sidecar(&file), Sidecar::Fresh(SHA.to_owned()));
    }

    #[test]
    fn parse_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = image(dir.path(), "x.img");
        for (content, want) in [
            (format!("{SHA}  x.img\n"), Sidecar::Fresh(SHA.to_owned())),
            (
                format!("{}\n", SHA.to_uppercase()),
                Sidecar::Fresh(SHA.to_owned()),
            ),
            (format!("  {SHA} *x.img"), Sidecar::Fresh(SHA.to_owned())),
            (
                format!("\\{SHA}  x\\nimg\n"),
                Sidecar::Fresh(SHA.to_owned()),
            ),
            (format!("{}  x.img\n", &SHA[1..]), Sidecar::Invalid),
            ("".to_owned(), Sidecar::Invalid),
            ("not a hash\n".to_owned(), Sidecar::Invalid),
        ] {
            let side = sidecar_path(&file);
            fs::write(&side, &content).expect("write sidecar");
            set_mtime(&file, SystemTime::now() - Duration::from_secs(10));
            assert_eq!(read_sidecar(&file), want, "{content:?}");
        }
        fs::write(sidecar_path(&file), [0xff, 0xfe, 0x00]).expect("write");
        assert_eq!(read_sidecar(&file), Sidecar::Invalid);
    }

    #[test]
    fn check_sidecar_says_what_is_wrong() {
        assert_eq!(
            check_sidecar(&format!("{SHA}  x.img\n")),
            Ok(SHA.to_owned())
        );
        assert_eq!(check_sidecar(" \n\t"), Err(SidecarError::Empty));
        assert_eq!(
            check_sidecar(&format!("{}  x.img", &SHA[1..])),
            Err(SidecarError::Length { len: 63 })
        );
        assert_eq!(
            check_sidecar(&format!("sha256:{SHA}")),
            Err(SidecarError::NotHex {
                word: format!("sha256:{}", &SHA[..17]),
                bad: 's'
            })
        );
        let message = check_sidecar("\\\\ab").unwrap_err().to_string();
        assert!(message.contains(r"'\\' is not a hex digit"), "{message}");
    }

    #[test]
    fn a_sidecar_planted_as_a_link_to_a_host_file_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        // A host secret that happens to look like a sha256.
        let secret = dir.path().join("host-key");
        fs::write(&secret, format!("{SHA}\n")).unwrap();
        let root = dir.path().join("images");
        fs::create_dir(&root).unwrap();
        let path = image(&root, "x.img");
        std::os::unix::fs::symlink(&secret, sidecar_path(&path)).unwrap();
        assert_eq!(read_sidecar(&path), Sidecar::Invalid);
        // Writing the sidecar replaces the link; the host file is untouched.
        let mtime = fs::metadata(&secret).unwrap().modified().unwrap();
        write_sidecar(&path, SHA).unwrap();
        assert_eq!(read_sidecar(&path), Sidecar::Fresh(SHA.to_owned()));
        assert_eq!(fs::read_to_string(&secret).unwrap(), format!("{SHA}\n"));
        assert_eq!(fs::metadata(&secret).unwrap().modified().unwrap(), mtime);
    }

    #[test]
    fn directory_sidecar_is_invalid_and_missing_file_is_stale() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("gone.img");
        fs::write(sidecar_path(&file), format!("{SHA}  gone.img\n")).expect("write");
        assert_eq!(read_sidecar(&file), Sidecar::Stale(SHA.to_owned()));
        let other = dir.path().join("d.img");
        fs::create_dir(sidecar_path(&other)).expect("mkdir");
        assert_eq!(read_sidecar(&other), Sidecar::Invalid);
    }

    #[test]
    fn write_refuses_bad_hash_and_remove_is_idempotent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = image(dir.path(), "x.img");
        assert!(write_sidecar(&file, "abc").is_err());
        assert_eq!(read_sidecar(&file), Sidecar::Missing);
        write_sidecar(&file, SHA).expect("write");
        remove_sidecar(&file).expect("remove");
        remove_sidecar(&file).expect("remove again");
        assert_eq!(read_sidecar(&file), Sidecar::Missing);
    }

    #[test]
    fn removes_a_file_with_its_sidecar_and_an_orphaned_sidecar() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = image(dir.path(), "x.img");
        write_sidecar(&file, SHA).expect("write");
        assert!(remove_with_sidecar(&file).expect("remove"));
        assert!(!file.exists() && !sidecar_path(&file).exists());
        // A sidecar left without its file goes too; the file was not there.
        fs::write(sidecar_path(&file), format!("{SHA}  x.img\n")).expect("orphan");
        assert!(!remove_with_sidecar(&file).expect("remove orphan"));
        assert!(!sidecar_path(&file).exists());
    }

    #[test]
    fn escapes_awkward_names() {
        assert_eq!(
            sidecar_line(SHA, "a\\b\nc"),
            format!("\\{SHA}  a\\\\b\\nc\n")
        );
    }

    #[test]
    fn sha256sum_accepts_written_sidecar() {
        let Ok(probe) = std::process::Command::new("sha256sum")
            .arg("--version")
            .output()
        else {
            return; // sha256sum not installed
        };
        if !probe.status.success() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["disk image.img", "weird\\name.img"] {
            let file = image(dir.path(), name);
            write_sidecar(&file, &sha256_bytes(b"abc")).expect("write");
            let out = std::process::Command::new("sha256sum")
                .arg("-c")
                .arg(sidecar_path(&file).file_name().expect("name"))
                .current_dir(dir.path())
                .output()
                .expect("run sha256sum");
            assert!(out.status.success(), "{name}: {out:?}");
        }
    }
}
