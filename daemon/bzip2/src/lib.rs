//! bzip2 decoded on every core (bty-flash's decoder for `.bz2` images).
//!
//! bzip2 compresses blocks independently, and every block starts with a
//! 48-bit magic at some bit offset. A scanner thread reads the input once,
//! cuts it at those magics ([`scan`]) and queues the blocks; worker threads
//! decode them ([`fast`], with the `bzip2` crate as the reference for any
//! block it refuses, see [`block`]); the reader hands the results out in
//! input order ([`ordered`]), checking each stream's combined CRC.
//!
//! Memory stays bounded however large the image: at most `workers +` [`SLACK`]
//! blocks are cut and not yet read out, each up to ~1 MB compressed and
//! ~46 MB decoded (a block of zeros), plus ~5 MB of state per worker.
//!
//! Corrupt, truncated and trailing data are errors, as with the sequential
//! decoder, which remains the fallback when threads cannot be started.

mod bitreader;
mod block;
mod bwt;
mod crc;
mod error;
mod fast;
mod huffman;
mod magic;
mod ordered;
mod scan;
mod threads;

#[cfg(test)]
mod tests;

use std::io::{BufRead, Read};
use std::num::NonZeroUsize;

pub use error::{BlockError, Bz2Error};
use scan::Scanner;

/// Decoding threads at most: more cores add memory (up to ~45 MB per block
/// in flight) for speed no disk write keeps up with.
const MAX_WORKERS: usize = 8;
/// Blocks in flight beyond one per worker: keeps workers busy while the
/// reader copies a block out.
const SLACK: usize = 2;

/// A reader of the decoded contents of every bzip2 stream in `input`.
/// Malformed input is an error of kind `InvalidData` (carrying a
/// [`Bz2Error`] when decoded in parallel); errors of `input` itself pass
/// through unchanged.
pub fn decoder(input: impl BufRead + Send + 'static) -> Box<dyn Read + Send> {
    let workers = std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(MAX_WORKERS);
    match threads::start(Scanner::new(input), workers, workers + SLACK) {
        Ok(reader) => Box::new(reader),
        Err(scanner) => {
            tracing::warn!("cannot start bzip2 decoding threads; decoding on one thread");
            Box::new(bzip2::bufread::MultiBzDecoder::new(scanner.into_input()))
        }
    }
}
