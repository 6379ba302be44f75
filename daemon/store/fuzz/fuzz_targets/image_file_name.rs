//! `names::validate_image_file_name` on arbitrary strings: never panics, and
//! nothing it accepts can leave the image root or shadow bty's own files
//! (uploads are written to `image_root/<name>`).
#![no_main]

use bty_store::names::{is_cache_file_name, validate_image_file_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    if validate_image_file_name(name).is_err() {
        return;
    }
    assert!(!name.is_empty() && name.len() <= 255, "{name:?}");
    assert!(!name.contains(['/', '\\', '\0']), "{name:?}");
    assert!(name != "." && name != "..", "{name:?}");
    assert!(!name.starts_with('.'), "hidden name accepted: {name:?}");
    assert!(
        !name.ends_with(".sha256") && !name.ends_with(".partial"),
        "{name:?}"
    );
    assert!(!is_cache_file_name(name), "{name:?}");
    let path = std::path::Path::new("/root").join(name);
    assert_eq!(
        path.parent(),
        Some(std::path::Path::new("/root")),
        "{name:?}"
    );
});
