//! The three block-device ioctls the writer needs, private to this crate so
//! it does not depend on `bty-disks`.

use std::io;
use std::os::fd::AsFd;

use rustix::ioctl::{Getter, NoArg, Setter, ioctl, opcode};

/// `BLKZEROOUT` = `_IO(0x12, 127)`, argument `[offset, length]` in bytes.
const BLKZEROOUT: rustix::ioctl::Opcode = opcode::none(0x12, 127);
/// `BLKRRPART` = `_IO(0x12, 95)`.
const BLKRRPART: rustix::ioctl::Opcode = opcode::none(0x12, 95);
/// `BLKGETSIZE64` = `_IOR(0x12, 114, u64)`.
const BLKGETSIZE64: rustix::ioctl::Opcode = opcode::read::<u64>(0x12, 114);

/// Zero `len` bytes at `offset` so they are guaranteed to read back as zeros
/// (the device may unmap them or write zeros itself). Both must be
/// multiples of the logical block size.
pub(crate) fn zero_out(fd: impl AsFd, offset: u64, len: u64) -> io::Result<()> {
    // SAFETY: BLKZEROOUT takes a pointer to `[u64; 2]` (offset, length) and
    // only reads it; `Setter` passes a pointer to a value it owns.
    unsafe { ioctl(fd, Setter::<BLKZEROOUT, [u64; 2]>::new([offset, len])) }?;
    Ok(())
}

/// Ask the kernel to re-read the partition table.
pub(crate) fn reread_partitions(fd: impl AsFd) -> io::Result<()> {
    // SAFETY: BLKRRPART takes no argument.
    unsafe { ioctl(fd, NoArg::<BLKRRPART>::new()) }?;
    Ok(())
}

/// The size of a block device in bytes.
pub(crate) fn device_size(fd: impl AsFd) -> io::Result<u64> {
    // SAFETY: BLKGETSIZE64 writes one `u64` through the pointer `Getter`
    // provides to its own storage.
    Ok(unsafe { ioctl(fd, Getter::<BLKGETSIZE64, u64>::new()) }?)
}
