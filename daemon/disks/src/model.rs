//! The data this crate hands out: where the kernel's tables live
//! ([`SystemPaths`]), what a disk looks like ([`Disk`]), whether it may be
//! written ([`Verdict`]), and the checked target ([`Target`]).

use std::path::PathBuf;

use crate::error::Refusal;

/// Where sysfs, devtmpfs and the proc tables are. `Default` is the running
/// system; tests point it at a fake tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemPaths {
    /// sysfs, normally `/sys`.
    pub sys: PathBuf,
    /// Device nodes, normally `/dev`.
    pub dev: PathBuf,
    /// The mount table, normally `/proc/self/mountinfo`.
    pub mountinfo: PathBuf,
    /// The swap table, normally `/proc/swaps`.
    pub swaps: PathBuf,
}

impl Default for SystemPaths {
    fn default() -> Self {
        Self {
            sys: PathBuf::from("/sys"),
            dev: PathBuf::from("/dev"),
            mountinfo: PathBuf::from("/proc/self/mountinfo"),
            swaps: PathBuf::from("/proc/swaps"),
        }
    }
}

/// A whole block device as listed under `/sys/block`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// Kernel name: `sda`, `nvme0n1`, `loop3`.
    pub name: String,
    /// Device node: `/dev/sda`.
    pub path: PathBuf,
    /// Device number (major, minor).
    pub major_minor: (u32, u32),
    /// Size in bytes (sysfs `size` × 512).
    pub size_bytes: u64,
    /// Model string, trimmed.
    pub model: Option<String>,
    /// Vendor string, trimmed.
    pub vendor: Option<String>,
    /// Serial number, trimmed.
    pub serial: Option<String>,
    /// Bus guessed from the sysfs device path: usb, sata, nvme, virtio,
    /// mmc, loop.
    pub transport: Option<String>,
    /// The medium is removable (sysfs `removable`).
    pub removable: bool,
    /// The kernel marks the device read-only (sysfs `ro`).
    pub read_only: bool,
    /// Spinning disk (sysfs `queue/rotational`).
    pub rotational: bool,
    /// Smallest addressable unit in bytes.
    pub logical_block_size: u32,
    /// Physical sector size in bytes.
    pub physical_block_size: u32,
    /// Kernel "disk sequence number": changes whenever a new medium or
    /// backing file appears behind the same name.
    pub diskseq: Option<u64>,
    /// Partitions found on the disk.
    pub partitions: Vec<Partition>,
    /// Mount points of the whole disk itself (not its partitions).
    pub mounts: Vec<String>,
    /// Kernel names of devices (dm-*, md*) holding the disk or a partition.
    pub holders: Vec<String>,
    /// The whole disk is active swap.
    pub swap: bool,
    /// Why this disk carries the running system, if it does.
    pub system_disk: Option<String>,
    /// For loop devices: the file behind it.
    pub loop_backing_file: Option<PathBuf>,
    /// Whether it may be flashed (with no size requirement).
    pub verdict: Verdict,
}

/// A partition of a [`Disk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Kernel name: `sda1`, `nvme0n1p2`.
    pub name: String,
    /// Device node: `/dev/sda1`.
    pub path: PathBuf,
    /// Device number (major, minor).
    pub major_minor: (u32, u32),
    /// Size in bytes.
    pub size_bytes: u64,
    /// Where it is mounted.
    pub mounts: Vec<String>,
    /// Kernel names of devices holding it (dm-*, md*).
    pub holders: Vec<String>,
    /// It is active swap.
    pub swap: bool,
}

/// May this be flashed?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No rule objects.
    Writable,
    /// Every rule that objects, in a stable order.
    Refused(Vec<Refusal>),
}

impl Verdict {
    /// Builds a verdict from collected refusals.
    pub fn from_refusals(refusals: Vec<Refusal>) -> Self {
        if refusals.is_empty() {
            Verdict::Writable
        } else {
            Verdict::Refused(refusals)
        }
    }

