//! `sidecar::parse_sidecar` on arbitrary text: never panics, only yields a
//! lowercase sha256, and reads back what bty itself writes.
#![no_main]

use bty_store::sidecar::parse_sidecar;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(sha) = parse_sidecar(text) else {
        return;
    };
    assert!(
        sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "not a lowercase sha256: {sha:?}"
    );
    assert_eq!(parse_sidecar(&format!("{sha}  x.img\n")), Some(sha.clone()));
    assert_eq!(parse_sidecar(&format!("\\{sha}  x\\\\y.img\n")), Some(sha));
});
