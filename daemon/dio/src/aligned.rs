//! Buffers `O_DIRECT` can read into and write from: their address, and
//! every direct transfer's length and file offset, are multiples of
//! [`ALIGN`]. One type and one set of rounding helpers for every hot path
//! (landing downloads and uploads, and the flasher's reads and writes).

/// Alignment of direct I/O buffers, lengths and offsets: the largest logical
/// block size of common disks (512-byte and 4Kn), so one value fits all.
/// A filesystem wanting more answers EINVAL, and callers fall back to
/// buffered I/O.
pub const ALIGN: usize = 4096;

/// Whether `bytes` may be transferred with `O_DIRECT` at `offset`.
pub fn is_aligned(bytes: &[u8], offset: u64) -> bool {
    (bytes.as_ptr() as usize).is_multiple_of(ALIGN)
        && bytes.len().is_multiple_of(ALIGN)
        && offset.is_multiple_of(ALIGN as u64)
}

/// `n` rounded down to a multiple of [`ALIGN`].
pub fn align_down(n: usize) -> usize {
    n - n % ALIGN
}

/// `n` rounded up to a multiple of [`ALIGN`].
pub fn align_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// File offset `n` rounded down to a multiple of [`ALIGN`].
pub fn align_down_u64(n: u64) -> u64 {
    n - n % ALIGN as u64
}

/// File offset `n` rounded up to a multiple of [`ALIGN`].
pub fn align_up_u64(n: u64) -> u64 {
    n.div_ceil(ALIGN as u64) * ALIGN as u64
}

/// A zero-initialised byte buffer starting at an [`ALIGN`]ed address, with
/// a fill length; reused for a whole transfer.
pub struct AlignedBuf {
    /// `cap + ALIGN` bytes, so an aligned window of `cap` fits somewhere.
    mem: Vec<u8>,
    /// Index in `mem` of the aligned window.
    start: usize,
    cap: usize,
    len: usize,
}

impl AlignedBuf {
    /// A buffer of `cap` bytes (rounded up to a multiple of [`ALIGN`], at
    /// least one block), all zero, with fill length 0.
    pub fn new(cap: usize) -> Self {
        let cap = align_up(cap.max(1));
        // Alignment without a custom allocator or unsafe code: over-allocate
        // (zeroed pages come from the allocator for free) and use the
        // aligned window inside. `align_offset` may in theory give up; the
        // window then starts at 0 and direct I/O refuses it (EINVAL), which
        // every caller handles by going buffered.
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

    /// Capacity in bytes (a multiple of [`ALIGN`]).
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Bytes filled so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is filled.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Set the fill length (clamped to the capacity).
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(self.cap);
    }

    /// Copy as much of `data` as fits after the filled bytes; returns how
    /// much was taken.
    pub fn fill(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.cap - self.len);
        let at = self.start + self.len;
        self.mem[at..at + n].copy_from_slice(&data[..n]);
        self.len += n;
        n
    }

    /// The filled bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.mem[self.start..self.start + self.len]
    }

    /// The whole capacity, for filling in place (then [`Self::set_len`]).
    pub fn as_mut_full(&mut self) -> &mut [u8] {
        &mut self.mem[self.start..self.start + self.cap]
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("cap", &self.cap)
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_zeroed_and_rounded_up() {
        for cap in [1, 4096, 5000, 4 << 20] {
            let mut b = AlignedBuf::new(cap);
            assert_eq!(b.as_mut_full().as_ptr() as usize % ALIGN, 0);
            assert_eq!(b.capacity() % ALIGN, 0);
            assert!(b.capacity() >= cap);
            assert!(b.as_mut_full().iter().all(|&x| x == 0));
        }
    }

    #[test]
    fn fills_up_to_its_capacity() {
        let mut buf = AlignedBuf::new(2 * ALIGN);
        assert_eq!(buf.fill(&[1; 3]), 3);
        assert_eq!(buf.fill(&vec![2; 3 * ALIGN]), 2 * ALIGN - 3);
        assert_eq!(buf.len(), buf.capacity());
        assert_eq!(&buf.as_slice()[..4], &[1, 1, 1, 2]);
        assert!(is_aligned(buf.as_slice(), ALIGN as u64));
        assert!(!is_aligned(buf.as_slice(), 512));
        assert!(!is_aligned(&buf.as_slice()[1..], 0));
        buf.set_len(0);
        assert!(buf.is_empty());
        buf.set_len(usize::MAX);
        assert_eq!(buf.len(), buf.capacity());
    }

    #[test]
    fn rounds_to_the_alignment() {
        assert_eq!(align_down(0), 0);
        assert_eq!(align_down(ALIGN - 1), 0);
        assert_eq!(align_down(ALIGN * 3 + 5), ALIGN * 3);
        assert_eq!(align_up(1), ALIGN);
        assert_eq!(align_up(ALIGN), ALIGN);
        assert_eq!(align_up(ALIGN + 1), 2 * ALIGN);
        let a = ALIGN as u64;
        assert_eq!(align_down_u64(5 * a - 1), 4 * a);
        assert_eq!(align_down_u64(1 << 40), 1 << 40);
        assert_eq!(align_up_u64(0), 0);
        assert_eq!(align_up_u64(4 * a + 1), 5 * a);
    }
}
