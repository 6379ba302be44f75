//! `open_decoder` on arbitrary compressed streams: never panics and never
//! allocates in proportion to the claimed output. The output is read in
//! fixed chunks and capped, as the flash pipeline reads it: a stream that
//! expands past the cap is simply stopped, like a flash at the target size.
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
    let mut limited = decoder.take(OUTPUT_CAP);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match limited.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
});
