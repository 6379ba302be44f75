//! Is an opened block device still there? Asked after I/O on it failed, to
//! tell a pulled disk (or a medium pulled from its reader) from a disk
//! that fails in place.

use std::io;
use std::os::fd::BorrowedFd;
use std::path::Path;

use rustix::fs::FileType;
use rustix::io::Errno;

use crate::error::DiskError;
use crate::ioctl::disk_sequence;
use crate::mounts::split_dev;
use crate::sysfs::{read_num, read_sectors};

/// The device behind a descriptor, as it was when opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenedDevice {
    /// Device number (major, minor).
    pub major_minor: (u32, u32),
    /// Disk sequence number, when the kernel has one: another disk that
    /// later gets the same number has a different one.
    pub diskseq: Option<u64>,
}

/// What sysfs says now about an [`OpenedDevice`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Still listed, with a non-zero size.
    Present,
    /// No longer listed under its number, or another disk took the number:
    /// it was unplugged.
    Gone,
    /// Listed, but its size reads 0: the medium was pulled from a card
    /// reader (or a loop device's capacity was set to 0).
    NoMedium,
}

impl Presence {
    /// Whether the device (or its medium) went away.
    pub fn removed(self) -> bool {
        self != Presence::Present
    }
}

impl OpenedDevice {
    /// The device `fd` is open on; `None` when it is not a block device.
    pub fn of(fd: BorrowedFd<'_>) -> io::Result<Option<Self>> {
        let stat = rustix::fs::fstat(fd)?;
        if !FileType::from_raw_mode(stat.st_mode).is_block_device() {
            return Ok(None);
        }
        // ENOTTY: a kernel before 5.15, whose sysfs has no diskseq either.
        let diskseq = match disk_sequence(fd) {
            Ok(seq) => Some(seq),
            Err(e) if e.raw_os_error() == Some(Errno::NOTTY.raw_os_error()) => None,
            Err(e) => return Err(e),
        };
        Ok(Some(Self {
            major_minor: split_dev(stat.st_rdev),
            diskseq,
        }))
    }

    /// Look the device up again in sysfs (`<sys>/dev/block/MAJ:MIN`).
    pub fn presence(&self, sys: &Path) -> Result<Presence, DiskError> {
        let (major, minor) = self.major_minor;
        let dir = sys.join("dev/block").join(format!("{major}:{minor}"));
        let size = match read_sectors(&dir.join("size")) {
            Ok(size) => size,
            Err(e) if is_gone(&e) => return Ok(Presence::Gone),
            Err(e) => return Err(e),
        };
        if let Some(want) = self.diskseq {
            match read_num::<u64>(&dir.join("diskseq")) {
                Ok(Some(seq)) if seq != want => return Ok(Presence::Gone),
                Ok(_) => {}
                Err(e) if is_gone(&e) => return Ok(Presence::Gone),
                Err(e) => return Err(e),
            }
        }
        Ok(if size == 0 {
            Presence::NoMedium
        } else {
            Presence::Present
        })
    }
}

/// An attribute of a device being torn down can answer ENODEV (or ENOENT
/// once its directory is gone).
fn is_gone(e: &DiskError) -> bool {
    match e {
        DiskError::ReadSysfs { source, .. } => {
            source.kind() == io::ErrorKind::NotFound
                || source.raw_os_error() == Some(Errno::NODEV.raw_os_error())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn device(sys: &Path, dev: &str, size: &str, diskseq: Option<&str>) {
        let dir = sys.join("dev/block").join(dev);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("size"), size).unwrap();
        if let Some(seq) = diskseq {
            fs::write(dir.join("diskseq"), seq).unwrap();
        }
    }

    #[test]
    fn a_listed_device_with_a_size_is_present() {
        let sys = tempfile::tempdir().unwrap();
        device(sys.path(), "8:16", "62500000\n", Some("12\n"));
        let opened = OpenedDevice {
            major_minor: (8, 16),
            diskseq: Some(12),
        };
        assert_eq!(opened.presence(sys.path()).unwrap(), Presence::Present);
        let no_seq = OpenedDevice {
            diskseq: None,
            ..opened
        };
        assert_eq!(no_seq.presence(sys.path()).unwrap(), Presence::Present);
    }

    #[test]
    fn an_unlisted_number_or_another_disk_on_it_is_gone() {
        let sys = tempfile::tempdir().unwrap();
        device(sys.path(), "8:16", "62500000\n", Some("13\n"));
        let replaced = OpenedDevice {
            major_minor: (8, 16),
            diskseq: Some(12),
        };
        assert_eq!(replaced.presence(sys.path()).unwrap(), Presence::Gone);
        let unplugged = OpenedDevice {
            major_minor: (8, 32),
            diskseq: Some(12),
        };
        assert_eq!(unplugged.presence(sys.path()).unwrap(), Presence::Gone);
        assert!(Presence::Gone.removed());
    }

    #[test]
    fn a_size_of_zero_means_no_medium() {
        let sys = tempfile::tempdir().unwrap();
        device(sys.path(), "7:3", "0\n", None);
        let opened = OpenedDevice {
            major_minor: (7, 3),
            diskseq: Some(5),
        };
        assert_eq!(opened.presence(sys.path()).unwrap(), Presence::NoMedium);
        assert!(Presence::NoMedium.removed());
        assert!(!Presence::Present.removed());
    }

    #[test]
    fn an_unparsable_size_is_an_error() {
        let sys = tempfile::tempdir().unwrap();
        device(sys.path(), "7:3", "lots\n", None);
        let opened = OpenedDevice {
            major_minor: (7, 3),
            diskseq: None,
        };
        assert!(opened.presence(sys.path()).is_err());
    }
}
