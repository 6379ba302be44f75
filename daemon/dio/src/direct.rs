//! Opening files for direct I/O. `O_DIRECT` moves bytes between the disk
//! and an aligned buffer without the page cache; filesystems that cannot
//! (tmpfs before Linux 6.6, some FUSE and network ones) refuse it with
//! `EINVAL`, at open or only at the first transfer. Every caller then goes
//! on buffered; the refusal is recognised here, the same way for all.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// Open `path` with `flags` (mode 0644 if it is created), adding
/// `O_DIRECT` when `direct` asks for it. Where the filesystem refuses
/// `O_DIRECT` at open (`EINVAL`) the file is opened again without it.
/// Returns the descriptor and whether it is direct; any other failure is
/// the caller's.
pub fn open(path: &Path, flags: OFlags, direct: bool) -> io::Result<(OwnedFd, bool)> {
    let mode = Mode::from_raw_mode(0o644);
    direct_or_buffered(path, direct, |direct| {
        let flags = if direct {
            flags | OFlags::DIRECT
        } else {
            flags
        };
        Ok(rustix::fs::open(path, flags, mode)?)
    })
}

/// `attempt(true)` when `direct` asks for it, `attempt(false)` otherwise
/// or where that was refused ([`is_refusal`]; logged with `path`). Returns
/// what the attempt opened and whether it is direct; any other failure is
/// the caller's.
fn direct_or_buffered<T>(
    path: &Path,
    direct: bool,
    attempt: impl Fn(bool) -> io::Result<T>,
) -> io::Result<(T, bool)> {
    if direct {
        match attempt(true) {
            Ok(opened) => return Ok((opened, true)),
            Err(e) if is_refusal(&e) => {
                tracing::debug!(path = %path.display(), "O_DIRECT refused; using buffered I/O");
            }
            Err(e) => return Err(e),
        }
    }
    Ok((attempt(false)?, false))
}

/// A second descriptor on the file `file` is open on, by reopening
/// `/proc/self/fd/N`: the inode the descriptor holds, whatever its name
/// points at now, with an open file description of its own (so
/// `O_DIRECT` on one does not touch the other). Write-only when `write`,
/// else read-only; `O_DIRECT` when `direct`, with no fallback: a caller
/// asking for a direct second descriptor still has `file` to go buffered
/// through.
pub fn reopen(file: &impl AsFd, write: bool, direct: bool) -> io::Result<File> {
    let access = if write {
        OFlags::WRONLY
    } else {
        OFlags::RDONLY
    };
    let mut flags = access | OFlags::CLOEXEC;
    if direct {
        flags |= OFlags::DIRECT;
    }
    let fd = rustix::fs::open(proc_fd_path(file), flags, Mode::empty())?;
    Ok(File::from(fd))
}

/// `/proc/self/fd/N` for `file`: the name [`reopen`] opens, and the one a
/// child process (qemu-img) opens to get the same inode when it inherits
/// the descriptor.
fn proc_fd_path(file: &impl AsFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", file.as_fd().as_raw_fd()))
}

/// [`reopen`] read-only, with `O_DIRECT` when `direct` asks for it and the
/// filesystem takes it, buffered where it refuses. Returns the file and
/// whether it is direct.
pub fn reopen_read(file: &impl AsFd, direct: bool) -> io::Result<(File, bool)> {
    direct_or_buffered(&proc_fd_path(file), direct, |direct| {
        reopen(file, false, direct)
    })
}

/// Switch `O_DIRECT` on or off for an open descriptor (for its open file
/// description, so every duplicate of it follows).
pub fn set_direct(fd: impl AsFd, on: bool) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(&fd)?;
    let flags = if on {
        flags | OFlags::DIRECT
    } else {
        flags - OFlags::DIRECT
    };
    rustix::fs::fcntl_setfl(&fd, flags)?;
    Ok(())
}

/// Whether a failed direct transfer means "not this way" (the filesystem
/// took `O_DIRECT` at open but refuses this transfer, or its alignment:
/// `EINVAL`) rather than an I/O error. The caller goes on buffered.
pub fn is_refusal(e: &io::Error) -> bool {
    e.raw_os_error() == Some(Errno::INVAL.raw_os_error())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn is_direct(fd: impl AsFd) -> bool {
        rustix::fs::fcntl_getfl(&fd)
            .unwrap()
            .contains(OFlags::DIRECT)
    }

    #[test]
    fn open_says_whether_it_got_direct_io() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::CLOEXEC;
        let (fd, direct) = open(&path, flags, false).unwrap();
        assert!(!direct && !is_direct(&fd));
        // Where the temp dir's filesystem takes O_DIRECT (ext4, xfs, tmpfs
        // since Linux 6.6) the answer is true; either way it is the truth.
        let (fd, direct) = open(&path, flags, true).unwrap();
        assert_eq!(direct, is_direct(&fd));
        let missing = dir.path().join("missing");
        let err = open(&missing, OFlags::RDONLY, true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn reopen_reaches_the_inode_not_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::create(&path).unwrap();
        std::fs::rename(&path, dir.path().join("moved")).unwrap();
        std::fs::write(&path, b"planted").unwrap();
        let mut second = reopen(&file, true, false).unwrap();
        second.write_all(b"mine").unwrap();
        assert_eq!(std::fs::read(dir.path().join("moved")).unwrap(), b"mine");
        assert_eq!(std::fs::read(&path).unwrap(), b"planted");
        let mut read_back = String::new();
        reopen(&file, false, false)
            .unwrap()
            .read_to_string(&mut read_back)
            .unwrap();
        assert_eq!(read_back, "mine");
        if let Ok(direct) = reopen(&file, true, true) {
            assert!(is_direct(&direct));
            assert!(!is_direct(&file), "the first descriptor keeps its flags");
        }
    }

    #[test]
    fn direct_io_switches_on_and_off() {
        let file = tempfile::tempfile().unwrap();
        set_direct(&file, false).unwrap();
        assert!(!is_direct(&file));
        if set_direct(&file, true).is_ok() {
            assert!(is_direct(&file));
            set_direct(&file, false).unwrap();
            assert!(!is_direct(&file));
        }
    }

    #[test]
    fn only_einval_is_a_refusal() {
        assert!(is_refusal(&Errno::INVAL.into()));
        assert!(!is_refusal(&Errno::IO.into()));
        assert!(!is_refusal(&io::Error::other("x")));
    }
}
