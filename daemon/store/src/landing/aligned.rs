//! Buffers O_DIRECT can write from: their address, and every direct
//! write's length and file offset, are multiples of [`ALIGN`].

/// Alignment of O_DIRECT buffers, lengths and offsets: the largest logical
/// block size of common disks (512-byte and 4Kn), so one value fits all.
/// A filesystem wanting more answers EINVAL, and the writer falls back to
/// buffered writes.
pub(super) const ALIGN: usize = 4096;

/// Whether `bytes` may be written with O_DIRECT at `offset`.
pub(super) fn is_aligned(bytes: &[u8], offset: u64) -> bool {
    (bytes.as_ptr() as usize).is_multiple_of(ALIGN)
        && bytes.len().is_multiple_of(ALIGN)
        && offset.is_multiple_of(ALIGN as u64)
}

/// `n` rounded down to a multiple of `ALIGN`.
pub(super) fn align_down(n: usize) -> usize {
    n - n % ALIGN
}

/// A fixed-capacity byte buffer starting at an `ALIGN`ed address, filled
/// from the front and reused for the whole file.
pub(super) struct AlignedBuf {
    /// `cap + ALIGN` bytes, so an aligned window of `cap` fits somewhere.
    mem: Vec<u8>,
    /// Index in `mem` of the aligned window.
    start: usize,
    cap: usize,
    len: usize,
}

impl AlignedBuf {
    /// A buffer of `cap` bytes.
    pub(super) fn new(cap: usize) -> Self {
        // Alignment without a custom allocator or unsafe code: over-allocate
        // and use the aligned window inside. (`align_offset` may in theory
        // give up; the window then starts at 0 and the writer sees it is
        // unaligned.)
        let mem = vec![0u8; cap + ALIGN];
        let start = match mem.as_ptr().align_offset(ALIGN) {
            n if n < ALIGN => n,
            _ => 0,
        };
        Self {
            mem,
            start,
            cap,
            len: 0,
        }
    }

    pub(super) fn capacity(&self) -> usize {
        self.cap
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Copy as much of `data` as fits; returns how much was taken.
    pub(super) fn fill(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.cap - self.len);
        let at = self.start + self.len;
        self.mem[at..at + n].copy_from_slice(&data[..n]);
        self.len += n;
        n
    }

    /// The bytes filled so far.
    pub(super) fn filled(&self) -> &[u8] {
        &self.mem[self.start..self.start + self.len]
    }

    pub(super) fn clear(&mut self) {
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_is_aligned_and_fills_up_to_its_capacity() {
        let mut buf = AlignedBuf::new(2 * ALIGN);
        assert_eq!(buf.filled().as_ptr() as usize % ALIGN, 0);
        assert_eq!(buf.fill(&[1; 3]), 3);
        assert_eq!(buf.fill(&vec![2; 3 * ALIGN]), 2 * ALIGN - 3);
        assert_eq!(buf.len(), buf.capacity());
        assert_eq!(&buf.filled()[..4], &[1, 1, 1, 2]);
        assert!(is_aligned(buf.filled(), ALIGN as u64));
        assert!(!is_aligned(buf.filled(), 512));
        assert!(!is_aligned(&buf.filled()[1..], 0));
        buf.clear();
        assert!(buf.filled().is_empty());
    }

    #[test]
    fn rounds_down_to_the_alignment() {
        assert_eq!(align_down(0), 0);
        assert_eq!(align_down(ALIGN - 1), 0);
        assert_eq!(align_down(ALIGN * 3 + 5), ALIGN * 3);
    }
}
