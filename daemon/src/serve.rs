//! Reading an image's stored bytes for clients (the web's `/images/{key}`
//! with `Range`): a blocking reader feeding a bounded channel, so a slow
//! client never holds more than a few chunks in memory.

use bty_store::identity::VerifiedImage;
use bytes::Bytes;
use std::io::{Read, Seek, SeekFrom};
use tokio::sync::mpsc;

/// Chunk size of served bytes.
const CHUNK: usize = 1 << 20;

/// Stream `length` bytes (0 = to the end) of `image` from `offset`. The
/// bytes come from the descriptor opened and checked against the scan, so
/// a name swapped for a symlink afterwards serves nothing of its target.
pub fn read_range(
    image: VerifiedImage,
    offset: u64,
    length: u64,
) -> mpsc::Receiver<std::io::Result<Bytes>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let size = image.size();
        let mut file = image.into_file();
        let result = (|| -> std::io::Result<()> {
            if offset > size {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("offset {offset} is past the end ({size} bytes)"),
                ));
            }
            file.seek(SeekFrom::Start(offset))?;
            let mut left = if length == 0 {
                size - offset
            } else {
                length.min(size - offset)
            };
            while left > 0 {
                let mut buf = vec![0u8; CHUNK.min(usize::try_from(left).unwrap_or(CHUNK))];
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                buf.truncate(n);
                left -= n as u64;
                if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                    return Ok(()); // the client went away
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
    });
    rx
}
