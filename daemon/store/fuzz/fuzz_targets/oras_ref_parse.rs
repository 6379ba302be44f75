//! `OrasRef::parse` on arbitrary strings: never panics, and an accepted
//! reference prints (Display) to a string that parses back to itself, since
//! the canonical src of an oras entry is that printed form.
#![no_main]

use bty_store::oras_ref::OrasRef;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = OrasRef::parse(text) else {
        return;
    };
    let printed = parsed.to_string();
    match OrasRef::parse(&printed) {
        Ok(again) => assert_eq!(again, parsed, "round trip changed {text:?}"),
        Err(e) => panic!("printed form {printed:?} of {text:?} is refused: {e}"),
    }
    assert!(!parsed.locator().is_empty());
});
