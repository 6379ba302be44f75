//! A raw image stored as a regular file, read the way `bmaptool` reads one:
//! the filesystem's holes (`SEEK_DATA`/`SEEK_HOLE`) become zero runs without
//! a byte read, and the data extents are read with `O_DIRECT` into the
//! pipeline's aligned buffers — no page-cache fill, no copy.
//!
//! Measured on the bench's half-sparse 2 GiB image: reading the holes
//! through the page cache cost up to 2 s of kernel memset and copy after
//! each cache drop, more than writing the data did.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;

use bty_dio::aligned::{align_down_u64, align_up, align_up_u64};
use bty_dio::{ALIGN, AlignedBuf, direct};
use rustix::fs::SeekFrom;
use rustix::io::Errno;

use crate::parallel::{all_at_once, split_mut};

/// The next piece of a raw file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Extent {
    /// `len` bytes at the current offset are a hole (read back as zeros).
    Hole { len: u64 },
    /// `len` bytes at the current offset were read into the buffer.
    Data { len: usize },
    /// The whole file has been handed out.
    End,
}

/// Walks a raw image file front to back in extents.
pub(crate) struct RawFile {
    file: DirectFile,
    size: u64,
    offset: u64,
    /// Where the current data extent ends (a hole or EOF starts there).
    data_end: u64,
    /// Zero runs shorter than this are read as data: a hole that small is
    /// not worth a separate message to every writer.
    hole_min: u64,
}

impl RawFile {
    /// Start at offset 0. `O_DIRECT` is switched on when the filesystem
    /// takes it; holes shorter than `hole_min` are read like data.
    pub(crate) fn new(file: File, hole_min: u64) -> io::Result<Self> {
        let size = file.metadata()?.len();
        Ok(Self {
            file: DirectFile::new(file),
            size,
            offset: 0,
            data_end: 0,
            hole_min: hole_min.max(ALIGN as u64),
        })
    }

    /// The file's length, fixed when it was opened (stored images do not
    /// change; a file that shrinks while read is an error, not a short image).
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The next extent; `Data` fills `buf` from its start (up to its
    /// capacity). Holes are at most `max_hole` bytes per call.
    pub(crate) fn next(&mut self, buf: &mut AlignedBuf, max_hole: u64) -> io::Result<Extent> {
        if self.offset >= self.size {
            // A shrunk file's lost tail would have read as a hole.
            let now = self.file.file.metadata()?.len();
            if now != self.size {
                return Err(self.changed(now));
            }
            return Ok(Extent::End);
        }
        if self.offset >= self.data_end {
            let (hole_end, data_end) = self.map_from(self.offset)?;
            if hole_end > self.offset {
                let len = (hole_end - self.offset).min(max_hole.max(ALIGN as u64));
                self.offset += len;
                return Ok(Extent::Hole { len });
            }
            self.data_end = data_end;
        }
        let want = usize::try_from(self.data_end - self.offset)
            .unwrap_or(usize::MAX)
            .min(buf.capacity());
        let n = self.file.read_at(buf, self.offset, want)?;
        if n < want {
            return Err(self.changed(self.offset + n as u64));
        }
        self.offset += n as u64;
        Ok(Extent::Data { len: n })
    }

    /// From `at` (aligned; where the last data extent ended): where the
    /// hole that starts there ends (`at` when there is none worth skipping)
    /// and where the data after it ends. Holes are rounded inward to
    /// [`ALIGN`] and holes shorter than `hole_min` count as data, so every
    /// extent but the file's last is aligned.
    fn map_from(&self, at: u64) -> io::Result<(u64, u64)> {
        let data = match self.seek_data(at)? {
            Some(d) => d,
            None => return Ok((at, self.size)),
        };
        let hole_end = if data >= self.size {
            self.size
        } else {
            align_down_u64(data)
        };
        let hole_end = if hole_end - at >= self.hole_min || hole_end == self.size {
            hole_end
        } else {
            at
        };
        // The data extent runs to the next hole worth skipping.
        let mut probe = data.max(hole_end);
        while probe < self.size {
            let hole = match rustix::fs::seek(self.file.file.as_fd(), SeekFrom::Hole(probe)) {
                Ok(h) => h.min(self.size),
                Err(Errno::NXIO) => self.size,
                Err(e) => return Err(e.into()),
            };
            if hole >= self.size {
                break;
            }
            let next = self.seek_data(hole)?.unwrap_or(self.size);
            let start = align_up_u64(hole).min(self.size);
            let end = if next >= self.size {
                self.size
            } else {
                align_down_u64(next).max(start)
            };
            if end - start >= self.hole_min {
                return Ok((hole_end, start));
            }
            probe = next;
        }
        Ok((hole_end, self.size))
    }

    /// `SEEK_DATA` from `at`: the next data offset (`size` when only a
    /// hole follows), or `None` when the filesystem cannot tell holes.
    fn seek_data(&self, at: u64) -> io::Result<Option<u64>> {
        match rustix::fs::seek(self.file.file.as_fd(), SeekFrom::Data(at)) {
            Ok(d) => Ok(Some(d.min(self.size))),
            Err(Errno::NXIO) => Ok(Some(self.size)),
            Err(Errno::INVAL | Errno::OPNOTSUPP) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn changed(&self, now: u64) -> io::Error {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "image file is {now} bytes, {} when the flash started (changed while flashing)",
                self.size
            ),
        )
    }
}

/// A file read with `O_DIRECT` where the filesystem takes it, buffered
/// where it does not.
pub(crate) struct DirectFile {
    file: File,
    direct: bool,
}

impl DirectFile {
    pub(crate) fn new(file: File) -> Self {
        let mut f = Self {
            file,
            direct: false,
        };
        f.direct = f.set_direct(true).is_ok();
        f
    }

