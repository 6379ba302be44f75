//! `open_decoder` on arbitrary compressed streams: never panics and never
//! allocates in proportion to the claimed output. The output is read in
//! fixed chunks and capped, as the flash pipeline reads it: a stream that
//! expands past the cap is simply stopped, like a flash at the target size.
//! bzip2 (decoded in parallel, by bty's own block decoder where it can) must
//! also agree with the sequential reference decoder wherever both finish.
#![no_main]

use std::io::{Cursor, Read};

use bty_flash::open_decoder;
use bty_store::format::{Container, sniff};
use libfuzzer_sys::fuzz_target;

/// Decoded bytes read before giving up on one input (a bomb is fine, it
/// just has to stop when the reader stops).
const OUTPUT_CAP: u64 = 64 << 20;

fuzz_target!(|data: &[u8]| {
    // Magic bytes pick the container, as the daemon does; inputs without
    // magic go to each decoder in turn via their first byte.
    let container = sniff(data).unwrap_or(match data.first().map(|b| b % 4) {
        Some(0) => Container::Zstd,
        Some(1) => Container::Xz,
        Some(2) => Container::Gzip,
        _ => Container::Bzip2,
    });
    let Ok(decoder) = open_decoder(Cursor::new(data.to_vec()), container) else {
        return;
    };
    let parallel = drain(decoder);
    if container == Container::Bzip2 {
        let sequential = drain(bzip2::bufread::MultiBzDecoder::new(data));
        match (parallel, sequential) {
            (Drained::Complete(p), Drained::Complete(s)) => {
                assert!(p == s, "bzip2 decoders disagree on the output")
            }
            (Drained::Complete(_), Drained::Failed) | (Drained::Failed, Drained::Complete(_)) => {
                panic!("one bzip2 decoder accepts what the other refuses")
            }
            _ => {}
        }
    }
});

/// How reading a decoder to the cap went.
enum Drained {
    Complete(Vec<u8>),
    Failed,
    Capped,
}

fn drain(decoder: impl Read) -> Drained {
    let mut limited = decoder.take(OUTPUT_CAP);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match limited.read(&mut buf) {
            Ok(0) if out.len() as u64 == OUTPUT_CAP => return Drained::Capped,
            Ok(0) => return Drained::Complete(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => return Drained::Failed,
        }
    }
}
