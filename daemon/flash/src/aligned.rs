//! Page-aligned heap buffers: what `O_DIRECT` reads and writes need.

use std::alloc::{self, Layout};
use std::ptr::NonNull;
use std::sync::OnceLock;

/// Alignment of every buffer, write offset and (but the last) write length:
/// 4096 satisfies every logical block size in use (512 and 4096).
pub const ALIGN: usize = 4096;

/// A zero-initialised, [`ALIGN`]-aligned byte buffer with a fill length.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    cap: usize,
    len: usize,
}

// SAFETY: `AlignedBuf` owns its allocation exclusively (like `Vec<u8>`); the
// raw pointer is never shared outside borrows tied to `&self`/`&mut self`.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only hands out `&[u8]`, which is `Sync`.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// A buffer of `cap` bytes (rounded up to a multiple of [`ALIGN`], at
    /// least one block), all zero, with fill length 0.
    pub fn new(cap: usize) -> Self {
        let cap = round_up(cap.max(1));
        let layout = Self::layout(cap);
        // SAFETY: `layout` has a non-zero size (cap >= ALIGN).
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        Self { ptr, cap, len: 0 }
    }

    fn layout(cap: usize) -> Layout {
        match Layout::from_size_align(cap, ALIGN) {
            Ok(l) => l,
            // Only reachable for sizes near isize::MAX, which alloc refuses too.
            Err(_) => alloc::handle_alloc_error(Layout::new::<[u8; ALIGN]>()),
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

    /// The filled bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `cap` initialised bytes (alloc_zeroed)
        // and `len <= cap`; the borrow is tied to `&self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The whole capacity, for filling.
    pub fn as_mut_full(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, over the full capacity, and `&mut self`
        // guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.cap) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `alloc_zeroed` with exactly this layout and
        // is freed only here, once.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), Self::layout(self.cap)) }
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

/// 1 MiB of zeros, aligned for direct I/O: the source of every zero run a
/// sink has to write or hash rather than skip.
pub(crate) fn zero_block() -> &'static [u8] {
    static ZEROS: OnceLock<AlignedBuf> = OnceLock::new();
    ZEROS
        .get_or_init(|| {
            let mut buf = AlignedBuf::new(1 << 20);
            buf.set_len(buf.capacity());
            buf
        })
        .as_slice()
}

/// `n` rounded up to a multiple of [`ALIGN`].
pub(crate) fn round_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Whether every byte of `b` is zero (16 bytes per comparison, which the
/// compiler vectorises; zero-run detection runs on every block written).
pub(crate) fn is_zero(b: &[u8]) -> bool {
    let mut chunks = b.chunks_exact(16);
    let wide = chunks.by_ref().all(|c| {
        c.try_into()
            .is_ok_and(|a: [u8; 16]| u128::from_ne_bytes(a) == 0)
    });
    wide && chunks.remainder().iter().all(|&x| x == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_page_aligned_and_zeroed() {
        for cap in [1, 4096, 5000, 4 << 20] {
            let mut b = AlignedBuf::new(cap);
            assert_eq!(b.as_mut_full().as_ptr() as usize % ALIGN, 0);
            assert_eq!(b.capacity() % ALIGN, 0);
            assert!(b.capacity() >= cap);
            assert!(is_zero(b.as_mut_full()));
        }
    }

    #[test]
    fn zero_detection_finds_a_single_set_byte() {
        let mut v = vec![0u8; 4096 + 7];
        assert!(is_zero(&v));
        for i in [0, 15, 16, 4095, 4096 + 6] {
            v[i] = 1;
            assert!(!is_zero(&v), "byte {i}");
            v[i] = 0;
        }
    }
}
