//! sha256 + byte count of a source stream as it passes through, so a
//! download or cached file is verified against its known digest in the same
//! single read that feeds the decoder.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bty_dio::to_hex;
use sha2::{Digest, Sha256};

/// A [`Read`] adapter that hashes and counts every byte read through it.
///
/// With [`HashingReader::expect_sha256`], reaching the end of the inner
/// stream with a different digest is a read error, which the pipeline reports
/// as [`crate::FlashError::SourceDigestMismatch`] before the first region of
/// any target is written. Errors of the inner reader are marked so the
/// pipeline can tell them from decoder errors ([`crate::FlashError::Read`]).
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    expected: Option<String>,
    tally: SourceTally,
    finished: bool,
}

/// Shared view of a [`HashingReader`]'s progress, readable from any thread
/// (also usable as [`crate::FlashOptions::source_meter`]).
#[derive(Debug, Clone, Default)]
pub struct SourceTally(Arc<TallyInner>);

#[derive(Debug, Default)]
struct TallyInner {
    bytes: AtomicU64,
    sha256: Mutex<Option<String>>,
}

impl SourceTally {
    /// Source bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.0.bytes.load(Ordering::Relaxed)
    }

    /// The source's sha256 (lowercase hex), once its end was reached.
    pub fn sha256(&self) -> Option<String> {
        self.0.sha256.lock().ok().and_then(|g| g.clone())
    }
}

impl<R: Read> HashingReader<R> {
    /// Hash and count what `inner` yields.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            expected: None,
            tally: SourceTally::default(),
            finished: false,
        }
    }

    /// Fail at the end of the stream unless its sha256 is `hex`
    /// (compared case-insensitively).
    pub fn expect_sha256(mut self, hex: impl Into<String>) -> Self {
        self.expected = Some(hex.into().to_ascii_lowercase());
        self
    }

    /// A handle to the byte count and final digest.
    pub fn tally(&self) -> SourceTally {
        self.tally.clone()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.finished = true;
        let actual = to_hex(&std::mem::take(&mut self.hasher).finalize());
        if let Ok(mut slot) = self.tally.0.sha256.lock() {
            *slot = Some(actual.clone());
        }
        match &self.expected {
            Some(expected) if *expected != actual => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                DigestMismatch {
                    expected: expected.clone(),
                    actual,
                },
            )),
            _ => Ok(()),
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.finished {
            return Ok(0);
        }
        let n = self
            .inner
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), SourceReadError(e)))?;
        if n == 0 && !buf.is_empty() {
            self.finish()?;
            return Ok(0);
        }
        self.hasher.update(&buf[..n]);
        self.tally.0.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// io-error payload: the source's digest is not the expected one.
#[derive(Debug, thiserror::Error)]
#[error("source digest mismatch: expected sha256 {expected}, got {actual}")]
pub(crate) struct DigestMismatch {
    pub(crate) expected: String,
    pub(crate) actual: String,
}

/// io-error payload: the source itself failed (not the decoder).
#[derive(Debug, thiserror::Error)]
#[error("reading the source")]
pub(crate) struct SourceReadError(#[source] pub(crate) io::Error);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_and_count_match_the_bytes() {
        let data = b"hello bty".repeat(1000);
        let mut r = HashingReader::new(&data[..]);
        let tally = r.tally();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        assert_eq!(tally.bytes(), data.len() as u64);
        assert_eq!(
            tally.sha256().unwrap(),
            bty_store::digest::sha256_bytes(&data)
        );
    }

    #[test]
    fn wrong_expected_digest_fails_at_the_end() {
        let data = [7u8; 100];
        let mut r = HashingReader::new(&data[..]).expect_sha256("00".repeat(32));
        let err = r.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(err.get_ref().unwrap().is::<DigestMismatch>());
    }
}