    /// Wrap `file` as opened: `direct` tells whether it has `O_DIRECT`.
    pub(crate) fn opened(file: File, direct: bool) -> Self {
        Self { file, direct }
    }

    /// Read `want` bytes at `at` into `buf` (aligned offsets, except at
    /// EOF); fewer only when the file ends first.
    pub(crate) fn read_at(
        &mut self,
        buf: &mut AlignedBuf,
        at: u64,
        want: usize,
    ) -> io::Result<usize> {
        if self.direct && want.is_multiple_of(ALIGN) && self.read_parts(buf, at, want) {
            return Ok(want);
        }
        let mut n = 0;
        while n < want {
            let dst = &mut buf.as_mut_full()[n..];
            // O_DIRECT reads whole blocks; the final partial block comes
            // back short at EOF.
            let len = if self.direct {
                align_up(want - n)
            } else {
                want - n
            };
            let len = len.min(dst.len());
            match rustix::io::pread(self.file.as_fd(), &mut dst[..len], at + n as u64) {
                Ok(0) => break,
                Ok(k) => n += k.min(want - n),
                Err(Errno::INTR) => {}
                Err(Errno::INVAL) if self.direct => {
                    // Accepted at open, refused on read (some FUSE and
                    // network filesystems): go on buffered.
                    self.set_direct(false)?;
                }
                Err(e) => return Err(e.into()),
            }
            if self.direct && n % ALIGN != 0 && n < want {
                // A short direct read mid-file: finish buffered.
                self.set_direct(false)?;
            }
        }
        buf.set_len(n);
        Ok(n)
    }

    /// Read `want` whole blocks at `at` as several reads at once; false
    /// when any part came back short or failed (the caller then reads it
    /// all again one request at a time, which reports what went wrong).
    fn read_parts(&self, buf: &mut AlignedBuf, at: u64, want: usize) -> bool {
        let fd = self.file.as_fd();
        let parts = split_mut(&mut buf.as_mut_full()[..want]);
        let read = all_at_once(parts, |(start, part)| {
            let mut n = 0;
            while n < part.len() {
                match rustix::io::pread(fd, &mut part[n..], at + (start + n) as u64) {
                    Ok(0) => return Err(()),
                    Ok(k) => n += k,
                    Err(Errno::INTR) => {}
                    Err(_) => return Err(()),
                }
            }
            Ok(())
        });
        if read.is_ok() {
            buf.set_len(want);
        }
        read.is_ok()
    }

