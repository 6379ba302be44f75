//! The block ioctls the writer uses, taken from `bty-disks` (one definition
//! of each opcode for the whole daemon), in the `impl AsFd` shape the
//! writer calls them with.

use std::io;
use std::os::fd::AsFd;

/// Zero `len` bytes at `offset` so they read back as zeros (`BLKZEROOUT`).
pub(crate) fn zero_out(fd: impl AsFd, offset: u64, len: u64) -> io::Result<()> {
    bty_disks::zero_out(fd.as_fd(), offset, len)
}

/// Ask the kernel to re-read the partition table (`BLKRRPART`).
pub(crate) fn reread_partitions(fd: impl AsFd) -> io::Result<()> {
    bty_disks::reread_partition_table(fd.as_fd())
}

/// The size of a block device in bytes (`BLKGETSIZE64`).
pub(crate) fn device_size(fd: impl AsFd) -> io::Result<u64> {
    bty_disks::block_size_bytes(fd.as_fd())
}
