//! bty-disks: block-device discovery and flash-target safety checks, read
//! from sysfs and procfs (never by parsing `lsblk`), plus the block ioctls
//! the flasher needs.
//!
//! How the flasher uses it:
//! 1. [`list_disks`] for the picker; each [`Disk`] carries a [`Verdict`].
//! 2. [`check_target`] when the operator confirms a target, with the
//!    image's size when known; keep the returned [`Target::identity`].
//! 3. Just before the first write: [`check_target`] again, and
//!    [`same_identity`] against the confirmed identity; refuse on any
//!    difference (the stick was swapped, the loop re-attached).
//!    Then open the target (`O_EXCL`) and [`verify_opened`] the descriptor
//!    itself against that identity, so a device or file that took the
//!    same path after the check is never written.
//! 4. While writing: [`zero_out`] for runs of zeros that must read back
//!    as zeros; [`discard`] only where contents do not matter.
//!    When a write, flush or read-back fails, [`OpenedDevice::presence`]
//!    (taken with [`OpenedDevice::of`] at the open) tells a pulled disk
//!    or medium from one that fails in place.
//! 5. After the final fsync: [`reread_partition_table`], logging (not
//!    failing on) `EINVAL`/`EBUSY`.

mod check;
mod error;
mod identity;
mod ioctl;
mod list;
mod model;
mod mounts;
mod presence;
mod sysfs;
mod uevent;

pub use check::check_target;
pub use error::{DiskError, Refusal};
pub use identity::{IdentityMismatch, verify_opened};
pub use ioctl::{
    block_size_bytes, discard, disk_sequence, logical_block_size, read_only,
    reread_partition_table, zero_out,
};
pub use list::list_disks;
pub use model::{
    Disk, Partition, SystemPaths, Target, TargetIdentity, TargetKind, Verdict, same_identity,
};
pub use presence::{OpenedDevice, Presence};
pub use uevent::{BlockUevent, UeventAction, UeventSocket, parse as parse_uevent};

#[cfg(test)]
mod tests;