    fn set_direct(&mut self, on: bool) -> io::Result<()> {
        direct::set_direct(&self.file, on)?;
        self.direct = on;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, Write};
    use std::os::unix::fs::FileExt;

    use super::*;

    const MIB: u64 = 1 << 20;

    /// Walk the whole file; returns the extents and the bytes reassembled.
    fn walk(file: File, hole_min: u64) -> (Vec<Extent>, Vec<u8>) {
        let mut raw = RawFile::new(file, hole_min).unwrap();
        let mut buf = AlignedBuf::new(MIB as usize);
        let (mut extents, mut bytes) = (Vec::new(), Vec::new());
        loop {
            match raw.next(&mut buf, 2 * MIB).unwrap() {
                Extent::End => break,
                Extent::Hole { len } => {
                    bytes.resize(bytes.len() + len as usize, 0);
                    extents.push(Extent::Hole { len });
                }
                Extent::Data { len } => {
                    bytes.extend_from_slice(&buf.as_slice()[..len]);
                    extents.push(Extent::Data { len });
                }
            }
        }
        (extents, bytes)
    }

    fn noise(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
            .collect()
    }

    #[test]
    fn holes_become_zero_runs_and_data_reads_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse.img");
        let file = File::create(&path).unwrap();
        // data 1 MiB | hole 3 MiB | data 1 MiB + 100 bytes (unaligned end)
        let (a, b) = (noise(MIB as usize, 1), noise(MIB as usize + 100, 2));
        file.write_all_at(&a, 0).unwrap();
        file.write_all_at(&b, 4 * MIB).unwrap();
        drop(file);
        let expected = std::fs::read(&path).unwrap();
        let (extents, bytes) = walk(File::open(&path).unwrap(), 64 << 10);
        assert_eq!(bytes, expected);
        assert!(
            extents.contains(&Extent::Hole { len: 2 * MIB }),
            "{extents:?}"
        );
        let holes: u64 = extents
            .iter()
            .map(|e| match e {
                Extent::Hole { len } => *len,
                _ => 0,
            })
            .sum();
        assert_eq!(holes, 3 * MIB, "{extents:?}");
    }

    #[test]
    fn a_trailing_hole_and_a_fully_sparse_file_read_as_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tail.img");
        let mut file = File::create(&path).unwrap();
        file.write_all(&noise(8192, 3)).unwrap();
        file.set_len(3 * MIB + 5).unwrap();
        drop(file);
        let (_, bytes) = walk(File::open(&path).unwrap(), 64 << 10);
        assert_eq!(bytes, std::fs::read(&path).unwrap());

        let empty = dir.path().join("empty.img");
        File::create(&empty).unwrap().set_len(5 * MIB).unwrap();
        let (extents, bytes) = walk(File::open(&empty).unwrap(), 64 << 10);
        assert_eq!(bytes, vec![0; 5 * MIB as usize]);
        assert!(extents.iter().all(|e| matches!(e, Extent::Hole { .. })));
    }

    #[test]
    fn short_holes_are_read_as_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.img");
        let file = File::create(&path).unwrap();
        file.write_all_at(&noise(4096, 4), 0).unwrap();
        // an 8 KiB hole, then data
        file.write_all_at(&noise(4096, 5), 12288).unwrap();
        drop(file);
        let (extents, bytes) = walk(File::open(&path).unwrap(), 64 << 10);
        assert_eq!(bytes, std::fs::read(&path).unwrap());
        assert!(
            extents.iter().all(|e| matches!(e, Extent::Data { .. })),
            "{extents:?}"
        );
    }

    #[test]
    fn a_file_that_shrinks_while_read_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shrink.img");
        let mut file = File::create(&path).unwrap();
        file.write_all(&noise(3 * MIB as usize, 6)).unwrap();
        file.rewind().unwrap();
        let mut raw = RawFile::new(File::open(&path).unwrap(), 64 << 10).unwrap();
        file.set_len(MIB).unwrap();
        let mut buf = AlignedBuf::new(2 * MIB as usize);
        let err = loop {
            match raw.next(&mut buf, MIB) {
                Ok(Extent::End) => panic!("the shrink went unnoticed"),
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        assert!(err.to_string().contains("changed while flashing"), "{err}");
    }
}
