//! Block-device ioctls (`linux/fs.h`, group 0x12) through rustix's typed
//! ioctl patterns: size, read-only flag, partition re-read, zero-out and
//! discard.

use std::io;
use std::os::fd::BorrowedFd;

use rustix::ioctl::{Getter, NoArg, Setter, ioctl, opcode};

/// `BLKROGET`: `_IO(0x12, 94)`, writes an `int`.
const BLKROGET: rustix::ioctl::Opcode = opcode::none(0x12, 94);
/// `BLKRRPART`: `_IO(0x12, 95)`, no argument.
const BLKRRPART: rustix::ioctl::Opcode = opcode::none(0x12, 95);
/// `BLKSSZGET`: `_IO(0x12, 104)`, writes an `int`.
const BLKSSZGET: rustix::ioctl::Opcode = opcode::none(0x12, 104);
/// `BLKGETSIZE64`: `_IOR(0x12, 114, size_t)`. The opcode encodes
/// `size_t` (4 bytes on 32-bit targets) although the kernel writes a u64.
const BLKGETSIZE64: rustix::ioctl::Opcode = opcode::read::<usize>(0x12, 114);
/// `BLKDISCARD`: `_IO(0x12, 119)`, reads `u64[2]` = {offset, length}.
const BLKDISCARD: rustix::ioctl::Opcode = opcode::none(0x12, 119);
/// `BLKZEROOUT`: `_IO(0x12, 127)`, reads `u64[2]` = {offset, length}.
const BLKZEROOUT: rustix::ioctl::Opcode = opcode::none(0x12, 127);
/// `BLKGETDISKSEQ`: `_IOR(0x12, 128, __u64)` (Linux 5.15+).
const BLKGETDISKSEQ: rustix::ioctl::Opcode = opcode::read::<u64>(0x12, 128);

/// Size of the block device in bytes (`BLKGETSIZE64`).
pub fn block_size_bytes(fd: BorrowedFd<'_>) -> io::Result<u64> {
    // SAFETY: BLKGETSIZE64 writes exactly one u64 through the pointer the
    // Getter provides; the opcode constant matches linux/fs.h.
    let size = unsafe { ioctl(fd, Getter::<BLKGETSIZE64, u64>::new()) }?;
    Ok(size)
}

/// The kernel's disk sequence number of the open device
/// (`BLKGETDISKSEQ`): it changes on every media change or loop re-attach,
/// so it tells the device behind a descriptor from any other that later
/// takes the same node. Kernels before 5.15 answer `ENOTTY`.
pub fn disk_sequence(fd: BorrowedFd<'_>) -> io::Result<u64> {
    // SAFETY: BLKGETDISKSEQ writes exactly one u64 through the pointer the
    // Getter provides; the opcode constant matches linux/fs.h.
    let seq = unsafe { ioctl(fd, Getter::<BLKGETDISKSEQ, u64>::new()) }?;
    Ok(seq)
}

/// Logical sector size in bytes (`BLKSSZGET`): the alignment direct I/O,
/// zero-out and discard need.
pub fn logical_block_size(fd: BorrowedFd<'_>) -> io::Result<u32> {
    // SAFETY: BLKSSZGET writes one C int through the Getter's pointer.
    let size = unsafe { ioctl(fd, Getter::<BLKSSZGET, std::ffi::c_int>::new()) }?;
    u32::try_from(size).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

/// Whether the kernel holds the device read-only (`BLKROGET`).
pub fn read_only(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: BLKROGET writes one C int through the Getter's pointer.
    let ro = unsafe { ioctl(fd, Getter::<BLKROGET, std::ffi::c_int>::new()) }?;
    Ok(ro != 0)
}

/// Asks the kernel to re-read the partition table (`BLKRRPART`) after a
/// flash, so the new partitions appear. Loop devices attached without
/// partition scanning answer `EINVAL`, and a device still open elsewhere
/// answers `EBUSY`: neither makes the written image wrong, so callers
/// should log these rather than fail the flash.
pub fn reread_partition_table(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: BLKRRPART takes no argument; NoArg passes a null pointer.
    unsafe { ioctl(fd, NoArg::<BLKRRPART>::new()) }?;
    Ok(())
}

/// Zeroes `len` bytes at `offset` (`BLKZEROOUT`); unlike a discard, the
/// range is guaranteed to read back as zeros afterwards. Both values must
/// be multiples of the logical block size (`EINVAL` otherwise). The fd
/// must be open for writing.
pub fn zero_out(fd: BorrowedFd<'_>, offset: u64, len: u64) -> io::Result<()> {
    // SAFETY: BLKZEROOUT reads a u64[2] {start, length} through the
    // pointer; Setter keeps the array alive for the call.
    unsafe { ioctl(fd, Setter::<BLKZEROOUT, [u64; 2]>::new([offset, len])) }?;
    Ok(())
}

/// Discards (TRIMs) `len` bytes at `offset` (`BLKDISCARD`). What the range
/// reads back as afterwards depends on the device: use [`zero_out`] when
/// zeros are needed. The fd must be open for writing.
pub fn discard(fd: BorrowedFd<'_>, offset: u64, len: u64) -> io::Result<()> {
    // SAFETY: BLKDISCARD reads a u64[2] {start, length} through the
    // pointer; Setter keeps the array alive for the call.
    unsafe { ioctl(fd, Setter::<BLKDISCARD, [u64; 2]>::new([offset, len])) }?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcodes_match_linux_fs_h() {
        // Values from `printf("%#x", BLK...)` on x86_64.
        assert_eq!(BLKROGET, 0x125e);
        assert_eq!(BLKRRPART, 0x125f);
        assert_eq!(BLKSSZGET, 0x1268);
        #[cfg(target_pointer_width = "64")]
        assert_eq!(BLKGETSIZE64, 0x8008_1272);
        assert_eq!(BLKDISCARD, 0x1277);
        assert_eq!(BLKZEROOUT, 0x127f);
    }

    #[test]
    fn ioctls_on_a_regular_file_fail_cleanly() {
        let file = tempfile::tempfile().unwrap();
        use std::os::fd::AsFd;
        assert!(block_size_bytes(file.as_fd()).is_err());
        assert!(reread_partition_table(file.as_fd()).is_err());
    }
}
