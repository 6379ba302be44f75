//! The source read on a thread of its own, ahead of the decoder.
//!
//! Profiled on zst (`perf record`, 2 GiB image): the decoder's thread spent
//! a tenth of its time hashing the compressed bytes (sha256 of the stored
//! file) and more waiting for reads of the file. Both move here, so on two
//! cores the decoder only decodes; the buffers go to it without a copy
//! ([`BufRead`]).

use std::io::{self, BufRead, Read};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::thread;

/// Bytes per read.
const BUFFER: usize = 1 << 20;
/// Buffers read ahead of the decoder at most.
const DEPTH: usize = 8;

/// A [`BufRead`] over `inner` that is read by a thread of its own, up to
/// 8 MiB ahead. Errors of `inner` come through unchanged (so markers such
/// as [`crate::HashingReader`]'s survive), in order, after the bytes read
/// before them. Dropping it stops the thread at its next read (a thread
/// blocked in `read` finishes that read first).
pub struct ReadAhead {
    filled: Receiver<io::Result<Vec<u8>>>,
    spent: Sender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    state: State,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    Ended,
    Failed(io::ErrorKind),
}

impl ReadAhead {
    /// Start reading `inner` on a new thread; when the thread cannot start,
    /// `inner` is read on the caller's thread through a plain buffer.
    pub fn start(inner: impl Read + Send + 'static) -> Box<dyn BufRead + Send> {
        let (filled_tx, filled) = sync_channel(DEPTH);
        let (spent, spent_rx) = channel();
        let started = thread::Builder::new()
            .name("bty-flash-source".into())
            .spawn(move || run(inner, &filled_tx, &spent_rx));
        match started {
            Ok(_) => Box::new(Self {
                filled,
                spent,
                current: Vec::new(),
                pos: 0,
                state: State::Reading,
            }),
            // The closure (and `inner`) is gone with the failed spawn.
            Err(e) => Box::new(Failed(e.kind())),
        }
    }
}

/// What a read-ahead whose thread could not start reads: its error.
struct Failed(io::ErrorKind);

impl Read for Failed {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::new(
            self.0,
            "cannot start the source reading thread",
        ))
    }
}

impl BufRead for Failed {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        Err(io::Error::new(
            self.0,
            "cannot start the source reading thread",
        ))
    }
    fn consume(&mut self, _: usize) {}
}

fn run(mut inner: impl Read, filled: &SyncSender<io::Result<Vec<u8>>>, spent: &Receiver<Vec<u8>>) {
    loop {
        let mut buf = spent.try_recv().unwrap_or_default();
        buf.resize(BUFFER, 0);
        let msg = loop {
            match inner.read(&mut buf) {
                Ok(n) => {
                    buf.truncate(n);
                    break Ok(buf);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        let last = !matches!(&msg, Ok(b) if !b.is_empty());
        // Fails only when the reader was dropped: nobody wants more.
        if filled.send(msg).is_err() || last {
            return;
        }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ReadAhead {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos >= self.current.len() && self.state == State::Reading {
            match self.filled.recv() {
                Ok(Ok(buf)) if buf.is_empty() => self.state = State::Ended,
                Ok(Ok(buf)) => {
                    let old = std::mem::replace(&mut self.current, buf);
                    let _ = self.spent.send(old);
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.state = State::Failed(e.kind());
                    return Err(e);
                }
                Err(_) => {
                    self.state = State::Failed(io::ErrorKind::BrokenPipe);
                    return Err(io::Error::other("the source reading thread died"));
                }
            }
        }
        match self.state {
            State::Failed(kind) if self.pos >= self.current.len() => {
                Err(io::Error::new(kind, "the source failed earlier"))
            }
            _ => Ok(&self.current[self.pos..]),
        }
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.current.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields `data` in odd-sized reads, then fails with `end`.
    struct Dribble {
        data: Vec<u8>,
        at: usize,
        end: Option<io::Error>,
    }

    impl Read for Dribble {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.at == self.data.len() {
                return self.end.take().map_or(Ok(0), Err);
            }
            let n = buf.len().min(self.data.len() - self.at).min(77_777);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn data() -> Vec<u8> {
        (0..5_000_000u32).map(|i| (i % 241) as u8).collect()
    }

    #[test]
    fn every_byte_arrives_in_order() {
        let data = data();
        let mut r = ReadAhead::start(Dribble {
            data: data.clone(),
            at: 0,
            end: None,
        });
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        assert_eq!(r.read(&mut [0; 10]).unwrap(), 0, "stays at its end");
    }

    #[test]
    fn an_error_comes_after_the_bytes_before_it_and_unchanged() {
        let data = data();
        let mut r = ReadAhead::start(Dribble {
            data: data.clone(),
            at: 0,
            end: Some(io::Error::new(io::ErrorKind::InvalidData, "marked")),
        });
        let mut out = Vec::new();
        let err = r.read_to_end(&mut out).unwrap_err();
        assert_eq!(out, data);
        assert_eq!(
            (err.kind(), err.to_string()),
            (io::ErrorKind::InvalidData, "marked".to_owned())
        );
        let again = r.read(&mut [0; 10]).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::InvalidData);
    }
}
