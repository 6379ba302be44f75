//! The reader end: decoded blocks handed out in input order, a failed block
//! retried merged with the blocks after it (a chance magic inside a block
//! splits it in two), and each stream's combined CRC checked.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::Arc;
#[cfg(test)]
use std::sync::Weak;
use std::sync::mpsc::{Receiver, Sender, sync_channel};

use super::block::{self, Segment};
use super::error::Bz2Error;
use super::scan::ScanError;
use super::threads::{Decoded, Threads};

/// Blocks merged into a failed one before giving up: a chance magic is
/// already a 2^-48 event per bit, two in one block are not worth more.
const MAX_MERGE: usize = 3;

/// What the scanner thread queues for the reader, in input order.
pub(crate) enum Item {
    /// A block and, once a worker has decoded it, its bytes.
    Block {
        segment: Arc<Segment>,
        result: Receiver<Decoded>,
    },
    /// The input ended cleanly after the last stream.
    End,
    /// The input is broken here (after every block before it).
    Failed(ScanError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Finished,
    Failed,
}

/// Reads the decoded image. Dropping it stops the threads behind it.
pub(crate) struct ParallelBz2 {
    queue: Receiver<Item>,
    /// Items taken off the queue while merging, not used after all.
    lookahead: VecDeque<Item>,
    current: Vec<u8>,
    pos: usize,
    /// The combined CRC of the current stream's blocks so far.
    combined: u32,
    pool: Sender<Vec<u8>>,
    phase: Phase,
    threads: Threads,
}

impl ParallelBz2 {
    pub(crate) fn new(queue: Receiver<Item>, pool: Sender<Vec<u8>>, threads: Threads) -> Self {
        Self {
            queue,
            lookahead: VecDeque::new(),
            current: Vec::new(),
            pos: 0,
            combined: 0,
            pool,
            phase: Phase::Running,
            threads,
        }
    }

    /// Tells whether the threads behind this reader still run.
    #[cfg(test)]
    pub(crate) fn threads(&self) -> Weak<()> {
        self.threads.alive()
    }

    fn next_item(&mut self) -> Item {
        self.lookahead.pop_front().unwrap_or_else(|| self.receive())
    }

    fn receive(&self) -> Item {
        self.queue
            .recv()
            .unwrap_or(Item::Failed(ScanError::Format(Bz2Error::WorkerGone)))
    }

    /// The next block's bytes, `None` at the clean end.
    fn next_block(&mut self) -> io::Result<Option<Vec<u8>>> {
        let (segment, result) = match self.next_item() {
            Item::Block { segment, result } => (segment, result),
            Item::End => return Ok(None),
            Item::Failed(ScanError::Source(e)) => return Err(e),
            Item::Failed(ScanError::Format(e)) => return Err(e.into_io()),
        };
        let decoded = result.recv().map_err(|_| Bz2Error::WorkerGone.into_io())?;
        let (out, crc, stream_end, end_bit) = match decoded {
            Ok(out) => (out, segment.crc, segment.stream_end, segment.end_bit()),
            Err(e) => {
                let (out, merged) = self.merged_retry(&segment).ok_or_else(|| {
                    Bz2Error::Block {
                        offset: segment.offset,
                        source: e,
                    }
                    .into_io()
                })?;
                (out, merged.crc, merged.stream_end, merged.end_bit())
            }
        };
        self.combined = self.combined.rotate_left(1) ^ crc;
        if let Some(stored) = stream_end {
            let computed = std::mem::take(&mut self.combined);
            if stored != computed {
                return Err(Bz2Error::StreamCrc {
                    offset: end_bit / 8,
                    stored,
                    computed,
                }
                .into_io());
            }
        }
        Ok(Some(out))
    }

    /// Decode `failed` merged with the next one, two, … blocks of its
    /// stream (here, not on a worker, and with the reference decoder: this
    /// is the rare path). On success the merged blocks are dropped from the
    /// queue.
    fn merged_retry(&mut self, failed: &Segment) -> Option<(Vec<u8>, Segment)> {
        let mut merged = failed.clone();
        let mut out = Vec::new();
        for k in 0..MAX_MERGE {
            while self.lookahead.len() <= k {
                let item = self.receive();
                self.lookahead.push_back(item);
            }
            let Item::Block { segment: next, .. } = &self.lookahead[k] else {
                return None;
            };
            merged = merged.merged_with(next)?;
            if block::decode_guarded(&merged, &mut out, None).is_ok() {
                self.lookahead.drain(..=k);
                return Some((out, merged));
            }
        }
        None
    }
}

impl Read for ParallelBz2 {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(rest) = self.current.get(self.pos..).filter(|r| !r.is_empty()) {
                let n = rest.len().min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                self.pos += n;
                return Ok(n);
            }
            match self.phase {
                Phase::Running => {}
                Phase::Finished => return Ok(0),
                // The first error was returned already; never look like an
                // end of stream after it.
                Phase::Failed => return Err(Bz2Error::AlreadyFailed.into_io()),
            }
            let done = std::mem::take(&mut self.current);
            if done.capacity() > 0 {
                let _ = self.pool.send(done);
            }
            self.pos = 0;
            match self.next_block() {
                Ok(Some(out)) => self.current = out,
                Ok(None) => self.phase = Phase::Finished,
                Err(e) => {
                    self.phase = Phase::Failed;
                    return Err(e);
                }
            }
        }
    }
}

impl Drop for ParallelBz2 {
    fn drop(&mut self) {
        // Closing the queue first wakes a scanner waiting to queue a block.
        drop(std::mem::replace(&mut self.queue, sync_channel(0).1));
        self.lookahead.clear();
        self.threads.stop();
    }
}
