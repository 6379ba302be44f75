//! The scanner thread and the decoding workers, and how they are started.

use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex, Weak};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::block::{self, Segment};
use super::error::BlockError;
use super::fast::BlockDecoder;
use super::ordered::{Item, ParallelBz2};
use super::scan::Scanner;

/// How often idle threads look at the cancel flag.
const POLL: Duration = Duration::from_millis(50);
/// How long a dropped reader waits for its scanner thread.
const SCANNER_WAIT: Duration = Duration::from_secs(1);

/// A decoded block, or why it did not decode.
pub(crate) type Decoded = Result<Vec<u8>, BlockError>;

/// One block for a worker, and where its answer goes.
struct Job {
    segment: Arc<Segment>,
    reply: SyncSender<Decoded>,
}

/// What every thread shares.
struct Shared {
    jobs: Mutex<Receiver<Job>>,
    /// Output buffers handed back by the reader, reused so that a 45 MB
    /// block of zeros is not page-faulted in afresh every time.
    pool: Mutex<Receiver<Vec<u8>>>,
    /// Set when the reader is dropped.
    cancel: Arc<AtomicBool>,
}

/// The threads behind a reader.
pub(crate) struct Threads {
    cancel: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    scanner: Option<JoinHandle<()>>,
    /// Disconnected once the scanner's work is over.
    scanner_done: Receiver<()>,
    /// Upgradable while any of the threads runs.
    alive: Weak<()>,
}

impl Threads {
    /// Stop the threads and wait for them (so none outlives its reader):
    /// workers stop within a block. The scanner stops at its next block, but
    /// may sit in a read of a stalled source; after [`SCANNER_WAIT`] it is
    /// left to notice alone, as a stalled source read always was.
    /// The reader's queue must be gone (a scanner waiting to queue a block
    /// wakes up then).
    pub(crate) fn stop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        let done = self.scanner_done.recv_timeout(SCANNER_WAIT);
        if let (Err(RecvTimeoutError::Disconnected), Some(scanner)) = (done, self.scanner.take()) {
            let _ = scanner.join();
        }
        if self.alive.upgrade().is_some() {
            tracing::debug!("bzip2 scanner still in a source read; it stops when the read returns");
        }
    }

    /// Tells whether any of the threads still runs.
    #[cfg(test)]
    pub(crate) fn alive(&self) -> Weak<()> {
        self.alive.clone()
    }
}

/// Start `workers` decoding threads (at least one must start) and the
/// scanner thread that feeds them from `scanner`, with at most `in_flight`
/// blocks cut and not yet read out. Gives `scanner` back when threads cannot
/// be started.
pub(crate) fn start<R: BufRead + Send + 'static>(
    scanner: Scanner<R>,
    workers: usize,
    in_flight: usize,
) -> Result<ParallelBz2, Scanner<R>> {
    let cancel = Arc::new(AtomicBool::new(false));
    // Held by every thread: gone once all have exited.
    let alive = Arc::new(());
    let (job_tx, job_rx) = channel::<Job>();
    let (pool_tx, pool_rx) = channel::<Vec<u8>>();
    let shared = Arc::new(Shared {
        jobs: Mutex::new(job_rx),
        pool: Mutex::new(pool_rx),
        cancel: Arc::clone(&cancel),
    });
    let mut handles = Vec::new();
    for i in 0..workers.max(1) {
        let (shared, alive) = (Arc::clone(&shared), Arc::clone(&alive));
        let spawned = thread::Builder::new()
            .name(format!("bty-bz2-{i}"))
            .spawn(move || {
                let _alive = alive;
                work(&shared);
            });
        handles.extend(spawned.ok());
    }
    drop(shared);
    if handles.is_empty() {
        return Err(scanner);
    }
    let (queue_tx, queue_rx) = sync_channel::<Item>(in_flight.max(1));
    // The scanner is sent over once the thread runs, so that a failed spawn
    // does not lose the input.
    let (input_tx, input_rx) = channel::<Scanner<R>>();
    let (done_tx, done_rx) = channel::<()>();
    let spawned = {
        let (cancel, alive) = (Arc::clone(&cancel), Arc::clone(&alive));
        thread::Builder::new()
            .name("bty-bz2-scan".into())
            .spawn(move || {
                let _alive = alive;
                let _done = done_tx;
                if let Ok(scanner) = input_rx.recv() {
                    scan(scanner, &queue_tx, &job_tx, &cancel);
                }
            })
    };
    let (scanner_thread, sent) = match spawned {
        Ok(handle) => (Some(handle), input_tx.send(scanner).map_err(|e| e.0)),
        Err(_) => (None, Err(scanner)),
    };
    let threads = Threads {
        cancel: Arc::clone(&cancel),
        workers: handles,
        scanner: scanner_thread,
        scanner_done: done_rx,
        alive: Arc::downgrade(&alive),
    };
    match sent {
        Ok(()) => Ok(ParallelBz2::new(queue_rx, pool_tx, threads)),
        Err(scanner) => {
            // The workers see the cancel and exit on their own.
            cancel.store(true, Ordering::Relaxed);
            Err(scanner)
        }
    }
}

/// Cut `input` into blocks: each goes, in order, to the reader's queue
/// (which blocks when `in_flight` are waiting: the back-pressure) and then
/// to the workers.
fn scan(
    mut scanner: Scanner<impl BufRead>,
    queue: &SyncSender<Item>,
    jobs: &Sender<Job>,
    cancel: &AtomicBool,
) {
    while !cancel.load(Ordering::Relaxed) {
        let item = match scanner.next_block() {
            Ok(Some(segment)) => {
                let segment = Arc::new(segment);
                let (reply, result) = sync_channel(1);
                if queue
                    .send(Item::Block {
                        segment: Arc::clone(&segment),
                        result,
                    })
                    .is_err()
                {
                    return;
                }
                // Without workers the reply channel closes, which the
                // reader reports.
                let _ = jobs.send(Job { segment, reply });
                continue;
            }
            Ok(None) => Item::End,
            Err(e) => Item::Failed(e),
        };
        let _ = queue.send(item);
        return;
    }
}

/// Decode jobs until the scanner is gone or the reader cancels.
fn work(shared: &Shared) {
    // Without memory for it, blocks go to the reference decoder only.
    let mut fast = BlockDecoder::new();
    while !shared.cancel.load(Ordering::Relaxed) {
        let job = {
            let Ok(jobs) = shared.jobs.lock() else {
                return;
            };
            match jobs.recv_timeout(POLL) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        };
        if shared.cancel.load(Ordering::Relaxed) {
            return;
        }
        let mut out = shared
            .pool
            .lock()
            .ok()
            .and_then(|pool| pool.try_recv().ok())
            .unwrap_or_default();
        let result = block::decode_guarded(&job.segment, &mut out, fast.as_mut()).map(|()| out);
        // The reader may have moved on (merged this block, or gone).
        let _ = job.reply.send(result);
    }
}
