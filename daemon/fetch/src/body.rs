//! The receiving end of a [`stream`](crate::stream) as a blocking
//! [`Read`], for code on a blocking thread (the flash pipeline).

use std::io::{self, Read};

use bytes::{Buf, Bytes};
use tokio::sync::mpsc;

/// Chunks in flight between the network task and the reader: enough to
/// ride out scheduling jitter, small enough to keep backpressure on the
/// connection (hyper's chunks are at most a few tens of KiB).
const DEPTH: usize = 256;

/// A channel for a body: the network side sends `Ok(chunk)`s in order and,
/// if it fails, one `Err` last; dropping the sender ends the body.
pub fn body_channel() -> (mpsc::Sender<io::Result<Bytes>>, BodyReader) {
    let (tx, rx) = mpsc::channel(DEPTH);
    (
        tx,
        BodyReader {
            rx,
            current: Bytes::new(),
        },
    )
}

/// The bytes of a body as they arrive. Dropping it tells the sender to
/// stop (its sends fail).
#[derive(Debug)]
pub struct BodyReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl BodyReader {
    /// Wait (asynchronously) until the first bytes arrived or the body
    /// failed or ended, so a caller can report a failed request before it
    /// hands the reader to a blocking thread.
    pub async fn ready(&mut self) -> io::Result<()> {
        while self.current.is_empty() {
            match self.rx.recv().await {
                Some(chunk) => self.current = chunk?,
                None => break,
            }
        }
        Ok(())
    }

    /// The next piece of the body, asynchronously (for a reader on the
    /// async threads); `None` once it ended.
    pub async fn next_chunk(&mut self) -> Option<io::Result<Bytes>> {
        if !self.current.is_empty() {
            return Some(Ok(std::mem::take(&mut self.current)));
        }
        self.rx.recv().await
    }

    /// The bytes received but not yet read: after [`Self::ready`], the
    /// start of the body, enough to tell its format by magic bytes.
    pub fn buffered(&self) -> &[u8] {
        &self.current
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hands_on_chunks_in_order_then_the_error() {
        let (tx, mut reader) = body_channel();
        tx.send(Ok(Bytes::from_static(b"hello "))).await.unwrap();
        tx.send(Ok(Bytes::from_static(b"world"))).await.unwrap();
        tx.send(Err(io::Error::other("connection reset")))
            .await
            .unwrap();
        drop(tx);
        reader.ready().await.unwrap();
        assert_eq!(reader.buffered(), b"hello ");
        let got = tokio::task::spawn_blocking(move || {
            let mut got = Vec::new();
            let err = reader.read_to_end(&mut got).unwrap_err();
            (got, err.to_string())
        })
        .await
        .unwrap();
        assert_eq!(got.0, b"hello world");
        assert_eq!(got.1, "connection reset");
    }

    #[tokio::test]
    async fn ready_reports_a_failed_start_and_an_empty_body_ends_cleanly() {
        let (tx, mut reader) = body_channel();
        tx.send(Err(io::Error::other("404"))).await.unwrap();
        assert_eq!(reader.ready().await.unwrap_err().to_string(), "404");

        let (tx, mut reader) = body_channel();
        drop(tx);
        reader.ready().await.unwrap();
        let n = tokio::task::spawn_blocking(move || reader.read(&mut [0u8; 8]).unwrap())
            .await
            .unwrap();
        assert_eq!(n, 0);
    }
}
