//! Is the descriptor in hand the target the operator confirmed? Checked on
//! the opened descriptor itself (device number, size and disk sequence
//! number of a device; device and inode of a file), so nothing that takes
//! the same path between the last check and the open gets written.

use std::io;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;

use rustix::fs::FileType;
use rustix::io::Errno;

use crate::ioctl::{block_size_bytes, disk_sequence};
use crate::model::TargetIdentity;
use crate::mounts::split_dev;

/// The opened descriptor is not the confirmed target.
#[derive(Debug, thiserror::Error)]
pub enum IdentityMismatch {
    /// fstat or an ioctl on the descriptor failed.
    #[error("refusing {}: cannot check what was opened", path.display())]
    Inspect {
        /// The target.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// One fact of the opened target differs from the confirmed one.
    #[error(
        "refusing {}: the opened {what} is {found}, the confirmed target's is {expected}; \
         the device or file changed since it was checked",
        path.display()
    )]
    Differs {
        /// The target.
        path: PathBuf,
        /// Which fact ("device number", "size", "disk sequence number", …).
        what: &'static str,
        /// The confirmed value.
        expected: String,
        /// The value on the descriptor.
        found: String,
    },
}

/// Check `fd` (just opened for writing) against `expected`, the identity
/// taken by [`crate::check_target`]. A block device must have the same
/// device number, size and (when the kernel has one) disk sequence number;
/// a regular file the same device and inode.
pub fn verify_opened(
    fd: BorrowedFd<'_>,
    expected: &TargetIdentity,
) -> Result<(), IdentityMismatch> {
    let path = &expected.path;
    let inspect = |source: io::Error| IdentityMismatch::Inspect {
        path: path.clone(),
        source,
    };
    let differs = |what, expected: String, found: String| {
        Err(IdentityMismatch::Differs {
            path: path.clone(),
            what,
            expected,
            found,
        })
    };
    let stat = rustix::fs::fstat(fd).map_err(|e| inspect(e.into()))?;
    let file_type = FileType::from_raw_mode(stat.st_mode);
    if let Some((dev, ino)) = expected.file_id {
        let found = (stat.st_dev, stat.st_ino);
        if !file_type.is_file() || found != (dev, ino) {
            return differs(
                "file (device, inode)",
                format!("a regular file ({dev}, {ino})"),
                format!("{file_type:?} ({}, {})", found.0, found.1),
            );
        }
        return Ok(());
    }
    let Some((major, minor)) = expected.major_minor else {
        return differs(
            "target",
            "identified".to_owned(),
            "a target with no recorded identity".to_owned(),
        );
    };
    if !file_type.is_block_device() {
        return differs(
            "node",
            "a block device".to_owned(),
            format!("{file_type:?}"),
        );
    }
    let found = split_dev(stat.st_rdev);
    if found != (major, minor) {
        return differs(
            "device number",
            format!("{major}:{minor}"),
            format!("{}:{}", found.0, found.1),
        );
    }
    let size = block_size_bytes(fd).map_err(inspect)?;
    if size != expected.size_bytes {
        return differs(
            "size",
            format!("{} bytes", expected.size_bytes),
            format!("{size} bytes"),
        );
    }
    if let Some(want) = expected.diskseq {
        match disk_sequence(fd) {
            Ok(seq) if seq != want => {
                return differs("disk sequence number", want.to_string(), seq.to_string());
            }
            Ok(_) => {}
            // A kernel without the ioctl: sysfs gave the sequence number at
            // the check, and the device number and size matched here.
            Err(e) if e.raw_os_error() == Some(Errno::NOTTY.raw_os_error()) => {}
            Err(e) => return Err(inspect(e)),
        }
    }
    Ok(())
}
