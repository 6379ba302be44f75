//! The sha256 loop: content hashes of files and readers, with progress and
//! cancellation, plus the hex spelling bty uses everywhere.
//!
//! sha2 0.11 picks SHA-NI at run time; the loop below only has to keep the
//! hasher fed: one reusable buffer, no allocation per chunk.

use std::fs::File;
use std::io::{self, ErrorKind, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use thiserror::Error;

/// Read size per chunk. Larger buffers gain nothing measurable.
const CHUNK: usize = 1 << 20;
/// The first read's size: a small file's whole content in one read.
const FIRST_CHUNK: usize = 64 << 10;

/// Minimum number of bytes between two progress calls, so a caller that
/// forwards progress as events is not flooded.
const PROGRESS_STEP: u64 = 4 << 20;

/// Why a digest could not be computed.
#[derive(Debug, Error)]
pub enum DigestError {
    /// The file could not be opened.
    #[error("opening {path}")]
    Open {
        /// The file being hashed.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// Reading the bytes failed part-way.
    #[error("reading bytes to hash")]
    Read(#[source] io::Error),
    /// `cancel()` returned true.
    #[error("hashing cancelled")]
    Cancelled,
}

/// Lowercase hex of `bytes`.
///
/// On a hot path: every listing hex-encodes three digests per row. Bytes
/// go into a pre-sized buffer from a table of byte pairs (pushing `char`s
/// one at a time cost 6 % of btyd's CPU under bench-load).
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    const PAIRS: [[u8; 2]; 256] = {
        let mut pairs = [[0u8; 2]; 256];
        let mut i = 0;
        while i < 256 {
            pairs[i] = [DIGITS[i >> 4], DIGITS[i & 0x0f]];
            i += 1;
        }
        pairs
    };
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.extend_from_slice(&PAIRS[usize::from(b)]);
    }
    // Only ASCII hex digits were written, so this never falls back.
    String::from_utf8(out).unwrap_or_default()
}

/// Feed everything `r` yields into `hasher`; returns the byte count.
/// For callers that go on hashing afterwards (a resumed download hashes
/// the bytes it kept, then the ones it fetches).
///
/// `cancel` is checked before every chunk; `progress(bytes_done)` is called
/// at most once per few MiB and once more at the end with the total.
pub fn hash_reader<R: Read>(
    hasher: &mut Sha256,
    mut r: R,
    progress: &mut dyn FnMut(u64),
    cancel: &dyn Fn() -> bool,
) -> Result<u64, DigestError> {
    // Small first: a burst of small files must not zero a whole chunk
    // each (that was most of the hasher's user time on 8 KiB files); the
    // buffer grows to a chunk once a read fills it.
    let mut buf = vec![0u8; FIRST_CHUNK];
    let mut done: u64 = 0;
    let mut reported: u64 = 0;
    loop {
        if cancel() {
            return Err(DigestError::Cancelled);
        }
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(DigestError::Read(e)),
        };
        hasher.update(&buf[..n]);
        done += n as u64;
        if n == buf.len() && buf.len() < CHUNK {
            buf.resize(CHUNK, 0);
        }
        if done - reported >= PROGRESS_STEP {
            progress(done);
            reported = done;
        }
    }
    progress(done);
    Ok(done)
}

/// sha256 of everything `r` yields, as lowercase hex (see [`hash_reader`]).
pub fn sha256_reader<R: Read>(
    r: R,
    progress: &mut dyn FnMut(u64),
    cancel: &dyn Fn() -> bool,
) -> Result<String, DigestError> {
    let mut hasher = Sha256::new();
    hash_reader(&mut hasher, r, progress, cancel)?;
    Ok(to_hex(&hasher.finalize()))
}

/// sha256 of the file at `path`, as lowercase hex (see [`hash_reader`]).
pub fn sha256_file(
    path: &Path,
    progress: &mut dyn FnMut(u64),
    cancel: &dyn Fn() -> bool,
) -> Result<String, DigestError> {
    let file = File::open(path).map_err(|source| DigestError::Open {
        path: path.to_owned(),
        source,
    })?;
    sha256_reader(file, progress, cancel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn no_cancel() -> bool {
        false
    }

    fn one_shot(bytes: &[u8]) -> String {
        to_hex(&Sha256::digest(bytes))
    }

    #[test]
    fn known_vectors() {
        let million_a = vec![b'a'; 1_000_000];
        for (input, want) in [
            (&b""[..], EMPTY),
            (&b"abc"[..], ABC),
            (
                &b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"[..],
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            ),
            (
                &million_a[..],
                "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
            ),
        ] {
            assert_eq!(one_shot(input), want);
            let got = sha256_reader(input, &mut |_| {}, &no_cancel).expect("hash");
            assert_eq!(got, want);
        }
    }

    #[test]
    fn reader_matches_bytes_across_chunk_boundaries() {
        let data: Vec<u8> = (0..(CHUNK * 3 + 17)).map(|i| (i % 251) as u8).collect();
        let got = sha256_reader(&data[..], &mut |_| {}, &no_cancel).expect("hash");
        assert_eq!(got, one_shot(&data));
    }

    #[test]
    fn hashing_goes_on_where_the_caller_left_off() {
        let mut hasher = Sha256::new();
        hasher.update(b"hello ");
        let n = hash_reader(&mut hasher, &b"world"[..], &mut |_| {}, &no_cancel).expect("hash");
        assert_eq!(n, 5);
        assert_eq!(to_hex(&hasher.finalize()), one_shot(b"hello world"));
    }

    #[test]
    fn progress_is_throttled_and_ends_with_total() {
        let data = vec![7u8; 10 * CHUNK + 5];
        let mut calls = Vec::new();
        sha256_reader(&data[..], &mut |n| calls.push(n), &no_cancel).expect("hash");
        assert_eq!(calls.last().copied(), Some(data.len() as u64));
        // 10 MiB at one call per 4 MiB, plus the final one.
        assert_eq!(calls.len(), 3, "{calls:?}");
        assert!(calls.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn cancel_stops_the_loop() {
        let data = vec![0u8; 4 * CHUNK];
        let checks = Cell::new(0);
        let cancel = || {
            checks.set(checks.get() + 1);
            checks.get() > 2
        };
        let err = sha256_reader(&data[..], &mut |_| {}, &cancel).expect_err("cancelled");
        assert!(matches!(err, DigestError::Cancelled));
    }

    #[test]
    fn file_digest_and_missing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.img");
        std::fs::write(&path, b"abc").expect("write");
        assert_eq!(
            sha256_file(&path, &mut |_| {}, &no_cancel).expect("hash"),
            ABC
        );
        let err =
            sha256_file(&dir.path().join("nope"), &mut |_| {}, &no_cancel).expect_err("missing");
        assert!(matches!(err, DigestError::Open { .. }));
    }

    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        assert_eq!(to_hex(&[0x00, 0xab, 0xff, 0x10]), "00abff10");
        let every_byte: Vec<u8> = (0..=255).collect();
        let expected: String = every_byte.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(to_hex(&every_byte), expected);
        assert_eq!(to_hex(&[]), "");
    }
}
