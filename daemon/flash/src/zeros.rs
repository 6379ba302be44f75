//! Zeros: an aligned block of them to write or hash, and spotting them in
//! what is decoded (zero runs become holes or `BLKZEROOUT`).

use std::sync::OnceLock;

use bty_dio::AlignedBuf;

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
