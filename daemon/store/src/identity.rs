//! Reading files of the image root without trusting their names.
//!
//! Anyone in the image root's group can rename, replace or symlink any
//! name in it, so a path is only a hint: a reader opens the name with
//! `O_NOFOLLOW` (a symlink is refused, never followed), checks that what it
//! got is a regular file with one link, and compares the descriptor's
//! identity (device, inode, size, mtime) with what the scan recorded before
//! it uses a byte. Every later read goes through that descriptor, so a
//! swap after the check changes nothing.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use thiserror::Error;

/// What identifies one version of a file: the inode it is, and the size
/// and modification time it had. Two equal identities mean the same bytes
/// as far as a stat can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    /// Device of the filesystem holding it.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Last modification.
    pub mtime: SystemTime,
}

impl Default for FileIdentity {
    fn default() -> Self {
        Self {
            dev: 0,
            ino: 0,
            size: 0,
            mtime: SystemTime::UNIX_EPOCH,
        }
    }
}

impl FileIdentity {
    /// The identity `meta` describes.
    pub fn of(meta: &Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        }
    }
}

/// Why a listed file could not be opened for reading. Every case means
/// nothing was read from it.
#[derive(Debug, Error)]
pub enum OpenImageError {
    /// The name is not a bare file name.
    #[error("{name:?} is not a file name in the image root")]
    BadName {
        /// The name given.
        name: String,
    },
    /// The name no longer holds the file the scan listed.
    #[error("{name} changed since it was listed ({why}): rescan")]
    Changed {
        /// The file name.
        name: String,
        /// What is different now.
        why: &'static str,
    },
    /// The file could not be opened or stat'ed.
    #[error("cannot open {name}")]
    Io {
        /// The file name.
        name: String,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}

impl OpenImageError {
    /// Whether the file merely changed (a copy still being written, a
    /// replace by rename) rather than being a link or a special file.
    pub fn is_changed_contents(&self) -> bool {
        matches!(
            self,
            Self::Changed {
                why: WHY_DIFFERENT,
                ..
            }
        )
    }

    /// Whether the file has more than one name (a hard link).
    pub fn is_hard_linked(&self) -> bool {
        matches!(
            self,
            Self::Changed {
                why: WHY_LINKED,
                ..
            }
        )
    }
}

const WHY_DIFFERENT: &str = "another file, size or modification time";
const WHY_LINKED: &str = "it has more than one hard link";

/// A file of the image root, open for reading, that was checked to be the
/// file the scan listed. Its bytes come only from this descriptor.
#[derive(Debug)]
pub struct VerifiedImage {
    file: File,
    name: String,
    path: PathBuf,
    identity: FileIdentity,
}

impl VerifiedImage {
    /// Open `root/name` and check it is still the file the scan saw as
    /// `expected`: not a symlink, a regular file with one link, and the
    /// same device, inode, size and mtime.
    pub fn open(root: &Path, name: &str, expected: &FileIdentity) -> Result<Self, OpenImageError> {
        if !is_bare_name(name) {
            return Err(OpenImageError::BadName {
                name: name.to_owned(),
            });
        }
        let path = root.join(name);
        let (file, meta) = open_regular(&path, name)?;
        let identity = FileIdentity::of(&meta);
        if identity != *expected {
            return Err(changed(name, WHY_DIFFERENT));
        }
        Ok(Self {
            file,
            name: name.to_owned(),
            path,
            identity,
        })
    }

    /// The open file. Read it with positional reads (`read_at`) where it
    /// is shared, so nobody moves another reader's offset.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The open file, for a reader that consumes it.
    pub fn into_file(self) -> File {
        self.file
    }