    /// True for [`Verdict::Writable`].
    pub fn is_writable(&self) -> bool {
        matches!(self, Verdict::Writable)
    }
}

/// A target that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The canonical path (symlinks such as `/dev/disk/by-id/…` resolved).
    pub path: PathBuf,
    /// Device or file.
    pub kind: TargetKind,
    /// Bytes available (device size, or current file length).
    pub size_bytes: u64,
    /// Alignment unit for direct I/O.
    pub logical_block_size: u32,
    /// What to compare just before writing, see [`same_identity`].
    pub identity: TargetIdentity,
}

/// What kind of thing a [`Target`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetKind {
    /// A whole-disk block device.
    BlockDevice {
        /// The disk as listed (boxed: a `Disk` is large and files need none).
        disk: Box<Disk>,
    },
    /// A regular file (tests, image building); it grows as it is written.
    RegularFile,
}

/// The facts that tell "the device the operator confirmed" from whatever
/// sits behind the same path later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetIdentity {
    /// The canonical path.
    pub path: PathBuf,
    /// Device number; `None` for regular files.
    pub major_minor: Option<(u32, u32)>,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Serial number, when the device has one.
    pub serial: Option<String>,
    /// Model, when the device has one.
    pub model: Option<String>,
    /// Kernel disk sequence number, when the kernel has one: it changes on
    /// every media change or loop re-attach, even with identical size.
    pub diskseq: Option<u64>,
    /// `(st_dev, st_ino)` of a regular-file target; `None` for devices.
    pub file_id: Option<(u64, u64)>,
}

/// True when `a` and `b` describe the same device: same number, size,
/// serial, model and (when both are known) disk sequence number. The
/// daemon calls this with the identity the operator confirmed and a fresh
/// one taken just before writing.
pub fn same_identity(a: &TargetIdentity, b: &TargetIdentity) -> bool {
    let diskseq_same = match (a.diskseq, b.diskseq) {
        (Some(x), Some(y)) => x == y,
        // An older kernel has no diskseq at all; the other fields decide.
        _ => true,
    };
    a.major_minor == b.major_minor
        && a.file_id == b.file_id
        && a.size_bytes == b.size_bytes
        && a.serial == b.serial
        && a.model == b.model
        && diskseq_same
}

impl Disk {
    /// The identity of this disk as listed (sysfs size).
    pub fn identity(&self) -> TargetIdentity {
        TargetIdentity {
            path: self.path.clone(),
            major_minor: Some(self.major_minor),
            size_bytes: self.size_bytes,
            serial: self.serial.clone(),
            model: self.model.clone(),
            diskseq: self.diskseq,
            file_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident() -> TargetIdentity {
        TargetIdentity {
            path: "/dev/sdb".into(),
            major_minor: Some((8, 16)),
            size_bytes: 32 << 30,
            serial: Some("ABC".into()),
            model: Some("Stick".into()),
            diskseq: Some(7),
            file_id: None,
        }
    }

    #[test]
    fn identity_changes_with_number_size_serial_or_diskseq() {
        let a = ident();
        assert!(same_identity(&a, &a.clone()));
        let moved = TargetIdentity {
            path: "/dev/disk/by-id/usb-Stick".into(),
            ..ident()
        };
        assert!(same_identity(&a, &moved), "the path is not identity");
        for other in [
            TargetIdentity {
                major_minor: Some((8, 32)),
                ..ident()
            },
            TargetIdentity {
                size_bytes: 16 << 30,
                ..ident()
            },
            TargetIdentity {
                serial: Some("XYZ".into()),
                ..ident()
            },
            TargetIdentity {
                diskseq: Some(8),
                ..ident()
            },
            TargetIdentity {
                file_id: Some((1, 2)),
                ..ident()
            },
        ] {
            assert!(!same_identity(&a, &other), "{other:?}");
        }
    }
}
