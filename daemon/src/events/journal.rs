//! The event log on disk: `events.jsonl` in the state directory, one JSON
//! object per line (an event, or an acknowledgement of one), appended by a
//! thread of its own so no actor handler waits on the disk, and rewritten
//! atomically (temp file, fsync, rename) to the newest `capacity` events
//! once it holds twice that many lines.

use super::record::{Actor, EventRecord, Origin, Outcome};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};

/// How often the log is synced to the disk while events stream in.
const SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// The line format's version; lines of another version are skipped.
const VERSION: u32 = 1;
/// Only the tail of a larger file is read back: more than enough lines for
/// any `capacity`, and a bound on start-up whatever the file holds.
const MAX_READ_BYTES: u64 = 32 << 20;

/// The events the log keeps, oldest first.
pub(super) type Records = Arc<Mutex<VecDeque<Arc<EventRecord>>>>;

/// The log could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the event log {path}")]
pub struct JournalError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    Event(StoredEvent),
    Ack { v: u32, ack: u64 },
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredEvent {
    v: u32,
    id: u64,
    at_ms: i64,
    kind: String,
    subject: String,
    summary: String,
    outcome: StoredOutcome,
    actor: StoredActor,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    peer: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    on_behalf_of: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    acknowledged: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StoredOutcome {
    Info,
    Ok,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StoredActor {
    System,
    Operator,
}

impl From<&EventRecord> for StoredEvent {
    fn from(r: &EventRecord) -> Self {
        Self {
            v: VERSION,
            id: r.id,
            at_ms: r.at_ms,
            kind: r.kind.clone(),
            subject: r.subject.clone(),
            summary: r.summary.clone(),
            outcome: match r.outcome {
                Outcome::Info => StoredOutcome::Info,
                Outcome::Ok => StoredOutcome::Ok,
                Outcome::Failed => StoredOutcome::Failed,
                Outcome::Cancelled => StoredOutcome::Cancelled,
            },
            actor: match r.origin.actor {
                Actor::System => StoredActor::System,
                Actor::Operator => StoredActor::Operator,
            },
            peer: r.origin.peer.clone(),
            on_behalf_of: r.origin.on_behalf_of.clone(),
            acknowledged: r.acknowledged(),
        }
    }
}

impl From<StoredEvent> for EventRecord {
    fn from(s: StoredEvent) -> Self {
        let record = Self::new(
            s.id,
            s.at_ms,
            s.kind,
            s.subject,
            s.summary,
            match s.outcome {
                StoredOutcome::Info => Outcome::Info,
                StoredOutcome::Ok => Outcome::Ok,
                StoredOutcome::Failed => Outcome::Failed,
                StoredOutcome::Cancelled => Outcome::Cancelled,
            },
            Origin {
                actor: match s.actor {
                    StoredActor::System => Actor::System,
                    StoredActor::Operator => Actor::Operator,
                },
                peer: s.peer,
                on_behalf_of: s.on_behalf_of,
            },
        );
        if s.acknowledged {
            record.acknowledge();
        }
        record
    }
}

/// What the writer thread is asked to do.
pub(super) enum JournalOp {
    Append(Arc<EventRecord>),
    Ack(u64),
    /// Answer once everything sent before is written and synced.
    Flush(std::sync::mpsc::Sender<()>),
}

/// The writer's end: dropping every sender ends the thread.
#[derive(Debug, Clone)]
pub(super) struct Journal {
    tx: Sender<JournalOp>,
}

impl Journal {
    /// Queue a write; a writer that died (disk gone) only costs the log.
    pub(super) fn send(&self, op: JournalOp) {
        let _ = self.tx.send(op);
    }

    /// Wait up to `timeout` for everything queued to be on disk (blocking:
    /// for the end of a run, when the process is about to exit).
    pub(super) fn flush(&self, timeout: std::time::Duration) -> bool {
        let (done, wait) = std::sync::mpsc::channel();
        self.send(JournalOp::Flush(done));
        wait.recv_timeout(timeout).is_ok()
    }
}

/// Read the log at `path` (the newest `capacity` events, acknowledgements
/// applied; unreadable lines skipped with a warning), then start the thread
/// that appends to it.
pub(super) fn open(
    path: &Path,
    capacity: usize,
    records: &Records,
) -> Result<Journal, JournalError> {
    let fail = |source| JournalError {
        path: path.to_owned(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        // The state directory is btyd's; a symlink planted there must not
        // send the log's writes elsewhere.
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(fail)?;
    let (loaded, lines) = read(&file, capacity).map_err(fail)?;
    let last_written = loaded.last().map_or(0, |r| r.id);
    records
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(loaded);
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = Writer {
        path: path.to_owned(),
        file: BufWriter::new(file),
        lines,
        capacity,
        records: records.clone(),
        last_written,
    };
    std::thread::Builder::new()
        .name("event-log".into())
        .spawn(move || writer.run(&rx))
        .map_err(fail)?;
    Ok(Journal { tx })
}

fn read(mut file: &File, capacity: usize) -> std::io::Result<(Vec<Arc<EventRecord>>, usize)> {
    let len = file.metadata()?.len();
    let start = len.saturating_sub(MAX_READ_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut reader = BufReader::new(file.take(MAX_READ_BYTES));
    if start > 0 {
        // Mid-line: the first partial line is not a record.
        reader.read_until(b'\n', &mut Vec::new())?;
    }
    let mut events: VecDeque<Arc<EventRecord>> = VecDeque::new();
    let (mut lines, mut skipped) = (0usize, 0usize);
    for line in reader.split(b'\n') {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        lines += 1;
        match serde_json::from_slice::<Line>(&line) {
            // Ids only grow; anything else is damage.
            Ok(Line::Event(e))
                if e.v == VERSION && events.back().is_none_or(|last| last.id < e.id) =>
            {
                if events.len() == capacity {
                    events.pop_front();
                }
                events.push_back(Arc::new(e.into()));
            }
            Ok(Line::Ack { v: VERSION, ack }) => {
                if let Ok(i) = events.binary_search_by_key(&ack, |r| r.id) {
                    events[i].acknowledge();
                }
            }
            _ => skipped += 1,
        }
    }
    if skipped > 0 {
        tracing::warn!(skipped, "event log lines unreadable; skipped");
    }
    Ok((events.into(), lines))
}

struct Writer {
    path: PathBuf,
    file: BufWriter<File>,
    lines: usize,
    capacity: usize,
    records: Records,
    /// The newest event this thread wrote: a compaction keeps only those, so
    /// an event still queued is written once, after it.
    last_written: u64,
}

impl Writer {
    fn run(mut self, rx: &Receiver<JournalOp>) {
        let mut synced = std::time::Instant::now();
        while let Ok(op) = rx.recv() {
            // Hand what queued up together to the OS (a crash of btyd loses
            // none of it); sync to the disk at most once a second, and when
            // asked: thousands of small jobs must not add an fsync each to
            // the disk they are busy with. A power cut can lose the tail the
            // kernel had not written back; a damaged last line is skipped.
            let mut flushed = Vec::new();
            let result = std::iter::once(op)
                .chain(rx.try_iter())
                .try_for_each(|op| match op {
                    JournalOp::Flush(done) => {
                        flushed.push(done);
                        Ok(())
                    }
                    op => self.write(&op),
                })
                .and_then(|()| self.file.flush())
                .and_then(|()| {
                    if flushed.is_empty() && synced.elapsed() < SYNC_EVERY {
                        return Ok(());
                    }
                    synced = std::time::Instant::now();
                    self.file.get_ref().sync_data()
                })
                .and_then(|()| {
                    if self.lines > self.capacity * 2 + 64 {
                        self.compact()
                    } else {
                        Ok(())
                    }
                });
            if let Err(error) = result {
                tracing::error!(path = %self.path.display(), %error, "cannot write the event log");
            }
            for done in flushed {
                let _ = done.send(());
            }
        }
    }

    fn write(&mut self, op: &JournalOp) -> std::io::Result<()> {
        let line = match op {
            JournalOp::Append(record) => {
                self.last_written = record.id;
                Line::Event(StoredEvent::from(record.as_ref()))
            }
            JournalOp::Ack(id) => Line::Ack {
                v: VERSION,
                ack: *id,
            },
            JournalOp::Flush(_) => return Ok(()),
        };
        serde_json::to_writer(&mut self.file, &line)?;
        self.file.write_all(b"\n")?;
        self.lines += 1;
        Ok(())
    }

    /// Rewrite the log to the events kept in memory, atomically.
    fn compact(&mut self) -> std::io::Result<()> {
        let kept: Vec<Arc<EventRecord>> = self
            .records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|r| r.id <= self.last_written)
            .cloned()
            .collect();
        let tmp = self.path.with_extension("jsonl.tmp");
        let mut out = BufWriter::new(
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)?,
        );
        for record in &kept {
            serde_json::to_writer(&mut out, &Line::Event(StoredEvent::from(record.as_ref())))?;
            out.write_all(b"\n")?;
        }
        let out = out
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)?;
        out.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        self.file = BufWriter::new(
            OpenOptions::new()
                .append(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&self.path)?,
        );
        self.lines = kept.len();
        Ok(())
    }
}
