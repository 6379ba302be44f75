//! `format::sniff` and `format::detect` on arbitrary headers and names:
//! never panic, and detection agrees with sniffing when magic is present.
#![no_main]

use bty_store::format::{detect, format_from_name, sniff};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte: length of a file name taken from the input's tail, so one
    // input exercises both the name and the content rules.
    let (name_len, rest) = match data.split_first() {
        Some((n, rest)) => (usize::from(*n).min(rest.len()), rest),
        None => (0, data),
    };
    let (header, name_bytes) = rest.split_at(rest.len() - name_len);
    let name = String::from_utf8_lossy(name_bytes);
    let sniffed = sniff(header);
    let _ = format_from_name(&name);
    if let Ok(format) = detect(&name, header)
        && let Some(container) = sniffed
    {
        assert_eq!(
            format.container(),
            container,
            "detect({name:?}) disagrees with the magic bytes"
        );
    }
});
