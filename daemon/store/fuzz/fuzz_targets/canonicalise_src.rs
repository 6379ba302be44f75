//! `canonicalise_src` on arbitrary strings: never panics, is idempotent
//! (equal canonical strings must mean the same source, and a canonical src
//! stored in catalog.toml is canonicalised again on the next load), and
//! never lets a control character or userinfo through.
#![no_main]

use bty_store::canon::{canonicalise_src, image_ref};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(canonical) = canonicalise_src(src) else {
        return;
    };
    assert!(
        !canonical.chars().any(char::is_control),
        "control character in canonical {canonical:?}"
    );
    // No userinfo: the authority of a network src (scheme to the first
    // '/', '?' or '#') holds no '@' — for oras:// the '@' of a digest comes
    // after the repository's '/'. (file:// srcs are paths: no authority.)
    if let Some((scheme, body)) = canonical.split_once("://")
        && matches!(scheme, "http" | "https" | "oras")
    {
        let authority = body.split(['/', '?', '#', '\\']).next().unwrap_or(body);
        assert!(
            !authority.contains('@'),
            "userinfo in canonical {canonical:?} of {src:?}"
        );
    }
    match canonicalise_src(&canonical) {
        Ok(again) => assert_eq!(again, canonical, "not idempotent for {src:?}"),
        Err(e) => panic!("canonical {canonical:?} of {src:?} is refused: {e}"),
    }
    assert_eq!(image_ref(src).ok(), image_ref(&canonical).ok());
});
