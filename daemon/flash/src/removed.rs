//! A target that fails because it went away: when a write, flush or
//! read-back fails, the device is looked up again, and a disk that was
//! unplugged (or whose medium was pulled) fails as
//! [`FlashError::DeviceRemoved`] instead of with the kernel's bare error
//! (EIO, ENODEV, ENXIO, ENOSPC past a size that dropped to 0).

use std::io;
use std::os::fd::BorrowedFd;
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use bty_disks::{OpenedDevice, Presence};

use crate::FlashError;

/// How long to keep looking after a failure: the kernel fails I/O on a
/// disk being torn down a moment before sysfs drops it.
const SETTLE: Duration = Duration::from_secs(1);
/// Time between two looks.
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// `err` as [`FlashError::DeviceRemoved`] when it is an I/O failure on
/// the target and `device` (what the target was opened as) is no longer
/// there according to `sys`; otherwise `err` unchanged.
pub(crate) fn explain(
    err: FlashError,
    device: Option<&OpenedDevice>,
    sys: &Path,
    written: u64,
) -> FlashError {
    let Some(device) = device else {
        return err;
    };
    let (path, source) = match &err {
        FlashError::Write { path, source, .. }
        | FlashError::Sync { path, source }
        | FlashError::VerifyRead { path, source, .. } => (path.clone(), Arc::clone(source)),
        _ => return err,
    };
    if !gone(device, sys, &path) {
        return err;
    }
    FlashError::DeviceRemoved {
        path,
        written,
        source,
    }
}

/// Whether `device` went away, looking again for up to [`SETTLE`].
fn gone(device: &OpenedDevice, sys: &Path, path: &Path) -> bool {
    let mut waited = Duration::ZERO;
    loop {
        match device.presence(sys) {
            Ok(Presence::Present) => {}
            Ok(_) => return true,
            Err(e) => {
                // Not knowing keeps the kernel's own error.
                tracing::debug!(path = %path.display(), error = %e, "cannot tell whether the target is still there");
                return false;
            }
        }
        if waited >= SETTLE {
            return false;
        }
        thread::sleep(LOOK_EVERY);
        waited += LOOK_EVERY;
    }
}

/// What a block-device target was opened as; `None` for anything else
/// (or when that cannot be told, which only loses the better message).
pub(crate) fn opened_device(fd: BorrowedFd<'_>, path: &Path) -> Option<OpenedDevice> {
    OpenedDevice::of(fd).unwrap_or_else(|e: io::Error| {
        tracing::debug!(path = %path.display(), error = %e, "cannot record the target's device number");
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;
    use std::time::Instant;

    fn sys_with(dev: &str, size: &str) -> tempfile::TempDir {
        let sys = tempfile::tempdir().unwrap();
        let dir = sys.path().join("dev/block").join(dev);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("size"), size).unwrap();
        sys
    }

    fn write_error(kind: io::ErrorKind) -> FlashError {
        FlashError::Write {
            path: PathBuf::from("/dev/loop7"),
            offset: 8 << 20,
            source: FlashError::arc(kind.into()),
        }
    }

    const LOOP7: OpenedDevice = OpenedDevice {
        major_minor: (7, 7),
        diskseq: None,
    };

    #[test]
    fn a_failure_on_a_device_whose_size_dropped_to_zero_says_removed() {
        let sys = sys_with("7:7", "0\n");
        let err = explain(
            write_error(io::ErrorKind::StorageFull),
            Some(&LOOP7),
            sys.path(),
            12 << 20,
        );
        let FlashError::DeviceRemoved { written, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(*written, 12 << 20);
        assert_eq!(
            err.to_string(),
            "/dev/loop7: device removed during the flash (after 12582912 bytes written)"
        );
        let kernel = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(
            kernel,
            Some(io::Error::from(io::ErrorKind::StorageFull).to_string())
        );
    }

    #[test]
    fn a_failure_on_an_unlisted_device_says_removed() {
        let sys = sys_with("7:8", "2048\n");
        let err = FlashError::Sync {
            path: PathBuf::from("/dev/loop7"),
            source: FlashError::arc(io::Error::from_raw_os_error(5)),
        };
        let err = explain(err, Some(&LOOP7), sys.path(), 0);
        assert!(matches!(err, FlashError::DeviceRemoved { .. }), "{err:?}");
    }

    #[test]
    fn a_failure_on_a_device_still_there_keeps_its_error_after_a_second() {
        let sys = sys_with("7:7", "2048\n");
        let started = Instant::now();
        let err = explain(
            write_error(io::ErrorKind::Other),
            Some(&LOOP7),
            sys.path(),
            4096,
        );
        assert!(matches!(err, FlashError::Write { .. }), "{err:?}");
        let took = started.elapsed();
        assert!(took >= SETTLE && took < SETTLE * 3, "{took:?}");
    }

    #[test]
    fn other_failures_and_files_are_left_alone_at_once() {
        let sys = sys_with("7:8", "0\n");
        let started = Instant::now();
        let err = explain(FlashError::Cancelled, Some(&LOOP7), sys.path(), 1);
        assert!(matches!(err, FlashError::Cancelled), "{err:?}");
        let err = explain(write_error(io::ErrorKind::Other), None, sys.path(), 1);
        assert!(matches!(err, FlashError::Write { .. }), "{err:?}");
        assert!(started.elapsed() < LOOK_EVERY);
    }
}