    /// The file name in the image root.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the file was opened (for messages only: never reopen it).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The identity checked at open.
    pub fn identity(&self) -> &FileIdentity {
        &self.identity
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.identity.size
    }
}

/// Open `path` for reading without following a symlink and without
/// blocking on a FIFO or device, and insist on a regular file with one
/// link. A hard link could name a file outside the image root (another
/// name for `/etc/shadow` on the same filesystem), so files with more than
/// one name are refused.
pub fn open_regular(path: &Path, name: &str) -> Result<(File, Metadata), OpenImageError> {
    let file = match open_nofollow(path) {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(changed(name, "it is a symbolic link now"));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(changed(name, "it is gone"));
        }
        Err(source) => {
            return Err(OpenImageError::Io {
                name: name.to_owned(),
                source,
            });
        }
    };
    let meta = file.metadata().map_err(|source| OpenImageError::Io {
        name: name.to_owned(),
        source,
    })?;
    if !meta.is_file() {
        return Err(changed(name, "it is not a regular file now"));
    }
    if meta.nlink() != 1 {
        return Err(changed(name, WHY_LINKED));
    }
    Ok((file, meta))
}

/// `open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)`,
/// then back to blocking reads. `O_NONBLOCK` only keeps a FIFO planted
/// under the name from hanging the open; regular files ignore it.
pub fn open_nofollow(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    clear_nonblock(&file)?;
    Ok(file)
}

fn clear_nonblock(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is open for the lifetime of `file`; F_GETFL/F_SETFL take
    // and return plain integers.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    let rc = unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn changed(name: &str, why: &'static str) -> OpenImageError {
    OpenImageError::Changed {
        name: name.to_owned(),
        why,
    }
}

/// A bare file name: no separator, not `.` or `..`, not empty.
fn is_bare_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    fn listed(root: &Path, name: &str) -> FileIdentity {
        FileIdentity::of(&std::fs::symlink_metadata(root.join(name)).unwrap())
    }

    #[test]
    fn opens_the_listed_file_and_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.img"), b"image bytes").unwrap();
        let id = listed(dir.path(), "x.img");
        let image = VerifiedImage::open(dir.path(), "x.img", &id).unwrap();
        assert_eq!(image.size(), 11);
        let mut s = String::new();
        image.into_file().read_to_string(&mut s).unwrap();
        assert_eq!(s, "image bytes");
    }

    #[test]
    fn a_symlink_swapped_in_is_refused_without_reading_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"root only").unwrap();
        let root = dir.path().join("images");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("x.img"), b"image").unwrap();
        let id = listed(&root, "x.img");
        std::fs::remove_file(root.join("x.img")).unwrap();
        symlink(&secret, root.join("x.img")).unwrap();
        let err = VerifiedImage::open(&root, "x.img", &id).unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.img changed since it was listed (it is a symbolic link now): rescan"
        );
    }

    #[test]
    fn a_replaced_or_rewritten_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.img");
        std::fs::write(&path, b"first").unwrap();
        let id = listed(dir.path(), "x.img");
        std::fs::write(dir.path().join("y"), b"other").unwrap();
        std::fs::rename(dir.path().join("y"), &path).unwrap();
        let err = VerifiedImage::open(dir.path(), "x.img", &id).unwrap_err();
        assert!(err.is_changed_contents(), "{err}");
        let id = listed(dir.path(), "x.img");
        std::fs::write(&path, b"longer now").unwrap();
        let err = VerifiedImage::open(dir.path(), "x.img", &id).unwrap_err();
        assert!(err.to_string().contains("changed since it was listed"));
    }

    #[test]
    fn fifos_hard_links_and_bad_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("p.img");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = VerifiedImage::open(dir.path(), "p.img", &FileIdentity::default()).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        std::fs::write(dir.path().join("a.img"), b"a").unwrap();
        std::fs::hard_link(dir.path().join("a.img"), dir.path().join("b.img")).unwrap();
        let id = listed(dir.path(), "b.img");
        let err = VerifiedImage::open(dir.path(), "b.img", &id).unwrap_err();
        assert!(err.to_string().contains("hard link"), "{err}");
        for bad in ["", "..", "a/b"] {
            assert!(matches!(
                VerifiedImage::open(dir.path(), bad, &id),
                Err(OpenImageError::BadName { .. })
            ));
        }
    }
}
