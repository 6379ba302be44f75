//! Creating and reopening bty's own files in the image root, which others
//! can plant names in.
//!
//! A new file is created with `O_CREAT | O_EXCL | O_NOFOLLOW` under a name
//! with a random part from the kernel: nothing planted under the name (a
//! symlink to a disk, a file of someone else's) is ever opened, and nobody
//! can squat the name in advance. A file kept across restarts (a partial
//! download) is reopened only when it is still ours: a regular file, one
//! link, owned by our effective uid — in a sticky directory nobody else
//! can give us such a file. Second descriptors (`O_DIRECT`) come from
//! reopening the descriptor through `/proc/self/fd` (`bty_dio::direct`),
//! never the path.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// 64 random bits from the kernel (`getrandom(2)`).
pub fn random_u64() -> io::Result<u64> {
    let mut buf = [0u8; 8];
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: `rest` is valid writable memory of `rest.len()` bytes.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        filled += n.unsigned_abs();
    }
    Ok(u64::from_le_bytes(buf))
}

/// 16 random hex digits, for names nobody can guess.
pub fn random_hex() -> io::Result<String> {
    Ok(format!("{:016x}", random_u64()?))
}

/// Create `path` for reading and writing, failing if anything (a file, a
/// symlink, dangling or not) already has the name.
pub fn create_exclusive(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(path)
}

/// Why a file kept from earlier was not reopened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotOurs {
    /// Nothing has the name.
    Missing,
    /// A symlink, directory, FIFO or device has the name.
    NotRegular,
    /// A regular file with more than one name.
    HardLinked,
    /// A regular file someone else owns.
    Foreign,
}

impl std::fmt::Display for NotOurs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Missing => "it is gone",
            Self::NotRegular => "it is not a regular file",
            Self::HardLinked => "it has more than one hard link",
            Self::Foreign => "another user owns it",
        })
    }
}

/// Reopen a file this process created earlier (e.g. before a restart) for
/// reading and writing, without `O_CREAT`, only if it is still ours.
/// `Ok(Err(why))` when the name holds something else: the caller discards
/// the name ([`remove_entry`]) and starts a new file.
pub fn open_own(path: &Path) -> io::Result<Result<File, NotOurs>> {
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Err(NotOurs::Missing)),
        // ELOOP: a symlink; ENXIO/EISDIR/ETXTBSY and co.: not a plain file.
        Err(e) if is_not_a_file(&e) => return Ok(Err(NotOurs::NotRegular)),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(Err(NotOurs::NotRegular));
    }
    if meta.nlink() != 1 {
        return Ok(Err(NotOurs::HardLinked));
    }
    if meta.uid() != effective_uid() {
        return Ok(Err(NotOurs::Foreign));
    }
    set_blocking(&file)?;
    Ok(Ok(file))
}

fn is_not_a_file(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ELOOP | libc::EISDIR | libc::ENXIO | libc::ENODEV | libc::ETXTBSY)
    )
}

/// Remove the directory entry `path` (never what a symlink there points
/// at); an absent entry is fine.
pub fn remove_entry(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// This process's effective uid.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn set_blocking(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is open for the lifetime of `file`; F_GETFL/F_SETFL take
    // and return plain integers.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Bytes an unprivileged writer may still put on the filesystem holding
/// `dir` (`statvfs`: available blocks × fragment size).
pub fn free_bytes(dir: &Path) -> io::Result<u64> {
    let c = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
    // SAFETY: all-zero is a valid `statvfs` (plain integers).
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `st` is a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::fs::symlink;

    #[test]
    fn exclusive_create_never_opens_a_planted_name() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep me").unwrap();
        let link = dir.path().join("x.partial");
        symlink(&victim, &link).unwrap();
        assert_eq!(
            create_exclusive(&link).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        let dangling = dir.path().join("d.partial");
        symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(create_exclusive(&dangling).is_err());
        assert!(!dir.path().join("nowhere").exists());
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
        let mut fresh = create_exclusive(&dir.path().join("new")).unwrap();
        fresh.write_all(b"ok").unwrap();
    }

    #[test]
    fn open_own_takes_only_our_plain_files() {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("ours");
        std::fs::write(&ours, b"abc").unwrap();
        let mut f = open_own(&ours).unwrap().unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, "abc");
        assert_eq!(
            open_own(&dir.path().join("none")).unwrap().unwrap_err(),
            NotOurs::Missing
        );
        let link = dir.path().join("link");
        symlink(&ours, &link).unwrap();
        assert_eq!(open_own(&link).unwrap().unwrap_err(), NotOurs::NotRegular);
        let hard = dir.path().join("hard");
        std::fs::hard_link(&ours, &hard).unwrap();
        assert_eq!(open_own(&hard).unwrap().unwrap_err(), NotOurs::HardLinked);
        std::fs::remove_file(&hard).unwrap();
        assert_eq!(
            effective_uid(),
            0,
            "plays another user (chown): run as root"
        );
        std::os::unix::fs::chown(&ours, Some(4242), None).unwrap();
        assert_eq!(open_own(&ours).unwrap().unwrap_err(), NotOurs::Foreign);
        remove_entry(&link).unwrap();
        remove_entry(&link).unwrap();
        assert!(ours.exists(), "removing a link never touches its target");
    }

    #[test]
    fn random_names_differ_and_free_space_is_known() {
        assert_ne!(random_hex().unwrap(), random_hex().unwrap());
        assert_eq!(random_hex().unwrap().len(), 16);
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).unwrap() > 0);
        assert!(free_bytes(&dir.path().join("missing")).is_err());
    }
}
