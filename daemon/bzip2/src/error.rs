//! What can go wrong decoding bzip2 in parallel. These travel as the
//! payload of an [`std::io::Error`] (kind `InvalidData`), which the
//! flasher reports as a decode failure.

use std::io;

/// The input is not a well-formed bzip2 file.
#[derive(Debug, thiserror::Error)]
pub enum Bz2Error {
    /// Nothing to decode.
    #[error("empty input: no bzip2 stream")]
    Empty,
    /// No `BZh1`..`BZh9` header where the first stream must start.
    #[error("not a bzip2 stream (no BZh header at byte {offset})")]
    NotBzip2 { offset: u64 },
    /// Bytes after the last stream that start no stream.
    #[error("unexpected data after the last bzip2 stream, at byte {offset}")]
    TrailingGarbage { offset: u64 },
    /// The input ends inside a stream.
    #[error("truncated bzip2 stream: the input ends inside the block at byte {offset}")]
    Truncated { offset: u64 },
    /// A stream header is followed by neither a block nor the end of stream.
    #[error("bzip2 stream at byte {offset}: no block or end-of-stream marker after the header")]
    BadHeader { offset: u64 },
    /// No block boundary within the largest size a real block can have.
    #[error("bzip2 block at byte {offset} runs past {limit} bytes without a block boundary")]
    NoBoundary { offset: u64, limit: usize },
    /// A block did not decode, alone or merged with the blocks after it.
    #[error("bzip2 block at byte {offset} is corrupt")]
    Block {
        offset: u64,
        #[source]
        source: BlockError,
    },
    /// The stream's combined CRC does not match its blocks.
    #[error(
        "bzip2 stream ending near byte {offset}: combined CRC {stored:#010x} stored, {computed:#010x} computed from its blocks"
    )]
    StreamCrc {
        offset: u64,
        stored: u32,
        computed: u32,
    },
    /// A decoding thread vanished without an answer.
    #[error("a bzip2 decoding thread stopped unexpectedly")]
    WorkerGone,
    /// A read after an error already returned.
    #[error("bzip2 decoding already failed")]
    AlreadyFailed,
}

impl Bz2Error {
    pub(crate) fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }
}

/// Why one block (a standalone single-block stream) did not decode.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BlockError {
    /// The decoder rejected the data (this includes a block CRC mismatch).
    #[error("invalid block data ({0})")]
    Data(bzip2::Error),
    /// The decoder wanted more bits than the block has.
    #[error("the block ends early")]
    Short,
    /// The decoder finished before the bits ran out.
    #[error("the block has trailing bits")]
    Trailing,
    /// More output than any block can hold.
    #[error("the block decodes to more than {0} bytes")]
    TooLarge(usize),
    /// The decoder ran out of memory.
    #[error("the decoder ran out of memory")]
    Memory,
    /// The decoder panicked (a bug; reported rather than propagated).
    #[error("the decoder panicked")]
    Panicked,
}
