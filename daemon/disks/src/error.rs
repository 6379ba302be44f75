//! Errors of this crate: I/O failures while reading sysfs/procfs
//! ([`DiskError`]) and the reasons a flash target is refused ([`Refusal`]).

use std::io;
use std::path::PathBuf;

/// Reading the kernel's view of block devices failed.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// A sysfs directory or attribute could not be read.
    #[error("reading sysfs {path}")]
    ReadSysfs {
        /// The sysfs path that failed.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// A sysfs attribute held something we could not parse.
    #[error("unexpected content {value:?} in sysfs {path}")]
    ParseSysfs {
        /// The attribute file.
        path: PathBuf,
        /// What it contained (trimmed).
        value: String,
    },
    /// `/proc/self/mountinfo` could not be read.
    #[error("reading mount table {path}")]
    ReadMountinfo {
        /// The mountinfo path.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// `/proc/swaps` could not be read.
    #[error("reading swap table {path}")]
    ReadSwaps {
        /// The swaps path.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
}

impl DiskError {
    /// True when the failure means "the device vanished while we looked"
    /// (hot-unplug during a scan), which a listing skips instead of failing.
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, DiskError::ReadSysfs { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// One reason a path must not be flashed. Every message names the rule and
/// what was found, so an operator can act on it without reading logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Nothing exists at the path (after following symlinks).
    #[error("refusing {0}: it does not exist")]
    NotFound(PathBuf),
    /// Not a block device, and regular files are not allowed here.
    #[error("refusing {0}: not a block device")]
    NotBlockDevice(PathBuf),
    /// A regular file outside the one directory the daemon's own config
    /// allows file targets in (`None`: no such directory is configured).
    /// Clients cannot widen this: a request naming a host file must not
    /// make the root daemon overwrite it.
    #[error(
        "refusing {}: a regular file; files are flash targets only directly inside {}",
        path.display(),
        dir.as_ref().map_or_else(
            || "the directory btyd's config names ([flash] file_targets_dir, not set)".to_owned(),
            |d| format!("{} ([flash] file_targets_dir)", d.display())
        )
    )]
    FileOutsideTargetsDir {
        /// The refused file.
        path: PathBuf,
        /// The configured directory, if any.
        dir: Option<PathBuf>,
    },
    /// Neither a regular file nor a device (a FIFO, a socket, a directory).
    #[error("refusing {0}: neither a block device nor a regular file")]
    NotAFile(PathBuf),
    /// The kernel marks the device read-only.
    #[error("refusing {0}: the device is read-only")]
    ReadOnly(PathBuf),
    /// The disk or one of its partitions is mounted; each entry is a phrase
    /// such as "partition /dev/sda1 is mounted on /mnt/x" or "it is
    /// mounted on /" (the disk itself).
    #[error("refusing {}: {}", path.display(), mounts.join("; "))]
    Mounted {
        /// The refused target.
        path: PathBuf,
        /// What is mounted where.
        mounts: Vec<String>,
    },
    /// The disk or one of its partitions is active swap.
    #[error("refusing {}: active swap on {}", path.display(), devices.join(", "))]
    Swap {
        /// The refused target.
        path: PathBuf,
        /// The swap devices on this disk (e.g. "/dev/sda3").
        devices: Vec<String>,
    },
    /// Device-mapper, RAID or similar holds the disk or a partition; each
    /// entry is a phrase such as "sda2 is held by dm-0 (vg-root)".
    #[error("refusing {}: {}", path.display(), holders.join("; "))]
    Held {
        /// The refused target.
        path: PathBuf,
        /// Who holds what.
        holders: Vec<String>,
    },
    /// The disk carries the running system (`/`, `/boot`, `/usr`, ...).
    #[error("refusing {}: it holds the running system ({why})", path.display())]
    SystemDisk {
        /// The refused target.
        path: PathBuf,
        /// Why, e.g. "/ is on sda2".
        why: String,
    },
    /// The image does not fit.
    #[error(
        "refusing {}: too small: the image needs {needed} bytes ({}), the device has {size} bytes ({})",
        path.display(), human(*needed), human(*size)
    )]
    TooSmall {
        /// The refused target.
        path: PathBuf,
        /// Bytes the image needs.
        needed: u64,
        /// Bytes the device has.
        size: u64,
    },
    /// A partition was given where a whole disk is needed.
    #[error("refusing {}: a partition, not a whole disk (the disk is {})", path.display(), disk.display())]
    Partition {
        /// The refused partition.
        path: PathBuf,
        /// The disk it belongs to.
        disk: PathBuf,
    },
    /// The device reports no medium (e.g. an empty card reader).
    #[error("refusing {0}: no medium (size 0)")]
    NoMedium(PathBuf),
    /// The kernel refused an exclusive open although nothing we can see
    /// uses the device (a mount in another namespace, a tool holding it).
    #[error("refusing {0}: busy (the kernel refused an exclusive open)")]
    Busy(PathBuf),
    /// The size from `BLKGETSIZE64` and sysfs disagree, so one of them is
    /// stale (a resize or medium change in progress).
    #[error("refusing {}: size mismatch: sysfs says {sysfs} bytes, the device says {device} bytes", path.display())]
    SizeMismatch {
        /// The refused target.
        path: PathBuf,
        /// Size from sysfs.
        sysfs: u64,
        /// Size from `BLKGETSIZE64`.
        device: u64,
    },
    /// A block device node whose number sysfs does not list.
    #[error("refusing {}: block device {major}:{minor} is not listed in sysfs", path.display())]
    Unknown {
        /// The refused target.
        path: PathBuf,
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
    },
    /// The target could not be inspected, so it cannot be proven safe.
    #[error("refusing {}: cannot inspect it: {reason}", path.display())]
    Uninspectable {
        /// The refused target.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// Formats a byte count for people ("4.0 MiB"); the exact count is printed
/// next to it because refusals are also read by scripts.
pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_read_naturally() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(4 << 20), "4.0 MiB");
        assert_eq!(human(1536 << 30), "1.5 TiB");
    }

    #[test]
    fn too_small_names_both_sizes() {
        let r = Refusal::TooSmall {
            path: "/dev/loop3".into(),
            needed: 4 << 20,
            size: 1 << 20,
        };
        assert_eq!(
            r.to_string(),
            "refusing /dev/loop3: too small: the image needs 4194304 bytes (4.0 MiB), \
             the device has 1048576 bytes (1.0 MiB)"
        );
    }
}
